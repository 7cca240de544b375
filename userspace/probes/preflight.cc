// Preflight: root/capabilities, kernel BTF, tracefs (mounted here when missing), memlock.
#include "probes/preflight.h"

#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace zerotrace::probes {
namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

bool PathExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Effective capability bits from /proc/self/status (no libcap dependency).
unsigned long long EffectiveCaps() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  }
  return 0;
}

bool HasCap(unsigned long long caps, int cap) { return (caps >> cap) & 1ULL; }

Status CheckPrivileges() {
  const unsigned long long caps = EffectiveCaps();
  const bool admin = HasCap(caps, kCapSysAdmin);
  const bool bpf = admin || (HasCap(caps, kCapBpf) && HasCap(caps, kCapPerfmon));
  if (bpf) return Status::Ok();
  return Status::Error(
      "root is required, or CAP_BPF and CAP_PERFMON (plus CAP_DAC_READ_SEARCH and "
      "CAP_SYS_PTRACE to read other processes' /proc entries); run it with sudo");
}

Status EnsureTracefs(PreflightReport* report) {
  for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (PathExists(std::string(dir) + "/events")) {
      report->tracefs = dir;
      return Status::Ok();
    }
  }
  const std::string dir = "/sys/kernel/tracing";
  // Mounted but not searchable (mode 0700): a capability is missing, not the mount.
  if (access((dir + "/events").c_str(), F_OK) != 0 && errno == EACCES) {
    return Status::Error("tracefs at " + dir +
                         " is not readable (permission denied): run as root, or grant "
                         "CAP_DAC_READ_SEARCH besides CAP_BPF and CAP_PERFMON");
  }
  if (mount("nodev", dir.c_str(), "tracefs", 0, nullptr) != 0) {
    return Status::Error("tracefs is not mounted and mounting it at " + dir +
                         " failed: " + std::strerror(errno) +
                         "; mount it with `mount -t tracefs nodev " + dir + "` as root");
  }
  report->tracefs = dir;
  report->notes.push_back("mounted tracefs at " + dir);
  return Status::Ok();
}

// Kernels >= 5.11 charge BPF memory to the cgroup, so failing to raise the limit is only
// fatal on older kernels; the loader's error message says what to do then.
void RaiseMemlock() {
  struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &rl);
}

}  // namespace

Status Preflight(PreflightReport* report) {
  if (Status s = CheckPrivileges(); !s.ok()) return s;
  if (!PathExists("/sys/kernel/btf/vmlinux")) {
    return Status::Error(
        "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): zerotrace needs a "
        "kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux >= 5.8, default on most distros)");
  }
  if (Status s = EnsureTracefs(report); !s.ok()) return s;
  RaiseMemlock();
  return Status::Ok();
}

bool TracepointExists(const std::string& tracefs, const std::string& category,
                      const std::string& name) {
  return PathExists(tracefs + "/events/" + category + "/" + name + "/id");
}

}  // namespace zerotrace::probes
