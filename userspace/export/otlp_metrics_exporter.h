// OTLP metrics export: the metrics stage's snapshot as an ExportMetricsServiceRequest, sent over
// gRPC or HTTP (protobuf or JSON) every export interval by a thread of its own.
#pragma once

#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "export/otlp_config.h"
#include "metrics/metric_data.h"
#include "trace/span.h"

namespace opentelemetry::proto::collector::metrics::v1 {
class ExportMetricsServiceRequest;
}

typedef void CURL;
struct curl_slist;

namespace zerotrace::exporter {

struct OtlpMetricsOptions {
  bool delta = false;  // delta temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE)
  std::string host_name;
  // The agent's OTEL_RESOURCE_ATTRIBUTES, on every resource.
  std::vector<trace::ResourceAttribute> resource_extra;
};

// Turns snapshots into requests. For delta temporality it keeps the numbers of the last
// snapshot the collector accepted: each point then covers the time since that export, so an
// export that fails loses nothing (the next one's deltas include its counts).
class MetricsRequestEncoder {
 public:
  explicit MetricsRequestEncoder(OtlpMetricsOptions options) : options_(std::move(options)) {}
  // One request with every series; RED metrics under one resource per service, the service
  // graph under the agent's own (service.name "zerotrace"). Returns the number of points.
  size_t Encode(const metrics::MetricsSnapshot& snapshot,
                opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest* out);
  // The collector accepted the last encoded request: later deltas start from its numbers.
  void Commit();

 private:
  struct Previous {
    metrics::HistogramData histogram;
    uint64_t value = 0;
  };
  OtlpMetricsOptions options_;
  uint64_t previous_time_ns_ = 0;
  std::unordered_map<std::string, Previous> previous_;  // by family name + point id
  // The last encoded snapshot's numbers, until Commit makes them the previous ones.
  uint64_t encoded_time_ns_ = 0;
  std::vector<std::pair<std::string, Previous>> encoded_;
};

struct OtlpMetricsCounters {
  std::atomic<uint64_t> exports_ok{0};      // requests the collector accepted
  std::atomic<uint64_t> exports_failed{0};  // requests that failed (the next one carries on)
  std::atomic<uint64_t> points_sent{0};     // data points in accepted requests
};

class OtlpMetricsExporter {
 public:
  static StatusOr<std::unique_ptr<OtlpMetricsExporter>> Create(const OtlpConfig& config,
                                                               OtlpMetricsOptions options);
  ~OtlpMetricsExporter();

  // One request, one attempt within the configured timeout: cumulative points need no retry
  // (the next export carries the same totals). The error message when it failed.
  Status Export(const metrics::MetricsSnapshot& snapshot);
  // Thread-safe: an attempt in flight ends soon, and no attempt starts any more.
  void Cancel();

  const OtlpMetricsCounters& counters() const { return counters_; }
  const OtlpConfig& config() const { return config_; }

 private:
  OtlpMetricsExporter(const OtlpConfig& config, OtlpMetricsOptions options);
  Status SendGrpc(const std::string& body);
  Status SendHttp(const std::string& body);

  const OtlpConfig config_;
  MetricsRequestEncoder encoder_;
  OtlpMetricsCounters counters_;
  std::atomic<bool> cancelled_{false};
  // gRPC
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  std::mutex cancel_mu_;
  grpc::ClientContext* active_ = nullptr;
  // HTTP
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
  char curl_error_[256] = {};
};

// Exports a snapshot every `interval` on a thread of its own, and once more at Stop.
class PeriodicMetricsExport {
 public:
  using SnapshotFn = std::function<metrics::MetricsSnapshot()>;
  PeriodicMetricsExport(OtlpMetricsExporter* exporter, SnapshotFn snapshot,
                        std::chrono::milliseconds interval);
  ~PeriodicMetricsExport() { Stop(); }
  // A final export of what the stage holds now (after the stage was flushed), then the thread
  // ends. A collector that does not answer is not waited for past `timeout`.
  void Stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(1500));

 private:
  void Loop();
  OtlpMetricsExporter* exporter_;
  SnapshotFn snapshot_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stopped_ = false;
  bool last_failed_ = false;  // export thread only
  std::thread thread_;
};

}  // namespace zerotrace::exporter
