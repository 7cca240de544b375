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

namespace zerotrace::conn {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";
constexpr std::string_view kServiceNameVar = "OTEL_SERVICE_NAME=";
constexpr size_t kContainerIdLen = 64;
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

// environ is NUL-separated KEY=VALUE entries.
std::string ServiceNameFromEnviron(std::string_view environ) {
  while (!environ.empty()) {
    size_t nul = environ.find('\0');
    std::string_view entry = environ.substr(0, nul);
    if (entry.starts_with(kServiceNameVar)) {
      return std::string(entry.substr(kServiceNameVar.size()));
    }
    if (nul == std::string_view::npos) break;
    environ.remove_prefix(nul + 1);
  }
  return {};
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// A run of exactly 64 hex characters, bounded by non-hex; longer runs are something else.
std::string_view ContainerIdIn(std::string_view component) {
  size_t i = 0;
  while (i < component.size()) {
    if (!IsLowerHex(component[i])) {
      ++i;
      continue;
    }
    size_t run = i;
    while (run < component.size() && IsLowerHex(component[run])) ++run;
    if (run - i == kContainerIdLen) return component.substr(i, kContainerIdLen);
    i = run;
  }
  return {};
}

}  // namespace

std::string ContainerIdFromCgroup(std::string_view cgroup) {
  while (!cgroup.empty()) {
    size_t eol = cgroup.find('\n');
    std::string_view line = cgroup.substr(0, eol);
    cgroup.remove_prefix(eol == std::string_view::npos ? cgroup.size() : eol + 1);
    // hierarchy-id:controllers:path
    size_t first = line.find(':');
    size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string_view path = line.substr(second + 1);
    // Innermost component first: nested cgroups (init.scope) sit below the container's.
    while (!path.empty()) {
      size_t slash = path.rfind('/');
      std::string_view component = slash == std::string_view::npos ? path : path.substr(slash + 1);
      if (std::string_view id = ContainerIdIn(component); !id.empty()) return std::string(id);
      if (slash == std::string_view::npos) break;
      path = path.substr(0, slash);
    }
  }
  return {};
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
  const std::string dir = proc_root + "/" + std::to_string(pid) + "/";
  ProcessInfo info;
  info.pid = pid;
  if (!ReadFile(dir + "comm", &info.comm)) return std::nullopt;
  if (!info.comm.empty() && info.comm.back() == '\n') info.comm.pop_back();

  info.exe_path = ReadExePath(dir + "exe");
  info.exe_name = info.exe_path.substr(info.exe_path.rfind('/') + 1);

  std::string contents;
  if (ReadFile(dir + "environ", &contents)) info.service_name = ServiceNameFromEnviron(contents);
  if (info.service_name.empty()) info.service_name = info.exe_name;
  if (info.service_name.empty()) info.service_name = info.comm;

  if (ReadFile(dir + "cgroup", &contents)) info.container_id = ContainerIdFromCgroup(contents);
  struct stat ns;
  if (stat((dir + "ns/net").c_str(), &ns) == 0) info.netns = ns.st_ino;
  info.go_runtime = IsGoExecutable(dir + "exe");
  return info;
}

ProcessCache::ProcessCache(size_t max_entries, std::string proc_root)
    : max_entries_(std::max<size_t>(max_entries, 1)), proc_root_(std::move(proc_root)) {}

std::shared_ptr<const ProcessInfo> ProcessCache::GetShared(uint32_t pid,
                                                           std::string_view comm_fallback) {
  if (auto it = entries_.find(pid); it != entries_.end()) {
    ++stats_.hits;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.info;
  }
  ++stats_.reads;
  std::optional<ProcessInfo> read = ReadProcessInfo(pid, proc_root_);
  if (!read) {
    ++stats_.gone;
    read.emplace();
    read->pid = pid;
    read->comm = comm_fallback;
    read->service_name = comm_fallback.empty() ? "unknown_service" : std::string(comm_fallback);
  }
  if (entries_.size() >= max_entries_) {
    entries_.erase(lru_.back());
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.push_front(pid);
  Entry& entry = entries_[pid];
  entry.info = std::make_shared<const ProcessInfo>(std::move(*read));
  entry.lru = lru_.begin();
  return entry.info;
}

void ProcessCache::Forget(uint32_t pid) {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void ProcessCache::Refresh(uint32_t pid) {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return;
  ++stats_.reads;
  // A process that exec'd and exited at once keeps its old entry until Forget().
  if (std::optional<ProcessInfo> read = ReadProcessInfo(pid, proc_root_)) {
    it->second.info = std::make_shared<const ProcessInfo>(std::move(*read));
  } else {
    ++stats_.gone;
  }
}

}  // namespace zerotrace::conn
