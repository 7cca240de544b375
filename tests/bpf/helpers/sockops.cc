// zt_sockops: generates exact, deterministic loopback socket traffic for the BPF tests.
//
// Each mode forks so that one command runs both ends of a connection (the child is the server,
// except in `die`, where the child is the client that exits). Output is one `key=value ...`
// line per fact, each written with a single write(2) so client and server lines never mix.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sockops_lib.h"

namespace {

using namespace zt_sockops;

// writev/readv or sendmsg/recvmsg of "alpha-" "beta-" "gamma", 3 iovecs on each side.
void Vectored(uint16_t port, bool use_msg) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [use_msg](int lfd) {
    int fd = Accept(lfd);
    char a[5], b[5], c[100];
    iovec iov[3] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
    msghdr msg = Msg(iov, 3);
    long n = use_msg ? Sys(recvmsg(fd, &msg, 0), "recvmsg") : Sys(readv(fd, iov, 3), "readv");
    Expect(n == 16, "server received " + std::to_string(n) + " bytes in one call, want 16");
    Say("server_%s=16 iov=%.5s|%.5s|%.6s", use_msg ? "recvmsg" : "readv", a, b, c);
    WriteAll(fd, "ok");
    CloseAtEof(fd);
  });
  int fd = Connect(AF_INET, port);
  char a[] = "alpha-", b[] = "beta-", c[] = "gamma";
  iovec iov[3] = {{a, 6}, {b, 5}, {c, 5}};
  msghdr msg = Msg(iov, 3);
  long n = use_msg ? Sys(sendmsg(fd, &msg, 0), "sendmsg") : Sys(writev(fd, iov, 3), "writev");
  Expect(n == 16, "short vectored write");
  Expect(ReadExact(fd, 2) == "ok", "bad reply");
  Say("client_%s=16 reply=ok", use_msg ? "sendmsg" : "writev");
  CloseAndWait(fd);
}

// One sendmsg of 200 iovecs of 3 bytes ("000" "001" ... "199"), as python grpcio batches
// many calls' frames; the server reads the 600 bytes and answers "ok".
void ManyIovecs(uint16_t port) {
  constexpr int kIovecs = 200;
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    int fd = Accept(lfd);
    Say("server_read=%zu", ReadExact(fd, 3 * kIovecs).size());
    WriteAll(fd, "ok");
    CloseAtEof(fd);
  });
  int fd = Connect(AF_INET, port);
  static char parts[kIovecs][4];
  iovec iov[kIovecs];
  for (int i = 0; i < kIovecs; i++) {
    std::snprintf(parts[i], sizeof(parts[i]), "%03d", i);
    iov[i] = {parts[i], 3};
  }
  msghdr msg = Msg(iov, kIovecs);
  Expect(Sys(sendmsg(fd, &msg, 0), "sendmsg") == 3 * kIovecs, "short sendmsg");
  Expect(ReadExact(fd, 2) == "ok", "bad reply");
  Say("client_sendmsg=%d reply=ok", 3 * kIovecs);
  CloseAndWait(fd);
}

// Plain write/read of "alpha-beta-gamma" and an "ok" reply between two address families.
void Plain(uint16_t port, int listen_family, int connect_family, bool v4_mapped) {
  ForkServer(Bind(listen_family, SOCK_STREAM, port, v4_mapped), [](int lfd) {
    int fd = Accept(lfd);
    Say("server_read=%s", ReadExact(fd, 16).c_str());
    WriteAll(fd, "ok");
    CloseAtEof(fd);
  });
  int fd = Connect(connect_family, port);
  WriteAll(fd, "alpha-beta-gamma");
  Expect(ReadExact(fd, 2) == "ok", "bad reply");
  Say("client_read=ok");
  CloseAndWait(fd);
}

// sendmmsg of "one" "two" "three" (one iovec each); the server takes them with recvmmsg.
void Mmsg(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    int fd = Accept(lfd);
    // Wait until all 11 bytes are queued so one recvmmsg returns all three messages.
    for (int queued = 0; queued < 11;) {
      AwaitReady(fd, POLLIN, "no request");
      Sys(ioctl(fd, FIONREAD, &queued), "FIONREAD");
      if (queued < 11) usleep(1000);
    }
    std::string data, shown;  // shown separates the messages with '|'
    int calls = 0, messages = 0;
    while (data.size() < 11) {
      char bufs[3][5];
      iovec iov[3] = {{bufs[0], 3}, {bufs[1], 3}, {bufs[2], 5}};
      mmsghdr msgs[3]{};
      for (int i = 0; i < 3; ++i) msgs[i].msg_hdr = Msg(&iov[i], 1);
      int n = Sys(recvmmsg(fd, msgs, 3, MSG_WAITFORONE, nullptr), "recvmmsg");
      Expect(n > 0 && msgs[0].msg_len > 0, "EOF before 11 bytes");
      ++calls;
      for (int i = 0; i < n; ++i, ++messages) {
        data.append(bufs[i], msgs[i].msg_len);
        shown += (shown.empty() ? "" : "|") + std::string(bufs[i], msgs[i].msg_len);
      }
    }
    Expect(data == "onetwothree", "server received " + data);
    Say("server_recvmmsg_calls=%d messages=%d data=%s", calls, messages, shown.c_str());
    WriteAll(fd, "ok");
    CloseAtEof(fd);
  });
  int fd = Connect(AF_INET, port);
  char one[] = "one", two[] = "two", three[] = "three";
  iovec iov[3] = {{one, 3}, {two, 3}, {three, 5}};
  mmsghdr msgs[3]{};
  for (int i = 0; i < 3; ++i) msgs[i].msg_hdr = Msg(&iov[i], 1);
  int sent = Sys(sendmmsg(fd, msgs, 3, 0), "sendmmsg");
  Expect(sent == 3, "sendmmsg sent " + std::to_string(sent) + " of 3 messages");
  Say("client_sendmmsg=3 bytes=%u,%u,%u", msgs[0].msg_len, msgs[1].msg_len, msgs[2].msg_len);
  Expect(ReadExact(fd, 2) == "ok", "bad reply");
  CloseAndWait(fd);
}

// Non-blocking client: connect (EINPROGRESS), a read before the server wrote (EAGAIN), then
// the server writes "late" once told to through a pipe.
void Nonblock(uint16_t port) {
  int go[2];
  Sys(pipe(go), "pipe");
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [&go](int lfd) {
    int fd = Accept(lfd);
    char token;
    Expect(Sys(read(go[0], &token, 1), "read pipe") == 1, "client never signalled");
    WriteAll(fd, "late");
    CloseAtEof(fd);
  });
  close(go[0]);
  int fd = Sys(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket");
  Addr addr = Loopback(AF_INET, port);
  bool in_progress = connect(fd, addr.get(), addr.len) < 0;
  Expect(!in_progress || errno == EINPROGRESS, std::string("connect: ") + strerror(errno));
  AwaitReady(fd, POLLOUT, "connect did not complete");
  int err = 0;
  socklen_t err_len = sizeof(err);
  Sys(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len), "SO_ERROR");
  Expect(err == 0, std::string("connect: ") + strerror(err));
  Say("client_fd=%d client_port=%u einprogress=%d", fd, LocalPort(fd), in_progress ? 1 : 0);
  char buf[16];
  Expect(read(fd, buf, sizeof(buf)) < 0 && errno == EAGAIN, "read before the reply: no EAGAIN");
  Say("eagain=1");
  Sys(write(go[1], "g", 1), "write pipe");
  AwaitReady(fd, POLLIN, "no reply");
  long n = Sys(read(fd, buf, sizeof(buf)), "read");
  Expect(std::string_view(buf, n) == "late", "bad reply");
  Say("client_read=late");
  CloseAndWait(fd);
}

// One UDP datagram "udp-payload" each way; the tracer must ignore all of it.
void Udp(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_DGRAM, port), [](int fd) {
    char buf[64];
    Addr peer;
    peer.len = sizeof(peer.storage);
    long n = Sys(recvfrom(fd, buf, sizeof(buf), 0, peer.get(), &peer.len), "recvfrom");
    Say("server_fd=%d server_got=%.*s", fd, static_cast<int>(n), buf);
    Sys(sendto(fd, buf, n, 0, peer.get(), peer.len), "sendto");
    close(fd);
  });
  int fd = Sys(socket(AF_INET, SOCK_DGRAM, 0), "socket");
  Addr addr = Loopback(AF_INET, port);
  Sys(sendto(fd, "udp-payload", 11, 0, addr.get(), addr.len), "sendto");
  char buf[64];
  long n = Sys(recvfrom(fd, buf, sizeof(buf), 0, nullptr, nullptr), "recvfrom");
  Expect(std::string_view(buf, n) == "udp-payload", "bad reply");
  Say("client_fd=%d client_got=udp-payload", fd);
  CloseAndWait(fd);
}

// Two connections in a row on the same client fd number: "first", then "second".
void FdReuse(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    for (const char* want : {"first", "second"}) {
      int fd = Accept(lfd);
      std::string got = ReadToEof(fd);
      Expect(got == want, "server received " + got);
      Say("server_fd=%d server_got=%s", fd, got.c_str());
      close(fd);
    }
  });
  int first = Connect(AF_INET, port);
  WriteAll(first, "first");
  close(first);
  int second = Connect(AF_INET, port);  // socket() right after close(): lowest free fd
  Expect(second == first, "fd not reused: " + std::to_string(second));
  Say("fd=%d reused=1", second);
  WriteAll(second, "second");
  close(second);
  WaitChild();
}

// One write() of BYTES bytes ('a' + i % 26); the server checks every byte and replies "done".
void Big(uint16_t port, size_t bytes) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [bytes](int lfd) {
    int fd = Accept(lfd);
    std::vector<char> buf(64 * 1024);
    size_t got = 0;
    int calls = 0;
    while (got < bytes) {
      long n = Sys(read(fd, buf.data(), std::min(buf.size(), bytes - got)), "read");
      Expect(n > 0, "EOF after " + std::to_string(got) + " bytes");
      for (long i = 0; i < n; ++i) {
        if (buf[i] != static_cast<char>('a' + (got + i) % 26)) {
          Fail("wrong byte at " + std::to_string(got + i));
        }
      }
      got += n;
      ++calls;
    }
    Say("server_read_calls=%d bytes=%zu pattern_ok=1", calls, got);
    WriteAll(fd, "done");
    CloseAtEof(fd);
  });
  int fd = Connect(AF_INET, port);
  std::string data(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>('a' + i % 26);
  int calls = 0;
  for (std::string_view rest = data; !rest.empty(); ++calls) {
    rest.remove_prefix(Sys(write(fd, rest.data(), rest.size()), "write"));
  }
  Say("client_write_calls=%d bytes=%zu", calls, bytes);
  Expect(ReadExact(fd, 4) == "done", "bad reply");
  CloseAndWait(fd);
}

// "before" (echoed), then waits for a line on stdin, then "after" (echoed) on the same
// connection: the test starts the agent in between.
void Hold(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    int fd = Accept(lfd);
    char buf[4096];
    while (long n = Sys(read(fd, buf, sizeof(buf)), "read")) {
      Say("server_echo=%.*s", static_cast<int>(n), buf);
      WriteAll(fd, std::string_view(buf, n));
    }
    close(fd);
  });
  int fd = Connect(AF_INET, port);
  WriteAll(fd, "before");
  Expect(ReadExact(fd, 6) == "before", "bad echo");
  Say("connected");
  char c = 0;
  while (Sys(read(STDIN_FILENO, &c, 1), "read stdin") == 1 && c != '\n') {
  }
  WriteAll(fd, "after");
  Expect(ReadExact(fd, 5) == "after", "bad echo");
  Say("client_got=after");
  CloseAndWait(fd);
}

// The client (here the child) sends "GET /partial" and _exit()s without close(); the server
// (the parent) reads until EOF.
void Die(uint16_t port) {
  int lfd = Bind(AF_INET, SOCK_STREAM, port);
  pid_t client = Spawn("client", [port, lfd] {
    close(lfd);
    WriteAll(Connect(AF_INET, port), "GET /partial");
    _exit(0);
  });
  g_side = "server";
  Say("client_pid=%d server_pid=%d", client, getpid());
  int fd = Accept(lfd);
  std::string got = ReadToEof(fd);
  Expect(got == "GET /partial", "server received " + got);
  Say("server_got=%s eof=1", got.c_str());
  close(fd);
  close(lfd);
  WaitChild();
}

const Mode kModes[] = {
    {"writev", "PORT", [](uint16_t p, size_t) { Vectored(p, false); }},
    {"sendmsg", "PORT", [](uint16_t p, size_t) { Vectored(p, true); }},
    {"manyiov", "PORT", [](uint16_t p, size_t) { ManyIovecs(p); }},
    {"mmsg", "PORT", [](uint16_t p, size_t) { Mmsg(p); }},
    {"nonblock", "PORT", [](uint16_t p, size_t) { Nonblock(p); }},
    {"udp", "PORT", [](uint16_t p, size_t) { Udp(p); }},
    {"fdreuse", "PORT", [](uint16_t p, size_t) { FdReuse(p); }},
    {"big", "PORT BYTES", Big},
    {"hold", "PORT", [](uint16_t p, size_t) { Hold(p); }},
    {"die", "PORT", [](uint16_t p, size_t) { Die(p); }},
    {"ipv6", "PORT", [](uint16_t p, size_t) { Plain(p, AF_INET6, AF_INET6, false); }},
    {"v4mapped", "PORT", [](uint16_t p, size_t) { Plain(p, AF_INET6, AF_INET, true); }},
};

std::vector<const Mode*> AllModes() {
  std::vector<const Mode*> out;
  for (const Mode& m : kModes) out.push_back(&m);
  for (size_t i = 0; i < kEdgeModeCount; i++) out.push_back(&kEdgeModes[i]);
  return out;
}

int Usage(int status) {
  std::string text = "usage: zt_sockops MODE ARGS  (exact loopback traffic for the BPF tests)\n";
  for (const Mode* m : AllModes()) {
    text += std::string("  zt_sockops ") + m->name + " " + m->usage + "\n";
  }
  fputs(text.c_str(), stdout);
  return status;
}

bool ParseNumber(const char* s, unsigned long long max, unsigned long long* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtoull(s, &end, 10);
  return errno == 0 && end != s && *end == '\0' && *out > 0 && *out <= max;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage(2);
  if (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help") return Usage(0);
  for (const Mode* mode : AllModes()) {
    const Mode& m = *mode;
    if (std::string_view(argv[1]) != m.name) continue;
    int want = std::string_view(m.usage) == "PORT" ? 3 : 4;
    unsigned long long port = 0, bytes = 0;
    if (argc != want || !ParseNumber(argv[2], 65535, &port) ||
        (want == 4 && !ParseNumber(argv[3], 1ull << 30, &bytes))) {
      fprintf(stderr, "usage: zt_sockops %s %s\n", m.name, m.usage);
      return 2;
    }
    signal(SIGPIPE, SIG_IGN);  // a closed peer is an error message, not a silent death
    alarm(kTimeoutSeconds);
    m.run(static_cast<uint16_t>(port), bytes);
    return 0;
  }
  fprintf(stderr, "zt_sockops: unknown mode %s\n", argv[1]);
  return Usage(2);
}
