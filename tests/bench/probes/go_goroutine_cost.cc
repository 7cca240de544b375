// Go goroutine causality probe cost (root): a Go client making N keep-alive requests in turn to
// a Go front that calls a Go back for each (tests/e2e/go/gochain.go, built here), over plain
// HTTP or HTTPS, from the handler's goroutine (up) or from a child goroutine (spawn). Run
// untraced, with the socket tracer and the Go probes without the goroutine ones
// (conn.serve, persistConn.roundTrip, runtime.newproc1), and with them. Reports the CPU
// (user + system, all three processes) per request of each, measured in ABBA order within
// one run, best of the rounds.
// Usage: build/tests/bench/probes/go_goroutine_cost [requests] [rounds] [http|https] [up|spawn]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "go_build.h"
#include "probes/preflight.h"
#include "probes/socket_tracer.h"
#include "probes/tls_probe_manager.h"
#include "probes/tls_tracer.h"
#include "subprocess.h"

namespace {

using namespace zerotrace;

class DiscardingSink : public probes::RecordSink {
 public:
  void OnRecord(const void*, size_t) override {}
};

// CPU seconds (user + system) of a process from /proc/PID/stat.
double ProcessCpu(pid_t pid) {
  const std::string stat = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(stat.c_str(), "r");
  unsigned long long ut = 0, st = 0;
  if (f) {
    if (std::fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                    &st) != 2)
      ut = st = 0;
    std::fclose(f);
  }
  return static_cast<double>(ut + st) / sysconf(_SC_CLK_TCK);
}

// The tracers of one configuration, with a thread draining the ring buffer.
class Traced {
 public:
  Traced(const std::string& tracefs, bool goroutines, pid_t front) {
    std::vector<std::string> notes;
    probes::TracerConfig cfg;
    cfg.self_tgid = getpid();
    auto t = probes::SocketTracer::Start(cfg, tracefs, &sink_, &notes);
    if (!t.ok()) Die(t.status().message());
    sockets_ = std::move(t.value());
    auto l = probes::TlsTracer::Start(cfg, *sockets_, tracefs, &notes);
    if (!l.ok()) Die(l.status().message());
    tls_ = std::move(l.value());
    probes::TlsProbeOptions options;
    options.self_pid = getpid();
    options.pids = {static_cast<uint32_t>(front)};  // all three run the one binary
    options.host_lib_dirs = {};
    options.go_goroutines = goroutines;
    manager_ = std::make_unique<probes::TlsProbeManager>(tls_.get(), options);
    manager_->Start();
    if (manager_->stats().go_files_probed.load() != 1) Die("the Go binary was not probed");
    poller_ = std::thread([this] {
      while (!stop_) sockets_->Poll(50);
    });
  }
  ~Traced() {
    stop_ = true;
    poller_.join();
    if (manager_) manager_->Stop();
  }
  uint64_t go_calls() const { return sockets_->ReadCounters()[ZT_CNT_GO_CALLS]; }
  probes::ProgramStats go_stats() const {
    for (const auto& s : tls_->ReadProgramStats())
      if (s.name == "zt_go_tls") return s;
    return {};
  }

 private:
  [[noreturn]] static void Die(const std::string& why) {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::exit(1);
  }
  DiscardingSink sink_;
  std::unique_ptr<probes::SocketTracer> sockets_;
  std::unique_ptr<probes::TlsTracer> tls_;
  std::unique_ptr<probes::TlsProbeManager> manager_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 3000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const std::string scheme = argc > 3 ? argv[3] : "http";
  const std::string kind = argc > 4 ? argv[4] : "up";
  probes::PreflightReport report;
  if (Status s = probes::Preflight(&report); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  testing::TempDir dir;
  const auto go = testing::BuildGo(ZT_GO_CHAIN_SOURCE, dir.path(), "gochain");
  if (go.binary.empty()) {
    std::fprintf(stderr, "%s\n", go.error.c_str());
    return 1;
  }
  const std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  const std::string gen =
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
      " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1" + " 2>/dev/null";
  if (std::system(gen.c_str()) != 0) return 1;
  if (FILE* f = std::fopen("/proc/sys/kernel/bpf_stats_enabled", "w")) {
    std::fputs("1", f);
    std::fclose(f);
  }

  // 0 untraced, 1 Go probes without goroutine probes, 2 with; each round runs 0 1 2 2 1 0.
  constexpr int kConfigs = 3;
  double best[kConfigs] = {1e9, 1e9, 1e9};
  uint64_t go_calls = 0;
  probes::ProgramStats stats[kConfigs];
  for (int round = 0; round < rounds; round++) {
    for (int step = 0; step < 2 * kConfigs; step++) {
      const int cfg = step < kConfigs ? step : 2 * kConfigs - 1 - step;
      const int back_port = testing::FreePort(), front_port = testing::FreePort();
      testing::Subprocess back(
          {go.binary, "back", std::to_string(back_port), scheme, cert, key, "0"});
      testing::Subprocess front({go.binary, "front", std::to_string(front_port), scheme, cert, key,
                                 std::to_string(back_port)});
      if (!back.WaitForLine("ready", std::chrono::seconds(30)) ||
          !front.WaitForLine("ready", std::chrono::seconds(30)))
        return 1;
      std::unique_ptr<Traced> traced;
      if (cfg > 0) traced = std::make_unique<Traced>(report.tracefs, cfg == 2, front.pid());
      const double before = ProcessCpu(front.pid()) + ProcessCpu(back.pid());
      testing::Subprocess client({go.binary, "bench", std::to_string(front_port), scheme, cert,
                                  std::to_string(requests), kind});
      if (!client.WaitForLine("done", std::chrono::seconds(600))) {
        std::fprintf(stderr, "the Go client failed\n");
        return 1;
      }
      // The client has printed "done": its CPU is (almost all) spent; read it before it exits.
      const double cpu =
          ProcessCpu(client.pid()) + ProcessCpu(front.pid()) + ProcessCpu(back.pid()) - before;
      if (traced) {
        stats[cfg] = traced->go_stats();
        if (cfg == 2) go_calls = traced->go_calls();
      }
      traced.reset();
      best[cfg] = std::min(best[cfg], cpu);
    }
  }
  const char* names[kConfigs] = {"untraced", "Go probes, no goroutines", "Go probes + goroutines"};
  std::printf(
      "%d %s requests (/%s/N, keep-alive) client -> Go front -> Go back, best of %d rounds "
      "(ABBA), CPU of the three processes:\n",
      requests, scheme.c_str(), kind.c_str(), rounds);
  for (int c = 0; c < kConfigs; c++) {
    std::printf("  %-26s %7.1f us/request", names[c], best[c] / requests * 1e6);
    if (stats[c].run_count > 0) {
      std::printf("  (Go uprobe hits %.1f/request, %.0f ns BPF each)",
                  double(stats[c].run_count) / requests,
                  double(stats[c].run_time_ns) / stats[c].run_count);
    }
    std::printf("\n");
  }
  std::printf("  added by the goroutine probes: %.1f us/request\n",
              (best[2] - best[1]) / requests * 1e6);
  std::printf("  goroutine evidence records in the last traced run: %llu (%.2f per request)\n",
              static_cast<unsigned long long>(go_calls), double(go_calls) / requests);
  return 0;
}
