// The transport-independent receiver: fault modes, span output and the per-request log.
#pragma once

#include <google/protobuf/arena.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "otlp_json_codec.h"

namespace zerotrace::otlp_sink {

enum class Transport { kGrpc, kHttp };
enum class Encoding { kProtobuf, kJson };

// How a request arrived; headers are the x-* ones, names lowercase, repeats joined by ", ".
struct RequestMeta {
  Transport transport = Transport::kGrpc;
  Encoding encoding = Encoding::kProtobuf;
  bool gzip = false;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct SinkOptions {
  std::string jsonl_path;         // empty: readable lines on stdout (unless quiet)
  std::string requests_log_path;  // empty: no request log
  bool quiet = false;             // count only; write no spans
  bool count_only = false;        // protobuf requests: count spans from the bytes, parse nothing
  int fail_count = 0;             // the first N requests are answered with the failure below
  int fail_grpc_code = 14;        // UNAVAILABLE
  int fail_http_status = 503;
  std::optional<std::chrono::milliseconds> retry_after;  // RetryInfo / Retry-After on failures
  std::chrono::milliseconds delay{0};                    // before answering each request
  int64_t partial_reject = 0;  // accepted requests report this many rejected spans
};

// What the transport answers.
struct Answer {
  enum class Kind { kAccepted, kFailed, kCancelled } kind = Kind::kAccepted;
  int grpc_code = 0;
  int http_status = 200;
  std::string message;  // failure message
  std::optional<std::chrono::milliseconds> retry_after;
  int64_t rejected_spans = 0;  // partial success when > 0
  std::string error_message;   // partial success message
};

struct SinkTotals {
  uint64_t requests = 0, accepted = 0, failed = 0, invalid = 0, cancelled = 0;
  uint64_t spans = 0;  // spans in accepted requests (the ones written)
};

class Sink {
 public:
  // Opens the output files (truncating them); an error message a user can act on otherwise.
  static std::variant<std::unique_ptr<Sink>, std::string> Open(SinkOptions options);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Waits --delay-ms (less if Stop() is called), decides the answer, writes the spans of an
  // accepted request and the request log line, flushed, before returning, so a client that
  // has its answer can read the files. `cancelled` is asked after the delay: a request its
  // client gave up on is logged as "cancelled" and its spans are not written.
  Answer Handle(const ExportRequest& request, const RequestMeta& meta,
                const std::function<bool()>& cancelled);
  // The same for a request counted, not parsed (--count-only): nothing to write but the log.
  Answer HandleCounted(int64_t spans, const RequestMeta& meta,
                       const std::function<bool()>& cancelled);
  // Logs a request whose body could not be decoded (answered 400 / INVALID_ARGUMENT).
  void RecordInvalid(const RequestMeta& meta, int status, const std::string& error);
  // Wakes requests that are waiting out --delay-ms.
  void Stop();
  // True when Handle waits before answering (--delay-ms); else it only locks, decides and writes.
  bool MayBlock() const { return options_.delay.count() > 0; }
  bool count_only() const { return options_.count_only; }

  SinkTotals totals() const;

 private:
  explicit Sink(SinkOptions options) : options_(std::move(options)) {}
  // Handle and HandleCounted: request is null for a counted one.
  Answer Decide(const ExportRequest* request, int64_t spans, const RequestMeta& meta,
                const std::function<bool()>& cancelled);
  void LogRequest(const RequestMeta& meta, const char* result, int status, int64_t spans,
                  const Answer* answer, const std::string* error);

  const SinkOptions options_;
  std::FILE* jsonl_ = nullptr;
  std::FILE* requests_log_ = nullptr;

  mutable std::mutex mu_;  // guards everything below and the outputs
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  uint64_t decided_ = 0;  // requests past the delay, for --fail N
  SinkTotals totals_;
};

// Spans in a request.
int64_t CountSpans(const ExportRequest& request);

// For the Arena a request is parsed into: a 512-span request of typical HTTP spans takes 1.2 MB,
// so a few blocks that grow to 1 MB, not the default's ~150 blocks of at most 8 KB.
google::protobuf::ArenaOptions RequestArenaOptions();

// gRPC status code by name ("UNAVAILABLE") or number ("14"); nullopt for anything else.
std::optional<int> ParseGrpcCode(const std::string& text);
// The HTTP status that usually stands for a gRPC code (UNAVAILABLE 503, INVALID_ARGUMENT 400,
// RESOURCE_EXHAUSTED 429, DEADLINE_EXCEEDED 504, ...; 500 for the rest).
int HttpStatusForGrpcCode(int code);

}  // namespace zerotrace::otlp_sink
