// Sample spans and receivers that answer like a healthy, failing or slow collector.
#include "otlp_test_support.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "export/retry.h"

// libgrpc's (C++-linkage) test hook for a call's incoming compression: grpc-encoding is consumed
// by gRPC core and never reaches the server's metadata map.
grpc_compression_algorithm grpc_call_test_only_get_compression_algorithm(grpc_call* call);

namespace zerotrace::exporter::testing {
namespace {

namespace collector = opentelemetry::proto::collector::trace::v1;
namespace common = opentelemetry::proto::common::v1;
using nlohmann::json;
using trace::Resource;
using trace::Span;

std::string Hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

json AnyValueJson(const common::AnyValue& v) {
  switch (v.value_case()) {
    case common::AnyValue::kStringValue:
      return {{"stringValue", v.string_value()}};
    case common::AnyValue::kBoolValue:
      return {{"boolValue", v.bool_value()}};
    case common::AnyValue::kIntValue:
      return {{"intValue", std::to_string(v.int_value())}};
    case common::AnyValue::kDoubleValue: {
      const double d = v.double_value();
      if (std::isnan(d)) return {{"doubleValue", "NaN"}};
      if (std::isinf(d)) return {{"doubleValue", d > 0 ? "Infinity" : "-Infinity"}};
      return {{"doubleValue", d}};
    }
    case common::AnyValue::kArrayValue: {
      json values = json::array();
      for (const auto& item : v.array_value().values()) values.push_back(AnyValueJson(item));
      return {{"arrayValue", {{"values", values}}}};
    }
    default:
      return {{"unexpected", static_cast<int>(v.value_case())}};
  }
}

json KeyValuesJson(const google::protobuf::RepeatedPtrField<common::KeyValue>& list) {
  json out = json::array();
  for (const auto& kv : list)
    out.push_back({{"key", kv.key()}, {"value", AnyValueJson(kv.value())}});
  return out;
}

trace::TraceId TraceIdOf(uint8_t seed) {
  trace::TraceId id;
  for (size_t i = 0; i < id.bytes.size(); i++) id.bytes[i] = static_cast<uint8_t>(seed + 17 * i);
  return id;
}

trace::SpanId SpanIdOf(uint8_t seed) {
  trace::SpanId id;
  for (size_t i = 0; i < id.bytes.size(); i++) id.bytes[i] = static_cast<uint8_t>(seed + 31 * i);
  return id;
}

uint64_t CountSpans(const ExportRequest& r) {
  uint64_t n = 0;
  for (const auto& rs : r.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) n += static_cast<uint64_t>(ss.spans_size());
  }
  return n;
}

}  // namespace

std::vector<Span> TrickyBatch() {
  auto web = std::make_shared<Resource>();
  web->service_name = "web\xff";  // ill-formed UTF-8 in a resource attribute
  web->pid = 4242;
  web->executable_name = "node";
  web->executable_path = "/usr/bin/node";
  web->host_name = "node-1";
  web->service_instance_id = "8f0e2c1a-5b6d-8e7f-9a0b-1c2d3e4f5a6b";
  web->runtime_name = "nodejs";
  web->command_args = {"node", "/srv/web\xff.js", "", "--token=REDACTED"};
  web->k8s_pod_uid = "0c1d2e3f-aaaa-bbbb-cccc-0123456789ab";
  web->k8s_pod_name = "web-1";
  web->k8s_namespace_name = "shop";
  web->k8s_container_name = "web";
  web->extra = {{"k8s.node.name", std::string("node-1")},
                {"deployment.replicas", int64_t{3}},
                {"service.name", std::string("ignored: the agent's value wins")},
                {"k8s.node.name", std::string("ignored: duplicate")}};
  auto web_copy = std::make_shared<Resource>(*web);  // equal content, another pointer
  auto worker = std::make_shared<Resource>();
  worker->pid = 77;  // no service name: unknown_service:python3
  worker->executable_name = "python3";
  worker->container_id = "c0ffee";
  worker->container_name = "worker-1";

  Span root;
  root.trace_id = TraceIdOf(1);
  root.span_id = SpanIdOf(2);
  root.trace_state = "vendor=a1";
  root.name = "GET /caf\xc3\xa9/{id}";
  root.kind = trace::SpanKind::kServer;
  root.start_unix_ns = 0;
  root.end_unix_ns = std::numeric_limits<uint64_t>::max();
  root.attributes = {{"http.request.method", std::string("GET")},
                     {"url.path", std::string("/a\"b\\c\n\t\x01\xe2\x82")},  // truncated UTF-8
                     {"http.response.status_code", int64_t{200}},
                     {"negative", std::numeric_limits<int64_t>::min()},
                     {"zerotrace.sampled", true},
                     {"off", false},
                     {"ratio", 0.1},
                     {"one", 1.0},
                     {"nan", std::nan("")},
                     {"inf", -std::numeric_limits<double>::infinity()},
                     {"k\xed\xa0\x80", std::string("surrogate key")}};
  root.resource = web;

  Span child;
  child.trace_id = root.trace_id;
  child.span_id = SpanIdOf(3);
  child.parent_span_id = root.span_id;
  child.name = "POST";
  child.kind = trace::SpanKind::kClient;
  child.start_unix_ns = 1700000000123456789ull;
  child.end_unix_ns = 1700000000223456789ull;
  child.status = trace::StatusCode::kError;
  child.status_message = "503 \xc0\xaf";
  child.resource = worker;

  Span third;
  third.trace_id = TraceIdOf(9);
  third.span_id = SpanIdOf(10);
  third.name = "";
  third.kind = trace::SpanKind::kInternal;
  third.status = trace::StatusCode::kOk;
  third.resource = web_copy;
  return {root, child, third};
}

std::vector<Span> TypicalBatch(int n) {
  std::vector<std::shared_ptr<const Resource>> resources;
  for (int i = 0; i < 4; i++) {
    auto r = std::make_shared<Resource>();
    r->service_name = "service-" + std::to_string(i);
    r->pid = 1000 + i;
    r->executable_name = "python3";
    r->executable_path = "/usr/bin/python3.11";
    r->host_name = "node-1.example.internal";
    r->container_id = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00998877665544332211";
    r->service_instance_id = "8f0e2c1a-5b6d-8e7f-9a0b-1c2d3e4f5a6" + std::to_string(i);
    r->runtime_name = "cpython";
    r->command_args = {"python3", "-B", "/srv/service-" + std::to_string(i) + ".py", "--port",
                       "80" + std::to_string(i)};
    r->extra = {{"k8s.node.name", std::string("node-1")}};
    resources.push_back(r);
  }
  std::vector<Span> spans;
  spans.reserve(n);
  for (int i = 0; i < n; i++) {
    Span s;
    s.trace_id = trace::NewTraceId();
    s.span_id = trace::NewSpanId();
    if (i % 2) s.parent_span_id = trace::NewSpanId();
    s.name = "GET /api/v1/orders/{id}";
    s.kind = i % 2 ? trace::SpanKind::kClient : trace::SpanKind::kServer;
    s.start_unix_ns = 1704127234000000000ull + i * 1000003ull;
    s.end_unix_ns = s.start_unix_ns + 12345678;
    s.attributes = {
        {"http.request.method", std::string("GET")},
        {"url.path", "/api/v1/orders/" + std::to_string(100000 + i)},
        {"url.query", std::string("page=REDACTED&limit=REDACTED")},
        {"url.scheme", std::string("http")},
        {"server.address", std::string("orders.default.svc.cluster.local")},
        {"server.port", int64_t{8080}},
        {"client.address", std::string("10.244.1.17")},
        {"network.peer.address", std::string("10.244.1.17")},
        {"network.peer.port", int64_t{51234 + i}},
        {"network.protocol.version", std::string("1.1")},
        {"user_agent.original", std::string("Mozilla/5.0 (X11; Linux x86_64) curl/7.88.1")},
        {"http.response.status_code", int64_t{200}},
        {"http.request.body.size", int64_t{0}},
        {"http.response.body.size", int64_t{1024}},
        {"http.route", std::string("/api/v1/orders/{id}")},
    };
    s.resource = resources[i % 4];
    spans.push_back(std::move(s));
  }
  return spans;
}

json ToJsonShape(const ExportRequest& request) {
  json resource_spans = json::array();
  for (const auto& rs : request.resource_spans()) {
    json scope_spans = json::array();
    for (const auto& ss : rs.scope_spans()) {
      json spans = json::array();
      for (const auto& s : ss.spans()) {
        json span = {{"traceId", Hex(s.trace_id())}, {"spanId", Hex(s.span_id())}};
        if (!s.trace_state().empty()) span["traceState"] = s.trace_state();
        if (!s.parent_span_id().empty()) span["parentSpanId"] = Hex(s.parent_span_id());
        span["name"] = s.name();
        span["kind"] = static_cast<int>(s.kind());
        span["startTimeUnixNano"] = std::to_string(s.start_time_unix_nano());
        span["endTimeUnixNano"] = std::to_string(s.end_time_unix_nano());
        span["attributes"] = KeyValuesJson(s.attributes());
        json status = json::object();
        if (s.status().code() != 0) status["code"] = static_cast<int>(s.status().code());
        if (!s.status().message().empty()) status["message"] = s.status().message();
        span["status"] = status;
        spans.push_back(span);
      }
      scope_spans.push_back(
          {{"scope", {{"name", ss.scope().name()}, {"version", ss.scope().version()}}},
           {"spans", spans}});
    }
    resource_spans.push_back(
        {{"resource", {{"attributes", KeyValuesJson(rs.resource().attributes())}}},
         {"scopeSpans", scope_spans}});
  }
  return {{"resourceSpans", resource_spans}};
}

std::string Gunzip(const std::string& gz) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw std::runtime_error("inflateInit2");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    char buf[65536];
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("not a complete gzip stream");
  return out;
}

// ---- FakeSleeper ----

RetryClock::time_point FakeSleeper::Now() {
  std::lock_guard lock(mu_);
  return now_;
}

bool FakeSleeper::SleepUntil(RetryClock::time_point until) {
  std::lock_guard lock(mu_);
  if (until > limit_) return false;
  sleeps_.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(until - now_));
  now_ = std::max(now_, until);
  return true;
}

void FakeSleeper::Limit(RetryClock::time_point limit) {
  std::lock_guard lock(mu_);
  limit_ = std::min(limit_, limit);
}

void FakeSleeper::Advance(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  now_ += d;
}

std::vector<std::chrono::milliseconds> FakeSleeper::sleeps() {
  std::lock_guard lock(mu_);
  return sleeps_;
}

// ---- ReplyScript ----

void ReplyScript::Set(std::vector<Reply> replies, Reply fallback) {
  std::lock_guard lock(mu_);
  script_ = std::move(replies);
  next_ = 0;
  fallback_ = std::move(fallback);
}

void ReplyScript::Reset() {
  std::lock_guard lock(mu_);
  received_.clear();
  count_ = 0;
  spans_ = 0;
}

Reply ReplyScript::Next() {
  std::lock_guard lock(mu_);
  return next_ < script_.size() ? script_[next_++] : fallback_;
}

void ReplyScript::Record(Received r) {
  {
    std::lock_guard lock(mu_);
    count_++;
    if (record_) received_.push_back(std::move(r));
  }
  cv_.notify_all();
}

bool ReplyScript::WaitFor(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
}

std::vector<Received> ReplyScript::received() {
  std::lock_guard lock(mu_);
  return received_;
}

size_t ReplyScript::count() {
  std::lock_guard lock(mu_);
  return count_;
}

uint64_t ReplyScript::spans() {
  std::lock_guard lock(mu_);
  return spans_;
}

void ReplyScript::AddSpans(uint64_t n) {
  std::lock_guard lock(mu_);
  spans_ += n;
}

void ReplyScript::Hold(const Reply& reply) {
  if (reply.hold.count() == 0) return;
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, reply.hold, [this] { return stopped_; });
}

void ReplyScript::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

// ---- GrpcReceiver ----

class GrpcReceiver::Service final : public collector::TraceService::Service {
 public:
  explicit Service(ReplyScript* script) : script_(script) {}

  grpc::Status Export(grpc::ServerContext* context, const ExportRequest* request,
                      collector::ExportTraceServiceResponse* response) override {
    const Reply reply = script_->Next();
    script_->AddSpans(CountSpans(*request));
    if (script_->record()) {
      Received r;
      for (const auto& [k, v] : context->client_metadata()) {
        r.headers[std::string(k.data(), k.size())] = std::string(v.data(), v.size());
      }
      r.request = *request;
      r.grpc_gzip =
          grpc_call_test_only_get_compression_algorithm(context->c_call()) == GRPC_COMPRESS_GZIP;
      script_->Record(std::move(r));
    } else {
      script_->Record({});
    }
    script_->Hold(reply);
    if (reply.grpc_code != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(reply.grpc_code), reply.message,
                          reply.retry_after
                              ? EncodeRpcStatus(reply.grpc_code, reply.message, reply.retry_after)
                              : "");
    }
    if (reply.rejected_spans != 0 || !reply.partial_message.empty()) {
      response->mutable_partial_success()->set_rejected_spans(reply.rejected_spans);
      response->mutable_partial_success()->set_error_message(reply.partial_message);
    }
    return grpc::Status::OK;
  }

 private:
  ReplyScript* script_;
};

GrpcReceiver::GrpcReceiver(int port) : service_(std::make_unique<Service>(&script_)) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("gRPC receiver failed to start");
}

GrpcReceiver::~GrpcReceiver() { Stop(); }

void GrpcReceiver::Stop() {
  script_.Stop();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
    server_.reset();
  }
}

// ---- RawGrpcReceiver ----

class RawGrpcReceiver::Service final : public collector::TraceService::WithRawCallbackMethod_Export<
                                           collector::TraceService::Service> {
 public:
  explicit Service(ReplyScript* script) : script_(script) {}
  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context, const grpc::ByteBuffer*,
                                   grpc::ByteBuffer* response) override {
    script_->Record({});
    grpc::Slice empty;  // an empty ExportTraceServiceResponse is zero bytes
    *response = grpc::ByteBuffer(&empty, 1);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  ReplyScript* script_;
};

RawGrpcReceiver::RawGrpcReceiver() : service_(std::make_unique<Service>(&script_)) {
  script_.set_record(false);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("gRPC receiver failed to start");
}

RawGrpcReceiver::~RawGrpcReceiver() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
}

// ---- HttpReceiver ----

HttpReceiver::HttpReceiver() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(std::string("HTTP receiver: ") + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Run(); });
}

HttpReceiver::~HttpReceiver() { Stop(); }

void HttpReceiver::Stop() {
  script_.Stop();
  {
    std::lock_guard lock(fd_mu_);
    if (stopping_) return;
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    if (conn_fd_ >= 0) shutdown(conn_fd_, SHUT_RDWR);
  }
  thread_.join();
  close(listen_fd_);
}

void HttpReceiver::Run() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;  // shut down
    {
      std::lock_guard lock(fd_mu_);
      if (stopping_) {
        close(fd);
        return;
      }
      conn_fd_ = fd;
    }
    Serve(fd);
    {
      std::lock_guard lock(fd_mu_);
      conn_fd_ = -1;
    }
    close(fd);
  }
}

// Requests on one keep-alive connection until the peer closes it.
void HttpReceiver::Serve(int fd) {
  std::string buf;
  char chunk[65536];
  for (;;) {
    size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    Received r;
    size_t content_length = 0;
    size_t line_start = buf.find("\r\n") + 2;
    while (line_start < header_end) {
      const size_t line_end = buf.find("\r\n", line_start);
      const std::string line = buf.substr(line_start, line_end - line_start);
      line_start = line_end + 2;
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, colon);
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (key == "content-length") content_length = std::stoul(value);
      r.headers[key] = value;
    }
    const size_t body_start = header_end + 4;
    while (buf.size() < body_start + content_length) {
      const ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    const Reply reply = script_.Next();
    if (script_.record()) {
      r.body = buf.substr(body_start, content_length);
      const auto header = [&r](const char* key) {
        const auto it = r.headers.find(key);
        return it == r.headers.end() ? std::string() : it->second;
      };
      std::string plain = header("content-encoding") == "gzip" ? Gunzip(r.body) : r.body;
      r.json = header("content-type") == "application/json";
      if (r.json) {
        r.json_body = json::parse(plain);
      } else {
        r.request.ParseFromString(plain);
        script_.AddSpans(CountSpans(r.request));
      }
      script_.Record(std::move(r));
    } else {
      script_.Record({});
    }
    buf.erase(0, body_start + content_length);
    script_.Hold(reply);

    std::string body;
    std::string content_type = "application/x-protobuf";
    if (reply.http_status / 100 == 2 &&
        (reply.rejected_spans != 0 || !reply.partial_message.empty())) {
      if (r.json) {
        content_type = "application/json";
        body = json{{"partialSuccess",
                     {{"rejectedSpans", std::to_string(reply.rejected_spans)},
                      {"errorMessage", reply.partial_message}}}}
                   .dump();
      } else {
        collector::ExportTraceServiceResponse response;
        response.mutable_partial_success()->set_rejected_spans(reply.rejected_spans);
        response.mutable_partial_success()->set_error_message(reply.partial_message);
        body = response.SerializeAsString();
      }
    } else if (reply.http_status / 100 != 2 && !reply.message.empty()) {
      body = EncodeRpcStatus(3, reply.message, std::nullopt);  // google.rpc.Status
    }
    std::string head = "HTTP/1.1 " + std::to_string(reply.http_status) + " Reply\r\n" +
                       "Content-Type: " + content_type + "\r\n" +
                       "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (reply.retry_after) {
      head += "Retry-After: " + std::to_string(reply.retry_after->count() / 1000) + "\r\n";
    }
    head += "\r\n";
    head += body;
    size_t sent = 0;
    while (sent < head.size()) {
      const ssize_t n = send(fd, head.data() + sent, head.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }
}

}  // namespace zerotrace::exporter::testing
