// TLS probe cost (root): OpenSSL (the system's libssl) in two child processes over loopback,
// run untraced, with the socket tracer, and with the socket tracer plus the TLS uprobes.
//   1. a tight loop: the client makes N SSL_write calls of 64 bytes, the server N SSL_read
//      calls of 64 bytes; the children's CPU time gives the added ns per SSL call;
//   2. a request loop (300-byte request, 1 KiB response): wall time and throughput ratio.
// Usage: build/tests/bench/probes/tls_cost [tight_calls] [requests] [rounds]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "probes/preflight.h"
#include "probes/socket_tracer.h"
#include "probes/tls_probe_manager.h"
#include "probes/tls_tracer.h"

namespace {

using namespace zerotrace;

class CountingSink : public probes::RecordSink {
 public:
  void OnRecord(const void*, size_t) override { records++; }
  std::atomic<uint64_t> records{0};
};

std::string g_cert, g_key;

struct LoopResult {
  double wall_s = 0;
  double cpu_s = 0;  // user + system of both children
};

bool ReadExactly(SSL* ssl, char* buf, int n) {
  int got = 0;
  while (got < n) {
    const int r = SSL_read(ssl, buf + got, n - got);
    if (r <= 0) return false;
    got += r;
  }
  return true;
}

// Forks a TLS server and client; `client_fn`/`server_fn` run on the established SSL*.
template <typename C, typename S>
LoopResult Run(C client_fn, S server_fn) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  listen(lfd, 1);
  const auto start = std::chrono::steady_clock::now();
  pid_t server = fork();
  if (server == 0) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_file(ctx, g_cert.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx, g_key.c_str(), SSL_FILETYPE_PEM);
    int c = accept(lfd, nullptr, nullptr);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) != 1) _exit(1);
    _exit(server_fn(ssl) ? 0 : 1);
  }
  pid_t client = fork();
  if (client == 0) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) _exit(1);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c);
    if (SSL_connect(ssl) != 1) _exit(1);
    _exit(client_fn(ssl) ? 0 : 1);
  }
  close(lfd);
  LoopResult out;
  for (pid_t p : {client, server}) {
    int st = 0;
    rusage ru{};
    wait4(p, &st, 0, &ru);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) std::fprintf(stderr, "a child failed\n");
    out.cpu_s += ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec * 1e-6;
  }
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

// N SSL_write calls of 64 bytes against N SSL_read calls of 64 bytes.
LoopResult TightLoop(int n) {
  return Run(
      [n](SSL* ssl) {
        char buf[64] = "GET / HTTP/1.1\r\n";
        for (int i = 0; i < n; i++) {
          if (SSL_write(ssl, buf, sizeof(buf)) != sizeof(buf)) return false;
        }
        char ack;
        return SSL_read(ssl, &ack, 1) == 1;
      },
      [n](SSL* ssl) {
        char buf[64];
        for (int i = 0; i < n; i++) {
          if (SSL_read(ssl, buf, sizeof(buf)) != sizeof(buf)) return false;
        }
        return SSL_write(ssl, "k", 1) == 1;
      });
}

// n requests of 300 bytes answered with 1 KiB.
LoopResult RequestLoop(int n) {
  return Run(
      [n](SSL* ssl) {
        char req[300] = {}, resp[1024];
        for (int i = 0; i < n; i++) {
          if (SSL_write(ssl, req, sizeof(req)) != sizeof(req)) return false;
          if (!ReadExactly(ssl, resp, sizeof(resp))) return false;
        }
        return true;
      },
      [n](SSL* ssl) {
        char req[300], resp[1024] = {};
        for (int i = 0; i < n; i++) {
          if (!ReadExactly(ssl, req, sizeof(req))) return false;
          if (SSL_write(ssl, resp, sizeof(resp)) != sizeof(resp)) return false;
        }
        return true;
      });
}

// The tracers of one configuration, with a thread draining the ring buffer.
class Traced {
 public:
  // `filtered`: the programs run but return at once (--pid of another process): what is left
  // is the cost of the uprobe traps themselves.
  Traced(const std::string& tracefs, bool tls, bool filtered) {
    std::vector<std::string> notes;
    probes::TracerConfig cfg;
    cfg.self_tgid = getpid();
    if (filtered) cfg.pids = {1};
    auto t = probes::SocketTracer::Start(cfg, tracefs, &sink_, &notes);
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", t.status().message().c_str());
      std::exit(1);
    }
    sockets_ = std::move(t.value());
    if (tls) {
      auto l = probes::TlsTracer::Start(cfg, *sockets_, tracefs, &notes);
      if (!l.ok()) {
        std::fprintf(stderr, "%s\n", l.status().message().c_str());
        std::exit(1);
      }
      tls_ = std::move(l.value());
      probes::TlsProbeOptions options;
      options.self_pid = getpid();
      options.pids = {static_cast<uint32_t>(getpid())};  // host libraries only
      manager_ = std::make_unique<probes::TlsProbeManager>(tls_.get(), options);
      manager_->Start();
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
  std::array<uint64_t, ZT_CNT_COUNT> counters() const { return sockets_->ReadCounters(); }
  std::vector<probes::ProgramStats> tls_stats() const {
    return tls_ ? tls_->ReadProgramStats() : std::vector<probes::ProgramStats>{};
  }
  uint64_t records() const { return sink_.records; }

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
  const int tight = argc > 1 ? std::atoi(argv[1]) : 200000;
  const int requests = argc > 2 ? std::atoi(argv[2]) : 20000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  probes::PreflightReport report;
  if (Status s = probes::Preflight(&report); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  char dir[] = "/tmp/zt-tls-bench-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  g_cert = std::string(dir) + "/cert.pem";
  g_key = std::string(dir) + "/key.pem";
  const std::string gen = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + g_key + " -out " +
                          g_cert + " -days 1 -subj /CN=127.0.0.1 2>/dev/null";
  if (std::system(gen.c_str()) != 0) return 1;

  // Best of `rounds` for each configuration: 0 untraced, 1 sockets, 2 sockets + TLS,
  // 3 TLS probes whose programs return at once (the trap cost alone).
  constexpr int kConfigs = 4;
  LoopResult best_tight[kConfigs], best_req[kConfigs];
  for (auto& r : best_tight) r = {1e9, 1e9};
  for (auto& r : best_req) r = {1e9, 1e9};
  uint64_t tls_calls = 0;
  std::vector<probes::ProgramStats> tls_stats;
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "1";
  for (int round = 0; round < rounds; round++) {
    for (int cfg = 0; cfg < kConfigs; cfg++) {
      std::unique_ptr<Traced> traced;
      if (cfg > 0) traced = std::make_unique<Traced>(report.tracefs, cfg >= 2, cfg == 3);
      const LoopResult t = TightLoop(tight), q = RequestLoop(requests);
      best_tight[cfg].cpu_s = std::min(best_tight[cfg].cpu_s, t.cpu_s);
      best_tight[cfg].wall_s = std::min(best_tight[cfg].wall_s, t.wall_s);
      best_req[cfg].wall_s = std::min(best_req[cfg].wall_s, q.wall_s);
      best_req[cfg].cpu_s = std::min(best_req[cfg].cpu_s, q.cpu_s);
      if (cfg == 2) {
        tls_calls = traced->counters()[ZT_CNT_TLS_CALLS];
        tls_stats = traced->tls_stats();
      }
    }
  }
  std::system((std::string("rm -rf ") + dir).c_str());
  const double calls = 2.0 * tight;  // client SSL_write + server SSL_read
  std::printf(
      "tight loop: %d SSL_write + %d SSL_read of 64 bytes (best of %d, CPU of both "
      "processes)\n",
      tight, tight, rounds);
  std::printf(
      "  untraced %.0f ns/call, sockets traced %.0f ns/call, sockets + TLS probes %.0f "
      "ns/call\n",
      best_tight[0].cpu_s / calls * 1e9, best_tight[1].cpu_s / calls * 1e9,
      best_tight[2].cpu_s / calls * 1e9);
  std::printf("  added by the TLS probes: %.0f ns per SSL call (vs untraced: %.0f)\n",
              (best_tight[2].cpu_s - best_tight[1].cpu_s) / calls * 1e9,
              (best_tight[2].cpu_s - best_tight[0].cpu_s) / calls * 1e9);
  std::printf("  of which uprobe + uretprobe traps with programs that return at once: %.0f ns\n",
              (best_tight[3].cpu_s - best_tight[0].cpu_s) / calls * 1e9);
  std::printf("request loop: %d requests of 300 B answered with 1 KiB over one TLS connection\n",
              requests);
  for (int cfg = 0; cfg < kConfigs; cfg++) {
    static const char* kNames[] = {"untraced", "sockets traced", "sockets + TLS probes",
                                   "TLS traps only"};
    std::printf("  %-22s %7.1f us/request  throughput ratio %.3f\n", kNames[cfg],
                best_req[cfg].wall_s / requests * 1e6, best_req[0].wall_s / best_req[cfg].wall_s);
  }
  std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "0";
  std::printf("TLS calls emitted in the last traced round (all processes): %llu\n",
              static_cast<unsigned long long>(tls_calls));
  for (const auto& p : tls_stats) {  // BPF time only; the uprobe traps cost the rest
    if (p.run_count == 0) continue;
    std::printf("  %-18s runs=%-9llu avg=%5.0f ns of BPF\n", p.name.c_str(),
                static_cast<unsigned long long>(p.run_count),
                static_cast<double>(p.run_time_ns) / p.run_count);
  }
  return 0;
}
