// Validates one ring-buffer record and gives it a typed view (no copies).
#pragma once

#include <zerotrace/ctx_propagate.h>
#include <zerotrace/events.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace zerotrace::probes {

// A record as userspace sees it; exactly one pointer matches `type`.
struct EventView {
  uint8_t type = 0;
  const zt_event_header* header = nullptr;
  const zt_conn_open* open = nullptr;
  const zt_conn_close* close = nullptr;
  const zt_data_event* data = nullptr;
  std::string_view payload;  // data events: the captured bytes
  const zt_proc_event* proc = nullptr;
  const zt_exec_map_event* exec_map = nullptr;
  const zt_go_call_event* go_call = nullptr;
  const zt_ctx_event* ctx = nullptr;
};

enum class DecodeError { kNone, kTooShort, kUnknownType, kBadLength };

// Hot path. Fills `out` from a raw record of `size` bytes; kNone on success.
DecodeError DecodeEvent(const void* record, size_t size, EventView* out);

const char* DecodeErrorName(DecodeError e);

}  // namespace zerotrace::probes
