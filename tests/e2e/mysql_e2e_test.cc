// End-to-end MySQL protocol: a real MariaDB server (its own data dir and port per test) and
// real clients (pymysql, the mariadb CLI); every command is one CLIENT span of the process that
// sent it, the server on the same node reports none, and no literal is exported.
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e_fixture.h"
#include "test_pki.h"

namespace zerotrace::e2e {
namespace {

constexpr char kSecret[] = "Zt-my-s3cr3t-0815";

class MysqlE2eTest : public AgentTest {
 protected:
  void SetUp() override {}
  // A fresh data dir (root without a password) and mariadbd on `port`, then the agent. With
  // `tls` the server also offers TLS (a test CA's certificate; ca_cert() for the clients).
  void Begin(int port, bool tls = false) {
    port_ = port;
    const std::string data = data_dir_.path() + "/data";
    chmod(data_dir_.path().c_str(), 0755);
    mkdir(data.c_str(), 0700);
    const passwd* pw = getpwnam("mysql");
    ASSERT_NE(pw, nullptr) << "no mysql user (apt-get install mariadb-server)";
    ASSERT_EQ(chown(data.c_str(), pw->pw_uid, pw->pw_gid), 0);
    ASSERT_EQ(chown(data_dir_.path().c_str(), pw->pw_uid, pw->pw_gid), 0);
    const ClientRun init =
        Run({"mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir=" + data,
             "--auth-root-authentication-method=normal", "--skip-test-db"},
            120s);
    ASSERT_EQ(init.exit_code, 0);
    std::vector<std::string> tls_args;
    if (tls) {
      zerotrace::testing::TestPki pki;
      ASSERT_TRUE(zerotrace::testing::MakeTestPki(data_dir_.path(), "pki", &pki));
      for (const std::string& f : {data_dir_.path() + "/pki", pki.server_cert, pki.server_key}) {
        ASSERT_EQ(chown(f.c_str(), pw->pw_uid, pw->pw_gid), 0) << f;  // mariadbd reads them
      }
      ca_cert_ = pki.ca_cert;
      tls_args = {"--ssl-ca=" + pki.ca_cert, "--ssl-cert=" + pki.server_cert,
                  "--ssl-key=" + pki.server_key};
    }
    std::vector<std::string> argv = {"mariadbd",
                                     "--no-defaults",
                                     "--user=mysql",
                                     "--datadir=" + data,
                                     "--socket=" + data_dir_.path() + "/sock",
                                     "--port=" + std::to_string(port),
                                     "--bind-address=127.0.0.1",
                                     "--skip-grant-tables=0",
                                     "--innodb-buffer-pool-size=16M",
                                     "--skip-log-bin"};
    argv.insert(argv.end(), tls_args.begin(), tls_args.end());
    server_ = std::make_unique<zerotrace::testing::Subprocess>(argv);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    bool up = false;
    while (!up && std::chrono::steady_clock::now() < deadline) {
      up = Run({"mariadb-admin", "--no-defaults", "-h127.0.0.1", "-P" + std::to_string(port),
                "-uroot", "ping"},
               10s)
               .exit_code == 0;
      if (!up) std::this_thread::sleep_for(200ms);  // poll interval while the server starts
    }
    ASSERT_TRUE(up) << "mariadbd did not start on " << port;
    ASSERT_EQ(Run({"mariadb", "--no-defaults", "-h127.0.0.1", "-P" + std::to_string(port), "-uroot",
                   "-e", "CREATE DATABASE IF NOT EXISTS test"})
                  .exit_code,
              0);
    AgentTest::SetUp();
  }
  void TearDown() override {
    AgentTest::TearDown();
    if (server_) {
      kill(server_->pid(), SIGTERM);
      server_->Wait(30s);
      server_.reset();
    }
  }
  std::string SecretFile() const {
    const std::string path = dir() + "/secret";
    std::ofstream(path) << kSecret;
    return path;
  }
  void ExpectOnlyClientSpans(pid_t client) const {
    for (const Span& s : AllSpans()) {
      if (s.Str("db.system.name") == "mariadb" || s.Str("db.system.name") == "mysql") {
        EXPECT_EQ(s.pid, client) << "a span not from the client: " << s.Describe();
      }
    }
  }
  void ExpectNoSecret() const {
    std::ifstream in(dir() + "/spans.jsonl");
    std::stringstream all;
    all << in.rdbuf();
    EXPECT_EQ(all.str().find(kSecret), std::string::npos);
    for (const std::string& line : AgentOutput()) {
      EXPECT_EQ(line.find(kSecret), std::string::npos) << line;
    }
  }

  const std::string& ca_cert() const { return ca_cert_; }
  // Spans of `pid` named `name`.
  std::vector<Span> Named(pid_t pid, const std::string& name) const {
    std::vector<Span> out;
    for (const Span& s : SpansOf(pid)) {
      if (s.name == name) out.push_back(s);
    }
    return out;
  }

  int port_ = 0;
  std::string ca_cert_;
  zerotrace::testing::TempDir data_dir_;
  std::unique_ptr<zerotrace::testing::Subprocess> server_;
};

TEST_F(MysqlE2eTest, PymysqlQueriesErrorsBigResultsAndInitDb) {
  ASSERT_NO_FATAL_FAILURE(Begin(22101));
  const ClientRun c = RunPythonClient("my_client.py", {std::to_string(port_), SecretFile()});
  ASSERT_EQ(c.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{c.pid, 7}}));
  const std::vector<Span> spans = SpansOf(c.pid);
  std::vector<std::string> names;
  for (const Span& s : spans) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "DROP TABLE orders", "CREATE TABLE orders", "INSERT orders", "SELECT orders",
                       "SELECT missing_table", "SELECT seq_1_to_20000", "SELECT user"}))
      << Describe(c.pid);
  for (const Span& s : spans) {
    EXPECT_EQ(s.kind, kClient);
    EXPECT_EQ(s.Str("db.system.name"), "mariadb");
    EXPECT_EQ(s.Int("server.port"), port_);
  }
  if (spans.size() == 7) {
    EXPECT_EQ(spans[0].Str("db.namespace"), "test");
    EXPECT_EQ(spans[2].Str("db.query.text"), "INSERT INTO orders VALUES (?, ?)");
    EXPECT_EQ(spans[3].Int("db.response.returned_rows"), 1);
    EXPECT_EQ(spans[4].status_code, kStatusError);
    EXPECT_EQ(spans[4].Str("db.response.status_code"), "1146");
    EXPECT_EQ(spans[5].Int("db.response.returned_rows"), 20000);
    EXPECT_EQ(spans[6].Str("db.namespace"), "mysql");  // after COM_INIT_DB
  }
  ExpectOnlyClientSpans(c.pid);
  ExpectNoSecret();
}

// The mariadb CLI (libmariadb, CLIENT_DEPRECATE_EOF) with a multi-statement batch.
TEST_F(MysqlE2eTest, MariadbCliMultiStatements) {
  ASSERT_NO_FATAL_FAILURE(Begin(22102));
  const ClientRun c =
      Run({"mariadb", "--no-defaults", "-h127.0.0.1", "-P" + std::to_string(port_), "-uroot",
           "test", "-e", "SELECT 1 AS a; SELECT 2 AS b, 3 AS c; SELECT * FROM nope"});
  ASSERT_NE(c.exit_code, 0);  // the last statement fails
  ASSERT_TRUE(AwaitSpans({{c.pid, 1}}));
  const std::vector<Span> spans = SpansOf(c.pid);
  ASSERT_FALSE(spans.empty());
  const Span& last = spans.back();
  EXPECT_EQ(last.name, "SELECT nope") << Describe(c.pid);
  EXPECT_EQ(last.Str("db.response.status_code"), "1146");
  ExpectOnlyClientSpans(c.pid);
}

// Three clients against one server that also offers TLS (mariadb-install-db costs ~9 s, so
// they share it and one agent); each client's spans are checked on their own.
class MysqlSharedServerTest : public MysqlE2eTest {
 protected:
  // Server-side prepared statements from node's mysql2 (execute(): COM_STMT_PREPARE once per
  // text, then COM_STMT_EXECUTE with binary parameters; COM_STMT_CLOSE): each execute is one span
  // with its prepared text, sanitised; a failed prepare and a failed execute are error spans.
  void CheckPreparedStatements(const ClientRun& c) {
    const std::vector<Span> spans = SpansOf(c.pid);
    std::vector<std::string> names;
    for (const Span& s : spans) names.push_back(s.name);
    ASSERT_EQ(names, (std::vector<std::string>{"DROP TABLE stmt_orders", "CREATE TABLE stmt_orders",
                                               "INSERT stmt_orders", "INSERT stmt_orders",
                                               "SELECT stmt_orders", "SELECT missing_table",
                                               "SELECT stmt_orders"}))
        << Describe(c.pid);
    for (const Span& s : spans) {
      EXPECT_EQ(s.kind, kClient);
      EXPECT_EQ(s.Str("db.system.name"), "mariadb");
      EXPECT_EQ(s.Str("db.namespace"), "test");
      EXPECT_EQ(s.Int("server.port"), port_);
    }
    EXPECT_EQ(spans[2].Str("db.query.text"), "INSERT INTO stmt_orders VALUES (?, ?)");
    EXPECT_EQ(spans[2].status_code, kStatusUnset);
    EXPECT_EQ(spans[3].Str("db.query.text"), "INSERT INTO stmt_orders VALUES (?, ?)");
    EXPECT_EQ(spans[3].status_code, kStatusError);  // duplicate key, on the execute
    EXPECT_EQ(spans[3].Str("db.response.status_code"), "1062");
    EXPECT_EQ(spans[4].Str("db.query.text"), "SELECT id, note FROM stmt_orders WHERE note = ?");
    EXPECT_EQ(spans[4].Int("db.response.returned_rows"), 1);
    EXPECT_EQ(spans[5].status_code, kStatusError);  // no such table, on the prepare
    EXPECT_EQ(spans[5].Str("db.response.status_code"), "1146");
    EXPECT_EQ(spans[6].Str("db.query.text"),
              "SELECT id FROM stmt_orders WHERE note <> ? AND id > ?");  // its literal sanitised
  }

  // KILL QUERY from a second connection while the first is in the middle of reading a result:
  // that query's span is an error (1317), the next query on the same connection pairs with its
  // own reply, and the killer's connection has only its own queries.
  void CheckKilledQuery(const ClientRun& c) {
    const std::vector<Span> killed = Named(c.pid, "SELECT seq_1_to_4000");
    ASSERT_EQ(killed.size(), 1u) << Describe(c.pid);
    EXPECT_EQ(killed[0].status_code, kStatusError);
    EXPECT_EQ(killed[0].Str("db.response.status_code"), "1317");
    EXPECT_FALSE(killed[0].Has("db.response.returned_rows"));  // not what a failed query says
    const std::vector<Span> after = Named(c.pid, "SELECT");
    ASSERT_EQ(after.size(), 1u) << Describe(c.pid);
    EXPECT_EQ(after[0].Str("db.query.text"), "SELECT ? AS after_kill");
    EXPECT_EQ(after[0].status_code, kStatusUnset);
    EXPECT_EQ(after[0].Int("db.response.returned_rows"), 1);
    EXPECT_GT(after[0].start_ns, killed[0].end_ns);
    const std::vector<Span> kill = Named(c.pid, "KILL");
    ASSERT_EQ(kill.size(), 1u) << Describe(c.pid);
    EXPECT_EQ(kill[0].status_code, kStatusUnset);
    for (const Span& s : SpansOf(c.pid)) {  // and nothing else: the killer's polls
      if (s.name != "SELECT seq_1_to_4000" && s.name != "SELECT" && s.name != "KILL") {
        EXPECT_EQ(s.name, "SELECT information_schema.PROCESSLIST") << Describe(c.pid);
        EXPECT_EQ(s.status_code, kStatusUnset);
      }
    }
  }

  // pymysql switching to TLS in the handshake (python's ssl: OpenSSL): the queries come through
  // the OpenSSL probes as the same spans as in plaintext, and the literal stays inside.
  void CheckTls(const ClientRun& c) {
    const std::vector<Span> spans = SpansOf(c.pid);
    std::vector<std::string> names;
    for (const Span& s : spans) names.push_back(s.name);
    ASSERT_EQ(names, (std::vector<std::string>{"DROP TABLE tls_orders", "CREATE TABLE tls_orders",
                                               "INSERT tls_orders", "SELECT tls_orders",
                                               "SELECT missing_table"}))
        << Describe(c.pid);
    for (const Span& s : spans) {
      EXPECT_EQ(s.Str("db.system.name"), "mariadb");
      EXPECT_EQ(s.Str("db.namespace"), "test");
      EXPECT_EQ(s.Int("server.port"), port_);
    }
    EXPECT_EQ(spans[2].Str("db.query.text"), "INSERT INTO tls_orders VALUES (?, ?)");
    EXPECT_EQ(spans[3].Int("db.response.returned_rows"), 1);
    EXPECT_EQ(spans[4].Str("db.response.status_code"), "1146");
  }
};

TEST_F(MysqlSharedServerTest, PreparedStatementsKilledQueryAndTls) {
  ASSERT_EQ(access(ZT_NODE_MODULES "/mysql2/package.json", R_OK), 0)
      << "mysql2 is not in " ZT_NODE_MODULES " (npm ci failed at build time: npm registry?)";
  ASSERT_NO_FATAL_FAILURE(Begin(44101, /*tls=*/true));
  const ClientRun stmt = Run({"node", std::string(ZT_E2E_DIR) + "/clients/my_stmt_client.js",
                              ZT_NODE_MODULES, std::to_string(port_), SecretFile()});
  ASSERT_EQ(stmt.exit_code, 0);
  const ClientRun kill = RunPythonClient("my_kill_client.py", {std::to_string(port_)});
  ASSERT_EQ(kill.exit_code, 0);
  const ClientRun tls =
      RunPythonClient("my_tls_client.py", {std::to_string(port_), ca_cert(), SecretFile()});
  ASSERT_EQ(tls.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{stmt.pid, 7}, {kill.pid, 4}, {tls.pid, 5}}));
  {
    SCOPED_TRACE("mysql2 prepared statements");
    CheckPreparedStatements(stmt);
  }
  {
    SCOPED_TRACE("KILL QUERY mid-result");
    CheckKilledQuery(kill);
  }
  {
    SCOPED_TRACE("pymysql over TLS");
    CheckTls(tls);
  }
  for (const Span& s : AllSpans()) {  // the server on this node reports none
    if (s.Str("db.system.name") == "mariadb" || s.Str("db.system.name") == "mysql") {
      EXPECT_TRUE(s.pid == stmt.pid || s.pid == kill.pid || s.pid == tls.pid) << s.Describe();
    }
  }
  ExpectNoSecret();  // neither the bound parameter nor the literals, in the clear or over TLS
}

}  // namespace
}  // namespace zerotrace::e2e
