// Kernel-side cost (root): a loopback request loop in two child processes, run without and
// with the tracer attached, with kernel.bpf_stats_enabled on. Prints ns of BPF per run of each
// program and the loop's wall-time ratio.
// Usage: kernel_cost [REQUESTS [ROUNDS [MODE [socket|syscall [split|same]]]]]; MODE is write,
// writev, eagain, muted or churn (see main).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "probes/preflight.h"
#include "probes/socket_tracer.h"

namespace {

using namespace zerotrace;

// Counts records; with `mute` set, mutes each connection at its open record, as the agent
// does with one no protocol claims (payload muted: sizes only). With `churn` set, each record
// mutes a connection of a process that does not exist: a node where other connections are muted
// or capped as often as this loop makes syscalls.
class CountingSink : public probes::RecordSink {
 public:
  void OnRecord(const void* data, size_t size) override {
    records++;
    round_records++;
    if (churn) {
      constexpr uint32_t kNoProcess = 0x7ffffff0;
      churn->MutePayload(kNoProcess, records % 1024, (records * 0x9E3779B1u) & 0xffffffffffULL);
    }
    zt_event_header h;
    if (!mute || size < sizeof(h)) return;
    std::memcpy(&h, data, sizeof(h));
    if (h.type == ZT_EV_CONN_OPEN) mute->MutePayload(h.tgid, h.fd, h.conn_id);
  }
  uint64_t records = 0;
  uint64_t round_records = 0;             // this round's
  probes::SocketTracer* mute = nullptr;   // "muted" mode
  probes::SocketTracer* churn = nullptr;  // "churn" mode
};

// One request loop: a forked echo server and a forked client doing `n` 300-byte requests
// answered with 1 KiB, an HTTP/1 response (`writev`: as its 240-byte head and 784-byte body,
// as nginx does).
// `eagain`: the server is an event loop as nginx is (nonblocking recvfrom until EAGAIN, poll
// between requests): three recvfrom per request, two of them empty. Returns wall seconds
// measured by the parent.
// Placement of the loop's two processes: where the scheduler puts them (which varies from run
// to run, and moves BPF time per request by a third), or pinned to CPUs `server_cpu` and
// `client_cpu`.
struct Placement {
  int server_cpu = -1;  // -1: not pinned
  int client_cpu = -1;
};

void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) _exit(2);
}

double RequestLoop(int n, bool writev_reply, bool eagain, Placement place) {
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
    PinTo(place.server_cpu);
    int c = accept(lfd, nullptr, nullptr);
    char buf[2048], resp[1024];
    // A real response: a 240-byte head (padded with a header) and a 784-byte body.
    std::memset(resp, 'b', sizeof(resp));
    const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 784\r\nX-Pad: ";
    std::memcpy(resp, head, sizeof(head) - 1);
    std::memset(resp + sizeof(head) - 1, 'p', 240 - 4 - (sizeof(head) - 1));
    std::memcpy(resp + 236, "\r\n\r\n", 4);
    for (int i = 0; i < n; i++) {
      size_t got = 0;
      while (eagain && got < 300) {  // read until EAGAIN, then wait for more
        ssize_t r = recvfrom(c, buf, sizeof(buf) - got, MSG_DONTWAIT, nullptr, nullptr);
        if (r == 0 || (r < 0 && errno != EAGAIN)) _exit(1);
        if (r > 0) {
          got += r;
          continue;
        }
        pollfd p{c, POLLIN, 0};
        if (got < 300 && poll(&p, 1, 5000) != 1) _exit(1);
      }
      if (eagain && recvfrom(c, buf, sizeof(buf), MSG_DONTWAIT, nullptr, nullptr) != -1) _exit(1);
      while (got < 300) {
        ssize_t r = read(c, buf, 300 - got);
        if (r <= 0) _exit(1);
        got += r;
      }
      iovec iov[2] = {{resp, 240}, {resp + 240, sizeof(resp) - 240}};
      const ssize_t w = writev_reply ? writev(c, iov, 2) : write(c, resp, sizeof(resp));
      if (w != sizeof(resp)) _exit(1);
    }
    _exit(0);
  }
  pid_t client = fork();
  if (client == 0) {
    PinTo(place.client_cpu);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) _exit(1);
    char req[300] = {}, buf[1024];
    for (int i = 0; i < n; i++) {
      if (write(c, req, sizeof(req)) != sizeof(req)) _exit(1);
      size_t got = 0;
      while (got < sizeof(buf)) {
        ssize_t r = read(c, buf, sizeof(buf) - got);
        if (r <= 0) _exit(1);
        got += r;
      }
    }
    _exit(0);
  }
  close(lfd);
  int st;
  waitpid(client, &st, 0);
  waitpid(server, &st, 0);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void SetBpfStats(const char* v) { std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << v; }

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  // write, writev, eagain; muted: write, every connection muted at its open record; churn:
  // writev, and a mute of another process's connection per record
  const std::string mode = argc > 3 ? argv[3] : "write";
  const bool eagain = mode == "eagain";
  const bool writev_reply = mode == "writev" || mode == "churn" || eagain;
  // "syscall": receives and sends taken at their syscalls' exits (--no-socket-tracepoints),
  // not at the socket layer's tracepoints.
  const bool sock_hooks = !(argc > 4 && std::string(argv[4]) == "syscall");
  // "split": the server on CPU 0 and the client on CPU 1; "same": both on CPU 0; otherwise
  // where the scheduler puts them.
  const std::string pin = argc > 5 ? argv[5] : "";
  Placement place;
  if (pin == "split") place = {0, 1};
  if (pin == "same") place = {0, 0};
  probes::PreflightReport report;
  if (Status s = probes::Preflight(&report); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  double base = 1e9, traced = 1e9;
  CountingSink sink;
  std::vector<probes::ProgramStats> stats;
  for (int r = 0; r < rounds; r++) {
    base = std::min(base, RequestLoop(n, writev_reply, eagain, place));
    SetBpfStats("1");
    std::vector<std::string> notes;
    probes::TracerConfig cfg;
    cfg.self_tgid = getpid();
    cfg.sock_hooks = sock_hooks;
    auto t = probes::SocketTracer::Start(cfg, report.tracefs, &sink, &notes);
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", t.status().message().c_str());
      return 1;
    }
    sink.mute = mode == "muted" ? t->get() : nullptr;
    sink.churn = mode == "churn" ? t->get() : nullptr;
    sink.round_records = 0;
    std::atomic<bool> stop{false};
    std::thread poller([&] {
      while (!stop) (*t)->Poll(50);
    });
    traced = std::min(traced, RequestLoop(n, writev_reply, eagain, place));
    stop = true;
    poller.join();
    stats = (*t)->ReadProgramStats();
    SetBpfStats("0");
    sink.mute = nullptr;
    sink.churn = nullptr;
  }
  std::printf(
      "request loop (%d requests, best of %d): %.1f us/request untraced, %.1f traced, "
      "ratio %.3f\n",
      n, rounds, base / n * 1e6, traced / n * 1e6, base / traced);
  uint64_t total_ns = 0;
  for (const auto& p : stats) {
    if (p.run_count == 0) continue;
    total_ns += p.run_time_ns;
    std::printf("  %-24s runs=%-10llu avg=%6.0f ns\n", p.name.c_str(),
                (unsigned long long)p.run_count, double(p.run_time_ns) / p.run_count);
  }
  // Each request is 4 traced data syscalls (client write+read, server read+write), 6 with
  // eagain (two empty recvfrom more).
  std::printf(
      "BPF time per request (%d data syscalls, last round, includes other processes): "
      "%.0f ns; records=%llu\n",
      eagain ? 6 : 4, double(total_ns) / n, (unsigned long long)sink.records);
  std::printf("records per data syscall (last round): %.3f\n",
              double(sink.round_records) / (n * (eagain ? 6 : 4)));
  return 0;
}
