// Go TLS probe cost (root): a Go HTTPS client making N keep-alive requests to a Go HTTPS
// server (tests/e2e/go/gohttps.go, built here with golang-go), run untraced, with the socket
// tracer alone, and with the socket tracer plus the TLS tracer and its Go crypto/tls probes.
// Reports the CPU (user + system, both processes) per request of each, measured in ABBA order
// within one run, best of the rounds.
// Usage: build/tests/bench/probes/go_tls_cost [requests] [rounds]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
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

class CountingSink : public probes::RecordSink {
 public:
  void OnRecord(const void*, size_t) override {}
};

pid_t Start(const std::vector<std::string>& argv) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// CPU seconds of a child once it is gone; status in *ok.
double Reap(pid_t pid, bool* ok) {
  int st = 0;
  rusage ru{};
  wait4(pid, &st, 0, &ru);
  if (ok) *ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec * 1e-6;
}

// The tracers of one configuration (`go`: with the TLS tracer and its Go probes), with a
// thread draining the ring buffer.
class Traced {
 public:
  Traced(const std::string& tracefs, bool go, pid_t server) {
    std::vector<std::string> notes;
    probes::TracerConfig cfg;
    cfg.self_tgid = getpid();
    auto t = probes::SocketTracer::Start(cfg, tracefs, &sink_, &notes);
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", t.status().message().c_str());
      std::exit(1);
    }
    sockets_ = std::move(t.value());
    if (go) {
      auto l = probes::TlsTracer::Start(cfg, *sockets_, tracefs, &notes);
      if (!l.ok()) {
        std::fprintf(stderr, "%s\n", l.status().message().c_str());
        std::exit(1);
      }
      tls_ = std::move(l.value());
      probes::TlsProbeOptions options;
      options.self_pid = getpid();
      options.pids = {static_cast<uint32_t>(server)};  // probes the Go binary the client shares
      options.host_lib_dirs = {};
      manager_ = std::make_unique<probes::TlsProbeManager>(tls_.get(), options);
      manager_->Start();
      if (manager_->stats().go_files_probed.load() != 1) {
        std::fprintf(stderr, "the Go binary was not probed\n");
        std::exit(1);
      }
    }
    poller_ = std::thread([this] {
      while (!stop_) sockets_->Poll(50);
    });
  }
  ~Traced() {
    stop_ = true;
    poller_.join();
    if (manager_) manager_->Stop();
  }
  uint64_t tls_calls() const { return sockets_->ReadCounters()[ZT_CNT_TLS_CALLS]; }
  // Runs and run time of the Go uprobe program (kernel.bpf_stats_enabled).
  probes::ProgramStats go_stats() const {
    for (const auto& s : tls_ ? tls_->ReadProgramStats() : std::vector<probes::ProgramStats>{})
      if (s.name == "zt_go_tls") return s;
    return {};
  }

 private:
  CountingSink sink_;
  std::unique_ptr<probes::SocketTracer> sockets_;
  std::unique_ptr<probes::TlsTracer> tls_;
  std::unique_ptr<probes::TlsProbeManager> manager_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  probes::PreflightReport report;
  if (Status s = probes::Preflight(&report); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  testing::TempDir dir;
  const auto go = testing::BuildGo(ZT_GO_SOURCE, dir.path(), "gohttps");
  if (go.binary.empty()) {
    std::fprintf(stderr, "%s\n", go.error.c_str());
    return 1;
  }
  const std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  const std::string gen =
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
      " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1" + " 2>/dev/null";
  if (std::system(gen.c_str()) != 0) return 1;

  // 0 untraced, 1 sockets, 2 sockets + Go TLS probes; each round runs 0 1 2 2 1 0.
  constexpr int kConfigs = 3;
  double best[kConfigs] = {1e9, 1e9, 1e9};
  uint64_t tls_calls = 0;
  probes::ProgramStats go_stats;
  if (FILE* f = std::fopen("/proc/sys/kernel/bpf_stats_enabled", "w")) {
    std::fputs("1", f);
    std::fclose(f);
  }
  for (int round = 0; round < rounds; round++) {
    for (int step = 0; step < 2 * kConfigs; step++) {
      const int cfg = step < kConfigs ? step : 2 * kConfigs - 1 - step;
      const int port = testing::FreePort();
      testing::Subprocess server({go.binary, "server", std::to_string(port), cert, key});
      if (!server.WaitForLine("ready", std::chrono::seconds(30))) return 1;
      std::unique_ptr<Traced> traced;
      if (cfg > 0) traced = std::make_unique<Traced>(report.tracefs, cfg == 2, server.pid());
      // The server's CPU: /proc/PID/stat before and after, as it is not our direct child.
      auto server_cpu = [&] {
        const std::string stat = "/proc/" + std::to_string(server.pid()) + "/stat";
        FILE* f = std::fopen(stat.c_str(), "r");
        unsigned long long ut = 0, stt = 0;
        if (f) {
          if (std::fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                          &stt) != 2)
            ut = stt = 0;
          std::fclose(f);
        }
        return static_cast<double>(ut + stt) / sysconf(_SC_CLK_TCK);
      };
      const double before = server_cpu();
      bool ok = false;
      const double client = Reap(
          Start({go.binary, "bench", std::to_string(port), cert, std::to_string(requests)}), &ok);
      const double cpu = client + server_cpu() - before;
      if (!ok) {
        std::fprintf(stderr, "the Go client failed\n");
        return 1;
      }
      if (cfg == 2) {
        tls_calls = traced->tls_calls();
        go_stats = traced->go_stats();
      }
      traced.reset();
      best[cfg] = std::min(best[cfg], cpu);
    }
  }
  const char* names[kConfigs] = {"untraced", "sockets traced", "sockets + Go TLS probes"};
  std::printf(
      "%d HTTPS requests (GET /hello, keep-alive) from a Go client to a Go server, "
      "best of %d rounds (ABBA), CPU of both processes:\n",
      requests, rounds);
  for (int c = 0; c < kConfigs; c++)
    std::printf("  %-24s %6.1f us/request\n", names[c], best[c] / requests * 1e6);
  std::printf("  added by the Go TLS probes: %.1f us/request (vs untraced: %.1f)\n",
              (best[2] - best[1]) / requests * 1e6, (best[2] - best[0]) / requests * 1e6);
  std::printf("  plaintext calls captured in the last traced run: %llu (%.1f per request)\n",
              static_cast<unsigned long long>(tls_calls), double(tls_calls) / requests);
  if (go_stats.run_count > 0) {
    std::printf("  Go uprobe hits: %.1f per request, BPF run time %.0f ns per hit\n",
                double(go_stats.run_count) / requests,
                double(go_stats.run_time_ns) / go_stats.run_count);
  }
  return 0;
}
