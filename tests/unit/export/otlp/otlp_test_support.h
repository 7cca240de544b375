// Test support for OTLP export: sample spans, the JSON view of a request, in-process receivers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "export/retry.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "trace/span.h"

namespace grpc {
class Server;
}

namespace zerotrace::exporter::testing {

using ExportRequest = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

// Three spans over two processes with every field and attribute type, ill-formed UTF-8, control
// characters, NaN and the extreme timestamps: what the encoders must agree on.
std::vector<trace::Span> TrickyBatch();
// n server/client spans as the HTTP/1.x stitcher makes them: 15 attributes, 4 processes.
std::vector<trace::Span> TypicalBatch(int n);

// A request in the exact shape ToOtlpJson writes (hex ids, 64-bit integers as strings, enums as
// integers, "status" always present), to compare with json::parse(ToOtlpJson(spans)).
nlohmann::json ToJsonShape(const ExportRequest& request);

std::string Gunzip(const std::string& gz);  // throws on malformed input

// Virtual time: sleeps return at once, advance the clock and are recorded.
class FakeSleeper final : public Sleeper {
 public:
  RetryClock::time_point Now() override;
  bool SleepUntil(RetryClock::time_point until) override;
  void Limit(RetryClock::time_point limit) override;
  void Advance(std::chrono::milliseconds d);
  std::vector<std::chrono::milliseconds> sleeps();

 private:
  std::mutex mu_;
  RetryClock::time_point now_ = RetryClock::now();
  RetryClock::time_point limit_ = RetryClock::time_point::max();
  std::vector<std::chrono::milliseconds> sleeps_;
};

// What a receiver answers to one request.
struct Reply {
  int grpc_code = 0;  // gRPC status code (0: OK)
  int http_status = 200;
  std::string message;                                   // gRPC status message / error text
  std::optional<std::chrono::milliseconds> retry_after;  // RetryInfo / Retry-After seconds
  int64_t rejected_spans = 0;                            // partial_success
  std::string partial_message;
  // Hold the answer this long (the receiver's Stop() cuts it short): a slow collector.
  std::chrono::milliseconds hold{0};
};

// One request as a receiver saw it.
struct Received {
  std::map<std::string, std::string> headers;  // gRPC metadata or HTTP headers, keys lowercase
  std::string body;                            // HTTP: the raw body
  ExportRequest request;                       // parsed (HTTP: after gunzip, protobuf or JSON)
  bool json = false;                           // HTTP: the body was OTLP/JSON
  bool grpc_gzip = false;                      // gRPC: the request message was gzip-compressed
  nlohmann::json json_body;                    // HTTP JSON bodies, parsed
};

// Replies in order from a script, then `fallback`; records requests (unless record=false).
class ReplyScript {
 public:
  void Set(std::vector<Reply> replies, Reply fallback = {});
  void Reset();  // forgets what was received
  Reply Next();
  void Record(Received r);
  // Waits (bounded) until n requests were seen; false on timeout.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout);
  std::vector<Received> received();
  size_t count();
  uint64_t spans();  // spans in all requests so far
  void AddSpans(uint64_t n);
  void set_record(bool record) { record_ = record; }
  bool record() const { return record_; }
  // Holds the caller for reply.hold unless Stop() comes first.
  void Hold(const Reply& reply);
  void Stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Reply> script_;
  size_t next_ = 0;
  Reply fallback_;
  std::vector<Received> received_;
  size_t count_ = 0;
  uint64_t spans_ = 0;
  bool record_ = true;
  bool stopped_ = false;
};

// A grpc++ synchronous TraceService on 127.0.0.1:<ephemeral>.
class GrpcReceiver {
 public:
  explicit GrpcReceiver(int port = 0);
  ~GrpcReceiver();
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  ReplyScript& script() { return script_; }
  void Stop();

 private:
  class Service;
  ReplyScript script_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A TraceService that takes requests as raw bytes and answers OK without parsing them: a sink
// as cheap as HttpReceiver with record off, for benchmarks.
class RawGrpcReceiver {
 public:
  RawGrpcReceiver();
  ~RawGrpcReceiver();
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  ReplyScript& script() { return script_; }

 private:
  class Service;
  ReplyScript script_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A one-thread HTTP/1.1 server on 127.0.0.1:<ephemeral>: keep-alive, Content-Length bodies.
class HttpReceiver {
 public:
  HttpReceiver();
  ~HttpReceiver();
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces";
  }
  ReplyScript& script() { return script_; }
  void Stop();

 private:
  void Run();
  void Serve(int fd);
  ReplyScript script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex fd_mu_;
  int conn_fd_ = -1;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace zerotrace::exporter::testing
