// OTLP/gRPC: a callback opentelemetry.proto.collector.trace.v1.TraceService answered by a Sink.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "sink.h"

namespace zerotrace::otlp_sink {

// Parses each request into an Arena of its own: a few blocks per request instead of several
// heap objects per span and attribute, all freed at once when the call is done.
class ArenaMessageAllocator final : public grpc::MessageAllocator<ExportRequest, ExportResponse> {
 public:
  grpc::MessageHolder<ExportRequest, ExportResponse>* AllocateMessages() override;
};

// Runs each job on a thread of its own; the destructor waits for them all.
class ThreadPerJob {
 public:
  // The threads' name (at most 15 characters), for top -H and tests.
  explicit ThreadPerJob(std::string name) : name_(std::move(name)) {}
  ~ThreadPerJob();
  ThreadPerJob(const ThreadPerJob&) = delete;
  ThreadPerJob& operator=(const ThreadPerJob&) = delete;

  void Run(std::function<void()> job);

 private:
  const std::string name_;
  std::mutex mu_;
  std::map<std::thread::id, std::thread> running_;
  std::vector<std::thread::id> done_;  // finished jobs, joined at the next Run
};

class OtlpGrpcService final
    : public opentelemetry::proto::collector::trace::v1::TraceService::CallbackService {
 public:
  explicit OtlpGrpcService(Sink* sink);
  // The server must have been shut down: waits for the threads of delayed answers.
  ~OtlpGrpcService() override = default;

  // Answers on gRPC's callback thread, or with --delay-ms (Sink::MayBlock) on a thread of its
  // own, as callback threads must not block. Failures carry the sink's retry hint as a
  // google.rpc.RetryInfo detail (grpc-status-details-bin).
  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context,
                                   const ExportRequest* request, ExportResponse* response) override;

 private:
  Sink* sink_;
  ArenaMessageAllocator allocator_;
  // Declared last: joined first, while the rest is alive. The name marks a held request.
  ThreadPerJob delayed_{"otlp-sink-delay"};
};

// --count-only: the request stays bytes; its spans are counted from the wire (wire_count.h).
// A request whose framing is broken is answered INVALID_ARGUMENT. Delays as above.
class CountingGrpcService final
    : public opentelemetry::proto::collector::trace::v1::TraceService::WithRawCallbackMethod_Export<
          opentelemetry::proto::collector::trace::v1::TraceService::Service> {
 public:
  explicit CountingGrpcService(Sink* sink) : sink_(sink) {}
  ~CountingGrpcService() override = default;

  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;

 private:
  Sink* sink_;
  ThreadPerJob delayed_{"otlp-sink-delay"};  // declared last, as in OtlpGrpcService
};

}  // namespace zerotrace::otlp_sink
