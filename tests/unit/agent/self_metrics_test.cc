// The self-metric table: the stats line keeps its keys and order, /metrics holds every one of
// them (and more), /proc parsing, and the consumer's stats board.
#include "agent/self_metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace zerotrace::agent {
namespace {

// A snapshot where every counter has a distinct value, so a mixed-up row shows.
AgentSnapshot Numbered() {
  AgentSnapshot s;
  for (size_t i = 0; i < s.kernel.size(); i++) s.kernel[i] = 100 + i;
  s.consumer.records = 7;
  s.consumer.decode_errors = 8;
  s.consumer.ring_lost_at_stop = 9;
  // The consumer's stages report their own rows (each stage's tests check its report).
  CounterReport stages;
  stages.Counter("http_conns", "zerotrace_http_conns_total", "connections", 12);
  stages.Counter("spans", "zerotrace_spans_total", "spans", 13);
  stages.Counter(nullptr, "zerotrace_stage_items_total", kStageItemsHelp, 14,
                 {{"stage", "protocols"}});
  stages.Counter("link_abandoned", "zerotrace_link_abandoned_total", "abandoned", 18);
  stages.Gauge(nullptr, "zerotrace_tracked_connections", "connections", 9);
  s.consumer.rows = stages.rows();
  s.exports.present = true;
  s.exports.exported = 20;
  s.exports.queue_depth = 21;
  s.exports.exporters = {{"otlp_spans_ok", "spans accepted", 22}};
  s.programs = {{"zt_exit_data_syscall", 23, 1'500'000'000}};
  s.process.rss_bytes = 24;
  s.process.cpu_ns = 2'250'000'000;
  return s;
}

TEST(StatsLine, KeepsItsKeysInOrder) {
  EXPECT_EQ(StatsLine(Numbered()),
            "zerotrace: stats data_events=101 conns_opened=102 conns_closed=103 "
            "ringbuf_reserve_failed=100 capture_truncated=104 read_user_failed=105 "
            "iov_overflow=106 stash_missing=107 peek_skipped=114 splice_calls=115 "
            "io_uring_ops=116 dup_shared=117 go_calls=118 go_call_no_conn=119 h2_walks=120 "
            "h2_walk_lost=121 body_bytes_skipped=124 muted_records_skipped=125 "
            "head_cap_bytes_skipped=127 send_stamped_at_exit=126 decode_errors=8 "
            "ring_lost_at_stop=9 "
            "http_conns=12 spans=13 "
            "link_abandoned=18 "
            "tls_calls=108 tls_no_fd=109 tls_fd_conflict=110 tls_conn_gone=111 tls_nested=112 "
            "tls_bound_by_read=113 tls_h2_walks=122 tls_h2_walk_lost=123 spans_exported=20 "
            "spans_dropped_full=0 "
            "spans_dropped_stopping=0 spans_export_failed=0 otlp_spans_ok=22");
}

TEST(StatsLine, WithoutExportStageHasNoExportKeys) {
  AgentSnapshot s = Numbered();
  s.exports = {};
  const std::string line = StatsLine(s);
  EXPECT_EQ(line.find("spans_exported"), std::string::npos) << line;
  EXPECT_NE(line.find(" link_abandoned=18"), std::string::npos) << line;
}

// name{labels} -> value, from the rendered text.
std::map<std::string, std::string> Samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

TEST(PrometheusText, HasEveryStatsLineCounterWithItsValue) {
  const AgentSnapshot s = Numbered();
  const auto samples = Samples(PrometheusText(s));
  std::set<std::string> keys;
  for (const MetricRow& r : MetricRows(s)) {
    if (!r.stats_key) continue;
    keys.insert(r.stats_key);
    ASSERT_TRUE(samples.count(r.name)) << r.stats_key << " as " << r.name;
    EXPECT_EQ(samples.at(r.name), std::to_string(r.value)) << r.name;
    EXPECT_EQ(r.kind, CounterKind::kCounter) << r.name;
  }
  // Each stats-line key appears once, and the line shows all of them.
  std::istringstream line(StatsLine(s).substr(std::string("zerotrace: stats ").size()));
  size_t n = 0;
  for (std::string kv; line >> kv; n++) EXPECT_TRUE(keys.count(kv.substr(0, kv.find('=')))) << kv;
  EXPECT_EQ(n, keys.size());
}

TEST(PrometheusText, GaugesStagesProcessAndPrograms) {
  const auto samples = Samples(PrometheusText(Numbered()));
  const std::map<std::string, std::string> want = {
      {"zerotrace_tracked_connections", "9"},
      {"zerotrace_export_queue_depth", "21"},
      {"process_resident_memory_bytes", "24"},
      {"process_cpu_seconds_total", "2.25"},
      {"zerotrace_stage_items_total{stage=\"ringbuf\"}", "7"},
      {"zerotrace_stage_items_total{stage=\"protocols\"}", "14"},
      {"zerotrace_stage_items_total{stage=\"export\"}", "20"},
      {"zerotrace_kernel_stash_missing_total", "107"},
      {"zerotrace_bpf_program_runs_total{program=\"zt_exit_data_syscall\"}", "23"},
      {"zerotrace_bpf_program_run_seconds_total{program=\"zt_exit_data_syscall\"}", "1.5"},
  };
  for (const auto& [name, value] : want) {
    ASSERT_TRUE(samples.count(name)) << name;
    EXPECT_EQ(samples.at(name), value) << name;
  }
}

TEST(PrometheusText, EveryFamilyOnceWithHelpAndType) {
  const std::string text = PrometheusText(Numbered());
  std::istringstream in(text);
  std::set<std::string> helped, typed;
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      current = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(current).second) << "two HELP lines: " << current;
    } else if (line.rfind("# TYPE ", 0) == 0) {
      EXPECT_TRUE(typed.insert(line.substr(7, line.find(' ', 7) - 7)).second) << line;
    } else {
      // A sample belongs to the family announced just before it.
      EXPECT_EQ(line.substr(0, line.find_first_of("{ ")), current) << line;
    }
  }
  EXPECT_EQ(helped, typed);
  EXPECT_GT(helped.size(), 20u);
}

TEST(ProcFiles, RssAndCpuTime) {
  EXPECT_EQ(RssBytesFromStatm("5000 1200 300 10 0 900 0\n", 4096), 1200u * 4096);
  EXPECT_EQ(RssBytesFromStatm("", 4096), 0u);
  // The command name may hold spaces and parentheses; utime=250 stime=50 ticks.
  const std::string stat =
      "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 99 "
      "1000000 300 18446744073709551615\n";
  EXPECT_EQ(CpuNsFromStat(stat, 100), 3'000'000'000u);
  EXPECT_EQ(CpuNsFromStat("garbage", 100), 0u);
  const ProcessStats self = ReadProcessStats();
  EXPECT_GT(self.rss_bytes, 0u);
}

TEST(ConsumerStatsBoard, ReaderGetsStatsPublishedAfterItAsked) {
  ConsumerStatsBoard board;
  EXPECT_FALSE(board.Wanted());
  // Nobody publishes: the reader times out with nothing.
  EXPECT_EQ(board.Fresh(std::chrono::milliseconds(10)), nullptr);
  EXPECT_TRUE(board.Wanted());
  ConsumerStats first;
  first.records = 1;
  board.Publish(first);
  EXPECT_FALSE(board.Wanted());

  // A "consumer" polls Wanted() like the agent's loop does and answers with newer stats.
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    uint64_t n = 1;
    while (!stop) {
      if (board.Wanted()) {
        ConsumerStats s;
        s.records = ++n;
        board.Publish(s);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  auto a = board.Fresh(std::chrono::seconds(5));
  auto b = board.Fresh(std::chrono::seconds(5));
  stop = true;
  consumer.join();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_GT(a->records, 1u);
  EXPECT_GT(b->records, a->records);
}

}  // namespace
}  // namespace zerotrace::agent
