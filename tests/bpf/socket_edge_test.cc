// Real kernel, real processes: bytes moved in unusual ways (MSG_PEEK, splice, dup'd fds,
// io_uring, muted connections) keep every stream position exact, and each is counted.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "subprocess.h"
#include "trace_asserts.h"
#include "trace_session.h"

namespace zerotrace::testing {
namespace {

using std::chrono::seconds;

uint64_t Counter(TraceSession& s, int counter) { return s.tracer().ReadCounters()[counter]; }

// The close record of a connection, once it arrived.
Record CloseOf(TraceSession& s, uint64_t conn_id) {
  std::vector<Record> closes;
  s.WaitUntil([&](const std::vector<Record>&) {
    closes = s.Select([&](const Record& r) {
      return r.hdr.type == ZT_EV_CONN_CLOSE && r.hdr.conn_id == conn_id;
    });
    return !closes.empty();
  });
  EXPECT_EQ(closes.size(), 1u) << "closes of conn " << conn_id;
  return closes.empty() ? Record{} : closes[0];
}

// Receives and sends end where the socket layer reports them (the default on 6.3+), or at
// their syscalls' exits (--no-socket-tracepoints, and kernels without those tracepoints): the
// tests of receives and sends run both ways.
class SocketEdgeHooks : public ::testing::TestWithParam<bool> {
 protected:
  static probes::TracerConfig Config() {
    probes::TracerConfig cfg;
    cfg.sock_hooks = GetParam();
    return cfg;
  }
};

INSTANTIATE_TEST_SUITE_P(Hooks, SocketEdgeHooks, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "SocketLayer" : "SyscallExits";
                         });

// The run count of the programs that end receives and sends, over the tracer's object.
uint64_t DataProgramRuns(TraceSession& s) {
  uint64_t runs = 0;
  for (const probes::ProgramStats& p : s.tracer().ReadProgramStats()) {
    if (p.name == "zt_sock_recv" || p.name == "zt_sock_send" || p.name == "zt_exit_data_syscall")
      runs += p.run_count;
  }
  return runs;
}

// Reads and writes of pipes and files are most of a node's syscalls besides its network
// traffic. At the socket layer they run none of the agent's programs; at syscall exits each
// runs one (which the second half shows, so that the first can fail).
TEST_P(SocketEdgeHooks, PipeReadsAndWritesRunADataProgramOnlyAtSyscallExits) {
  const int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);  // run counts while it is open
  ASSERT_GE(stats_fd, 0) << "BPF_ENABLE_STATS: " << strerror(errno);
  TraceSession session(Config());
  ASSERT_FALSE(::testing::Test::HasFailure());
  constexpr int kRoundTrips = 5000;  // a write and a read each
  const uint64_t before = DataProgramRuns(session);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int p[2];
    char c = 'x';
    if (pipe(p) != 0) _exit(1);
    for (int i = 0; i < kRoundTrips; i++) {
      if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1) _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const uint64_t runs = DataProgramRuns(session) - before;
  close(stats_fd);
  if (GetParam()) {
    // Other processes' socket traffic runs them meanwhile: far fewer than the pipe's.
    EXPECT_LT(runs, uint64_t(kRoundTrips) / 10) << "pipe I/O ran the socket layer's programs";
  } else {
    EXPECT_GE(runs, uint64_t(2 * kRoundTrips)) << "one sys_exit run per pipe read and write";
  }
}

// A peek copies bytes that stay queued: only the read that takes them moves the stream.
TEST_P(SocketEdgeHooks, PeekNeverAdvancesTheStream) {
  TraceSession session(Config());
  ASSERT_FALSE(::testing::Test::HasFailure());
  const uint64_t peeks_before = Counter(session, ZT_CNT_PEEK_SKIPPED);
  auto kv = RunSockops({"peek", std::to_string(FreePort())});
  ASSERT_GE(kv["server_peeks"], 3);
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_SERVER);
  const Record close = CloseOf(session, s.hdr.conn_id);
  EXPECT_EQ(close.close.received_bytes, 10u);
  const std::vector<Record> in = session.DataOf(kv["server_pid"], s.hdr.conn_id, ZT_DIR_INGRESS);
  ASSERT_EQ(in.size(), 1u) << "peeks emitted data";
  EXPECT_EQ(in[0].data.syscall, ZT_SYS_READ);
  EXPECT_EQ(in[0].data.syscall_pos, 0u);
  EXPECT_EQ(in[0].payload, "hello-peek");
  EXPECT_GE(Counter(session, ZT_CNT_PEEK_SKIPPED) - peeks_before, uint64_t(kv["server_peeks"]));
}

// Receives run no sys_enter program: where they end (socket layer or sys_exit) the arguments
// come from the task's saved registers, and it returns at once when nothing moved. Each kind of
// receive (read, readv, recvfrom, recvmsg, recvmmsg), after an EAGAIN on the same socket, captures
// its bytes at their stream position under its own syscall, and the EAGAINs leave no record.
TEST_P(SocketEdgeHooks, EachReceiveKindAfterEagainCapturesItsBytes) {
  TraceSession session(Config());
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto kv = RunSockops({"recv_eagain", std::to_string(FreePort())});
  ASSERT_EQ(kv["eagains"], 5);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  const std::vector<Record> in =
      WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_INGRESS, 30);
  ASSERT_EQ(in.size(), 5u);
  const uint8_t kinds[] = {ZT_SYS_READ, ZT_SYS_READV, ZT_SYS_RECVFROM, ZT_SYS_RECVMSG,
                           ZT_SYS_RECVMMSG};
  for (size_t i = 0; i < in.size(); i++) {
    EXPECT_EQ(in[i].data.syscall, kinds[i]) << i;
    EXPECT_EQ(in[i].data.syscall_pos, 6 * i);
    EXPECT_EQ(in[i].data.byte_count, 6u);
    EXPECT_EQ(in[i].payload, "part-" + std::to_string(i));
  }
}

// Sends run no sys_enter program: tcp_sendmsg_locked stamps them, and where they end
// (socket layer or sys_exit) takes the stamp only for the syscall that made it. Each kind of send
// first fails with EAGAIN on a full socket after reaching tcp_sendmsg_locked; the send that follows
// must carry its own time (after the drain began, before it returned), not the failed one's, and no
// send falls back to a stamp at exit.
TEST_P(SocketEdgeHooks, SendAfterEagainIsStampedByItself) {
  TraceSession session(Config());
  ASSERT_FALSE(::testing::Test::HasFailure());
  const uint64_t at_exit_before = Counter(session, ZT_CNT_SEND_STAMPED_AT_EXIT);
  auto kv = RunSockops({"send_eagain", std::to_string(FreePort())});
  ASSERT_EQ(kv["eagains"], 5);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  CloseOf(session, c.hdr.conn_id);
  const uint8_t kinds[] = {ZT_SYS_WRITE, ZT_SYS_WRITEV, ZT_SYS_SENDTO, ZT_SYS_SENDMSG,
                           ZT_SYS_SENDMMSG};
  const std::vector<Record> out = session.DataOf(kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS);
  for (size_t i = 0; i < std::size(kinds); i++) {
    const std::string mark = "mark-" + std::to_string(i);
    std::vector<Record> marks;
    for (const Record& r : out) {
      if (r.payload == mark) marks.push_back(r);
    }
    ASSERT_EQ(marks.size(), 1u) << mark;
    EXPECT_EQ(marks[0].data.syscall, kinds[i]) << mark;
    const auto t0 = uint64_t(kv["t0_" + std::to_string(i)]);
    const auto t1 = uint64_t(kv["t1_" + std::to_string(i)]);
    EXPECT_GE(marks[0].hdr.ts_ns, t0) << mark << ": stamped before its own send (stale)";
    EXPECT_LE(marks[0].hdr.ts_ns, t1) << mark;
  }
  EXPECT_EQ(Counter(session, ZT_CNT_SEND_STAMPED_AT_EXIT), at_exit_before);
}

// splice() moves bytes without a user buffer: their sizes still advance the stream (a gap), so
// what follows on the connection sits at its true position.
TEST_P(SocketEdgeHooks, SpliceCountsItsBytesInTheRightDirection) {
  TraceSession session(Config());
  ASSERT_FALSE(::testing::Test::HasFailure());
  const uint64_t splices_before = Counter(session, ZT_CNT_SPLICE);
  auto kv = RunSockops({"splice", std::to_string(FreePort())});
  ASSERT_EQ(kv["server_spliced_in"], 9);
  const long pid = kv["server_pid"];
  const Record s = OneOpen(session, pid, ZT_ROLE_SERVER);
  const Record close = CloseOf(session, s.hdr.conn_id);
  EXPECT_EQ(close.close.received_bytes, 18u);
  EXPECT_EQ(close.close.sent_bytes, 14u);
  for (const auto& [dir, sys, size, rest] :
       {std::tuple{ZT_DIR_INGRESS, ZT_SYS_SPLICE_READ, 9u, "request-2"},
        std::tuple{ZT_DIR_EGRESS, ZT_SYS_SPLICE_WRITE, 7u, "reply-2"}}) {
    const std::vector<Record> data = session.DataOf(pid, s.hdr.conn_id, dir);
    ASSERT_FALSE(data.empty());
    uint64_t spliced = 0;
    for (const Record& r : data) {
      if (r.data.syscall != sys) continue;
      EXPECT_EQ(r.data.captured, 0u);  // sizes only
      EXPECT_EQ(r.data.syscall_pos, spliced);
      spliced += r.data.byte_count;
    }
    EXPECT_EQ(spliced, size);
    EXPECT_EQ(Chunks(data), (std::vector<Chunk>{{size, rest}}));
  }
  // The client used plain syscalls: its streams are whole.
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  EXPECT_EQ(TraceSession::Reassemble(
                WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 18)),
            "request-1request-2");
  EXPECT_GE(Counter(session, ZT_CNT_SPLICE) - splices_before, 2u);
}

// dup2/dup3/fcntl(F_DUPFD) make more fds for one socket: they share its connection (one id,
// one role, one open and one close event) and its stream positions.
TEST_P(SocketEdgeHooks, DupdFdsShareTheirSocketsConnection) {
  TraceSession session(Config());
  ASSERT_FALSE(::testing::Test::HasFailure());
  const uint64_t shared_before = Counter(session, ZT_CNT_DUP_SHARED);
  auto kv = RunSockops({"dup", std::to_string(FreePort())});
  ASSERT_EQ(kv["server_pid"] > 0, true);
  const long client = kv["client_pid"], server = kv["server_pid"];
  const Record c = OneOpen(session, client, ZT_ROLE_CLIENT);
  const Record close = CloseOf(session, c.hdr.conn_id);
  EXPECT_EQ(close.close.sent_bytes, 11u);
  EXPECT_EQ(close.close.received_bytes, 2u);
  EXPECT_EQ(session.OpensOf(client).size(), 1u) << "a dup'd fd became a connection of its own";
  const std::vector<Record> out = session.DataOf(client, c.hdr.conn_id, ZT_DIR_EGRESS);
  EXPECT_EQ(Chunks(out), (std::vector<Chunk>{{0, "one"}, {3, "two"}, {6, "three"}}));
  for (const Record& r : out) EXPECT_EQ(r.hdr.fd, c.hdr.fd);  // the fd userspace knows it by
  for (const Record& r : out) EXPECT_LT(r.hdr.ts_ns, close.hdr.ts_ns);

  const Record s = OneOpen(session, server, ZT_ROLE_SERVER);
  EXPECT_EQ(session.OpensOf(server).size(), 1u);
  EXPECT_EQ(TraceSession::Reassemble(WaitData(session, server, s.hdr.conn_id, ZT_DIR_INGRESS, 11)),
            "onetwothree");
  EXPECT_EQ(CloseOf(session, s.hdr.conn_id).close.received_bytes, 11u);
  EXPECT_GE(Counter(session, ZT_CNT_DUP_SHARED) - shared_before, 3u);
}

// io_uring moves bytes without socket syscalls: not seen, but counted.
TEST(SocketEdge, IoUringOnATrackedSocketIsCounted) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  const uint64_t before = Counter(session, ZT_CNT_IO_URING);
  auto kv = RunSockops({"uring", std::to_string(FreePort())});
  ASSERT_EQ(kv["client_uring_send"], 4);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  CloseOf(session, c.hdr.conn_id);
  EXPECT_GE(Counter(session, ZT_CNT_IO_URING) - before, 1u);
}

// A muted connection sends sizes only because userspace asked: that is not a truncation, so
// capture_truncated keeps meaning "bytes the capture limit cost us".
TEST(SocketEdge, MutedConnectionsAreNotCountedAsTruncated) {
  Subprocess echo({ZT_SOCKOPS, "echo", std::to_string(FreePort())});
  std::map<std::string, long> kv = ReadUntilConnected(echo);
  ASSERT_GT(kv["client_pid"], 0);
  probes::TracerConfig cfg;
  cfg.pids = {static_cast<uint32_t>(kv["client_pid"])};
  cfg.capture_bytes = 4;  // "muted" (5 bytes) is more than the capture limit
  TraceSession session(cfg);
  ASSERT_FALSE(::testing::Test::HasFailure());
  echo.WriteStdin("hi\n");  // within the limit; makes the connection known (found on first use)
  ASSERT_TRUE(echo.WaitForLine("echoed=2", seconds(10)));
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_UNKNOWN);
  WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_INGRESS, 2);
  const uint64_t truncated_before = Counter(session, ZT_CNT_CAPTURE_TRUNCATED);
  session.tracer().MutePayload(c.hdr.tgid, c.hdr.fd, c.hdr.conn_id);
  echo.WriteStdin("muted\nend\n");
  ASSERT_EQ(echo.Wait(seconds(10)), 0);
  const Record closed = CloseOf(session, c.hdr.conn_id);
  EXPECT_EQ(closed.close.sent_bytes, 7u);  // the totals ride on the close event
  EXPECT_EQ(closed.close.received_bytes, 7u);
  auto out = session.DataOf(kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS);
  auto in = session.DataOf(kv["client_pid"], c.hdr.conn_id, ZT_DIR_INGRESS);
  ASSERT_EQ(out.size(), 2u);  // a muted connection's first syscall always sends its record
  EXPECT_EQ(out[1].data.byte_count, 5u);
  EXPECT_EQ(out[1].data.captured, 0u);  // muted: sizes only
  // The echo's receive: its record only if a new second began (at most one a second).
  ASSERT_GE(in.size(), 1u);
  ASSERT_LE(in.size(), 2u);
  for (const Record& r : in) EXPECT_EQ(r.data.captured, r.data.syscall_pos == 0 ? 2u : 0u);
  EXPECT_EQ(Counter(session, ZT_CNT_CAPTURE_TRUNCATED), truncated_before);
}

// Issue 17: a muted connection's syscalls only advance its stream positions. At most one
// sizes-only record per connection and second keeps userspace's idle clock going (main sent
// one per syscall), the rest are counted, and the close event has the exact totals.
TEST(SocketEdge, MutedConnectionSendsAtMostOneRecordASecond) {
  Subprocess echo({ZT_SOCKOPS, "echo", std::to_string(FreePort())});
  std::map<std::string, long> kv = ReadUntilConnected(echo);
  ASSERT_GT(kv["client_pid"], 0);
  probes::TracerConfig cfg;
  cfg.pids = {static_cast<uint32_t>(kv["client_pid"])};
  TraceSession session(cfg);
  ASSERT_FALSE(::testing::Test::HasFailure());
  echo.WriteStdin("hi\n");  // makes the connection known (found on first use)
  ASSERT_TRUE(echo.WaitForLine("echoed=2", seconds(10)));
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_UNKNOWN);
  WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_INGRESS, 2);
  const uint64_t skipped_before = Counter(session, ZT_CNT_MUTED_RECORDS_SKIPPED);
  session.tracer().MutePayload(c.hdr.tgid, c.hdr.fd, c.hdr.conn_id);
  echo.WriteStdin("burst\n");  // 200 writes of 10 bytes, and the reads of their echo
  while (auto line = echo.ReadLine(seconds(10))) {
    for (const auto& [k, v] : ParseKv(*line)) kv.emplace(k, v);
    if (line->find("burst_writes") != std::string::npos) break;
  }
  ASSERT_EQ(kv["burst_writes"], 200);
  ASSERT_EQ(kv["burst_bytes"], 2000);
  echo.WriteStdin("end\n");
  ASSERT_EQ(echo.Wait(seconds(10)), 0);
  const Record closed = CloseOf(session, c.hdr.conn_id);
  EXPECT_EQ(closed.close.sent_bytes, 2002u);
  EXPECT_EQ(closed.close.received_bytes, 2002u);
  std::vector<Record> muted;
  for (const uint8_t dir : {ZT_DIR_EGRESS, ZT_DIR_INGRESS}) {
    for (const Record& r : session.DataOf(kv["client_pid"], c.hdr.conn_id, dir)) {
      if (r.data.syscall_pos >= 2) muted.push_back(r);
    }
  }
  // One record at the burst's first syscall, one more per second boundary it crossed.
  const uint64_t syscalls = kv["burst_writes"] + kv["burst_reads"];
  EXPECT_GE(muted.size(), 1u);
  EXPECT_LE(muted.size(), 2u + uint64_t(kv["burst_ns"]) / 1'000'000'000u) << syscalls;
  for (const Record& r : muted) {
    EXPECT_EQ(r.data.captured, 0u);  // sizes only
    EXPECT_EQ(r.data.stream_pos, r.data.syscall_pos + r.data.byte_count);
  }
  EXPECT_EQ(Counter(session, ZT_CNT_MUTED_RECORDS_SKIPPED) - skipped_before,
            syscalls - muted.size());
}

// A forked child that moves "hello" over a loopback connection to itself, then waits for
// `done` to close: its main thread's last receive is the accepted socket's. Async-signal-safe
// calls only (the test process has threads).
pid_t ForkReceiver(int ready[2], int done[2]) {
  const pid_t child = fork();
  if (child != 0) return child;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  close(ready[0]);
  close(done[1]);  // else its own copy would keep `done` open for ever
  const int ready_fd = ready[1], done_fd = done[0];
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  const int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd = socket(AF_INET, SOCK_STREAM, 0);
  char buf[8];
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
      connect(cfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    _exit(1);
  const int sfd = accept(lfd, nullptr, nullptr);
  if (sfd < 0 || write(cfd, "hello", 5) != 5 || read(sfd, buf, sizeof(buf)) != 5) _exit(1);
  if (write(ready_fd, "r", 1) != 1) _exit(1);
  read(done_fd, buf, 1);
  _exit(0);
}

// The thread-read evidence (which socket a thread last received on) binds TLS sessions over
// memory buffers; with --no-tls nothing reads it, so receives no longer write it.
TEST(SocketEdge, ReceivesKeepThreadReadEvidenceOnlyWithTls) {
  for (const bool tls : {true, false}) {
    SCOPED_TRACE(tls ? "tls on" : "--no-tls");
    probes::TracerConfig config;
    config.tls = tls;
    TraceSession session(config);
    ASSERT_FALSE(::testing::Test::HasFailure());
    int ready[2], done[2];
    ASSERT_EQ(pipe(ready), 0);
    ASSERT_EQ(pipe(done), 0);
    const pid_t child = ForkReceiver(ready, done);
    ASSERT_GT(child, 0);
    close(ready[1]);
    close(done[0]);
    char c = 0;
    const bool child_ready = read(ready[0], &c, 1) == 1;  // EOF if the child failed
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
    uint64_t value[8] = {};  // struct thread_read (32 bytes): conn_id first
    const int found =
        child_ready && pidfd >= 0
            ? bpf_map_lookup_elem(session.tracer().shared_maps().thread_reads, &pidfd, value)
            : -1;
    if (pidfd >= 0) close(pidfd);
    close(done[1]);
    close(ready[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(child_ready);
    ASSERT_GE(pidfd, 0);
    EXPECT_EQ(WEXITSTATUS(status), 0);
    if (tls) {
      EXPECT_EQ(found, 0);
      EXPECT_NE(value[0], 0u);  // the accepted connection's id
    } else {
      EXPECT_NE(found, 0);
    }
  }
}

}  // namespace
}  // namespace zerotrace::testing
