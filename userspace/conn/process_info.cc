// Reads process metadata from /proc and caches it per pid.
#include "conn/process_info.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "conn/process_reader.h"

namespace zerotrace::conn {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";
// environ is bounded by the exec argument limit; this bounds what one lookup may read.
constexpr size_t kMaxFileBytes = 4 << 20;

// Reads a whole /proc file (their stat size is 0, so read until EOF); false if unreadable.
bool ReadFile(const std::string& path, std::string* out) {
  out->clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  bool ok = true;
  while (out->size() < kMaxFileBytes) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ok = false;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return ok;
}

std::string ReadExePath(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  if (n <= 0) return {};
  std::string exe(buf, static_cast<size_t>(n));
  if (exe.ends_with(kDeletedSuffix)) exe.resize(exe.size() - kDeletedSuffix.size());
  return exe;
}

}  // namespace

std::string ContainerIdFromCgroup(std::string_view cgroup) {
  return ParseCgroup(cgroup).container_id;
}

const std::string& ProcessInfo::ServiceNameFor(uint16_t served_port) const {
  if (served_port != 0 && name_map && name_map->has_port_rules()) {
    if (const std::string* mapped =
            name_map->Find(exe_name.empty() ? comm : exe_name, cgroup.path, served_port)) {
      return *mapped;
    }
  }
  return service_name;
}

bool IsGoExecutable(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  auto read_at = [fd](void* buf, size_t n, uint64_t off) {
    return pread(fd, buf, n, static_cast<off_t>(off)) == static_cast<ssize_t>(n);
  };
  bool go = false;
  Elf64_Ehdr eh;
  if (read_at(&eh, sizeof(eh), 0) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
      eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_shentsize == sizeof(Elf64_Shdr) &&
      eh.e_shstrndx < eh.e_shnum && eh.e_shnum <= 4096) {
    Elf64_Shdr names;
    if (read_at(&names, sizeof(names), eh.e_shoff + uint64_t{eh.e_shstrndx} * sizeof(Elf64_Shdr))) {
      // Go linkers name these sections; other toolchains never do.
      static constexpr std::string_view kGoSections[] = {".go.buildinfo", ".note.go.buildid"};
      for (uint16_t i = 0; i < eh.e_shnum && !go; i++) {
        Elf64_Shdr sh;
        char name[24] = {};
        if (!read_at(&sh, sizeof(sh), eh.e_shoff + uint64_t{i} * sizeof(Elf64_Shdr))) break;
        if (sh.sh_name >= names.sh_size) continue;
        const ssize_t n =
            pread(fd, name, sizeof(name) - 1, static_cast<off_t>(names.sh_offset + sh.sh_name));
        if (n <= 0) continue;
        const std::string_view got(name, strnlen(name, static_cast<size_t>(n)));
        for (std::string_view want : kGoSections) go |= got == want;
      }
    }
  }
  close(fd);
  return go;
}

std::optional<ProcessInfo> ReadProcessInfo(uint32_t pid, const std::string& proc_root) {
  ProcessInfoOptions options;
  options.proc_root = proc_root;
  return ReadProcessInfo(pid, options);
}

std::optional<ProcessInfo> ReadProcessInfo(uint32_t pid, const ProcessInfoOptions& options) {
  const std::string dir = options.proc_root + "/" + std::to_string(pid) + "/";
  ProcessInfo info;
  info.pid = pid;
  if (!ReadFile(dir + "comm", &info.comm)) return std::nullopt;
  if (!info.comm.empty() && info.comm.back() == '\n') info.comm.pop_back();

  info.exe_path = ReadExePath(dir + "exe");
  info.exe_name = info.exe_path.substr(info.exe_path.rfind('/') + 1);
  info.go_runtime = IsGoExecutable(dir + "exe");

  std::string contents;
  EnvIdentity env;
  if (ReadFile(dir + "environ", &contents)) env = IdentityFromEnviron(contents);
  if (ReadFile(dir + "cgroup", &contents)) info.cgroup = ParseCgroup(contents);
  info.container_id = info.cgroup.container_id;
  if (!info.container_id.empty())
    info.container = ReadContainerNames(options.host_root, info.cgroup);
  if (ReadFile(dir + "cmdline", &contents)) info.args = SplitCmdline(contents);
  const EntryPoint entry = InterpreterEntryPoint(info.exe_name, info.args);
  info.runtime_name = info.go_runtime ? "go" : entry.runtime;

  // service.name: the first source that applies.
  const std::string& exe_or_comm = info.exe_name.empty() ? info.comm : info.exe_name;
  const std::string* mapped =
      options.name_map ? options.name_map->Find(exe_or_comm, info.cgroup.path) : nullptr;
  const std::pair<const std::string*, ServiceNameSource> sources[] = {
      {mapped, ServiceNameSource::kNameMap},
      {&env.service_name, ServiceNameSource::kEnvironment},
      {&info.container.service, ServiceNameSource::kContainer},
      {&info.cgroup.systemd_unit, ServiceNameSource::kSystemdUnit},
      {&entry.service, ServiceNameSource::kEntryPoint},
      {&info.exe_name, ServiceNameSource::kExecutable},
      {&info.comm, ServiceNameSource::kComm},
  };
  for (const auto& [name, source] : sources) {
    if (name == nullptr || name->empty()) continue;
    info.service_name = *name;
    info.service_name_source = source;
    break;
  }
  info.name_map = options.name_map;

  if (!env.instance_id.empty()) {
    info.instance_id = env.instance_id;
  } else if (ReadFile(dir + "stat", &contents)) {
    std::string boot_id = options.boot_id;
    if (boot_id.empty()) {
      static const std::string kBootId = [] {
        std::string id;
        ReadFile("/proc/sys/kernel/random/boot_id", &id);
        while (!id.empty() && id.back() == '\n') id.pop_back();
        return id;
      }();
      boot_id = kBootId;
    }
    info.instance_id = InstanceId(boot_id, pid, StartTicksFromStat(contents));
  }

  struct stat ns;
  if (stat((dir + "ns/net").c_str(), &ns) == 0) info.netns = ns.st_ino;
  return info;
}

ProcessCache::ProcessCache(size_t max_entries, std::string proc_root)
    : max_entries_(std::max<size_t>(max_entries, 1)) {
  options_.proc_root = std::move(proc_root);
}

ProcessCache::ProcessCache(size_t max_entries, ProcessInfoOptions options)
    : max_entries_(std::max<size_t>(max_entries, 1)), options_(std::move(options)) {}

ProcessCache::~ProcessCache() = default;

void ProcessCache::StartReader(std::chrono::microseconds wait) {
  reader_ = std::make_unique<ProcessReader>(options_);
  wait_ = wait;
}

// What a process is when /proc cannot tell (it is gone, or its read did not finish in time).
ProcessInfo ProcessCache::Fallback(uint32_t pid, std::string_view comm) const {
  ProcessInfo info;
  info.pid = pid;
  info.comm = comm;
  info.partial = true;
  info.service_name = comm.empty() ? "unknown_service" : std::string(comm);
  info.name_map = options_.name_map;
  if (const std::string* mapped =
          options_.name_map ? options_.name_map->Find(info.comm, "") : nullptr) {
    info.service_name = *mapped;
    info.service_name_source = ServiceNameSource::kNameMap;
  }
  return info;
}

// The read of a process not seen before: on the reader thread with a bounded wait when there
// is one (*late: it did not finish in time), else here.
std::optional<ProcessInfo> ProcessCache::Read(uint32_t pid, bool* late) {
  *late = false;
  if (!reader_) return ReadProcessInfo(pid, options_);
  reader_->Request(pid);
  if (auto done = reader_->Await(pid, wait_)) return std::move(done->info);
  *late = true;
  ++stats_.late;
  return std::nullopt;
}

ProcessCache::Entry& ProcessCache::Insert(uint32_t pid, ProcessInfo info) {
  if (entries_.size() >= max_entries_) {
    entries_.erase(lru_.back());
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.push_front(pid);
  Entry& entry = entries_[pid];
  entry.info = std::make_shared<const ProcessInfo>(std::move(info));
  entry.lru = lru_.begin();
  entry.reading = false;
  entry.exec_read = false;
  return entry;
}

void ProcessCache::AwaitExecRead(uint32_t pid, Entry& entry) {
  entry.exec_read = false;
  std::optional<ProcessReader::Result> done = reader_->Await(pid, wait_);
  if (!done) {
    ++stats_.late;
    return;  // it arrives through Drain
  }
  entry.reading = false;
  if (!done->info) {  // exec'd and exited at once: keep what is known
    ++stats_.gone;
    return;
  }
  entry.info = std::make_shared<const ProcessInfo>(std::move(*done->info));
  awaited_.push_back(entry.info);  // connections holding the older info get it through Drain
}

std::shared_ptr<const ProcessInfo> ProcessCache::GetShared(uint32_t pid,
                                                           std::string_view comm_fallback) {
  if (auto it = entries_.find(pid); it != entries_.end()) {
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    if (it->second.exec_read && it->second.reading && reader_) AwaitExecRead(pid, it->second);
    return it->second.info;
  }
  ++stats_.reads;
  bool late = false;
  std::optional<ProcessInfo> read = Read(pid, &late);
  if (!read) {
    if (!late) ++stats_.gone;
    read = Fallback(pid, comm_fallback);
  }
  Entry& entry = Insert(pid, std::move(*read));
  entry.reading = late;
  return entry.info;
}

void ProcessCache::Forget(uint32_t pid) {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void ProcessCache::Refresh(uint32_t pid, std::string_view comm) {
  auto it = entries_.find(pid);
  ++stats_.reads;
  ++stats_.exec_reads;
  if (reader_) {  // the new image's info arrives through Drain, or the first lookup awaits it
    reader_->Request(pid);
    Entry& entry = it != entries_.end() ? it->second : Insert(pid, Fallback(pid, comm));
    entry.reading = true;
    entry.exec_read = true;
    return;
  }
  std::optional<ProcessInfo> read = ReadProcessInfo(pid, options_);
  if (!read) {  // exec'd and exited at once: a cached entry stays until Forget()
    ++stats_.gone;
    return;
  }
  if (it != entries_.end()) {
    it->second.info = std::make_shared<const ProcessInfo>(std::move(*read));
  } else {
    Insert(pid, std::move(*read));
  }
}

std::vector<std::shared_ptr<const ProcessInfo>> ProcessCache::Drain() {
  std::vector<std::shared_ptr<const ProcessInfo>> updated;
  updated.swap(awaited_);
  if (!reader_) return updated;
  for (ProcessReader::Result& r : reader_->TakeFinished()) {
    auto it = entries_.find(r.pid);
    // Reads of processes that exited meanwhile, or that a lookup already took, are dropped.
    if (it == entries_.end() || !it->second.reading) continue;
    it->second.reading = false;
    it->second.exec_read = false;
    if (!r.info) {  // it exec'd or started and exited at once: keep what is known
      ++stats_.gone;
      continue;
    }
    it->second.info = std::make_shared<const ProcessInfo>(std::move(*r.info));
    updated.push_back(it->second.info);
  }
  return updated;
}

}  // namespace zerotrace::conn
