// SpanLinker hot path: Start + Finish per request, for the shapes a node's traffic takes.
#include <benchmark/benchmark.h>

#include <string>

#include "trace/span_linker.h"

namespace zerotrace::trace {
namespace {

ConnEnds Conn(uint16_t client_port) {
  ConnEnds c;
  c.known = c.from_start = true;
  c.client_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  c.server_addr = c.client_addr;
  c.client_port = client_port;
  c.server_port = 8080;
  c.netns = 1;
  return c;
}

RequestStart Req(bool server, uint32_t tgid, uint32_t tid, uint64_t ts, const ConnEnds& conn,
                 uint64_t pos) {
  RequestStart r;
  r.server = server;
  r.tgid = tgid;
  r.tid = tid;
  r.start_ns = ts;
  r.conn = conn;
  r.stream_pos = pos;
  r.operation = "GET /api/orders/12345?page=2";
  return r;
}

// One same-node exchange: the caller's client span and the server's span, linked by peer;
// both finish. Items are requests (2 spans each).
void BM_PeerPair(benchmark::State& state) {
  uint64_t released = 0;
  SpanLinker linker([&released](Span&&) { released++; });
  uint64_t ts = 1'000'000'000, pos = 0;
  const ConnEnds conn = Conn(40000);
  for (auto _ : state) {
    const uint64_t c = linker.Start(Req(false, 1, 1, ts, conn, pos));
    const uint64_t s = linker.Start(Req(true, 2, 2, ts + 10, conn, pos));
    linker.Finish(s, Span(), ts + 20, 2);
    linker.Finish(c, Span(), ts + 30, 0);
    ts += 1000;
    pos += 100;
    if ((ts & 0xfffff) == 0) linker.Tick(ts);
  }
  benchmark::DoNotOptimize(released);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PeerPair);

// A server that calls a backend while serving (thread evidence), 64 threads busy at once.
void BM_ServerWithCall(benchmark::State& state) {
  uint64_t released = 0;
  SpanLinker linker([&released](Span&&) { released++; });
  uint64_t ts = 1'000'000'000;
  uint32_t tid = 0;
  for (auto _ : state) {
    tid = tid % 64 + 1;
    const uint64_t s = linker.Start(Req(true, 2, tid, ts, ConnEnds{}, 0));
    const uint64_t c = linker.Start(Req(false, 2, tid, ts + 10, ConnEnds{}, 0));
    linker.Finish(c, Span(), ts + 20, 0);
    linker.Finish(s, Span(), ts + 30, tid);
    ts += 1000;
    if ((ts & 0xfffff) == 0) linker.Tick(ts);
  }
  benchmark::DoNotOptimize(released);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ServerWithCall);

// A multiplexing server (HTTP/2: judged process-wide) with 8 requests in flight, each calling
// out with the request id and W3C context it was given: the evidence path. Items are requests.
void BM_MultiplexedServerWithEvidence(benchmark::State& state) {
  uint64_t released = 0;
  SpanLinker linker([&released](Span&&) { released++; });
  constexpr int kInFlight = 8;
  std::string ids[kInFlight], contexts[kInFlight];
  for (int i = 0; i < kInFlight; i++) {
    ids[i] = "req-" + std::to_string(1000000 + i);
    contexts[i] = "00-4bf92f3577b34da6a3ce929d0e0e47" + std::to_string(10 + i) +
                  "-00f067aa0ba902b7-01";
  }
  uint64_t in_flight[kInFlight] = {};
  uint64_t ts = 1'000'000'000;
  int i = 0;
  for (auto _ : state) {
    if (in_flight[i] != 0) linker.Finish(in_flight[i], Span(), ts, 1);
    RequestStart s = Req(true, 2, 1, ts, ConnEnds{}, 0);
    s.multiplexed = true;
    s.correlation = ids[i];
    s.traceparent = contexts[i];
    in_flight[i] = linker.Start(s);
    RequestStart c = Req(false, 2, 3, ts + 10, ConnEnds{}, 0);
    c.operation = "POST /pkg.Backend/Get";
    c.correlation = ids[i];
    c.traceparent = contexts[i];
    linker.Finish(linker.Start(c), Span(), ts + 20, 0);
    i = (i + 1) % kInFlight;
    ts += 1000;
    if ((ts & 0xfffff) == 0) linker.Tick(ts);
  }
  benchmark::DoNotOptimize(released);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MultiplexedServerWithEvidence);

}  // namespace
}  // namespace zerotrace::trace
