// Small ASCII text helpers shared by the configuration parsers (flags, OTEL_* variables), and
// the hot path's string reuse.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace zerotrace {

// `s` without leading and trailing spaces and tabs.
inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ASCII lower case (no locale).
inline std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The value of one hex digit, or -1.
inline int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Hot path: *to = v, where *to is recycled storage that mostly holds v already (a span's method,
// scheme, host or peer from the workload's previous request; an absent traceparent). Comparing
// 8 bytes at a time, the last word overlapping, costs fewer instructions than assign's checks and
// copy (tests/bench/agent/instructions); a different value is assigned as before.
inline void AssignIfDifferent(std::string* to, std::string_view v) {
  const size_t n = v.size();
  if (to->size() == n) {
    const char* x = to->data();
    const char* y = v.data();
    bool same = true;
    if (n < 8) {
      for (size_t i = 0; i < n && same; i++) same = x[i] == y[i];
    } else {
      uint64_t a, b;
      for (size_t i = 0; i + 8 < n && same; i += 8) {
        std::memcpy(&a, x + i, 8);
        std::memcpy(&b, y + i, 8);
        same = a == b;
      }
      if (same) {
        std::memcpy(&a, x + n - 8, 8);
        std::memcpy(&b, y + n - 8, 8);
        same = a == b;
      }
    }
    if (same) return;
  }
  to->assign(v);
}

}  // namespace zerotrace
