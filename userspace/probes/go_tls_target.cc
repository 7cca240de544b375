// InspectGoTls: go_binary (pclntab, buildinfo), go_ret_finder (RETs), go_offsets (fields).
#include "probes/go_tls_target.h"

#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "probes/entry_sites.h"
#include "probes/go_binary.h"
#include "probes/go_offsets.h"
#include "probes/go_ret_finder.h"

namespace zerotrace::probes {
namespace {

constexpr const char* kWrite = "crypto/tls.(*Conn).Write";
constexpr const char* kRead = "crypto/tls.(*Conn).Read";
constexpr const char* kHandshake = "crypto/tls.(*Conn).handshakeContext";
constexpr const char* kServe = "net/http.(*conn).serve";
constexpr const char* kRoundTrip = "net/http.(*persistConn).roundTrip";
// Its RETs: the new g in RAX since Go 1.18 (and g0.m.curg its parent).
constexpr const char* kNewproc = "runtime.newproc1";
// Or, where it has the expected shape, the call of runqput in the closure that calls newproc1.
constexpr const char* kNewprocClosure = "runtime.newproc.func1";
constexpr const char* kRunqput = "runtime.runqput";

// The entry address of `name` among the functions read (0: absent).
uint64_t EntryOf(const GoExecutable& exe, const char* name) {
  for (const auto& f : exe.functions)
    if (f.name == name) return f.entry;
  return 0;
}

}  // namespace

StatusOr<std::optional<GoTlsTarget>> InspectGoTls(Elf* elf) {
  using Result = std::optional<GoTlsTarget>;
  GElf_Ehdr ehdr;
  if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &ehdr)) return Result();
  ElfImage image(elf);
  auto exe = ReadGoExecutable(
      image, {kWrite, kRead, kHandshake, kServe, kRoundTrip, kNewproc, kNewprocClosure, kRunqput});
  if (!exe.ok()) return exe.status();
  if (!exe->has_value()) return Result();
  const GoExecutable& go = **exe;
  const GoExecutable::Code* write = nullptr;
  const GoExecutable::Code* read = nullptr;
  for (const auto& f : go.functions) {
    if (f.name == kWrite) write = &f;
    if (f.name == kRead) read = &f;
  }
  if (!write || !read) return Result();  // no crypto/tls in this program
  const std::string what =
      "Go binary (" + (go.version.empty() ? "version unknown" : go.version) + ")";
  if (ehdr.e_machine != EM_X86_64) return Status::Error(what + ": only amd64 is supported");
  // Before 1.17 arguments are on the stack; the probes read registers.
  if (!go.parsed) return Status::Error(what + ": no Go release found in .go.buildinfo");
  if (*go.parsed < GoVersion{1, 17, 0})
    return Status::Error(what + ": Go before 1.17 passes arguments on the stack");
  GoTlsTarget t;
  t.version = go.version;
  auto dwarf = GoOffsetsFromDwarf(elf);
  if (dwarf.ok()) {
    t.offsets = *dwarf;
    t.offsets_source = "DWARF";
  } else {
    const auto row = GoOffsetsForVersion(*go.parsed);
    if (!row) {
      return Status::Error(what + " has no DWARF (" + dwarf.status().message() +
                           ") and its release is not in the offset table (" +
                           GoOffsetTableReleases() + ")");
    }
    t.offsets = *row;
    t.offsets_source = "table";
  }
  if (SpillsFirstTwoArgs(read->bytes, read->entry)) t.offsets.flags |= ZT_GO_F_READ_SPILLED;
  if (SpillsFirstTwoArgs(write->bytes, write->entry)) t.offsets.flags |= ZT_GO_F_WRITE_SPILLED;
  int goroutine_functions = 0;
  for (const auto& f : go.functions)
    goroutine_functions += f.name == kServe || f.name == kRoundTrip || f.name == kNewproc;
  // Checked on Go 1.19; 1.17 (the first register ABI release) was not tried.
  t.goroutines = goroutine_functions == 3 && *go.parsed >= GoVersion{1, 18, 0} &&
                 t.offsets.g_goid != 0 && t.offsets.http_conn_rwc != 0 &&
                 t.offsets.persistconn_conn != 0;
  std::optional<uint64_t> runqput_call;  // in newproc.func1, when found
  for (const auto& f : go.functions) {
    if (f.name == kNewprocClosure)
      runqput_call = FindRunqputCallAfterNewproc1(f.bytes, f.entry, EntryOf(go, kNewproc),
                                                  EntryOf(go, kRunqput));
  }
  for (const auto& f : go.functions) {
    if (f.name == kNewprocClosure || f.name == kRunqput) {
      if (f.name == kNewprocClosure && t.goroutines && runqput_call && t.offsets.g_m != 0 &&
          t.offsets.m_curg != 0)
        t.probes.push_back({f.file_offset + *runqput_call, ZT_GO_RUNQPUT_CALL});
      continue;
    }
    if (f.name == kServe || f.name == kRoundTrip || f.name == kNewproc) {
      if (!t.goroutines) continue;
      if (f.name == kNewproc && runqput_call) continue;  // followed at the runqput call
      if (f.name != kNewproc) {
        t.probes.push_back({f.file_offset + GoEntryJumpOffset(f.bytes).value_or(0),
                            f.name == kServe ? ZT_GO_SERVE_ENTRY : ZT_GO_ROUNDTRIP_ENTRY});
        continue;
      }
      // Children followed from newproc1's RETs only; without them the rest still works.
      auto rets = FindReturnOffsets(f.bytes, f.entry);
      if (!rets.ok() || t.offsets.g_m == 0 || t.offsets.m_curg == 0) continue;
      for (uint64_t r : *rets) t.probes.push_back({f.file_offset + r, ZT_GO_NEWPROC_RET});
      continue;
    }
    const bool is_write = f.name == kWrite, is_read = f.name == kRead;
    // Entries on the stack check's jump (emulated, not single-stepped: entry_sites.h).
    t.probes.push_back({f.file_offset + GoEntryJumpOffset(f.bytes).value_or(0),
                        is_write  ? ZT_GO_WRITE_ENTRY
                        : is_read ? ZT_GO_READ_ENTRY
                                  : ZT_GO_HANDSHAKE_ENTRY});
    if (!is_write && !is_read) continue;
    auto rets = FindReturnOffsets(f.bytes, f.entry);
    if (!rets.ok()) return Status::Error(what + ": " + f.name + ": " + rets.status().message());
    if (rets->empty()) return Status::Error(what + ": " + f.name + " has no RET instruction");
    for (uint64_t r : *rets)
      t.probes.push_back({f.file_offset + r, is_write ? ZT_GO_WRITE_RET : ZT_GO_READ_RET});
  }
  return Result(std::move(t));
}

void DropGoroutineProbes(GoTlsTarget* t) {
  std::erase_if(t->probes, [](const GoTlsProbe& p) { return p.kind >= ZT_GO_SERVE_ENTRY; });
  t->goroutines = false;
}

StatusOr<std::optional<GoTlsTarget>> InspectGoTlsFile(const std::string& path) {
  if (elf_version(EV_CURRENT) == EV_NONE) return Status::Error("libelf is too old");
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Error("opening " + path + ": " + std::strerror(errno));
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!elf) {
    close(fd);
    return std::optional<GoTlsTarget>();
  }
  auto out = InspectGoTls(elf);
  elf_end(elf);
  close(fd);
  if (!out.ok()) return Status::Error(path + ": " + out.status().message());
  return out;
}

}  // namespace zerotrace::probes
