// RedisSession: pairing of commands and replies.
#include "protocols/redis/session.h"

#include <gtest/gtest.h>

#include "redis_test_util.h"

namespace zerotrace::protocols::redis {
namespace {

using testing::Bulk;
using testing::Cmd;
using testing::FakeConn;
using V = std::vector<std::string>;

TEST(RedisSession, CommandAndReplyMakeOneExchange) {
  FakeConn c;
  c.Send(Cmd({"SET", "user:1", "s3cr3t-value"}));
  c.Receive("+OK\r\n");
  ASSERT_EQ(c.seen().size(), 1u);
  const auto& x = c.seen()[0];
  EXPECT_EQ(x.name, "SET");
  EXPECT_EQ(x.attr("db.system.name"), "redis");
  EXPECT_EQ(x.attr("db.operation.name"), "SET");
  EXPECT_EQ(x.attr("db.query.text"), "SET user:1 ?");
  EXPECT_EQ(x.attr("db.namespace"), "0");
  EXPECT_FALSE(x.error);
  EXPECT_LT(x.start_ns, x.end_ns);
  EXPECT_EQ(c.starts(), 1u);
}

TEST(RedisSession, ErrorReplyIsAnErrorSpanWithItsPrefixOnly) {
  FakeConn c;
  c.Send(Cmd({"LPUSH", "k", "v"}));
  c.Receive("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  c.Send(Cmd({"NOSUCHCMD", "hunter2"}));
  c.Receive("-ERR unknown command 'NOSUCHCMD', with args beginning with: 'hunter2' \r\n");
  ASSERT_EQ(c.seen().size(), 2u);
  EXPECT_TRUE(c.seen()[0].error);
  EXPECT_EQ(c.seen()[0].attr("db.response.status_code"), "WRONGTYPE");
  EXPECT_EQ(c.seen()[0].attr("error.type"), "WRONGTYPE");
  EXPECT_EQ(c.seen()[1].attr("db.response.status_code"), "ERR");
  EXPECT_EQ(c.seen()[1].attr("db.query.text"), "NOSUCHCMD ?");
  for (const auto& x : c.seen()) {
    for (const auto& [k, v] : x.attrs) EXPECT_EQ(v.find("hunter2"), std::string::npos) << k;
  }
}

TEST(RedisSession, PipelinedCommandsPairInOrder) {
  FakeConn c;
  c.Send(Cmd({"INCR", "a"}) + Cmd({"GET", "b"}) + Cmd({"LRANGE", "l", "0", "-1"}));
  c.Receive(":1\r\n$3\r\n");
  c.Receive("foo\r\n*2\r\n$1\r\nx\r\n");
  EXPECT_EQ(c.seen().size(), 2u);
  c.Receive("$1\r\ny\r\n");
  EXPECT_EQ(c.names(), (V{"INCR", "GET", "LRANGE"}));
  EXPECT_EQ(c.stats().reply_mismatches, 0u);
}

TEST(RedisSession, InlineCommandsAreCommands) {
  FakeConn c;
  c.Send("PING\r\nSET k \"a secret\"\r\n\r\n");
  c.Receive("+PONG\r\n+OK\r\n");
  EXPECT_EQ(c.names(), (V{"PING", "SET"}));
  EXPECT_EQ(c.seen()[1].attr("db.query.text"), "SET k ?");
}

TEST(RedisSession, SelectSetsTheNamespaceOfLaterCommands) {
  FakeConn c;
  c.Send(Cmd({"SELECT", "3"}) + Cmd({"GET", "k"}));
  c.Receive("+OK\r\n$-1\r\n");
  ASSERT_EQ(c.seen().size(), 2u);
  EXPECT_EQ(c.seen()[0].attr("db.namespace"), "3");
  EXPECT_EQ(c.seen()[1].attr("db.namespace"), "3");
  c.Send(Cmd({"SELECT", "99"}));
  c.Receive("-ERR DB index is out of range\r\n");
  c.Send(Cmd({"GET", "k"}));
  c.Receive("_\r\n");
  EXPECT_EQ(c.seen()[3].attr("db.namespace"), "3");
}

TEST(RedisSession, TransactionCommandsEndWithExecAndTakeTheirResults) {
  FakeConn c;
  c.Send(Cmd({"MULTI"}) + Cmd({"SET", "a", "1"}) + Cmd({"LPUSH", "a", "x"}) + Cmd({"EXEC"}));
  c.Receive("+OK\r\n+QUEUED\r\n+QUEUED\r\n");
  EXPECT_EQ(c.names(), (V{"MULTI"}));
  c.Receive("*2\r\n+OK\r\n-WRONGTYPE Operation against a key\r\n");
  EXPECT_EQ(c.names(), (V{"MULTI", "SET", "LPUSH", "EXEC"}));
  EXPECT_FALSE(c.seen()[1].error);
  EXPECT_TRUE(c.seen()[2].error);
  EXPECT_EQ(c.seen()[2].attr("db.response.status_code"), "WRONGTYPE");
  EXPECT_EQ(c.seen()[3].attr("db.operation.batch.size"), "2");
  EXPECT_FALSE(c.seen()[3].error);
  EXPECT_EQ(c.seen()[1].end_ns, c.seen()[3].end_ns);
}

TEST(RedisSession, AbortedTransactionFailsItsQueuedCommands) {
  FakeConn c;
  c.Send(Cmd({"MULTI"}) + Cmd({"SET", "a"}) + Cmd({"GET", "a"}) + Cmd({"EXEC"}));
  c.Receive("+OK\r\n-ERR wrong number of arguments for 'set' command\r\n+QUEUED\r\n");
  c.Receive("-EXECABORT Transaction discarded because of previous errors.\r\n");
  EXPECT_EQ(c.names(), (V{"MULTI", "SET", "EXEC", "GET"}));
  EXPECT_EQ(c.seen()[1].attr("error.type"), "ERR");
  EXPECT_EQ(c.seen()[2].attr("error.type"), "EXECABORT");
  EXPECT_EQ(c.seen()[3].attr("error.type"), "EXECABORT");
}

TEST(RedisSession, DiscardedAndWatchAbortedTransactions) {
  FakeConn c;
  c.Send(Cmd({"MULTI"}) + Cmd({"INCR", "a"}) + Cmd({"DISCARD"}));
  c.Receive("+OK\r\n+QUEUED\r\n+OK\r\n");
  EXPECT_EQ(c.names(), (V{"MULTI", "INCR", "DISCARD"}));
  c.Send(Cmd({"WATCH", "a"}) + Cmd({"MULTI"}) + Cmd({"INCR", "a"}) + Cmd({"EXEC"}));
  c.Receive("+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n");
  EXPECT_EQ(c.names(), (V{"MULTI", "INCR", "DISCARD", "WATCH", "MULTI", "INCR", "EXEC"}));
  c.Send(Cmd({"GET", "a"}));
  c.Receive("$1\r\n1\r\n");
  EXPECT_EQ(c.seen().back().name, "GET");
}

TEST(RedisSession, BlockingCommandWaitsWithoutTimeout) {
  FakeConn c;
  c.Send(Cmd({"BLPOP", "q", "0"}));
  c.Tick(60'000'000'000ULL);
  c.Expire(c.now());
  EXPECT_TRUE(c.seen().empty());
  c.Receive("*2\r\n$1\r\nq\r\n$3\r\njob\r\n");
  ASSERT_EQ(c.seen().size(), 1u);
  EXPECT_GE(c.seen()[0].end_ns - c.seen()[0].start_ns, 60'000'000'000ULL);
  EXPECT_FALSE(c.seen()[0].error);
}

TEST(RedisSession, UnansweredCommandTimesOutAndItsLateReplyIsAbsorbed) {
  FakeConn c;
  c.Send(Cmd({"GET", "a"}));
  c.Tick(31'000'000'000ULL);
  c.Expire(c.now());
  ASSERT_EQ(c.seen().size(), 1u);
  EXPECT_EQ(c.seen()[0].attr("error.type"), "timeout");
  c.Send(Cmd({"GET", "b"}));
  c.Receive("$1\r\nA\r\n$1\r\nB\r\n");
  ASSERT_EQ(c.seen().size(), 2u);
  EXPECT_EQ(c.seen()[1].attr("db.query.text"), "GET b");
}

TEST(RedisSession, PubSubMessagesMakeNoSpansAndDoNotMispair) {
  FakeConn c;
  c.Send(Cmd({"SUBSCRIBE", "news", "sport"}));
  c.Receive("*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
  EXPECT_TRUE(c.seen().empty());
  c.Receive("*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n");
  EXPECT_EQ(c.names(), (V{"SUBSCRIBE"}));
  c.Send(Cmd({"PING"}));
  c.Receive("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$6\r\nhello!\r\n");
  c.Receive("*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  c.Receive("*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n");
  EXPECT_EQ(c.names(), (V{"SUBSCRIBE", "PING"}));
  EXPECT_EQ(c.stats().pubsub_messages, 2u);
  c.Send(Cmd({"UNSUBSCRIBE"}));
  c.Receive("*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n");
  c.Receive("*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n:0\r\n");
  EXPECT_EQ(c.names(), (V{"SUBSCRIBE", "PING", "UNSUBSCRIBE"}));
  // Not subscribed any more: an array shaped like a message is an ordinary reply.
  c.Send(Cmd({"LRANGE", "l", "0", "-1"}));
  c.Receive("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n");
  EXPECT_EQ(c.seen().back().name, "LRANGE");
  EXPECT_EQ(c.stats().unpaired_replies, 0u);
}

TEST(RedisSession, Resp3PushesAreNotReplies) {
  FakeConn c;
  c.Send(Cmd({"HELLO", "3"}));
  c.Receive("%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n");
  c.Send(Cmd({"SUBSCRIBE", "ch"}) + Cmd({"GET", "k"}));
  c.Receive(">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
  c.Receive(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
  c.Receive(">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
  c.Receive("$1\r\nv\r\n");
  EXPECT_EQ(c.names(), (V{"HELLO", "SUBSCRIBE", "GET"}));
  // RESP3: a subscribed connection runs any command, and arrays are replies.
  c.Send(Cmd({"LRANGE", "l", "0", "-1"}));
  c.Receive("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n");
  EXPECT_EQ(c.seen().back().name, "LRANGE");
  EXPECT_EQ(c.stats().pubsub_messages, 1u);
  EXPECT_EQ(c.stats().pushes_other, 1u);
}

TEST(RedisSession, ClientReplyOffAndSkipCommandsGetNoReply) {
  FakeConn c;
  c.Send(Cmd({"CLIENT", "REPLY", "SKIP"}) + Cmd({"SET", "a", "1"}) + Cmd({"GET", "a"}));
  c.Receive("$1\r\n1\r\n");
  EXPECT_EQ(c.names(), (V{"CLIENT REPLY", "SET", "GET"}));
  c.Send(Cmd({"CLIENT", "REPLY", "OFF"}) + Cmd({"INCR", "a"}) + Cmd({"CLIENT", "REPLY", "ON"}));
  c.Receive("+OK\r\n");
  c.Send(Cmd({"GET", "a"}));
  c.Receive("$1\r\n2\r\n");
  EXPECT_EQ(c.names(),
            (V{"CLIENT REPLY", "SET", "GET", "CLIENT REPLY", "INCR", "CLIENT REPLY", "GET"}));
  EXPECT_EQ(c.stats().unpaired_replies, 0u);
}

TEST(RedisSession, LargeValuesSkipThroughUncapturedBytes) {
  FakeConn c;
  c.Send("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$100000\r\n" + std::string(1000, 'x'));
  c.SendGap(99000);
  c.Send("\r\n" + Cmd({"GET", "big"}));
  c.Receive("+OK\r\n$100000\r\n" + std::string(500, 'x'));
  c.ReceiveGap(99500);
  c.Receive("\r\n");
  EXPECT_EQ(c.names(), (V{"SET", "GET"}));
  EXPECT_EQ(c.stats().request_framing_lost + c.stats().reply_framing_lost, 0u);
}

TEST(RedisSession, LostReplyFramingEndsTheSpanAndRealignsAtTheNextCommand) {
  FakeConn c;
  c.Send(Cmd({"LRANGE", "l", "0", "-1"}));
  c.Receive("*5000\r\n$5\r\nitem0\r\n$5\r\nitem1\r\n");
  c.ReceiveGap(40000);  // element headers lost: the end of the array is unknowable
  c.Receive("$5\r\nitem9\r\n");
  ASSERT_EQ(c.names(), (V{"LRANGE"}));
  c.Send(Cmd({"GET", "k"}));
  c.Receive("$1\r\nv\r\n");
  EXPECT_EQ(c.names(), (V{"LRANGE", "GET"}));
  EXPECT_EQ(c.stats().truncated_replies, 1u);
  EXPECT_EQ(c.stats().realigned, 1u);
}

TEST(RedisSession, LostCommandsNeverTakeTheirRepliesFromLaterCommands) {
  FakeConn c;
  c.Send(Cmd({"INCR", "a"}) + Cmd({"INCR", "b"}));
  c.SendGap(300);  // an unknown number of further commands
  c.Receive(":1\r\n");
  c.Receive(":2\r\n:7\r\n:8\r\n");  // b's, then the lost commands'
  c.Send(Cmd({"GET", "k"}));
  c.Receive("$1\r\nv\r\n");
  EXPECT_EQ(c.names(), (V{"INCR", "INCR", "GET"}));
  EXPECT_EQ(c.seen()[2].attr("db.namespace"), "<none>");  // a lost SELECT may have changed it
}

TEST(RedisSession, CommandSentBeforeEarlierRepliesArrivedIsDroppedAfterALoss) {
  FakeConn c;
  c.Send(Cmd({"INCR", "a"}));
  c.SendGap(300);
  c.Send(Cmd({"GET", "k"}));  // written while the lost commands' replies were still due
  c.Receive(":1\r\n:5\r\n");
  c.Receive("$1\r\nv\r\n");
  EXPECT_EQ(c.names(), (V{"INCR"}));
  EXPECT_EQ(c.stats().unpaired_commands, 1u);
  c.Send(Cmd({"GET", "j"}));
  c.Receive("$1\r\nw\r\n");
  EXPECT_EQ(c.names(), (V{"INCR", "GET"}));
  EXPECT_EQ(c.seen()[1].attr("db.query.text"), "GET j");
}

TEST(RedisSession, MidStreamStartSkipsRepliesToUnseenCommands) {
  FakeConn c(/*mid_stream=*/true);
  c.Receive(":41\r\n");  // answers a command sent before the agent looked
  c.Send(Cmd({"GET", "k"}));
  c.Receive("$1\r\nv\r\n");
  ASSERT_EQ(c.names(), (V{"GET"}));
  EXPECT_EQ(c.seen()[0].attr("db.namespace"), "<none>");
  EXPECT_EQ(c.starts(), 1u);
}

TEST(RedisSession, ReplyOfTheWrongShapeDropsPairingInsteadOfGuessing) {
  FakeConn c(/*mid_stream=*/true);
  c.Send(Cmd({"GET", "k"}));
  c.Receive(":5\r\n");  // an INCR's reply, sent before the agent looked: not GET's
  c.Receive("$1\r\nv\r\n");
  EXPECT_TRUE(c.seen().empty());
  EXPECT_EQ(c.stats().reply_mismatches, 1u);
  c.Send(Cmd({"GET", "k"}));
  c.Receive("$1\r\nv\r\n");
  EXPECT_EQ(c.names(), (V{"GET"}));
}

TEST(RedisSession, MidStreamSubscriberMessagesAreNotTakenForReplies) {
  FakeConn c(/*mid_stream=*/true);
  c.Send(Cmd({"PING"}));
  c.Receive("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n");
  c.Receive("*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  EXPECT_TRUE(c.seen().empty());
}

TEST(RedisSession, CloseFailsUnansweredCommands) {
  FakeConn c;
  c.Send(Cmd({"GET", "a"}));
  c.Close(CloseReason::kReset);
  ASSERT_EQ(c.seen().size(), 1u);
  EXPECT_EQ(c.seen()[0].attr("error.type"), "connection_reset");
  FakeConn d;
  d.Send(Cmd({"GET", "a"}));
  d.Close(CloseReason::kUnobserved);
  EXPECT_TRUE(d.seen().empty());
  EXPECT_EQ(d.stats().unfinished_unobserved, 1u);
}

TEST(RedisSession, MonitorStopsPairing) {
  FakeConn c;
  c.Send(Cmd({"MONITOR"}));
  c.Receive("+OK\r\n+1700000000.1 [0 127.0.0.1:5] \"GET\" \"k\"\r\n");
  EXPECT_EQ(c.names(), (V{"MONITOR"}));
  EXPECT_EQ(c.stats().stopped, 1u);
}

}  // namespace
}  // namespace zerotrace::protocols::redis
