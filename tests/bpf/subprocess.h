// A child process for tests: argv, stdout/stdin pipes, line reads with deadlines, killed
// (with its process group) when the object goes away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace zerotrace::testing {

class Subprocess {
 public:
  // Starts argv[0] (PATH lookup) with stdout piped; stderr goes to the test's stderr.
  explicit Subprocess(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Next stdout line (without '\n'), or nullopt at EOF or when the deadline passes.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // Reads lines until one contains `needle`; returns it.
  std::optional<std::string> WaitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout);
  void WriteStdin(const std::string& text);
  // Waits for exit; returns the exit status (or -1 on timeout, after which it is killed).
  int Wait(std::chrono::milliseconds timeout);
  void Kill();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int in_fd_ = -1;
  std::string buffer_;
  bool exited_ = false;
  int status_ = 0;
};

// How long a test waits for a server it started to say it is ready. Generous: a fresh
// machine's first start of node or nginx reads its binary from a cold disk while the agent
// inspects and probes the same files; a healthy start returns as soon as the line appears.
inline constexpr std::chrono::seconds kServerStartDeadline{60};

// What the kernel says a process is doing (state, wait channel, kernel stack): for the
// message of a test that waited for it in vain.
std::string DescribeProcess(pid_t pid);

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it).
int FreePort();
// Polls until something accepts on 127.0.0.1:port (or [::1] when v6), or the deadline passes.
bool WaitForListen(int port, std::chrono::milliseconds timeout, bool v6 = false);
// A fresh directory under /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace zerotrace::testing
