// zerotrace agent: preflight, load and attach, consume the ring buffer until told to stop.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>

#include "agent/event_dump.h"
#include "agent/options.h"
#include "agent/pipeline.h"
#include "base/clock.h"
#include "probes/preflight.h"
#include "probes/socket_tracer.h"

namespace {

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

void PrintKernelCounters(const zerotrace::probes::SocketTracer& t, uint64_t decode_errors) {
  const auto c = t.ReadCounters();
  std::fprintf(stderr,
               "zerotrace: stats data_events=%llu conns_opened=%llu conns_closed=%llu "
               "ringbuf_reserve_failed=%llu capture_truncated=%llu read_user_failed=%llu "
               "iov_overflow=%llu decode_errors=%llu\n",
               (unsigned long long)c[ZT_CNT_DATA_EVENTS], (unsigned long long)c[ZT_CNT_CONN_OPENED],
               (unsigned long long)c[ZT_CNT_CONN_CLOSED],
               (unsigned long long)c[ZT_CNT_RINGBUF_RESERVE_FAILED],
               (unsigned long long)c[ZT_CNT_CAPTURE_TRUNCATED],
               (unsigned long long)c[ZT_CNT_READ_USER_FAILED],
               (unsigned long long)c[ZT_CNT_IOV_OVERFLOW], (unsigned long long)decode_errors);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace zerotrace;
  bool exit_now = false;
  auto opts = agent::ParseOptions(argc, argv, &exit_now);
  if (!opts.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", opts.status().message().c_str());
    return 2;
  }
  if (exit_now) return 0;
  const agent::Options& o = *opts;

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

  agent::EventDumper dumper(stdout, &clock);
  agent::ConnSummaryPrinter printer(stdout, &clock);
  agent::TracerKernelState kernel_state;
  agent::Pipeline pipeline(conn::ConnTableLimits{}, &printer, &kernel_state);
  probes::RecordSink* sink = o.dump_events ? static_cast<probes::RecordSink*>(&dumper) : &pipeline;

  std::vector<std::string> notes;
  auto tracer = probes::SocketTracer::Start(cfg, report.tracefs, sink, &notes);
  for (const auto& note : notes) std::fprintf(stderr, "zerotrace: %s\n", note.c_str());
  if (!tracer.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", tracer.status().message().c_str());
    return 1;
  }
  kernel_state.set_tracer(tracer->get());
  std::fprintf(stderr, "zerotrace: tracing%s (pid %u); Ctrl-C to stop\n",
               o.pids.empty() ? " every process" : " selected processes", cfg.self_tgid);

  const uint64_t start = WallClock::MonotonicNow();
  const uint64_t deadline =
      o.duration_s > 0 ? start + static_cast<uint64_t>(o.duration_s * 1e9) : UINT64_MAX;
  uint64_t next_expire = start + 1'000'000'000ULL;
  uint64_t next_stats =
      o.stats_interval_s > 0 ? start + static_cast<uint64_t>(o.stats_interval_s * 1e9) : UINT64_MAX;
  while (!g_stop.load()) {
    const int n = (*tracer)->Poll(100);
    if (n < 0 && n != -EINTR) {
      std::fprintf(stderr, "zerotrace: reading the ring buffer failed: %d\n", n);
      break;
    }
    std::fflush(stdout);
    const uint64_t now = WallClock::MonotonicNow();
    if (now >= deadline) break;
    if (now >= next_expire) {
      pipeline.table().ExpireIdle(now);
      next_expire = now + 1'000'000'000ULL;
    }
    if (now >= next_stats) {
      PrintKernelCounters(**tracer, pipeline.decode_errors() + dumper.decode_errors());
      next_stats = now + static_cast<uint64_t>(o.stats_interval_s * 1e9);
    }
  }
  (*tracer)->Poll(0);  // drain what is already in the ring buffer
  pipeline.table().CloseAll();
  std::fflush(stdout);
  PrintKernelCounters(**tracer, pipeline.decode_errors() + dumper.decode_errors());
  return 0;
}
