// Redis end to end: a real redis-server (per test, own port and directory), python3-redis,
// a raw RESP3 client and redis-cli. Each command is one CLIENT span of the process that sent
// it; redis-server (traced too) makes none; no value or password ever leaves the agent.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_fixture.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::kServerStartDeadline;

constexpr char kSecret[] = "s3cr3t-value-7d1f";  // redis_client.py's SECRET

// A free port in this suite's range (23000-23999), so parallel suites never collide.
int RangePort() {
  std::mt19937 rng(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
  for (int tries = 0; tries < 200; tries++) {
    const int port = 23000 + static_cast<int>(rng() % 1000);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (free) return port;
  }
  return 0;
}

class RedisTest : public AgentTest {
 protected:
  // redis-server on its own port and directory; killed with the test.
  zerotrace::testing::Subprocess& StartRedis(std::vector<std::string> extra = {}) {
    port_ = RangePort();
    std::vector<std::string> argv = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir(),
                                     "--daemonize",
                                     "no"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto& s = Spawn(argv);
    EXPECT_TRUE(s.WaitForLine("Ready to accept connections", kServerStartDeadline));
    server_pid_ = s.pid();
    return s;
  }
  ClientRun Client(const std::string& scenario, std::vector<std::string> args = {}) {
    args.insert(args.begin(), {scenario, std::to_string(port_)});
    ClientRun r = RunPythonClient("redis_client.py", args);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_FALSE(r.lines.empty() || r.lines.back() != "done") << scenario;
    return r;
  }
  // The client's spans: their names in order; each is a CLIENT span with the Redis attributes
  // and the server's address.
  std::vector<std::string> Names(pid_t pid) const {
    std::vector<std::string> out;
    for (const Span& s : SpansOf(pid)) {
      EXPECT_EQ(s.kind, kClient) << s.Describe();
      EXPECT_EQ(s.Str("db.system.name"), "redis") << s.Describe();
      EXPECT_EQ(s.Str("db.operation.name"), s.name) << s.Describe();
      EXPECT_EQ(s.Int("server.port"), port_) << s.Describe();
      EXPECT_EQ(s.Int("network.peer.port"), port_) << s.Describe();
      out.push_back(s.name);
    }
    return out;
  }
  // Nothing the agent wrote holds `secret`, and redis-server made no span.
  void ExpectPrivateAndOneSided(const std::string& secret = kSecret) {
    std::ifstream in(dir() + "/spans.jsonl");
    std::stringstream all;
    all << in.rdbuf();
    EXPECT_EQ(all.str().find(secret), std::string::npos) << "a value left the agent";
    for (const std::string& line : AgentOutput()) {
      EXPECT_EQ(line.find(secret), std::string::npos) << line;
    }
    EXPECT_TRUE(SpansOf(server_pid_).empty()) << Describe(server_pid_);
  }

  int port_ = 0;
  pid_t server_pid_ = -1;
};

using V = std::vector<std::string>;

TEST_F(RedisTest, CommandsErrorsAndNamespacesFollowTheConventions) {
  StartRedis();
  const ClientRun c = Client("basic");
  ASSERT_TRUE(AwaitSpans({{c.pid, 7}}));
  EXPECT_EQ(Names(c.pid), (V{"SET", "GET", "INCRBY", "LPUSH", "NOSUCHCMD", "SELECT", "GET"}));
  const std::vector<Span> s = SpansOf(c.pid);
  ASSERT_EQ(s.size(), 7u) << Describe(c.pid);
  EXPECT_EQ(s[0].Str("db.query.text"), "SET user:1 ?");
  EXPECT_EQ(s[0].Str("db.namespace"), "0");
  EXPECT_EQ(s[0].status_code, kStatusUnset);
  EXPECT_EQ(s[3].status_code, kStatusError);
  EXPECT_EQ(s[3].Str("db.response.status_code"), "WRONGTYPE");
  EXPECT_EQ(s[3].Str("error.type"), "WRONGTYPE");
  EXPECT_EQ(s[4].Str("db.response.status_code"), "ERR");  // its message quotes the secret
  EXPECT_EQ(s[6].Str("db.namespace"), "2");
  EXPECT_EQ(s[6].Str("db.query.text"), "GET user:1");
  ExpectPrivateAndOneSided();
}

TEST_F(RedisTest, AuthPasswordNeverLeavesTheAgent) {
  const std::string password = "pw-9c2e-never-exported";
  StartRedis({"--requirepass", password});
  const ClientRun c =
      Run({"env", "REDIS_PASSWORD=" + password, "/usr/bin/python3", "-B",
           std::string(ZT_E2E_DIR) + "/clients/redis_client.py", "auth", std::to_string(port_)});
  ASSERT_EQ(c.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{c.pid, 3}}));
  EXPECT_EQ(Names(c.pid), (V{"AUTH", "SET", "GET"}));
  EXPECT_EQ(SpansOf(c.pid)[0].Str("db.query.text"), "AUTH ?");
  ExpectPrivateAndOneSided(password);
  ExpectPrivateAndOneSided();
}

// 300 commands in one pipeline (redis-py writes them in a few sends): each pairs with its own
// reply, which the reply's type shows (SET +OK, INCRBY 1, GET the value).
TEST_F(RedisTest, PipelinedCommandsPairExactly) {
  StartRedis();
  const ClientRun c = Client("pipeline", {"100"});
  ASSERT_TRUE(AwaitSpans({{c.pid, 300}}));
  const std::vector<Span> s = SpansOf(c.pid);
  ASSERT_EQ(s.size(), 300u);
  for (size_t i = 0; i < s.size(); i++) {
    const std::string k = std::to_string(i / 3);
    const char* want[] = {"SET k", "INCRBY n", "GET k"};
    EXPECT_EQ(s[i].Str("db.query.text"), want[i % 3] + k + (i % 3 == 2 ? "" : " ?"))
        << s[i].Describe();
    EXPECT_EQ(s[i].status_code, kStatusUnset) << s[i].Describe();
  }
  ExpectPrivateAndOneSided();
}

TEST_F(RedisTest, TransactionCommandsTakeTheirResultsFromExec) {
  StartRedis();
  const ClientRun c = Client("multi");
  ASSERT_TRUE(AwaitSpans({{c.pid, 6}}));
  EXPECT_EQ(Names(c.pid), (V{"DEL", "MULTI", "SET", "LPUSH", "INCRBY", "EXEC"}));
  const std::vector<Span> s = SpansOf(c.pid);
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(s[3].Str("db.response.status_code"), "WRONGTYPE") << s[3].Describe();
  EXPECT_EQ(s[4].status_code, kStatusUnset);
  EXPECT_EQ(s[5].Int("db.operation.batch.size"), 3);
  EXPECT_EQ(s[3].end_ns, s[5].end_ns);  // executed by EXEC
  ExpectPrivateAndOneSided();
}

TEST_F(RedisTest, BlockingCommandsLastAsLongAsTheyBlock) {
  StartRedis();
  const ClientRun c = Client("blpop");
  ASSERT_TRUE(AwaitSpans({{c.pid, 5}}));
  // One connection: DEL, BLPOP (times out), BLPOP (answered), GET; the pusher's RPUSH.
  std::vector<Span> blpops;
  for (const Span& s : SpansOf(c.pid)) {
    if (s.name == "BLPOP") blpops.push_back(s);
  }
  ASSERT_EQ(blpops.size(), 2u) << Describe(c.pid);
  EXPECT_EQ(blpops[0].Str("db.query.text"), "BLPOP q1 ?");
  EXPECT_GE(blpops[0].end_ns - blpops[0].start_ns, 1'000'000'000u) << blpops[0].Describe();
  EXPECT_GE(blpops[1].end_ns - blpops[1].start_ns, 400'000'000u) << blpops[1].Describe();
  EXPECT_LT(blpops[1].end_ns - blpops[1].start_ns, 5'000'000'000u) << blpops[1].Describe();
  EXPECT_EQ(Names(c.pid), (V{"DEL", "BLPOP", "BLPOP", "RPUSH", "GET"}));
  ExpectPrivateAndOneSided();
}

class RedisStatsTest : public RedisTest {
 protected:
  std::vector<std::string> AgentFlags() const override { return {"--stats-interval", "1"}; }
};

// Messages pushed to a subscriber are no spans (counted), and never taken for the replies of
// the PING and UNSUBSCRIBE sent on the same connection.
TEST_F(RedisStatsTest, PubSubMessagesAreCountedNotPaired) {
  StartRedis();
  const ClientRun c = Client("pubsub", {"20"});
  ASSERT_TRUE(WaitForSpans({{c.pid, 24}}));
  const auto messages = StatsCounter("redis_pubsub_messages", 0);
  ASSERT_TRUE(messages.has_value());
  EXPECT_EQ(*messages, 20u);
  StopAgent();
  std::vector<std::string> names = Names(c.pid);
  EXPECT_EQ(std::count(names.begin(), names.end(), "PUBLISH"), 20) << Describe(c.pid);
  names.erase(std::remove(names.begin(), names.end(), "PUBLISH"), names.end());
  EXPECT_EQ(names, (V{"SUBSCRIBE", "PING", "UNSUBSCRIBE", "SET"})) << Describe(c.pid);
  ExpectPrivateAndOneSided();
}

// 1 MB values (far beyond the 16 KB captured per syscall) and a 60 KB list reply: bulk
// payloads are skipped by length; the list's framing is lost, its span ends where it was lost,
// and pairing resumes exactly at the next command.
TEST_F(RedisTest, LargeValuesAndRepliesBeyondTheCapture) {
  StartRedis();
  const ClientRun c = Client("big", {"5000"});
  ASSERT_TRUE(AwaitSpans({{c.pid, 56}}));
  std::vector<std::string> names = Names(c.pid);
  ASSERT_EQ(names.size(), 56u) << Describe(c.pid);
  EXPECT_EQ(V(names.begin(), names.begin() + 3), (V{"DEL", "SET", "GET"}));
  EXPECT_EQ(V(names.end() - 3, names.end()), (V{"LRANGE", "GET", "SET"}));
  const std::vector<Span> s = SpansOf(c.pid);
  EXPECT_EQ(s[54].Str("db.query.text"), "GET missing");
  EXPECT_EQ(s[55].Str("db.query.text"), "SET after ?");
  ExpectPrivateAndOneSided();
}

TEST_F(RedisTest, Resp3PushesAreNotReplies) {
  StartRedis();
  const ClientRun c = Client("resp3");
  ASSERT_TRUE(AwaitSpans({{c.pid, 7}}));
  EXPECT_EQ(Names(c.pid), (V{"HELLO", "CLIENT TRACKING", "SET", "GET", "SET", "PING", "HGETALL"}));
  ExpectPrivateAndOneSided();
}

TEST_F(RedisTest, RedisCliInRespTwoAndThree) {
  StartRedis();
  const std::string port = std::to_string(port_);
  const ClientRun set = Run({"redis-cli", "-p", port, "SET", "clikey", kSecret});
  const ClientRun get = Run({"redis-cli", "-3", "-p", port, "HGETALL", "nohash"});
  const ClientRun bad = Run({"redis-cli", "-p", port, "INCR", "clikey"});
  ASSERT_TRUE(AwaitSpans({{set.pid, 1}, {get.pid, 2}, {bad.pid, 1}}));
  EXPECT_EQ(Names(set.pid), (V{"SET"}));
  EXPECT_EQ(Names(get.pid), (V{"HELLO", "HGETALL"}));
  EXPECT_EQ(Names(bad.pid), (V{"INCR"}));
  EXPECT_EQ(SpansOf(bad.pid)[0].Str("error.type"), "ERR");
  ExpectPrivateAndOneSided();
}

class RedisMidStreamTest : public RedisTest {
 protected:
  void SetUp() override {}  // the agent starts in the middle of things
};

// The agent starts while a BLPOP sent before it is blocked; GET is sent behind it on the same
// connection, so the BLPOP's reply (sent before the agent looked) arrives after GET: it must
// not become GET's. GET is dropped (counted); INCR, sent once everything was read, is paired.
TEST_F(RedisMidStreamTest, AgentStartedMidConnectionNeverMispairs) {
  StartRedis();
  auto& client =
      Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/clients/redis_client.py",
             "midstream", std::to_string(port_)});
  ASSERT_TRUE(client.WaitForLine("ready", 20s));
  AgentTest::SetUp();
  client.WriteStdin("go\n");
  ASSERT_TRUE(client.WaitForLine("done", 20s));
  ASSERT_TRUE(AwaitSpans({{client.pid(), 2}}));
  // The RPUSH of a new connection, then INCR on the old one.
  EXPECT_EQ(Names(client.pid()), (V{"RPUSH", "INCR"}));
  const std::vector<Span> s = SpansOf(client.pid());
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].Str("db.query.text"), "INCR mn");
  EXPECT_FALSE(s[1].Has("db.namespace"));  // a SELECT may have come before the agent
  ExpectPrivateAndOneSided();
}

}  // namespace
}  // namespace zerotrace::e2e
