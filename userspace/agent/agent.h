// The agent: owns every stage of the data flow (probes -> conn -> protocols -> trace ->
// export), wires them together, runs the consumer loop and stops it in order.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/event_dump.h"
#include "agent/metrics_env.h"
#include "agent/metrics_server.h"
#include "agent/options.h"
#include "agent/pipeline.h"
#include "agent/self_metrics.h"
#include "agent/top_view.h"
#include "base/clock.h"
#include "base/status.h"
#include "export/export_fanout.h"
#include "export/otlp_exporter_base.h"
#include "export/otlp_metrics_exporter.h"
#include "metrics/metrics_stage.h"
#include "probes/ctx_propagator.h"
#include "probes/preflight.h"
#include "probes/socket_tracer.h"
#include "probes/tls_tracer.h"
#include "protocols/stage.h"
#include "trace/span_linker.h"

namespace zerotrace::agent {

class Agent {
 public:
  // Everything that can be checked before anything is loaded: exporters (a bad path or
  // endpoint), the metrics listener (a bad address, a port in use). Errors here are the
  // user's configuration: exit status 2.
  static StatusOr<std::unique_ptr<Agent>> Configure(const Options& options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Preflight, then load and attach the probes (exit status 1 on failure). `notes` gets one
  // line per thing the user should know (a hook this kernel lacks, a TLS library not probed).
  Status Start(std::vector<std::string>* notes);
  // Consumes the ring buffer until *stop is set or --duration ends.
  void Run(const std::atomic<bool>* stop);
  // Stops in order: what is in flight becomes spans, the probes detach, the exporters flush
  // within the flush timeout. The final stats line goes to stderr.
  void Stop();
  // How long a stop may take before the watchdog ends the process.
  std::chrono::milliseconds flush_timeout() const { return flush_timeout_; }
  // How long a stop may spend delivering what is in the ring buffer after the probes detach
  // (the rest is counted as ring_lost_at_stop).
  static constexpr std::chrono::milliseconds kStopDrainLimit{1000};

 private:
  explicit Agent(const Options& options);
  Status BuildExporters();
  Status BuildMetricsExporter();
  ConsumerStats CollectConsumerStats() const;
  conn::ConnTable::Selection Select(const conn::Connection& c);
  AgentSnapshot Snapshot(const std::array<uint64_t, ZT_CNT_COUNT>& kernel) const;
  void PrintStats(const std::array<uint64_t, ZT_CNT_COUNT>& kernel) const;

  Options options_;
  exporter::GetEnvFn getenv_;  // the config file's env: section, then the environment
  OtelEnv otel_env_;           // the OTEL_* variables, read once
  WallClock clock_;
  std::atomic<bool> output_closed_{false};  // an exporter's output has gone (EPIPE): stop
  std::chrono::milliseconds flush_timeout_{1500};
  // Export: local exporters (console, JSON lines) and the collector, each group on its own
  // thread behind a bounded queue.
  std::vector<std::unique_ptr<exporter::SpanExporter>> local_exporters_, remote_exporters_;
  exporter::OtlpExporterBase* otlp_exporter_ = nullptr;  // owned by export_
  std::unique_ptr<exporter::ExportFanout> export_;
  std::unique_ptr<MetricsServer> metrics_;
  // RED metrics and the service graph (null when nothing reads them), and their readers.
  MetricsEnv metrics_env_;
  std::unique_ptr<metrics::MetricsStage> metrics_stage_;
  // The metrics stage's time for the spans of one poll round, read at the round's first span
  // (0: not yet). Its deadlines are seconds long; a clock read per span cost ~55 ns here.
  uint64_t round_now_ns_ = 0;
  std::unique_ptr<exporter::OtlpMetricsExporter> otlp_metrics_;
  std::unique_ptr<exporter::PeriodicMetricsExport> metrics_export_;
  std::unique_ptr<TopView> top_;
  std::atomic<bool> top_quit_{false};  // q pressed in the top view
  // The consumer thread's stages, in data-flow order.
  std::unique_ptr<trace::SpanLinker> linker_;
  TracerKernelState kernel_state_;
  std::unique_ptr<protocols::ProtocolStage> protocols_;
  std::unique_ptr<EventDumper> dumper_;
  std::unique_ptr<Pipeline> pipeline_;
  // Probes.
  probes::PreflightReport preflight_;
  std::unique_ptr<probes::SocketTracer> tracer_;
  std::unique_ptr<probes::TlsTracer> tls_tracer_;
  std::unique_ptr<probes::CtxPropagator> ctx_propagator_;  // --propagate-context
  std::array<uint64_t, ZT_CTX_CNT_COUNT> ctx_at_stop_{};   // its counters once tracer_ is gone
  std::unique_ptr<probes::TlsProbeManager> tls_probes_;
  uint64_t ring_lost_at_stop_ = 0;  // records the stop's drain left unread (consumer thread)
  ConsumerStatsBoard board_;
};

}  // namespace zerotrace::agent
