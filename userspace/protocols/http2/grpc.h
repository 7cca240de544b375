// gRPC over HTTP/2 (the gRPC "PROTOCOL-HTTP2" document): status codes, the grpc-timeout and
// grpc-message encodings, and the length-prefixed messages of a stream's DATA.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zerotrace::protocols::http2 {

inline constexpr int kGrpcOk = 0;
inline constexpr int kGrpcCancelled = 1;
inline constexpr int kGrpcUnknown = 2;
inline constexpr int kGrpcDeadlineExceeded = 4;

// True for a request whose content-type makes it a gRPC call ("application/grpc",
// "application/grpc+proto", ...).
bool IsGrpcContentType(std::string_view content_type);
// "OK", "DEADLINE_EXCEEDED", ...; "UNKNOWN" outside 0..16.
std::string_view GrpcStatusName(int code);
// grpc-status: a decimal code; nullopt when malformed.
std::optional<int> ParseGrpcStatus(std::string_view value);
// grpc-timeout: 1-8 digits and a unit (H, M, S, m, u, n), in nanoseconds; nullopt if malformed.
std::optional<uint64_t> ParseGrpcTimeout(std::string_view value);
// grpc-message: percent-encoded UTF-8; malformed escapes are kept as they are.
std::string DecodeGrpcMessage(std::string_view value);
// The code a client derives when the response carries no grpc-status (from its HTTP status).
int GrpcStatusFromHttp(int http_status);
// The code a client reports for a stream reset with this HTTP/2 error code.
int GrpcStatusFromReset(uint32_t error_code);
// "/package.Service/Method" -> service "package.Service", method "Method"; false (both empty)
// for a path of another shape.
bool SplitGrpcPath(std::string_view path, std::string_view* service, std::string_view* method);

// Counts the length-prefixed messages (1-byte flag, 4-byte big-endian length, payload) in one
// direction of a call, from its DATA bodies in order. Bytes it was not given (a capture gap)
// inside a payload are skipped; a gap over a prefix makes the count uncertain.
class GrpcMessageCounter {
 public:
  // Hot path.
  void Feed(std::string_view bytes);
  void Skip(uint64_t n);
  uint64_t count() const { return count_; }
  // The count is exact: no prefix was lost.
  bool certain() const { return !lost_; }
  // A whole number of messages was seen (no message cut short).
  bool at_boundary() const { return !lost_ && prefix_have_ == 0 && remaining_ == 0; }

 private:
  uint64_t count_ = 0;
  uint64_t remaining_ = 0;  // payload bytes of the current message still to come
  uint8_t prefix_[5] = {};
  uint8_t prefix_have_ = 0;
  bool lost_ = false;
};

}  // namespace zerotrace::protocols::http2
