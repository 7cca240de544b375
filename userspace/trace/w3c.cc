// traceparent validation: any rule broken means the header is ignored.
#include "trace/w3c.h"

namespace zerotrace::trace {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is invalid in traceparent
}

template <size_t N>
bool ParseHex(std::string_view s, std::array<uint8_t, N>* out) {
  if (s.size() != 2 * N) return false;
  for (size_t i = 0; i < N; i++) {
    const int hi = HexValue(s[2 * i]), lo = HexValue(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

std::optional<TraceParent> ParseTraceParent(std::string_view h) {
  // Optional whitespace around the value is allowed by HTTP field syntax.
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  if (h.size() < 55) return std::nullopt;
  std::array<uint8_t, 1> version{}, flags{};
  if (!ParseHex(h.substr(0, 2), &version) || version[0] == 0xff) return std::nullopt;
  if (h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  // Version 00 is exactly 55 chars; later versions may append "-..." fields.
  if (version[0] == 0 ? h.size() != 55 : (h.size() > 55 && h[55] != '-')) return std::nullopt;
  TraceParent tp;
  if (!ParseHex(h.substr(3, 32), &tp.trace_id.bytes) || !tp.trace_id.valid()) return std::nullopt;
  if (!ParseHex(h.substr(36, 16), &tp.parent_id.bytes) || !tp.parent_id.valid())
    return std::nullopt;
  if (!ParseHex(h.substr(53, 2), &flags)) return std::nullopt;
  tp.flags = flags[0];
  return tp;
}

}  // namespace zerotrace::trace
