// PostgreSQL exchanges per second on one core: a simple Query with a few rows, and a pipelined
// extended-protocol batch, through the session (framing, pairing, SQL summary, span).
#include <benchmark/benchmark.h>

#include <string>

#include "pg_wire_builder.h"
#include "protocols/postgres/pg_session.h"

namespace zerotrace::protocols::postgres {
namespace {

using namespace testing;  // NOLINT: the message builders

void Run(benchmark::State& state, const std::string& request, const std::string& reply,
         int calls_per_round) {
  trace::ConnEndpoints ends;
  PgStats stats;
  PgSession session({ZT_ROLE_CLIENT, false, &ends}, false, &stats);
  conn::ByteStream req, resp;
  uint64_t rp = 0, sp = 0, ts = 1;
  SessionOutput out;
  const std::string hello = Startup({{"user", "app"}, {"database", "shop"}});
  req.AddData(rp, hello, ts++);
  rp += hello.size();
  resp.AddData(sp, StartupReply(), ts++);
  sp += StartupReply().size();
  session.Advance(req, resp, ts, &out);
  out.Clear();
  for (auto _ : state) {
    req.AddData(rp, request, ts++, 1);
    rp += request.size();
    session.Advance(req, resp, ts, &out);
    resp.AddData(sp, reply, ts++, 1);
    sp += reply.size();
    session.Advance(req, resp, ts, &out);
    benchmark::DoNotOptimize(out.exchanges());
    out.Clear();
  }
  state.SetItemsProcessed(state.iterations() * calls_per_round);
  if (stats.calls != static_cast<uint64_t>(state.iterations() * calls_per_round)) {
    state.SkipWithError("exchanges lost");
  }
}

void BM_SimpleQuery(benchmark::State& state) {
  const std::string q =
      Query("SELECT id, name, price FROM products WHERE category = 'books' AND price < 20.5");
  std::string reply = RowDesc();
  for (int i = 0; i < 5; i++) reply += DataRow("row value");
  reply += Complete("SELECT 5") + Ready();
  Run(state, q, reply, 1);
}
BENCHMARK(BM_SimpleQuery);

void BM_PipelinedExtended(benchmark::State& state) {
  std::string req, reply;
  for (int i = 0; i < 10; i++) {
    req += Parse("", "UPDATE accounts SET balance = balance + $1 WHERE id = $2") +
           Bind("", "", {"10", "7"}) + DescribePortal("") + Execute("") + Sync();
    reply += ParseComplete() + BindComplete() + NoData() + Complete("UPDATE 1") + Ready();
  }
  Run(state, req, reply, 10);
}
BENCHMARK(BM_PipelinedExtended);

}  // namespace
}  // namespace zerotrace::protocols::postgres
