// What every zt_sockops mode shares: output lines, failing loudly, loopback sockets, forking
// the server side. Header-only: sockops.cc and sockops_edge.cc include it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace zt_sockops {

inline constexpr unsigned kTimeoutSeconds = 60;  // a stuck mode dies instead of hanging its test
inline const char* g_side = "main";              // who is talking, for error messages
inline pid_t g_child = 0;                        // killed if the parent fails, so nothing lingers

// Prints one line with a single write(2), so concurrent client/server lines never interleave.
__attribute__((format(printf, 1, 2))) inline void Say(const char* fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  n = std::clamp(n, 0, static_cast<int>(sizeof(line)) - 2);
  line[n++] = '\n';
  if (write(STDOUT_FILENO, line, n) != n) _exit(1);
}

[[noreturn]] inline void Fail(const std::string& what) {
  fprintf(stderr, "zt_sockops %s: %s\n", g_side, what.c_str());
  if (g_child > 0) kill(g_child, SIGKILL);
  _exit(1);
}

// Returns ret, or fails with errno's text if the syscall failed.
inline long Sys(long ret, const char* what) {
  if (ret < 0) Fail(std::string(what) + ": " + strerror(errno));
  return ret;
}

inline void Expect(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

struct Addr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  sockaddr_in* v4() { return reinterpret_cast<sockaddr_in*>(&storage); }
  sockaddr_in6* v6() { return reinterpret_cast<sockaddr_in6*>(&storage); }
};

// 127.0.0.1:port or [::1]:port.
inline Addr Loopback(int family, uint16_t port) {
  Addr a;
  if (family == AF_INET6) {
    a.v6()->sin6_family = AF_INET6;
    a.v6()->sin6_port = htons(port);
    a.v6()->sin6_addr = in6addr_loopback;
    a.len = sizeof(sockaddr_in6);
  } else {
    a.v4()->sin_family = AF_INET;
    a.v4()->sin_port = htons(port);
    a.v4()->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.len = sizeof(sockaddr_in);
  }
  return a;
}

// A message header over n iovecs, no address or control data.
inline msghdr Msg(iovec* iov, size_t n) {
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = n;
  return m;
}

// Binds a socket on loopback (or on :: accepting v4-mapped peers) and listens for TCP.
inline int Bind(int family, int type, uint16_t port, bool v4_mapped = false) {
  int fd = Sys(socket(family, type, 0), "socket");
  int one = 1, zero = 0;
  Sys(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), "SO_REUSEADDR");
  Addr addr = Loopback(family, port);
  if (v4_mapped) {
    Sys(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)), "IPV6_V6ONLY");
    addr.v6()->sin6_addr = in6addr_any;
  }
  Sys(bind(fd, addr.get(), addr.len), "bind");
  if (type == SOCK_STREAM) Sys(listen(fd, 16), "listen");
  Say("ready");
  return fd;
}

inline uint16_t LocalPort(int fd) {
  Addr a;
  a.len = sizeof(a.storage);
  Sys(getsockname(fd, a.get(), &a.len), "getsockname");
  return ntohs(a.storage.ss_family == AF_INET6 ? a.v6()->sin6_port : a.v4()->sin_port);
}

inline int Connect(int family, uint16_t port) {
  int fd = Sys(socket(family, SOCK_STREAM, 0), "socket");
  Addr addr = Loopback(family, port);
  Sys(connect(fd, addr.get(), addr.len), "connect");
  Say("client_fd=%d client_port=%u", fd, LocalPort(fd));
  return fd;
}

inline int Accept(int listen_fd) {
  int fd = Sys(accept(listen_fd, nullptr, nullptr), "accept");
  Say("server_fd=%d", fd);
  return fd;
}

inline void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) data.remove_prefix(Sys(write(fd, data.data(), data.size()), "write"));
}

inline std::string ReadExact(int fd, size_t n) {
  std::string out(n, '\0');
  for (size_t got = 0; got < n;) {
    long r = Sys(read(fd, out.data() + got, n - got), "read");
    Expect(r > 0, "unexpected EOF after " + std::to_string(got) + " of " + std::to_string(n));
    got += r;
  }
  return out;
}

inline std::string ReadToEof(int fd) {
  std::string out;
  char buf[4096];
  while (long r = Sys(read(fd, buf, sizeof(buf)), "read")) out.append(buf, r);
  return out;
}

// Runs fn in a forked child (exit 0 when fn returns); the parent keeps the pid to reap or kill.
inline pid_t Spawn(const char* side, const std::function<void()>& fn) {
  pid_t pid = Sys(fork(), "fork");
  if (pid == 0) {
    g_side = side;
    g_child = 0;
    alarm(kTimeoutSeconds);  // alarms are not inherited across fork
    fn();
    _exit(0);
  }
  g_child = pid;
  return pid;
}

// Forks the server side; the parent continues as the client.
inline void ForkServer(int listen_fd, const std::function<void(int)>& serve) {
  pid_t server = Spawn("server", [&] { serve(listen_fd); });
  close(listen_fd);
  g_side = "client";
  Say("client_pid=%d server_pid=%d", getpid(), server);
}

// Server epilogue: waits for the client's close (nothing more may arrive), then closes.
inline void CloseAtEof(int fd) {
  std::string extra = ReadToEof(fd);
  Expect(extra.empty(), "unexpected bytes from the client: " + extra);
  close(fd);
}

// Reaps the child and fails unless it exited 0.
inline void WaitChild() {
  int status = 0;
  Sys(waitpid(g_child, &status, 0), "waitpid");
  g_child = 0;
  Expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (see its message)");
}

// Client epilogue: closes its connection, then waits for the server to finish.
inline void CloseAndWait(int fd) {
  close(fd);
  WaitChild();
}

// Waits up to 5 s for events on fd.
inline void AwaitReady(int fd, short events, const char* what) {
  pollfd p{fd, events, 0};
  Expect(Sys(poll(&p, 1, 5000), "poll") == 1, what);
}

// One mode of the command line.
struct Mode {
  const char* name;
  const char* usage;
  void (*run)(uint16_t port, size_t bytes);  // bytes: only for "PORT BYTES" modes
};

// The modes of sockops_edge.cc (MSG_PEEK, splice, dup, io_uring).
extern const Mode kEdgeModes[];
extern const size_t kEdgeModeCount;

}  // namespace zt_sockops
