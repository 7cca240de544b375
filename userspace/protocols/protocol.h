// The protocol interface: what each protocol (one folder under protocols/) implements so the
// protocol stage can detect it on a connection, parse both byte streams and stitch exchanges.
#pragma once

#include <zerotrace/events.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/counters.h"
#include "conn/byte_stream.h"
#include "protocols/close_reason.h"
#include "trace/conn_endpoints.h"
#include "trace/span.h"

namespace zerotrace::protocols {

// A detection answer. kMaybe: too few bytes to tell yet.
enum class Verdict : uint8_t { kNo = 0, kYes = 1, kMaybe = 2 };

struct Detection {
  Verdict verdict = Verdict::kNo;
  // With kYes: this process's side of the connection (ZT_ROLE_CLIENT or ZT_ROLE_SERVER), when
  // the protocol can tell it from the bytes; ZT_ROLE_UNKNOWN leaves the kernel's role.
  uint8_t role = ZT_ROLE_UNKNOWN;
};

// The first bytes of both directions of a connection that is followed from its first byte
// (or from the point where an earlier protocol on it, such as an HTTP/1 upgrade, ended).
struct StartBytes {
  std::string_view sent;           // captured bytes this process sent, from the start
  std::string_view received;       // captured bytes it received, from the start
  uint8_t role = ZT_ROLE_UNKNOWN;  // the kernel's role (client after connect, server after accept)
  bool tls = false;                // the bytes are TLS plaintext
};

// The first bytes of one syscall in the middle of a stream: the agent started after the
// connection did, or a gap swallowed a message start. A protocol that can recognise a
// request start there says kYes (and the role that implies); the stage resumes from it.
struct ResyncBytes {
  std::string_view bytes;             // captured bytes from the syscall's first byte
  uint8_t direction = ZT_DIR_EGRESS;  // ZT_DIR_EGRESS: this process sent them
  uint8_t role = ZT_ROLE_UNKNOWN;     // the role, when known
};

// A request whose head has been parsed: its span id is fixed now, so that calls made while
// serving it can name it as their parent.
struct RequestStarted {
  uint64_t id = 0;          // the session's number for it; its ExchangeDone carries the same
  uint64_t start_ns = 0;    // monotonic time of its first byte (0: unknown, the stage uses now)
  uint32_t tid = 0;         // thread that read (server) or wrote (client) its first byte
  uint64_t stream_pos = 0;  // position of that byte in the client-to-server stream
  // What a proxy forwarding this request would repeat (HTTP: "METHOD target"): evidence that
  // a call a process makes serves this request.
  std::string operation;
  std::string correlation;  // a request-id value it carries (see trace::IsCorrelationHeader)
  std::string traceparent;  // propagated W3C context, raw; empty when absent
  std::string tracestate;
  // The connection carries several requests at once (HTTP/2 streams): the thread that read a
  // request proves nothing about which thread serves it.
  bool multiplexed = false;
};

// One finished request/response exchange, protocol-neutral: times and the protocol's half of
// the span (name, attributes after its conventions, status). The stage adds the rest: kind,
// wall-clock times, the connection's addresses, the resource, ids and parent.
struct ExchangeDone {
  uint64_t id = 0;            // its RequestStarted's id; 0: its start was never reported
  uint64_t start_ns = 0;      // monotonic time of the request's first byte
  uint64_t end_ns = 0;        // of the response's last byte; 0: none (the stage uses now)
  uint32_t response_tid = 0;  // thread that wrote (server) or read (client) the response
  trace::Span span;           // name, attributes, status and status_message only
};

// What a session call produced, in order. Storage is reused across calls: a steady stream of
// exchanges allocates nothing here.
class SessionOutput {
 public:
  // A reused slot: every field the protocol does not set keeps its default (strings excepted,
  // which each protocol assigns).
  RequestStarted& AddStart() {
    RequestStarted& r = Next(starts_, n_starts_);
    r.multiplexed = false;
    return r;
  }
  ExchangeDone& AddExchange() { return Next(exchanges_, n_exchanges_); }
  size_t starts() const { return n_starts_; }
  size_t exchanges() const { return n_exchanges_; }
  RequestStarted& start(size_t i) { return starts_[i]; }
  ExchangeDone& exchange(size_t i) { return exchanges_[i]; }
  // The session asks that each syscall carrying its connection's responses (a client's
  // receives, a server's sends) copy at most `cap` bytes (0: lift the cap); ProtocolStage tells
  // the kernel. The last ask of a call counts.
  void AskHeadCap(uint32_t cap) { head_cap_ask_ = cap + 1; }
  // The ask of this call: the cap plus one, 0 when none.
  uint32_t head_cap_ask() const { return head_cap_ask_; }
  void Clear() {
    n_starts_ = n_exchanges_ = 0;
    head_cap_ask_ = 0;
  }

 private:
  template <typename T>
  static T& Next(std::vector<T>& v, size_t& n) {
    if (n == v.size()) v.emplace_back();
    return v[n++];
  }
  std::vector<RequestStarted> starts_;
  std::vector<ExchangeDone> exchanges_;
  size_t n_starts_ = 0, n_exchanges_ = 0;
  uint32_t head_cap_ask_ = 0;
};

// What a session knows of its connection.
struct SessionContext {
  uint8_t role = ZT_ROLE_CLIENT;  // this process's side: ZT_ROLE_CLIENT or ZT_ROLE_SERVER
  bool tls = false;               // the streams are TLS plaintext
  // Formatted once per connection; lives as long as the session.
  const trace::ConnEndpoints* endpoints = nullptr;
  // Claimed mid-stream (DetectResync): answers to requests sent before the session's first
  // one may still arrive.
  bool mid_stream = false;
};

// One connection's parser and stitcher. `requests` is the client-to-server stream (what a
// client sent, what a server received), `responses` the other. Consumer thread only.
class Session {
 public:
  virtual ~Session() = default;
  // Hot path. Parses both streams as far as they go; reports requests as they start and
  // exchanges as they finish. `now_ns` (monotonic) times what the bytes do not.
  virtual void Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
                       SessionOutput* out) = 0;
  // The connection ended (its holes are gaps now): finish what can be, and report unanswered
  // requests as error exchanges, as `reason` allows. `now_ns`: when the end was seen.
  virtual void Close(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
                     uint64_t now_ns, SessionOutput* out) = 0;
  // Requests unanswered for too long become error exchanges (called about once a second).
  virtual void Expire(uint64_t now_ns, SessionOutput* out) = 0;
  // True once the connection left this protocol (an upgrade, a tunnel): the stage detects
  // again from where the streams now stand.
  virtual bool Left() const { return false; }
};

// Options every protocol may honour.
struct ProtocolOptions {
  bool infer_routes = true;  // span names with route templates ("GET /users/{id}")
};

// A protocol: detection, sessions, and its counters (shared by its sessions).
class Protocol {
 public:
  virtual ~Protocol() = default;
  // Lower-case, as in counters and attributes ("http1", "http2", "postgresql").
  virtual std::string_view name() const = 0;
  // Cheap: called on the first bytes of a connection until every protocol says yes or no.
  virtual Detection DetectStart(const StartBytes& bytes) const = 0;
  // Cheap: called on the first bytes of syscalls mid-stream. Protocols that cannot tell a
  // message start there (without state they do not have) say kNo.
  virtual Detection DetectResync(const ResyncBytes&) const { return {}; }
  virtual std::unique_ptr<Session> NewSession(const SessionContext& context) = 0;
  // The protocol's counters (its sessions', summed), for the stats line and /metrics.
  virtual void ReportCounters(CounterReport* report) const = 0;
};

}  // namespace zerotrace::protocols
