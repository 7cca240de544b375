// HttpSpanProducer: detection first (cheap), then parsing only for HTTP connections.
#include "agent/http_spans.h"

#include <unistd.h>

#include "protocols/http1/head.h"

namespace zerotrace::agent {
namespace {

namespace http1 = protocols::http1;

// Bytes of a stream's front that decide detection; HTTP needs far fewer.
constexpr size_t kDetectBytes = 16;

// Frees a stream's bytes without parsing them (non-HTTP connections).
void Drain(conn::ByteStream& s) { s.ConsumeTo(s.end_pos()); }

}  // namespace

struct HttpSpanProducer::Session : conn::ConnAttachment {
  enum class State { kDetecting, kHttp, kNotHttp } state = State::kDetecting;
  uint8_t role = ZT_ROLE_UNKNOWN;  // as detected when the kernel did not know
  std::unique_ptr<http1::Http1Stitcher> stitcher;
};

HttpSpanProducer::HttpSpanProducer(SpanSink* sink, const WallClock* clock,
                                   http1::SpanOptions options,
                                   std::vector<trace::Attribute> resource_extra,
                                   conn::KernelConnState* kernel)
    : sink_(sink),
      clock_(clock),
      kernel_(kernel),
      options_(options),
      resource_extra_(std::move(resource_extra)) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  host_name_ = host;
}

HttpSpanProducer::Session* HttpSpanProducer::SessionOf(conn::Connection& c) {
  if (!c.attachment) {
    auto s = std::make_unique<Session>();
    s->role = c.role;
    c.attachment = std::move(s);
  }
  return static_cast<Session*>(c.attachment.get());
}

// Decides from the first bytes of either direction whether this is HTTP/1.x and, for sockets
// found mid-life, which side is the client. False while it cannot tell yet.
bool HttpSpanProducer::Detect(conn::Connection& c, Session& s) {
  const std::string_view sent = c.sent.Peek().data, received = c.received.Peek().data;
  auto request_in = [&](std::string_view b) { return http1::DetectHttp1Request(b); };
  http1::Detection verdict = http1::Detection::kMaybe;
  if (c.agent_peer) {  // our own exports arriving at a local collector: never a span
    s.state = Session::State::kNotHttp;
    stats_.conns_not_http++;
    if (kernel_) kernel_->MutePayload(c.tgid, c.fd, c.conn_id);
    return true;
  }
  if (s.role == ZT_ROLE_CLIENT || s.role == ZT_ROLE_SERVER) {
    const std::string_view req = s.role == ZT_ROLE_CLIENT ? sent : received;
    const std::string_view resp = s.role == ZT_ROLE_CLIENT ? received : sent;
    verdict = request_in(req);
    // The peer spoke first (a server-first protocol such as SMTP or MySQL): not HTTP.
    if (req.empty() && !resp.empty()) verdict = http1::Detection::kNo;
    if (c.sent.Peek().gap || c.received.Peek().gap) verdict = http1::Detection::kNo;
  } else {
    const http1::Detection out = request_in(sent), in = request_in(received);
    if (out == http1::Detection::kYes) {
      s.role = ZT_ROLE_CLIENT;
      verdict = out;
    } else if (in == http1::Detection::kYes) {
      s.role = ZT_ROLE_SERVER;
      verdict = in;
    } else if (out == http1::Detection::kNo || in == http1::Detection::kNo ||
               sent.size() >= kDetectBytes || received.size() >= kDetectBytes) {
      // Found mid-life and not at a request start: precision first, leave it alone.
      verdict = http1::Detection::kNo;
    }
  }
  if (verdict == http1::Detection::kMaybe) return false;
  if (verdict == http1::Detection::kYes) {
    s.state = Session::State::kHttp;
    s.stitcher = std::make_unique<http1::Http1Stitcher>(&http1_stats_);
    stats_.conns_http++;
  } else {
    s.state = Session::State::kNotHttp;
    stats_.conns_not_http++;
    if (kernel_) kernel_->MutePayload(c.tgid, c.fd, c.conn_id);
  }
  return true;
}

void HttpSpanProducer::OnData(conn::Connection& c, uint8_t, uint64_t ts_ns) {
  Session& s = *SessionOf(c);
  if (s.state == Session::State::kDetecting && !Detect(c, s)) return;
  if (s.state == Session::State::kNotHttp) {
    Drain(c.sent);
    Drain(c.received);
    return;
  }
  conn::ByteStream& req = s.role == ZT_ROLE_CLIENT ? c.sent : c.received;
  conn::ByteStream& resp = s.role == ZT_ROLE_CLIENT ? c.received : c.sent;
  s.stitcher->Advance(req, resp, ts_ns, &exchanges_);
  Emit(c, s, ts_ns);
  if (s.stitcher->tunneled()) {
    stats_.tunneled++;
    s.state = Session::State::kNotHttp;
    if (kernel_) kernel_->MutePayload(c.tgid, c.fd, c.conn_id);
    Drain(c.sent);
    Drain(c.received);
  }
}

void HttpSpanProducer::OnClose(conn::Connection& c, conn::CloseCause cause) {
  if (!c.attachment) return;
  Session& s = *static_cast<Session*>(c.attachment.get());
  if (s.state != Session::State::kHttp) return;
  conn::ByteStream& req = s.role == ZT_ROLE_CLIENT ? c.sent : c.received;
  conn::ByteStream& resp = s.role == ZT_ROLE_CLIENT ? c.received : c.sent;
  const auto reason =
      cause == conn::CloseCause::kReset ? http1::CloseReason::kReset : http1::CloseReason::kClosed;
  s.stitcher->OnClose(req, resp, reason, &exchanges_);
  Emit(c, s, c.last_ts_ns);
}

void HttpSpanProducer::Expire(conn::ConnTable& table, uint64_t now_ns) {
  table.ForEach([&](conn::Connection& c) {
    if (!c.attachment) return;
    Session& s = *static_cast<Session*>(c.attachment.get());
    if (s.state != Session::State::kHttp) return;
    s.stitcher->Expire(now_ns, &exchanges_);
    Emit(c, s, now_ns);
  });
}

void HttpSpanProducer::Emit(conn::Connection& c, Session& s, uint64_t finished_ns) {
  if (exchanges_.empty()) return;
  auto resource = ResourceOf(c);
  for (const auto& x : exchanges_) {
    sink_->OnSpan(http1::BuildSpan(x, c, s.role, *clock_, options_, resource, finished_ns));
    stats_.spans++;
  }
  exchanges_.clear();
}

std::shared_ptr<const trace::Resource> HttpSpanProducer::ResourceOf(const conn::Connection& c) {
  auto it = resources_.find(c.tgid);
  if (it != resources_.end() && it->second->executable_path == c.process.exe_path &&
      it->second->service_name == c.process.service_name) {
    return it->second;
  }
  if (resources_.size() > 8192) resources_.clear();  // bounded: rebuilt on next use
  auto r = std::make_shared<trace::Resource>();
  r->service_name = c.process.service_name.empty() ? c.comm : c.process.service_name;
  r->pid = c.tgid;
  r->executable_name = c.process.exe_name;
  r->executable_path = c.process.exe_path;
  r->container_id = c.process.container_id;
  r->host_name = host_name_;
  r->extra = resource_extra_;
  resources_[c.tgid] = r;
  return r;
}

}  // namespace zerotrace::agent
