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
#include "agent/heap_trim.h"
#include "agent/http_spans.h"
#include "agent/metrics_server.h"
#include "agent/options.h"
#include "agent/pipeline.h"
#include "agent/self_metrics.h"
#include "agent/stop_watchdog.h"
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

// Consumer thread only: what the consumer-owned stages count now.
agent::ConsumerStats CollectConsumerStats(agent::Pipeline& pipeline,
                                          const agent::EventDumper& dumper,
                                          const agent::HttpSpanProducer& http,
                                          const trace::SpanLinker& linker) {
  agent::ConsumerStats c;
  c.records = pipeline.records();
  c.decode_errors = pipeline.decode_errors() + dumper.decode_errors();
  c.tracked_connections = pipeline.table().size();
  c.linker_pending = linker.records();
  c.conns = pipeline.table().stats();
  c.http = http.stats();
  c.http1 = http.http1_stats();
  c.linker = linker.stats();
  return c;
}

// Any thread: the export stage's atomics.
agent::ExportStats CollectExportStats(const exporter::ExportFanout* worker) {
  agent::ExportStats e;
  if (!worker) return e;
  const exporter::ExportTotals t = worker->Totals();
  e.present = true;
  e.queued = t.queued;
  e.dropped_full = t.dropped_full;
  e.dropped_stopping = t.dropped_stopping;
  e.exported = t.exported;
  e.export_failed = t.export_failed;
  e.queue_depth = worker->queue_depth();
  e.exporters = worker->ExporterCounters();
  return e;
}

// Any thread: the TLS probe manager's atomics (null: --no-tls).
agent::TlsStats CollectTlsStats(const probes::TlsProbeStats* t) {
  agent::TlsStats s;
  if (!t) return s;
  s.present = true;
  s.files_probed = t->files_probed.load();
  s.files_attached = t->files_attached.load();
  s.files_detached = t->files_detached.load();
  s.attach_failed = t->attach_failed.load();
  s.files_inspected = t->files_inspected.load();
  s.events_dropped = t->events_dropped.load();
  return s;
}

void PrintStats(const std::array<uint64_t, ZT_CNT_COUNT>& kernel, agent::ConsumerStats consumer,
                const exporter::ExportFanout* worker, const probes::TlsProbeStats* tls) {
  agent::AgentSnapshot s;
  s.kernel = kernel;
  s.consumer = std::move(consumer);
  s.exports = CollectExportStats(worker);
  s.tls = CollectTlsStats(tls);
  std::fprintf(stderr, "%s\n", agent::StatsLine(s).c_str());
}

std::vector<trace::ResourceAttribute> ResourceExtras(const agent::OtelEnv& env) {
  std::vector<trace::ResourceAttribute> out;
  for (auto& [k, v] : env.resource_attributes) out.push_back({k, v});
  return out;
}

const char* GetEnv(const char* name) { return std::getenv(name); }

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
  const agent::OtelEnv otel_env = agent::ReadOtelEnv(GetEnv);
  for (const auto& w : otel_env.warnings)
    std::fprintf(stderr, "zerotrace: warning: %s\n", w.c_str());
  const agent::ExporterChoice choice = agent::ChooseExporters(o, otel_env);

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
  auto otlp = exporter::OtlpConfigFrom(GetEnv, o.otlp_endpoint, o.otlp_protocol, choice.otlp);
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
  // A stop flushes within flush_timeout, and detaching the probes takes up to seconds more
  // (per-function uprobes under load); whatever blocks it for longer (an output nobody
  // reads), the process still ends.
  agent::StopWatchdog watchdog(&g_stop, flush_timeout + std::chrono::seconds(5));
  if (choice.console || (choice.console_if_alone && exporters.empty() && remote.empty())) {
    if (o.console_format == "spans") {
      exporters.push_back(std::make_unique<exporter::ConsoleExporter>(stdout));
    } else {
      exporters.push_back(std::make_unique<exporter::ConsoleTreeExporter>(stdout));
    }
  }

  // Bound before anything is loaded: a bad address or a port in use is a start-up error.
  std::unique_ptr<agent::MetricsServer> metrics;
  if (!o.metrics_addr.empty()) {
    auto listening = agent::MetricsServer::Listen(o.metrics_addr);
    if (!listening.ok()) {
      std::fprintf(stderr, "zerotrace: %s\n", listening.status().message().c_str());
      return 2;
    }
    metrics = std::move(listening.value());
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
    exporter::ExportWorkerOptions export_options;
    export_options.on_output_closed = [](const char* name) {  // `zerotrace | head`
      std::fprintf(stderr, "zerotrace: exporter %s: its output has gone (EPIPE); stopping\n", name);
      g_stop.store(true);
    };
    worker = std::make_unique<exporter::ExportFanout>(export_options, std::move(groups));
  }
  // Linked spans go to the export queues from the consumer thread; TryPush never blocks.
  trace::SpanLinker linker([w = worker.get()](trace::Span&& span) {
    if (w) w->TryPush(std::move(span));
  });
  protocols::http1::SpanOptions span_options;
  span_options.infer_routes = o.infer_routes;
  agent::TracerKernelState kernel_state;
  agent::HttpSpanProducer http(&linker, &clock, span_options, ResourceExtras(otel_env),
                               &kernel_state);
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
  agent::ConsumerStatsBoard board;
  if (metrics) {
    // The metrics thread: consumer-owned stats through the board, the rest read directly.
    metrics->Start([&board, t = tracer.get(), w = worker.get(),
                    tp = tls_probes ? &tls_probes->stats() : nullptr] {
      agent::AgentSnapshot snap;
      if (auto consumer = board.Fresh(std::chrono::milliseconds(500))) snap.consumer = *consumer;
      snap.kernel = t->ReadCounters();
      snap.programs = t->ReadProgramStats();
      snap.exports = CollectExportStats(w);
      snap.tls = CollectTlsStats(tp);
      snap.process = agent::ReadProcessStats();
      return agent::PrometheusText(snap);
    });
    std::fprintf(stderr, "zerotrace: metrics at %s\n", metrics->url().c_str());
  }
  std::fprintf(stderr, "zerotrace: tracing%s (pid %u); Ctrl-C to stop\n",
               o.pids.empty() ? " every process" : " selected processes", cfg.self_tgid);

  agent::HeapTrimmer heap_trimmer;
  const uint64_t start = WallClock::MonotonicNow();
  const uint64_t deadline =
      o.duration_s > 0 ? start + static_cast<uint64_t>(o.duration_s * 1e9) : UINT64_MAX;
  uint64_t next_tick = start + 1'000'000'000ULL;
  uint64_t next_stats =
      o.stats_interval_s > 0 ? start + static_cast<uint64_t>(o.stats_interval_s * 1e9) : UINT64_MAX;
  while (!g_stop.load()) {
    const int n = tracer->Poll(100);
    if (n < 0 && n != -EINTR) {
      std::fprintf(stderr, "zerotrace: reading the ring buffer failed: %d\n", n);
      break;
    }
    if (o.dump_events && !dumper.Flush()) break;
    const uint64_t now = WallClock::MonotonicNow();
    // Drained: every event before now is in. Cut short under overload: those before the
    // newest one delivered are.
    linker.Tick(tracer->drained() ? now : tracer->newest_record_ns());
    if (board.Wanted()) board.Publish(CollectConsumerStats(pipeline, dumper, http, linker));
    if (now >= deadline) break;
    if (now >= next_tick) {
      pipeline.table().ExpireIdle(now);
      http.Expire(pipeline.table(), now);
      heap_trimmer.Tick(now);  // after a burst, RSS falls back instead of staying at its peak
      clock.Resample();        // follows NTP steps and suspends
      next_tick = now + 1'000'000'000ULL;
    }
    if (now >= next_stats) {
      PrintStats(tracer->ReadCounters(), CollectConsumerStats(pipeline, dumper, http, linker),
                 worker.get(), tls_probes ? &tls_probes->stats() : nullptr);
      next_stats = now + static_cast<uint64_t>(o.stats_interval_s * 1e9);
    }
  }
  watchdog.Stopping();           // also when --duration ended the loop
  if (metrics) metrics->Stop();  // it reads the tracer, which goes next
  tracer->Poll(0);               // what is already in the ring buffer (bounded under load)
  pipeline.table().CloseAll();   // complete exchanges become spans; in-flight ones are counted
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
  // Final: after the flush.
  PrintStats(kernel_counters, CollectConsumerStats(pipeline, dumper, http, linker), worker.get(),
             tls_stats);
  return 0;
}
