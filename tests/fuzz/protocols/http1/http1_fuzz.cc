// libFuzzer target for the HTTP/1.x parser + stitcher: raw bytes, and generated conversations
// delivered with random chunking, gaps, holes and late events (checks pairing is never wrong).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "conn/byte_stream.h"
#include "protocols/http1/span_builder.h"
#include "protocols/http1/stitcher.h"
#include "protocols/http_common/route.h"
#include "trace/conn_endpoints.h"

namespace zt = zerotrace;
using zt::conn::ByteStream;
using zt::protocols::http1::CloseReason;
using zt::protocols::http1::Http1Stats;
using zt::protocols::http1::Http1Stitcher;
using zt::protocols::http1::HttpExchange;

namespace {

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

// One message-sized piece of a stream and the conversation index it belongs to.
struct Piece {
  std::string bytes;
  int id = -1;  // -1: not part of a generated message
};

// A write on one direction: bytes at a position, possibly not captured.
struct Event {
  bool response = false;
  uint64_t pos = 0;
  std::string bytes;
  uint64_t ts = 0;
  int kind = 0;  // 0 data, 1 gap, 2 truncated (head data, tail gap), 3 hole, 4 late
};

// HTTP1_FUZZ_VERBOSE=1 prints the schedule and the exchanges of each input (for triage).
const bool kVerbose = std::getenv("HTTP1_FUZZ_VERBOSE") != nullptr;

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c > 0x7e) {
      out += '.';
    } else {
      out += c;
    }
  }
  return out;
}

int IdOf(const zt::protocols::http1::HttpMessage& m) {
  const auto v = m.headers.Get("x-id");
  if (!v || v->empty() || v->size() > 6) return -1;
  int n = 0;
  for (char c : *v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

// Checks that hold for any input: bounded output, in-order pairing.
void CheckExchanges(const std::vector<HttpExchange>& out, const Http1Stats& stats,
                    bool ids_are_truth) {
  FUZZ_CHECK(stats.exchanges == out.size());
  FUZZ_CHECK(out.size() <= stats.requests_parsed);
  uint64_t last_req = 0, last_resp = 0;
  bool first = true;
  for (const HttpExchange& x : out) {
    if (!x.resp.has_value()) continue;
    if (!first) {
      FUZZ_CHECK(x.req.start_pos > last_req);
      FUZZ_CHECK(x.resp->start_pos > last_resp);
    }
    first = false;
    last_req = x.req.start_pos;
    last_resp = x.resp->start_pos;
    // A head cut short at close, or by the capture limit, may lack X-Id; that is not a wrong
    // pairing.
    const bool unknown = ((x.req.truncated || x.req.head_cut) && IdOf(x.req) < 0) ||
                         ((x.resp->truncated || x.resp->head_cut) && IdOf(*x.resp) < 0);
    if (ids_are_truth && !unknown) {
      if (IdOf(x.req) != IdOf(*x.resp)) {
        std::fprintf(stderr, "mispaired: request %d with response %d\n", IdOf(x.req),
                     IdOf(*x.resp));
        std::abort();
      }
    }
  }
}

// Bodies use lowercase letters only, so no body can look like a message start: any wrong
// pairing is then the stitcher's fault, not an ambiguity of the wire.
std::string Body(FuzzedDataProvider& fdp, size_t max) {
  const size_t n = fdp.ConsumeIntegralInRange<size_t>(0, max);
  return std::string(n, static_cast<char>('a' + n % 26));
}

std::string Chunked(FuzzedDataProvider& fdp, uint64_t* total) {
  std::string s;
  const int chunks = fdp.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < chunks; ++i) {
    const std::string b = Body(fdp, 40);
    if (b.empty()) continue;
    char hex[32];
    std::snprintf(hex, sizeof(hex), "%zx", b.size());
    s += hex;
    s += fdp.ConsumeBool() ? ";ext=1\r\n" : "\r\n";
    s += b + "\r\n";
    *total += b.size();
  }
  s += "0\r\n";
  if (fdp.ConsumeBool()) s += "Trailer-A: x\r\n";
  s += "\r\n";
  return s;
}

// A conversation: requests and their responses, each carrying X-Id.
void Generate(FuzzedDataProvider& fdp, std::vector<Piece>* reqs, std::vector<Piece>* resps) {
  const int n = fdp.ConsumeIntegralInRange(1, 12);
  for (int id = 0; id < n; ++id) {
    const bool last = id == n - 1;
    const int method = fdp.ConsumeIntegralInRange(0, last ? 4 : 3);
    std::string req, resp;
    const std::string xid = "X-Id: " + std::to_string(id) + "\r\n";
    uint64_t ignored = 0;
    switch (method) {
      case 0:
        req = "GET /items/" + std::to_string(id) + " HTTP/1.1\r\nHost: h\r\n" + xid + "\r\n";
        break;
      case 1:
        req = "HEAD /h HTTP/1.1\r\n" + xid + "\r\n";
        break;
      case 2: {
        const std::string b = Body(fdp, 60);
        req = "POST /p HTTP/1.1\r\nContent-Length: " + std::to_string(b.size()) + "\r\n" + xid +
              "\r\n" + b;
        break;
      }
      case 3:
        req = "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" + xid + "\r\n" +
              Chunked(fdp, &ignored);
        break;
      case 4:
        req = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + xid + "\r\n";
        break;
    }
    if (fdp.ConsumeIntegralInRange(0, 5) == 0) resp += "HTTP/1.1 100 Continue\r\n\r\n";
    const int framing = method == 4 ? 9 : fdp.ConsumeIntegralInRange(0, last ? 4 : 3);
    switch (framing) {
      case 0: {
        const std::string b = Body(fdp, 200);
        resp += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(b.size()) + "\r\n" + xid +
                "\r\n";
        if (method != 1) resp += b;
        break;
      }
      case 1:
        resp += "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + xid + "\r\n";
        if (method != 1) resp += Chunked(fdp, &ignored);
        break;
      case 2:
        resp += "HTTP/1.1 204 No Content\r\n" + xid + "\r\n";
        break;
      case 3:
        resp += "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n" + xid + "\r\n";
        break;
      case 4:
        resp += "HTTP/1.1 200 OK\r\nConnection: close\r\n" + xid + "\r\n";
        if (method != 1) resp += Body(fdp, 100);
        break;
      case 9:
        resp += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" + xid + "\r\n";
        resp += "\x81\x02hi";
        break;
    }
    reqs->push_back({req, id});
    resps->push_back({resp, id});
  }
}

// Splits pieces into writes and schedules them: a response write comes only after its
// request began (causality), with strictly increasing times.
std::vector<Event> Schedule(FuzzedDataProvider& fdp, const std::vector<Piece>& reqs,
                            const std::vector<Piece>& resps) {
  struct Cursor {
    const std::vector<Piece>* pieces;
    size_t piece = 0, off = 0;
    uint64_t pos = 0;
  };
  Cursor rq{&reqs}, rs{&resps};
  std::vector<bool> started(reqs.size() + 1, false);
  std::vector<Event> events;
  uint64_t ts = 1000;
  while (rq.piece < reqs.size() || rs.piece < resps.size()) {
    const bool resp_ok = rs.piece < resps.size() && started[static_cast<size_t>(rs.piece)];
    const bool req_ok = rq.piece < reqs.size();
    const bool pick_resp = resp_ok && (!req_ok || fdp.ConsumeBool());
    Cursor& c = pick_resp ? rs : rq;
    if (!pick_resp && !req_ok) break;
    // A write is up to the rest of this piece, or may run into following pieces (pipelining).
    size_t len = fdp.ConsumeIntegralInRange<size_t>(1, 64);
    std::string write;
    while (len > 0 && c.piece < c.pieces->size()) {
      const std::string& b = (*c.pieces)[c.piece].bytes;
      if (!pick_resp) started[c.piece] = true;
      if (pick_resp && !started[c.piece]) break;
      const size_t take = std::min(len, b.size() - c.off);
      write.append(b, c.off, take);
      c.off += take;
      len -= take;
      if (c.off == b.size()) {
        ++c.piece;
        c.off = 0;
        if (fdp.ConsumeBool()) break;
      }
    }
    if (write.empty()) continue;
    Event e;
    e.response = pick_resp;
    e.pos = c.pos;
    e.bytes = std::move(write);
    e.ts = ts += 1 + fdp.ConsumeIntegralInRange<uint64_t>(0, 1000);
    // About one write in ten is not delivered whole: 1 gap, 2 truncated, 3 hole, 4 late.
    const int r = fdp.ConsumeIntegralInRange(0, 40);
    e.kind = r >= 35 && r <= 38 ? r - 34 : 0;
    c.pos += e.bytes.size();
    events.push_back(std::move(e));
  }
  return events;
}

// `lent`: the bytes are the ring buffer's (a copy that the caller overwrites once the stream
// is settled), read where they lie as the connection table has them read; a truncated write
// is then a lent head followed by a gap of its syscall (a body the kernel skipped).
void Deliver(ByteStream& s, const Event& e, FuzzedDataProvider& fdp,
             const std::string* lent = nullptr) {
  if (lent != nullptr && (e.kind == 0 || e.kind == 2)) {
    const size_t keep =
        e.kind == 0 ? lent->size() : fdp.ConsumeIntegralInRange<size_t>(0, lent->size());
    s.AddDataLent(e.pos, std::string_view(*lent).substr(0, keep), e.ts);
    if (keep < lent->size()) s.AddGap(e.pos + keep, lent->size() - keep, e.ts);
    return;
  }
  switch (e.kind) {
    case 1:
      s.AddGap(e.pos, e.bytes.size(), e.ts);
      break;
    case 2: {
      const size_t keep = fdp.ConsumeIntegralInRange<size_t>(0, e.bytes.size());
      s.AddData(e.pos, std::string_view(e.bytes).substr(0, keep), e.ts);
      s.AddGap(e.pos + keep, e.bytes.size() - keep, e.ts);
      break;
    }
    case 3:
      break;  // lost in flight: a hole until close
    default:
      s.AddData(e.pos, e.bytes, e.ts);
  }
}

// The agent's path: exchanges handed over where they lie (copied here), not appended.
class CopyingSink final : public zt::protocols::http1::ExchangeSink {
 public:
  explicit CopyingSink(std::vector<HttpExchange>* out) : out_(out) {}
  void OnExchange(HttpExchange& x) override { out_->push_back(x); }

 private:
  std::vector<HttpExchange>* out_;
};

[[maybe_unused]] void RunConversation(FuzzedDataProvider& fdp) {
  std::vector<Piece> reqs, resps;
  Generate(fdp, &reqs, &resps);
  std::vector<Event> events = Schedule(fdp, reqs, resps);
  if (kVerbose) {
    for (const Event& e : events) {
      std::fprintf(stderr, "%s pos=%lu ts=%lu kind=%d [%s]\n", e.response ? "RESP" : "REQ ",
                   static_cast<unsigned long>(e.pos), static_cast<unsigned long>(e.ts), e.kind,
                   Escape(e.bytes).c_str());
    }
  }
  Http1Stats stats;
  Http1Stitcher st(&stats);
  ByteStream rq, rs;
  std::vector<HttpExchange> out;
  CopyingSink sink(&out);
  if (events.size() % 2 == 1) st.set_sink(&sink);  // half the inputs, without consuming bytes
  std::vector<const Event*> late;
  uint64_t now = 0;
  bool lossless = true;  // no gap, hole, late event or timeout: every request must pair
  for (const Event& e : events) lossless &= e.kind == 0;
  for (const Event& e : events) {
    now = e.ts;
    if (e.kind == 4) {  // delivered after some later events, with its own time
      late.push_back(&e);
      continue;
    }
    std::string lent;  // the ring buffer's slot: valid until the streams are settled
    if (fdp.ConsumeBool()) {
      lent = e.bytes;
      Deliver(e.response ? rs : rq, e, fdp, &lent);
    } else {
      Deliver(e.response ? rs : rq, e, fdp);
    }
    if (!late.empty() && fdp.ConsumeBool()) {
      Event copy = *late.back();
      copy.kind = 0;
      Deliver(copy.response ? rs : rq, copy, fdp);
      late.pop_back();
    }
    st.Advance(rq, rs, now, &out);
    rq.Settle();
    rs.Settle();
    std::fill(lent.begin(), lent.end(), '\xee');  // the slot is reused
    if (fdp.ConsumeIntegralInRange(0, 15) == 0) {
      lossless = false;
      st.Expire(now, &out, fdp.ConsumeIntegralInRange<uint64_t>(1, 5000));
    }
  }
  for (const Event* e : late) {
    Event copy = *e;
    copy.kind = 0;
    Deliver(copy.response ? rs : rq, copy, fdp);
  }
  st.Advance(rq, rs, now, &out);
  st.OnClose(rq, rs, fdp.ConsumeBool() ? CloseReason::kReset : CloseReason::kClosed, &out);
  if (kVerbose) {
    for (const HttpExchange& x : out) {
      std::fprintf(stderr, "exchange req %d @%lu ts=%lu -> resp %d @%lu ts=%lu %s\n", IdOf(x.req),
                   static_cast<unsigned long>(x.req.start_pos),
                   static_cast<unsigned long>(x.req.start_ts_ns), x.resp ? IdOf(*x.resp) : -2,
                   static_cast<unsigned long>(x.resp ? x.resp->start_pos : 0),
                   static_cast<unsigned long>(x.resp ? x.resp->start_ts_ns : 0),
                   x.error_type.c_str());
    }
  }
  CheckExchanges(out, stats, /*ids_are_truth=*/true);
  FUZZ_CHECK(out.size() <= reqs.size());
  if (lossless) {
    FUZZ_CHECK(out.size() == reqs.size());
    for (const HttpExchange& x : out) FUZZ_CHECK(x.resp.has_value() && x.error_type.empty());
  }
}

// Arbitrary bytes in both directions, delivered in arbitrary pieces and gaps.
void RunRaw(FuzzedDataProvider& fdp) {
  Http1Stats stats;
  Http1Stitcher st(&stats);
  ByteStream rq(4096), rs(4096);
  uint64_t pos[2] = {0, 0};
  uint64_t ts = 1;
  std::vector<HttpExchange> out;
  CopyingSink sink(&out);
  if (fdp.remaining_bytes() % 2 == 1) st.set_sink(&sink);
  while (fdp.remaining_bytes() > 0) {
    const int op = fdp.ConsumeIntegralInRange(0, 7);
    const int dir = op & 1;
    ByteStream& s = dir ? rs : rq;
    ts += fdp.ConsumeIntegralInRange<uint64_t>(0, 100);
    if (op < 6) {
      const std::string bytes = fdp.ConsumeRandomLengthString(300);
      s.AddData(pos[dir], bytes, ts);
      pos[dir] += bytes.size();
    } else {
      const uint64_t n = fdp.ConsumeIntegralInRange<uint64_t>(1, 70000);
      if (fdp.ConsumeBool()) s.AddGap(pos[dir], n, ts);
      pos[dir] += n;
    }
    st.Advance(rq, rs, ts, &out);
    if (fdp.ConsumeIntegralInRange(0, 31) == 0) st.Expire(ts, &out, 50);
  }
  st.OnClose(rq, rs, CloseReason::kClosed, &out);
  CheckExchanges(out, stats, /*ids_are_truth=*/false);
  // One span slot, reused from exchange to exchange and side to side, as the agent's are.
  static const zt::trace::ConnEndpoints kEnds{true, true, "10.0.0.2", "10.0.0.1", 8080, 40000};
  zt::protocols::ExchangeDone done;
  for (const HttpExchange& x : out) {
    // Route helpers must accept whatever a parsed target holds.
    const auto parts = zt::protocols::http_common::SplitTarget(x.req.target);
    (void)zt::protocols::http_common::InferRoute(parts.path);
    (void)zt::protocols::http_common::RedactQuery(parts.query);
    // And so must the span build, on either side, with or without routes.
    for (const uint8_t role : {uint8_t{ZT_ROLE_CLIENT}, uint8_t{ZT_ROLE_SERVER}}) {
      const zt::protocols::SessionContext ctx{role, (x.seq & 1) != 0, &kEnds};
      zt::protocols::http1::BuildExchange(x, ctx, {(x.seq & 2) == 0}, ts, &done);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
#ifdef HTTP1_FUZZ_RAW_ONLY
  // http1_parser_fuzz: arbitrary bytes through the parsers and stitcher, about ten times as many
  // executions per second as conversations (whose generator and pairing checks are the cost).
  RunRaw(fdp);
#else
  if (fdp.ConsumeBool()) {
    RunConversation(fdp);
  } else {
    RunRaw(fdp);
  }
#endif
  return 0;
}
