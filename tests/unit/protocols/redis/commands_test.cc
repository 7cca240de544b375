// Commands: operation names and sanitised query texts.
#include "protocols/redis/commands.h"

#include <gtest/gtest.h>

#include "redis_test_util.h"

namespace zerotrace::protocols::redis {
namespace {

CommandSummary Summarize(const std::string& bytes) {
  conn::ByteStream s;
  s.AddData(0, bytes, 1);
  RespParser p(true);
  EXPECT_EQ(p.Next(s), RespParser::Result::kValue) << bytes;
  CommandSummary c;
  EXPECT_TRUE(SummarizeCommand(p.value(), &c));
  return c;
}

TEST(RedisCommands, OperationAndQueryTextKeepKeysOnly) {
  using testing::Cmd;
  struct Case {
    std::string bytes;
    std::string operation, query;
  } cases[] = {
      {Cmd({"get", "user:1"}), "GET", "GET user:1"},
      {Cmd({"SET", "k", "secret", "EX", "10"}), "SET", "SET k ? ? ?"},
      {Cmd({"MSET", "a", "1", "b", "2"}), "MSET", "MSET a ? b ?"},
      {Cmd({"AUTH", "alice", "pa55word"}), "AUTH", "AUTH ? ?"},
      {Cmd({"HELLO", "3", "AUTH", "alice", "pa55word"}), "HELLO", "HELLO ? ? ? ?"},
      {Cmd({"CONFIG", "SET", "requirepass", "pa55word"}), "CONFIG SET", "CONFIG SET ? ?"},
      {Cmd({"client", "setname", "worker-1"}), "CLIENT SETNAME", "CLIENT SETNAME ?"},
      {Cmd({"CLIENT", "nosuchsub", "x"}), "CLIENT", "CLIENT ? ?"},
      {Cmd({"OBJECT", "ENCODING", "k"}), "OBJECT ENCODING", "OBJECT ENCODING k"},
      {Cmd({"EVAL", "return 1", "1", "k", "v"}), "EVAL", "EVAL ? ? ? ?"},
      {Cmd({"BLPOP", "q1", "q2", "5"}), "BLPOP", "BLPOP q1 q2 ?"},
      {Cmd({"GET", "caf\xc3\xa9 \"x\""}), "GET", "GET \"caf\\xc3\\xa9 \\\"x\\\"\""},
      {Cmd({"GET", std::string(100, 'k')}), "GET", "GET " + std::string(64, 'k') + "..."},
      {Cmd({"JSON.GET", "doc", "$.a"}), "JSON.GET", "JSON.GET ? ?"},
      {Cmd({"bad name!", "x"}), "_OTHER", "_OTHER ?"},
      {"get k\r\n", "GET", "GET k"},
  };
  for (const Case& c : cases) {
    const CommandSummary s = Summarize(c.bytes);
    EXPECT_EQ(s.operation, c.operation) << c.bytes;
    EXPECT_EQ(s.query, c.query) << c.bytes;
  }
}

TEST(RedisCommands, LongCommandsAreCut) {
  std::string bytes = "*41\r\n$3\r\nDEL\r\n";
  for (int i = 0; i < 40; i++) bytes += "$2\r\nk" + std::to_string(i % 10) + "\r\n";
  EXPECT_EQ(Summarize(bytes).query, "DEL k0 k1 k2 k3 k4 k5 k6 k7 k8 k9 k0 k1 k2 k3 k4 ...");
}

TEST(RedisCommands, KindsThatPairingNeeds) {
  using testing::Cmd;
  EXPECT_EQ(Summarize(Cmd({"SELECT", "7"})).select_db, 7);
  EXPECT_EQ(Summarize(Cmd({"SUBSCRIBE", "a", "b"})).channels, 2u);
  EXPECT_EQ(Summarize(Cmd({"PUNSUBSCRIBE"})).pubsub, 'p');
  EXPECT_EQ(Summarize(Cmd({"CLIENT", "REPLY", "off"})).client_reply, 'F');
  EXPECT_TRUE(Summarize(Cmd({"BRPOP", "q", "0"})).blocking);
  EXPECT_EQ(Summarize(Cmd({"HELLO", "3"})).hello_proto, 3);
  EXPECT_EQ(Summarize(Cmd({"PSYNC", "?", "-1"})).kind, CommandKind::kReplication);
}

TEST(RedisCommands, TableLookups) {
  ASSERT_NE(FindCommand("GET"), nullptr);
  EXPECT_EQ(FindCommand("GET")->arity, 2);
  EXPECT_EQ(FindCommand("get"), nullptr);
  EXPECT_TRUE(KnownCommandWithArity("get", 2));
  EXPECT_FALSE(KnownCommandWithArity("get", 3));
  EXPECT_TRUE(KnownCommandWithArity("SET", 5));
  EXPECT_FALSE(KnownCommandWithArity("item0", 1));
}

}  // namespace
}  // namespace zerotrace::protocols::redis
