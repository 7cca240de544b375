// OTLP/gRPC: one channel, one unary Export per attempt with the attempt's deadline.
#include "export/otlp_grpc_exporter.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "export/otlp_proto.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

#ifndef ZT_VERSION
#define ZT_VERSION "0.0.0"
#endif

namespace zerotrace::exporter {
namespace {

namespace collector = opentelemetry::proto::collector::trace::v1;

constexpr char kExportMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return Status::Error(std::string("cannot read the ") + what + " file '" + path + "'");
  }
  return text.str();
}

}  // namespace

StatusOr<std::shared_ptr<grpc::Channel>> MakeOtlpGrpcChannel(const OtlpConfig& config,
                                                             int max_backoff_ms) {
  auto url = ParseEndpointUrl(config.endpoint, /*allow_no_scheme=*/true);
  if (!url.ok()) return url.status();
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (config.insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;  // empty roots: gRPC's default (system) roots
    if (!config.certificate.empty()) {
      auto pem = ReadPem(config.certificate, "CA certificate");
      if (!pem.ok()) return pem.status();
      ssl.pem_root_certs = std::move(*pem);
    }
    if (!config.client_key.empty() || !config.client_certificate.empty()) {
      auto key = ReadPem(config.client_key, "client key");
      if (!key.ok()) return key.status();
      auto cert = ReadPem(config.client_certificate, "client certificate");
      if (!cert.ok()) return cert.status();
      ssl.pem_private_key = std::move(*key);
      ssl.pem_cert_chain = std::move(*cert);
    }
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetUserAgentPrefix("zerotrace/" ZT_VERSION);
  // gRPC's own reconnect backoff grows to 120 s; keep it within our retry cadence so a
  // collector that comes back is used by the next retry.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(1000, max_backoff_ms));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(1000, max_backoff_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 4 << 20);
  return grpc::CreateCustomChannel(GrpcTarget(*url), creds, args);
}

StatusOr<std::unique_ptr<OtlpGrpcExporter>> OtlpGrpcExporter::Create(const OtlpConfig& config,
                                                                     OtlpExporterOptions options) {
  const int max_backoff_ms =
      static_cast<int>(std::clamp<int64_t>(options.retry.max_backoff.count(), 100, 30000));
  auto channel = MakeOtlpGrpcChannel(config, max_backoff_ms);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<OtlpGrpcExporter>(
      new OtlpGrpcExporter(config, std::move(options), std::move(channel.value())));
}

OtlpGrpcExporter::OtlpGrpcExporter(const OtlpConfig& config, OtlpExporterOptions options,
                                   std::shared_ptr<grpc::Channel> channel)
    : OtlpExporterBase(config, std::move(options)), channel_(std::move(channel)), stub_(channel_) {}

OtlpGrpcExporter::~OtlpGrpcExporter() {
  cq_.Shutdown();
  void* tag;
  bool ok;
  while (cq_.Next(&tag, &ok)) {
  }
}

size_t OtlpGrpcExporter::Encode(const std::vector<trace::Span>& spans) {
  body_.clear();
  AppendOtlpProto(spans, &body_);
  return body_.size();
}

size_t OtlpGrpcExporter::Assemble(std::span<const EncodedSpan> spans) {
  AssignOtlpProto(spans, &body_);
  return body_.size();
}

AttemptResult OtlpGrpcExporter::Send(std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  if (config_.gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  for (const auto& [key, value] : config_.headers) context.AddMetadata(key, value);
  grpc::Status status;
  grpc::ByteBuffer response;
  {
    std::lock_guard lock(cancel_mu_);
    if (cancelled_) {
      AttemptResult cancelled;
      cancelled.kind = AttemptResult::Kind::kRetryable;
      cancelled.reason = "CANCELLED";
      cancelled.message = "the agent is stopping";
      cancelled.unreachable = true;
      return cancelled;
    }
    active_ = &context;
  }
  {
    // body_ outlives the call (it changes only in the next Encode), so gRPC may borrow it.
    grpc::Slice slice(body_.data(), body_.size(), grpc::Slice::STATIC_SLICE);
    grpc::ByteBuffer request(&slice, 1);
    auto call = stub_.PrepareUnaryCall(&context, kExportMethod, request, &cq_);
    call->StartCall();
    call->Finish(&response, &status, this);
    void* tag = nullptr;
    bool ok = false;
    const bool next = cq_.Next(&tag, &ok);
    {
      std::lock_guard lock(cancel_mu_);
      active_ = nullptr;
    }
    if (!next) {
      AttemptResult closed;
      closed.kind = AttemptResult::Kind::kPermanent;
      closed.reason = "shut down";
      return closed;
    }
  }
  counters_.bytes_sent.fetch_add(body_.size(), std::memory_order_relaxed);
  AttemptResult result =
      ClassifyGrpc(status.error_code(), status.error_message(), status.error_details());
  // No answer from the collector: the call timed out or was cancelled, or it failed while the
  // channel has no connection (refused, unreachable). An UNAVAILABLE the server itself sent
  // comes over a connected channel.
  const grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/false);
  result.unreachable = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                       status.error_code() == grpc::StatusCode::CANCELLED ||
                       (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
                        state != GRPC_CHANNEL_READY && !result.server_delay);
  if (status.ok() && response.Length() > 0) {
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (response.Dump(&slices).ok()) {
      for (const grpc::Slice& piece : slices) {
        bytes.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
      }
    }
    collector::ExportTraceServiceResponse parsed;
    if (parsed.ParseFromString(bytes) && parsed.has_partial_success()) {
      result.rejected_spans = parsed.partial_success().rejected_spans();
      result.partial_message = parsed.partial_success().error_message();
    }
  }
  return result;
}

void OtlpGrpcExporter::CancelAttempt() {
  std::lock_guard lock(cancel_mu_);
  cancelled_ = true;
  if (active_ != nullptr) active_->TryCancel();  // the call ends with CANCELLED
}

StatusOr<std::unique_ptr<SpanExporter>> MakeOtlpGrpcExporter(const OtlpConfig& config,
                                                             OtlpExporterOptions options) {
  auto made = OtlpGrpcExporter::Create(config, std::move(options));
  if (!made.ok()) return made.status();
  return std::unique_ptr<SpanExporter>(std::move(made.value()));
}

}  // namespace zerotrace::exporter
