// OTLP/gRPC: a synchronous opentelemetry.proto.collector.trace.v1.TraceService answered by a Sink.
#pragma once

#include <grpcpp/grpcpp.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "sink.h"

namespace zerotrace::otlp_sink {

class OtlpGrpcService final
    : public opentelemetry::proto::collector::trace::v1::TraceService::Service {
 public:
  explicit OtlpGrpcService(Sink* sink) : sink_(sink) {}

  // Failures carry the sink's retry hint as a google.rpc.RetryInfo detail
  // (grpc-status-details-bin).
  grpc::Status Export(grpc::ServerContext* context, const ExportRequest* request,
                      ExportResponse* response) override;

 private:
  Sink* sink_;
};

}  // namespace zerotrace::otlp_sink
