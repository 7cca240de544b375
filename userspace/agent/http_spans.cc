// HttpSpanProducer: detection first (cheap), then parsing only for HTTP connections.
#include "agent/http_spans.h"

#include <unistd.h>

#include <algorithm>

#include "conn/process_resource.h"
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
  std::vector<std::pair<uint64_t, uint64_t>> handles;  // (exchange seq, linker handle)
};

HttpSpanProducer::HttpSpanProducer(trace::SpanLinker* linker, const WallClock* clock,
                                   http1::SpanOptions options,
                                   std::vector<trace::ResourceAttribute> resource_extra,
                                   conn::KernelConnState* kernel)
    : linker_(linker),
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
    if (kernel_) kernel_->MutePayload(c.tgid, c.fd, c.conn_id, c.tls);
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
    s.stitcher->set_listener(this);
    stats_.conns_http++;
  } else {
    s.state = Session::State::kNotHttp;
    stats_.conns_not_http++;
    if (kernel_) kernel_->MutePayload(c.tgid, c.fd, c.conn_id, c.tls);
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
  Enter(c, s, ts_ns);
  s.stitcher->Advance(req, resp, ts_ns, &exchanges_);
  Emit(c, s, ts_ns);
  if (s.stitcher->tunneled()) {
    stats_.tunneled++;
    s.state = Session::State::kNotHttp;
    if (kernel_) kernel_->MutePayload(c.tgid, c.fd, c.conn_id, c.tls);
    Drain(c.sent);
    Drain(c.received);
  }
}

// TLS seen: whatever was detected on the ciphertext is void; detection restarts on plaintext.
void HttpSpanProducer::OnStreamsReplaced(conn::Connection& c) {
  if (!c.attachment) return;
  Session& s = *static_cast<Session*>(c.attachment.get());
  for (const auto& [seq, handle] : s.handles) linker_->Abandon(handle);
  c.attachment.reset();
}

void HttpSpanProducer::OnClose(conn::Connection& c, conn::CloseCause cause) {
  if (!c.attachment) return;
  Session& s = *static_cast<Session*>(c.attachment.get());
  if (s.state != Session::State::kHttp) return;
  conn::ByteStream& req = s.role == ZT_ROLE_CLIENT ? c.sent : c.received;
  conn::ByteStream& resp = s.role == ZT_ROLE_CLIENT ? c.received : c.sent;
  http1::CloseReason reason = http1::CloseReason::kClosed;
  switch (cause) {
    case conn::CloseCause::kReset:
      reason = http1::CloseReason::kReset;
      break;
    case conn::CloseCause::kIdle:
    case conn::CloseCause::kEvicted:
    case conn::CloseCause::kShutdown:
      reason = http1::CloseReason::kUnobserved;
      break;
    case conn::CloseCause::kClose:
    case conn::CloseCause::kFdReuse:
    case conn::CloseCause::kProcessExit:
      break;
  }
  Enter(c, s, c.last_ts_ns);
  s.stitcher->OnClose(req, resp, reason, &exchanges_);
  Emit(c, s, c.last_ts_ns);
  for (const auto& [seq, handle] : s.handles) linker_->Abandon(handle);  // never answered
  s.handles.clear();
}

void HttpSpanProducer::Expire(conn::ConnTable& table, uint64_t now_ns) {
  table.ForEach([&](conn::Connection& c) {
    if (!c.attachment) return;
    Session& s = *static_cast<Session*>(c.attachment.get());
    if (s.state != Session::State::kHttp) return;
    Enter(c, s, now_ns);
    s.stitcher->Expire(now_ns, &exchanges_);
    Emit(c, s, now_ns);
  });
}

void HttpSpanProducer::Enter(conn::Connection& c, Session& s, uint64_t ts_ns) {
  cur_conn_ = &c;
  cur_session_ = &s;
  cur_ts_ns_ = ts_ns;
}

namespace {

// IPv4 as v4-mapped IPv6, so both sides of a connection compare alike.
std::array<uint8_t, 16> Canonical(uint16_t family, const std::array<uint8_t, 16>& a) {
  if (family != ZT_AF_INET) return a;
  std::array<uint8_t, 16> m{};
  m[10] = m[11] = 0xff;
  std::copy_n(a.begin(), 4, m.begin() + 12);
  return m;
}

// The value of the first request-id header (see trace::IsCorrelationHeader), or empty.
std::string_view CorrelationOf(const http1::HttpRequest& req) {
  char lower[32];
  for (const auto field : req.headers) {
    if (field.name.size() > sizeof(lower)) continue;
    for (size_t i = 0; i < field.name.size(); i++) {
      const char ch = field.name[i];  // ASCII only: no locale call per byte
      lower[i] = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
    }
    if (trace::IsCorrelationHeader(std::string_view(lower, field.name.size()))) return field.value;
  }
  return {};
}

}  // namespace

// Hot path: the request's span id is fixed now, and its parent when the evidence allows.
void HttpSpanProducer::OnRequestStart(uint64_t seq, const http1::HttpRequest& req) {
  if (cur_conn_ == nullptr || cur_session_ == nullptr) return;
  const conn::Connection& c = *cur_conn_;
  Session& s = *cur_session_;
  trace::RequestStart r;
  r.tgid = c.tgid;
  r.tid = req.start_tid;
  r.server = s.role == ZT_ROLE_SERVER;
  r.start_ns = req.start_ts_ns != 0 ? req.start_ts_ns : cur_ts_ns_;
  const conn::Tuple& t = c.tuple;
  r.conn.known = c.open_seen && t.family != 0;
  r.conn.from_start = r.conn.known && !c.preexisting;
  const auto local = Canonical(t.family, t.local_addr), remote = Canonical(t.family, t.remote_addr);
  r.conn.client_addr = r.server ? remote : local;
  r.conn.server_addr = r.server ? local : remote;
  r.conn.client_port = r.server ? t.remote_port : t.local_port;
  r.conn.server_port = r.server ? t.local_port : t.remote_port;
  r.conn.netns = t.netns != 0 ? t.netns : c.process_info().netns;
  r.stream_pos = req.start_pos;
  r.threads_migrate = c.process_info().go_runtime;
  r.method = req.method;
  r.target = req.target;
  r.correlation = CorrelationOf(req);
  if (auto h = req.headers.Get("traceparent")) r.traceparent = *h;
  if (auto h = req.headers.Get("tracestate")) r.tracestate = *h;
  if (s.handles.size() >= http1::kMaxPendingRequests) {  // dropped by loss, never to finish
    linker_->Abandon(s.handles.front().second);
    s.handles.erase(s.handles.begin());
  }
  s.handles.emplace_back(seq, linker_->Start(r));
}

void HttpSpanProducer::Emit(conn::Connection& c, Session& s, uint64_t finished_ns) {
  if (exchanges_.empty()) return;
  auto resource = ResourceOf(c, s.role == ZT_ROLE_SERVER ? c.tuple.local_port : 0);
  for (const auto& x : exchanges_) {
    trace::Span span = linker_->TakeSpare();
    http1::BuildSpanInto(x, c, s.role, *clock_, options_, resource, finished_ns, &span);
    stats_.spans++;
    auto at = std::find_if(s.handles.begin(), s.handles.end(),
                           [&x](const auto& p) { return p.first == x.seq; });
    if (at == s.handles.end()) {
      linker_->FinishUnstarted(std::move(span));
      continue;
    }
    const uint64_t handle = at->second;
    s.handles.erase(at);
    uint64_t end_ns = x.resp && x.resp->end_ts_ns ? x.resp->end_ts_ns : finished_ns;
    linker_->Finish(handle, std::move(span), end_ns, x.resp ? x.resp->start_tid : 0);
  }
  exchanges_.clear();
}

std::shared_ptr<const trace::Resource> HttpSpanProducer::ResourceOf(const conn::Connection& c,
                                                                    uint16_t served_port) {
  const conn::ProcessInfo& info = c.process_info();
  auto it = resources_.find(c.tgid);
  if (it != resources_.end() && it->second->executable_path == info.exe_path &&
      it->second->service_name == info.ServiceNameFor(served_port)) {
    return it->second;
  }
  if (resources_.size() > 8192) resources_.clear();  // bounded: rebuilt on next use
  auto r = conn::MakeResource(info, served_port, host_name_, resource_extra_);
  if (r->service_name.empty()) r->service_name = c.comm;
  r->pid = c.tgid;
  resources_[c.tgid] = r;
  return r;
}

}  // namespace zerotrace::agent
