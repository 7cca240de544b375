// The OTLP retry policy: what is retryable, server delay hints, backoff with jitter, a deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace zerotrace::exporter {

using RetryClock = std::chrono::steady_clock;

struct RetryOptions {
  // Backoff before retry k (k >= 1) is uniform in [0, min(max_backoff, initial * 2^(k-1))]
  // ("full jitter"): clients that failed together do not retry together.
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{5000};
  // A batch is given up (and counted) once retrying would end past this time from its first
  // attempt. It covers a collector restart; the bounded queue absorbs spans meanwhile.
  std::chrono::milliseconds max_elapsed{60000};
};

// What one export attempt came to, whatever the transport.
struct AttemptResult {
  enum class Kind { kOk, kRetryable, kPermanent };
  Kind kind = Kind::kOk;
  // The server's wait hint: HTTP Retry-After, or google.rpc.RetryInfo in a gRPC status.
  std::optional<std::chrono::milliseconds> server_delay;
  std::string reason;   // short and stable ("UNAVAILABLE", "HTTP 503", "connect"): keys log limits
  std::string message;  // details for the log line
  // kRetryable: no answer came from the collector (connection refused, unreachable, reset,
  // timed out), as opposed to an answer asking for a retry (503, UNAVAILABLE from the server).
  // At shutdown an unreachable collector is not waited for.
  bool unreachable = false;
  // kOk only: the response's partial_success.
  int64_t rejected_spans = 0;
  std::string partial_message;
};

// OTLP/gRPC: UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, DATA_LOSS are
// retryable; RESOURCE_EXHAUSTED only when the server sent RetryInfo (recovery is possible).
bool IsRetryableGrpcCode(int code, bool has_retry_info);
// OTLP/HTTP: 429, 502, 503 and 504 are retryable; every other non-2xx status is not.
bool IsRetryableHttpStatus(long status);

// An attempt's outcome from its gRPC status; `details` is the serialized google.rpc.Status of
// the grpc-status-details-bin trailer (grpc::Status::error_details()), possibly empty.
AttemptResult ClassifyGrpc(int code, std::string_view message, std::string_view details);
// An attempt's outcome from a non-2xx HTTP status and its Retry-After header (may be empty).
AttemptResult ClassifyHttp(long status, std::string_view retry_after, std::string_view message,
                           std::chrono::system_clock::time_point now);

// Retry-After: delay-seconds, or an HTTP-date (any of RFC 9110's three formats) relative to now;
// a date in the past means no wait. nullopt when unparsable.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::chrono::system_clock::time_point now);

// google.rpc.Status (code 1, message 2, details 3: Any) decoded by hand: the proto is not in
// this repo and only two fields matter. RetryInfo.retry_delay of the first RetryInfo detail.
std::optional<std::chrono::milliseconds> RetryInfoDelay(std::string_view rpc_status);
// The status message, or nullopt when the bytes are not a google.rpc.Status.
std::optional<std::string> RpcStatusMessage(std::string_view rpc_status);
// Serialized google.rpc.Status{code, message, [RetryInfo{retry_delay}]}: what a throttling
// server sends (test receivers and the sink use it).
std::string EncodeRpcStatus(int code, std::string_view message,
                            std::optional<std::chrono::milliseconds> retry_delay);

// Pure backoff arithmetic; one per exporter, used from its export thread only.
class RetryPolicy {
 public:
  // seed 0: seeded from std::random_device.
  explicit RetryPolicy(RetryOptions options = {}, uint64_t seed = 0);

  // The wait before retry number `retry` (1 for the first retry) of a batch whose first
  // attempt began `elapsed` ago, or nullopt when the batch must be given up because the wait
  // would end at or past max_elapsed. A server hint replaces the jittered backoff.
  std::optional<std::chrono::milliseconds> NextDelay(
      int retry, std::optional<std::chrono::milliseconds> server_hint,
      std::chrono::milliseconds elapsed);

  // The backoff ceiling for retry k: min(max_backoff, initial * 2^(k-1)).
  std::chrono::milliseconds Ceiling(int retry) const;
  const RetryOptions& options() const { return options_; }

 private:
  RetryOptions options_;
  std::mt19937_64 rng_;
};

// Time and waiting for the retry loop; tests inject one whose sleeps only advance its clock.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual RetryClock::time_point Now() = 0;
  // Waits until `until` and returns true; returns false without waiting further once `until`
  // is past the limit (a sleep that shutdown has made pointless).
  virtual bool SleepUntil(RetryClock::time_point until) = 0;
  // Thread-safe: sleeps ending past `limit`, current or later, return false at once.
  virtual void Limit(RetryClock::time_point limit) = 0;
};

class RealSleeper final : public Sleeper {
 public:
  RetryClock::time_point Now() override { return RetryClock::now(); }
  bool SleepUntil(RetryClock::time_point until) override;
  void Limit(RetryClock::time_point limit) override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  RetryClock::time_point limit_ = RetryClock::time_point::max();
};

}  // namespace zerotrace::exporter
