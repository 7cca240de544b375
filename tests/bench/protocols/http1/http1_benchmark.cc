// Parser + stitcher throughput on recorded keep-alive byte streams (items/s = exchanges/s).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "conn/byte_stream.h"
#include "conn/conn_table.h"
#include "protocols/http1/span_builder.h"
#include "protocols/http1/stitcher.h"

namespace zerotrace::protocols::http1 {
namespace {

// A typical API request: ~300 bytes of realistic headers, no body.
const std::string& Request() {
  static const std::string r =
      "GET /api/v1/users/12345/orders?limit=20&offset=40 HTTP/1.1\r\n"
      "Host: orders.internal.example.com:8080\r\n"
      "User-Agent: python-requests/2.31.0\r\n"
      "Accept: application/json\r\n"
      "Accept-Encoding: gzip, deflate\r\n"
      "Connection: keep-alive\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "X-Request-Id: 7f3c1e2a-9b4d-4c8e-a1f2-3d4e5f6a7b8c\r\n"
      "\r\n";
  return r;
}

// A 1 KiB JSON body with Content-Length.
const std::string& Response() {
  static const std::string r =
      "HTTP/1.1 200 OK\r\n"
      "Server: nginx/1.22.1\r\n"
      "Date: Tue, 14 May 2024 10:00:00 GMT\r\n"
      "Content-Type: application/json\r\n"
      "Content-Length: 1024\r\n"
      "Connection: keep-alive\r\n"
      "Cache-Control: no-store\r\n"
      "\r\n" +
      std::string(1024, 'x');
  return r;
}

// One write per message, one Advance per write: the agent's per-event path.
void BM_KeepAliveExchange(benchmark::State& state) {
  const std::string& req = Request();
  const std::string& resp = Response();
  conn::ByteStream requests, responses;
  Http1Stats stats;
  Http1Stitcher stitcher(&stats);
  std::vector<HttpExchange> out;
  out.reserve(64);
  uint64_t req_pos = 0, resp_pos = 0, ts = 1;
  for (auto _ : state) {
    requests.AddData(req_pos, req, ++ts);
    req_pos += req.size();
    stitcher.Advance(requests, responses, ts, &out);
    responses.AddData(resp_pos, resp, ++ts);
    resp_pos += resp.size();
    stitcher.Advance(requests, responses, ts, &out);
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  if (stats.exchanges != static_cast<uint64_t>(state.iterations())) state.SkipWithError("lost");
  state.SetItemsProcessed(static_cast<int64_t>(stats.exchanges));
  state.SetBytesProcessed(static_cast<int64_t>(stats.exchanges * (req.size() + resp.size())));
}
BENCHMARK(BM_KeepAliveExchange);

// One exchange of the typical request and response above, as the stitcher emits it.
HttpExchange TypicalExchange() {
  conn::ByteStream requests, responses;
  Http1Stats stats;
  Http1Stitcher stitcher(&stats);
  std::vector<HttpExchange> out;
  requests.AddData(0, Request(), 1);
  stitcher.Advance(requests, responses, 1, &out);
  responses.AddData(0, Response(), 2);
  stitcher.Advance(requests, responses, 2, &out);
  return std::move(out.at(0));
}

// The span of one exchange, both sides (items/s = spans/s): runs once per traced request end.
void BM_BuildSpan(benchmark::State& state) {
  const HttpExchange x = TypicalExchange();
  const trace::ConnEndpoints ends[2] = {{true, true, "127.0.0.1", "10.1.2.3", 8080, 51234},
                                        {true, false, "10.1.2.3", "127.0.0.1", 51234, 8080}};
  const WallClock clock;
  const SpanOptions options;
  auto resource = std::make_shared<const trace::Resource>();
  int side = 0;
  for (auto _ : state) {
    // What the protocol stage does per exchange: the HTTP half, then the neutral half.
    ExchangeDone done;
    const trace::ConnEndpoints& e = ends[side];
    const SessionContext ctx{e.server ? uint8_t{ZT_ROLE_SERVER} : uint8_t{ZT_ROLE_CLIENT}, false,
                             &e};
    BuildExchange(x, ctx, options, 3, &done);
    trace::FrameSpan(done.start_ns, done.end_ns, e, clock, resource, &done.span);
    benchmark::DoNotOptimize(done.span.attributes.data());
    side ^= 1;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_BuildSpan);

// The response arrives in three reads (head, then the body in two parts).
void BM_SegmentedResponse(benchmark::State& state) {
  const std::string& req = Request();
  const std::string& resp = Response();
  const size_t cut1 = resp.size() - 1024, cut2 = resp.size() - 512;
  conn::ByteStream requests, responses;
  Http1Stats stats;
  Http1Stitcher stitcher(&stats);
  std::vector<HttpExchange> out;
  out.reserve(64);
  uint64_t req_pos = 0, resp_pos = 0, ts = 1;
  for (auto _ : state) {
    requests.AddData(req_pos, req, ++ts);
    req_pos += req.size();
    stitcher.Advance(requests, responses, ts, &out);
    const std::string_view r(resp);
    for (auto part : {r.substr(0, cut1), r.substr(cut1, cut2 - cut1), r.substr(cut2)}) {
      responses.AddData(resp_pos, part, ++ts);
      resp_pos += part.size();
      stitcher.Advance(requests, responses, ts, &out);
    }
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  state.SetItemsProcessed(static_cast<int64_t>(stats.exchanges));
}
BENCHMARK(BM_SegmentedResponse);

// 16 pipelined requests in one write, their responses in one read.
void BM_PipelinedBatch(benchmark::State& state) {
  constexpr int kBatch = 16;
  std::string reqs, resps;
  for (int i = 0; i < kBatch; ++i) {
    reqs += Request();
    resps += Response();
  }
  conn::ByteStream requests, responses;
  Http1Stats stats;
  Http1Stitcher stitcher(&stats);
  std::vector<HttpExchange> out;
  out.reserve(64);
  uint64_t req_pos = 0, resp_pos = 0, ts = 1;
  for (auto _ : state) {
    requests.AddData(req_pos, reqs, ++ts);
    req_pos += reqs.size();
    responses.AddData(resp_pos, resps, ++ts);
    resp_pos += resps.size();
    stitcher.Advance(requests, responses, ts, &out);
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  state.SetItemsProcessed(static_cast<int64_t>(stats.exchanges));
}
BENCHMARK(BM_PipelinedBatch);

}  // namespace
}  // namespace zerotrace::protocols::http1
