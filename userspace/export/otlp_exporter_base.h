// What both OTLP exporters share: the retry loop, counters, shutdown, rate-limited logs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "export/exporter.h"
#include "export/otlp_config.h"
#include "export/retry.h"
#include "trace/span.h"

namespace zerotrace::exporter {

// Self-metrics of one OTLP exporter; read with .load() from any thread. Every span of every
// batch ends in exactly one of: spans_ok, spans_rejected_partial, spans_dropped_*.
struct OtlpExporterCounters {
  std::atomic<uint64_t> batches_ok{0};  // requests the collector accepted (maybe partially)
  std::atomic<uint64_t> spans_ok{0};    // spans accepted, partial_success rejections excluded
  std::atomic<uint64_t> retries{0};     // attempts after a batch's first
  std::atomic<uint64_t> attempts_retryable_failed{0};      // attempts that failed, worth a retry
  std::atomic<uint64_t> spans_dropped_retry_exhausted{0};  // retryable errors past max_elapsed
  std::atomic<uint64_t> spans_dropped_non_retryable{0};    // e.g. HTTP 400, INVALID_ARGUMENT
  std::atomic<uint64_t> spans_rejected_partial{0};         // partial_success.rejected_spans
  std::atomic<uint64_t> spans_dropped_shutdown{0};         // retries cut off by BeginShutdown
  std::atomic<uint64_t> bytes_sent{0};  // request bodies (HTTP: as sent; gRPC: before gzip)
};

struct OtlpExporterOptions {
  RetryOptions retry;
  uint64_t retry_seed = 0;           // 0: random
  std::shared_ptr<Sleeper> sleeper;  // null: real time
  // At most one log line per reason per interval; the next one says how many were suppressed.
  std::chrono::milliseconds log_interval{10000};
  std::function<void(const std::string&)> log;  // one line, no newline; null: stderr
  // A batch whose encoded request (before compression) is larger is sent as two halves, and so
  // on: collectors refuse gRPC messages over 4 MiB by default. 0: 2 MiB.
  size_t max_request_bytes = 0;
};

class OtlpExporterBase : public SpanExporter {
 public:
  ~OtlpExporterBase() override = default;

  // Encodes the batch once, then sends it until it is accepted, fails for good, or the retry
  // policy or a shutdown gives up; every outcome is counted, and returned: delivered is what
  // the collector accepted. Never throws, never waits past RetryOptions::max_elapsed (plus one
  // request's timeout at most). A batch larger than max_request_bytes is split and each part
  // exported so.
  ExportResult Export(const std::vector<trace::Span>& spans) final;
  // The same for spans encoded on the consumer thread (span_encoder()): the request is only
  // assembled from their bytes, then sent and split as Export() does.
  ExportResult ExportEncoded(const std::vector<EncodedSpan>& spans) final;
  // EncodeOtlpSpan when the request body is OTLP protobuf (gRPC, http/protobuf); null for
  // http/json, whose spans are queued as they are.
  SpanEncoder span_encoder() const override;
  // Logs, once and exactly, what the run dropped (the rate-limited lines may have left out
  // some); delivers nothing.
  ExportResult Finish() override;

  // Thread-safe. Call it when the agent stops, with the queue's drain deadline. From now on no
  // attempt or backoff runs past `deadline`: a retry that would is dropped
  // (spans_dropped_shutdown). A collector that cannot be reached (the newest attempt got no
  // answer: refused, unreachable, timed out) is not waited for at all: a sleeping retry wakes,
  // an attempt in flight is cancelled, and every batch still to come is dropped at once.
  void BeginShutdown(RetryClock::time_point deadline);

  // otlp_spans_ok, otlp_retries, …: every counter, for the stats line and /metrics.
  std::vector<ExporterCounter> Counters() const override;

  const OtlpExporterCounters& counters() const { return counters_; }
  const OtlpConfig& config() const { return config_; }

 protected:
  OtlpExporterBase(OtlpConfig config, OtlpExporterOptions options);

  // Turns the batch into the request Send() sends (kept until the next Encode); returns its
  // size before compression.
  virtual size_t Encode(const std::vector<trace::Span>& spans) = 0;
  // The same from pre-encoded spans, for an exporter whose body is OTLP protobuf (TakesProto).
  virtual size_t Assemble(std::span<const EncodedSpan> spans) {
    (void)spans;
    return 0;
  }
  // True when the request body is OTLP protobuf: Assemble() works and span_encoder() is set.
  virtual bool TakesProto() const { return false; }
  // Sends the encoded request once, waiting at most `timeout`. Adds to counters().bytes_sent.
  virtual AttemptResult Send(std::chrono::milliseconds timeout) = 0;
  // Thread-safe: makes an attempt in flight (Send on the export thread) end soon, as failed.
  virtual void CancelAttempt() {}

  // A log line, at most once per log_interval for each reason.
  void Log(const std::string& reason, const std::string& line);
  // A log line now, whatever the rate limit.
  void Emit(const std::string& line);

  OtlpConfig config_;
  OtlpExporterCounters counters_;

 private:
  ExportResult ExportAssembled(std::span<const EncodedSpan> spans);
  ExportResult SendWithRetries(size_t spans);
  ExportResult Accepted(const AttemptResult& result, size_t spans);
  ExportResult Drop(std::atomic<uint64_t>* counter, size_t spans, const std::string& reason,
                    const std::string& line);

  OtlpExporterOptions options_;
  RetryPolicy policy_;
  std::shared_ptr<Sleeper> sleeper_;
  std::string endpoint_for_logs_;                // config_.endpoint without secrets
  std::atomic<int64_t> shutdown_ns_{INT64_MAX};  // RetryClock epoch ns; INT64_MAX: running
  // The newest attempt got no answer (AttemptResult::unreachable): at shutdown, the collector
  // is not waited for.
  std::atomic<bool> collector_unreachable_{false};

  struct LogState {
    RetryClock::time_point next{};
    uint64_t suppressed = 0;
  };
  std::mutex log_mu_;
  std::map<std::string, LogState> log_state_;
};

}  // namespace zerotrace::exporter
