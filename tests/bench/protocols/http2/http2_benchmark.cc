// HTTP/2 session throughput on byte streams a real encoder made (items/s = exchanges/s on one
// core): a GET with a 1 KiB answer, and a unary gRPC call, each stream one write per direction.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "h2_test_util.h"

namespace zerotrace::protocols::http2 {
namespace {

using testing::FrameWriter;

constexpr int kStreamsPerConn = 4096;

struct Recorded {
  std::string preface;
  std::vector<std::string> requests, responses;  // one write per stream and direction
};

// One connection's streams, encoded once by nghttp2's HPACK encoder (its dynamic table makes
// the later header blocks small, as on a real connection).
Recorded Record(bool grpc) {
  Recorded r;
  FrameWriter client, server;
  r.preface = std::string(kClientPreface) + FrameWriter::Settings();
  for (int i = 0; i < kStreamsPerConn; i++) {
    const uint32_t id = 1 + 2 * static_cast<uint32_t>(i);
    if (grpc) {
      r.requests.push_back(
          client.Headers(
              id,
              testing::GrpcRequest("/shop.v1.Orders/GetOrder",
                                   {{"user-agent", "grpc-python/1.51.1"}, {"grpc-timeout", "10S"}}),
              false) +
          FrameWriter::Data(id, FrameWriter::GrpcMessage(std::string(40, 'q')), true));
      r.responses.push_back(
          server.Headers(id, testing::Status(200, {{"content-type", "application/grpc"}}), false) +
          FrameWriter::Data(id, FrameWriter::GrpcMessage(std::string(200, 'r')), false) +
          server.Headers(id, {{"grpc-status", "0"}}, true));
    } else {
      r.requests.push_back(client.Headers(
          id,
          testing::Request(
              "GET", "/api/v1/users/" + std::to_string(10000 + i) + "/orders?limit=20",
              "orders.internal.example.com:8080",
              {{"user-agent", "python-httpx/0.27"},
               {"accept", "application/json"},
               {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}),
          true));
      r.responses.push_back(
          server.Headers(id,
                         testing::Status(200, {{"content-type", "application/json"},
                                               {"server", "nginx/1.22.1"}}),
                         false) +
          FrameWriter::Data(id, std::string(1024, 'x'), true));
    }
  }
  return r;
}

void Run(benchmark::State& state, bool grpc) {
  const Recorded rec = Record(grpc);
  trace::ConnEndpoints ends;
  ends.known = true;
  ends.local_address = "127.0.0.1";
  ends.remote_address = "10.0.0.2";
  ends.local_port = 40000;
  ends.remote_port = 8080;
  Http2Protocol protocol({});
  const SessionContext ctx{ZT_ROLE_CLIENT, false, &ends};
  std::unique_ptr<Session> session;
  std::unique_ptr<conn::ByteStream> req, resp;
  uint64_t req_pos = 0, resp_pos = 0, ts = 1;
  SessionOutput out;
  int i = kStreamsPerConn;
  for (auto _ : state) {
    if (i == kStreamsPerConn) {  // a new connection: same bytes, fresh tables
      state.PauseTiming();
      session = protocol.NewSession(ctx);
      req = std::make_unique<conn::ByteStream>();
      resp = std::make_unique<conn::ByteStream>();
      req->AddData(0, rec.preface, ++ts);
      req_pos = rec.preface.size();
      resp_pos = 0;
      i = 0;
      state.ResumeTiming();
    }
    req->AddData(req_pos, rec.requests[i], ++ts);
    req_pos += rec.requests[i].size();
    session->Advance(*req, *resp, ts, &out);
    resp->AddData(resp_pos, rec.responses[i], ++ts);
    resp_pos += rec.responses[i].size();
    session->Advance(*req, *resp, ts, &out);
    if (out.exchanges() != 1) state.SkipWithError("no exchange");
    out.Clear();
    i++;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Http2GetExchange(benchmark::State& state) { Run(state, false); }
void BM_GrpcUnaryExchange(benchmark::State& state) { Run(state, true); }
BENCHMARK(BM_Http2GetExchange);
BENCHMARK(BM_GrpcUnaryExchange);

}  // namespace
}  // namespace zerotrace::protocols::http2
