// The Go binary readers on real executables built here by Debian's golang-go: .gopclntab
// function bounds (checked against the ELF symbol table), the version in .go.buildinfo, the
// RET instructions (checked against `go tool objdump`), and the field offsets (the table row
// of this toolchain checked against the DWARF of the binary it builds).
#include "probes/go_binary.h"

#include <fcntl.h>
#include <gelf.h>
#include <gtest/gtest.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "go_build.h"
#include "probes/go_offsets.h"
#include "probes/go_ret_finder.h"
#include "probes/go_tls_target.h"
#include "subprocess.h"

#ifndef ZT_GO_SOURCE
#error "ZT_GO_SOURCE must name tests/e2e/go/gohttps.go"
#endif

namespace zerotrace::probes {
namespace {

using zerotrace::testing::BuildGo;
using zerotrace::testing::TempDir;

constexpr const char* kWrite = "crypto/tls.(*Conn).Write";
constexpr const char* kRead = "crypto/tls.(*Conn).Read";

// An ELF file opened with libelf for the duration of a test.
class OpenElf {
 public:
  explicit OpenElf(const std::string& path) {
    elf_version(EV_CURRENT);
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ >= 0) elf_ = elf_begin(fd_, ELF_C_READ_MMAP, nullptr);
  }
  ~OpenElf() {
    if (elf_) elf_end(elf_);
    if (fd_ >= 0) close(fd_);
  }
  Elf* get() const { return elf_; }

 private:
  int fd_ = -1;
  Elf* elf_ = nullptr;
};

// The address of a function symbol in .symtab (0 if absent).
uint64_t SymbolAddress(Elf* elf, const std::string& name) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_SYMTAB || shdr.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    for (size_t i = 0; data && i < shdr.sh_size / shdr.sh_entsize; i++) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) break;
      const char* n = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (n && name == n) return sym.st_value;
    }
  }
  return 0;
}

class GoBinaryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto full = BuildGo(ZT_GO_SOURCE, dir_->path(), "gohttps");
    ASSERT_FALSE(full.binary.empty()) << full.error;
    auto stripped = BuildGo(ZT_GO_SOURCE, dir_->path(), "gohttps.stripped", "-s -w");
    ASSERT_FALSE(stripped.binary.empty()) << stripped.error;
    const std::string hello_src = dir_->path() + "/hello.go";
    FILE* f = std::fopen(hello_src.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n", f);
    std::fclose(f);
    auto hello = BuildGo(hello_src, dir_->path(), "hello");
    ASSERT_FALSE(hello.binary.empty()) << hello.error;
    full_ = new std::string(full.binary);
    stripped_ = new std::string(stripped.binary);
    hello_ = new std::string(hello.binary);
  }
  static void TearDownTestSuite() {
    delete full_;
    delete stripped_;
    delete hello_;
    delete dir_;
  }
  static TempDir* dir_;
  static std::string *full_, *stripped_, *hello_;
};
TempDir* GoBinaryTest::dir_ = nullptr;
std::string* GoBinaryTest::full_ = nullptr;
std::string* GoBinaryTest::stripped_ = nullptr;
std::string* GoBinaryTest::hello_ = nullptr;

TEST_F(GoBinaryTest, PclntabFindsTheFunctionsTheSymbolTableNames) {
  OpenElf elf(*full_);
  ASSERT_NE(elf.get(), nullptr);
  ElfImage image(elf.get());
  auto exe = ReadGoExecutable(image, {kWrite, kRead, "main.main", "no.such.Function"});
  ASSERT_TRUE(exe.ok()) << exe.status().message();
  ASSERT_TRUE(exe->has_value());
  ASSERT_EQ((*exe)->functions.size(), 3u) << "the missing function is left out";
  for (const auto& f : (*exe)->functions) {
    EXPECT_EQ(f.entry, SymbolAddress(elf.get(), f.name)) << f.name;
    EXPECT_GT(f.bytes.size(), 16u) << f.name;
  }
}

TEST_F(GoBinaryTest, StrippedBinaryHasTheSameFunctionsAndVersion) {
  OpenElf full(*full_), stripped(*stripped_);
  ASSERT_EQ(SymbolAddress(stripped.get(), kWrite), 0u) << "-s -w should drop the symbol table";
  auto a = ReadGoExecutable(ElfImage(full.get()), {kWrite, kRead});
  auto b = ReadGoExecutable(ElfImage(stripped.get()), {kWrite, kRead});
  ASSERT_TRUE(a.ok() && a->has_value() && b.ok() && b->has_value());
  ASSERT_EQ((*b)->functions.size(), 2u);
  for (size_t i = 0; i < 2; i++) {
    EXPECT_EQ((*a)->functions[i].entry, (*b)->functions[i].entry);
    EXPECT_EQ((*a)->functions[i].bytes, (*b)->functions[i].bytes);
  }
  const std::string want = zerotrace::testing::GoToolchainVersion();
  ASSERT_FALSE(want.empty());
  EXPECT_EQ((*a)->version, want);
  EXPECT_EQ((*b)->version, want);
  ASSERT_TRUE((*b)->parsed.has_value());
  EXPECT_EQ(*(*b)->parsed, *ParseGoVersion(want));
}

// Every RET `go tool objdump` lists in the function, and nothing else.
TEST_F(GoBinaryTest, ReturnOffsetsAreTheRetInstructionsObjdumpLists) {
  OpenElf elf(*full_);
  auto exe = ReadGoExecutable(ElfImage(elf.get()), {kWrite, kRead, "runtime.newproc1"});
  ASSERT_TRUE(exe.ok() && exe->has_value());
  ASSERT_EQ((*exe)->functions.size(), 3u);
  for (const auto& f : (*exe)->functions) {
    auto rets = FindReturnOffsets(f.bytes, f.entry);
    ASSERT_TRUE(rets.ok()) << rets.status().message();
    std::set<uint64_t> ours;
    for (uint64_t r : *rets) ours.insert(f.entry + r);

    std::string pattern = "^" + f.name + "$";
    for (size_t at = 0; (at = pattern.find_first_of("()*.", at)) != std::string::npos; at += 2)
      pattern.insert(at, "\\");
    std::string out;
    ASSERT_EQ(zerotrace::testing::RunGoTool({"tool", "objdump", "-s", pattern, *full_},
                                            dir_->path(), &out),
              0)
        << out;
    std::set<uint64_t> objdump;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string where, addr, hex, op;
      if (!(fields >> where >> addr >> hex >> op) || op != "RET") continue;
      objdump.insert(std::stoull(addr, nullptr, 16));
    }
    EXPECT_FALSE(objdump.empty()) << f.name << ": objdump printed no RET:\n" << out.substr(0, 2000);
    EXPECT_EQ(ours, objdump) << f.name;
  }
}

// Read keeps its receiver and buffer pointer in their spill slots (8(SP) and 16(SP) at a RET):
// a Read already running when the probes attach is still attributed. Go 1.19's Write keeps
// its receiver in a local instead; the check must see that difference.
TEST_F(GoBinaryTest, WriteAndReadSpillReceiverAndBuffer) {
  OpenElf elf(*stripped_);
  auto exe = ReadGoExecutable(ElfImage(elf.get()), {kWrite, kRead});
  ASSERT_TRUE(exe.ok() && exe->has_value());
  ASSERT_EQ((*exe)->functions.size(), 2u);
  EXPECT_FALSE(SpillsFirstTwoArgs((*exe)->functions[0].bytes, (*exe)->functions[0].entry));
  EXPECT_TRUE(SpillsFirstTwoArgs((*exe)->functions[1].bytes, (*exe)->functions[1].entry));
  // sub rsp, 0x20; mov [rsp+0x28], rax; mov [rsp+0x20], rbx (not rbx's slot): no.
  const std::string wrong_slot("\x48\x83\xec\x20\x48\x89\x44\x24\x28\x48\x89\x5c\x24\x20", 14);
  EXPECT_FALSE(SpillsFirstTwoArgs(wrong_slot, 0x1000));
  const std::string right("\x48\x83\xec\x20\x48\x89\x44\x24\x28\x48\x89\x5c\x24\x30", 14);
  EXPECT_TRUE(SpillsFirstTwoArgs(right, 0x1000));
}

TEST(GoReturnOffsets, UndecodableBytesAreAnError) {
  // c3: ret; 0f 0b: ud2 decodes; a lone 0f at the end does not.
  EXPECT_EQ(*FindReturnOffsets(std::string_view("\x90\xc3\x0f\x0b\xc3", 5), 0x1000),
            (std::vector<uint64_t>{1, 4}));
  EXPECT_FALSE(FindReturnOffsets(std::string_view("\x90\xc3\x0f", 3), 0x1000).ok());
}

// runtime.newproc.func1 of Go 1.19 (at 0x441760) up to its call of runqput (0x4458e0) after
// newproc1 (0x4417e0); the new g must still be in RBX at that call.
TEST(GoRunqputCall, FoundOnlyWhenTheNewGIsInRbx) {
  const std::string func1(
      "\x49\x3b\x66\x10\x76\x57\x48\x83\xec\x20\x48\x89\x6c\x24\x18\x48\x8d\x6c\x24\x18"
      "\x48\x8b\x5a\x10\x48\x8b\x4a\x18\x48\x8b\x42\x08\xe8\x5b\x00\x00\x00\x49\x8b\x56"
      "\x30\x48\x8b\x92\xd0\x00\x00\x00\x48\x89\xc3\xb9\x01\x00\x00\x00\x48\x89\xd0\x0f"
      "\x1f\x44\x00\x00\xe8\x3b\x41\x00\x00\xc3",
      70);
  constexpr uint64_t kAt = 0x441760, kNewproc1 = 0x4417e0, kRunqput = 0x4458e0;
  EXPECT_EQ(FindRunqputCallAfterNewproc1(func1, kAt, kNewproc1, kRunqput), 0x40u);
  EXPECT_EQ(FindRunqputCallAfterNewproc1(func1, kAt, kNewproc1, kRunqput + 1), std::nullopt);
  EXPECT_EQ(FindRunqputCallAfterNewproc1(func1, kAt, kNewproc1 + 1, kRunqput), std::nullopt);
  std::string clobbered = func1;  // mov $1,%ecx -> mov $1,%ebx
  clobbered[0x33] = '\xbb';
  EXPECT_EQ(FindRunqputCallAfterNewproc1(clobbered, kAt, kNewproc1, kRunqput), std::nullopt);
  std::string not_moved = func1;  // mov %rax,%rbx -> mov %rax,%rcx
  not_moved[0x32] = '\xc1';
  EXPECT_EQ(FindRunqputCallAfterNewproc1(not_moved, kAt, kNewproc1, kRunqput), std::nullopt);
}

TEST_F(GoBinaryTest, OffsetTableRowOfThisToolchainMatchesItsDwarf) {
  OpenElf elf(*full_);
  auto dwarf = GoOffsetsFromDwarf(elf.get());
  ASSERT_TRUE(dwarf.ok()) << dwarf.status().message();
  const auto version = ParseGoVersion(zerotrace::testing::GoToolchainVersion());
  ASSERT_TRUE(version.has_value());
  const auto row = GoOffsetsForVersion(*version);
  ASSERT_TRUE(row.has_value()) << "the table must cover Debian's golang-go";
  EXPECT_EQ(std::memcmp(&*row, &*dwarf, sizeof(*row)), 0)
      << "DWARF: conn " << dwarf->conn_iface << " fd " << dwarf->tcpconn_fd << " pfd "
      << dwarf->netfd_pfd << " sysfd " << dwarf->pfd_sysfd << " family " << dwarf->netfd_family
      << " sotype " << dwarf->netfd_sotype << " goid " << dwarf->g_goid << " rwc "
      << dwarf->http_conn_rwc << " persistConn.conn " << dwarf->persistconn_conn << " g.m "
      << dwarf->g_m << " m.curg " << dwarf->m_curg;
  EXPECT_NE(dwarf->g_m, 0u);
  EXPECT_NE(dwarf->m_curg, 0u);
  EXPECT_NE(dwarf->http_conn_rwc, 0u);
  EXPECT_NE(dwarf->persistconn_conn, 0u);
  OpenElf stripped(*stripped_);
  EXPECT_FALSE(GoOffsetsFromDwarf(stripped.get()).ok());
}

TEST_F(GoBinaryTest, InspectFindsProbesInFullAndStrippedBinaries) {
  for (const std::string* path : {full_, stripped_}) {
    auto t = InspectGoTlsFile(*path);
    ASSERT_TRUE(t.ok()) << t.status().message();
    ASSERT_TRUE(t->has_value()) << *path;
    const GoTlsTarget& target = **t;
    EXPECT_EQ(target.offsets_source, path == full_ ? "DWARF" : "table");
    EXPECT_EQ(target.offsets.flags, ZT_GO_F_READ_SPILLED);
    int kinds[ZT_GO_PROBE_COUNT] = {};
    for (const auto& p : target.probes) kinds[p.kind]++;
    EXPECT_EQ(kinds[ZT_GO_WRITE_ENTRY], 1);
    EXPECT_EQ(kinds[ZT_GO_READ_ENTRY], 1);
    EXPECT_EQ(kinds[ZT_GO_HANDSHAKE_ENTRY], 1);
    EXPECT_GE(kinds[ZT_GO_WRITE_RET], 1);
    EXPECT_GE(kinds[ZT_GO_READ_RET], 1);
    // Goroutine causality: the serving goroutine, the caller's, and parent -> child.
    EXPECT_EQ(kinds[ZT_GO_SERVE_ENTRY], 1);
    EXPECT_EQ(kinds[ZT_GO_ROUNDTRIP_ENTRY], 1);
    // Children at newproc.func1's runqput call (emulated), not at newproc1's RETs.
    EXPECT_EQ(kinds[ZT_GO_RUNQPUT_CALL], 1);
    EXPECT_EQ(kinds[ZT_GO_NEWPROC_RET], 0);
    EXPECT_TRUE(target.goroutines);
    // Entries sit on the stack check's jbe, the runqput probe on a call: instructions the
    // kernel emulates rather than single-steps.
    const int fd = open(path->c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    for (const auto& p : target.probes) {
      unsigned char b[2] = {};
      ASSERT_EQ(pread(fd, b, 2, static_cast<off_t>(p.file_offset)), 2);
      const bool jbe = b[0] == 0x76 || (b[0] == 0x0f && b[1] == 0x86);
      switch (p.kind) {
        case ZT_GO_WRITE_ENTRY:
        case ZT_GO_READ_ENTRY:
        case ZT_GO_HANDSHAKE_ENTRY:
        case ZT_GO_SERVE_ENTRY:
        case ZT_GO_ROUNDTRIP_ENTRY:
          EXPECT_TRUE(jbe) << "probe kind " << p.kind;
          break;
        case ZT_GO_RUNQPUT_CALL:
          EXPECT_EQ(b[0], 0xe8);
          break;
        default:
          EXPECT_EQ(b[0], 0xc3) << "probe kind " << p.kind;  // a RET
      }
    }
    close(fd);
  }
}

TEST_F(GoBinaryTest, ProgramsWithoutCryptoTlsAndNonGoFilesAreNotTargets) {
  for (const std::string& path : {*hello_, std::string("/bin/true")}) {
    auto t = InspectGoTlsFile(path);
    ASSERT_TRUE(t.ok()) << t.status().message();
    EXPECT_FALSE(t->has_value()) << path;
  }
}

TEST(GoVersion, ParsesReleaseStrings) {
  struct Case {
    const char* text;
    std::optional<GoVersion> want;
  } cases[] = {
      {"go1.19.8", GoVersion{1, 19, 8}},
      {"go1.21rc2", GoVersion{1, 21, 0}},
      {"go1.22.0 X:boringcrypto", GoVersion{1, 22, 0}},
      {"devel go1.23-abcdef Tue", GoVersion{1, 23, 0}},
      {"go1.17", GoVersion{1, 17, 0}},
      {"go2", std::nullopt},
      {"go1.", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(ParseGoVersion(c.text), c.want) << c.text;
}

// Before Go 1.18 the header points at a string header elsewhere in the image.
TEST(GoBuildInfo, ReadsInlineAndPointedToVersions) {
  std::string inline_form("\xff Go buildinf:\x08\x02", 16);
  inline_form.append(16, '\0');
  inline_form += '\x08';
  inline_form += "go1.19.8";
  EXPECT_EQ(*ParseGoBuildInfo(inline_form, [](uint64_t, uint64_t) { return std::string_view(); }),
            "go1.19.8");

  std::string pointer_form("\xff Go buildinf:\x08\x00", 16);
  const char addr[8] = {0x00, 0x20, 0, 0, 0, 0, 0, 0};  // 0x2000: the string header
  pointer_form.append(addr, 8);
  pointer_form.append(8, '\0');
  const char header[16] = {0x00, 0x30, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0};
  const std::string text = "go1.16.2";
  auto read = [&](uint64_t a, uint64_t n) -> std::string_view {
    if (a == 0x2000 && n == 16) return std::string_view(header, 16);
    if (a == 0x3000 && n == 8) return text;
    return {};
  };
  EXPECT_EQ(*ParseGoBuildInfo(pointer_form, read), "go1.16.2");
  EXPECT_FALSE(ParseGoBuildInfo("\xff Go buildinf:", read).ok()) << "truncated";
  std::string bad_len = inline_form;
  bad_len[32] = '\x7f';
  EXPECT_FALSE(ParseGoBuildInfo(bad_len, read).ok()) << "length past the end";
}

TEST(GoPclntab, RejectsTruncatedAndForeignTables) {
  EXPECT_FALSE(GoPclntab::Parse("", 0).ok());
  EXPECT_FALSE(GoPclntab::Parse(std::string("\xfb\xff\xff\xff\0\0\x01\x08", 8), 0).ok())
      << "Go 1.2-1.15 table";
  std::string header("\xf0\xff\xff\xff\0\0\x01\x08", 8);
  header.append(8, '\xff');  // nfunc: absurd
  header.append(64, '\0');
  EXPECT_FALSE(GoPclntab::Parse(header, 0).ok());
}

}  // namespace
}  // namespace zerotrace::probes
