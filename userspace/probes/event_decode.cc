// Record validation: sizes and types are checked before any field is trusted.
#include "probes/event_decode.h"

namespace zerotrace::probes {

DecodeError DecodeEvent(const void* record, size_t size, EventView* out) {
  *out = EventView{};
  if (size < sizeof(zt_event_header)) return DecodeError::kTooShort;
  const auto* bytes = static_cast<const uint8_t*>(record);
  out->header = static_cast<const zt_event_header*>(record);
  out->type = out->header->type;
  switch (out->type) {
    case ZT_EV_CONN_OPEN:
      if (size < sizeof(zt_conn_open)) return DecodeError::kTooShort;
      out->open = static_cast<const zt_conn_open*>(record);
      return DecodeError::kNone;
    case ZT_EV_CONN_CLOSE:
      if (size < sizeof(zt_conn_close)) return DecodeError::kTooShort;
      out->close = static_cast<const zt_conn_close*>(record);
      return DecodeError::kNone;
    case ZT_EV_DATA: {
      if (size < sizeof(zt_data_event)) return DecodeError::kTooShort;
      out->data = static_cast<const zt_data_event*>(record);
      const uint32_t captured = out->data->captured;
      if (captured > ZT_MAX_CHUNK || size < sizeof(zt_data_event) + captured ||
          captured > out->data->byte_count || out->data->stream_pos < out->data->syscall_pos ||
          out->data->stream_pos + captured > out->data->syscall_pos + out->data->byte_count) {
        return DecodeError::kBadLength;
      }
      out->payload =
          std::string_view(reinterpret_cast<const char*>(bytes + sizeof(zt_data_event)), captured);
      return DecodeError::kNone;
    }
    case ZT_EV_PROC_EXEC:
    case ZT_EV_PROC_EXIT:
      if (size < sizeof(zt_proc_event)) return DecodeError::kTooShort;
      out->proc = static_cast<const zt_proc_event*>(record);
      return DecodeError::kNone;
    case ZT_EV_EXEC_MAP:
      if (size < sizeof(zt_exec_map_event)) return DecodeError::kTooShort;
      out->exec_map = static_cast<const zt_exec_map_event*>(record);
      return DecodeError::kNone;
    case ZT_EV_GO_CALL:
      if (size < sizeof(zt_go_call_event)) return DecodeError::kTooShort;
      out->go_call = static_cast<const zt_go_call_event*>(record);
      return DecodeError::kNone;
    case ZT_EV_CTX:
      if (size < sizeof(zt_ctx_event)) return DecodeError::kTooShort;
      out->ctx = static_cast<const zt_ctx_event*>(record);
      return DecodeError::kNone;
    default:
      return DecodeError::kUnknownType;
  }
}

const char* DecodeErrorName(DecodeError e) {
  switch (e) {
    case DecodeError::kNone:
      return "none";
    case DecodeError::kTooShort:
      return "too_short";
    case DecodeError::kUnknownType:
      return "unknown_type";
    case DecodeError::kBadLength:
      return "bad_length";
  }
  return "?";
}

}  // namespace zerotrace::probes
