// Consumer throughput: raw ring-buffer records -> DecodeEvent -> ConnTable -> stream consumer.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "conn/conn_table.h"
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
  for (int i = 0; i < kConns; i++) {
    zt_conn_open o{};
    o.hdr.type = ZT_EV_CONN_OPEN;
    o.hdr.conn_id = i + 1;
    o.hdr.tgid = 1000 + i % 8;
    o.role = ZT_ROLE_SERVER;
    o.family = ZT_AF_INET;
    auto* p = reinterpret_cast<uint8_t*>(&o);
    out.emplace_back(p, p + sizeof(o));
  }
  std::vector<uint64_t> pos(kConns * 2, 0);
  const std::string req(300, 'q'), resp(1024, 'r');
  for (size_t n = 0; n < data_events; n++) {
    const int conn = n % kConns;
    const bool is_req = (n / kConns) % 2 == 0;
    const std::string& payload = is_req ? req : resp;
    zt_data_event d{};
    d.hdr.type = ZT_EV_DATA;
    d.hdr.conn_id = conn + 1;
    d.hdr.tgid = 1000 + conn % 8;
    d.hdr.ts_ns = n;
    d.direction = is_req ? ZT_DIR_INGRESS : ZT_DIR_EGRESS;
    uint64_t& p = pos[conn * 2 + d.direction];
    d.syscall_pos = d.stream_pos = p;
    d.byte_count = d.captured = payload.size();
    p += payload.size();
    std::vector<uint8_t> rec(sizeof(d) + payload.size());
    std::memcpy(rec.data(), &d, sizeof(d));
    std::memcpy(rec.data() + sizeof(d), payload.data(), payload.size());
    out.push_back(std::move(rec));
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
