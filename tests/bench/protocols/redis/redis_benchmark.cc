// The Redis hot path: commands and replies through the RESP parser and the session (pairing,
// sanitised query text, span attributes), as the protocol stage drives it.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "protocols/redis/session.h"

namespace zerotrace::protocols::redis {
namespace {

std::string Cmd(const std::vector<std::string>& words) {
  std::string out = "*" + std::to_string(words.size()) + "\r\n";
  for (const std::string& w : words) out += "$" + std::to_string(w.size()) + "\r\n" + w + "\r\n";
  return out;
}

// `pipeline` commands per write (GET/SET/INCRBY/HGETALL in turn), their replies in one read.
void BM_RedisExchanges(benchmark::State& state) {
  const int pipeline = static_cast<int>(state.range(0));
  std::string writes, reads;
  for (int i = 0; i < pipeline; i++) {
    switch (i % 4) {
      case 0:
        writes += Cmd({"GET", "user:1000:profile"});
        reads += "$40\r\n" + std::string(40, 'p') + "\r\n";
        break;
      case 1:
        writes += Cmd({"SET", "session:abcdef", std::string(64, 'v'), "EX", "3600"});
        reads += "+OK\r\n";
        break;
      case 2:
        writes += Cmd({"INCRBY", "counter:requests", "1"});
        reads += ":123456\r\n";
        break;
      default:
        writes += Cmd({"HGETALL", "cart:42"});
        reads += "*4\r\n$4\r\nitem\r\n$3\r\nsku\r\n$3\r\nqty\r\n$1\r\n2\r\n";
        break;
    }
  }
  conn::ByteStream req, resp;
  RedisStats stats;
  SessionContext ctx;
  RedisSession session(ctx, false, &stats);
  SessionOutput out;
  uint64_t req_pos = 0, resp_pos = 0, ts = 1;
  for (auto _ : state) {
    req.AddData(req_pos, writes, ++ts, 1);
    req_pos += writes.size();
    session.Advance(req, resp, ts, &out);
    resp.AddData(resp_pos, reads, ++ts, 1);
    resp_pos += reads.size();
    session.Advance(req, resp, ts, &out);
    benchmark::DoNotOptimize(out.exchanges());
    out.Clear();
  }
  state.SetItemsProcessed(state.iterations() * pipeline);
}
BENCHMARK(BM_RedisExchanges)->Arg(1)->Arg(16)->Arg(128);

}  // namespace
}  // namespace zerotrace::protocols::redis
