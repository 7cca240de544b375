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
  // A connection of 127.0.0.1:port to :3306; `tls`: its TLS plaintext.
  MyConn(uint16_t port, bool tls, MyTlsHandoff* handoff)
      : ends_{true, false, "127.0.0.1", "127.0.0.1", port, 3306},
        ctx_{ZT_ROLE_CLIENT, tls, &ends_},
        session_(ctx_, false, &stats_, handoff) {}
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

TEST(MySessionTest, HandshakeDatabaseThenInitDbNamesTheNamespace) {
  MyConn c;
  Connect(c, /*deprecate_eof=*/false, "shop");
  c.Send(Query("UPDATE orders SET note = 'secret' WHERE id = 7"));
  c.Recv(Ok(1, /*affected=*/3));
  c.Send(Cmd(kComInitDb, "billing"));
  c.Recv(Ok(1));
  c.Send(Query("DELETE FROM invoices"));
  c.Recv(Ok(1, 0));
  c.Send(Cmd(kComInitDb, "nope"));
  c.Recv(Err(1, 1049, "42000", "Unknown database 'nope'"));
  c.Send(Query("SELECT 1"));
  c.Recv(ResultSet(1, false));
  ASSERT_EQ(c.got().size(), 3u);  // COM_INIT_DB itself is no span
  EXPECT_EQ(c.got()[0].name, "UPDATE orders");
  EXPECT_EQ(c.got()[0].system, "mariadb");
  EXPECT_EQ(c.got()[0].text, "UPDATE orders SET note = ? WHERE id = ?");
  EXPECT_EQ(c.got()[0].ns, "shop");
  EXPECT_EQ(c.got()[0].rows, 3);
  EXPECT_EQ(c.got()[1].ns, "billing");
  EXPECT_EQ(c.got()[2].ns, "billing");  // the failed COM_INIT_DB changed nothing
  EXPECT_EQ(c.stats().desyncs, 0u);
}

TEST(MySessionTest, OracleMySqlGreetingIsMysql) {
  MyConn c;
  c.Recv(Greeting("8.0.36"));
  c.Send(HandshakeResponse(kCaps, "app", ""));
  c.Recv(Ok(2));
  c.Send(Query("SELECT 1"));
  c.Recv(ResultSet(1, false));
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_EQ(c.got()[0].system, "mysql");
  EXPECT_EQ(c.got()[0].ns, "");
}

TEST(MySessionTest, QueryErrorIsAnErrorSpanWithItsNumber) {
  MyConn c;
  Connect(c, false);
  c.Send(Query("SELECT * FROM missing WHERE k = 'x'"));
  c.Recv(Err(1, 1146, "42S02", "Table 'shop.missing' doesn't exist"));
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_EQ(c.got()[0].name, "SELECT missing");
  EXPECT_TRUE(c.got()[0].error);
  EXPECT_EQ(c.got()[0].code, "1146");
  EXPECT_EQ(c.stats().errors, 1u);
}

// One table, two wire dialects: EOF after the definitions and at the end, or (DEPRECATE_EOF)
// no EOF after the definitions and an OK with an 0xFE header at the end.
TEST(MySessionTest, ResultSetsWithAndWithoutDeprecateEof) {
  for (bool deprecate : {false, true}) {
    SCOPED_TRACE(deprecate);
    MyConn c;
    Connect(c, deprecate);
    c.Send(Query("SELECT a, b FROM t"));
    c.Recv(ResultSet(5, deprecate));
    c.Send(Query("SELECT a, b FROM empty_t"));
    c.Recv(ResultSet(0, deprecate));
    c.Send(Query("INSERT INTO t VALUES (1, 2)"));
    c.Recv(Ok(1, 1));
    ASSERT_EQ(c.got().size(), 3u);
    EXPECT_EQ(c.got()[0].rows, 5);
    EXPECT_EQ(c.got()[1].name, "SELECT empty_t");
    EXPECT_EQ(c.got()[1].rows, 0);
    EXPECT_EQ(c.got()[2].rows, 1);
    EXPECT_EQ(c.stats().desyncs, 0u);
  }
}

// A multi-statement query: each result but the last says SERVER_MORE_RESULTS_EXISTS.
TEST(MySessionTest, MultiResultQueryIsOneCall) {
  MyConn c;
  Connect(c, true);
  c.Send(Query("SELECT a FROM t; SELECT b FROM u"));
  c.Recv(ResultSet(2, true, 3, 2 | kServerMoreResultsExist) + ResultSet(3, true, 3, 2, 7));
  c.Send(Query("SELECT 1"));
  c.Recv(ResultSet(1, true));
  ASSERT_EQ(c.got().size(), 2u);
  EXPECT_EQ(c.stats().desyncs, 0u);
}

// A killed query: rows, then ERR instead of the end of the result.
TEST(MySessionTest, ErrorMidResultFailsTheCall) {
  MyConn c;
  Connect(c, false);
  c.Send(Query("SELECT a, b FROM t"));
  std::string rs = ResultSet(3, false);
  rs.resize(rs.size() - 9);  // without its closing EOF (5-byte payload)
  c.Recv(rs + Err(8, 1317, "70100", "Query execution was interrupted"));
  c.Send(Query("SELECT 1"));
  c.Recv(ResultSet(1, false));
  ASSERT_EQ(c.got().size(), 2u);
  EXPECT_TRUE(c.got()[0].error);
  EXPECT_EQ(c.got()[0].code, "1317");
  EXPECT_FALSE(c.got()[1].error);
}

// Server-side prepared statements: executes take their text from the prepare of their id;
// an id closed, or prepared before we followed, is executed with no text guessed.
TEST(MySessionTest, PreparedStatementIdsMapToTheirText) {
  for (bool deprecate : {false, true}) {
    SCOPED_TRACE(deprecate);
    MyConn c;
    Connect(c, deprecate);
    c.Send(Cmd(kComStmtPrepare, "SELECT name FROM users WHERE id = ?"));
    std::string prep = PrepareOk(1, 5, /*cols=*/1, /*params=*/1) + ColumnDef(2, "?");
    if (!deprecate) prep += Eof(3);
    const uint8_t next = deprecate ? 3 : 4;
    prep += ColumnDef(next, "name");
    if (!deprecate) prep += Eof(next + 1);
    c.Recv(prep);
    c.Send(Cmd(kComStmtPrepare, "UPDATE users SET seen = NOW()"));
    c.Recv(PrepareOk(1, 6, 0, 0));
    c.Send(Cmd(kComStmtPrepare, "SELECT * FROM nope"));
    c.Recv(Err(1, 1146, "42S02", "no such table"));
    // A binary result: column count, definition, rows with a 0x00 header.
    c.Send(Execute(5));
    std::string rows = Pkt(1, Lenenc(1)) + ColumnDef(2, "name");
    uint8_t seq = 3;
    if (!deprecate) rows += Eof(seq++);
    rows += Pkt(seq++, std::string("\x00\x00", 2) + LenencStr("ann"));
    rows += deprecate ? OkEof(seq) : Eof(seq);
    c.Recv(rows);
    c.Send(Execute(6));
    c.Recv(Ok(1, 4));
    c.Send(Cmd(kComStmtClose, Le(5, 4)));  // no reply
    c.Send(Execute(5));
    c.Recv(Err(1, 1243, "HY000", "Unknown prepared statement handler"));
    ASSERT_EQ(c.got().size(), 4u);
    EXPECT_EQ(c.got()[0].name, "SELECT nope");  // a failed prepare is reported
    EXPECT_TRUE(c.got()[0].error);
    EXPECT_EQ(c.got()[1].name, "SELECT users");
    EXPECT_EQ(c.got()[1].text, "SELECT name FROM users WHERE id = ?");
    EXPECT_EQ(c.got()[1].rows, 1);
    EXPECT_EQ(c.got()[2].name, "UPDATE users");
    EXPECT_EQ(c.got()[2].rows, 4);
    EXPECT_EQ(c.got()[3].text, "");  // closed: unknown, not guessed
    EXPECT_TRUE(c.got()[3].error);
    EXPECT_EQ(c.stats().unknown_statements, 1u);
    EXPECT_EQ(c.stats().desyncs, 0u);
  }
}

// Payloads of 16 MB - 1 bytes continue in the next packet (the sequence id goes on): a query
// sent in two packets, answered at sequence 2; a row in two packets whose second starts with
// 0xFE (not an EOF); a payload of exactly 16 MB - 1 ends with an empty packet.
TEST(MySessionTest, SixteenMegabytePacketsContinue) {
  MyConn c;
  Connect(c, true);
  const std::string big(kMaxPacketPayload + 100, '\xfe');
  c.Send(Query("INSERT INTO blobs VALUES ('" + big + "')"));
  c.Recv(Ok(2, 1));
  c.Send(Query("SELECT data FROM blobs"));
  std::string rs = Pkt(1, Lenenc(1)) + ColumnDef(2, "data");
  rs += Pkt(3, LenencStr(big));  // packets 3 and 4
  const std::string exact(kMaxPacketPayload - 4, 'z');
  rs += Pkt(5, LenencStr(exact));  // 0xfd + 3 + value: exactly 16 MB - 1, then an empty one
  rs += OkEof(7);
  ASSERT_EQ(rs.substr(rs.size() - 11 - 4, 4), std::string("\0\0\0\x06", 4));
  c.RecvInReads(rs, 1 << 20);
  c.Send(Query("SELECT 1"));
  c.Recv(ResultSet(1, true));
  ASSERT_EQ(c.got().size(), 3u);
  EXPECT_EQ(c.got()[0].name, "INSERT blobs");
  EXPECT_EQ(c.got()[0].rows, 1);
  EXPECT_EQ(c.got()[1].rows, 2);
  EXPECT_EQ(c.got()[2].rows, 1);
  EXPECT_EQ(c.stats().desyncs, 0u);
}

// A reply whose sequence id does not follow its command is not paired.
TEST(MySessionTest, WrongSequenceIdDesyncs) {
  MyConn c;
  Connect(c, false);
  c.Send(Query("SELECT 1"));
  c.Recv(Ok(3));
  EXPECT_TRUE(c.got().empty());
  EXPECT_EQ(c.stats().desyncs, 1u);
  EXPECT_EQ(c.stats().dropped, 1u);
}

// Followed from a command mid-stream: the first reply must fit its query before any span.
TEST(MySessionTest, ResyncedSessionTrustsPairingOnlyOnceAReplyFits) {
  MyConn c(/*resynced=*/true);
  c.Send(Query("UPDATE t SET a = 1"));
  c.Recv(ResultSet(1, false));  // rows for an UPDATE: not this query's reply
  c.Send(Query("SELECT a FROM t"));
  c.Recv(ResultSet(2, false));
  c.Send(Query("SELECT b FROM t"));
  c.Recv(ResultSet(3, false));
  ASSERT_EQ(c.got().size(), 2u);
  EXPECT_EQ(c.got()[0].rows, 2);
  EXPECT_EQ(c.stats().dropped, 1u);
}

TEST(MySessionTest, ShutdownReportsAPendingCall) {
  MyConn c;
  Connect(c, false);
  c.Send(Query("SELECT SLEEP(100)"));
  c.Close(CloseReason::kShutdown);
  ASSERT_EQ(c.got().size(), 1u);
  EXPECT_TRUE(c.got()[0].error);
  EXPECT_EQ(c.stats().unfinished, 1u);
}

TEST(MyDetectTest, OnlyAClientReceivingAGreetingClaims) {
  const std::string g = Greeting();
  EXPECT_EQ(DetectMyStart({"", g, ZT_ROLE_CLIENT, false}).verdict, Verdict::kYes);
  EXPECT_EQ(DetectMyStart({"", g.substr(0, 10), ZT_ROLE_CLIENT, false}).verdict, Verdict::kMaybe);
  EXPECT_EQ(DetectMyStart({g, "", ZT_ROLE_SERVER, false}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyStart({"GET / HTTP/1.1\r\n", "", ZT_ROLE_CLIENT, false}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyStart({"", "HTTP/1.1 200 OK\r\n\r\n", ZT_ROLE_CLIENT, false}).verdict,
            Verdict::kNo);
}

// The plaintext of a TLS connection starts with the handshake response (sequence 2, after the
// cleartext SSLRequest); the greeting, seen in the clear, still names the server.
TEST(MySessionTest, TlsPlaintextSessionFollowsTheCleartextOne) {
  MyTlsHandoff handoff;
  std::string ssl_request = HandshakeResponse(kCaps | kClientSsl, "", "").substr(4, 32);
  ssl_request = Pkt(1, ssl_request);
  std::string response = HandshakeResponse(kCaps | kClientSsl, "app", "shop");
  response[3] = 2;
  {
    MyConn clear(40000, /*tls=*/false, &handoff);
    clear.Recv(Greeting());
    clear.Send(ssl_request);
    EXPECT_EQ(clear.stats().tls, 1u);
    clear.Send("\x16\x03\x01 ciphertext");  // not read
    EXPECT_TRUE(clear.got().empty());
  }
  MyConn other(40001, /*tls=*/true, &handoff);  // another connection: nothing handed to it
  MyConn plain(40000, /*tls=*/true, &handoff);
  plain.Send(response);
  plain.Recv(Ok(3));
  plain.Send(Query("SELECT note FROM orders WHERE id = 7"));
  plain.Recv(ResultSet(1, false));
  ASSERT_EQ(plain.got().size(), 1u);
  EXPECT_EQ(plain.got()[0].name, "SELECT orders");
  EXPECT_EQ(plain.got()[0].system, "mariadb");
  EXPECT_EQ(plain.got()[0].ns, "shop");
  EXPECT_EQ(plain.got()[0].text, "SELECT note FROM orders WHERE id = ?");
  other.Send(response);
  other.Recv(Ok(3));
  other.Send(Query("SELECT 1"));
  other.Recv(ResultSet(1, false));
  ASSERT_EQ(other.got().size(), 1u);
  EXPECT_EQ(other.got()[0].system, "mysql");  // unknown server: the protocol's name
}

TEST(MyDetectTest, TlsPlaintextStartsWithAHandshakeResponseThatAskedForTls) {
  std::string tls_response = HandshakeResponse(kCaps | kClientSsl, "app", "shop");
  tls_response[3] = 2;
  std::string no_ssl = HandshakeResponse(kCaps, "app", "shop");
  no_ssl[3] = 2;
  std::string seq1 = HandshakeResponse(kCaps | kClientSsl, "app", "shop");
  EXPECT_EQ(DetectMyStart({tls_response, "", ZT_ROLE_CLIENT, true}).verdict, Verdict::kYes);
  EXPECT_EQ(DetectMyStart({tls_response.substr(0, 20), "", ZT_ROLE_CLIENT, true}).verdict,
            Verdict::kMaybe);
  EXPECT_EQ(DetectMyStart({"", "", ZT_ROLE_CLIENT, true}).verdict, Verdict::kMaybe);
  EXPECT_EQ(DetectMyStart({tls_response, "", ZT_ROLE_SERVER, true}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyStart({no_ssl, "", ZT_ROLE_CLIENT, true}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyStart({seq1, "", ZT_ROLE_CLIENT, true}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyStart({"", Greeting(), ZT_ROLE_CLIENT, true}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyStart({"GET / HTTP/1.1\r\nHost: a\r\n\r\n" + std::string(40, 'x'), "",
                           ZT_ROLE_CLIENT, true})
                .verdict,
            Verdict::kNo);
}

TEST(MyDetectTest, ResyncOnAWholeQueryTheProcessWrote) {
  const std::string q = Query("SELECT 1");
  EXPECT_EQ(DetectMyResync({q, ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kYes);
  EXPECT_EQ(DetectMyResync({q, ZT_DIR_INGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyResync({q, ZT_DIR_EGRESS, ZT_ROLE_SERVER}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyResync({q.substr(0, 7), ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict,
            Verdict::kMaybe);
  EXPECT_EQ(DetectMyResync({q + "x", ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kNo);
  EXPECT_EQ(DetectMyResync({Ok(1), ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kNo);
}

}  // namespace
}  // namespace zerotrace::protocols::mysql
