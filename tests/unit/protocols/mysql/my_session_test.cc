// MySession and detection on MySQL/MariaDB wire bytes: handshake, commands, result sets with
// and without CLIENT_DEPRECATE_EOF, prepared statements, 16 MB packets, reads cut by gaps.
#include "protocols/mysql/my_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "my_wire_builder.h"
#include "protocols/mysql/my_wire.h"

namespace zerotrace::protocols::mysql {
namespace {

using namespace testing;  // NOLINT: the packet builders

struct Got {
  std::string name, system, text, ns, code;
  int64_t rows = -1;
  bool error = false;
};

std::string Str(const trace::Span& s, std::string_view key) {
  const trace::AttributeValue* v = s.Find(key);
  return v ? std::get<std::string>(*v) : "";
}

// A client's connection: bytes it sent and received, fed to one session.
class MyConn {
 public:
  explicit MyConn(bool resynced = false) : session_(ctx_, resynced, &stats_) {}
  void Send(std::string_view b) { Add(req_, req_pos_, b); }
  void Recv(std::string_view b) { Add(resp_, resp_pos_, b); }
  // The reply as reads of `n` bytes each: what a buffered client does.
  void RecvInReads(std::string_view b, size_t n) {
    for (size_t i = 0; i < b.size(); i += n) Recv(b.substr(i, n));
  }
  // One read of `b` of which only the first `captured` bytes were copied (the capture limit).
  void RecvCaptured(std::string_view b, size_t captured) {
    Recv(b.substr(0, captured));
    RecvGap(b.size() - captured);
  }
  void RecvGap(uint64_t n) {
    resp_.AddGap(resp_pos_, n, ++ts_);
    resp_pos_ += n;
    Advance();
  }
  void Close(CloseReason reason) {
    session_.Close(req_, resp_, reason, ++ts_, &out_);
    Collect();
  }
  const std::vector<Got>& got() const { return got_; }
  size_t starts() const { return starts_; }
  const MyStats& stats() const { return stats_; }

 private:
  void Add(conn::ByteStream& s, uint64_t& pos, std::string_view b) {
    s.AddData(pos, b, ++ts_, 7);
    pos += b.size();
    Advance();
  }
  void Advance() {
    session_.Advance(req_, resp_, ++ts_, &out_);
    Collect();
  }
  void Collect() {
    starts_ += out_.starts();
    for (size_t i = 0; i < out_.exchanges(); i++) {
      const trace::Span& s = out_.exchange(i).span;
      Got g;
      g.name = s.name;
      g.system = Str(s, "db.system.name");
      g.text = Str(s, "db.query.text");
      g.ns = Str(s, "db.namespace");
      g.code = Str(s, "db.response.status_code");
      if (auto* r = s.Find("db.response.returned_rows")) g.rows = std::get<int64_t>(*r);
      g.error = s.status == trace::StatusCode::kError;
      EXPECT_GE(out_.exchange(i).end_ns, out_.exchange(i).start_ns);
      got_.push_back(g);
    }
    out_.Clear();
  }
  trace::ConnEndpoints ends_;
  SessionContext ctx_{ZT_ROLE_CLIENT, false, &ends_};
  MyStats stats_;
  MySession session_;
  conn::ByteStream req_{64 << 20}, resp_{64 << 20};
  uint64_t req_pos_ = 0, resp_pos_ = 0, ts_ = 100;
  SessionOutput out_;
  std::vector<Got> got_;
  size_t starts_ = 0;
};

void Connect(MyConn& c, bool deprecate_eof, std::string_view db = "shop") {
  c.Recv(Greeting());
  c.Send(HandshakeResponse(kCaps | (deprecate_eof ? kClientDeprecateEof : 0), "app", db));
  c.Recv(Ok(2));
}

// pymysql reads 8 KiB at a time: a read can end anywhere in a row, also right after its
// header. A header whose payload has not arrived yet is not a lost packet.
TEST(MySessionTest, ReadsEndingAnywhereInARowKeepTheResultSet) {
  for (size_t read : {4096u, 8192u, 8191u, 100u, 5u, 1u}) {
    SCOPED_TRACE(read);
    MyConn c;
    Connect(c, /*deprecate_eof=*/false);
    c.Send(Query("SELECT seq, REPEAT('x', 200) FROM seq_1_to_2000"));
    c.RecvInReads(ResultSet(2000, false, 200), read);
    c.Send(Query("SELECT 1"));
    c.Recv(ResultSet(1, false));
    ASSERT_EQ(c.got().size(), 2u);
    EXPECT_EQ(c.got()[0].rows, 2000);
    EXPECT_EQ(c.got()[1].rows, 1);
    EXPECT_EQ(c.stats().desyncs, 0u);
  }
}

// A read longer than the capture: the uncaptured rest is a gap. Where it falls inside a packet
// whose header was seen, the walk continues at the next header.
TEST(MySessionTest, GapsInsideRowsAreSkippedByLength) {
  for (size_t captured : {4u, 5u, 100u, 16384u}) {
    SCOPED_TRACE(captured);
    MyConn c;
    Connect(c, /*deprecate_eof=*/true);
    c.Send(Query("SELECT big FROM blobs"));
    // Rows of 100000 bytes, each in one read of which only `captured` bytes were copied.
    const std::string rs = ResultSet(3, true, 100000);
    const size_t first_row = rs.find('r') - 8;  // header, then 0xfd and a 3-byte length
    c.Recv(rs.substr(0, first_row));
    size_t pos = first_row;
    for (int i = 0; i < 3; i++) {
      const size_t len = 4 + 4 + 100000 + 2;  // header, lenenc (0xfd + 3), value, "1"
      c.RecvCaptured(rs.substr(pos, len), captured);
      pos += len;
    }
    c.Recv(rs.substr(pos));
    c.Send(Query("SELECT 1"));
    c.Recv(ResultSet(1, true));
    ASSERT_EQ(c.got().size(), 2u);
    EXPECT_EQ(c.got()[0].name, "SELECT blobs");
    EXPECT_EQ(c.got()[0].rows, 3);
    EXPECT_EQ(c.got()[1].rows, 1);
    EXPECT_EQ(c.stats().desyncs, 0u);
  }
}

// Only a gap that covers a header loses framing: the pending call is dropped and counted.
TEST(MySessionTest, AGapOverAHeaderDropsThePendingCallAndCountsIt) {
  MyConn c;
  Connect(c, false);
  c.Send(Query("SELECT a FROM t"));
  const std::string rs = ResultSet(100, false, 50);
  c.RecvCaptured(rs.substr(0, 1000), 500);
  c.Recv(rs.substr(1000));
  EXPECT_TRUE(c.got().empty());
  EXPECT_EQ(c.stats().desyncs, 1u);
  EXPECT_EQ(c.stats().dropped, 1u);
}

}  // namespace
}  // namespace zerotrace::protocols::mysql
