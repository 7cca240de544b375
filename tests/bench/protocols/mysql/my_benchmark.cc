// MySQL exchanges per second on one core: a COM_QUERY answered by a small result set, one
// answered by OK, and a prepared statement's execution, through the session (framing, sequence
// ids, pairing, SQL summary, span).
#include <benchmark/benchmark.h>

#include <string>

#include "my_wire_builder.h"
#include "protocols/mysql/my_session.h"

namespace zerotrace::protocols::mysql {
namespace {

using namespace testing;  // NOLINT: the packet builders

void Run(benchmark::State& state, const std::string& setup_req, const std::string& setup_reply,
         const std::string& request, const std::string& reply) {
  trace::ConnEndpoints ends;
  MyStats stats;
  MySession session({ZT_ROLE_CLIENT, false, &ends}, false, &stats);
  conn::ByteStream req, resp;
  uint64_t rp = 0, sp = 0, ts = 1;
  SessionOutput out;
  auto send = [&](const std::string& b) {
    req.AddData(rp, b, ts++, 1);
    rp += b.size();
    session.Advance(req, resp, ts, &out);
  };
  auto recv = [&](const std::string& b) {
    resp.AddData(sp, b, ts++, 1);
    sp += b.size();
    session.Advance(req, resp, ts, &out);
  };
  recv(Greeting());
  send(HandshakeResponse(kCaps | kClientDeprecateEof, "app", "shop"));
  recv(Ok(2));
  if (!setup_req.empty()) send(setup_req), recv(setup_reply);
  const uint64_t before = stats.calls;
  out.Clear();
  for (auto _ : state) {
    send(request);
    recv(reply);
    benchmark::DoNotOptimize(out.exchanges());
    out.Clear();
  }
  state.SetItemsProcessed(state.iterations());
  if (stats.calls - before != static_cast<uint64_t>(state.iterations()) || stats.desyncs != 0) {
    state.SkipWithError("exchanges lost");
  }
}

void BM_QueryFiveRows(benchmark::State& state) {
  Run(state, "", "",
      Query("SELECT id, name, price FROM products WHERE category = 'books' AND price < 20.5"),
      ResultSet(5, /*deprecate_eof=*/true, 9));
}
BENCHMARK(BM_QueryFiveRows);

void BM_QueryOk(benchmark::State& state) {
  Run(state, "", "", Query("UPDATE accounts SET balance = balance + 10 WHERE id = 7"), Ok(1, 1));
}
BENCHMARK(BM_QueryOk);

void BM_PreparedExecute(benchmark::State& state) {
  Run(state, Cmd(kComStmtPrepare, "SELECT name FROM users WHERE id = ?"),
      PrepareOk(1, 1, 1, 1) + ColumnDef(2, "?") + ColumnDef(3, "name"), Execute(1),
      Pkt(1, Lenenc(1)) + ColumnDef(2, "name") +
          Pkt(3, std::string("\x00\x00", 2) + LenencStr("ann")) + OkEof(4));
}
BENCHMARK(BM_PreparedExecute);

}  // namespace
}  // namespace zerotrace::protocols::mysql
