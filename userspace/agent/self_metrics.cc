// The self-metric table, its two renderings, /proc readers and the consumer's stats board.
#include "agent/self_metrics.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace zerotrace::agent {
namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One row of a fixed part of the table.
struct Row {
  const char* stats_key;
  const char* name;
  const char* help;
  CounterKind type;
  uint64_t value;
};

}  // namespace

std::vector<MetricRow> MetricRows(const AgentSnapshot& s) {
  const auto& k = s.kernel;
  const ConsumerStats& c = s.consumer;
  constexpr CounterKind kCounter = CounterKind::kCounter;
  constexpr CounterKind kGauge = CounterKind::kGauge;
  std::vector<MetricRow> rows;
  auto add = [&rows](const char* key, std::string name, const char* help, CounterKind type,
                     uint64_t value, CounterLabels labels = {}) {
    rows.push_back({key, std::move(name), help, type, value, std::move(labels), 1});
  };
  // The stats line, in its order: the kernel side, then each stage along the data flow.
  const Row line[] = {
      {"data_events", "zerotrace_kernel_data_events_total",
       "data events the kernel side wrote to the ring buffer", kCounter, k[ZT_CNT_DATA_EVENTS]},
      {"conns_opened", "zerotrace_kernel_conns_opened_total",
       "TCP connections the kernel side started tracking", kCounter, k[ZT_CNT_CONN_OPENED]},
      {"conns_closed", "zerotrace_kernel_conns_closed_total", "close events the kernel side wrote",
       kCounter, k[ZT_CNT_CONN_CLOSED]},
      {"ringbuf_reserve_failed", "zerotrace_kernel_ringbuf_reserve_failed_total",
       "records lost because the ring buffer was full", kCounter, k[ZT_CNT_RINGBUF_RESERVE_FAILED]},
      {"capture_truncated", "zerotrace_kernel_capture_truncated_total",
       "syscalls that moved more bytes than the capture limit", kCounter,
       k[ZT_CNT_CAPTURE_TRUNCATED]},
      {"read_user_failed", "zerotrace_kernel_read_user_failed_total",
       "payload copies from user memory that failed (bytes became a gap)", kCounter,
       k[ZT_CNT_READ_USER_FAILED]},
      {"iov_overflow", "zerotrace_kernel_iov_overflow_total",
       "iovecs or messages beyond the per-syscall limit (sizes only)", kCounter,
       k[ZT_CNT_IOV_OVERFLOW]},
      {"stash_missing", "zerotrace_kernel_stash_missing_total",
       "syscall exits without their enter (agent started mid-syscall)", kCounter,
       k[ZT_CNT_STASH_MISSING]},
      {"peek_skipped", "zerotrace_kernel_peek_skipped_total",
       "MSG_PEEK receives on tracked sockets (the later receive moves the stream)", kCounter,
       k[ZT_CNT_PEEK_SKIPPED]},
      {"splice_calls", "zerotrace_kernel_splice_calls_total",
       "splice calls on tracked sockets (sizes only)", kCounter, k[ZT_CNT_SPLICE]},
      {"io_uring_ops", "zerotrace_kernel_io_uring_ops_total",
       "io_uring reads and writes of tracked sockets (their bytes are not seen)", kCounter,
       k[ZT_CNT_IO_URING]},
      {"dup_shared", "zerotrace_kernel_dup_shared_total",
       "fds dup'd from a tracked socket (they share its connection)", kCounter,
       k[ZT_CNT_DUP_SHARED]},
      {"go_calls", "zerotrace_kernel_go_calls_total",
       "Go HTTP/1 calls reported with what their goroutine serves (goroutine evidence)", kCounter,
       k[ZT_CNT_GO_CALLS]},
      {"go_call_no_conn", "zerotrace_kernel_go_call_no_conn_total",
       "Go calls with goroutine evidence dropped: their socket is not tracked", kCounter,
       k[ZT_CNT_GO_CALL_NO_CONN]},
      {"h2_walks", "zerotrace_kernel_h2_walks_total",
       "HTTP/2 stream directions whose frames the kernel walks (headers always captured)", kCounter,
       k[ZT_CNT_H2_WALKS]},
      {"h2_walk_lost", "zerotrace_kernel_h2_walk_lost_total",
       "HTTP/2 frame walks that lost the frame boundaries (plain capture from then on)", kCounter,
       k[ZT_CNT_H2_WALK_LOST]},
      {"body_bytes_skipped", "zerotrace_kernel_body_bytes_skipped_total",
       "HTTP/1 body bytes of vectored sends not copied (a gap of known length)", kCounter,
       k[ZT_CNT_BODY_BYTES_SKIPPED]},
      {"muted_records_skipped", "zerotrace_kernel_muted_records_skipped_total",
       "data syscalls of muted connections that sent no record (their byte totals ride on the "
       "close event)",
       kCounter, k[ZT_CNT_MUTED_RECORDS_SKIPPED]},
      {"head_cap_bytes_skipped", "zerotrace_kernel_head_cap_bytes_skipped_total",
       "bytes not copied: HTTP/1 response bodies past their connection's learnt head cap (a gap "
       "of known length)",
       kCounter, k[ZT_CNT_HEAD_CAP_SKIPPED]},
      {"send_stamped_at_exit", "zerotrace_kernel_send_stamped_at_exit_total",
       "sends on tracked connections stamped at their exit: no tcp_sendmsg_locked stamp for "
       "their socket",
       kCounter, k[ZT_CNT_SEND_STAMPED_AT_EXIT]},
      {"decode_errors", "zerotrace_decode_errors_total", "ring-buffer records that did not decode",
       kCounter, c.decode_errors},
      {"ring_lost_at_stop", "zerotrace_ring_lost_at_stop_total",
       "ring-buffer records left unread when the stop's drain limit passed", kCounter,
       c.ring_lost_at_stop},
  };
  for (const Row& r : line) add(r.stats_key, r.name, r.help, r.type, r.value);
  // The consumer thread's stages, as each reported itself.
  rows.insert(rows.end(), c.rows.begin(), c.rows.end());
  const Row tls[] = {
      {"tls_calls", "zerotrace_kernel_tls_calls_total",
       "TLS reads and writes whose plaintext was captured", kCounter, k[ZT_CNT_TLS_CALLS]},
      {"tls_no_fd", "zerotrace_kernel_tls_no_fd_total",
       "TLS plaintext dropped: no socket known for the call", kCounter, k[ZT_CNT_TLS_NO_FD]},
      {"tls_fd_conflict", "zerotrace_kernel_tls_fd_conflict_total",
       "TLS plaintext dropped: the call touched several sockets", kCounter,
       k[ZT_CNT_TLS_FD_CONFLICT]},
      {"tls_conn_gone", "zerotrace_kernel_tls_conn_gone_total",
       "TLS plaintext dropped: its connection is no longer tracked", kCounter,
       k[ZT_CNT_TLS_CONN_GONE]},
      {"tls_nested", "zerotrace_kernel_tls_nested_total",
       "TLS calls made inside another one (only the outer counts)", kCounter, k[ZT_CNT_TLS_NESTED]},
      {"tls_bound_by_read", "zerotrace_kernel_tls_bound_by_read_total",
       "TLS sessions over memory buffers bound to the socket their thread just read", kCounter,
       k[ZT_CNT_TLS_BOUND_BY_READ]},
      {"tls_h2_walks", "zerotrace_kernel_tls_h2_walks_total",
       "HTTP/2 directions whose TLS plaintext frames the kernel walks (headers always captured)",
       kCounter, k[ZT_CNT_H2_TLS_WALKS]},
      {"tls_h2_walk_lost", "zerotrace_kernel_tls_h2_walk_lost_total",
       "HTTP/2 TLS plaintext walks that lost the frame boundaries (plain capture from then on)",
       kCounter, k[ZT_CNT_H2_TLS_WALK_LOST]},
  };
  for (const Row& r : tls) add(r.stats_key, r.name, r.help, r.type, r.value);
  if (s.tls.present) {
    const TlsStats& t = s.tls;
    add("tls_files_probed", "zerotrace_tls_files_probed", "files with TLS probes now", kGauge,
        t.files_probed);
    add("tls_files_attached", "zerotrace_tls_files_attached_total",
        "TLS probe sets attached since start", kCounter, t.files_attached);
    add("tls_files_detached", "zerotrace_tls_files_detached_total",
        "TLS probe sets removed because no process maps their file", kCounter, t.files_detached);
    add("tls_attach_failed", "zerotrace_tls_attach_failed_total",
        "files with TLS symbols that could not be probed", kCounter, t.attach_failed);
    add("tls_files_inspected", "zerotrace_tls_files_inspected_total",
        "distinct files whose symbol tables were read", kCounter, t.files_inspected);
    add("tls_proc_events_dropped", "zerotrace_tls_proc_events_dropped_total",
        "process events the TLS probe manager lost (its queue was full)", kCounter,
        t.events_dropped);
  }
  if (s.ctx_present) {
    const auto& x = s.ctx;
    const Row ctx[] = {
        {"ctx_set", "zerotrace_kernel_ctx_set_total",
         "server reads that told the kernel which request their thread serves", kCounter,
         x[ZT_CTX_CNT_SET]},
        {"ctx_from_traceparent", "zerotrace_kernel_ctx_from_traceparent_total",
         "...of which the trace id came from the request's own traceparent", kCounter,
         x[ZT_CTX_CNT_FROM_TRACEPARENT]},
        {"ctx_event_loop", "zerotrace_kernel_ctx_event_loop_total",
         "request reads by a thread that had not answered its previous one (ambiguous)", kCounter,
         x[ZT_CTX_CNT_EVENT_LOOP]},
        {"ctx_uncertain", "zerotrace_kernel_ctx_uncertain_total",
         "request reads not understood (split or long head, pipelined, chunked, IPv6)", kCounter,
         x[ZT_CTX_CNT_UNCERTAIN]},
        {"ctx_cleared", "zerotrace_kernel_ctx_cleared_total",
         "thread contexts cleared by their responses", kCounter, x[ZT_CTX_CNT_CLEARED]},
        {"ctx_inserted", "zerotrace_kernel_ctx_inserted_total",
         "requests that left with an inserted traceparent", kCounter, x[ZT_CTX_CNT_INSERTED]},
        {"ctx_not_inserted", "zerotrace_kernel_ctx_not_inserted_total",
         "sends of a thread with a context that were no whole HTTP/1 head without traceparent",
         kCounter, x[ZT_CTX_CNT_NOT_INSERTED]},
        {"ctx_ambiguous", "zerotrace_kernel_ctx_ambiguous_total",
         "sends of a thread whose context is ambiguous (sent unchanged)", kCounter,
         x[ZT_CTX_CNT_AMBIGUOUS]},
        {"ctx_stale", "zerotrace_kernel_ctx_stale_total",
         "sends of a thread whose context was too old (sent unchanged)", kCounter,
         x[ZT_CTX_CNT_STALE]},
        {"ctx_push_failed", "zerotrace_kernel_ctx_push_failed_total",
         "insertions the kernel refused (sent unchanged)", kCounter, x[ZT_CTX_CNT_PUSH_FAILED]},
        {"ctx_record_lost", "zerotrace_kernel_ctx_record_lost_total",
         "insertions skipped because their record found no ring-buffer space", kCounter,
         x[ZT_CTX_CNT_RECORD_LOST]},
        {"ctx_sockhash_full", "zerotrace_kernel_ctx_sockhash_full_total",
         "client sockets that could not be watched for insertion", kCounter,
         x[ZT_CTX_CNT_SOCKHASH_FULL]},
    };
    for (const Row& r : ctx) add(r.stats_key, r.name, r.help, r.type, r.value);
  }
  const ExportStats& e = s.exports;
  if (e.present) {
    add("spans_exported", "zerotrace_spans_exported_total",
        "spans that reached their destination (file or stdout took them, collector accepted "
        "them; once per exporter)",
        kCounter, e.exported);
    add("spans_dropped_full", "zerotrace_spans_dropped_full_total",
        "spans refused because the export queue was full", kCounter, e.dropped_full);
    add("spans_dropped_stopping", "zerotrace_spans_dropped_stopping_total",
        "spans dropped because the agent was stopping", kCounter, e.dropped_stopping);
    add("spans_export_failed", "zerotrace_spans_export_failed_total",
        "spans that will never reach their destination (write failed, collector refused or "
        "unreachable; once per exporter)",
        kCounter, e.export_failed);
    for (const exporter::ExporterCounter& x : e.exporters) {
      add(x.key, std::string("zerotrace_") + x.key + "_total", x.help, kCounter, x.value);
    }
  }

  // Only on /metrics.
  if (e.present) {
    add(nullptr, "zerotrace_spans_queued_total", "spans the export queue accepted", kCounter,
        e.queued);
  }
  // Per-stage totals of the stages that do not report themselves (the others did above).
  add(nullptr, "zerotrace_stage_items_total", kStageItemsHelp, kCounter, c.records,
      {{"stage", "ringbuf"}});
  if (e.present) {
    add(nullptr, "zerotrace_stage_items_total", kStageItemsHelp, kCounter, e.exported,
        {{"stage", "export"}});
  }

  // Gauges.
  if (e.present) {
    add(nullptr, "zerotrace_export_queue_depth", "spans waiting in the export queue", kGauge,
        e.queue_depth);
  }
  add(nullptr, "process_resident_memory_bytes", "resident memory of the agent (VmRSS)", kGauge,
      s.process.rss_bytes);
  rows.push_back({nullptr,
                  "process_cpu_seconds_total",
                  "user and system CPU time of the agent in seconds",
                  kCounter,
                  s.process.cpu_ns,
                  {},
                  kNsPerSecond});
  for (const probes::ProgramStats& p : s.programs) {
    add(nullptr, "zerotrace_bpf_program_runs_total",
        "runs of each BPF program (counted while kernel.bpf_stats_enabled=1)", kCounter,
        p.run_count, {{"program", p.name}});
  }
  for (const probes::ProgramStats& p : s.programs) {
    rows.push_back({nullptr,
                    "zerotrace_bpf_program_run_seconds_total",
                    "time spent in each BPF program (counted while kernel.bpf_stats_enabled=1)",
                    kCounter,
                    p.run_time_ns,
                    {{"program", p.name}},
                    kNsPerSecond});
  }
  return rows;
}

std::string StatsLine(const AgentSnapshot& s) {
  std::string out = "zerotrace: stats";
  for (const MetricRow& r : MetricRows(s)) {
    if (r.stats_key == nullptr) continue;
    out += ' ';
    out += r.stats_key;
    out += '=';
    out += std::to_string(r.value);
  }
  return out;
}

std::string PrometheusText(const AgentSnapshot& s) {
  PromTextWriter w;
  for (const MetricRow& r : MetricRows(s)) {
    // The table is fixed: a failure here is a bug the unit tests catch.
    const PromType type = r.kind == CounterKind::kGauge ? PromType::kGauge : PromType::kCounter;
    Status st = r.per_unit == 1 ? w.Add(r.name, r.help, type, r.value, r.labels)
                                : w.Add(r.name, r.help, type,
                                        static_cast<double>(r.value) / r.per_unit, r.labels);
    if (!st.ok()) std::fprintf(stderr, "zerotrace: metrics: %s\n", st.message().c_str());
  }
  return w.Render();
}

uint64_t RssBytesFromStatm(const std::string& statm, uint64_t page_size) {
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(statm.c_str(), "%llu %llu", &size, &resident) != 2) return 0;
  return resident * page_size;
}

uint64_t CpuNsFromStat(const std::string& stat, uint64_t ticks_per_second) {
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || ticks_per_second == 0) return 0;
  std::istringstream in(stat.substr(paren + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields 3..13 precede utime (14) and stime (15).
  for (int i = 3; i <= 13; i++) in >> field;
  if (!(in >> utime >> stime)) return 0;
  return (utime + stime) * (kNsPerSecond / ticks_per_second);
}

ProcessStats ReadProcessStats() {
  ProcessStats p;
  p.rss_bytes =
      RssBytesFromStatm(ReadFile("/proc/self/statm"), static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  p.cpu_ns =
      CpuNsFromStat(ReadFile("/proc/self/stat"), static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
  return p;
}

void ConsumerStatsBoard::Publish(const ConsumerStats& stats) {
  auto fresh = std::make_shared<const ConsumerStats>(stats);
  {
    std::lock_guard lock(mu_);
    latest_.swap(fresh);
    generation_++;
    wanted_.store(false, std::memory_order_relaxed);
  }
  published_.notify_all();
  // `fresh` now holds the previous stats; freed here, outside the lock.
}

std::shared_ptr<const ConsumerStats> ConsumerStatsBoard::Fresh(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const uint64_t asked_at = generation_;
  wanted_.store(true, std::memory_order_relaxed);
  published_.wait_for(lock, timeout, [&] { return generation_ != asked_at; });
  return latest_;
}

}  // namespace zerotrace::agent
