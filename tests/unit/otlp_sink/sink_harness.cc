// Test harness for otlp-sink: process startup reads the announced ports; clients with deadlines.
#include "sink_harness.h"

#include <arpa/inet.h>
#include <google/protobuf/any.pb.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <thread>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace zerotrace::otlp_sink::testing {
namespace {

using opentelemetry::proto::collector::trace::v1::TraceService;
using opentelemetry::proto::trace::v1::Span;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::vector<std::string> FileLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

std::string SinkBinary() { return ZT_OTLP_SINK; }

ExportRequest MakeRequest(int n, int seed, const std::string& service) {
  ExportRequest r;
  auto* rs = r.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value(service);
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("zerotrace");
  for (int i = 0; i < n; i++) {
    Span* s = ss->add_spans();
    s->set_trace_id(std::string(15, '\x5b') + static_cast<char>(seed));
    s->set_span_id(std::string(7, '\x0e') + static_cast<char>(i));
    if (i > 0) s->set_parent_span_id(std::string(7, '\x0e') + '\0');
    s->set_name("GET /items/" + std::to_string(i));
    s->set_kind(i == 0 ? Span::SPAN_KIND_SERVER : Span::SPAN_KIND_CLIENT);
    s->set_start_time_unix_nano(1700000000000000000u + i);
    s->set_end_time_unix_nano(1700000000001500000u + i);
    auto* a = s->add_attributes();
    a->set_key("http.response.status_code");
    a->mutable_value()->set_int_value(200);
    auto* b = s->add_attributes();
    b->set_key("url.path");
    b->mutable_value()->set_string_value("/items/" + std::to_string(i));
  }
  return r;
}

SinkProcess::SinkProcess(std::vector<std::string> flags, bool jsonl)
    : jsonl_(dir_.path() + "/spans.jsonl"), requests_(dir_.path() + "/requests.jsonl") {
  std::vector<std::string> argv = {ZT_OTLP_SINK,  "--grpc",         "127.0.0.1:0", "--http",
                                   "127.0.0.1:0", "--requests-log", requests_};
  if (jsonl) argv.insert(argv.end(), {"--jsonl", jsonl_});
  argv.insert(argv.end(), flags.begin(), flags.end());
  proc_ = std::make_unique<zerotrace::testing::Subprocess>(argv);
  for (const char* transport : {"grpc", "http"}) {
    const auto line = proc_->ReadLine(kTimeout);
    const std::string prefix = std::string("otlp-sink: ") + transport + " listening on 127.0.0.1:";
    if (!line || line->rfind(prefix, 0) != 0) {
      ADD_FAILURE() << "expected \"" << prefix << "PORT\", got " << line.value_or("(nothing)");
      return;
    }
    (std::string(transport) == "grpc" ? grpc_port_ : http_port_) =
        std::stoi(line->substr(prefix.size()));
  }
}

SinkProcess::~SinkProcess() {
  if (proc_ && !terminated_) Terminate();
}

int SinkProcess::Terminate() {
  terminated_ = true;
  kill(proc_->pid(), SIGTERM);
  return proc_->Wait(kTimeout);
}

std::vector<std::string> SinkProcess::SpanLines() const { return FileLines(jsonl_); }

std::vector<nlohmann::json> SinkProcess::Requests() const {
  std::vector<nlohmann::json> out;
  for (const auto& line : FileLines(requests_)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<nlohmann::json> SinkProcess::AwaitRequests(size_t n) const {
  const auto deadline = Clock::now() + kTimeout;
  while (Requests().size() < n && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  return Requests();
}

GrpcResult GrpcExport(int port, const ExportRequest& request, bool gzip,
                      std::vector<std::pair<std::string, std::string>> metadata,
                      milliseconds deadline) {
  grpc::ChannelArguments args;
  if (gzip) args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = TraceService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  for (const auto& [k, v] : metadata) context.AddMetadata(k, v);
  GrpcResult result;
  const auto start = Clock::now();
  result.status = stub->Export(&context, request, &result.response);
  result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return result;
}

std::string HttpReply::Header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpConnection::HttpConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
}

HttpConnection::~HttpConnection() { close(fd_); }

void HttpConnection::Send(const std::string& data) {
  sent_at_ = Clock::now();
  ASSERT_EQ(send(fd_, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
}

std::optional<HttpReply> HttpConnection::Read(milliseconds timeout) {
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  size_t head_end;
  while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill(deadline)) return std::nullopt;
  }
  HttpReply reply;
  const std::string head = buf_.substr(0, head_end);
  buf_.erase(0, head_end + 4);
  reply.status = std::stoi(head.substr(9, 3));  // "HTTP/1.1 200 OK"
  for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string field =
        head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
    const size_t colon = field.find(':');
    std::string name = field.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = field.substr(field.find_first_not_of(' ', colon + 1));
    pos = next;
  }
  const std::string length_text = reply.Header("content-length");
  const size_t length = length_text.empty() ? 0 : std::stoul(length_text);
  while (buf_.size() < length) {
    if (!Fill(deadline)) return std::nullopt;
  }
  reply.body = buf_.substr(0, length);
  buf_.erase(0, length);
  reply.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - sent_at_.value_or(start));
  return reply;
}

bool HttpConnection::ClosedByPeer(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Fill(deadline)) {
  }
  return eof_;
}

bool HttpConnection::Fill(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  pollfd p = {fd_, POLLIN, 0};
  if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return false;
  char chunk[65536];
  const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(chunk, static_cast<size_t>(n));
  return true;
}

std::string PostRequest(const std::string& body, const std::string& content_type,
                        const std::string& extra_headers, const std::string& target) {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" +
         body;
}

std::optional<HttpReply> HttpPost(int port, const std::string& body,
                                  const std::string& content_type,
                                  const std::string& extra_headers) {
  HttpConnection conn(port);
  conn.Send(PostRequest(body, content_type, extra_headers));
  return conn.Read();
}

std::pair<int, int64_t> DecodeRpcStatus(const std::string& bytes) {
  google::protobuf::UnknownFieldSet status;
  EXPECT_TRUE(status.ParseFromString(bytes));
  int code = 0;
  int64_t delay_ms = -1;
  for (int i = 0; i < status.field_count(); i++) {
    const auto& f = status.field(i);
    if (f.number() == 1) code = static_cast<int>(f.varint());
    if (f.number() != 3) continue;  // google.rpc.Status.details
    google::protobuf::Any any;
    EXPECT_TRUE(any.ParseFromString(f.length_delimited()));
    EXPECT_EQ(any.type_url(), "type.googleapis.com/google.rpc.RetryInfo");
    google::protobuf::UnknownFieldSet retry_info;
    EXPECT_TRUE(retry_info.ParseFromString(any.value()));
    google::protobuf::Duration d;
    EXPECT_TRUE(d.ParseFromString(retry_info.field(0).length_delimited()));
    delay_ms = d.seconds() * 1000 + d.nanos() / 1000000;
  }
  return {code, delay_ms};
}

}  // namespace zerotrace::otlp_sink::testing
