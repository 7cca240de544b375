// FindTlsSymbols reads ELF with libelf; ParseExecMapping follows proc(5)'s maps format.
#include "probes/tls_files.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

namespace zerotrace::probes {
namespace {

constexpr const char* kNames[kTlsFunctionCount] = {
    "SSL_write",          "SSL_read",           "SSL_write_ex",     "SSL_read_ex",
    "gnutls_record_send", "gnutls_record_recv", "SSL_do_handshake", "gnutls_handshake"};

// Closes the fd and ends the Elf handle on every path out of FindTlsSymbols.
class ElfFile {
 public:
  explicit ElfFile(const std::string& path) : fd_(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ >= 0) elf_ = elf_begin(fd_, ELF_C_READ_MMAP, nullptr);
  }
  ~ElfFile() {
    if (elf_) elf_end(elf_);
    if (fd_ >= 0) close(fd_);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
  int fd() const { return fd_; }
  Elf* elf() const { return elf_; }

 private:
  int fd_ = -1;
  Elf* elf_ = nullptr;
};

// Index of `name` in kNames, or -1.
int FunctionIndex(const char* name) {
  if (name[0] != 'S' && name[0] != 'g') return -1;  // cheap reject: most symbols
  for (size_t i = 0; i < kTlsFunctionCount; i++) {
    if (std::strcmp(name, kNames[i]) == 0) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

const char* TlsFunctionName(TlsFunction f) { return kNames[static_cast<size_t>(f)]; }

bool TlsSymbols::Any() const {
  for (size_t i = 0; i <= static_cast<size_t>(TlsFunction::kGnutlsRecordRecv); i++) {
    if (offset[i] != 0) return true;
  }
  return false;
}

StatusOr<TlsSymbols> FindTlsSymbols(const std::string& path) {
  if (elf_version(EV_CURRENT) == EV_NONE) return Status::Error("libelf is too old");
  ElfFile file(path);
  if (file.fd() < 0) return Status::Error("opening " + path + ": " + std::strerror(errno));
  if (!file.elf() || elf_kind(file.elf()) != ELF_K_ELF)
    return Status::Error(path + " is not an ELF file");
  TlsSymbols out;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(file.elf(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    if (shdr.sh_type != SHT_DYNSYM && shdr.sh_type != SHT_SYMTAB) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || shdr.sh_entsize == 0) continue;
    const size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; i++) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) break;
      if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
          sym.st_shndx >= SHN_LORESERVE || sym.st_value == 0)
        continue;
      const char* name = elf_strptr(file.elf(), shdr.sh_link, sym.st_name);
      if (!name) continue;
      const int idx = FunctionIndex(name);
      if (idx < 0 || out.offset[idx] != 0) continue;
      // A uprobe names a file offset: the symbol's address relative to its section.
      GElf_Shdr text;
      Elf_Scn* in = elf_getscn(file.elf(), sym.st_shndx);
      if (!in || !gelf_getshdr(in, &text) || sym.st_value < text.sh_addr) continue;
      out.offset[idx] = sym.st_value - text.sh_addr + text.sh_offset;
    }
  }
  return out;
}

bool ParseExecMapping(std::string_view line, MappedFile* out) {
  // "7f..-7f.. r-xp 00001000 08:01 1234   /usr/lib/x86_64-linux-gnu/libssl.so.3"
  unsigned long long ino = 0;
  unsigned major = 0, minor = 0;
  char perms[8] = {};
  int path_at = 0;
  const std::string copy(line);
  if (std::sscanf(copy.c_str(), "%*x-%*x %7s %*x %x:%x %llu %n", perms, &major, &minor, &ino,
                  &path_at) < 4)
    return false;
  if (std::strlen(perms) < 3 || perms[2] != 'x' || ino == 0 || path_at <= 0) return false;
  std::string_view path = line.substr(std::min<size_t>(path_at, line.size()));
  if (path.empty() || path.front() != '/') return false;  // [vdso], anonymous, ...
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() && path.substr(path.size() - kDeleted.size()) == kDeleted)
    path.remove_suffix(kDeleted.size());
  out->path = std::string(path);
  out->dev_major = major;
  out->dev_minor = minor;
  out->ino = ino;
  return true;
}

std::vector<MappedFile> ExecutableMappings(pid_t pid) {
  std::vector<MappedFile> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::set<std::pair<uint32_t, uint64_t>> seen;
  std::string line;
  MappedFile m;
  while (std::getline(in, line)) {
    if (!ParseExecMapping(line, &m)) continue;
    if (seen.insert({m.KernelDev(), m.ino}).second) out.push_back(m);
  }
  return out;
}

bool IsTlsLibraryName(std::string_view name) {
  return name.rfind("libssl.so", 0) == 0 || name.rfind("libgnutls.so", 0) == 0;
}

}  // namespace zerotrace::probes
