// Real kernel, real processes: each test triggers traffic and asserts the exact events.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "conn/conn_table.h"
#include "probes/preflight.h"
#include "subprocess.h"
#include "trace_asserts.h"
#include "trace_session.h"

namespace zerotrace::testing {
namespace {

using std::chrono::seconds;

constexpr const char* kPython = "/usr/bin/python3";

const Record* OpenWithRole(const std::vector<Record>& opens, uint8_t role, uint16_t port,
                           bool remote) {
  for (const auto& r : opens) {
    const uint16_t p = remote ? r.open.remote_port : r.open.local_port;
    if (r.open.role == role && p == port) return &r;
  }
  return nullptr;
}

// curl -> python http.server: both ends traced, tuples mirrored, roles and bytes exact.
TEST(SocketTrace, PythonServerAndCurlSeeMirroredExactBytes) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  TempDir dir;
  std::ofstream(dir.path() + "/hello.txt") << "hello from zerotrace\n";
  const int port = FreePort();
  Subprocess server({kPython, "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1",
                     "--directory", dir.path()});
  ASSERT_TRUE(WaitForListen(port, seconds(10)));
  Subprocess curl({"curl", "-sS", "-o", "/dev/null",
                   "http://127.0.0.1:" + std::to_string(port) + "/hello.txt"});
  ASSERT_EQ(curl.Wait(seconds(10)), 0);

  // The server closes its side after the response; wait for both ends' close events.
  ASSERT_TRUE(session.WaitUntil([&](const std::vector<Record>& rs) {
    int closes = 0;
    for (const auto& r : rs) {
      if (r.hdr.type == ZT_EV_CONN_CLOSE &&
          (r.hdr.tgid == static_cast<uint32_t>(curl.pid()) ||
           r.hdr.tgid == static_cast<uint32_t>(server.pid())) &&
          r.close.sent_bytes > 0)
        closes++;
    }
    return closes >= 2;
  }));

  const std::vector<Record> curl_opens = session.OpensOf(curl.pid());
  ASSERT_EQ(curl_opens.size(), 1u);
  const Record* c = OpenWithRole(curl_opens, ZT_ROLE_CLIENT, port, true);
  ASSERT_NE(c, nullptr) << "no client open event for curl";
  EXPECT_EQ(c->open.family, ZT_AF_INET);
  EXPECT_EQ(c->Tuple().RemoteEndpoint(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(std::string(c->open.comm), "curl");

  const Record* s = nullptr;
  const std::vector<Record> server_opens = session.OpensOf(server.pid());
  for (const auto& r : server_opens) {
    if (r.open.role == ZT_ROLE_SERVER && r.Tuple() == c->Tuple().Mirrored()) s = &r;
  }
  ASSERT_NE(s, nullptr) << "no server open event with the mirrored tuple";

  const std::string request =
      TraceSession::Reassemble(session.DataOf(curl.pid(), c->hdr.conn_id, ZT_DIR_EGRESS));
  const std::string response =
      TraceSession::Reassemble(session.DataOf(curl.pid(), c->hdr.conn_id, ZT_DIR_INGRESS));
  EXPECT_EQ(request.rfind(
                "GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n", 0),
            0u)
      << request;
  EXPECT_TRUE(request.ends_with("\r\n\r\n")) << request;
  EXPECT_EQ(response.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << response;
  EXPECT_TRUE(response.ends_with("\r\n\r\nhello from zerotrace\n")) << response;
  // The server received exactly what curl sent, and sent exactly what curl received.
  EXPECT_EQ(TraceSession::Reassemble(session.DataOf(server.pid(), s->hdr.conn_id, ZT_DIR_INGRESS)),
            request);
  EXPECT_EQ(TraceSession::Reassemble(session.DataOf(server.pid(), s->hdr.conn_id, ZT_DIR_EGRESS)),
            response);

  auto closes = session.Select([&](const Record& r) {
    return r.hdr.type == ZT_EV_CONN_CLOSE && r.hdr.conn_id == c->hdr.conn_id;
  });
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].close.sent_bytes, request.size());
  EXPECT_EQ(closes[0].close.received_bytes, response.size());
}

TEST(SocketTrace, WritevAndReadvChunksLandAtTheirStreamPositions) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto kv = RunSockops({"writev", std::to_string(FreePort())});
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_SERVER);
  auto out = WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 16);
  EXPECT_EQ(Chunks(out), (std::vector<Chunk>{{0, "alpha-"}, {6, "beta-"}, {11, "gamma"}}));
  for (const auto& r : out) {
    EXPECT_EQ(r.data.syscall, ZT_SYS_WRITEV);
    EXPECT_EQ(r.data.byte_count, 16u);
    EXPECT_EQ(r.data.syscall_pos, 0u);
  }
  auto in = WaitData(session, kv["server_pid"], s.hdr.conn_id, ZT_DIR_INGRESS, 16);
  EXPECT_EQ(Chunks(in), (std::vector<Chunk>{{0, "alpha"}, {5, "-beta"}, {10, "-gamma"}}));
  EXPECT_EQ(in[0].data.syscall, ZT_SYS_READV);
  EXPECT_EQ(TraceSession::Reassemble(
                WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_INGRESS, 2)),
            "ok");
}

TEST(SocketTrace, SendmsgAndRecvmsgIovecs) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto kv = RunSockops({"sendmsg", std::to_string(FreePort())});
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_SERVER);
  auto out = WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 16);
  EXPECT_EQ(Chunks(out), (std::vector<Chunk>{{0, "alpha-"}, {6, "beta-"}, {11, "gamma"}}));
  EXPECT_EQ(out[0].data.syscall, ZT_SYS_SENDMSG);
  auto in = WaitData(session, kv["server_pid"], s.hdr.conn_id, ZT_DIR_INGRESS, 16);
  EXPECT_EQ(Chunks(in), (std::vector<Chunk>{{0, "alpha"}, {5, "-beta"}, {10, "-gamma"}}));
  EXPECT_EQ(in[0].data.syscall, ZT_SYS_RECVMSG);
}

// 200 iovecs in one sendmsg (python grpcio batches calls so): every byte is captured at its
// position; none became a gap (iov_overflow).
TEST(SocketTrace, SendmsgWithHundredsOfIovecsLosesNothing) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  const uint64_t overflows_before = session.tracer().ReadCounters()[ZT_CNT_IOV_OVERFLOW];
  auto kv = RunSockops({"manyiov", std::to_string(FreePort())});
  ASSERT_EQ(kv["client_sendmsg"], 600);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  auto out = WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 600);
  std::string want;
  for (int i = 0; i < 200; i++) want += std::to_string(1000 + i).substr(1);
  uint64_t gap = 0;
  EXPECT_EQ(TraceSession::Reassemble(out, &gap), want);
  EXPECT_EQ(gap, 0u);
  for (const auto& r : out) EXPECT_EQ(r.data.byte_count, 600u);
  EXPECT_EQ(session.tracer().ReadCounters()[ZT_CNT_IOV_OVERFLOW], overflows_before);
}

TEST(SocketTrace, SendmmsgAndRecvmmsgEveryMessage) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto kv = RunSockops({"mmsg", std::to_string(FreePort())});
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_SERVER);
  auto out = WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 11);
  EXPECT_EQ(Chunks(out), (std::vector<Chunk>{{0, "one"}, {3, "two"}, {6, "three"}}));
  EXPECT_EQ(out[0].data.syscall, ZT_SYS_SENDMMSG);
  EXPECT_EQ(out[0].data.byte_count, 11u);
  auto in = WaitData(session, kv["server_pid"], s.hdr.conn_id, ZT_DIR_INGRESS, 11);
  EXPECT_EQ(TraceSession::Reassemble(in), "onetwothree");
  EXPECT_EQ(in[0].data.syscall, ZT_SYS_RECVMMSG);
}

TEST(SocketTrace, NonblockingEagainEmitsNothing) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto kv = RunSockops({"nonblock", std::to_string(FreePort())});
  ASSERT_EQ(kv["eagain"], 1);
  ASSERT_EQ(kv["einprogress"], 1);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  auto in = WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_INGRESS, 4);
  // Exactly one ingress record: the successful read of "late"; the EAGAIN read left no trace.
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].payload, "late");
  EXPECT_EQ(in[0].data.stream_pos, 0u);
}

TEST(SocketTrace, UdpProducesNothing) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto kv = RunSockops({"udp", std::to_string(FreePort())});
  ASSERT_GT(kv["client_pid"], 0);
  // Both processes have exited (their exit events arrived): everything they did is in.
  ASSERT_TRUE(session.WaitUntil([&](const std::vector<Record>& rs) {
    int exits = 0;
    for (const auto& r : rs) {
      if (r.hdr.type == ZT_EV_PROC_EXIT &&
          (r.hdr.tgid == uint32_t(kv["client_pid"]) || r.hdr.tgid == uint32_t(kv["server_pid"])))
        exits++;
    }
    return exits == 2;
  }));
  auto socket_records = session.Select([&](const Record& r) {
    return (r.hdr.tgid == uint32_t(kv["client_pid"]) || r.hdr.tgid == uint32_t(kv["server_pid"])) &&
           r.hdr.conn_id != 0;
  });
  EXPECT_TRUE(socket_records.empty()) << socket_records.size() << " records for UDP traffic";
}

TEST(SocketTrace, FdReuseStartsNewGeneration) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto kv = RunSockops({"fdreuse", std::to_string(FreePort())});
  ASSERT_EQ(kv["reused"], 1);
  const long pid = kv["client_pid"];
  std::vector<Record> opens;
  ASSERT_TRUE(session.WaitUntil([&](const std::vector<Record>&) {
    opens = session.OpensOf(pid);
    return opens.size() >= 2;
  }));
  ASSERT_EQ(opens.size(), 2u);
  EXPECT_EQ(opens[0].hdr.fd, opens[1].hdr.fd);
  EXPECT_NE(opens[0].hdr.conn_id, opens[1].hdr.conn_id);
  EXPECT_EQ(
      TraceSession::Reassemble(WaitData(session, pid, opens[0].hdr.conn_id, ZT_DIR_EGRESS, 5)),
      "first");
  EXPECT_EQ(
      TraceSession::Reassemble(WaitData(session, pid, opens[1].hdr.conn_id, ZT_DIR_EGRESS, 6)),
      "second");
  // The first generation was closed before the second opened.
  auto closes = session.Select([&](const Record& r) {
    return r.hdr.type == ZT_EV_CONN_CLOSE && r.hdr.conn_id == opens[0].hdr.conn_id;
  });
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_LT(closes[0].hdr.ts_ns, opens[1].hdr.ts_ns);
  EXPECT_EQ(closes[0].close.sent_bytes, 5u);
}

TEST(SocketTrace, Ipv6LoopbackTuple) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  const int port = FreePort();
  auto kv = RunSockops({"ipv6", std::to_string(port)});
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  EXPECT_EQ(c.open.family, ZT_AF_INET6);
  EXPECT_EQ(c.Tuple().RemoteEndpoint(), "[::1]:" + std::to_string(port));
  EXPECT_EQ(c.Tuple().LocalEndpoint(), "[::1]:" + std::to_string(kv["client_port"]));
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_SERVER);
  EXPECT_EQ(s.Tuple(), c.Tuple().Mirrored());
  EXPECT_EQ(TraceSession::Reassemble(
                WaitData(session, kv["server_pid"], s.hdr.conn_id, ZT_DIR_INGRESS, 16)),
            "alpha-beta-gamma");
}

TEST(SocketTrace, V4MappedPeerOnDualStackServer) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  const int port = FreePort();
  auto kv = RunSockops({"v4mapped", std::to_string(port)});
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  EXPECT_EQ(c.open.family, ZT_AF_INET);
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_SERVER);
  EXPECT_EQ(s.open.family, ZT_AF_INET6);
  // The server's socket is IPv6 with v4-mapped addresses; they print as the IPv4 peer.
  EXPECT_EQ(s.Tuple().RemoteEndpoint(), "127.0.0.1:" + std::to_string(kv["client_port"]));
  EXPECT_EQ(s.Tuple().LocalEndpoint(), "127.0.0.1:" + std::to_string(port));
}

TEST(SocketTrace, PayloadBiggerThanCaptureLimitLeavesExactGap) {
  probes::TracerConfig cfg;
  cfg.capture_bytes = 16384;
  TraceSession session(cfg);
  ASSERT_FALSE(::testing::Test::HasFailure());
  constexpr uint64_t kBytes = 100000;
  auto kv = RunSockops({"big", std::to_string(FreePort()), std::to_string(kBytes)});
  ASSERT_EQ(kv["client_write_calls"], 1);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  auto out = WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, kBytes);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0].data.byte_count, kBytes);
  uint64_t gap = 0;
  const std::string got = TraceSession::Reassemble(out, &gap);
  ASSERT_EQ(got.size(), 16384u);
  EXPECT_EQ(gap, kBytes - 16384);
  for (size_t i = 0; i < got.size(); i++) {
    ASSERT_EQ(got[i], char('a' + i % 26)) << "byte " << i;
  }
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_SERVER);
  auto in = WaitData(session, kv["server_pid"], s.hdr.conn_id, ZT_DIR_INGRESS, kBytes);
  uint64_t in_gap = 0;
  const std::string in_got = TraceSession::Reassemble(in, &in_gap);
  EXPECT_EQ(in_got.size() + in_gap, kBytes);
}

TEST(SocketTrace, ConnectionOpenedBeforeTheAgentIsDiscoveredOnFirstUse) {
  const int port = FreePort();
  Subprocess hold({ZT_SOCKOPS, "hold", std::to_string(port)});
  std::map<std::string, long> kv = ReadUntilConnected(hold);
  ASSERT_GT(kv["client_pid"], 0);
  TraceSession session;  // starts after the connection exists
  ASSERT_FALSE(::testing::Test::HasFailure());
  hold.WriteStdin("go\n");
  ASSERT_EQ(hold.Wait(seconds(10)), 0);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_UNKNOWN);
  EXPECT_TRUE(c.open.flags & ZT_CONN_F_PREEXISTING);
  EXPECT_EQ(c.Tuple().RemoteEndpoint(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(c.Tuple().LocalEndpoint(), "127.0.0.1:" + std::to_string(kv["client_port"]));
  // Positions count from discovery: "before" was sent earlier and is not part of the stream.
  auto out = WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 5);
  EXPECT_EQ(Chunks(out), (std::vector<Chunk>{{0, "after"}}));
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_UNKNOWN);
  EXPECT_EQ(s.Tuple(), c.Tuple().Mirrored());
}

TEST(SocketTrace, ProcessExitingMidConnectionLeavesNoState) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  auto kv = RunSockops({"die", std::to_string(FreePort())});
  const long pid = kv["client_pid"];
  const Record c = OneOpen(session, pid, ZT_ROLE_CLIENT);
  ASSERT_TRUE(session.WaitUntil([&](const std::vector<Record>& rs) {
    for (const auto& r : rs) {
      if (r.hdr.type == ZT_EV_PROC_EXIT && r.hdr.tgid == uint32_t(pid)) return true;
    }
    return false;
  }));
  // No close() ran: the kernel still holds the entry until userspace frees it on exit.
  struct KernelForget : conn::KernelConnState {
    probes::SocketTracer* t;
    void Forget(uint32_t tgid, uint32_t fd) override { t->ForgetConnection(tgid, fd); }
  } forget;
  forget.t = &session.tracer();
  conn::ConnTable table({}, nullptr, &forget, nullptr);
  for (const auto& r :
       session.Select([&](const Record& r) { return r.hdr.tgid == uint32_t(pid); })) {
    probes::EventView v;
    v.type = r.hdr.type;
    v.header = &r.hdr;
    if (r.hdr.type == ZT_EV_CONN_OPEN) v.open = &r.open;
    if (r.hdr.type == ZT_EV_CONN_CLOSE) v.close = &r.close;
    if (r.hdr.type == ZT_EV_DATA) {
      v.data = &r.data;
      v.payload = r.payload;
    }
    if (r.hdr.type == ZT_EV_PROC_EXIT || r.hdr.type == ZT_EV_PROC_EXEC) v.proc = &r.proc;
    if (r.hdr.type == ZT_EV_CONN_OPEN) {
      table.OnEvent(v);
      EXPECT_EQ(table.ConnectionsOf(pid), 1u);
      continue;
    }
    table.OnEvent(v);
  }
  EXPECT_EQ(table.ConnectionsOf(pid), 0u);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(session.tracer().KernelConnections(pid), 0u);
  EXPECT_EQ(c.hdr.conn_id != 0, true);
}

TEST(SocketTrace, MutedConnectionSendsOnlyByteCounts) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  Subprocess hold({ZT_SOCKOPS, "hold", std::to_string(FreePort())});
  std::map<std::string, long> kv = ReadUntilConnected(hold);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_CLIENT);
  ASSERT_EQ(TraceSession::Reassemble(
                WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 6)),
            "before");
  session.tracer().MutePayload(c.hdr.tgid, c.hdr.fd, c.hdr.conn_id);
  hold.WriteStdin("go\n");
  ASSERT_EQ(hold.Wait(seconds(10)), 0);
  auto out = WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 11);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].data.syscall_pos, 6u);
  EXPECT_EQ(out[1].data.byte_count, 5u);
  EXPECT_EQ(out[1].data.captured, 0u);  // sizes only
  // Its totals ride on the close event (issue 17: muted syscalls send few records).
  std::vector<Record> closes;
  session.WaitUntil([&](const std::vector<Record>&) {
    closes = session.Select([&](const Record& r) {
      return r.hdr.type == ZT_EV_CONN_CLOSE && r.hdr.conn_id == c.hdr.conn_id;
    });
    return !closes.empty();
  });
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].close.sent_bytes, 11u);
  EXPECT_EQ(closes[0].close.received_bytes, 11u);
  // The other end was not muted: it still sees the bytes.
  const Record s = OneOpen(session, kv["server_pid"], ZT_ROLE_SERVER);
  EXPECT_EQ(TraceSession::Reassemble(
                WaitData(session, kv["server_pid"], s.hdr.conn_id, ZT_DIR_INGRESS, 11)),
            "beforeafter");
}

// The socket tracer on this process alone, delivering to `sink`; nothing polls it.
StatusOr<std::unique_ptr<probes::SocketTracer>> TraceThisProcess(probes::RecordSink* sink,
                                                                 uint32_t ringbuf_bytes) {
  probes::PreflightReport report;
  if (Status s = probes::Preflight(&report); !s.ok()) return s;
  probes::TracerConfig config;
  config.pids = {static_cast<uint32_t>(getpid())};
  config.ringbuf_bytes = ringbuf_bytes;
  std::vector<std::string> notes;
  return probes::SocketTracer::Start(config, report.tracefs, sink, &notes);
}

// A connected loopback TCP pair in this process: {listener, client, server}; server < 0 if
// it failed.
std::array<int, 3> LoopbackPair() {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return {listener, -1, -1};
  }
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    return {listener, client, -1};
  return {listener, client, accept(listener, nullptr, nullptr)};
}

// Under overload the ring buffer never empties: a Poll hands over at most its budget and says
// so, and the agent's loop gets control back (signals, timers) instead of consuming forever.
TEST(SocketTrace, PollStopsAtItsBudgetAndSaysWhetherItDrained) {
  struct CountingSink : probes::RecordSink {
    size_t records = 0;
    void OnRecord(const void*, size_t) override { records++; }
  } sink;
  auto started = TraceThisProcess(&sink, 8u << 20);
  ASSERT_TRUE(started.ok()) << started.status().message();
  probes::SocketTracer& tracer = *started.value();
  // A loopback connection in this process; nothing polls while its records pile up.
  const auto [listener, client, server] = LoopbackPair();
  ASSERT_GE(server, 0);
  constexpr int kBudget = probes::SocketTracer::kMaxRecordsPerPoll;
  char byte = 'x';
  for (int i = 0; i < kBudget; i++) {  // two data records each
    ASSERT_EQ(write(client, &byte, 1), 1);
    ASSERT_EQ(read(server, &byte, 1), 1);
  }
  close(server);
  close(client);
  close(listener);

  EXPECT_EQ(tracer.Poll(0), kBudget);
  EXPECT_FALSE(tracer.drained());
  EXPECT_GT(tracer.newest_record_ns(), 0u);
  for (int i = 0; i < 100 && !tracer.drained(); i++) tracer.Poll(0);
  EXPECT_TRUE(tracer.drained());
  EXPECT_GE(sink.records, 2u * kBudget);
}

// A close that finds the ring buffer full is kept aside in the kernel and delivered once the
// ring buffer has been emptied, with the final stream lengths: the connection does not
// outlive its close in userspace.
TEST(SocketTrace, CloseThatFoundTheRingBufferFullIsDeliveredAfterIt) {
  struct CloseSink : probes::RecordSink {
    size_t records = 0;
    std::vector<zt_conn_close> closes;
    void OnRecord(const void* data, size_t size) override {
      records++;
      if (size >= sizeof(zt_conn_close) &&
          static_cast<const zt_event_header*>(data)->type == ZT_EV_CONN_CLOSE) {
        closes.push_back(*static_cast<const zt_conn_close*>(data));
      }
    }
  } sink;
  auto started = TraceThisProcess(&sink, 4096);
  ASSERT_TRUE(started.ok()) << started.status().message();
  probes::SocketTracer& tracer = *started.value();
  const auto [listener, client, server] = LoopbackPair();
  ASSERT_GE(server, 0);
  // Nothing polls: the records fill the 4 KiB ring buffer until reservations fail.
  const uint64_t failed_before = tracer.ReadCounters()[ZT_CNT_RINGBUF_RESERVE_FAILED];
  uint64_t moved = 0;
  char byte = 'x';
  while (tracer.ReadCounters()[ZT_CNT_RINGBUF_RESERVE_FAILED] == failed_before) {
    ASSERT_EQ(write(client, &byte, 1), 1);
    ASSERT_EQ(read(server, &byte, 1), 1);
    ASSERT_LT(++moved, 100000u) << "the ring buffer never filled";
  }
  close(server);
  close(client);
  close(listener);
  EXPECT_TRUE(sink.closes.empty());

  for (int i = 0; i < 100 && (sink.records == 0 || !tracer.drained()); i++) tracer.Poll(0);
  ASSERT_EQ(sink.closes.size(), 2u) << "records delivered: " << sink.records;
  std::vector<std::pair<uint64_t, uint64_t>> lengths;  // (sent, received) of client and server
  for (const zt_conn_close& c : sink.closes) {
    EXPECT_EQ(c.hdr.tgid, static_cast<uint32_t>(getpid()));
    lengths.emplace_back(c.sent_bytes, c.received_bytes);
  }
  std::sort(lengths.begin(), lengths.end());
  EXPECT_EQ(lengths, (std::vector<std::pair<uint64_t, uint64_t>>{{0, moved}, {moved, 0}}));
  EXPECT_EQ(tracer.Poll(0), 0);  // each close is delivered once
}

TEST(SocketTrace, PidFilterTracesOnlyTheSelectedProcess) {
  Subprocess hold({ZT_SOCKOPS, "hold", std::to_string(FreePort())});
  std::map<std::string, long> kv = ReadUntilConnected(hold);
  ASSERT_GT(kv["client_pid"], 0);
  probes::TracerConfig cfg;
  cfg.pids = {static_cast<uint32_t>(kv["client_pid"])};
  TraceSession session(cfg);
  ASSERT_FALSE(::testing::Test::HasFailure());
  hold.WriteStdin("go\n");
  ASSERT_EQ(hold.Wait(seconds(10)), 0);
  const Record c = OneOpen(session, kv["client_pid"], ZT_ROLE_UNKNOWN);
  EXPECT_EQ(TraceSession::Reassemble(
                WaitData(session, kv["client_pid"], c.hdr.conn_id, ZT_DIR_EGRESS, 5)),
            "after");
  // The server echoed "after" too, but it is not selected: nothing of it, nor of any other
  // process, was recorded.
  auto others = session.Select(
      [&](const Record& r) { return r.hdr.tgid != static_cast<uint32_t>(kv["client_pid"]); });
  EXPECT_TRUE(others.empty()) << others.size() << " records of other processes, first pid "
                              << others[0].hdr.tgid;
}

// The CLI: --dump-events prints the traffic readably; SIGTERM exits 0 promptly.
TEST(SocketTrace, DumpEventsCliPrintsTrafficAndExitsOnSigterm) {
  Subprocess agent({"/bin/sh", "-c", std::string("exec ") + ZT_AGENT + " --dump-events 2>&1"});
  ASSERT_TRUE(agent.WaitForLine("tracing every process", seconds(30)));
  auto kv = RunSockops({"writev", std::to_string(FreePort())});
  const std::string pid = "pid=" + std::to_string(kv["client_pid"]) + " ";
  std::optional<std::string> line;
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    line = agent.ReadLine(seconds(10));
    if (!line ||
        (line->find(pid) != std::string::npos && line->find(" DATA ") != std::string::npos))
      break;
  }
  ASSERT_TRUE(line.has_value());
  EXPECT_NE(line->find("comm=zt_sockops"), std::string::npos) << *line;
  EXPECT_NE(line->find("role=client 127.0.0.1:" + std::to_string(kv["client_port"])),
            std::string::npos)
      << *line;
  EXPECT_NE(line->find("egress writev pos=0 syscall_pos=0 bytes=16 captured=6 \"alpha-\""),
            std::string::npos)
      << *line;
  const auto t0 = std::chrono::steady_clock::now();
  kill(agent.pid(), SIGTERM);
  // Keep reading until it closes its output: on a busy machine it prints other processes'
  // traffic too, and a pipe nobody reads would hold it in write() instead of exiting.
  while (std::chrono::steady_clock::now() - t0 < seconds(5) && agent.ReadLine(seconds(5))) {
  }
  EXPECT_EQ(agent.Wait(seconds(5)), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(2));
}

// An agent whose stdout is a pipe nobody reads blocks in write(); SIGTERM must still end it:
// the stop watchdog exits with status 1 and says why on stderr.
TEST(SocketTrace, AgentWhoseOutputNobodyReadsStillExitsOnSigterm) {
  TempDir dir;
  const std::string err = dir.path() + "/stderr";
  Subprocess agent({"/bin/sh", "-c", std::string("exec ") + ZT_AGENT + " --dump-events 2>" + err});
  auto started = [&] {
    std::ifstream f(err);
    std::stringstream text;
    text << f.rdbuf();
    return text.str();
  };
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (started().find("tracing every process") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(started().find("tracing every process"), std::string::npos) << started();

  // Traffic of our own: 3000 small writes over loopback print far more than a pipe holds.
  const int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  ASSERT_EQ(listen(lfd, 1), 0);
  const int cfd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(cfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const int sfd = accept(lfd, nullptr, nullptr);
  ASSERT_GE(sfd, 0);
  char buf[64] = "0123456789abcdef";
  for (int i = 0; i < 3000; i++) {
    ASSERT_EQ(write(cfd, buf, 16), 16);
    ASSERT_EQ(read(sfd, buf, 16), 16);
  }
  close(cfd);
  close(sfd);
  close(lfd);

  const auto t0 = std::chrono::steady_clock::now();
  kill(agent.pid(), SIGTERM);
  EXPECT_EQ(agent.Wait(seconds(30)), 1);
  EXPECT_NE(started().find("still stopping 7500 ms"), std::string::npos) << started();
  // The budget is 7.5 s (the 1.5 s flush timeout, the 1 s ring-buffer drain limit, and 5 s);
  // tearing down the programs of a process that exits takes the kernel some more (seconds
  // under load), which the deadline above allows for.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(7500));
}

}  // namespace
}  // namespace zerotrace::testing

namespace zerotrace::testing {
namespace {

// Start-up errors are clear and non-zero: no privileges, bad flags, an unwritable output.
TEST(AgentCli, StartupErrorsAreActionable) {
  struct Case {
    std::vector<std::string> argv;
    int want_status;
    std::string want_text;
  } cases[] = {
      {{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ZT_AGENT, "--duration", "1"},
       1,
       "root is required"},
      {{ZT_AGENT, "--capture-bytes", "999999"}, 2, "--capture-bytes"},
      {{ZT_AGENT, "--ringbuf-bytes", "12345", "--duration", "1"}, 2, "power of two"},
      {{ZT_AGENT, "--jsonl", "/nonexistent-dir/x.jsonl"}, 2, "/nonexistent-dir/x.jsonl"},
      {{ZT_AGENT, "--no-such-flag"}, 2, "--no-such-flag"},
  };
  for (const auto& c : cases) {
    std::string cmd = "exec";
    for (const auto& a : c.argv) cmd += " '" + a + "'";
    Subprocess p({"/bin/sh", "-c", cmd + " 2>&1"});
    std::string out;
    while (auto line = p.ReadLine(std::chrono::seconds(20))) out += *line + "\n";
    EXPECT_EQ(p.Wait(std::chrono::seconds(20)), c.want_status) << cmd << "\n" << out;
    EXPECT_NE(out.find(c.want_text), std::string::npos) << cmd << "\n" << out;
  }
}

}  // namespace
}  // namespace zerotrace::testing
