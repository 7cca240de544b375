// Process metadata for traced pids (names, service identity, container id), read from /proc.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conn/service_identity.h"
#include "conn/service_name_map.h"

namespace zerotrace::conn {

class ProcessReader;

// What a span's resource needs to know about the process that moved the bytes.
struct ProcessInfo {
  uint32_t pid = 0;
  std::string comm;      // /proc/PID/comm: kernel task name, at most 15 characters
  std::string exe_path;  // /proc/PID/exe target without " (deleted)"; empty if unreadable
  std::string exe_name;  // basename of exe_path
  // service.name, from the first source that applies (see ServiceNameSource for the order).
  std::string service_name;
  ServiceNameSource service_name_source = ServiceNameSource::kComm;
  std::string instance_id;   // service.instance.id: the process's own, else InstanceId()
  std::string container_id;  // 64-hex id from /proc/PID/cgroup; empty outside a container
  CgroupIdentity cgroup;     // the cgroup path and what it says (container_id as above)
  ContainerNames container;  // names from the container runtime's state, when readable
  // The command line as read (not redacted: it never leaves the agent as it is; see
  // protocols/resource.h), at most kMaxArgs arguments of kMaxArgBytes.
  std::vector<std::string> args;
  std::string runtime_name;  // process.runtime.name ("cpython", "nodejs", "go", ...); may be empty
  uint64_t netns = 0;        // inode of /proc/PID/ns/net (0 if unreadable)
  bool go_runtime = false;   // a Go executable: goroutines move between threads
  // Only what the kernel said (pid, comm): /proc was not read in time (see ProcessCache) or
  // the process was gone. Consumers that need the rest must not assume it (go_runtime).
  bool partial = false;
  // --service-name-map, for its port rules (applied per connection); null without one.
  std::shared_ptr<const ServiceNameMap> name_map;

  // service.name for a connection this process serves on local port `served_port` (0: not a
  // server connection): a port rule of the name map, else service_name.
  const std::string& ServiceNameFor(uint16_t served_port) const;
};

// Where ReadProcessInfo looks besides /proc.
struct ProcessInfoOptions {
  std::string proc_root = "/proc";
  // Prefix of the container runtimes' state directories (/var/lib/docker, /run/containerd...).
  std::string host_root;
  std::shared_ptr<const ServiceNameMap> name_map;  // null: none
  // /proc/sys/kernel/random/boot_id's contents, for instance ids; read once when empty.
  std::string boot_id;
};

// True when the ELF file at `path` was linked by Go (it has Go's build-info sections).
bool IsGoExecutable(const std::string& path);

// Reads a live process's metadata; nullopt if the process is gone (no readable comm).
// exe and environ of other users' processes need privileges; without them those fields fall
// back as documented above instead of failing the whole read.
std::optional<ProcessInfo> ReadProcessInfo(uint32_t pid, const std::string& proc_root = "/proc");
std::optional<ProcessInfo> ReadProcessInfo(uint32_t pid, const ProcessInfoOptions& options);

// The innermost 64-hex-character container id in a /proc/PID/cgroup file (docker, containerd,
// CRI-O, podman, kubepods, cgroup v1 or v2); empty if there is none.
std::string ContainerIdFromCgroup(std::string_view cgroup);

// Counters of a ProcessCache, named for what they count.
struct ProcessCacheStats {
  uint64_t hits = 0;        // lookups answered from the cache
  uint64_t reads = 0;       // lookups that read /proc
  uint64_t gone = 0;        // reads that found the process already exited (fallback used)
  uint64_t evictions = 0;   // entries dropped because the cache was full
  uint64_t late = 0;        // reads that did not finish within the wait (comm used meanwhile)
  uint64_t exec_reads = 0;  // reads started by an exec event (new programs read while they run)
};

// Per-pid ProcessInfo, read once and kept until the process exits or the cache is full
// (least recently used first). Not thread-safe: owned by the event-consumer thread.
class ProcessCache {
 public:
  explicit ProcessCache(size_t max_entries = 16384, std::string proc_root = "/proc");
  ProcessCache(size_t max_entries, ProcessInfoOptions options);
  ~ProcessCache();

  // Names processes read from now on by these rules first (--service-name-map).
  void set_name_map(std::shared_ptr<const ServiceNameMap> map) {
    options_.name_map = std::move(map);
  }

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
  // The process called exec (`comm`: its new name, from the kernel): it is read now, while it
  // runs, so that a program that lives a few milliseconds is still named by its own /proc
  // (OTEL_SERVICE_NAME, cmdline, exe) and not by its comm. With a reader thread the read runs
  // there; the first lookup of the pid waits for it (up to the reader's wait) once.
  void Refresh(uint32_t pid, std::string_view comm = "");

  // From now on /proc is read on a thread of its own (ProcessReader): a lookup waits for its
  // read up to `wait`, then goes on with what the kernel said (counted as late), and the full
  // info arrives through Drain. A slow or stuck /proc never stalls the caller longer.
  void StartReader(std::chrono::microseconds wait);
  // Reads that finished since: the entries they update, for the caller to pass on to holders
  // of the older info (connections).
  std::vector<std::shared_ptr<const ProcessInfo>> Drain();

  size_t size() const { return entries_.size(); }
  const ProcessCacheStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::shared_ptr<const ProcessInfo> info;
    std::list<uint32_t>::iterator lru;  // position in lru_
    bool reading = false;               // a read for it is queued or in progress
    bool exec_read = false;             // that read was started at exec: a lookup awaits it
  };
  Entry& Insert(uint32_t pid, ProcessInfo info);
  // Awaits an exec-time read for a lookup (once per exec), and takes its result.
  void AwaitExecRead(uint32_t pid, Entry& entry);
  std::optional<ProcessInfo> Read(uint32_t pid, bool* late);
  ProcessInfo Fallback(uint32_t pid, std::string_view comm) const;

  size_t max_entries_;
  ProcessInfoOptions options_;
  std::unordered_map<uint32_t, Entry> entries_;
  std::list<uint32_t> lru_;  // most recently used first
  ProcessCacheStats stats_;
  std::unique_ptr<ProcessReader> reader_;  // null: reads happen on the caller's thread
  std::chrono::microseconds wait_{0};
  std::vector<std::shared_ptr<const ProcessInfo>> awaited_;  // taken by AwaitExecRead, for Drain
};

}  // namespace zerotrace::conn
