// ConnTable on synthetic records: lifecycle, gaps from trailers, exit cleanup, caps.
#include "conn/conn_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <deque>
#include <vector>

#include "kernel_records.h"

namespace zerotrace::conn {
namespace {

// Records the way the kernel writes them (tests/testing/kernel_records.h), decoded into views
// that stay valid as long as this object.
class Records {
 public:
  probes::EventView Open(uint64_t conn, uint32_t tgid, uint32_t fd, uint8_t role, uint64_t ts = 1,
                         uint8_t flags = 0) {
    testing::ConnSpec spec = Spec(conn, tgid, fd, role);
    spec.flags = flags;
    return View(testing::OpenRecord(spec, ts));
  }
  probes::EventView Data(uint64_t conn, uint32_t tgid, uint8_t dir, uint64_t syscall_pos,
                         uint64_t stream_pos, uint32_t byte_count, const std::string& bytes,
                         uint64_t ts = 2, uint8_t flags = 0) {
    testing::Record rec = testing::DataRecord(Spec(conn, tgid, 3, ZT_ROLE_CLIENT), dir, syscall_pos,
                                              stream_pos, byte_count, bytes, ts);
    rec[offsetof(zt_data_event, flags)] = flags;
    return View(std::move(rec));
  }
  probes::EventView Close(uint64_t conn, uint32_t tgid, uint8_t reason = ZT_CLOSE_SYSCALL,
                          uint64_t sent = 0, uint64_t received = 0, uint8_t flags = 0) {
    return View(testing::CloseRecord(Spec(conn, tgid, 3, ZT_ROLE_CLIENT), sent, received, 3, reason,
                                     flags));
  }
  // ZT_EV_CTX: the kernel inserted a traceparent into a request thread tid sent from
  // 127.0.0.0:local_port to 127.0.0.0:80.
  probes::EventView Ctx(uint32_t tgid, uint32_t tid, uint16_t local_port, uint8_t span_byte) {
    zt_ctx_event ev{};
    ev.hdr.type = ZT_EV_CTX;
    ev.hdr.tgid = tgid;
    ev.hdr.tid = tid;
    ev.local_ip = ev.remote_ip = 0x7f000000;
    ev.local_port = local_port;
    ev.remote_port = 80;
    ev.trace_id[0] = 0xab;
    ev.span_id[7] = span_byte;
    testing::Record rec(sizeof(ev));
    std::memcpy(rec.data(), &ev, sizeof(ev));
    return View(std::move(rec));
  }
  probes::EventView Exit(uint32_t tgid) {
    return View(testing::ProcRecord(ZT_EV_PROC_EXIT, tgid, 4));
  }

 private:
  static testing::ConnSpec Spec(uint64_t conn, uint32_t tgid, uint32_t fd, uint8_t role) {
    testing::ConnSpec spec;
    spec.conn_id = conn;
    spec.tgid = tgid;
    spec.fd = fd;
    spec.role = role;
    spec.local_port = 40000;
    spec.remote_port = 80;
    std::fill(std::begin(spec.local_addr), std::end(spec.local_addr), 0);
    std::fill(std::begin(spec.remote_addr), std::end(spec.remote_addr), 0);
    spec.local_addr[0] = spec.remote_addr[0] = 127;
    spec.comm = "curl";
    return spec;
  }
  probes::EventView View(testing::Record r) {
    const testing::Record& kept = records_.emplace_back(std::move(r));
    probes::EventView v;
    EXPECT_EQ(probes::DecodeEvent(kept.data(), kept.size(), &v), probes::DecodeError::kNone);
    return v;
  }
  std::deque<testing::Record> records_;  // a deque keeps them in place while views point in
};

struct Recorder : ConnObserver {
  std::vector<std::string> log;
  std::string last_front;  // received stream front at close
  void OnOpen(Connection& c) override { log.push_back("open " + std::to_string(c.conn_id)); }
  void OnData(Connection& c, const DataChunk& chunk) override {
    const uint8_t dir = chunk.direction;
    log.push_back("data " + std::to_string(c.conn_id) + (dir == ZT_DIR_EGRESS ? " out" : " in"));
  }
  void OnClose(Connection& c, CloseCause cause) override {
    log.push_back("close " + std::to_string(c.conn_id) + " " + CloseCauseName(cause));
  }
};

struct ForgetLog : KernelConnState {
  std::vector<std::pair<uint32_t, uint32_t>> forgotten;
  void Forget(uint32_t tgid, uint32_t fd) override { forgotten.emplace_back(tgid, fd); }
};

TEST(ConnTable, OpenDataCloseFreesState) {
  Records r;
  Recorder obs;
  ConnTable t({}, &obs, nullptr, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_CLIENT));
  t.OnEvent(r.Data(1, 100, ZT_DIR_EGRESS, 0, 0, 4, "GET "));
  Connection* c = t.Find(1);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->role, ZT_ROLE_CLIENT);
  EXPECT_EQ(c->comm, "curl");
  EXPECT_EQ(c->tuple.RemoteEndpoint(), "127.0.0.0:80");
  EXPECT_EQ(c->sent.Peek().data, "GET ");
  t.OnEvent(r.Close(1, 100));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.ConnectionsOf(100), 0u);
  EXPECT_EQ(obs.log, (std::vector<std::string>{"open 1", "data 1 out", "close 1 close"}));
}

TEST(ConnTable, InsertedContextGoesToTheConnectionWithItsTupleInItsProcess) {
  Records r;
  ConnTable t({}, nullptr, nullptr, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_CLIENT));
  t.OnEvent(r.Open(2, 200, 3, ZT_ROLE_CLIENT));  // the same tuple in another process
  t.OnEvent(r.Ctx(100, 101, 40000, 7));
  ASSERT_TRUE(t.Find(1)->ctx_call.has_value());
  EXPECT_EQ(t.Find(1)->ctx_call->tid, 101u);
  EXPECT_EQ(t.Find(1)->ctx_call->trace_id[0], 0xab);
  EXPECT_EQ(t.Find(1)->ctx_call->span_id[7], 7);
  EXPECT_FALSE(t.Find(2)->ctx_call.has_value());
  t.OnEvent(r.Ctx(100, 101, 40001, 8));  // no such connection: dropped, counted
  t.OnEvent(r.Ctx(300, 301, 40000, 9));  // no such process
  EXPECT_EQ(t.stats().ctx_unknown_conn, 2u);
  EXPECT_EQ(t.Find(1)->ctx_call->span_id[7], 7);
}

TEST(ConnTable, TrailerTurnsUncapturedBytesIntoGap) {
  Records r;
  ConnTable t({}, nullptr, nullptr, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_SERVER));
  // One 100-byte read: 10 bytes captured, then the trailer.
  t.OnEvent(r.Data(1, 100, ZT_DIR_INGRESS, 0, 0, 100, "0123456789"));
  t.OnEvent(r.Data(1, 100, ZT_DIR_INGRESS, 0, 100, 100, ""));
  t.OnEvent(r.Data(1, 100, ZT_DIR_INGRESS, 100, 100, 3, "abc"));
  ByteStream& s = t.Find(1)->received;
  EXPECT_EQ(s.Peek().data, "0123456789");
  s.Consume(10);
  EXPECT_EQ(s.Peek().gap, 90u);
  s.Consume(90);
  EXPECT_EQ(s.Peek().data, "abc");
  // The table's streams count into its stats.
  EXPECT_EQ(t.stats().streams.gaps, 1u);
  EXPECT_EQ(t.stats().streams.gap_bytes, 90u);
  EXPECT_EQ(t.stats().streams.bytes_added, 13u);
}

// Observes the received stream as the close leaves it.
struct TailRecorder : ConnObserver {
  std::vector<std::pair<std::string, uint64_t>> received;  // (data or "gap", size) in order
  void OnClose(Connection& c, CloseCause) override {
    for (auto f = c.received.Peek(); f.gap > 0 || !f.data.empty(); f = c.received.Peek()) {
      const uint64_t n = f.gap > 0 ? f.gap : f.data.size();
      received.emplace_back(f.gap > 0 ? "gap" : std::string(f.data), n);
      c.received.Consume(n);
    }
  }
};

TEST(ConnTable, BytesCountedAtCloseButNeverDeliveredBecomeAGap) {
  Records r;
  TailRecorder obs;
  ConnTable t({}, &obs, nullptr, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_CLIENT));
  t.OnEvent(r.Data(1, 100, ZT_DIR_INGRESS, 0, 0, 3, "abc"));
  t.OnEvent(r.Close(1, 100, ZT_CLOSE_SYSCALL, 0, 10));  // 7 more bytes were received
  EXPECT_EQ(obs.received, (std::vector<std::pair<std::string, uint64_t>>{{"abc", 3}, {"gap", 7}}));
  EXPECT_EQ(t.stats().tail_lost_at_close, 1u);

  // Lengths of the other kind of stream (TLS plaintext vs socket bytes) say nothing here.
  obs.received.clear();
  t.OnEvent(r.Open(2, 100, 4, ZT_ROLE_CLIENT));
  t.OnEvent(r.Data(2, 100, ZT_DIR_INGRESS, 0, 0, 3, "abc"));
  t.OnEvent(r.Close(2, 100, ZT_CLOSE_SYSCALL, 0, 10, ZT_CLOSE_F_TLS));
  EXPECT_EQ(obs.received, (std::vector<std::pair<std::string, uint64_t>>{{"abc", 3}}));
  EXPECT_EQ(t.stats().tail_lost_at_close, 1u);
}

TEST(ConnTable, MissingChunkInsideSyscallBecomesGap) {
  Records r;
  ConnTable t({}, nullptr, nullptr, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_SERVER));
  // writev of 3 iovecs where the middle one was not captured.
  t.OnEvent(r.Data(1, 100, ZT_DIR_EGRESS, 0, 0, 9, "abc"));
  t.OnEvent(r.Data(1, 100, ZT_DIR_EGRESS, 0, 6, 9, "ghi"));
  ByteStream& s = t.Find(1)->sent;
  EXPECT_EQ(s.Peek().data, "abc");
  s.Consume(3);
  EXPECT_EQ(s.Peek().gap, 3u);
  s.Consume(3);
  EXPECT_EQ(s.Peek().data, "ghi");
}

TEST(ConnTable, RestGapFlagEndsTheSyscallWithAGapAndNoTrailer) {
  Records r;
  ConnTable t({}, nullptr, nullptr, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_SERVER));
  // writev [head, body]: the kernel copied the 4-byte head and skipped the 6-byte body; no
  // trailer follows, so the gap is known at once (before the next syscall).
  t.OnEvent(r.Data(1, 100, ZT_DIR_EGRESS, 0, 0, 10, "head", 2, ZT_DATA_REST_GAP));
  ByteStream& s = t.Find(1)->sent;
  EXPECT_EQ(s.end_pos(), 10u);
  EXPECT_EQ(s.Peek().data, "head");
  s.Consume(4);
  EXPECT_EQ(s.Peek().gap, 6u);
  s.Consume(6);
  t.OnEvent(r.Data(1, 100, ZT_DIR_EGRESS, 10, 10, 3, "abc"));
  EXPECT_EQ(s.Peek().data, "abc");
  // The body was skipped on purpose: counted as a skip, not as a gap (a loss).
  EXPECT_EQ(t.stats().streams.skips, 1u);
  EXPECT_EQ(t.stats().streams.skipped_bytes, 6u);
  EXPECT_EQ(t.stats().streams.gaps, 0u);
  EXPECT_EQ(t.stats().streams.gap_bytes, 0u);
  // Bytes of a syscall that are neither captured nor flagged stay gaps: a trailer's.
  t.OnEvent(r.Data(1, 100, ZT_DIR_EGRESS, 13, 13, 5, "de"));
  t.OnEvent(r.Data(1, 100, ZT_DIR_EGRESS, 13, 18, 5, ""));  // the trailer
  s.Consume(3);
  EXPECT_EQ(s.Peek().data, "de");
  s.Consume(2);
  EXPECT_EQ(s.Peek().gap, 3u);
  s.Consume(3);
  EXPECT_EQ(t.stats().streams.gaps, 1u);
  EXPECT_EQ(t.stats().streams.gap_bytes, 3u);
  EXPECT_EQ(t.stats().streams.skips, 1u);
}

TEST(ConnTable, ProcessExitClosesItsConnectionsAndFreesKernelState) {
  Records r;
  Recorder obs;
  ForgetLog kernel;
  ConnTable t({}, &obs, &kernel, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_CLIENT));
  t.OnEvent(r.Open(2, 100, 4, ZT_ROLE_CLIENT));
  t.OnEvent(r.Open(3, 200, 3, ZT_ROLE_SERVER));
  t.OnEvent(r.Exit(100));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.ConnectionsOf(100), 0u);
  EXPECT_EQ(t.ConnectionsOf(200), 1u);
  std::sort(kernel.forgotten.begin(), kernel.forgotten.end());
  EXPECT_EQ(kernel.forgotten, (std::vector<std::pair<uint32_t, uint32_t>>{{100, 3}, {100, 4}}));
}

TEST(ConnTable, DataWithoutOpenStillTracked) {
  Records r;
  ConnTable t({}, nullptr, nullptr, nullptr);
  t.OnEvent(r.Data(9, 100, ZT_DIR_EGRESS, 0, 0, 2, "hi"));
  ASSERT_NE(t.Find(9), nullptr);
  EXPECT_FALSE(t.Find(9)->open_seen);
  EXPECT_EQ(t.stats().data_unknown_conn, 1u);
  t.OnEvent(r.Open(9, 100, 3, ZT_ROLE_CLIENT));  // late open is ignored, state kept
  EXPECT_EQ(t.Find(9)->sent.Peek().data, "hi");
}

TEST(ConnTable, FdReuseAndStaleCloseAreCounted) {
  Records r;
  Recorder obs;
  ConnTable t({}, &obs, nullptr, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_CLIENT));
  t.OnEvent(r.Close(1, 100, ZT_CLOSE_FD_REUSE));
  t.OnEvent(r.Close(1, 100));
  EXPECT_EQ(t.stats().fd_reused, 1u);
  EXPECT_EQ(t.stats().stale_close, 1u);
  EXPECT_EQ(obs.log.back(), "close 1 fd_reuse");
}

TEST(ConnTable, IdleConnectionsExpire) {
  Records r;
  ConnTableLimits limits;
  limits.idle_timeout_ns = 1000;
  ConnTable t(limits, nullptr, nullptr, nullptr);
  t.OnEvent(r.Open(1, 100, 3, ZT_ROLE_CLIENT, 10));
  t.OnEvent(r.Open(2, 100, 4, ZT_ROLE_CLIENT, 5000));
  t.ExpireIdle(5500);
  EXPECT_EQ(t.Find(1), nullptr);
  EXPECT_NE(t.Find(2), nullptr);
  EXPECT_EQ(t.stats().expired_idle, 1u);
}

TEST(ConnTable, CapEvictsLeastRecentlyActive) {
  Records r;
  ConnTableLimits limits;
  limits.max_connections = 4;
  ConnTable t(limits, nullptr, nullptr, nullptr);
  for (uint64_t i = 1; i <= 5; i++) t.OnEvent(r.Open(i, 100, i, ZT_ROLE_CLIENT, i * 10));
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.Find(1), nullptr);
  EXPECT_EQ(t.stats().evicted_cap, 1u);
}

// A connection the kernel's LRU table evicted gets no close: when its socket is found again on
// first use, the old one is freed as evicted and counted, and the new one starts on its own.
TEST(ConnTable, FdOpeningAgainWithoutCloseFreesTheKernelEvictedConnection) {
  Recorder rec;
  ConnTable t({}, &rec, nullptr, nullptr);
  Records r;
  t.OnEvent(r.Open(1, 100, 7, ZT_ROLE_SERVER));
  t.OnEvent(r.Open(2, 100, 8, ZT_ROLE_SERVER));
  t.OnEvent(r.Open(3, 200, 7, ZT_ROLE_SERVER));  // another process's fd 7: unrelated
  t.OnEvent(r.Open(4, 100, 7, ZT_ROLE_UNKNOWN, 1, ZT_CONN_F_PREEXISTING));
  EXPECT_EQ(t.Find(1), nullptr);
  EXPECT_NE(t.Find(2), nullptr);
  EXPECT_NE(t.Find(3), nullptr);
  EXPECT_NE(t.Find(4), nullptr);
  EXPECT_EQ(t.stats().kernel_evicted, 1u);
  EXPECT_NE(std::find(rec.log.begin(), rec.log.end(), "close 1 evicted"), rec.log.end());
  // A close first (the kernel saw it) is no eviction.
  t.OnEvent(r.Close(2, 100));
  t.OnEvent(r.Open(5, 100, 8, ZT_ROLE_UNKNOWN, 1, ZT_CONN_F_PREEXISTING));
  EXPECT_EQ(t.stats().kernel_evicted, 1u);
}

// The payload of a record is the ring buffer's: what the observer did not consume stays in
// the stream after the record's memory is reused.
TEST(ConnTable, UnconsumedPayloadOutlivesItsRecord) {
  Recorder rec;
  ConnTable table({}, &rec, nullptr, nullptr);
  Records r;
  table.OnEvent(r.Open(1, 100, 3, ZT_ROLE_CLIENT));
  testing::ConnSpec spec;
  spec.conn_id = 1;
  spec.tgid = 100;
  testing::Record record = testing::DataRecord(spec, ZT_DIR_INGRESS, 0, 0, 9, "HTTP/1.1 ", 2);
  probes::EventView v;
  ASSERT_EQ(probes::DecodeEvent(record.data(), record.size(), &v), probes::DecodeError::kNone);
  table.OnEvent(v);
  std::fill(record.begin(), record.end(), 0);
  Connection* c = table.Find(1);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->received.Peek().data, "HTTP/1.1 ");
}

}  // namespace
}  // namespace zerotrace::conn
