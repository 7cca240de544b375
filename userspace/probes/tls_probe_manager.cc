// TlsProbeManager: scans on its own thread; files are keyed by stat() of the path probed.
#include "probes/tls_probe_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zerotrace/events.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "base/clock.h"
#include "probes/entry_sites.h"
#include "probes/tls_tracer.h"

namespace zerotrace::probes {
namespace {

// Retries for a file reported at mmap entry: the mapping appears when the syscall returns.
constexpr int kMapRetries = 20;
constexpr auto kMapRetryDelay = std::chrono::milliseconds(2);
// Bound on the negative cache: beyond it, files are simply inspected again.
constexpr size_t kMaxNotTls = 65536;

bool StatKey(const std::string& path, uint64_t* dev, uint64_t* ino) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

}  // namespace

std::vector<std::string> TlsProbeOptions::DefaultHostLibDirs() {
  return {"/lib",
          "/usr/lib",
          "/lib64",
          "/usr/lib64",
          "/usr/local/lib",
          "/lib/x86_64-linux-gnu",
          "/usr/lib/x86_64-linux-gnu",
          "/lib/aarch64-linux-gnu",
          "/usr/lib/aarch64-linux-gnu"};
}

TlsProbeManager::TlsProbeManager(TlsProbeBackend* backend, TlsProbeOptions options)
    : backend_(backend), options_(std::move(options)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

TlsProbeManager::~TlsProbeManager() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void TlsProbeManager::Start() {
  ScanHostLibraries();
  if (options_.pids.empty()) {
    for (uint32_t pid : AllPids()) ScanProcess(pid);
  } else {
    for (uint32_t pid : options_.pids) ScanProcess(pid);
  }
  thread_ = std::thread([this] { Run(); });
}

void TlsProbeManager::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
    // the eventfd counter is saturated: the thread is awake anyway
  }
  thread_.join();
  std::map<FileKey, ProbedFile> files;
  {
    std::lock_guard<std::mutex> lock(files_mu_);
    files.swap(files_);
  }
  // Detaching is slow (the kernel waits for each probe to quiesce): all files at once.
  std::vector<std::thread> detachers;
  for (auto& [key, f] : files) {
    detachers.emplace_back([&f = f] {
      f.probes.reset();
      f.go_probes.reset();
    });
  }
  for (auto& t : detachers) t.join();
}

void TlsProbeManager::Push(const Event& e) {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  if (head - tail_.load(std::memory_order_acquire) >= kQueueSize) {
    stats_.events_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_[head & (kQueueSize - 1)] = e;
  head_.store(head + 1, std::memory_order_release);
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
    // EAGAIN: the counter is saturated, so the thread will wake anyway
  }
}

void TlsProbeManager::OnExec(uint32_t pid) { Push({ZT_EV_PROC_EXEC, pid, 0, 0}); }
void TlsProbeManager::OnExit(uint32_t pid) { Push({ZT_EV_PROC_EXIT, pid, 0, 0}); }
void TlsProbeManager::OnExecMap(uint32_t pid, uint32_t kernel_dev, uint64_t ino) {
  Push({ZT_EV_EXEC_MAP, pid, kernel_dev, ino});
}

void TlsProbeManager::Run() {
  while (!stop_.load()) {
    int timeout_ms = -1;
    if (sweep_pending_) {
      const uint64_t now = WallClock::MonotonicNow();
      timeout_ms = now >= sweep_at_ns_ ? 0 : static_cast<int>((sweep_at_ns_ - now) / 1000000 + 1);
    }
    pollfd p{wake_fd_, POLLIN, 0};
    poll(&p, 1, timeout_ms);
    uint64_t ignored;
    if (read(wake_fd_, &ignored, sizeof(ignored)) < 0) {
      // EAGAIN: woken by the timeout
    }
    for (;;) {
      const uint64_t tail = tail_.load(std::memory_order_relaxed);
      if (tail == head_.load(std::memory_order_acquire) || stop_.load()) break;
      const Event e = queue_[tail & (kQueueSize - 1)];
      tail_.store(tail + 1, std::memory_order_release);
      Handle(e);
    }
    if (sweep_pending_ && WallClock::MonotonicNow() >= sweep_at_ns_) Sweep();
  }
}

void TlsProbeManager::Handle(const Event& e) {
  switch (e.type) {
    case ZT_EV_PROC_EXEC:
      ScanProcess(e.pid);
      return;
    case ZT_EV_EXEC_MAP: {
      MappedFile want;
      want.dev_major = e.dev >> 20;
      want.dev_minor = e.dev & ((1u << 20) - 1);
      want.ino = e.ino;
      ScanProcess(e.pid, &want);
      return;
    }
    case ZT_EV_PROC_EXIT: {
      std::lock_guard<std::mutex> lock(files_mu_);
      for (auto& [key, f] : files_) {
        if (f.users.erase(e.pid) && f.users.empty() && !f.pinned && !sweep_pending_) {
          sweep_pending_ = true;
          sweep_at_ns_ = WallClock::MonotonicNow() + options_.gc_delay_ns;
        }
      }
      return;
    }
    default:
      return;
  }
}

void TlsProbeManager::ScanProcess(uint32_t pid, const MappedFile* want) {
  const std::string root = options_.proc + "/" + std::to_string(pid) + "/root";
  std::vector<MappedFile> maps;
  for (int attempt = 0;; attempt++) {
    maps = ExecutableMappings(pid);
    if (!want) break;
    bool found = false;
    for (const auto& m : maps) {
      if (m.ino == want->ino && m.KernelDev() == want->KernelDev()) {
        maps = {m};
        found = true;
        break;
      }
    }
    if (found) break;
    if (attempt >= kMapRetries || maps.empty()) return;  // unmapped again, or process gone
    std::this_thread::sleep_for(kMapRetryDelay);
  }
  for (const auto& m : maps) {
    const std::string path = root + m.path;
    FileKey key;
    if (!StatKey(path, &key.dev, &key.ino)) continue;
    if (key.ino != m.ino) continue;  // the path names another file now (replaced on disk)
    ProbedFile* f = Consider(path, key);
    if (!f) continue;
    std::lock_guard<std::mutex> lock(files_mu_);
    f->users.insert(pid);
    f->kernel_dev = m.KernelDev();
    f->kernel_ino = m.ino;
  }
}

void TlsProbeManager::ScanHostLibraries() {
  for (const auto& dir : options_.host_lib_dirs) {
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    while (dirent* ent = readdir(d)) {
      if (!IsTlsLibraryName(ent->d_name)) continue;
      const std::string path = dir + "/" + ent->d_name;
      FileKey key;
      if (!StatKey(path, &key.dev, &key.ino)) continue;
      if (ProbedFile* f = Consider(path, key)) f->pinned = true;
    }
    closedir(d);
  }
}

TlsProbeManager::ProbedFile* TlsProbeManager::Consider(const std::string& path,
                                                       const FileKey& key) {
  {
    std::lock_guard<std::mutex> lock(files_mu_);
    auto it = files_.find(key);
    if (it != files_.end()) return &it->second;
  }
  if (not_tls_.count(key)) return nullptr;
  stats_.files_inspected++;
  auto symbols = FindTlsSymbols(path);
  const bool has_tls = symbols.ok() && symbols->Any();
  // A Go executable: crypto/tls found through .gopclntab (symbols may be stripped).
  auto go = InspectGoTlsFile(path);
  if (!go.ok()) {
    stats_.attach_failed++;
    std::fprintf(stderr, "zerotrace: not probing Go TLS: %s\n", go.status().message().c_str());
  }
  const bool has_go = go.ok() && go->has_value();
  if (has_go && !options_.go_goroutines) DropGoroutineProbes(&**go);
  if (!has_tls && !has_go) {
    if (not_tls_.size() >= kMaxNotTls) not_tls_.clear();
    not_tls_.insert(key);
    return nullptr;
  }
  // Through an open fd: the process whose root the path goes through may exit meanwhile.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  const std::string fd_path = "/proc/self/fd/" + std::to_string(fd);
  std::unique_ptr<TlsProbeSet> probes, go_probes;
  if (has_tls) {
    MoveSslEntriesToInternal(&symbols.value(), fd);  // emulated entries: see entry_sites.h
    auto attached = backend_->Attach(fd_path, *symbols);
    if (attached.ok()) {
      probes = std::move(attached.value());
    } else {
      stats_.attach_failed++;
      std::fprintf(stderr, "zerotrace: %s\n", attached.status().message().c_str());
    }
  }
  if (has_go) {
    auto attached = backend_->AttachGo(fd_path, **go);
    if (attached.ok()) {
      go_probes = std::move(attached.value());
    } else {
      stats_.attach_failed++;
      std::fprintf(stderr, "zerotrace: Go TLS probes for %s: %s\n", path.c_str(),
                   attached.status().message().c_str());
    }
  }
  close(fd);
  if (!probes && !go_probes) {
    not_tls_.insert(key);  // do not retry on every exec
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(files_mu_);
  ProbedFile& f = files_[key];
  f.path = path;
  f.probes = std::move(probes);
  f.go_probes = std::move(go_probes);
  if (f.go_probes) stats_.go_files_probed++;
  stats_.files_probed++;
  stats_.files_attached++;
  return &f;
}

// Some process left that mapped a probed file: find which files anyone still maps.
void TlsProbeManager::Sweep() {
  sweep_pending_ = false;
  std::map<std::pair<uint32_t, uint64_t>, std::set<uint32_t>> users;  // kernel (dev, ino)
  for (uint32_t pid : AllPids()) {
    for (const auto& m : ExecutableMappings(pid)) users[{m.KernelDev(), m.ino}].insert(pid);
  }
  std::lock_guard<std::mutex> lock(files_mu_);
  for (auto it = files_.begin(); it != files_.end();) {
    ProbedFile& f = it->second;
    if (f.pinned) {
      ++it;
      continue;
    }
    auto u = users.find({f.kernel_dev, f.kernel_ino});
    if (u != users.end()) {
      f.users = u->second;
      ++it;
      continue;
    }
    backend_->ForgetExecFile(f.kernel_dev, f.kernel_ino);
    if (f.go_probes) stats_.go_files_probed--;
    stats_.files_detached++;
    stats_.files_probed--;
    it = files_.erase(it);
  }
}

std::vector<uint32_t> TlsProbeManager::AllPids() const {
  std::vector<uint32_t> out;
  DIR* d = opendir(options_.proc.c_str());
  if (!d) return out;
  while (dirent* ent = readdir(d)) {
    char* end = nullptr;
    const unsigned long pid = std::strtoul(ent->d_name, &end, 10);
    if (end == ent->d_name || *end != '\0' || pid == options_.self_pid) continue;
    out.push_back(static_cast<uint32_t>(pid));
  }
  closedir(d);
  return out;
}

std::vector<std::string> TlsProbeManager::ProbedPaths() const {
  std::lock_guard<std::mutex> lock(files_mu_);
  std::vector<std::string> out;
  for (const auto& [key, f] : files_) out.push_back(f.path);
  return out;
}

}  // namespace zerotrace::probes
