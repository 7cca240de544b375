// Protobuf wire format written directly (the googleapis protos are not a dependency).
#include "rpc_status.h"

#include <cstdint>

namespace zerotrace::otlp_sink {
namespace {

constexpr uint32_t kVarint = 0, kLengthDelimited = 2;

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    *out += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *out += static_cast<char>(v);
}

void AppendVarintField(uint32_t field, uint64_t v, std::string* out) {
  if (v == 0) return;  // proto3: a zero scalar is not written
  AppendVarint(field << 3 | kVarint, out);
  AppendVarint(v, out);
}

void AppendBytesField(uint32_t field, std::string_view bytes, std::string* out) {
  AppendVarint(field << 3 | kLengthDelimited, out);
  AppendVarint(bytes.size(), out);
  out->append(bytes);
}

}  // namespace

std::string EncodeRpcStatus(int code, std::string_view message,
                            std::optional<std::chrono::milliseconds> retry_delay) {
  std::string status;
  // int32 fields are varints of their 64-bit sign extension.
  AppendVarintField(1, static_cast<uint64_t>(static_cast<int64_t>(code)), &status);
  if (!message.empty()) AppendBytesField(2, message, &status);
  if (retry_delay) {
    const int64_t ms = retry_delay->count();
    std::string duration;  // google.protobuf.Duration{seconds = 1, nanos = 2}
    AppendVarintField(1, static_cast<uint64_t>(ms / 1000), &duration);
    AppendVarintField(2, static_cast<uint64_t>(static_cast<int64_t>(ms % 1000 * 1000000)),
                      &duration);
    std::string retry_info;  // google.rpc.RetryInfo{retry_delay = 1}
    AppendBytesField(1, duration, &retry_info);
    std::string any;  // google.protobuf.Any{type_url = 1, value = 2}
    AppendBytesField(1, kRetryInfoTypeUrl, &any);
    AppendBytesField(2, retry_info, &any);
    AppendBytesField(3, any, &status);  // google.rpc.Status.details = 3
  }
  return status;
}

}  // namespace zerotrace::otlp_sink
