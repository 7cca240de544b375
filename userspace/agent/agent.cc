// Agent: construction order (configuration before loading), the consumer loop, and the stop.
#include "agent/agent.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "agent/config_file.h"
#include "agent/heap_trim.h"
#include "export/console_exporter.h"
#include "export/console_tree_exporter.h"
#include "export/jsonl_exporter.h"
#include "export/otlp_config.h"
#include "export/otlp_grpc_exporter.h"
#include "export/otlp_http_exporter.h"
#include "metrics/prom_metrics.h"
#include "protocols/registry.h"

namespace zerotrace::agent {
namespace {

using ull = unsigned long long;
constexpr uint64_t kSecondNs = 1'000'000'000ULL;
// How long the consumer waits for a new process's /proc read before going on with its comm (a
// read takes well under a millisecond; a process stuck in the kernel can make it take seconds).
constexpr std::chrono::milliseconds kProcessReadWait{20};

std::vector<trace::ResourceAttribute> ResourceExtras(const OtelEnv& env) {
  std::vector<trace::ResourceAttribute> out;
  for (auto& [k, v] : env.resource_attributes) out.push_back({k, v});
  return out;
}

// Any thread: the export stage's atomics.
ExportStats CollectExportStats(const exporter::ExportFanout* worker) {
  ExportStats e;
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
TlsStats CollectTlsStats(const probes::TlsProbeStats* t) {
  TlsStats s;
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

}  // namespace

Agent::Agent(const Options& options) : options_(options), getenv_(EnvWithFile(options_)) {
  // --netns: the kernel filters tasks; userspace also judges each connection's own netns.
  if (options_.netns_inode != 0) options_.selectors.include.netns.push_back(options_.netns_inode);
}

Agent::~Agent() = default;

StatusOr<std::unique_ptr<Agent>> Agent::Configure(const Options& options) {
  std::unique_ptr<Agent> a(new Agent(options));
  a->otel_env_ = ReadOtelEnv(a->getenv_);
  for (const auto& w : a->otel_env_.warnings) {
    std::fprintf(stderr, "zerotrace: warning: %s\n", w.c_str());
  }
  if (Status s = a->BuildExporters(); !s.ok()) return s;
  a->metrics_env_ = ReadMetricsEnv(a->getenv_, a->otel_env_.sdk_disabled);
  for (const auto& w : a->metrics_env_.warnings) {
    std::fprintf(stderr, "zerotrace: warning: %s\n", w.c_str());
  }
  if (a->metrics_env_.prometheus && options.metrics_addr.empty()) {
    std::fprintf(stderr,
                 "zerotrace: warning: OTEL_METRICS_EXPORTER=prometheus: metrics are served "
                 "with --metrics-addr HOST:PORT, which is not given\n");
  }
  if (Status s = a->BuildMetricsExporter(); !s.ok()) return s;
  // Bound before anything is loaded: a bad address or a port in use is a start-up error.
  if (!options.metrics_addr.empty()) {
    auto listening = MetricsServer::Listen(options.metrics_addr);
    if (!listening.ok()) return listening.status();
    a->metrics_ = std::move(listening.value());
  }
  return a;
}

// Local exporters (console, JSON lines) and the collector each get their own export thread.
Status Agent::BuildExporters() {
  const Options& o = options_;
  if (!o.jsonl_path.empty()) {
    auto jsonl = exporter::JsonlExporter::Open(o.jsonl_path);
    if (!jsonl.ok()) return jsonl.status();
    local_exporters_.push_back(std::move(jsonl.value()));
  }
  const ExporterChoice choice = ChooseExporters(o, otel_env_);
  auto otlp = exporter::OtlpConfigFrom(getenv_, o.otlp_endpoint, o.otlp_protocol, choice.otlp);
  if (!otlp.ok()) return otlp.status();
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
    if (!made) return status;
    otlp_exporter_ = made.get();
    remote_exporters_.push_back(std::move(made));
    flush_timeout_ = cfg.timeout;  // SIGTERM flushes within the export timeout
  }
  if (choice.console || (choice.console_if_alone && !o.top && local_exporters_.empty() &&
                         remote_exporters_.empty())) {
    if (o.console_format == "spans") {
      local_exporters_.push_back(std::make_unique<exporter::ConsoleExporter>(stdout));
    } else {
      local_exporters_.push_back(std::make_unique<exporter::ConsoleTreeExporter>(stdout));
    }
  }
  return Status::Ok();
}

// OTLP metrics where the spans go (or where OTEL_EXPORTER_OTLP_METRICS_* say), unless
// OTEL_METRICS_EXPORTER says otherwise.
Status Agent::BuildMetricsExporter() {
  const Options& o = options_;
  if (metrics_env_.none || o.dump_events) return Status::Ok();
  auto cfg = exporter::OtlpConfigFrom(getenv_, o.otlp_endpoint, o.otlp_protocol, metrics_env_.otlp,
                                      exporter::OtlpSignal::kMetrics);
  if (!cfg.ok()) return cfg.status();
  if (!cfg.value().has_value()) return Status::Ok();
  exporter::OtlpMetricsOptions mo;
  mo.delta = metrics_env_.delta;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) mo.host_name = host;
  mo.resource_extra = ResourceExtras(otel_env_);
  auto made = exporter::OtlpMetricsExporter::Create(**cfg, std::move(mo));
  if (!made.ok()) return made.status();
  otlp_metrics_ = std::move(made.value());
  return Status::Ok();
}

Status Agent::Start(std::vector<std::string>* notes) {
  const Options& o = options_;
  if (Status s = probes::Preflight(&preflight_); !s.ok()) return s;
  notes->insert(notes->end(), preflight_.notes.begin(), preflight_.notes.end());

  probes::TracerConfig cfg;
  cfg.self_tgid = static_cast<uint32_t>(getpid());
  cfg.pids = o.pids;
  cfg.skip_processes = !o.selectors.empty();
  cfg.skip_pids = o.selectors.exclude.pid;
  cfg.netns = static_cast<uint32_t>(o.netns_inode);  // namespace inodes are 32-bit in the kernel
  cfg.tls = o.tls;
  cfg.sock_hooks = o.sock_hooks;
  cfg.capture_bytes = o.capture_bytes;
  cfg.ringbuf_bytes = o.ringbuf_bytes;
  // --propagate-context: roots get trace ids the kernel computes too, salted per start.
  cfg.propagate_ctx = o.propagate_context;
  if (o.propagate_context) {
    std::random_device rd;
    cfg.ctx_salt = (uint64_t{rd()} << 32) | rd();
  }

  if (!o.dump_events) {
    std::vector<std::vector<std::unique_ptr<exporter::SpanExporter>>> groups;
    groups.push_back(std::move(local_exporters_));
    groups.push_back(std::move(remote_exporters_));
    exporter::ExportWorkerOptions export_options;
    export_options.on_output_closed = [this](const char* name) {  // `zerotrace | head`
      std::fprintf(stderr, "zerotrace: exporter %s: its output has gone (EPIPE); stopping\n", name);
      output_closed_.store(true);
    };
    export_ = std::make_unique<exporter::ExportFanout>(export_options, std::move(groups));
  }
  // Metrics are made when something reads them: /metrics, OTLP metrics or the top view.
  if (!o.dump_events && (metrics_ || otlp_metrics_ || o.top)) {
    metrics::MetricsStage::Options mo;
    mo.red.max_series_per_instrument = o.metrics_cardinality_limit;
    if (o.top) mo.recent_spans = 4096;  // the top view's slowest recent traces
    mo.summaries = o.top;               // its latency sketches: read by nothing else
    metrics_stage_ = std::make_unique<metrics::MetricsStage>(mo);
  }
  // Linked spans go to the metrics stage and the export queues from the consumer thread;
  // neither blocks.
  trace::SpanLinker::Options linker_options;
  linker_options.hashed_roots = o.propagate_context;
  linker_options.root_salt = cfg.ctx_salt;
  linker_ = std::make_unique<trace::SpanLinker>(
      [this, w = export_.get(), m = metrics_stage_.get()](trace::Span&& span) {
        if (m) {
          if (round_now_ns_ == 0) round_now_ns_ = WallClock::MonotonicNow();
          m->OnSpan(span, round_now_ns_);
        }
        if (w) w->TryPushBatched(std::move(span));  // committed once per poll round
      },
      linker_options);
  protocols::ProtocolOptions protocol_options;
  protocol_options.infer_routes = o.infer_routes;
  protocols_ = std::make_unique<protocols::ProtocolStage>(
      protocols::MakeRegisteredProtocols(protocol_options), linker_.get(), &clock_,
      ResourceExtras(otel_env_), &kernel_state_);
  dumper_ = std::make_unique<EventDumper>(stdout, &clock_);
  pipeline_ = std::make_unique<Pipeline>(conn::ConnTableLimits{}, protocols_.get(), &kernel_state_);
  if (!o.service_name_map.empty()) {
    pipeline_->processes().set_name_map(std::make_shared<conn::ServiceNameMap>(o.service_name_map));
  }
  if (!o.selectors.empty()) {
    pipeline_->table().set_selector([this](const conn::Connection& c) { return Select(c); });
  }
  // /proc and executables are read on a thread of their own: a lookup waits this long at most.
  pipeline_->processes().StartReader(kProcessReadWait);
  probes::RecordSink* sink =
      o.dump_events ? static_cast<probes::RecordSink*>(dumper_.get()) : pipeline_.get();

  auto started = probes::SocketTracer::Start(cfg, preflight_.tracefs, sink, notes);
  if (!started.ok()) return started.status();
  tracer_ = std::move(started.value());
  kernel_state_.set_tracer(tracer_.get());
  kernel_state_.set_head_caps(o.head_caps);
  if (o.propagate_context) {
    auto ctx = probes::CtxPropagator::Start(*tracer_, cfg.netns);
    if (!ctx.ok()) return ctx.status();
    ctx_propagator_ = std::move(ctx.value());
    notes->push_back("--propagate-context: HTTP/1 calls to other hosts carry a traceparent");
  }
  // TLS: load on the socket tracer's maps, then probe every TLS library file in use (and the
  // host's, for processes that load one later) before reporting that tracing started.
  if (o.tls) {
    auto tls =
        probes::TlsTracer::Start(cfg, *tracer_, preflight_.tracefs, notes, o.tls_per_function);
    if (!tls.ok()) return tls.status();
    tls_tracer_ = std::move(tls.value());
    probes::TlsProbeOptions tls_options;
    tls_options.self_pid = cfg.self_tgid;
    tls_options.pids = o.pids;
    tls_probes_ = std::make_unique<probes::TlsProbeManager>(tls_tracer_.get(), tls_options);
    tls_probes_->Start();
    pipeline_->set_tls_probes(tls_probes_.get());
  }
  if (metrics_) {
    // The metrics thread: consumer-owned stats through the board, the rest read directly.
    metrics_->Start([this] {
      AgentSnapshot snap = Snapshot(tracer_->ReadCounters());
      if (auto consumer = board_.Fresh(std::chrono::milliseconds(500))) snap.consumer = *consumer;
      snap.programs = tracer_->ReadProgramStats();
      snap.process = ReadProcessStats();
      std::string text = PrometheusText(snap);
      if (metrics_stage_) metrics::AppendPrometheusText(metrics_stage_->Snapshot(), &text);
      return text;
    });
    notes->push_back("metrics at " + metrics_->url());
  }
  if (otlp_metrics_) {
    metrics_export_ = std::make_unique<exporter::PeriodicMetricsExport>(
        otlp_metrics_.get(), [this] { return metrics_stage_->Snapshot(); }, metrics_env_.interval);
    notes->push_back("OTLP metrics to " +
                     exporter::EndpointForLogs(otlp_metrics_->config().endpoint) + " every " +
                     std::to_string(metrics_env_.interval.count()) + " ms");
  }
  if (o.top) {
    TopView::Options to;
    to.interval = std::chrono::milliseconds(static_cast<int64_t>(o.top_interval_s * 1000));
    top_ = std::make_unique<TopView>(
        to, [this] { return metrics_stage_->Snapshot(); }, &top_quit_);
    top_->Start();
  }
  return Status::Ok();
}

// Consumer thread: the selectors' verdict on a connection at its first bytes. A process they
// leave out whatever its connections is skipped in the kernel from then on.
conn::ConnTable::Selection Agent::Select(const conn::Connection& c) {
  using Verdict = conn::Selectors::Verdict;
  const conn::ProcessInfo* info = &c.process_info();
  // The kernel's name for the process when its main thread opened the connection is newer
  // than a /proc read made at exec: a program may rename itself (PR_SET_NAME) after exec.
  conn::ProcessInfo renamed;
  if (c.comm_of_process && !c.comm.empty() && c.comm != info->comm) {
    renamed = *info;
    renamed.comm = c.comm;
    info = &renamed;
  }
  const conn::ProcessInfo& p = *info;
  const conn::Selectors& s = options_.selectors;
  if (s.ForProcess(p, 0) == Verdict::kSkip && tracer_) tracer_->SkipProcess(c.tgid);
  switch (s.ForConnection(p, c.tuple, c.role)) {
    case Verdict::kTrace:
      return conn::ConnTable::Selection::kTrace;
    case Verdict::kSkip:
      return conn::ConnTable::Selection::kSkip;
    case Verdict::kUndecided:
      break;
  }
  return conn::ConnTable::Selection::kUndecided;
}

// Consumer thread only: what its stages count now.
ConsumerStats Agent::CollectConsumerStats() const {
  ConsumerStats c;
  c.records = pipeline_->records();
  c.decode_errors = pipeline_->decode_errors() + dumper_->decode_errors();
  c.ring_lost_at_stop = ring_lost_at_stop_;
  CounterReport report;
  protocols_->ReportCounters(&report);
  linker_->ReportCounters(&report);
  if (metrics_stage_) metrics_stage_->ReportCounters(&report);
  pipeline_->table().ReportCounters(&report);
  c.rows = std::move(report.rows());
  return c;
}

// Any thread but the consumer's stats, which the caller adds.
AgentSnapshot Agent::Snapshot(const std::array<uint64_t, ZT_CNT_COUNT>& kernel) const {
  AgentSnapshot s;
  s.kernel = kernel;
  s.exports = CollectExportStats(export_.get());
  s.tls = CollectTlsStats(tls_probes_ ? &tls_probes_->stats() : nullptr);
  if (options_.propagate_context) {
    s.ctx_present = true;
    s.ctx = tracer_ ? probes::ReadCtxCounters(tracer_->shared_maps().ctx_counters) : ctx_at_stop_;
  }
  return s;
}

void Agent::PrintStats(const std::array<uint64_t, ZT_CNT_COUNT>& kernel) const {
  AgentSnapshot s = Snapshot(kernel);
  s.consumer = CollectConsumerStats();
  std::fprintf(stderr, "%s\n", StatsLine(s).c_str());
}

void Agent::Run(const std::atomic<bool>* stop) {
  const Options& o = options_;
  HeapTrimmer heap_trimmer;
  const uint64_t start = WallClock::MonotonicNow();
  const uint64_t deadline =
      o.duration_s > 0 ? start + static_cast<uint64_t>(o.duration_s * 1e9) : UINT64_MAX;
  uint64_t next_tick = start + kSecondNs;
  const uint64_t stats_every = static_cast<uint64_t>(o.stats_interval_s * 1e9);
  uint64_t next_stats = o.stats_interval_s > 0 ? start + stats_every : UINT64_MAX;
  while (!stop->load() && !output_closed_.load() && !top_quit_.load()) {
    round_now_ns_ = 0;
    const int n = tracer_->Poll(100);
    if (n < 0 && n != -EINTR) {
      std::fprintf(stderr, "zerotrace: reading the ring buffer failed: %d\n", n);
      break;
    }
    if (o.dump_events && !dumper_->Flush()) break;  // stdout's reader has gone
    const uint64_t now = WallClock::MonotonicNow();
    // Drained: every event before now is in. Cut short under overload: those before the
    // newest one delivered are.
    linker_->Tick(tracer_->drained() ? now : tracer_->newest_record_ns());
    if (export_) export_->CommitBatches();  // the round's spans, in one lock per queue
    if (metrics_stage_) metrics_stage_->Tick(now);
    pipeline_->table().RefreshProcesses();
    if (board_.Wanted()) board_.Publish(CollectConsumerStats());
    if (now >= deadline) break;
    if (now >= next_tick) {
      pipeline_->table().ExpireIdle(now);
      protocols_->Expire(pipeline_->table(), now);
      heap_trimmer.Tick(now);  // after a burst, RSS falls back instead of staying at its peak
      clock_.Resample();       // follows NTP steps and suspends
      next_tick = now + kSecondNs;
    }
    if (now >= next_stats) {
      PrintStats(tracer_->ReadCounters());
      next_stats = now + stats_every;
    }
  }
}

void Agent::Stop() {
  if (metrics_) metrics_->Stop();  // it reads the tracer, which goes next
  // Detach first, so that the ring buffer only empties from here on. Detaching waits for RCU
  // grace periods: the TLS probes and the socket programs side by side.
  const uint64_t t0 = WallClock::MonotonicNow();
  uint64_t tls_done = t0;
  std::thread detach_tls([this, &tls_done] {
    if (tls_probes_) tls_probes_->Stop();  // detaches the uprobes; its stats stay readable
    tls_tracer_.reset();
    tls_done = WallClock::MonotonicNow();
  });
  if (ctx_propagator_) ctx_propagator_->Detach();  // the wire is unchanged from here on
  tracer_->Detach();
  const uint64_t sockets_done = WallClock::MonotonicNow();
  detach_tls.join();
  pipeline_->set_tls_probes(nullptr);  // its thread has ended
  // Every record still in the ring buffer goes through the pipeline, within the drain limit;
  // what is left when it passes is counted, never dropped silently.
  const uint64_t drain_start = WallClock::MonotonicNow();
  const uint64_t drain_deadline =
      drain_start + static_cast<uint64_t>(kStopDrainLimit.count()) * 1000000;
  uint64_t drained_records = 0;
  bool drained = false;
  while (!drained && WallClock::MonotonicNow() < drain_deadline) {
    round_now_ns_ = 0;
    const int n = tracer_->Poll(0);
    if (n < 0 && n != -EINTR) break;
    drained_records += n > 0 ? static_cast<uint64_t>(n) : 0;
    if (options_.dump_events && !dumper_->Flush()) break;  // stdout's reader has gone
    drained = tracer_->drained();
  }
  if (!drained) ring_lost_at_stop_ = tracer_->DiscardPending();
  if (options_.verbose) {
    std::fprintf(stderr,
                 "zerotrace: detached socket programs in %llu ms, TLS probes in %llu ms; "
                 "drained %llu records in %llu ms, %llu left unread\n",
                 (ull)((sockets_done - t0) / 1000000), (ull)((tls_done - t0) / 1000000),
                 (ull)drained_records, (ull)((WallClock::MonotonicNow() - drain_start) / 1000000),
                 (ull)ring_lost_at_stop_);
  }
  round_now_ns_ = 0;
  pipeline_->table().CloseAll();  // complete exchanges become spans, in-flight ones errors
  linker_->Flush();
  if (export_) export_->CommitBatches();
  if (metrics_stage_) metrics_stage_->Flush();  // requests still waiting for their other side
  if (top_) top_->Stop();
  // The final metrics export runs beside the span flush, within the same time.
  std::thread final_metrics([this] {
    if (metrics_export_) metrics_export_->Stop(flush_timeout_);
  });
  const auto kernel_counters = tracer_->ReadCounters();
  if (options_.propagate_context) {
    ctx_at_stop_ = probes::ReadCtxCounters(tracer_->shared_maps().ctx_counters);
  }
  ctx_propagator_.reset();  // before the maps it shares with the tracer
  // Unmapping the ring buffer and freeing the maps, beside the exporters' flush.
  std::thread detach([this] { tracer_.reset(); });
  if (otlp_exporter_) {
    otlp_exporter_->BeginShutdown(std::chrono::steady_clock::now() + flush_timeout_);
  }
  if (export_) export_->Stop(flush_timeout_);
  detach.join();
  final_metrics.join();
  std::fflush(stdout);
  PrintStats(kernel_counters);  // final: after the flush
}

}  // namespace zerotrace::agent
