// OTLP/gRPC span exporter: TraceService/Export over grpc++, TLS or plaintext, gzip, retries.
#pragma once

#include <grpcpp/completion_queue.h>
#include <grpcpp/generic/generic_stub.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "export/otlp_config.h"
#include "export/otlp_exporter_base.h"

namespace zerotrace::exporter {

class OtlpGrpcExporter final : public OtlpExporterBase {
 public:
  // A channel to config.endpoint (it connects lazily: a collector that is down now is no
  // error). Errors: an endpoint that does not parse, certificate files that cannot be read.
  static StatusOr<std::unique_ptr<OtlpGrpcExporter>> Create(const OtlpConfig& config,
                                                            OtlpExporterOptions options = {});

  ~OtlpGrpcExporter() override;

  const char* name() const override { return "otlp-grpc"; }

 private:
  OtlpGrpcExporter(const OtlpConfig& config, OtlpExporterOptions options,
                   std::shared_ptr<grpc::Channel> channel);
  size_t Encode(const std::vector<trace::Span>& spans) override;
  size_t Assemble(std::span<const EncodedSpan> spans) override;
  bool TakesProto() const override { return true; }
  AttemptResult Send(std::chrono::milliseconds timeout) override;
  void CancelAttempt() override;

  std::shared_ptr<grpc::Channel> channel_;
  // TraceService/Export called with the request's wire bytes (AppendOtlpProto): no message
  // objects are built on the hot path. One call at a time, waited for on our own queue.
  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  std::string body_;  // the encoded batch, reused
  std::mutex cancel_mu_;
  grpc::ClientContext* active_ = nullptr;  // the call in flight, if any
  bool cancelled_ = false;                 // CancelAttempt ran: no call starts any more
};

// A channel to config.endpoint with its TLS settings (the metrics exporter shares this).
// `max_backoff_ms` bounds gRPC's reconnect backoff.
StatusOr<std::shared_ptr<grpc::Channel>> MakeOtlpGrpcChannel(const OtlpConfig& config,
                                                             int max_backoff_ms);

// Create() as the SpanExporter interface, for the agent's exporter list.
StatusOr<std::unique_ptr<SpanExporter>> MakeOtlpGrpcExporter(const OtlpConfig& config,
                                                             OtlpExporterOptions options = {});

}  // namespace zerotrace::exporter
