// ProtocolStage: detection across the registry (from a connection's start, or mid-stream at a
// syscall's first bytes), sessions per connection, and the protocol-neutral half of spans.
#include "protocols/stage.h"

#include <unistd.h>

#include <algorithm>

#include "protocols/resource.h"

namespace zerotrace::protocols {
namespace {

// Bytes at a connection's start beyond which a protocol that still says "maybe" is taken to
// mean "no": detection must not wait for ever on a connection nothing recognises.
constexpr size_t kMaxDetectBytes = 4096;
// Mid-stream, message starts looked for before the connection is given up (and muted).
constexpr uint32_t kMaxResyncTries = 64;
constexpr uint64_t kMaxResyncBytes = 256 * 1024;
// Requests a connection may have pending (unanswered) before the oldest is given up.
constexpr size_t kMaxPendingRequests = 1024;
constexpr uint64_t kNone = UINT64_MAX;

// Frees a stream's bytes without parsing them.
void Drain(conn::ByteStream& s) { s.ConsumeTo(s.end_pos()); }

// IPv4 as v4-mapped IPv6, so both sides of a connection compare alike.
std::array<uint8_t, 16> Canonical(uint16_t family, const std::array<uint8_t, 16>& a) {
  if (family != ZT_AF_INET) return a;
  std::array<uint8_t, 16> m{};
  m[10] = m[11] = 0xff;
  std::copy_n(a.begin(), 4, m.begin() + 12);
  return m;
}

bool KnownRole(uint8_t role) { return role == ZT_ROLE_CLIENT || role == ZT_ROLE_SERVER; }

}  // namespace

struct ProtocolStage::ConnState : conn::ConnAttachment {
  enum class Mode : uint8_t {
    kStart,   // detecting on the streams' first bytes
    kResync,  // followed mid-stream: looking for a message start at a syscall's first bytes
    kActive,  // a protocol's session parses it
    kMuted,   // nothing we parse: payload muted
  };
  Mode mode = Mode::kStart;
  bool mode_decided = false;  // kStart vs kResync was chosen (on the first data)
  uint8_t role = ZT_ROLE_UNKNOWN;
  Protocol* protocol = nullptr;
  std::unique_ptr<Session> session;
  trace::ConnEndpoints endpoints;
  std::vector<std::pair<uint64_t, uint64_t>> handles;  // (request id, linker handle)
  uint64_t candidate[2] = {kNone, kNone};  // per direction: a syscall start being judged
  uint32_t resync_tries = 0;
  uint32_t head_cap = 0;  // the head cap the kernel was told (0: none)
  // The resource of this connection's spans and what it was made from: the connection's
  // process info (held, so a newer one never shares its address) and the served port. A
  // new process info (exec, a late /proc read) replaces the connection's and so remakes it.
  std::shared_ptr<const trace::Resource> resource;
  std::shared_ptr<const conn::ProcessInfo> resource_info;
  uint16_t resource_port = 0;
};

ProtocolStage::ProtocolStage(std::vector<std::unique_ptr<Protocol>> protocols,
                             trace::SpanLinker* linker, const WallClock* clock,
                             std::vector<trace::ResourceAttribute> resource_extra,
                             conn::KernelConnState* kernel)
    : protocols_(std::move(protocols)),
      linker_(linker),
      clock_(clock),
      kernel_(kernel),
      resource_extra_(std::move(resource_extra)) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  host_name_ = host;
}

ProtocolStage::~ProtocolStage() = default;

ProtocolStage::ConnState& ProtocolStage::StateOf(conn::Connection& c) {
  if (!c.attachment) {
    auto s = std::make_unique<ConnState>();
    s->role = c.role;
    c.attachment = std::move(s);
  }
  return *static_cast<ConnState*>(c.attachment.get());
}

// Hot path.
void ProtocolStage::OnData(conn::Connection& c, const conn::DataChunk& chunk) {
  ConnState& s = StateOf(c);
  if (c.agent_peer && s.mode != ConnState::Mode::kMuted) {
    Mute(c, s);  // our own exports arriving at a local collector: never a span
  }
  if (!s.mode_decided) {
    s.mode_decided = true;
    // Followed from its first byte, by a side that knows its role: detection reads the first
    // bytes. Otherwise (found mid-life, open event lost, a gap first) it waits for a message
    // start instead of judging whatever the stream happens to begin with.
    const bool from_start = c.open_seen && !c.preexisting && KnownRole(c.role) &&
                            c.sent.front_pos() == 0 && c.received.front_pos() == 0 &&
                            c.sent.Peek().gap == 0 && c.received.Peek().gap == 0;
    s.mode = from_start ? ConnState::Mode::kStart : ConnState::Mode::kResync;
  }
  switch (s.mode) {
    case ConnState::Mode::kStart:
      if (c.sent.Peek().gap != 0 || c.received.Peek().gap != 0) {
        s.mode = ConnState::Mode::kResync;  // a message start was lost: look for the next one
        Resync(c, s, chunk);
      } else {
        DetectAtStart(c, s, chunk.ts_ns);
      }
      break;
    case ConnState::Mode::kResync:
      Resync(c, s, chunk);
      break;
    case ConnState::Mode::kActive:
      Advance(c, s, chunk.ts_ns);
      break;
    case ConnState::Mode::kMuted:
      Drain(c.sent);
      Drain(c.received);
      break;
  }
}

// Every protocol judges the fronts (the streams' first bytes, or where a previous protocol on
// the connection left off); the first to say yes takes the connection.
void ProtocolStage::DetectAtStart(conn::Connection& c, ConnState& s, uint64_t ts_ns) {
  const conn::ByteStream::Front sent = c.sent.Peek(), received = c.received.Peek();
  if (sent.gap != 0 || received.gap != 0) {  // a message start was lost: wait for the next
    s.mode = ConnState::Mode::kResync;
    Drain(c.sent);
    Drain(c.received);
    return;
  }
  const StartBytes bytes{sent.data, received.data, s.role, c.tls};
  bool maybe = false;
  for (const auto& p : protocols_) {
    const Detection d = p->DetectStart(bytes);
    if (d.verdict == Verdict::kYes) {
      Claim(c, s, p.get(), KnownRole(d.role) ? d.role : s.role, false);
      Advance(c, s, ts_ns);
      return;
    }
    maybe |= d.verdict == Verdict::kMaybe;
  }
  if (maybe && sent.data.size() + received.data.size() < kMaxDetectBytes) return;
  stats_.conns_unclaimed++;
  Mute(c, s);
}

// Mid-stream: each syscall's first bytes may be a message start. Everything before the one a
// protocol recognises is dropped, in both directions: records arrive in the order the kernel
// wrote them, so the other direction's bytes seen so far all came before it.
void ProtocolStage::Resync(conn::Connection& c, ConnState& s, const conn::DataChunk& chunk) {
  const uint8_t dir = chunk.direction == ZT_DIR_EGRESS ? ZT_DIR_EGRESS : ZT_DIR_INGRESS;
  conn::ByteStream& stream = c.stream(dir);
  uint64_t& candidate = s.candidate[dir];
  if (chunk.at_syscall_start()) {
    // A newer start replaces one; one left undecided ("maybe" on all it had) counts as a try,
    // so short syscalls that never tell cannot keep the connection unjudged for ever.
    if (candidate != kNone && candidate < chunk.stream_pos && GiveUpAfterTry(c, s)) return;
    candidate = chunk.stream_pos;
  }
  auto skip_to = [&](uint64_t pos) {
    if (pos > stream.front_pos()) stats_.resync_bytes_skipped += pos - stream.front_pos();
    stream.ConsumeTo(pos);
  };
  if (candidate == kNone) {
    skip_to(stream.end_pos());
    return;
  }
  skip_to(candidate);
  const conn::ByteStream::Front front = stream.Peek();
  Verdict verdict = Verdict::kNo;
  if (front.pos == candidate && !front.data.empty()) {
    const ResyncBytes bytes{front.data, dir, s.role};
    for (const auto& p : protocols_) {
      const Detection d = p->DetectResync(bytes);
      if (d.verdict == Verdict::kYes && KnownRole(d.role)) {
        conn::ByteStream& other = c.stream(dir == ZT_DIR_EGRESS ? ZT_DIR_INGRESS : ZT_DIR_EGRESS);
        if (other.end_pos() > other.front_pos()) {
          stats_.resync_bytes_skipped += other.end_pos() - other.front_pos();
        }
        Drain(other);
        stats_.conns_resynced++;
        Claim(c, s, p.get(), d.role, true);
        Advance(c, s, chunk.ts_ns);
        return;
      }
      if (d.verdict == Verdict::kMaybe) verdict = Verdict::kMaybe;
    }
  }
  if (verdict == Verdict::kMaybe) return;  // the rest of the syscall's bytes will tell
  candidate = kNone;
  skip_to(stream.end_pos());
  GiveUpAfterTry(c, s);
}

bool ProtocolStage::GiveUpAfterTry(conn::Connection& c, ConnState& s) {
  if (++s.resync_tries < kMaxResyncTries &&
      c.sent.front_pos() + c.received.front_pos() < kMaxResyncBytes) {
    return false;
  }
  stats_.resync_gave_up++;
  Mute(c, s);
  return true;
}

void ProtocolStage::Claim(conn::Connection& c, ConnState& s, Protocol* p, uint8_t role,
                          bool mid_stream) {
  s.protocol = p;
  s.role = role;
  s.mode = ConnState::Mode::kActive;
  stats_.conns_claimed++;
  const bool server = role == ZT_ROLE_SERVER;
  trace::ConnEndpoints& e = s.endpoints;
  e.known = c.open_seen;
  e.server = server;
  e.local_address = c.tuple.LocalAddress();
  e.remote_address = c.tuple.RemoteAddress();
  e.local_port = c.tuple.local_port;
  e.remote_port = c.tuple.remote_port;
  s.session = p->NewSession(SessionContext{role, c.tls, &s.endpoints, mid_stream});
}

void ProtocolStage::Mute(conn::Connection& c, ConnState& s) {
  s.mode = ConnState::Mode::kMuted;
  c.muted = true;  // the table keeps no more of its bytes (the kernel sends them rarely now)
  if (kernel_) kernel_->MutePayload(c.tgid, c.fd, c.conn_id, c.tls);
  Drain(c.sent);
  Drain(c.received);
}

// Hot path.
void ProtocolStage::Advance(conn::Connection& c, ConnState& s, uint64_t now_ns) {
  conn::ByteStream& req = s.role == ZT_ROLE_CLIENT ? c.sent : c.received;
  conn::ByteStream& resp = s.role == ZT_ROLE_CLIENT ? c.received : c.sent;
  s.session->Advance(req, resp, now_ns, &out_);
  if (const uint32_t ask = out_.head_cap_ask()) SetHeadCap(c, s, ask - 1);
  Apply(c, s, now_ns);
  if (s.session->Left()) {
    // An upgrade: what follows may be another protocol we parse (h2c), from here on.
    stats_.protocol_left++;
    SetHeadCap(c, s, 0);
    for (const auto& [id, handle] : s.handles) linker_->Abandon(handle);
    s.handles.clear();
    s.session.reset();
    s.protocol = nullptr;
    s.mode = ConnState::Mode::kStart;
    DetectAtStart(c, s, now_ns);
  }
}

void ProtocolStage::SetHeadCap(conn::Connection& c, ConnState& s, uint32_t cap) {
  if (cap == s.head_cap || kernel_ == nullptr) return;
  if (cap != 0) {
    stats_.head_caps_set++;
  } else {
    stats_.head_caps_lifted++;
  }
  s.head_cap = cap;
  // Responses travel from the server: a server's sends, a client's receives.
  kernel_->CapPayload(c.tgid, c.fd, c.conn_id, cap, c.tls, s.role == ZT_ROLE_SERVER);
}

// TLS seen: whatever was detected on the ciphertext is void; detection restarts on plaintext.
void ProtocolStage::OnStreamsReplaced(conn::Connection& c) {
  if (!c.attachment) return;
  ConnState& s = *static_cast<ConnState*>(c.attachment.get());
  for (const auto& [id, handle] : s.handles) linker_->Abandon(handle);
  c.attachment.reset();
}

void ProtocolStage::OnClose(conn::Connection& c, conn::CloseCause cause) {
  if (!c.attachment) return;
  ConnState& s = *static_cast<ConnState*>(c.attachment.get());
  if (s.mode != ConnState::Mode::kActive) return;
  CloseReason reason = CloseReason::kClosed;
  switch (cause) {
    case conn::CloseCause::kReset:
      reason = CloseReason::kReset;
      break;
    case conn::CloseCause::kIdle:
    case conn::CloseCause::kEvicted:
      reason = CloseReason::kUnobserved;
      break;
    case conn::CloseCause::kShutdown:
      reason = CloseReason::kShutdown;
      break;
    case conn::CloseCause::kClose:
    case conn::CloseCause::kFdReuse:
    case conn::CloseCause::kProcessExit:
      break;
  }
  conn::ByteStream& req = s.role == ZT_ROLE_CLIENT ? c.sent : c.received;
  conn::ByteStream& resp = s.role == ZT_ROLE_CLIENT ? c.received : c.sent;
  const uint64_t now_ns =
      cause == conn::CloseCause::kShutdown ? WallClock::MonotonicNow() : c.last_ts_ns;
  s.session->Close(req, resp, reason, now_ns, &out_);
  Apply(c, s, now_ns);
  for (const auto& [id, handle] : s.handles) linker_->Abandon(handle);  // never answered
  s.handles.clear();
}

void ProtocolStage::Expire(conn::ConnTable& table, uint64_t now_ns) {
  table.ForEach([&](conn::Connection& c) {
    if (!c.attachment) return;
    ConnState& s = *static_cast<ConnState*>(c.attachment.get());
    if (s.mode != ConnState::Mode::kActive) return;
    s.session->Expire(now_ns, &out_);
    Apply(c, s, now_ns);
  });
}

// Hot path: the request's span id is fixed when it starts, and its parent when the evidence
// allows; finished exchanges become spans.
void ProtocolStage::Apply(conn::Connection& c, ConnState& s, uint64_t now_ns) {
  const bool server = s.role == ZT_ROLE_SERVER;
  for (size_t i = 0; i < out_.starts(); i++) {
    const RequestStarted& rs = out_.start(i);
    trace::RequestStart r;
    r.tgid = c.tgid;
    r.tid = rs.tid;
    r.server = server;
    r.start_ns = rs.start_ns != 0 ? rs.start_ns : now_ns;
    const conn::Tuple& t = c.tuple;
    r.conn.known = c.open_seen && t.family != 0;
    r.conn.from_start = r.conn.known && !c.preexisting;
    const auto local = Canonical(t.family, t.local_addr),
               remote = Canonical(t.family, t.remote_addr);
    r.conn.client_addr = server ? remote : local;
    r.conn.server_addr = server ? local : remote;
    r.conn.client_port = server ? t.remote_port : t.local_port;
    r.conn.server_port = server ? t.local_port : t.remote_port;
    r.conn.netns = t.netns != 0 ? t.netns : c.process_info().netns;
    r.stream_pos = rs.stream_pos;
    // Unknown until /proc is read: as if it might (the thread then proves nothing).
    r.threads_migrate = c.process_info().go_runtime || c.process_info().partial;
    r.operation = rs.operation;
    r.correlation = rs.correlation;
    r.traceparent = rs.traceparent;
    r.tracestate = rs.tracestate;
    r.conn_id = c.conn_id;
    // Goroutine evidence names the request this call's first byte starts (zt_go_call_event).
    // Evidence for another position is an earlier call's that wrote nothing: dropped.
    if (!server && c.go_call) {
      if (c.go_call->send_pos == rs.stream_pos) {
        r.served_conn_id = c.go_call->served_conn_id;
        r.served_since_ns = c.go_call->served_since_ns;
      }
      c.go_call.reset();
    }
    // The kernel's ids for the call its thread sends next (zt_ctx_event); another thread's
    // request on this connection is not the one the kernel saw leave.
    if (!server && c.ctx_call) {
      if (c.ctx_call->tid == rs.tid) {
        r.kernel_ctx = true;
        r.kernel_trace_id.bytes = c.ctx_call->trace_id;
        r.kernel_span_id.bytes = c.ctx_call->span_id;
      }
      c.ctx_call.reset();
    }
    r.multiplexed = rs.multiplexed;
    if (s.handles.size() >= kMaxPendingRequests) {  // dropped by loss, never to finish
      stats_.pending_dropped++;
      linker_->Abandon(s.handles.front().second);
      s.handles.erase(s.handles.begin());
    }
    s.handles.emplace_back(rs.id, linker_->Start(r));
  }
  for (size_t i = 0; i < out_.exchanges(); i++) {
    ExchangeDone& x = out_.exchange(i);
    stats_.exchanges++;
    trace::Span& span = x.span;  // finished where it was built; the slot keeps storage
    const uint16_t served_port = server ? c.tuple.local_port : 0;
    if (!s.resource || s.resource_info != c.process || s.resource_port != served_port) {
      s.resource = ResourceOf(c, served_port);
      s.resource_info = c.process;
      s.resource_port = served_port;
    }
    trace::FrameSpan(x.start_ns, x.end_ns, s.endpoints, *clock_, s.resource, &span);
    stats_.spans++;
    auto at = std::find_if(s.handles.begin(), s.handles.end(),
                           [&x](const auto& p) { return p.first == x.id; });
    if (x.id == 0 || at == s.handles.end()) {
      linker_->FinishUnstarted(std::move(span));  // what the sink leaves is the next storage
      continue;
    }
    const uint64_t handle = at->second;
    s.handles.erase(at);
    linker_->FinishInSlot(handle, &span, x.end_ns != 0 ? x.end_ns : now_ns, x.response_tid);
  }
  out_.Clear();
}

std::shared_ptr<const trace::Resource> ProtocolStage::ResourceOf(const conn::Connection& c,
                                                                 uint16_t served_port) {
  const conn::ProcessInfo& info = c.process_info();
  auto it = resources_.find(c.tgid);
  if (it != resources_.end() && it->second->executable_path == info.exe_path) {
    // The name the resource would get now (the comm when the process has none: no /proc).
    const std::string& name = info.ServiceNameFor(served_port);
    if (it->second->service_name == (name.empty() ? c.comm : name)) return it->second;
  }
  if (resources_.size() > 8192) resources_.clear();  // bounded: rebuilt on next use
  auto r = MakeResource(info, served_port, host_name_, resource_extra_);
  if (r->service_name.empty()) r->service_name = c.comm;
  r->pid = c.tgid;
  resources_[c.tgid] = r;
  return r;
}

void ProtocolStage::ReportCounters(CounterReport* r) const {
  for (const auto& p : protocols_) p->ReportCounters(r);
  r->Counter("spans", "zerotrace_spans_total", "spans made from exchanges", stats_.spans);
  r->Counter("not_http_conns", "zerotrace_protocol_unclaimed_conns_total",
             "connections no protocol claimed (payload muted)", stats_.conns_unclaimed);
  r->Counter("resync_gave_up", "zerotrace_protocol_resync_gave_up_total",
             "connections followed mid-stream where no message start was found (payload muted)",
             stats_.resync_gave_up);
  r->Counter(nullptr, "zerotrace_protocol_claimed_conns_total", "connections a protocol claimed",
             stats_.conns_claimed);
  r->Counter(nullptr, "zerotrace_protocol_resynced_conns_total",
             "connections claimed mid-stream, at a message start after a gap or agent start",
             stats_.conns_resynced);
  r->Counter(nullptr, "zerotrace_protocol_resync_bytes_skipped_total",
             "bytes dropped while looking for a message start mid-stream",
             stats_.resync_bytes_skipped);
  r->Counter("head_caps_set", "zerotrace_protocol_head_caps_set_total",
             "HTTP/1 connections given a head cap: the kernel copies the learnt response head "
             "size of each syscall carrying responses (--no-head-caps: asked for, not applied)",
             stats_.head_caps_set);
  r->Counter("head_caps_lifted", "zerotrace_protocol_head_caps_lifted_total",
             "head caps lifted again: a response head did not fit, or the protocol changed",
             stats_.head_caps_lifted);
  r->Counter(nullptr, "zerotrace_protocol_left_total",
             "connections that left their protocol (an upgrade); detection ran again",
             stats_.protocol_left);
  r->Counter(nullptr, "zerotrace_stage_items_total", kStageItemsHelp, stats_.exchanges,
             {{"stage", "protocols"}});
  r->Counter(nullptr, "zerotrace_protocol_pending_dropped_total",
             "requests given up because too many were pending on one connection",
             stats_.pending_dropped);
}

}  // namespace zerotrace::protocols
