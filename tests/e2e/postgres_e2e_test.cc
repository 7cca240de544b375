// End-to-end PostgreSQL: a real postgres 15 (its own cluster and port per test), real libpq
// clients (psycopg2, pgbench); every query is one CLIENT span of the process that sent it, and
// the server on the same node reports none.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "pg_server.h"

namespace zerotrace::e2e {
namespace {

constexpr char kSecret[] = "Zt-s3cr3t-4711";

class PostgresE2eTest : public AgentTest {
 protected:
  // The cluster is made before the agent starts (initdb is slow and of no interest).
  void SetUp() override {}
  void Begin(int port, bool tls = false) {
    server_ = std::make_unique<PgServer>(port, tls);
    ASSERT_TRUE(server_->ok());
    ASSERT_TRUE(server_->Start());
    AgentTest::SetUp();
  }
  void TearDown() override {
    AgentTest::TearDown();
    server_.reset();
  }
  // Room for the 20 000-row result: ~4.4 MB the server sends and the client receives, ~9 MB
  // of records in a few ms. With the default 8 MiB ring, a consumer that a loaded machine
  // (CI's background builds) does not schedule within that burst loses records (counted as
  // ringbuf_reserve_failed); what this file tests is the protocol, not the ring's room.
  std::vector<std::string> AgentFlags() const override {
    return {"--ringbuf-bytes", std::to_string(32u << 20)};
  }

  // A file that holds the secret (command lines are exported as process.command_args).
  std::string SecretFile() const {
    const std::string path = dir() + "/secret";
    std::ofstream(path) << kSecret;
    return path;
  }

  ClientRun PgClient(std::vector<std::string> args) {
    std::vector<std::string> argv = {std::to_string(server_->port())};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunPythonClient("pg_client.py", argv);
  }

  // The names of the spans of `pid`, in order.
  std::vector<std::string> Names(pid_t pid) const {
    std::vector<std::string> out;
    for (const Span& s : SpansOf(pid)) out.push_back(s.name);
    return out;
  }

  // No postgresql span came from any process but `client` (the server's side is silent).
  void ExpectOnlyClientSpans(pid_t client) const {
    for (const Span& s : AllSpans()) {
      if (s.Str("db.system.name") == "postgresql") {
        EXPECT_EQ(s.pid, client) << "a span not from the client: " << s.Describe();
      }
    }
  }

  // The secret appears nowhere in what the agent wrote.
  void ExpectNoSecret() const {
    std::ifstream in(dir() + "/spans.jsonl");
    std::stringstream all;
    all << in.rdbuf();
    ASSERT_LT(all.str().size(), 64u << 20);
    EXPECT_EQ(all.str().find(kSecret), std::string::npos);
    for (const std::string& line : AgentOutput()) {
      EXPECT_EQ(line.find(kSecret), std::string::npos) << line;
    }
  }

  const Span* Find(const std::vector<Span>& spans, const std::string& name) const {
    for (const Span& s : spans) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }

  std::unique_ptr<PgServer> server_;
};

TEST_F(PostgresE2eTest, Psycopg2QueriesErrorsCopyAndBigResults) {
  ASSERT_NO_FATAL_FAILURE(Begin(22001));
  const ClientRun c = PgClient({"queries", SecretFile()});
  ASSERT_EQ(c.exit_code, 0);
  ASSERT_GT(c.local_port, 0);
  ASSERT_TRUE(AwaitSpans({{c.pid, 10}}));
  const std::vector<Span> spans = SpansOf(c.pid);
  EXPECT_EQ(Names(c.pid), (std::vector<std::string>{
                              "DROP TABLE orders", "CREATE TABLE orders", "INSERT orders",
                              "SELECT orders", "BATCH INSERT orders", "SELECT missing_table",
                              "COPY orders", "SELECT generate_series", "SET", "SELECT"}))
      << Describe(c.pid);
  for (const Span& s : spans) {
    EXPECT_EQ(s.kind, kClient) << s.Describe();
    EXPECT_EQ(s.Str("db.system.name"), "postgresql");
    EXPECT_EQ(s.Str("db.namespace"), "postgres");
    EXPECT_EQ(s.Str("server.address"), "127.0.0.1");
    EXPECT_EQ(s.Int("server.port"), server_->port());
    EXPECT_EQ(s.Str("network.peer.address"), "127.0.0.1");
  }
  if (const Span* s = Find(spans, "INSERT orders")) {
    EXPECT_EQ(s->Str("db.query.text"), "INSERT INTO orders VALUES (?, ?)");
    EXPECT_EQ(s->Int("db.response.returned_rows"), 1);
  }
  if (const Span* s = Find(spans, "SELECT missing_table")) {
    EXPECT_EQ(s->status_code, kStatusError);
    EXPECT_EQ(s->Str("db.response.status_code"), "42P01");
    EXPECT_EQ(s->Str("error.type"), "42P01");
  }
  if (const Span* s = Find(spans, "COPY orders")) {
    EXPECT_EQ(s->Int("db.response.returned_rows"), 3);
  }
  if (const Span* s = Find(spans, "SELECT generate_series")) {
    EXPECT_EQ(s->Int("db.response.returned_rows"), 20000);
  }
  if (const Span* s = Find(spans, "SELECT")) {
    EXPECT_EQ(s->Str("db.response.status_code"), "57014");  // cancelled by statement_timeout
  }
  ExpectOnlyClientSpans(c.pid);
  ExpectNoSecret();
}

// pgbench -M prepared: libpq's extended protocol, named statements with parameters.
TEST_F(PostgresE2eTest, PgbenchPreparedStatementsWithParameters) {
  ASSERT_NO_FATAL_FAILURE(Begin(22002));
  const std::string script = dir() + "/bench.sql";
  std::ofstream(script) << "\\set id random(1, 1000)\nSELECT :id::int + 1 AS n WHERE 'k' = 'k';\n";
  const ClientRun c = Run({"/usr/lib/postgresql/15/bin/pgbench", "-n", "-h", "127.0.0.1", "-p",
                           std::to_string(server_->port()), "-U", "postgres", "-M", "prepared",
                           "-t", "5", "-f", script, "postgres"});
  ASSERT_EQ(c.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{c.pid, 5}}));
  const std::vector<Span> spans = SpansOf(c.pid);
  ASSERT_EQ(spans.size(), 5u) << Describe(c.pid);
  for (const Span& s : spans) {
    EXPECT_EQ(s.name, "SELECT") << s.Describe();
    EXPECT_EQ(s.Str("db.query.text"), "SELECT $1::int + ? AS n WHERE ? = ?;") << s.Describe();
    EXPECT_EQ(s.Int("db.response.returned_rows"), 1);
  }
  ExpectOnlyClientSpans(c.pid);
}

// A connection that was open (and had been used) before the agent started: later queries are
// traced, none is paired with an earlier reply.
TEST_F(PostgresE2eTest, ConnectionOpenedBeforeTheAgent) {
  server_ = std::make_unique<PgServer>(22003);
  ASSERT_TRUE(server_->ok());
  ASSERT_TRUE(server_->Start());
  auto& client = Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/clients/pg_client.py",
                        std::to_string(server_->port()), "stepped"});
  ASSERT_TRUE(client.WaitForLine("ready", 30s));
  ASSERT_NO_FATAL_FAILURE(AgentTest::SetUp());
  for (int n = 1; n <= 3; n++) {
    client.WriteStdin("go\n");
    ASSERT_TRUE(client.WaitForLine("query " + std::to_string(n), 20s));
  }
  ASSERT_TRUE(AwaitSpans({{client.pid(), 3}}));
  const std::vector<Span> spans = SpansOf(client.pid());
  ASSERT_EQ(spans.size(), 3u) << Describe(client.pid());
  for (size_t i = 0; i < spans.size(); i++) {
    EXPECT_EQ(spans[i].name, "SELECT pg_class");
    EXPECT_EQ(spans[i].Int("db.response.returned_rows"), static_cast<int64_t>(i + 1));
    EXPECT_FALSE(spans[i].Has("db.namespace"));  // the startup was not seen
  }
  client.WriteStdin("quit\n");
  ExpectOnlyClientSpans(client.pid());
}

// sslmode=require: SSLRequest answered 'S', then the plaintext from libpq's OpenSSL.
TEST_F(PostgresE2eTest, TlsThroughTheOpenSslProbes) {
  ASSERT_NO_FATAL_FAILURE(Begin(22004, /*tls=*/true));
  const ClientRun c = PgClient({"tls", SecretFile()});
  ASSERT_EQ(c.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{c.pid, 2}}));
  EXPECT_EQ(Names(c.pid), (std::vector<std::string>{"SELECT", "SELECT missing_table"}))
      << Describe(c.pid);
  const std::vector<Span> spans = SpansOf(c.pid);
  if (spans.size() == 2) {
    EXPECT_EQ(spans[0].Str("db.query.text"), "SELECT ?::text AS secret");
    EXPECT_EQ(spans[0].Str("db.namespace"), "postgres");
    EXPECT_EQ(spans[1].Str("db.response.status_code"), "42P01");
  }
  ExpectOnlyClientSpans(c.pid);
  ExpectNoSecret();
}

// A query cancelled by the client (libpq's CancelRequest on a connection of its own) while
// its rows stream in: its span is an error (57014), the next query on the connection pairs with
// its own reply, and the cancel connection makes no span.
TEST_F(PostgresE2eTest, QueryCancelledMidResultIsAnErrorAndTheConnectionGoesOn) {
  ASSERT_NO_FATAL_FAILURE(Begin(44001));
  const ClientRun c = PgClient({"cancel"});
  ASSERT_EQ(c.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{c.pid, 3}}));
  const std::vector<Span> spans = SpansOf(c.pid);
  const Span* cancelled = Find(spans, "SELECT generate_series");
  ASSERT_NE(cancelled, nullptr) << Describe(c.pid);
  EXPECT_EQ(cancelled->status_code, kStatusError);
  EXPECT_EQ(cancelled->Str("db.response.status_code"), "57014");
  const Span* after = Find(spans, "SELECT");
  ASSERT_NE(after, nullptr) << Describe(c.pid);
  EXPECT_EQ(after->Str("db.query.text"), "SELECT ? AS after_cancel");
  EXPECT_EQ(after->status_code, kStatusUnset);
  EXPECT_EQ(after->Int("db.response.returned_rows"), 1);
  EXPECT_GT(after->start_ns, cancelled->end_ns);
  for (const Span& s : spans) {  // nothing else but the watcher's polls, all fine
    if (&s == cancelled || &s == after) continue;
    EXPECT_EQ(s.name, "SELECT pg_stat_activity") << Describe(c.pid);
    EXPECT_EQ(s.status_code, kStatusUnset) << s.Describe();
  }
  ExpectOnlyClientSpans(c.pid);
}

}  // namespace
}  // namespace zerotrace::e2e
