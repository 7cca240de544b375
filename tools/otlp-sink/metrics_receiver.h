// OTLP metrics for otlp-sink: MetricsService/Export over gRPC and POST /v1/metrics over HTTP
// (protobuf or JSON, gzip or not), decoded with the generated classes and written as one
// OTLP/JSON ExportMetricsServiceRequest per line (--metrics-jsonl), each flushed before the
// answer. Always accepted: the fault modes are for spans.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <mutex>
#include <string>

#include "http_server.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.grpc.pb.h"

namespace zerotrace::otlp_sink {

class MetricsLog {
 public:
  // `path` empty: requests are counted, not written.
  explicit MetricsLog(const std::string& path);
  ~MetricsLog();
  bool ok() const { return path_.empty() || file_ != nullptr; }
  void Write(const opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest& r);
  uint64_t requests() const;

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  mutable std::mutex mu_;
  uint64_t requests_ = 0;
};

class MetricsGrpcService final
    : public opentelemetry::proto::collector::metrics::v1::MetricsService::CallbackService {
 public:
  explicit MetricsGrpcService(MetricsLog* log) : log_(log) {}
  grpc::ServerUnaryReactor* Export(
      grpc::CallbackServerContext* context,
      const opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest* request,
      opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceResponse* response)
      override;

 private:
  MetricsLog* log_;
};

// POST /v1/metrics.
HttpResponse HandleOtlpHttpMetrics(MetricsLog& log, const HttpRequest& request);

}  // namespace zerotrace::otlp_sink
