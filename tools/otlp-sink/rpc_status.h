// google.rpc.Status (+ RetryInfo) written by hand: OTLP/HTTP error bodies, gRPC status details.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace zerotrace::otlp_sink {

inline constexpr std::string_view kRetryInfoTypeUrl = "type.googleapis.com/google.rpc.RetryInfo";

// google.rpc.Status{code, message, details: [Any{RetryInfo{retry_delay}}] when retry_delay}.
std::string EncodeRpcStatus(int code, std::string_view message,
                            std::optional<std::chrono::milliseconds> retry_delay);

}  // namespace zerotrace::otlp_sink
