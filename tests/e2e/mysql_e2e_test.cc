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

namespace zerotrace::e2e {
namespace {

constexpr char kSecret[] = "Zt-my-s3cr3t-0815";

class MysqlE2eTest : public AgentTest {
 protected:
  void SetUp() override {}
  // A fresh data dir (root without a password) and mariadbd on `port`, then the agent.
  void Begin(int port) {
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
    server_ = std::make_unique<zerotrace::testing::Subprocess>(std::vector<std::string>{
        "mariadbd", "--no-defaults", "--user=mysql", "--datadir=" + data,
        "--socket=" + data_dir_.path() + "/sock", "--port=" + std::to_string(port),
        "--bind-address=127.0.0.1", "--skip-grant-tables=0", "--innodb-buffer-pool-size=16M",
        "--skip-log-bin"});
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

  int port_ = 0;
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

}  // namespace
}  // namespace zerotrace::e2e
