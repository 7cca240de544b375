// TLS library discovery: /proc/PID/maps lines, ELF symbol offsets checked against where the
// loader really put the functions, and the probe manager's one-probe-set-per-file rule.
#include "probes/tls_files.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "probes/tls_probe_manager.h"
#include "probes/tls_tracer.h"

namespace zerotrace::probes {
namespace {

const std::string kLibDir = "/usr/lib/x86_64-linux-gnu";

TEST(ParseExecMapping, AcceptsOnlyExecutableFileMappings) {
  struct Case {
    std::string line;
    bool ok;
    std::string path;
    uint32_t major, minor;
    uint64_t ino;
  };
  const Case cases[] = {
      {"7f1a2b3c4000-7f1a2b3e0000 r-xp 00022000 08:01 1312 /usr/lib/x86_64-linux-gnu/libssl.so.3",
       true, "/usr/lib/x86_64-linux-gnu/libssl.so.3", 8, 1, 1312},
      {"55d0c000-55d0d000 r-xp 00001000 fd:02 99 /opt/app/bin/server (deleted)", true,
       "/opt/app/bin/server", 0xfd, 2, 99},
      {"7f1a2b3c4000-7f1a2b3e0000 r--p 00000000 08:01 1312 /usr/lib/x86_64-linux-gnu/libssl.so.3",
       false, "", 0, 0, 0},
      {"7ffd1000-7ffd3000 r-xp 00000000 00:00 0 [vdso]", false, "", 0, 0, 0},
      {"7f00000000-7f00001000 rwxp 00000000 00:00 0 ", false, "", 0, 0, 0},
      {"garbage", false, "", 0, 0, 0},
  };
  for (const auto& c : cases) {
    MappedFile m;
    EXPECT_EQ(ParseExecMapping(c.line, &m), c.ok) << c.line;
    if (!c.ok) continue;
    EXPECT_EQ(m.path, c.path);
    EXPECT_EQ(m.dev_major, c.major);
    EXPECT_EQ(m.dev_minor, c.minor);
    EXPECT_EQ(m.ino, c.ino);
    EXPECT_EQ(m.KernelDev(), (c.major << 20) | c.minor);
  }
}

TEST(IsTlsLibraryName, LibsslAndLibgnutlsOnly) {
  for (const char* yes : {"libssl.so", "libssl.so.3", "libssl.so.1.1", "libgnutls.so.30"})
    EXPECT_TRUE(IsTlsLibraryName(yes)) << yes;
  for (const char* no :
       {"libssl3.so", "libgnutls-dane.so.0", "libgnutlsxx.so.30", "libc.so.6", "libcrypto.so.3"})
    EXPECT_FALSE(IsTlsLibraryName(no)) << no;
}

TEST(FindTlsSymbols, LibsslDefinesTheOpenSslFunctions) {
  auto s = FindTlsSymbols(kLibDir + "/libssl.so.3");
  ASSERT_TRUE(s.ok()) << s.status().message();
  for (auto f : {TlsFunction::kSslWrite, TlsFunction::kSslRead, TlsFunction::kSslWriteEx,
                 TlsFunction::kSslReadEx})
    EXPECT_NE(s->Offset(f), 0u) << TlsFunctionName(f);
  EXPECT_NE(s->Offset(TlsFunction::kSslDoHandshake), 0u);
  EXPECT_EQ(s->Offset(TlsFunction::kGnutlsRecordSend), 0u);
}

TEST(FindTlsSymbols, LibgnutlsDefinesTheRecordFunctions) {
  auto s = FindTlsSymbols(kLibDir + "/libgnutls.so.30");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_NE(s->Offset(TlsFunction::kGnutlsRecordSend), 0u);
  EXPECT_NE(s->Offset(TlsFunction::kGnutlsRecordRecv), 0u);
  EXPECT_NE(s->Offset(TlsFunction::kGnutlsHandshake), 0u);
  EXPECT_EQ(s->Offset(TlsFunction::kSslWrite), 0u);
}

TEST(FindTlsSymbols, ImportersAndOtherFilesDefineNone) {
  auto libc = FindTlsSymbols(kLibDir + "/libc.so.6");
  ASSERT_TRUE(libc.ok());
  EXPECT_FALSE(libc->Any());
  auto curl = FindTlsSymbols(kLibDir + "/libcurl.so.4");  // imports SSL_write: undefined there
  ASSERT_TRUE(curl.ok());
  EXPECT_FALSE(curl->Any());
  EXPECT_FALSE(FindTlsSymbols("/nonexistent/libssl.so.3").ok());
  EXPECT_FALSE(FindTlsSymbols("/etc/hostname").ok());
}

// The file offset of SSL_write where the dynamic loader mapped it, from /proc/self/maps.
uint64_t LoadedFileOffset(const void* addr, std::string* path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto a = reinterpret_cast<uintptr_t>(addr);
  while (std::getline(maps, line)) {
    unsigned long long start = 0, end = 0, off = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %*s %llx", &start, &end, &off) != 3) continue;
    if (a < start || a >= end) continue;
    *path = line.substr(line.find('/'));
    return a - start + off;
  }
  return 0;
}

TEST(FindTlsSymbols, OffsetsAreWhereTheLoaderMapsTheCode) {
  void* lib = dlopen("libssl.so.3", RTLD_NOW);
  ASSERT_NE(lib, nullptr) << dlerror();
  std::string path;
  const uint64_t write_at = LoadedFileOffset(dlsym(lib, "SSL_write"), &path);
  const uint64_t read_ex_at = LoadedFileOffset(dlsym(lib, "SSL_read_ex"), &path);
  auto s = FindTlsSymbols(path);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Offset(TlsFunction::kSslWrite), write_at);
  EXPECT_EQ(s->Offset(TlsFunction::kSslReadEx), read_ex_at);
}

// Records what the manager attaches, without BPF.
struct FakeBackend : TlsProbeBackend {
  std::vector<std::string> attached;  // where the path led (readlink of /proc/self/fd/N)
  std::vector<struct stat> files;
  std::vector<std::pair<uint32_t, uint64_t>> forgotten;
  StatusOr<std::unique_ptr<TlsProbeSet>> Attach(const std::string& path,
                                                const TlsSymbols&) override {
    char target[4096] = {};
    EXPECT_GT(readlink(path.c_str(), target, sizeof(target) - 1), 0) << path;
    attached.push_back(target);
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    files.push_back(st);
    return std::make_unique<TlsProbeSet>(std::vector<bpf_link*>{});
  }
  void ForgetExecFile(uint32_t dev, uint64_t ino) override { forgotten.emplace_back(dev, ino); }
};

TEST(TlsProbeManager, OneProbeSetPerFileAcrossSymlinksAndProcesses) {
  void* lib = dlopen("libssl.so.3", RTLD_NOW);  // this process now maps libssl
  ASSERT_NE(lib, nullptr);
  FakeBackend backend;
  TlsProbeOptions options;
  options.pids = {static_cast<uint32_t>(getpid())};
  options.host_lib_dirs = {kLibDir};  // libssl.so -> libssl.so.3: one file
  options.gc_delay_ns = 0;
  TlsProbeManager m(&backend, options);
  m.Start();
  std::set<std::pair<dev_t, ino_t>> files;
  for (const auto& st : backend.files) {
    EXPECT_TRUE(files.insert({st.st_dev, st.st_ino}).second) << "attached twice";
  }
  EXPECT_EQ(m.stats().files_probed.load(), backend.attached.size());
  EXPECT_GE(backend.attached.size(), 2u) << "libssl.so.3 and libgnutls.so.30";
  // This process "exits" but still maps libssl: the sweep keeps it (host files are pinned too).
  m.OnExit(static_cast<uint32_t>(getpid()));
  m.Stop();
  EXPECT_TRUE(backend.forgotten.empty());
}

TEST(TlsProbeManager, FilesOfARunningProcessAreProbed) {
  void* lib = dlopen("libssl.so.3", RTLD_NOW);
  ASSERT_NE(lib, nullptr);
  FakeBackend backend;
  TlsProbeOptions options;
  options.pids = {static_cast<uint32_t>(getpid())};
  options.host_lib_dirs = {};  // nothing pinned: files live as long as a process maps them
  TlsProbeManager m(&backend, options);
  m.Start();
  ASSERT_EQ(backend.attached.size(), 1u);
  EXPECT_NE(backend.attached[0].find("libssl.so.3"), std::string::npos) << backend.attached[0];
  m.Stop();
}

}  // namespace
}  // namespace zerotrace::probes
