// OtlpGrpcService: request metadata and compression in, the Sink's answer out as a grpc::Status.
#include "otlp_grpc.h"

#include <grpc/compression.h>

#include <algorithm>
#include <string>

#include "rpc_status.h"

// grpc++ has no public accessor for the compression of a received call; grpc's own interop
// server (test/cpp/interop) reads it with this core function, exported by libgrpc.
grpc_compression_algorithm grpc_call_test_only_get_compression_algorithm(grpc_call* call);

namespace zerotrace::otlp_sink {

grpc::Status OtlpGrpcService::Export(grpc::ServerContext* context, const ExportRequest* request,
                                     ExportResponse* response) {
  RequestMeta meta;
  meta.transport = Transport::kGrpc;
  meta.encoding = Encoding::kProtobuf;
  meta.gzip =
      grpc_call_test_only_get_compression_algorithm(context->c_call()) == GRPC_COMPRESS_GZIP;
  for (const auto& [key, value] : context->client_metadata()) {
    const std::string name(key.data(), key.size());
    if (name.rfind("x-", 0) != 0) continue;
    const std::string text(value.data(), value.size());
    auto it = std::find_if(meta.headers.begin(), meta.headers.end(),
                           [&](const auto& h) { return h.first == name; });
    if (it == meta.headers.end()) {
      meta.headers.emplace_back(name, text);
    } else {
      it->second += ", " + text;
    }
  }
  // multimap order is by key; keep the log stable regardless.
  std::sort(meta.headers.begin(), meta.headers.end());

  const Answer answer = sink_->Handle(*request, meta, [context] { return context->IsCancelled(); });
  if (answer.kind != Answer::Kind::kAccepted) {
    const auto code = static_cast<grpc::StatusCode>(answer.grpc_code);
    if (!answer.retry_after) return grpc::Status(code, answer.message);
    return grpc::Status(code, answer.message,
                        EncodeRpcStatus(answer.grpc_code, answer.message, answer.retry_after));
  }
  if (answer.rejected_spans > 0) {
    response->mutable_partial_success()->set_rejected_spans(answer.rejected_spans);
    response->mutable_partial_success()->set_error_message(answer.error_message);
  }
  return grpc::Status::OK;
}

}  // namespace zerotrace::otlp_sink
