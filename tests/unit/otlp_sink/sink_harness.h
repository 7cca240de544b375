// Test harness for the otlp-sink binary: the process on free ports, a gRPC export, raw HTTP/1.1.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "otlp_json_codec.h"
#include "subprocess.h"

namespace zerotrace::otlp_sink::testing {

inline constexpr std::chrono::milliseconds kTimeout(20000);

// n spans of one service, with ids derived from `seed` so tests can tell requests apart:
// trace 5b..5b<seed>, span 0e..0e<i>, span i > 0 a child of span 0; 1.5 ms each.
ExportRequest MakeRequest(int n, int seed = 1, const std::string& service = "checkout");

// The otlp-sink executable under test.
std::string SinkBinary();

// A running otlp-sink on free ports, writing its files into a temporary
// directory; SIGTERMed when destroyed.
class SinkProcess {
 public:
  // `flags` come after --grpc/--http/--requests-log[/--jsonl] and so may override them.
  explicit SinkProcess(std::vector<std::string> flags, bool jsonl = true);
  ~SinkProcess();
  SinkProcess(const SinkProcess&) = delete;
  SinkProcess& operator=(const SinkProcess&) = delete;

  // SIGTERM; returns the exit status.
  int Terminate();
  zerotrace::testing::Subprocess& proc() { return *proc_; }
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  std::vector<std::string> SpanLines() const;
  std::vector<nlohmann::json> Requests() const;
  // Polls the request log until it has n lines (it is written before each answer; a request
  // whose client gave up may be logged after the client saw its error).
  std::vector<nlohmann::json> AwaitRequests(size_t n) const;

 private:
  zerotrace::testing::TempDir dir_;
  std::string jsonl_, requests_;
  std::unique_ptr<zerotrace::testing::Subprocess> proc_;
  int grpc_port_ = 0, http_port_ = 0;
  bool terminated_ = false;
};

struct GrpcResult {
  grpc::Status status;
  ExportResponse response;
  std::chrono::milliseconds elapsed;
};

// One TraceService/Export call on a fresh channel.
GrpcResult GrpcExport(int port, const ExportRequest& request, bool gzip = false,
                      std::vector<std::pair<std::string, std::string>> metadata = {},
                      std::chrono::milliseconds deadline = kTimeout);

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercase
  std::string body;
  std::chrono::milliseconds elapsed{0};  // from the last Send (or from Read without one)

  std::string Header(const std::string& name) const;
};

// One TCP connection speaking raw HTTP/1.1, with deadlines on every read.
class HttpConnection {
 public:
  explicit HttpConnection(int port);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  void Send(const std::string& data);
  // Reads one response (an interim 1xx response is a reply of its own).
  std::optional<HttpReply> Read(std::chrono::milliseconds timeout = kTimeout);
  // True when the server closes the connection before the deadline.
  bool ClosedByPeer(std::chrono::milliseconds timeout = kTimeout);

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_;
  std::string buf_;
  bool eof_ = false;
  // When the last Send began: a reply's elapsed time counts from there, since the server may
  // start answering (and waiting out a delay) before Read is called.
  std::optional<std::chrono::steady_clock::time_point> sent_at_;
};

// A complete POST request with Content-Length.
std::string PostRequest(const std::string& body, const std::string& content_type,
                        const std::string& extra_headers = "",
                        const std::string& target = "/v1/traces");
// POST on a fresh connection; the reply.
std::optional<HttpReply> HttpPost(int port, const std::string& body,
                                  const std::string& content_type,
                                  const std::string& extra_headers = "");

// A google.rpc.Status decoded with protobuf's generic tools (independent of the sink's
// encoder): the code and the RetryInfo delay in ms (-1 without one).
std::pair<int, int64_t> DecodeRpcStatus(const std::string& bytes);

}  // namespace zerotrace::otlp_sink::testing
