// Process metadata for traced pids (names, service name, container id), read from /proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace zerotrace::conn {

// What a span's resource needs to know about the process that moved the bytes.
struct ProcessInfo {
  uint32_t pid = 0;
  std::string comm;          // /proc/PID/comm: kernel task name, at most 15 characters
  std::string exe_path;      // /proc/PID/exe target without " (deleted)"; empty if unreadable
  std::string exe_name;      // basename of exe_path
  std::string service_name;  // OTEL_SERVICE_NAME if set and non-empty, else exe_name, else comm
  std::string container_id;  // 64-hex id from /proc/PID/cgroup; empty outside a container
  uint64_t netns = 0;        // inode of /proc/PID/ns/net (0 if unreadable)
  bool go_runtime = false;   // a Go executable: goroutines move between threads
};

// True when the ELF file at `path` was linked by Go (it has Go's build-info sections).
bool IsGoExecutable(const std::string& path);

// Reads a live process's metadata; nullopt if the process is gone (no readable comm).
// exe and environ of other users' processes need privileges; without them those fields fall
// back as documented above instead of failing the whole read.
std::optional<ProcessInfo> ReadProcessInfo(uint32_t pid, const std::string& proc_root = "/proc");

// The innermost 64-hex-character container id in a /proc/PID/cgroup file (docker, containerd,
// CRI-O, podman, kubepods, cgroup v1 or v2); empty if there is none.
std::string ContainerIdFromCgroup(std::string_view cgroup);

// Counters of a ProcessCache, named for what they count.
struct ProcessCacheStats {
  uint64_t hits = 0;       // lookups answered from the cache
  uint64_t reads = 0;      // lookups that read /proc
  uint64_t gone = 0;       // reads that found the process already exited (fallback used)
  uint64_t evictions = 0;  // entries dropped because the cache was full
};

// Per-pid ProcessInfo, read once and kept until the process exits or the cache is full
// (least recently used first). Not thread-safe: owned by the event-consumer thread.
class ProcessCache {
 public:
  explicit ProcessCache(size_t max_entries = 16384, std::string proc_root = "/proc");

  // Cached info for pid, read from /proc on first use. comm_fallback (from the kernel event)
  // names a process that has already exited. The reference stays valid until the next call
  // of a non-const method.
  const ProcessInfo& Get(uint32_t pid, std::string_view comm_fallback) {
    return *GetShared(pid, comm_fallback);
  }
  // The same, shared: connections of one process hold one copy (a Refresh replaces the
  // cache's, and connections keep what they were opened with).
  std::shared_ptr<const ProcessInfo> GetShared(uint32_t pid, std::string_view comm_fallback);
  // The process exited: its entry goes.
  void Forget(uint32_t pid);
  // The process called exec: a cached entry is re-read; an uncached pid stays uncached.
  void Refresh(uint32_t pid);

  size_t size() const { return entries_.size(); }
  const ProcessCacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::shared_ptr<const ProcessInfo> info;
    std::list<uint32_t>::iterator lru;  // position in lru_
  };

  size_t max_entries_;
  std::string proc_root_;
  std::unordered_map<uint32_t, Entry> entries_;
  std::list<uint32_t> lru_;  // most recently used first
  ProcessCacheStats stats_;
};

}  // namespace zerotrace::conn
