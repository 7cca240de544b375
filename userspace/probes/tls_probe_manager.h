// Finds TLS library files (host library directories, every running process, each exec and
// each new executable mapping) and keeps exactly one probe set per file (device + inode),
// removed once no process maps the file. Runs on its own thread: the ring-buffer consumer
// only hands it process events, without waiting.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "probes/go_tls_target.h"
#include "probes/tls_files.h"

namespace zerotrace::probes {

class TlsProbeSet;

// What the manager needs from the BPF side (TlsTracer in the agent; a fake in unit tests).
class TlsProbeBackend {
 public:
  virtual ~TlsProbeBackend() = default;
  // An object that keeps the probes attached while it lives.
  virtual StatusOr<std::unique_ptr<TlsProbeSet>> Attach(const std::string& path,
                                                        const TlsSymbols& symbols) = 0;
  virtual void ForgetExecFile(uint32_t kernel_dev, uint64_t ino) = 0;
  // The crypto/tls probes of a Go executable; backends without them say so.
  virtual StatusOr<std::unique_ptr<TlsProbeSet>> AttachGo(const std::string& path,
                                                          const GoTlsTarget& target) {
    (void)path;
    (void)target;
    return Status::Error("this backend has no Go crypto/tls probes");
  }
};

struct TlsProbeStats {
  std::atomic<uint64_t> files_probed{0};     // files with probes now
  std::atomic<uint64_t> files_attached{0};   // probe sets attached since start
  std::atomic<uint64_t> files_detached{0};   // probe sets removed: no process maps the file
  std::atomic<uint64_t> attach_failed{0};    // files with TLS symbols that could not be probed
  std::atomic<uint64_t> files_inspected{0};  // distinct files whose symbol tables were read
  std::atomic<uint64_t> events_dropped{0};   // process events lost: the manager's queue was full
  std::atomic<uint64_t> go_files_probed{0};  // of files_probed: Go executables (crypto/tls)
};

struct TlsProbeOptions {
  uint32_t self_pid = 0;       // the agent: not scanned
  std::vector<uint32_t> pids;  // non-empty: scan only these processes (--pid)
  std::vector<std::string> host_lib_dirs = DefaultHostLibDirs();
  std::string proc = "/proc";            // where process directories live
  uint64_t gc_delay_ns = 1'000'000'000;  // after an exit, wait this long before sweeping
  bool go_goroutines = true;             // Go goroutine causality probes (off: benchmarks)
  static std::vector<std::string> DefaultHostLibDirs();
};

class TlsProbeManager {
 public:
  TlsProbeManager(TlsProbeBackend* backend, TlsProbeOptions options);
  ~TlsProbeManager();
  TlsProbeManager(const TlsProbeManager&) = delete;
  TlsProbeManager& operator=(const TlsProbeManager&) = delete;

  // Probes the host's TLS libraries and those of every running process, then starts the
  // thread that follows process events. Returns once the initial scan is done.
  void Start();
  void Stop();

  // Called on the ring-buffer consumer thread: queued, never blocking.
  void OnExec(uint32_t pid);
  void OnExit(uint32_t pid);
  void OnExecMap(uint32_t pid, uint32_t kernel_dev, uint64_t ino);

  const TlsProbeStats& stats() const { return stats_; }
  // Paths of the files probed now (tests and diagnostics; from any thread).
  std::vector<std::string> ProbedPaths() const;

 private:
  struct FileKey {
    uint64_t dev = 0, ino = 0;  // stat() of the file
    auto operator<=>(const FileKey&) const = default;
  };
  struct ProbedFile {
    std::string path;
    std::unique_ptr<TlsProbeSet> probes;     // OpenSSL/GnuTLS functions (may be null)
    std::unique_ptr<TlsProbeSet> go_probes;  // Go crypto/tls (may be null)
    std::set<uint32_t> users;                // processes seen mapping it
    bool pinned = false;      // a host library: kept for processes that dlopen it later
    uint32_t kernel_dev = 0;  // as the kernel names it (0: not seen in a mapping)
    uint64_t kernel_ino = 0;
  };
  struct Event {
    uint8_t type = 0;  // enum zt_event_type
    uint32_t pid = 0;
    uint32_t dev = 0;
    uint64_t ino = 0;
  };
  static constexpr size_t kQueueSize = 4096;  // power of two

  void Push(const Event& e);
  void Run();
  void Handle(const Event& e);
  // Probes the files pid maps; with `want` set only that file (retrying until it shows up).
  void ScanProcess(uint32_t pid, const MappedFile* want = nullptr);
  void ScanHostLibraries();
  // Probes the file at `path` (its key from stat) if it defines TLS functions or is a Go
  // executable with crypto/tls.
  ProbedFile* Consider(const std::string& path, const FileKey& key);
  void Sweep();
  std::vector<uint32_t> AllPids() const;

  TlsProbeBackend* backend_;
  TlsProbeOptions options_;
  TlsProbeStats stats_;
  std::map<FileKey, ProbedFile> files_;
  std::set<FileKey> not_tls_;    // files inspected that define no TLS function
  mutable std::mutex files_mu_;  // guards files_ against ProbedPaths() (never the consumer)
  bool sweep_pending_ = false;
  uint64_t sweep_at_ns_ = 0;

  // Single-producer (consumer thread) single-consumer (manager thread) ring.
  std::array<Event, kQueueSize> queue_;
  std::atomic<uint64_t> head_{0}, tail_{0};
  int wake_fd_ = -1;  // eventfd: the producer's write wakes the manager thread
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace zerotrace::probes
