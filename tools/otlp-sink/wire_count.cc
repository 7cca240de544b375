// CountSpansInWire: a walk over protobuf tags and lengths, three messages deep.
#include "wire_count.h"

namespace zerotrace::otlp_sink {
namespace {

constexpr uint32_t kWireVarint = 0, kWire64 = 1, kWireLen = 2, kWire32 = 5;

// Reads a varint at *p; false if it runs past end or over 10 bytes.
bool ReadVarint(const char** p, const char* end, uint64_t* value) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70 && *p < end; shift += 7) {
    const auto byte = static_cast<uint8_t>(*(*p)++);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = v;
      return true;
    }
  }
  return false;
}

// Calls on_field(field, payload) for each length-delimited field of one message and skips the
// rest; false if the framing is broken or on_field returns false.
template <typename OnField>
bool ForEachLenField(std::string_view message, OnField on_field) {
  const char* p = message.data();
  const char* const end = p + message.size();
  while (p < end) {
    uint64_t tag = 0, n = 0;
    if (!ReadVarint(&p, end, &tag) || (tag >> 3) == 0) return false;
    switch (static_cast<uint32_t>(tag & 7)) {
      case kWireVarint:
        if (!ReadVarint(&p, end, &n)) return false;
        break;
      case kWire64:
        if (end - p < 8) return false;
        p += 8;
        break;
      case kWire32:
        if (end - p < 4) return false;
        p += 4;
        break;
      case kWireLen:
        if (!ReadVarint(&p, end, &n) || n > static_cast<uint64_t>(end - p)) return false;
        if (!on_field(tag >> 3, std::string_view(p, n))) return false;
        p += n;
        break;
      default:  // groups (3, 4) are not in OTLP; 6 and 7 are not wire types
        return false;
    }
  }
  return true;
}

}  // namespace

std::optional<int64_t> CountSpansInWire(std::string_view bytes) {
  int64_t spans = 0;
  const bool ok = ForEachLenField(bytes, [&](uint64_t field, std::string_view resource_spans) {
    if (field != 1) return true;
    return ForEachLenField(resource_spans, [&](uint64_t field, std::string_view scope_spans) {
      if (field != 2) return true;
      return ForEachLenField(scope_spans, [&](uint64_t field, std::string_view) {
        if (field == 2) ++spans;
        return true;
      });
    });
  });
  if (!ok) return std::nullopt;
  return spans;
}

}  // namespace zerotrace::otlp_sink
