// OtlpGrpcService: request metadata and compression in, the Sink's answer out as a grpc::Status.
#include "otlp_grpc.h"

#include <google/protobuf/arena.h>
#include <grpc/compression.h>
#include <pthread.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "rpc_status.h"
#include "wire_count.h"

// grpc++ has no public accessor for the compression of a received call; grpc's own interop
// server (test/cpp/interop) reads it with this core function, exported by libgrpc.
grpc_compression_algorithm grpc_call_test_only_get_compression_algorithm(grpc_call* call);

namespace zerotrace::otlp_sink {
namespace {

class ArenaMessageHolder final : public grpc::MessageHolder<ExportRequest, ExportResponse> {
 public:
  ArenaMessageHolder() : arena_(RequestArenaOptions()) {
    set_request(google::protobuf::Arena::CreateMessage<ExportRequest>(&arena_));
    set_response(google::protobuf::Arena::CreateMessage<ExportResponse>(&arena_));
  }
  // gRPC calls this once the call is done with both messages.
  void Release() override { delete this; }

 private:
  google::protobuf::Arena arena_;
};

RequestMeta ReadMeta(grpc::CallbackServerContext* context) {
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
  return meta;
}

// The sink's answer as the call's status (and response, when accepted).
grpc::Status ToStatus(const Answer& answer, ExportResponse* response) {
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

grpc::Status HandleExport(Sink& sink, grpc::CallbackServerContext* context,
                          const ExportRequest& request, const RequestMeta& meta,
                          ExportResponse* response) {
  return ToStatus(sink.Handle(request, meta, [context] { return context->IsCancelled(); }),
                  response);
}

// --count-only: counts the spans of the request's bytes; the response is serialized by hand.
grpc::Status HandleCounted(Sink& sink, grpc::CallbackServerContext* context,
                           const grpc::ByteBuffer& request, const RequestMeta& meta,
                           grpc::ByteBuffer* response) {
  grpc::Slice bytes;
  std::optional<int64_t> spans;
  if (request.DumpToSingleSlice(&bytes).ok()) {
    spans = CountSpansInWire(
        std::string_view(reinterpret_cast<const char*>(bytes.begin()), bytes.size()));
  }
  if (!spans) {
    const std::string error = "request is not a protobuf ExportTraceServiceRequest";
    sink.RecordInvalid(meta, 3, error);  // INVALID_ARGUMENT
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, error);
  }
  ExportResponse answer;
  const grpc::Status status = ToStatus(
      sink.HandleCounted(*spans, meta, [context] { return context->IsCancelled(); }), &answer);
  grpc::Slice out(answer.SerializeAsString());
  *response = grpc::ByteBuffer(&out, 1);
  return status;
}

// Finishes the call with answer(meta): inline, or with --delay-ms on a thread of its own
// (callback threads must not block). The call's context and messages stay valid until it is
// done, which Finish starts.
template <typename AnswerFn>
grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context, const Sink& sink,
                                  ThreadPerJob& delayed, AnswerFn answer) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  RequestMeta meta = ReadMeta(context);
  if (!sink.MayBlock()) {
    reactor->Finish(answer(meta));
    return reactor;
  }
  delayed.Run([reactor, answer = std::move(answer), meta = std::move(meta)] {
    reactor->Finish(answer(meta));
  });
  return reactor;
}

}  // namespace

grpc::MessageHolder<ExportRequest, ExportResponse>* ArenaMessageAllocator::AllocateMessages() {
  return new ArenaMessageHolder();
}

ThreadPerJob::~ThreadPerJob() {
  std::map<std::thread::id, std::thread> running;
  {
    std::lock_guard lock(mu_);
    running.swap(running_);
  }
  for (auto& [id, thread] : running) thread.join();
}

void ThreadPerJob::Run(std::function<void()> job) {
  std::lock_guard lock(mu_);
  for (const std::thread::id id : done_) {
    auto it = running_.find(id);
    it->second.join();  // its job is over; only the thread's exit is left
    running_.erase(it);
  }
  done_.clear();
  // The new thread cannot report done before it is in running_: that needs mu_.
  std::thread thread([this, job = std::move(job)] {
    pthread_setname_np(pthread_self(), name_.c_str());
    job();
    std::lock_guard lock(mu_);
    done_.push_back(std::this_thread::get_id());
  });
  const std::thread::id id = thread.get_id();
  running_.emplace(id, std::move(thread));
}

OtlpGrpcService::OtlpGrpcService(Sink* sink) : sink_(sink) {
  SetMessageAllocatorFor_Export(&allocator_);
}

grpc::ServerUnaryReactor* OtlpGrpcService::Export(grpc::CallbackServerContext* context,
                                                  const ExportRequest* request,
                                                  ExportResponse* response) {
  return Respond(context, *sink_, delayed_,
                 [this, context, request, response](const RequestMeta& meta) {
                   return HandleExport(*sink_, context, *request, meta, response);
                 });
}

grpc::ServerUnaryReactor* CountingGrpcService::Export(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* request,
                                                      grpc::ByteBuffer* response) {
  return Respond(context, *sink_, delayed_,
                 [this, context, request, response](const RequestMeta& meta) {
                   return HandleCounted(*sink_, context, *request, meta, response);
                 });
}

}  // namespace zerotrace::otlp_sink
