// zerotrace agent: preflight, load and attach, consume the ring buffer until told to stop.
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "agent/event_dump.h"
#include "agent/http_spans.h"
#include "agent/options.h"
#include "agent/pipeline.h"
#include "base/clock.h"
#include "export/console_exporter.h"
#include "export/console_tree_exporter.h"
#include "export/export_fanout.h"
#include "export/jsonl_exporter.h"
#include "export/otlp_config.h"
#include "export/otlp_grpc_exporter.h"
#include "export/otlp_http_exporter.h"
#include "export/span_queue.h"
#include "probes/preflight.h"
#include "probes/socket_tracer.h"
#include "probes/tls_tracer.h"

namespace {

using namespace zerotrace;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

void InstallSignals() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

using ull = unsigned long long;

void PrintStats(const std::array<uint64_t, ZT_CNT_COUNT>& c, uint64_t decode_errors,
                const agent::HttpSpanProducer& http, const trace::SpanLinker& linker,
                const exporter::ExportFanout* worker, const conn::ConnTableStats& conns,
                const probes::TlsProbeStats* tls) {
  const auto& h = http.http1_stats();
  std::fprintf(stderr,
               "zerotrace: stats data_events=%llu conns_opened=%llu conns_closed=%llu "
               "ringbuf_reserve_failed=%llu capture_truncated=%llu read_user_failed=%llu "
               "iov_overflow=%llu decode_errors=%llu http_conns=%llu http_exchanges=%llu "
               "http_parse_errors=%llu http_resyncs=%llu spans=%llu",
               (ull)c[ZT_CNT_DATA_EVENTS], (ull)c[ZT_CNT_CONN_OPENED], (ull)c[ZT_CNT_CONN_CLOSED],
               (ull)c[ZT_CNT_RINGBUF_RESERVE_FAILED], (ull)c[ZT_CNT_CAPTURE_TRUNCATED],
               (ull)c[ZT_CNT_READ_USER_FAILED], (ull)c[ZT_CNT_IOV_OVERFLOW], (ull)decode_errors,
               (ull)http.stats().conns_http, (ull)h.exchanges, (ull)h.parse_errors, (ull)h.resyncs,
               (ull)http.stats().spans);
  const auto& l = linker.stats();
  std::fprintf(stderr,
               " link_traceparent=%llu link_peer=%llu link_thread=%llu link_forwarded=%llu "
               "link_correlation=%llu link_ambiguous=%llu link_client_roots=%llu "
               "link_server_roots=%llu link_cycles_refused=%llu link_abandoned=%llu",
               (ull)l.link_traceparent, (ull)l.link_peer, (ull)l.link_thread, (ull)l.link_forwarded,
               (ull)l.link_correlation, (ull)l.link_ambiguous, (ull)l.client_roots,
               (ull)l.server_roots, (ull)l.cycles_refused, (ull)l.abandoned);
  std::fprintf(stderr,
               " tls_calls=%llu tls_no_fd=%llu tls_fd_conflict=%llu tls_conn_gone=%llu "
               "tls_nested=%llu tls_conns=%llu tls_ciphertext_ignored=%llu",
               (ull)c[ZT_CNT_TLS_CALLS], (ull)c[ZT_CNT_TLS_NO_FD], (ull)c[ZT_CNT_TLS_FD_CONFLICT],
               (ull)c[ZT_CNT_TLS_CONN_GONE], (ull)c[ZT_CNT_TLS_NESTED], (ull)conns.tls_conns,
               (ull)conns.ciphertext_ignored);
  if (tls) {
    std::fprintf(stderr,
                 " tls_files_probed=%llu tls_files_attached=%llu tls_files_detached=%llu "
                 "tls_attach_failed=%llu tls_files_inspected=%llu tls_proc_events_dropped=%llu",
                 (ull)tls->files_probed.load(), (ull)tls->files_attached.load(),
                 (ull)tls->files_detached.load(), (ull)tls->attach_failed.load(),
                 (ull)tls->files_inspected.load(), (ull)tls->events_dropped.load());
  }
  if (worker) {
    const exporter::ExportTotals e = worker->Totals();
    std::fprintf(stderr,
                 " spans_exported=%llu spans_dropped_full=%llu spans_dropped_stopping=%llu "
                 "spans_export_failed=%llu",
                 (ull)e.exported, (ull)e.dropped_full, (ull)e.dropped_stopping,
                 (ull)e.export_failed);
    std::fprintf(stderr, "%s", worker->ExporterStats().c_str());
  }
  std::fprintf(stderr, "\n");
}

std::vector<trace::Attribute> ResourceExtras() {
  std::vector<trace::Attribute> out;
  if (const char* env = std::getenv("OTEL_RESOURCE_ATTRIBUTES")) {
    for (auto& [k, v] : agent::ParseResourceAttributes(env)) out.push_back({k, v});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool exit_now = false;
  auto opts = agent::ParseOptions(argc, argv, &exit_now);
  if (!opts.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", opts.status().message().c_str());
    return 2;
  }
  if (exit_now) return 0;
  const agent::Options& o = *opts;

  // Exporters first: a bad path is a start-up error, before anything is loaded. Local ones
  // (console, JSON lines) and the collector each get their own export thread.
  std::vector<std::unique_ptr<exporter::SpanExporter>> exporters, remote;
  if (!o.jsonl_path.empty()) {
    auto jsonl = exporter::JsonlExporter::Open(o.jsonl_path);
    if (!jsonl.ok()) {
      std::fprintf(stderr, "zerotrace: %s\n", jsonl.status().message().c_str());
      return 2;
    }
    exporters.push_back(std::move(jsonl.value()));
  }
  auto otlp = exporter::OtlpConfigFrom(
      [](const char* n) { return static_cast<const char*>(std::getenv(n)); }, o.otlp_endpoint,
      o.otlp_protocol);
  if (!otlp.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", otlp.status().message().c_str());
    return 2;
  }
  std::chrono::milliseconds flush_timeout(1500);
  exporter::OtlpExporterBase* otlp_exporter = nullptr;  // owned by the fanout
  if (otlp.value().has_value()) {
    const exporter::OtlpConfig& cfg = *otlp.value();
    std::unique_ptr<exporter::OtlpExporterBase> made;
    Status status;
    if (cfg.protocol == exporter::OtlpConfig::Protocol::kGrpc) {
      auto e = exporter::OtlpGrpcExporter::Create(cfg);
      if (e.ok()) made = std::move(e.value());
      status = e.status();
    } else {
      auto e = exporter::OtlpHttpExporter::Create(cfg);
      if (e.ok()) made = std::move(e.value());
      status = e.status();
    }
    if (!made) {
      std::fprintf(stderr, "zerotrace: %s\n", status.message().c_str());
      return 2;
    }
    otlp_exporter = made.get();
    remote.push_back(std::move(made));
    flush_timeout = cfg.timeout;  // SIGTERM flushes within the export timeout
  }
  if ((exporters.empty() && remote.empty()) || o.console) {
    if (o.console_format == "spans") {
      exporters.push_back(std::make_unique<exporter::ConsoleExporter>(stdout));
    } else {
      exporters.push_back(std::make_unique<exporter::ConsoleTreeExporter>(stdout));
    }
  }

  probes::PreflightReport report;
  if (Status s = probes::Preflight(&report); !s.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", s.message().c_str());
    return 1;
  }
  for (const auto& note : report.notes) std::fprintf(stderr, "zerotrace: %s\n", note.c_str());
  InstallSignals();

  WallClock clock;
  probes::TracerConfig cfg;
  cfg.self_tgid = static_cast<uint32_t>(getpid());
  cfg.pids = o.pids;
  cfg.capture_bytes = o.capture_bytes;
  cfg.ringbuf_bytes = o.ringbuf_bytes;

  std::unique_ptr<exporter::ExportFanout> worker;
  if (!o.dump_events) {
    std::vector<std::vector<std::unique_ptr<exporter::SpanExporter>>> groups;
    groups.push_back(std::move(exporters));
    groups.push_back(std::move(remote));
    worker = std::make_unique<exporter::ExportFanout>(exporter::ExportWorkerOptions{},
                                                      std::move(groups));
  }
  // Linked spans go to the export queues from the consumer thread; TryPush never blocks.
  trace::SpanLinker linker([w = worker.get()](trace::Span&& span) {
    if (w) w->TryPush(std::move(span));
  });
  protocols::http1::SpanOptions span_options;
  span_options.infer_routes = o.infer_routes;
  agent::TracerKernelState kernel_state;
  agent::HttpSpanProducer http(&linker, &clock, span_options, ResourceExtras(), &kernel_state);
  agent::EventDumper dumper(stdout, &clock);
  agent::Pipeline pipeline(conn::ConnTableLimits{}, &http, &kernel_state);
  probes::RecordSink* record_sink =
      o.dump_events ? static_cast<probes::RecordSink*>(&dumper) : &pipeline;

  std::vector<std::string> notes;
  auto started = probes::SocketTracer::Start(cfg, report.tracefs, record_sink, &notes);
  for (const auto& note : notes) std::fprintf(stderr, "zerotrace: %s\n", note.c_str());
  if (!started.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", started.status().message().c_str());
    return 1;
  }
  std::unique_ptr<probes::SocketTracer> tracer = std::move(started.value());
  kernel_state.set_tracer(tracer.get());
  // TLS: load on the socket tracer's maps, then probe every TLS library file in use (and the
  // host's, for processes that load one later) before reporting that tracing started.
  std::unique_ptr<probes::TlsTracer> tls_tracer;
  std::unique_ptr<probes::TlsProbeManager> tls_probes;
  if (o.tls) {
    std::vector<std::string> tls_notes;
    auto tls =
        probes::TlsTracer::Start(cfg, *tracer, report.tracefs, &tls_notes, o.tls_per_function);
    for (const auto& note : tls_notes) std::fprintf(stderr, "zerotrace: %s\n", note.c_str());
    if (!tls.ok()) {
      std::fprintf(stderr, "zerotrace: %s\n", tls.status().message().c_str());
      return 1;
    }
    tls_tracer = std::move(tls.value());
    probes::TlsProbeOptions tls_options;
    tls_options.self_pid = cfg.self_tgid;
    tls_options.pids = o.pids;
    tls_probes = std::make_unique<probes::TlsProbeManager>(tls_tracer.get(), tls_options);
    tls_probes->Start();
    pipeline.set_tls_probes(tls_probes.get());
  }
  std::fprintf(stderr, "zerotrace: tracing%s (pid %u); Ctrl-C to stop\n",
               o.pids.empty() ? " every process" : " selected processes", cfg.self_tgid);

  const uint64_t start = WallClock::MonotonicNow();
  const uint64_t deadline =
      o.duration_s > 0 ? start + static_cast<uint64_t>(o.duration_s * 1e9) : UINT64_MAX;
  uint64_t next_tick = start + 1'000'000'000ULL;
  uint64_t next_stats =
      o.stats_interval_s > 0 ? start + static_cast<uint64_t>(o.stats_interval_s * 1e9) : UINT64_MAX;
  auto decode_errors = [&] { return pipeline.decode_errors() + dumper.decode_errors(); };
  while (!g_stop.load()) {
    const int n = tracer->Poll(100);
    if (n < 0 && n != -EINTR) {
      std::fprintf(stderr, "zerotrace: reading the ring buffer failed: %d\n", n);
      break;
    }
    if (o.dump_events) std::fflush(stdout);
    const uint64_t now = WallClock::MonotonicNow();
    linker.Tick(now);  // the ring buffer was just drained: every earlier event is in
    if (now >= deadline) break;
    if (now >= next_tick) {
      pipeline.table().ExpireIdle(now);
      http.Expire(pipeline.table(), now);
      next_tick = now + 1'000'000'000ULL;
    }
    if (now >= next_stats) {
      PrintStats(tracer->ReadCounters(), decode_errors(), http, linker, worker.get(),
                 pipeline.table().stats(), tls_probes ? &tls_probes->stats() : nullptr);
      next_stats = now + static_cast<uint64_t>(o.stats_interval_s * 1e9);
    }
  }
  tracer->Poll(0);              // what is already in the ring buffer
  pipeline.table().CloseAll();  // pending requests become spans
  linker.Flush();
  const auto kernel_counters = tracer->ReadCounters();
  const probes::TlsProbeStats* tls_stats = tls_probes ? &tls_probes->stats() : nullptr;
  // Detaching waits for RCU grace periods; flush the exporters meanwhile.
  std::thread detach([&tracer, &tls_tracer, &tls_probes, verbose = o.verbose] {
    const uint64_t t0 = WallClock::MonotonicNow();
    if (tls_probes) tls_probes->Stop();  // detaches the uprobes; its stats stay readable
    const uint64_t t1 = WallClock::MonotonicNow();
    tls_tracer.reset();
    const uint64_t t2 = WallClock::MonotonicNow();
    tracer.reset();
    if (verbose) {
      std::fprintf(stderr,
                   "zerotrace: detached TLS uprobes in %llu ms, TLS programs in %llu ms, "
                   "socket programs in %llu ms\n",
                   (ull)((t1 - t0) / 1000000), (ull)((t2 - t1) / 1000000),
                   (ull)((WallClock::MonotonicNow() - t2) / 1000000));
    }
  });
  if (otlp_exporter) otlp_exporter->BeginShutdown(std::chrono::steady_clock::now() + flush_timeout);
  if (worker) worker->Stop(flush_timeout);
  detach.join();
  std::fflush(stdout);
  PrintStats(kernel_counters, decode_errors(), http, linker, worker.get(), pipeline.table().stats(),
             tls_stats);  // final: after the flush
  return 0;
}
