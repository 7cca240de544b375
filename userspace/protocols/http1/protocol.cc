// Http1Protocol: detection on request lines; sessions wrap an Http1Stitcher.
#include "protocols/http1/protocol.h"

#include <algorithm>
#include <string_view>

#include "base/text.h"
#include "protocols/http1/head.h"
#include "protocols/http1/stitcher.h"
#include "trace/span_linker.h"

namespace zerotrace::protocols::http1 {
namespace {

Verdict ToVerdict(Detection d) {
  switch (d) {
    case Detection::kYes:
      return Verdict::kYes;
    case Detection::kMaybe:
      return Verdict::kMaybe;
    case Detection::kNo:
      break;
  }
  return Verdict::kNo;
}

// What the linker reads of a request's fields: the first request-id header's value (see
// trace::IsCorrelationHeader), traceparent and tracestate; empty when absent.
struct LinkFields {
  std::string_view correlation, traceparent, tracestate;
};

// Measured hot path (every request head): one pass over the fields, where three lookups each
// scanned all of them (traceparent and tracestate are usually absent).
LinkFields LinkFieldsOf(const HttpRequest& req) {
  LinkFields out;
  bool correlation = false, traceparent = false, tracestate = false;
  char lower[32];
  for (const auto field : req.headers) {
    const std::string_view name = field.name;
    if (name.size() == 11 && !traceparent && EqualsLowerLiteral(name, "traceparent")) {
      out.traceparent = field.value;
      traceparent = true;
      continue;
    }
    if (name.size() == 10 && !tracestate && EqualsLowerLiteral(name, "tracestate")) {
      out.tracestate = field.value;
      tracestate = true;
      continue;
    }
    if (correlation || !trace::MayBeCorrelationHeader(name)) continue;
    for (size_t i = 0; i < name.size(); i++) {
      const char ch = name[i];  // ASCII only: no locale call per byte
      lower[i] = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
    }
    if (trace::IsCorrelationHeader(std::string_view(lower, name.size()))) {
      out.correlation = field.value;
      correlation = true;
    }
  }
  return out;
}

class Http1Session final : public Session, RequestListener, ExchangeSink {
 public:
  Http1Session(const SessionContext& context, const SpanOptions* options,
               http_common::HttpSpanFields* fields, Http1Stats* stats)
      : context_(context), options_(options), fields_(fields), stitcher_(stats) {
    stitcher_.set_listener(this);
    stitcher_.set_sink(this);
    if ((context.role == ZT_ROLE_CLIENT || context.role == ZT_ROLE_SERVER) && !context.mid_stream) {
      cap_ = Cap::kLearning;
    }
  }

  void Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
               SessionOutput* out) override {
    Begin(now_ns, out);
    stitcher_.Advance(requests, responses, now_ns, nullptr);
    if (stitcher_.response_losses() != losses_seen_) {
      losses_seen_ = stitcher_.response_losses();
      StopCapping();
    }
    out_ = nullptr;
  }
  void Close(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
             uint64_t now_ns, SessionOutput* out) override {
    Begin(now_ns, out);
    stitcher_.OnClose(requests, responses, reason, nullptr);
    out_ = nullptr;
  }
  void Expire(uint64_t now_ns, SessionOutput* out) override {
    Begin(now_ns, out);
    stitcher_.Expire(now_ns, nullptr);
    out_ = nullptr;
  }
  bool Left() const override { return stitcher_.tunneled(); }

 private:
  void Begin(uint64_t now_ns, SessionOutput* out) {
    out_ = out;
    finished_ns_ = now_ns;
  }

  // Hot path: the stitcher parsed a request head.
  void OnRequestStart(uint64_t seq, const HttpRequest& req) override {
    // A request while another is in flight: pipelining, whose responses can share a syscall.
    // A cap would hide all but the first in its gap, and how many it hid would stay unknown.
    if (requests_started_++ != exchanges_done_ && cap_ != Cap::kOff) StopCapping();
    RequestStarted& r = out_->AddStart();
    r.id = seq;
    r.start_ns = req.start_ts_ns;
    r.tid = req.start_tid;
    r.stream_pos = req.start_pos;
    r.operation.assign(req.method).append(" ").append(req.target);
    const LinkFields link = LinkFieldsOf(req);
    AssignIfDifferent(&r.correlation, link.correlation);  // mostly absent, as before
    AssignIfDifferent(&r.traceparent, link.traceparent);
    AssignIfDifferent(&r.tracestate, link.tracestate);
  }

  // Hot path: an exchange finished. Its span is built from it where it lies in the stitcher
  // (no move into a vector and out again); `finished_ns_` ends one that got no response.
  void OnExchange(HttpExchange& x) override {
    exchanges_done_++;
    if (cap_ != Cap::kOff) LearnCap(x);
    BuildExchange(x, context_, *options_, finished_ns_, &out_->AddExchange(), fields_);
  }

  // Response bodies need not be copied by the kernel: a connection whose responses are framed
  // by Content-Length (or have no body) and whose heads are of a steady size has the kernel
  // copy only the first bytes of each syscall that carries them (a client's receives, a
  // server's sends), enough for the largest head seen and a margin; the rest reaches the
  // parser as a gap of known length, which it skips as a body by length. A response that breaks the
  // pattern (chunked, a cut head, a loss), or a pipelined request, lifts the cap for good: the
  // parser and stitcher already treat such gaps as losses (the cut response keeps its start line
  // and loses its body size; pairing doubts until it is aligned again).
  static constexpr uint32_t kCapLearnExchanges = 4;
  static constexpr uint32_t kCapMin = 256, kCapMax = 4096, kCapMargin = 128;
  enum class Cap : uint8_t { kLearning, kOn, kOff };

  void LearnCap(const HttpExchange& x) {
    const HttpResponse* r = x.resp ? &*x.resp : nullptr;
    const bool framed = r != nullptr && (r->framing == BodyFraming::kContentLength ||
                                         r->framing == BodyFraming::kNone);
    if (!framed || x.error != ExchangeError::kNone || r->truncated || r->head_cut ||
        r->body_framing_lost || r->end_pos < r->start_pos + r->body_size) {
      StopCapping();
      return;
    }
    const uint64_t head = r->end_pos - r->body_size - r->start_pos;
    if (cap_ == Cap::kOn) {
      if (head + kCapMargin / 2 > cap_bytes_) StopCapping();  // heads grew: no more margin
      return;
    }
    max_head_ = std::max(max_head_, head);
    max_message_ = std::max(max_message_, r->end_pos - r->start_pos);
    if (++clean_ < kCapLearnExchanges) return;
    const uint64_t margin = std::max<uint64_t>(kCapMargin, max_head_ / 2);
    const uint64_t cap = std::max<uint64_t>(kCapMin, (max_head_ + margin + 63) & ~uint64_t{63});
    if (cap > kCapMax) {
      StopCapping();  // heads this large: not worth the risk of cutting one
      return;
    }
    if (max_message_ <= cap) return;  // nothing to save yet: keep learning
    cap_ = Cap::kOn;
    cap_bytes_ = static_cast<uint32_t>(cap);
    out_->AskHeadCap(cap_bytes_);
  }

  void StopCapping() {
    if (cap_ == Cap::kOn && out_ != nullptr) out_->AskHeadCap(0);
    cap_ = Cap::kOff;
  }

  SessionContext context_;
  const SpanOptions* options_;
  http_common::HttpSpanFields* fields_;  // the protocol's, reused by every session's spans
  Http1Stitcher stitcher_;
  SessionOutput* out_ = nullptr;  // the call in progress's output
  uint64_t finished_ns_ = 0;      // the call in progress's time
  // The head cap (LearnCap): connections (socket bytes or TLS plaintext) followed from their
  // start only.
  Cap cap_ = Cap::kOff;
  uint32_t cap_bytes_ = 0;
  uint32_t clean_ = 0;
  uint64_t max_head_ = 0, max_message_ = 0;
  uint64_t losses_seen_ = 0;
  // Requests whose heads were parsed, and exchanges finished: they differ at a request's start
  // while an earlier one is in flight (pipelining) or was lost.
  uint64_t requests_started_ = 0, exchanges_done_ = 0;
};

}  // namespace

Http1Protocol::Http1Protocol(const ProtocolOptions& options) {
  span_options_.infer_routes = options.infer_routes;
}

protocols::Detection Http1Protocol::DetectStart(const StartBytes& b) const {
  if (b.role != ZT_ROLE_CLIENT && b.role != ZT_ROLE_SERVER) {
    // Who is the client is not known: a request line in either direction tells.
    const Detection out = DetectHttp1Request(b.sent), in = DetectHttp1Request(b.received);
    if (out == Detection::kYes) return {Verdict::kYes, ZT_ROLE_CLIENT};
    if (in == Detection::kYes) return {Verdict::kYes, ZT_ROLE_SERVER};
    if (out == Detection::kNo && in == Detection::kNo) return {};
    return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  }
  const std::string_view req = b.role == ZT_ROLE_CLIENT ? b.sent : b.received;
  const std::string_view resp = b.role == ZT_ROLE_CLIENT ? b.received : b.sent;
  // Only the peer's bytes so far. A response whose record overtook its request's (TLS probes
  // emit at the calls' returns, and a reader's return can run before its writer's on another
  // CPU): the request side decides. Anything else is a server-first protocol (SMTP, MySQL,
  // websocket frames after an upgrade): not HTTP.
  if (req.empty()) {
    constexpr std::string_view kVersion = "HTTP/1.";
    const size_t n = std::min(resp.size(), kVersion.size());
    if (resp.substr(0, n) != kVersion.substr(0, n)) return {};
    return {Verdict::kMaybe, b.role};
  }
  return {ToVerdict(DetectHttp1Request(req)), b.role};
}

// A whole request line at a syscall's start: the client side wrote it, the server read it.
protocols::Detection Http1Protocol::DetectResync(const ResyncBytes& b) const {
  const uint8_t role = b.direction == ZT_DIR_EGRESS ? ZT_ROLE_CLIENT : ZT_ROLE_SERVER;
  if (b.role != ZT_ROLE_UNKNOWN && b.role != role) return {};
  const Verdict v = ToVerdict(DetectHttp1Request(b.bytes));
  return {v, v == Verdict::kYes ? role : uint8_t{ZT_ROLE_UNKNOWN}};
}

std::unique_ptr<Session> Http1Protocol::NewSession(const SessionContext& context) {
  conns_++;
  return std::make_unique<Http1Session>(context, &span_options_, &span_fields_, &stats_);
}

void Http1Protocol::ReportCounters(CounterReport* r) const {
  const Http1Stats& h = stats_;
  r->Counter("http_conns", "zerotrace_http_conns_total", "connections detected as HTTP/1.x",
             conns_);
  r->Counter("http_exchanges", "zerotrace_http_exchanges_total",
             "HTTP exchanges emitted, error exchanges included", h.exchanges);
  r->Counter("http_parse_errors", "zerotrace_http_parse_errors_total",
             "malformed HTTP start lines, headers or chunk framing", h.parse_errors);
  r->Counter("http_resyncs", "zerotrace_http_resyncs_total",
             "times an HTTP parser scanned for the next message start", h.resyncs);
  r->Counter(nullptr, "zerotrace_http_requests_parsed_total", "HTTP request heads parsed",
             h.requests_parsed);
  r->Counter(nullptr, "zerotrace_http_responses_parsed_total", "HTTP final response heads parsed",
             h.responses_parsed);
  r->Counter("http_unpaired_requests", "zerotrace_http_unpaired_requests_total",
             "requests dropped because pairing became uncertain", h.unpaired_requests);
  r->Counter("http_unpaired_responses", "zerotrace_http_unpaired_responses_total",
             "responses not paired (stale, ambiguous, unsolicited)", h.unpaired_responses);
  r->Counter(nullptr, "zerotrace_http_ambiguous_responses_total",
             "responses that could answer more than one request", h.ambiguous_responses);
  r->Counter(nullptr, "zerotrace_http_unfinished_unobserved_total",
             "requests in flight when the agent stopped following their connection (eviction, "
             "idle expiry)",
             h.unfinished_unobserved);
  r->Counter(nullptr, "zerotrace_http_unfinished_shutdown_total",
             "requests in flight when the agent stopped (reported as agent_shutdown errors)",
             h.unfinished_shutdown);
  r->Counter(nullptr, "zerotrace_http_timeouts_total", "exchanges emitted with error timeout",
             h.timeouts);
  r->Counter("http_dropped_gap", "zerotrace_http_dropped_gap_total",
             "HTTP messages dropped for a gap at their start or in their headers",
             h.dropped_gap_at_start + h.dropped_gap_in_headers);
  r->Counter("http_framing_conflicts", "zerotrace_http_framing_conflicts_total",
             "requests with both Content-Length and Transfer-Encoding (error spans)",
             h.framing_conflicts);
  r->Counter(nullptr, "zerotrace_http_doubtful_requests_total",
             "requests inside the body of such a request (not paired: the server may not have "
             "seen them as requests)",
             h.doubtful_requests);
  r->Counter("http_heads_cut", "zerotrace_http_heads_cut_total",
             "message heads longer than the capture limit, kept up to the cut", h.heads_cut);
  r->Counter(nullptr, "zerotrace_http_tunnels_total",
             "connections that left HTTP/1.x (101 upgrade, CONNECT)", h.tunnels);
}

std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions& options) {
  return std::make_unique<Http1Protocol>(options);
}

}  // namespace zerotrace::protocols::http1
