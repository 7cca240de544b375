// RedisProtocol: detection at a connection's start and mid-stream.
#include "protocols/redis/protocol.h"

#include <gtest/gtest.h>

#include "redis_test_util.h"

namespace zerotrace::protocols::redis {
namespace {

Detection Start(std::string_view sent, std::string_view received, uint8_t role = ZT_ROLE_CLIENT) {
  RedisProtocol p;
  return p.DetectStart(StartBytes{sent, received, role, false});
}

TEST(RedisProtocol, ClaimsClientsThatSendCommands) {
  const std::string hello = testing::Cmd({"HELLO", "3"});
  EXPECT_EQ(Start(hello, "").verdict, Verdict::kYes);
  EXPECT_EQ(Start(hello, "").role, ZT_ROLE_CLIENT);
  EXPECT_EQ(Start(hello.substr(0, 6), "").verdict, Verdict::kMaybe);
  EXPECT_EQ(Start("", "").verdict, Verdict::kMaybe);
  EXPECT_EQ(Start(testing::Cmd({"JSON.SET", "d", "$", "1"}), "").verdict, Verdict::kYes);
  // Inline commands: only with a RESP reply.
  EXPECT_EQ(Start("PING\r\n", "").verdict, Verdict::kMaybe);
  EXPECT_EQ(Start("PING\r\n", "+PONG\r\n").verdict, Verdict::kYes);
  EXPECT_EQ(Start("GET /x HTTP/1.1\r\n", "").verdict, Verdict::kNo);
  EXPECT_EQ(Start("GET /x", "").verdict, Verdict::kMaybe);
  EXPECT_EQ(Start("HELO mail.example\r\n", "").verdict, Verdict::kNo);
  EXPECT_EQ(Start("* OK IMAP\r\n", "").verdict, Verdict::kNo);
  EXPECT_EQ(Start("", "220 smtp ready\r\n").verdict, Verdict::kNo);
  EXPECT_EQ(Start(std::string("\x16\x03\x01\x02\x00", 5), "").verdict, Verdict::kNo);  // TLS
  EXPECT_EQ(Start("PING-PONG-PROTOCOL v1\r\n", "").verdict, Verdict::kNo);
}

TEST(RedisProtocol, NeverClaimsTheServerSide) {
  EXPECT_EQ(Start("", testing::Cmd({"GET", "k"}), ZT_ROLE_SERVER).verdict, Verdict::kNo);
  RedisProtocol p;
  const std::string cmd = testing::Cmd({"GET", "k"});
  EXPECT_EQ(p.DetectResync({cmd, ZT_DIR_INGRESS, ZT_ROLE_UNKNOWN}).verdict, Verdict::kNo);
  EXPECT_EQ(p.DetectResync({cmd, ZT_DIR_EGRESS, ZT_ROLE_SERVER}).verdict, Verdict::kNo);
  const Detection d = p.DetectResync({cmd, ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN});
  EXPECT_EQ(d.verdict, Verdict::kYes);
  EXPECT_EQ(d.role, ZT_ROLE_CLIENT);
}

TEST(RedisProtocol, MidStreamNeedsAKnownCommandWithItsArity) {
  RedisProtocol p;
  auto resync = [&p](const std::string& b) {
    return p.DetectResync({b, ZT_DIR_EGRESS, ZT_ROLE_UNKNOWN}).verdict;
  };
  EXPECT_EQ(resync(testing::Cmd({"SET", "k", "v"})), Verdict::kYes);
  // A server's array reply (LRANGE) written by a pre-existing server socket.
  EXPECT_EQ(resync(testing::Cmd({"item0", "item1"})), Verdict::kNo);
  EXPECT_EQ(resync(testing::Cmd({"get", "a", "b"})), Verdict::kNo);
  EXPECT_EQ(resync("PING\r\n"), Verdict::kNo);
  EXPECT_EQ(resync("*2\r\n$3\r\nGE"), Verdict::kMaybe);
}

}  // namespace
}  // namespace zerotrace::protocols::redis
