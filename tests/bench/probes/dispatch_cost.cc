// Syscall dispatch cost (root): ns per syscall of a traced `write` (a pipe) and an untraced
// `getppid`, with near-empty BPF programs attached as per-syscall tracepoints or as raw
// tracepoints that see every syscall; setups alternate within each run (ABBA). bpf_stats sees
// only the programs' run time; this times the caller's whole syscall, dispatch included.
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dispatch_cost.skel.h"
#include "probes/preflight.h"

namespace {

constexpr int kPerBatch = 1024;  // syscalls between two clock reads
constexpr int kWriteBytes = 64;  // a batch fills 64 KiB of the pipe, drained untimed

struct Setup {
  const char* name;
  std::vector<bpf_program*> progs;
  bool enter, exit;  // which hit counters must move
};

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no syscall of its own
  return uint64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Quartiles {
  double p25, p50, p75;
};

Quartiles Spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size() - 1;
  return {v[n / 4], Median(v), v[(3 * n + 3) / 4]};
}

// Median over `batches` batches of ns per write; the pipe is drained after each batch.
double TimeWrites(int wfd, int rfd, int batches) {
  static char buf[kPerBatch * kWriteBytes];
  std::vector<double> per;
  for (int b = 0; b < batches; b++) {
    const uint64_t t0 = NowNs();
    for (int i = 0; i < kPerBatch; i++) {
      if (write(wfd, buf, kWriteBytes) != kWriteBytes) std::abort();
    }
    per.push_back(double(NowNs() - t0) / kPerBatch);
    for (size_t got = 0; got < sizeof(buf);) {
      const ssize_t r = read(rfd, buf, sizeof(buf) - got);
      if (r <= 0) std::abort();
      got += r;
    }
  }
  return Median(per);
}

// Median over `batches` batches of ns per getppid (raw syscall: nothing cached in libc).
double TimeGetppid(int batches) {
  std::vector<double> per;
  for (int b = 0; b < batches; b++) {
    const uint64_t t0 = NowNs();
    for (int i = 0; i < kPerBatch; i++) syscall(SYS_getppid);
    per.push_back(double(NowNs() - t0) / kPerBatch);
  }
  return Median(per);
}

}  // namespace

int main(int argc, char** argv) {
  const int batches = argc > 1 ? std::atoi(argv[1]) : 40;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 30;
  // One CPU: the batches' medians are then the caller's CPU per syscall (a batch that was
  // preempted lands in the tail).
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(sched_getcpu(), &cpus);
  sched_setaffinity(0, sizeof(cpus), &cpus);

  zerotrace::probes::PreflightReport report;  // mounts tracefs when it is missing
  if (zerotrace::Status s = zerotrace::probes::Preflight(&report); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  dispatch_cost* skel = dispatch_cost__open();
  if (!skel) {
    std::perror("opening dispatch_cost");
    return 1;
  }
  skel->rodata->traced_nr = SYS_write;
  if (int err = dispatch_cost__load(skel); err) {
    std::fprintf(stderr, "loading dispatch_cost: %d (run as root)\n", err);
    return 1;
  }
  int p[2];
  if (pipe(p) != 0 || fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < kPerBatch * kWriteBytes) {
    std::perror("pipe");
    return 1;
  }
  const auto& pr = skel->progs;
  const std::vector<Setup> setups = {
      {"nothing attached", {}, false, false},
      {"tp sys_exit_write", {pr.tp_exit_write}, false, true},
      {"tp sys_enter_write + sys_exit_write", {pr.tp_enter_write, pr.tp_exit_write}, true, true},
      {"tp_btf sys_exit", {pr.btf_exit}, false, true},
      {"tp_btf sys_enter + sys_exit", {pr.btf_enter, pr.btf_exit}, true, true},
      {"raw_tp sys_exit", {pr.raw_exit}, false, true},
      {"tp sys_enter_write + tp_btf sys_exit", {pr.tp_enter_write, pr.btf_exit}, true, true},
  };
  std::vector<std::vector<double>> wr(setups.size()), gp(setups.size());
  for (int r = 0; r < rounds; r++) {
    for (size_t k = 0; k < setups.size(); k++) {
      const size_t s = r % 2 ? setups.size() - 1 - k : k;  // ABBA across rounds
      std::vector<bpf_link*> links;
      for (bpf_program* prog : setups[s].progs) {
        bpf_link* l = bpf_program__attach(prog);
        if (!l) {
          std::fprintf(stderr, "attaching %s failed\n", bpf_program__name(prog));
          return 1;
        }
        links.push_back(l);
      }
      const uint64_t enter0 = skel->bss->enter_hits, exit0 = skel->bss->exit_hits;
      TimeWrites(p[1], p[0], 5);  // warm-up
      wr[s].push_back(TimeWrites(p[1], p[0], batches));
      gp[s].push_back(TimeGetppid(batches));
      for (bpf_link* l : links) bpf_link__destroy(l);
      const bool entered = skel->bss->enter_hits != enter0, exited = skel->bss->exit_hits != exit0;
      if (entered != setups[s].enter || exited != setups[s].exit) {
        std::fprintf(stderr, "%s: programs did not run as attached (enter %d, exit %d)\n",
                     setups[s].name, entered, exited);
        return 1;
      }
    }
  }
  // The machine's load drifts within a run (others build): compare each setup with the
  // "nothing attached" slice of its own round, and summarise those paired differences.
  std::printf(
      "ns per syscall (each slice: median of %d batches of %d); %d rounds, order "
      "alternating\n",
      batches, kPerBatch, rounds);
  std::printf("%-38s %8s %8s | %-24s | %-24s\n", "setup", "write", "getppid",
              "write - nothing: p25 p50 p75", "getppid - nothing: p25 p50 p75");
  for (size_t s = 0; s < setups.size(); s++) {
    std::vector<double> dw, dg;
    for (int r = 0; r < rounds; r++) {
      dw.push_back(wr[s][r] - wr[0][r]);
      dg.push_back(gp[s][r] - gp[0][r]);
    }
    const Quartiles w = Spread(dw), g = Spread(dg);
    std::printf("%-38s %8.1f %8.1f | %+7.1f %+7.1f %+7.1f | %+7.1f %+7.1f %+7.1f\n", setups[s].name,
                Median(wr[s]), Median(gp[s]), w.p25, w.p50, w.p75, g.p25, g.p50, g.p75);
  }
  dispatch_cost__destroy(skel);
  return 0;
}
