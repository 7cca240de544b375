// Subprocess: fork/exec with pipes; its own process group so Kill() reaches grandchildren.
#include "subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace zerotrace::testing {

using Clock = std::chrono::steady_clock;

Subprocess::Subprocess(std::vector<std::string> argv, std::vector<std::string> extra_env) {
  int out[2], in[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    // Never outlive the test, even one killed by its timeout (its destructor then never runs).
    // Tests start processes from their main thread, whose exit is the test's.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    dup2(out[1], STDOUT_FILENO);
    dup2(in[0], STDIN_FILENO);
    for (const auto& e : extra_env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  setpgid(pid_, pid_);
  close(out[1]);
  close(in[0]);
  out_fd_ = out[0];
  in_fd_ = in[1];
}

Subprocess::~Subprocess() {
  Kill();
  if (out_fd_ >= 0) close(out_fd_);
  if (in_fd_ >= 0) close(in_fd_);
}

std::optional<std::string> Subprocess::ReadLine(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p = {out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(out_fd_, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, n);
  }
}

std::optional<std::string> Subprocess::WaitForLine(const std::string& needle,
                                                   std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto line = ReadLine(left);
    if (!line) return std::nullopt;
    if (line->find(needle) != std::string::npos) return line;
  }
  return std::nullopt;
}

void Subprocess::WriteStdin(const std::string& text) {
  if (write(in_fd_, text.data(), text.size()) < 0) throw std::runtime_error("write stdin");
}

int Subprocess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!exited_) {
    const pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      break;
    }
    if (Clock::now() >= deadline) {
      Kill();
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

void Subprocess::Kill() {
  if (pid_ <= 0 || exited_) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
  exited_ = true;
}

std::string DescribeProcess(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  auto slurp = [&](const std::string& name) {
    std::ifstream in(dir + "/" + name);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  };
  const std::string stat = slurp("stat");
  if (stat.empty()) return "pid " + std::to_string(pid) + " is gone";
  // The state letter follows the command's closing parenthesis.
  const size_t paren = stat.rfind(')');
  const std::string state = paren + 2 < stat.size() ? stat.substr(paren + 2, 1) : "?";
  std::string text =
      "pid " + std::to_string(pid) + " state " + state + ", wchan " + slurp("wchan") + ", threads:";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir + "/task", ec)) {
    std::ifstream in(task.path() / "stat");
    std::string line;
    std::getline(in, line);
    const size_t p = line.rfind(')');
    text += " " + task.path().filename().string() + ":" +
            (p + 2 < line.size() ? line.substr(p + 2, 1) : "?");
  }
  const std::string stack = slurp("stack");
  if (!stack.empty()) text += "\nkernel stack of the main thread:\n" + stack;
  return text;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool WaitForListen(int port, std::chrono::milliseconds timeout, bool v6) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int rc;
    if (v6) {
      sockaddr_in6 a = {};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      a.sin6_port = htons(port);
      rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    } else {
      sockaddr_in a = {};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(port);
      rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
    close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/zerotrace-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace zerotrace::testing
