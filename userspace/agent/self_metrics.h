// The agent's self-metrics: one table feeds both the stderr stats line and /metrics, and the
// board through which the consumer thread publishes what only it may read.
#pragma once

#include <zerotrace/ctx_propagate.h>
#include <zerotrace/events.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/counters.h"
#include "agent/prom_text.h"
#include "export/exporter.h"
#include "probes/socket_tracer.h"

namespace zerotrace::agent {

// What the ring-buffer consumer thread's stages report, copied by that thread.
struct ConsumerStats {
  uint64_t records = 0;            // ring-buffer records consumed
  uint64_t decode_errors = 0;      // records that did not decode
  uint64_t ring_lost_at_stop = 0;  // records left in the ring buffer when the stop gave up
  std::vector<CounterRow> rows;    // the stages' own reports: protocols, linker, connections
};

// The export stage's counters (atomics there), copied.
struct ExportStats {
  bool present = false;  // false with --dump-events: no export stage
  uint64_t queued = 0, dropped_full = 0, dropped_stopping = 0, exported = 0, export_failed = 0;
  uint64_t queue_depth = 0;
  std::vector<exporter::ExporterCounter> exporters;
};

// The TLS probe manager's counters (atomics there), copied.
struct TlsStats {
  bool present = false;  // false with --no-tls
  uint64_t files_probed = 0, files_attached = 0, files_detached = 0, attach_failed = 0;
  uint64_t files_inspected = 0, events_dropped = 0;
};

// The agent process as the kernel accounts it.
struct ProcessStats {
  uint64_t rss_bytes = 0;  // resident set, from /proc/self/statm
  uint64_t cpu_ns = 0;     // user + system time, from /proc/self/stat
};

// Every self-metric at one point in time.
struct AgentSnapshot {
  std::array<uint64_t, ZT_CNT_COUNT> kernel{};  // enum zt_kernel_counter
  ConsumerStats consumer;
  ExportStats exports;
  TlsStats tls;
  bool ctx_present = false;                      // --propagate-context
  std::array<uint64_t, ZT_CTX_CNT_COUNT> ctx{};  // enum zt_ctx_counter
  std::vector<probes::ProgramStats> programs;  // run time is 0 unless kernel.bpf_stats_enabled
  ProcessStats process;
};

using MetricRow = CounterRow;

// Every metric of the snapshot, in stats-line order first.
std::vector<MetricRow> MetricRows(const AgentSnapshot& s);
// "zerotrace: stats data_events=… …" (no newline): the rows that have a stats key.
std::string StatsLine(const AgentSnapshot& s);
// The /metrics body.
std::string PrometheusText(const AgentSnapshot& s);

// Reads /proc/self/statm and /proc/self/stat; zeros when they cannot be read.
ProcessStats ReadProcessStats();
// Parses the contents of /proc/PID/statm (pages) and /proc/PID/stat (clock ticks).
uint64_t RssBytesFromStatm(const std::string& statm, uint64_t page_size);
uint64_t CpuNsFromStat(const std::string& stat, uint64_t ticks_per_second);

// The consumer publishes ConsumerStats here; the metrics thread takes them. The consumer never
// waits: it checks one atomic flag per poll loop and publishes with an O(1) critical section.
class ConsumerStatsBoard {
 public:
  // Consumer thread: whether a reader is waiting for fresh stats.
  bool Wanted() const { return wanted_.load(std::memory_order_relaxed); }
  // Consumer thread: replaces the published stats and wakes waiting readers.
  void Publish(const ConsumerStats& stats);
  // Any other thread: asks for fresh stats and waits up to `timeout` for them. Returns the
  // newest published stats (older ones if the consumer did not answer in time; null if the
  // consumer never published).
  std::shared_ptr<const ConsumerStats> Fresh(std::chrono::milliseconds timeout);

 private:
  std::atomic<bool> wanted_{false};
  std::mutex mu_;
  std::condition_variable published_;
  std::shared_ptr<const ConsumerStats> latest_;
  uint64_t generation_ = 0;
};

}  // namespace zerotrace::agent
