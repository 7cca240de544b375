// PgSession and detection on PostgreSQL v3 bytes: startup, simple and extended protocol,
// errors, pipelining, TLS, resync, losses.
#include "protocols/postgres/pg_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pg_wire_builder.h"
#include "protocols/postgres/pg_wire.h"

namespace zerotrace::protocols::postgres {
namespace {

using namespace testing;  // NOLINT: the message builders

struct Got {
  std::string name, text, ns, code, error_type;
  int64_t rows = -1;
  bool error = false;
};

std::string Str(const trace::Span& s, std::string_view key) {
  const trace::AttributeValue* v = s.Find(key);
  return v ? std::get<std::string>(*v) : "";
}

// A client's connection: bytes it sent and received, fed to one session.
class PgConn {
 public:
  explicit PgConn(bool resynced = false) : session_(ctx_, resynced, &stats_) {}
  void Send(std::string_view b) { Add(req_, req_pos_, b); }
  void Recv(std::string_view b) { Add(resp_, resp_pos_, b); }
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
  const PgStats& stats() const { return stats_; }

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
      g.text = Str(s, "db.query.text");
      g.ns = Str(s, "db.namespace");
      g.code = Str(s, "db.response.status_code");
      g.error_type = Str(s, "error.type");
      if (auto* r = s.Find("db.response.returned_rows")) g.rows = std::get<int64_t>(*r);
      g.error = s.status == trace::StatusCode::kError;
      EXPECT_GE(out_.exchange(i).end_ns, out_.exchange(i).start_ns);
      got_.push_back(g);
    }
    out_.Clear();
  }
  trace::ConnEndpoints ends_;
  SessionContext ctx_{ZT_ROLE_CLIENT, false, &ends_};
  PgStats stats_;
  PgSession session_;
  conn::ByteStream req_, resp_;
  uint64_t req_pos_ = 0, resp_pos_ = 0, ts_ = 100;
  SessionOutput out_;
  std::vector<Got> got_;
  size_t starts_ = 0;
};

void Connect(PgConn& c, std::string_view db = "shop") {
  c.Send(Startup({{"user", "app"}, {"database", std::string(db)}}));
  c.Recv(StartupReply());
}

TEST(PgSessionTest, SimpleQueriesWithRowsAndErrors) {
  PgConn c;
  Connect(c);
  c.Send(Query("SELECT * FROM orders WHERE secret = 'hunter2'"));
  c.Recv(RowDesc() + DataRow("1") + DataRow("2") + Complete("SELECT 2") + Ready());
  c.Send(Query("INSERT INTO orders VALUES (1, 'x')"));
  c.Recv(Complete("INSERT 0 1") + Ready());
  c.Send(Query("SELECT * FROM missing"));
  c.Recv(Error("42P01", "relation \"missing\" does not exist") + Ready());
  ASSERT_EQ(c.got().size(), 3u);
  EXPECT_EQ(c.got()[0].name, "SELECT orders");
  EXPECT_EQ(c.got()[0].text, "SELECT * FROM orders WHERE secret = ?");
  EXPECT_EQ(c.got()[0].ns, "shop");
  EXPECT_EQ(c.got()[0].rows, 2);
  EXPECT_FALSE(c.got()[0].error);
  EXPECT_EQ(c.got()[1].name, "INSERT orders");
  EXPECT_EQ(c.got()[1].rows, 1);
  EXPECT_EQ(c.got()[2].name, "SELECT missing");
  EXPECT_TRUE(c.got()[2].error);
  EXPECT_EQ(c.got()[2].code, "42P01");
  EXPECT_EQ(c.got()[2].error_type, "42P01");
  EXPECT_EQ(c.starts(), 3u);
}

// Found by pg_fuzz (UBSan: memcpy from a null pointer): an error without a SQLSTATE.
TEST(PgSessionTest, ErrorWithoutSqlstateIsAnOtherError) {
  PgConn c;
  Connect(c);
  c.Send(Query("SELECT 1"));
  c.Recv(Msg('E', std::string("SERROR\0Mno code\0\0", 18)) + Ready());
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_TRUE(c.got()[0].error);
  EXPECT_EQ(c.got()[0].code, "");
  EXPECT_EQ(c.got()[0].error_type, "_OTHER");
}

TEST(PgSessionTest, MultiStatementQueryIsOneBatchSpan) {
  PgConn c;
  Connect(c);
  c.Send(Query("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)"));
  c.Recv(Complete("INSERT 0 1") + Complete("INSERT 0 1") + Ready());
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_EQ(c.got()[0].name, "BATCH INSERT t");
}

TEST(PgSessionTest, PipelinedExtendedBatchesPairInOrder) {
  PgConn c;
  Connect(c);
  std::string batch;
  for (int i = 0; i < 3; i++) {
    batch += Parse("", "SELECT a FROM t" + std::to_string(i) + " WHERE id = $1") +
             Bind("", "", {"42"}) + DescribePortal("") + Execute("") + Sync();
  }
  c.Send(batch);  // one write, three batches
  std::string replies;
  for (int i = 0; i < 3; i++) {
    replies += ParseComplete() + BindComplete() + RowDesc();
    for (int r = 0; r <= i; r++) replies += DataRow("v");
    replies += Complete("SELECT " + std::to_string(i + 1)) + Ready();
  }
  c.Recv(replies.substr(0, 17));  // split at an awkward place
  c.Recv(replies.substr(17));
  ASSERT_EQ(c.got().size(), 3u);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(c.got()[i].name, "SELECT t" + std::to_string(i));
    EXPECT_EQ(c.got()[i].text, "SELECT a FROM t" + std::to_string(i) + " WHERE id = $1");
    EXPECT_EQ(c.got()[i].rows, i + 1);
  }
}

TEST(PgSessionTest, NamedStatementsAreRememberedAndUnknownOnesAreNotGuessed) {
  PgConn c;
  Connect(c);
  c.Send(Parse("s1", "UPDATE accounts SET balance = $1") + Sync());
  c.Recv(ParseComplete() + Ready());
  c.Send(Bind("", "s1", {"5"}) + Execute("") + Sync());
  c.Recv(BindComplete() + Complete("UPDATE 4") + Ready());
  c.Send(Bind("", "before_agent", {}) + Execute("") + Sync());  // prepared before we looked
  c.Recv(BindComplete() + Complete("SELECT 1") + Ready());
  ASSERT_EQ(c.got().size(), 2u);
  EXPECT_EQ(c.got()[0].name, "UPDATE accounts");
  EXPECT_EQ(c.got()[0].rows, 4);
  EXPECT_EQ(c.got()[1].name, "postgresql");
  EXPECT_EQ(c.got()[1].text, "");
  EXPECT_EQ(c.stats().unknown_statements, 1u);
}

TEST(PgSessionTest, ErrorInABatchFailsItsExecuteAndSkipsTheRest) {
  PgConn c;
  Connect(c);
  c.Send(Parse("", "SELEC oops") + Bind("", "", {}) + Execute("") + Parse("", "SELECT 1") +
         Bind("", "", {}) + Execute("") + Sync() + Query("SELECT 2"));
  c.Recv(Error("42601", "syntax error") + Ready());
  c.Recv(RowDesc() + DataRow("2") + Complete("SELECT 1") + Ready());
  ASSERT_EQ(c.got().size(), 2u);
  EXPECT_TRUE(c.got()[0].error);
  EXPECT_EQ(c.got()[0].code, "42601");
  EXPECT_EQ(c.got()[0].name, "SELEC");
  EXPECT_EQ(c.got()[1].name, "SELECT");
  EXPECT_FALSE(c.got()[1].error);
  EXPECT_EQ(c.stats().skipped, 1u);
}

TEST(PgSessionTest, SslRefusedThenPlaintext) {
  PgConn c;
  c.Send(SslRequest());
  c.Recv("N");
  Connect(c, "inventory");
  c.Send(Query("SELECT 1"));
  c.Recv(RowDesc() + DataRow("1") + Complete("SELECT 1") + Ready());
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_EQ(c.got()[0].ns, "inventory");
}

TEST(PgSessionTest, SslAcceptedStopsReadingCiphertext) {
  PgConn c;
  c.Send(SslRequest());
  c.Recv("S");
  c.Send(std::string("\x16\x03\x01\x00\x05hello", 10));
  c.Recv(std::string("\x16\x03\x03\x00\x05world", 10));
  EXPECT_TRUE(c.got().empty());
  EXPECT_EQ(c.stats().tls, 1u);
  EXPECT_EQ(c.stats().desyncs, 0u);
}

TEST(PgSessionTest, CopyFromStdin) {
  PgConn c;
  Connect(c);
  c.Send(Query("COPY items FROM STDIN"));
  c.Recv(Msg('G', std::string(1, '\0') + Be16(0)));
  c.Send(Msg('d', "1\tone\n") + Msg('d', "2\ttwo\n") + Msg('c', ""));
  c.Recv(Complete("COPY 2") + Ready());
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_EQ(c.got()[0].name, "COPY items");
  EXPECT_EQ(c.got()[0].rows, 2);
}

TEST(PgSessionTest, UncapturedRowsAreSkippedByLength) {
  PgConn c;
  Connect(c);
  c.Send(Query("SELECT * FROM big"));
  const std::string row = DataRow(std::string(1000, 'x'));
  c.Recv(RowDesc() + row.substr(0, 100));
  c.RecvGap(row.size() - 100);  // the rest of the row was not captured
  c.Recv(Complete("SELECT 1") + Ready());
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_EQ(c.got()[0].rows, 1);
}

TEST(PgSessionTest, AHeaderLostInAGapDropsPendingCallsAndCountsThem) {
  PgConn c;
  Connect(c);
  c.Send(Query("SELECT * FROM big"));
  c.RecvGap(50);  // a message header was never seen
  c.Recv(Complete("SELECT 1") + Ready());
  EXPECT_TRUE(c.got().empty());
  EXPECT_EQ(c.stats().desyncs, 1u);
  EXPECT_EQ(c.stats().dropped, 1u);
}

TEST(PgSessionTest, ResyncedSessionTrustsPairingOnlyOnceATagMatches) {
  PgConn c(/*resynced=*/true);
  // A reply to a request sent before the claim arrives first: its tag does not fit.
  c.Send(Query("SELECT * FROM a"));
  c.Recv(Complete("UPDATE 3") + Ready());
  c.Send(Query("SELECT * FROM b"));
  c.Recv(RowDesc() + Complete("SELECT 0") + Ready());
  c.Send(Query("DELETE FROM c"));
  c.Recv(Complete("DELETE 2") + Ready());
  ASSERT_EQ(c.got().size(), 2u);
  EXPECT_EQ(c.got()[0].name, "SELECT b");
  EXPECT_EQ(c.got()[1].name, "DELETE c");
  EXPECT_EQ(c.stats().dropped, 1u);
}

TEST(PgSessionTest, ShutdownReportsPendingCallsAsErrors) {
  PgConn c;
  Connect(c);
  c.Send(Query("SELECT pg_sleep(100)"));
  c.Close(CloseReason::kShutdown);
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_EQ(c.got()[0].error_type, "agent_shutdown");
}

TEST(PgDetectTest, OnlyTheClientSideClaims) {
  const std::string startup = Startup({{"user", "app"}, {"database", "shop"}});
  EXPECT_EQ(DetectPgStart({startup, "", ZT_ROLE_CLIENT, false}).verdict, Verdict::kYes);
  EXPECT_EQ(DetectPgStart({SslRequest(), "", ZT_ROLE_CLIENT, false}).verdict, Verdict::kYes);
  EXPECT_EQ(DetectPgStart({startup.substr(0, 6), "", ZT_ROLE_CLIENT, false}).verdict,
            Verdict::kMaybe);
  EXPECT_EQ(DetectPgStart({"", startup, ZT_ROLE_SERVER, false}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectPgStart({"GET / HTTP/1.1\r\n", "", ZT_ROLE_CLIENT, false}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectPgStart({"",
                           "\x0a"
                           "5.5.5",
                           ZT_ROLE_CLIENT, false})
                .verdict,
            Verdict::kNo);
}

TEST(PgDetectTest, ResyncOnWholeRequestsTheProcessWrote) {
  const std::string q = Query("SELECT 1");
  EXPECT_EQ(DetectPgResync({q, ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kYes);
  EXPECT_EQ(DetectPgResync({q, ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).role, ZT_ROLE_CLIENT);
  // The server reading it is never a second source of the same call.
  EXPECT_EQ(DetectPgResync({q, ZT_DIR_INGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectPgResync({q, ZT_DIR_EGRESS, ZT_ROLE_SERVER}).verdict, Verdict::kNo);
  const std::string p = Parse("s", "SELECT $1") + Bind("", "s", {"x"});
  EXPECT_EQ(DetectPgResync({p, ZT_DIR_EGRESS, ZT_ROLE_CLIENT}).verdict, Verdict::kYes);
  EXPECT_EQ(DetectPgResync({Bind("", "s", {"x"}), ZT_DIR_EGRESS, ZT_ROLE_CLIENT}).verdict,
            Verdict::kYes);
  // Replies, and things that only look like a request's first byte, are not starts.
  EXPECT_EQ(DetectPgResync({Complete("SELECT 1"), ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict,
            Verdict::kNo);
  EXPECT_EQ(DetectPgResync({"QUIT\r\n", ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kNo);
  std::string bad = q;
  bad[4] = static_cast<char>(bad[4] + 1);  // length one too long
  EXPECT_NE(DetectPgResync({bad + "x", ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kYes);
}

TEST(PgWireTest, TagRowsAndErrorCode) {
  EXPECT_EQ(TagRows("SELECT 12"), 12);
  EXPECT_EQ(TagRows("INSERT 0 3"), 3);
  EXPECT_EQ(TagRows("CREATE TABLE"), -1);
  EXPECT_EQ(ErrorCode(Error("23505", "dup").substr(5)), "23505");
  EXPECT_EQ(ErrorCode("Mno code\0\0"), "");
}

}  // namespace
}  // namespace zerotrace::protocols::postgres
