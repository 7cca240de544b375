// gRPC status codes, header encodings and message counting.
#include "protocols/http2/grpc.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace zerotrace::protocols::http2 {

bool IsGrpcContentType(std::string_view ct) {
  constexpr std::string_view kGrpc = "application/grpc";
  if (ct.size() < kGrpc.size()) return false;
  for (size_t i = 0; i < kGrpc.size(); i++) {
    const char c = ct[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) != kGrpc[i]) return false;
  }
  return ct.size() == kGrpc.size() || ct[kGrpc.size()] == '+' || ct[kGrpc.size()] == ';';
}

std::string_view GrpcStatusName(int code) {
  static constexpr std::array<std::string_view, 17> kNames = {"OK",
                                                              "CANCELLED",
                                                              "UNKNOWN",
                                                              "INVALID_ARGUMENT",
                                                              "DEADLINE_EXCEEDED",
                                                              "NOT_FOUND",
                                                              "ALREADY_EXISTS",
                                                              "PERMISSION_DENIED",
                                                              "RESOURCE_EXHAUSTED",
                                                              "FAILED_PRECONDITION",
                                                              "ABORTED",
                                                              "OUT_OF_RANGE",
                                                              "UNIMPLEMENTED",
                                                              "INTERNAL",
                                                              "UNAVAILABLE",
                                                              "DATA_LOSS",
                                                              "UNAUTHENTICATED"};
  if (code >= 0 && static_cast<size_t>(code) < kNames.size()) return kNames[code];
  return "UNKNOWN";
}

std::optional<int> ParseGrpcStatus(std::string_view v) {
  int code = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), code);
  if (ec != std::errc() || end != v.data() + v.size() || v.empty() || code < 0) {
    return std::nullopt;
  }
  return code;
}

std::optional<uint64_t> ParseGrpcTimeout(std::string_view v) {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  uint64_t n = 0;
  const std::string_view digits = v.substr(0, v.size() - 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  uint64_t unit = 0;
  switch (v.back()) {
    case 'H':
      unit = 3600'000'000'000ULL;
      break;
    case 'M':
      unit = 60'000'000'000ULL;
      break;
    case 'S':
      unit = 1'000'000'000ULL;
      break;
    case 'm':
      unit = 1'000'000ULL;
      break;
    case 'u':
      unit = 1'000ULL;
      break;
    case 'n':
      unit = 1;
      break;
    default:
      return std::nullopt;
  }
  return n * unit;  // at most 99999999 hours: no overflow
}

std::string DecodeGrpcMessage(std::string_view v) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i] == '%' && i + 2 < v.size()) {
      const int hi = hex(v[i + 1]), lo = hex(v[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += v[i];
  }
  return out;
}

int GrpcStatusFromHttp(int http_status) {
  switch (http_status) {
    case 400:
      return 13;  // INTERNAL
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 12;  // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;  // UNAVAILABLE
    default:
      return kGrpcUnknown;
  }
}

int GrpcStatusFromReset(uint32_t error_code) {
  switch (error_code) {
    case 0x7:     // REFUSED_STREAM
      return 14;  // UNAVAILABLE
    case 0x8:     // CANCEL
      return kGrpcCancelled;
    case 0xb:    // ENHANCE_YOUR_CALM
      return 8;  // RESOURCE_EXHAUSTED
    case 0xc:    // INADEQUATE_SECURITY
      return 7;  // PERMISSION_DENIED
    default:
      return 13;  // INTERNAL
  }
}

bool SplitGrpcPath(std::string_view path, std::string_view* service, std::string_view* method) {
  *service = *method = {};
  if (path.size() < 4 || path[0] != '/') return false;
  const size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos || slash == 1 || slash + 1 == path.size()) return false;
  if (path.find_first_of("/?", slash + 1) != std::string_view::npos) return false;
  *service = path.substr(1, slash - 1);
  *method = path.substr(slash + 1);
  return true;
}

// Hot path.
void GrpcMessageCounter::Feed(std::string_view bytes) {
  while (!bytes.empty() && !lost_) {
    if (remaining_ > 0) {
      const uint64_t n = std::min<uint64_t>(remaining_, bytes.size());
      remaining_ -= n;
      bytes.remove_prefix(n);
      continue;
    }
    prefix_[prefix_have_++] = static_cast<uint8_t>(bytes.front());
    bytes.remove_prefix(1);
    if (prefix_have_ == sizeof(prefix_)) {
      prefix_have_ = 0;
      count_++;
      remaining_ = (uint64_t{prefix_[1]} << 24) | (uint64_t{prefix_[2]} << 16) |
                   (uint64_t{prefix_[3]} << 8) | prefix_[4];
    }
  }
}

void GrpcMessageCounter::Skip(uint64_t n) {
  if (n == 0 || lost_) return;
  if (prefix_have_ == 0 && n <= remaining_) {
    remaining_ -= n;
    return;
  }
  lost_ = true;  // a prefix was inside the gap
}

}  // namespace zerotrace::protocols::http2
