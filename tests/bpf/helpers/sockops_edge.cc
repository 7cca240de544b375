// zt_sockops modes that move bytes in unusual ways (MSG_PEEK, splice(), dup'd fds, io_uring,
// receives and sends that find nothing or no room), and an echo the test drives line by line.
#include <fcntl.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "sockops_lib.h"

namespace zt_sockops {
namespace {

// The server peeks at "hello-peek" with recv, recvmsg and recvmmsg (MSG_PEEK), then reads it.
void Peek(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    int fd = Accept(lfd);
    char buf[16];
    int peeks = 0;
    for (long n = 0; n < 10; ++peeks) {  // until all 10 bytes are queued
      AwaitReady(fd, POLLIN, "no request");
      n = Sys(recv(fd, buf, 10, MSG_PEEK), "recv MSG_PEEK");
      Expect(n > 0, "EOF before the request");
    }
    iovec iov{buf, 10};
    msghdr msg = Msg(&iov, 1);
    Expect(Sys(recvmsg(fd, &msg, MSG_PEEK), "recvmsg MSG_PEEK") == 10, "short recvmsg peek");
    mmsghdr mm{};
    mm.msg_hdr = Msg(&iov, 1);
    Expect(Sys(recvmmsg(fd, &mm, 1, MSG_PEEK, nullptr), "recvmmsg MSG_PEEK") == 1, "recvmmsg peek");
    Say("server_peeks=%d", peeks + 2);
    Say("server_read=%s", ReadExact(fd, 10).c_str());
    WriteAll(fd, "ok");
    CloseAtEof(fd);
  });
  int fd = Connect(AF_INET, port);
  WriteAll(fd, "hello-peek");
  Expect(ReadExact(fd, 2) == "ok", "bad reply");
  CloseAndWait(fd);
}

// Moves n bytes from `from` to `to` with splice() (one of them is a pipe).
void SpliceAll(int from, int to, size_t n) {
  for (size_t moved = 0; moved < n;) {
    long r = Sys(splice(from, nullptr, to, nullptr, n - moved, 0), "splice");
    Expect(r > 0, "splice moved nothing");
    moved += r;
  }
}

// The server splices "request-1" out of the socket into a pipe and "reply-1" from a pipe into
// the socket, then reads "request-2" and writes "reply-2" with plain syscalls.
void SpliceMode(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    int fd = Accept(lfd);
    int p[2];
    Sys(pipe(p), "pipe");
    SpliceAll(fd, p[1], 9);
    Expect(ReadExact(p[0], 9) == "request-1", "bad spliced request");
    WriteAll(p[1], "reply-1");
    SpliceAll(p[0], fd, 7);
    Say("server_spliced_in=9 server_spliced_out=7");
    Expect(ReadExact(fd, 9) == "request-2", "bad request-2");
    WriteAll(fd, "reply-2");
    CloseAtEof(fd);
  });
  int fd = Connect(AF_INET, port);
  WriteAll(fd, "request-1");
  Expect(ReadExact(fd, 7) == "reply-1", "bad reply-1");
  WriteAll(fd, "request-2");
  Expect(ReadExact(fd, 7) == "reply-2", "bad reply-2");
  CloseAndWait(fd);
}

// The client writes "one" on its connect fd, moves it with dup2() to fd 100 and closes the
// first, writes "two", makes a third fd with fcntl(F_DUPFD_CLOEXEC) and writes "three" on it,
// then reads "ok" on fd 100. The server moves its accepted fd with dup3() to fd 101.
void Dup(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    int accepted = Accept(lfd);
    int fd = Sys(dup3(accepted, 101, O_CLOEXEC), "dup3");
    close(accepted);
    Say("server_read=%s", ReadExact(fd, 11).c_str());
    WriteAll(fd, "ok");
    CloseAtEof(fd);
  });
  int first = Connect(AF_INET, port);
  WriteAll(first, "one");
  int fd = Sys(dup2(first, 100), "dup2");
  close(first);
  WriteAll(fd, "two");
  int third = Sys(fcntl(fd, F_DUPFD_CLOEXEC, 0), "fcntl F_DUPFD_CLOEXEC");
  WriteAll(third, "three");
  Expect(ReadExact(fd, 2) == "ok", "bad reply");
  Say("client_fds=%d,%d,%d", first, fd, third);
  close(third);
  CloseAndWait(fd);
}

// The client sends "ring" with an io_uring IORING_OP_SEND, then "after" with write().
void Uring(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    int fd = Accept(lfd);
    Say("server_read=%s", ReadExact(fd, 9).c_str());
    WriteAll(fd, "ok");
    CloseAtEof(fd);
  });
  int fd = Connect(AF_INET, port);
  io_uring_params p{};
  int ring = Sys(syscall(__NR_io_uring_setup, 4, &p), "io_uring_setup");
  Expect(p.features & IORING_FEAT_SINGLE_MMAP, "io_uring without IORING_FEAT_SINGLE_MMAP");
  const size_t ring_bytes = std::max(p.sq_off.array + p.sq_entries * sizeof(unsigned),
                                     p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe));
  auto* rings = static_cast<char*>(mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE,
                                        MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING));
  auto* sqes = static_cast<io_uring_sqe*>(mmap(nullptr, p.sq_entries * sizeof(io_uring_sqe),
                                               PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                               ring, IORING_OFF_SQES));
  Expect(rings != MAP_FAILED && sqes != MAP_FAILED, "io_uring mmap failed");
  auto at = [rings](uint32_t off) { return reinterpret_cast<unsigned*>(rings + off); };
  const unsigned tail = *at(p.sq_off.tail), index = tail & *at(p.sq_off.ring_mask);
  static char payload[] = "ring";
  io_uring_sqe& sqe = sqes[index];
  memset(&sqe, 0, sizeof(sqe));
  sqe.opcode = IORING_OP_SEND;
  sqe.fd = fd;
  sqe.addr = reinterpret_cast<uint64_t>(payload);
  sqe.len = 4;
  sqe.user_data = 1;
  at(p.sq_off.array)[index] = index;
  __atomic_store_n(at(p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
  Sys(syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, nullptr, 0),
      "io_uring_enter");
  const unsigned head = __atomic_load_n(at(p.cq_off.head), __ATOMIC_ACQUIRE);
  auto* cqes = reinterpret_cast<io_uring_cqe*>(rings + p.cq_off.cqes);
  const io_uring_cqe& cqe = cqes[head & *at(p.cq_off.ring_mask)];
  Expect(cqe.user_data == 1 && cqe.res == 4, "io_uring send: res " + std::to_string(cqe.res));
  __atomic_store_n(at(p.cq_off.head), head + 1, __ATOMIC_RELEASE);
  Say("client_uring_send=4");
  WriteAll(fd, "after");
  Expect(ReadExact(fd, 2) == "ok", "bad reply");
  close(ring);
  CloseAndWait(fd);
}

// The client receives with read, readv, recvfrom, recvmsg and recvmmsg in turn on a nonblocking
// socket: each first finds nothing (EAGAIN), then takes the server's next part ("part-0" ..
// "part-4", written when the client asks through a pipe).
void RecvEagain(uint16_t port) {
  int go[2];
  Sys(pipe(go), "pipe");
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [&go](int lfd) {
    int fd = Accept(lfd);
    close(go[1]);
    char token;
    for (int i = 0; Sys(read(go[0], &token, 1), "read pipe") == 1; i++) {
      WriteAll(fd, "part-" + std::to_string(i));
    }
    CloseAtEof(fd);
  });
  close(go[0]);
  int fd = Connect(AF_INET, port);
  Sys(fcntl(fd, F_SETFL, O_NONBLOCK), "O_NONBLOCK");
  char buf[16];
  iovec iov{buf, sizeof(buf)};
  const std::function<long()> receives[] = {
      [&] { return read(fd, buf, sizeof(buf)); },
      [&] { return readv(fd, &iov, 1); },
      [&] { return recvfrom(fd, buf, sizeof(buf), 0, nullptr, nullptr); },
      [&] {
        msghdr msg = Msg(&iov, 1);
        return recvmsg(fd, &msg, 0);
      },
      [&] {
        mmsghdr mm{};
        mm.msg_hdr = Msg(&iov, 1);
        const long n = recvmmsg(fd, &mm, 1, 0, nullptr);
        return n == 1 ? long(mm.msg_len) : n;
      },
  };
  int eagains = 0;
  for (size_t i = 0; i < std::size(receives); i++) {
    const long none = receives[i]();
    Expect(none < 0 && errno == EAGAIN, "receive " + std::to_string(i) + ": no EAGAIN");
    eagains++;
    Sys(write(go[1], "g", 1), "write pipe");
    AwaitReady(fd, POLLIN, "no part");
    const long n = Sys(receives[i](), "receive");
    Expect(std::string_view(buf, n) == "part-" + std::to_string(i), "bad part");
  }
  Say("eagains=%d", eagains);
  close(go[1]);
  CloseAndWait(fd);
}

// "burst": 200 writes of 10 bytes, then reads until all 2000 came back; says how many
// syscalls moved bytes each way and how long that took.
void Burst(int fd) {
  constexpr int kWrites = 200;
  constexpr size_t kSize = 10;
  timespec t0{}, t1{};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < kWrites; i++) {
    Expect(Sys(write(fd, "0123456789", kSize), "write") == long{kSize}, "short write");
  }
  size_t got = 0;
  int reads = 0;
  char buf[4096];
  while (got < kWrites * kSize) {
    const long r = Sys(read(fd, buf, std::min(sizeof(buf), kWrites * kSize - got)), "read");
    Expect(r > 0, "unexpected EOF in the burst");
    got += r;
    reads++;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const long long ns = (t1.tv_sec - t0.tv_sec) * 1'000'000'000LL + (t1.tv_nsec - t0.tv_nsec);
  Say("burst_writes=%d burst_reads=%d burst_bytes=%zu burst_ns=%lld", kWrites, reads, got, ns);
}

// Echo driven by stdin: the client sends each line it reads (without the newline) and reads
// the server's echo, until a line "end" ("burst": see Burst). The test acts between lines.
void Echo(uint16_t port) {
  ForkServer(Bind(AF_INET, SOCK_STREAM, port), [](int lfd) {
    int fd = Accept(lfd);
    char buf[4096];
    while (long n = Sys(read(fd, buf, sizeof(buf)), "read")) WriteAll(fd, std::string_view(buf, n));
    close(fd);
  });
  int fd = Connect(AF_INET, port);
  Say("connected");
  std::string line;
  char c = 0;
  while (Sys(read(STDIN_FILENO, &c, 1), "read stdin") == 1) {
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line == "end") break;
    if (line == "burst") {
      Burst(fd);
      line.clear();
      continue;
    }
    WriteAll(fd, line);
    Expect(ReadExact(fd, line.size()) == line, "bad echo");
    Say("echoed=%zu", line.size());
    line.clear();
  }
  CloseAndWait(fd);
}

int64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Each kind of send (write, writev, sendto, sendmsg, sendmmsg) fills the socket until it fails
// with EAGAIN (it reached tcp_sendmsg_locked, then found no room), then, once the server
// drained it, sends "mark-I" (t0_I..t1_I: CLOCK_MONOTONIC before the drain began and after
// the send returned). The server drains on a signal, not on a pipe: between the two sends the
// client makes no other write, which would hide a stale stamp. A realtime signal queues: two
// in a row are not merged into one.
void SendEagain(uint16_t port) {
  constexpr int kKinds = 5;
  sigset_t drain;
  sigemptyset(&drain);
  sigaddset(&drain, SIGRTMIN);
  Sys(sigprocmask(SIG_BLOCK, &drain, nullptr), "sigprocmask");  // the server inherits it
  const int lfd = Bind(AF_INET, SOCK_STREAM, port);
  const int small = 4096;
  Sys(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), "SO_RCVBUF");
  ForkServer(lfd, [&drain](int l) {
    int fd = Accept(l);
    char buf[4096];
    for (int i = 0; i < kKinds; i++) {
      int sig = 0;
      Expect(sigwait(&drain, &sig) == 0, "sigwait");
      const std::string mark = "mark-" + std::to_string(i);
      std::string tail;
      while (tail.find(mark) == std::string::npos) {
        const long n = Sys(read(fd, buf, sizeof(buf)), "read");
        Expect(n > 0, "EOF before " + mark);
        tail = tail.substr(tail.size() > 16 ? tail.size() - 16 : 0) + std::string(buf, n);
      }
    }
    CloseAtEof(fd);
  });
  int fd = Connect(AF_INET, port);
  Sys(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), "SO_SNDBUF");
  Sys(fcntl(fd, F_SETFL, O_NONBLOCK), "O_NONBLOCK");
  std::string data;
  iovec iov{};
  const std::function<long()> sends[kKinds] = {
      [&] { return write(fd, data.data(), data.size()); },
      [&] { return writev(fd, &iov, 1); },
      [&] { return sendto(fd, data.data(), data.size(), 0, nullptr, 0); },
      [&] {
        msghdr msg = Msg(&iov, 1);
        return sendmsg(fd, &msg, 0);
      },
      [&] {
        mmsghdr mm{};
        mm.msg_hdr = Msg(&iov, 1);
        const long n = sendmmsg(fd, &mm, 1, 0);
        return n == 1 ? long(mm.msg_len) : n;
      },
  };
  int eagains = 0;
  for (int i = 0; i < kKinds; i++) {
    data.assign(4096, 'x');  // this kind of send fills, so that its own last one finds no room
    iov = {data.data(), data.size()};
    while (sends[i]() > 0) {
    }
    Expect(errno == EAGAIN, "send " + std::to_string(i) + ": no EAGAIN");
    eagains++;
    data = "mark-" + std::to_string(i);
    iov = {data.data(), data.size()};
    const int64_t t0 = MonotonicNs();
    Sys(kill(g_child, SIGRTMIN), "kill");
    AwaitReady(fd, POLLOUT, "no room");
    Expect(Sys(sends[i](), "send") == long(data.size()), "short send of " + data);
    const int64_t t1 = MonotonicNs();
    Say("t0_%d=%lld t1_%d=%lld", i, (long long)t0, i, (long long)t1);
  }
  Say("eagains=%d", eagains);
  CloseAndWait(fd);
}

}  // namespace

const Mode kEdgeModes[] = {
    {"peek", "PORT", [](uint16_t p, size_t) { Peek(p); }},
    {"splice", "PORT", [](uint16_t p, size_t) { SpliceMode(p); }},
    {"dup", "PORT", [](uint16_t p, size_t) { Dup(p); }},
    {"uring", "PORT", [](uint16_t p, size_t) { Uring(p); }},
    {"echo", "PORT", [](uint16_t p, size_t) { Echo(p); }},
    {"recv_eagain", "PORT", [](uint16_t p, size_t) { RecvEagain(p); }},
    {"send_eagain", "PORT", [](uint16_t p, size_t) { SendEagain(p); }},
};
const size_t kEdgeModeCount = sizeof(kEdgeModes) / sizeof(kEdgeModes[0]);

}  // namespace zt_sockops
