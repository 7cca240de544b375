// Specification of ReadProcessInfo and ProcessCache against real and fake /proc trees.
#include "conn/process_info.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace zerotrace::conn {
namespace {

namespace fs = std::filesystem;
using std::string_literals::operator""s;

constexpr char kId[] = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
// Above the kernel's PID_MAX_LIMIT (4M), so never a live pid.
constexpr uint32_t kNoSuchPid = 0x7ffffff0;

// A fake /proc: <root>/<pid>/{comm,environ,cgroup,exe}.
class FakeProc {
 public:
  FakeProc() {
    root_ = fs::temp_directory_path() / ("zt_fake_proc_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~FakeProc() { fs::remove_all(root_); }

  void AddProcess(uint32_t pid, const std::string& comm, const std::string& exe_target,
                  const std::string& environ, const std::string& cgroup) {
    fs::path dir = root_ / std::to_string(pid);
    fs::create_directories(dir);
    std::ofstream(dir / "comm") << comm << "\n";
    std::ofstream(dir / "environ", std::ios::binary) << environ;
    std::ofstream(dir / "cgroup") << cgroup;
    if (!exe_target.empty()) fs::create_symlink(exe_target, dir / "exe");
  }
  void AddFile(uint32_t pid, const std::string& name, const std::string& contents) {
    std::ofstream(root_ / std::to_string(pid) / name, std::ios::binary) << contents;
  }
  std::string root() const { return root_.string(); }

 private:
  fs::path root_;
};

std::string Environ(std::initializer_list<std::string> vars) {
  std::string out;
  for (const std::string& var : vars) out += var + '\0';
  return out;
}

TEST(ProcessInfoTest, ReadsOwnProcess) {
  std::optional<ProcessInfo> info = ReadProcessInfo(getpid());
  ASSERT_TRUE(info.has_value());
  fs::path exe = fs::read_symlink("/proc/self/exe");
  EXPECT_EQ(info->pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(info->exe_path, exe.string());
  EXPECT_EQ(info->exe_name, exe.filename().string());
  EXPECT_EQ(info->comm, exe.filename().string().substr(0, 15));
  const char* env_service = std::getenv("OTEL_SERVICE_NAME");
  std::ifstream cgroup_file("/proc/self/cgroup");
  const std::string cgroup((std::istreambuf_iterator<char>(cgroup_file)), {});
  const std::string unit = ParseCgroup(cgroup).systemd_unit;  // when run by a systemd service
  std::string want_service = env_service && *env_service ? env_service
                             : !unit.empty()             ? unit
                                                         : info->exe_name;
  EXPECT_EQ(info->service_name, want_service);
}

TEST(ProcessInfoTest, ServiceNameComesFromChildEnvironment) {
  // The pipe closes on exec, so a read of EOF means the child is now /bin/sleep.
  int exec_pipe[2];
  ASSERT_EQ(pipe2(exec_pipe, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char* const argv[] = {const_cast<char*>("sleep"), const_cast<char*>("30"), nullptr};
    char* const envp[] = {const_cast<char*>("LANG=C"),
                          const_cast<char*>("OTEL_SERVICE_NAME=checkout"), nullptr};
    execve("/bin/sleep", argv, envp);
    _exit(127);
  }
  close(exec_pipe[1]);
  char byte;
  ASSERT_EQ(read(exec_pipe[0], &byte, 1), 0);
  close(exec_pipe[0]);

  // environ is published a moment after the exec point the pipe reports; poll briefly.
  std::optional<ProcessInfo> info;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  do {
    info = ReadProcessInfo(static_cast<uint32_t>(child));
    if (info && info->service_name == "checkout") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } while (std::chrono::steady_clock::now() < deadline);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);

  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->service_name, "checkout");
  EXPECT_EQ(info->comm, "sleep");
  EXPECT_EQ(info->exe_name, fs::canonical("/bin/sleep").filename().string());
  EXPECT_FALSE(ReadProcessInfo(static_cast<uint32_t>(child)).has_value()) << "reaped";
}

TEST(ProcessInfoTest, GoExecutablesAreRecognisedByTheirBuildInfoSection) {
  // A copy of /bin/true with the section Go's linker writes: objcopy makes it, no Go needed.
  const std::string dir = ::testing::TempDir() + "/zt-go-" + std::to_string(getpid());
  fs::create_directories(dir);
  std::ofstream(dir + "/buildinfo") << "\xff Go buildinf:";
  const std::string cmd =
      "objcopy --add-section .go.buildinfo=" + dir + "/buildinfo /bin/true " + dir + "/fake-go";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_TRUE(IsGoExecutable(dir + "/fake-go"));
  EXPECT_FALSE(IsGoExecutable("/bin/true"));
  EXPECT_FALSE(IsGoExecutable(dir + "/buildinfo")) << "not ELF";
  EXPECT_FALSE(IsGoExecutable(dir + "/missing"));
  fs::remove_all(dir);
}

TEST(ProcessInfoTest, MissingProcessIsNullopt) {
  EXPECT_FALSE(ReadProcessInfo(kNoSuchPid).has_value());
  FakeProc proc;
  EXPECT_FALSE(ReadProcessInfo(42, proc.root()).has_value());
}

TEST(ProcessInfoTest, ContainerIdFromCgroupPath) {
  struct Case {
    const char* name;
    std::string cgroup;
    std::string want;
  };
  const std::string id = kId;
  const Case cases[] = {
      {"docker v2 systemd", "0::/system.slice/docker-" + id + ".scope\n", id},
      {"docker v1", "12:memory:/docker/" + id + "\n11:cpu:/docker/" + id + "\n", id},
      {"containerd systemd",
       "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c_3d4e.slice/"
       "cri-containerd-" +
           id + ".scope\n",
       id},
      {"crio", "0::/kubepods.slice/kubepods-pod12.slice/crio-" + id + ".scope\n", id},
      {"kubepods cgroupfs", "0::/kubepods/besteffort/pod0c1d2e3f-aaaa-bbbb-cccc-0123456789ab/" + id,
       id},
      {"podman", "0::/machine.slice/libpod-" + id + ".scope/container\n", id},
      {"nested init.scope", "0::/system.slice/docker-" + id + ".scope/init.scope\n", id},
      {"v1 line after empty hierarchies", "2:cpuset:/\n1:name=systemd:/docker/" + id + "\n", id},
      {"host process", "0::/user.slice/user-1000.slice/session-3.scope\n", ""},
      {"root cgroup", "0::/\n", ""},
      {"63 hex chars is not an id", "0::/docker/" + id.substr(1) + "\n", ""},
      {"65 hex chars is not an id", "0::/docker/a" + id + "\n", ""},
      {"upper-case hex is not an id", "0::/docker/" + std::string(64, 'A') + "\n", ""},
      {"malformed line", "garbage\n", ""},
      {"empty file", "", ""},
  };
  FakeProc proc;
  uint32_t pid = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(ContainerIdFromCgroup(c.cgroup), c.want);
    proc.AddProcess(pid, "app", "/usr/bin/app", "", c.cgroup);
    std::optional<ProcessInfo> info = ReadProcessInfo(pid, proc.root());
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->container_id, c.want);
    ++pid;
  }
}

TEST(ProcessInfoTest, ServiceNamePrecedence) {
  struct Case {
    const char* name;
    std::string exe_target;
    std::string environ;
    std::string want_exe_path, want_exe_name, want_service;
  };
  const Case cases[] = {
      {"OTEL_SERVICE_NAME wins", "/usr/bin/python3.11",
       Environ({"HOME=/root", "OTEL_SERVICE_NAME=orders", "PATH=/bin"}), "/usr/bin/python3.11",
       "python3.11", "orders"},
      {"empty OTEL_SERVICE_NAME falls back to exe", "/opt/app/server",
       Environ({"OTEL_SERVICE_NAME="}), "/opt/app/server", "server", "server"},
      {"similar variable names do not count", "/opt/app/server",
       Environ({"XOTEL_SERVICE_NAME=no", "OTEL_SERVICE_NAMES=no"}), "/opt/app/server", "server",
       "server"},
      {"deleted binary is named without the suffix", "/opt/app/server (deleted)", "",
       "/opt/app/server", "server", "server"},
      {"unreadable exe falls back to comm", "", "", "", "", "worker"},
      {"last entry without trailing NUL", "/bin/x", "A=1\0OTEL_SERVICE_NAME=tail"s, "/bin/x", "x",
       "tail"},
  };
  FakeProc proc;
  uint32_t pid = 200;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    proc.AddProcess(pid, "worker", c.exe_target, c.environ, "0::/\n");
    std::optional<ProcessInfo> info = ReadProcessInfo(pid, proc.root());
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->pid, pid);
    EXPECT_EQ(info->comm, "worker");
    EXPECT_EQ(info->exe_path, c.want_exe_path);
    EXPECT_EQ(info->exe_name, c.want_exe_name);
    EXPECT_EQ(info->service_name, c.want_service);
    ++pid;
  }
}

// Every source in its place: each case's process has the sources of the cases below it too.
TEST(ProcessInfoTest, ServiceNameSourcesInOrder) {
  const std::string id = kId;
  const std::string python = "/usr/bin/python3.11";
  const std::string cmdline =
      "python3\0-B\0/srv/payment.py\0--port\0"
      "8080\0"s;
  const std::string unit = "0::/system.slice/billing.service\n";
  const std::string docker = "0::/system.slice/docker-" + id + ".scope\n";
  struct Case {
    const char* name;
    std::string environ, cgroup, cmdline, exe;
    std::string map;  // --service-name-map rules
    std::string want;
    ServiceNameSource source;
  };
  const Case cases[] = {
      {"name map by exe", Environ({"OTEL_SERVICE_NAME=env"}), docker, cmdline, python,
       "exe:python3.11=mapped", "mapped", ServiceNameSource::kNameMap},
      {"name map by cgroup", Environ({"OTEL_SERVICE_NAME=env"}), unit, cmdline, python,
       "cgroup:/system.slice=mapped", "mapped", ServiceNameSource::kNameMap},
      {"environment", Environ({"OTEL_SERVICE_NAME=env"}), docker, cmdline, python, "exe:node=other",
       "env", ServiceNameSource::kEnvironment},
      {"resource attributes", Environ({"OTEL_RESOURCE_ATTRIBUTES=service.name=attr"}), docker,
       cmdline, python, "", "attr", ServiceNameSource::kEnvironment},
      {"container name", "", docker, cmdline, python, "", "shop-payment",
       ServiceNameSource::kContainer},
      {"systemd unit", "", unit, cmdline, python, "", "billing", ServiceNameSource::kSystemdUnit},
      {"entry point", "", "0::/\n", cmdline, python, "", "payment", ServiceNameSource::kEntryPoint},
      {"executable", "", "0::/\n", "python3\0-c\0pass\0"s, python, "", "python3.11",
       ServiceNameSource::kExecutable},
      {"comm", "", "0::/\n", "", "", "", "worker", ServiceNameSource::kComm},
  };
  FakeProc proc;
  const std::string host = proc.root() + "/host";
  fs::create_directories(host + "/var/lib/docker/containers/" + id);
  std::ofstream(host + "/var/lib/docker/containers/" + id + "/config.v2.json")
      << R"({"Name":"/shop-payment"})";
  uint32_t pid = 300;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    proc.AddProcess(pid, "worker", c.exe, c.environ, c.cgroup);
    proc.AddFile(pid, "cmdline", c.cmdline);
    auto map = std::make_shared<ServiceNameMap>();
    ASSERT_TRUE(map->Add(c.map).ok());
    ProcessInfoOptions options;
    options.proc_root = proc.root();
    options.host_root = host;
    options.name_map = map;
    std::optional<ProcessInfo> info = ReadProcessInfo(pid, options);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->service_name, c.want);
    EXPECT_EQ(info->service_name_source, c.source)
        << ServiceNameSourceName(info->service_name_source);
    ++pid;
  }
}

TEST(ProcessInfoTest, InstanceIdRuntimeAndArguments) {
  FakeProc proc;
  proc.AddProcess(400, "node", "/usr/bin/node", "", "0::/\n");
  proc.AddFile(400, "cmdline", "node\0/srv/goods.js\0"s);
  proc.AddFile(400, "stat", "400 (node) S 1 400 400 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0");
  proc.AddProcess(401, "node", "/usr/bin/node",
                  Environ({"OTEL_RESOURCE_ATTRIBUTES=service.instance.id=mine"}), "0::/\n");
  ProcessInfoOptions options;
  options.proc_root = proc.root();
  options.boot_id = "boot";
  std::optional<ProcessInfo> info = ReadProcessInfo(400, options);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->args, (std::vector<std::string>{"node", "/srv/goods.js"}));
  EXPECT_EQ(info->runtime_name, "nodejs");
  EXPECT_EQ(info->service_name, "goods");
  EXPECT_EQ(info->instance_id, InstanceId("boot", 400, 777));
  EXPECT_EQ(ReadProcessInfo(401, options)->instance_id, "mine");
}

TEST(ProcessCacheTest, CachesUntilForgotten) {
  FakeProc proc;
  proc.AddProcess(1, "api", "/srv/api", "", "");
  ProcessCache cache(8, proc.root());
  EXPECT_EQ(cache.Get(1, "fallback").service_name, "api");
  fs::remove_all(fs::path(proc.root()) / "1");  // exited, exit event not seen yet
  EXPECT_EQ(cache.Get(1, "fallback").service_name, "api");
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().reads, 1u);
  cache.Forget(1);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ProcessCacheTest, ExitedProcessUsesCommFallback) {
  FakeProc proc;
  ProcessCache cache(8, proc.root());
  const ProcessInfo& info = cache.Get(7, "nginx");
  EXPECT_EQ(info.pid, 7u);
  EXPECT_EQ(info.comm, "nginx");
  EXPECT_EQ(info.service_name, "nginx");
  EXPECT_EQ(cache.stats().gone, 1u);
  EXPECT_EQ(cache.Get(8, "").service_name, "unknown_service");
}

TEST(ProcessCacheTest, RefreshRereadsAfterExec) {
  FakeProc proc;
  proc.AddProcess(3, "sh", "/bin/sh", "", "");
  ProcessCache cache(8, proc.root());
  EXPECT_EQ(cache.Get(3, "").exe_name, "sh");
  fs::remove_all(fs::path(proc.root()) / "3");
  proc.AddProcess(3, "java", "/usr/bin/java", Environ({"OTEL_SERVICE_NAME=billing"}), "");
  cache.Refresh(3);
  EXPECT_EQ(cache.Get(3, "").service_name, "billing");
  cache.Refresh(4);  // gone: stays uncached
  EXPECT_EQ(cache.size(), 1u);
}

TEST(ProcessCacheTest, FullCacheEvictsLeastRecentlyUsed) {
  FakeProc proc;
  for (uint32_t pid = 1; pid <= 4; ++pid)
    proc.AddProcess(pid, "p" + std::to_string(pid), "", "", "");
  ProcessCache cache(3, proc.root());
  cache.Get(1, "");
  cache.Get(2, "");
  cache.Get(3, "");
  cache.Get(1, "");  // 2 is now the oldest use
  cache.Get(4, "");
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  uint64_t reads = cache.stats().reads;
  cache.Get(1, "");
  cache.Get(3, "");
  cache.Get(4, "");
  EXPECT_EQ(cache.stats().reads, reads) << "1, 3 and 4 stayed cached";
  cache.Get(2, "");
  EXPECT_EQ(cache.stats().reads, reads + 1) << "2 was evicted";
}

}  // namespace
}  // namespace zerotrace::conn

namespace zerotrace::conn {
namespace {

// A /proc read that blocks (a FIFO for comm: opening it waits for a writer, as a process stuck
// in the kernel makes /proc reads wait) does not stall the lookup: it goes on with the
// kernel's comm, counted, and the full info comes through Drain once the read finishes.
TEST(ProcessCacheTest, ReaderThreadKeepsAStuckReadOffTheCaller) {
  FakeProc proc;
  proc.AddProcess(5, "unused", "/srv/api", Environ({"OTEL_SERVICE_NAME=orders"}), "");
  const fs::path comm = fs::path(proc.root()) / "5" / "comm";
  fs::remove(comm);
  ASSERT_EQ(mkfifo(comm.c_str(), 0600), 0);
  ProcessCache cache(8, proc.root());
  cache.StartReader(std::chrono::milliseconds(20));
  const std::shared_ptr<const ProcessInfo> first = cache.GetShared(5, "kcomm");
  EXPECT_TRUE(first->partial);
  EXPECT_EQ(first->service_name, "kcomm");
  EXPECT_EQ(cache.stats().late, 1u);
  EXPECT_TRUE(cache.Drain().empty());

  std::ofstream(comm) << "api\n";  // the read goes on (opening the FIFO unblocks it)
  std::vector<std::shared_ptr<const ProcessInfo>> updated;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       updated.empty() && std::chrono::steady_clock::now() < deadline;) {
    updated = cache.Drain();
    if (updated.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(updated.size(), 1u);
  EXPECT_FALSE(updated[0]->partial);
  EXPECT_EQ(updated[0]->service_name, "orders");
  EXPECT_EQ(cache.GetShared(5, "kcomm")->service_name, "orders");
}

// Stopping does not wait on a read stuck in /proc: the reader lets its thread go.
TEST(ProcessCacheTest, StoppingDoesNotWaitForAStuckRead) {
  FakeProc proc;
  proc.AddProcess(5, "unused", "/srv/api", "", "");
  const fs::path comm = fs::path(proc.root()) / "5" / "comm";
  fs::remove(comm);
  ASSERT_EQ(mkfifo(comm.c_str(), 0600), 0);
  int writer = -1;
  {
    ProcessCache cache(8, proc.root());
    cache.StartReader(std::chrono::milliseconds(1));
    EXPECT_TRUE(cache.GetShared(5, "kcomm")->partial);
    // Opening the FIFO's write end succeeds once the reader thread has it open: from then on
    // its read waits for bytes that do not come.
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         writer < 0 && std::chrono::steady_clock::now() < deadline;) {
      writer = ::open(comm.c_str(), O_WRONLY | O_NONBLOCK);
      if (writer < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_GE(writer, 0) << "the reader thread never opened the FIFO";
  }                                           // returns although the read still waits
  ASSERT_EQ(::write(writer, "api\n", 4), 4);  // lets the thread that was let go finish
  ::close(writer);
}

// With the reader, a read that finishes within the wait is used at once, as without it.
TEST(ProcessCacheTest, ReaderThreadAnswersAQuickReadAtOnce) {
  FakeProc proc;
  proc.AddProcess(6, "api", "/srv/api", "", "");
  ProcessCache cache(8, proc.root());
  cache.StartReader(std::chrono::seconds(10));
  EXPECT_EQ(cache.GetShared(6, "kcomm")->service_name, "api");
  EXPECT_FALSE(cache.GetShared(6, "kcomm")->partial);
  EXPECT_EQ(cache.stats().late, 0u);
  EXPECT_EQ(cache.GetShared(7, "gone")->service_name, "gone");  // no such process
  EXPECT_EQ(cache.stats().gone, 1u);
}

}  // namespace
}  // namespace zerotrace::conn

namespace zerotrace::conn {
namespace {

// A program that exec'd is read at once, while it runs: when it has exited by the time its
// first connection is looked up (a short-lived curl), it is still named by its environment.
TEST(ProcessCacheTest, ExecReadsANewProgramBeforeItExits) {
  FakeProc proc;
  proc.AddProcess(9, "curl", "/usr/bin/curl", Environ({"OTEL_SERVICE_NAME=checkout-cli"}), "");
  ProcessCache cache(8, proc.root());
  cache.StartReader(std::chrono::seconds(10));
  cache.Refresh(9, "curl");
  std::vector<std::shared_ptr<const ProcessInfo>> updated;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       updated.empty() && std::chrono::steady_clock::now() < deadline;) {
    updated = cache.Drain();
    if (updated.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(updated.size(), 1u);
  fs::remove_all(fs::path(proc.root()) / "9");  // exited before its events were handled
  const auto info = cache.GetShared(9, "curl");
  EXPECT_FALSE(info->partial);
  EXPECT_EQ(info->service_name, "checkout-cli");
  EXPECT_EQ(info->exe_name, "curl");
  EXPECT_EQ(cache.stats().exec_reads, 1u);
}

// The first lookup after an exec waits for the exec-time read (within the reader's wait), and
// the info it took reaches holders of the older one through Drain.
TEST(ProcessCacheTest, FirstLookupAfterExecAwaitsTheExecRead) {
  FakeProc proc;
  proc.AddProcess(10, "python3", "/usr/bin/python3", Environ({"OTEL_SERVICE_NAME=pay"}), "");
  ProcessCache cache(8, proc.root());
  cache.StartReader(std::chrono::seconds(10));
  cache.Refresh(10, "python3");
  const auto info = cache.GetShared(10, "python3");
  EXPECT_EQ(info->service_name, "pay");
  EXPECT_FALSE(info->partial);
  EXPECT_EQ(cache.stats().late, 0u);
  const auto updated = cache.Drain();
  ASSERT_EQ(updated.size(), 1u);
  EXPECT_EQ(updated[0], info);
  EXPECT_TRUE(cache.Drain().empty());
}

// Without a reader thread the exec-time read happens at once; a pid already gone stays
// uncached.
TEST(ProcessCacheTest, ExecWithoutReaderReadsAtOnce) {
  FakeProc proc;
  proc.AddProcess(11, "node", "/usr/bin/node", Environ({"OTEL_SERVICE_NAME=web"}), "");
  ProcessCache cache(8, proc.root());
  cache.Refresh(11, "node");
  cache.Refresh(12, "gone");
  EXPECT_EQ(cache.size(), 1u);
  fs::remove_all(fs::path(proc.root()) / "11");
  EXPECT_EQ(cache.Get(11, "node").service_name, "web");
}

}  // namespace
}  // namespace zerotrace::conn
