// Consumer throughput: raw ring-buffer records -> DecodeEvent -> ConnTable -> stream consumer.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "conn/conn_table.h"
#include "kernel_records.h"
#include "probes/event_decode.h"

namespace zerotrace::conn {
namespace {

// Consumes every byte as it arrives, like a parser that keeps up.
class DrainingObserver : public ConnObserver {
 public:
  void OnData(Connection& c, const DataChunk& chunk) override {
    const uint8_t dir = chunk.direction;
    ByteStream& s = c.stream(dir);
    for (;;) {
      auto f = s.Peek();
      if (!f.data.empty()) {
        s.Consume(f.data.size());
      } else if (f.gap) {
        s.Consume(f.gap);
      } else {
        break;
      }
    }
  }
};

// Records as the kernel lays them out: 64 connections, alternating 300-byte requests and
// 1 KiB responses, with an open per connection up front.
std::vector<std::vector<uint8_t>> MakeRecords(size_t data_events) {
  std::vector<std::vector<uint8_t>> out;
  constexpr int kConns = 64;
  std::vector<testing::ScriptedConnection> conns;
  for (int i = 0; i < kConns; i++) {
    testing::ConnSpec spec;
    spec.conn_id = i + 1;
    spec.tgid = 1000 + i % 8;
    spec.role = ZT_ROLE_SERVER;
    conns.emplace_back([&out](const testing::Record& r) { out.push_back(r); }, spec);
  }
  const std::string req(300, 'q'), resp(1024, 'r');
  for (size_t n = 0; n < data_events; n++) {
    const int conn = n % kConns;
    const bool is_req = (n / kConns) % 2 == 0;
    conns[conn].Syscall(is_req ? ZT_DIR_INGRESS : ZT_DIR_EGRESS, is_req ? req : resp, n);
  }
  return out;
}

void BM_ConsumerDecodeAndConnTable(benchmark::State& state) {
  const auto records = MakeRecords(64 * 200);
  size_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    DrainingObserver obs;
    ConnTable table({}, &obs, nullptr, nullptr);
    state.ResumeTiming();
    for (const auto& r : records) {
      probes::EventView v;
      if (probes::DecodeEvent(r.data(), r.size(), &v) == probes::DecodeError::kNone) {
        table.OnEvent(v);
      }
    }
    events += records.size();
    benchmark::DoNotOptimize(table.size());
  }
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_ConsumerDecodeAndConnTable)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zerotrace::conn
