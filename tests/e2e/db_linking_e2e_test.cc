// Database spans as children of the request being served: a threaded python HTTP service
// (one thread per connection) queries PostgreSQL and Redis per request, under 8-way
// concurrency; every database CLIENT span's parent is its own request's SERVER span.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "pg_server.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::kServerStartDeadline;

constexpr int kPgPort = 44201, kRedisPort = 44202, kServicePort = 44203;
constexpr int kRequests = 40, kParallel = 8;

class DbLinkingE2eTest : public AgentTest {
 protected:
  void SetUp() override {}  // the servers come first (initdb is slow and of no interest)
};

TEST_F(DbLinkingE2eTest, ThreadedServiceDbCallsAreChildrenOfTheirRequest) {
  PgServer pg(kPgPort);
  ASSERT_TRUE(pg.ok());
  ASSERT_TRUE(pg.Start());
  AgentTest::SetUp();
  auto& redis = Spawn({"redis-server", "--port", std::to_string(kRedisPort), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no", "--dir", dir(), "--daemonize", "no"});
  ASSERT_TRUE(redis.WaitForLine("Ready to accept connections", kServerStartDeadline));
  auto& service =
      Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/db_service.py",
             std::to_string(kServicePort), std::to_string(kPgPort), std::to_string(kRedisPort)});
  ASSERT_TRUE(service.WaitForLine("ready", kServerStartDeadline));

  // Request n asks for n rows and increments key order:n: each call names its request.
  std::vector<std::string> argv = {"curl",
                                   "-sS",
                                   "--no-progress-meter",
                                   "--fail",
                                   "--parallel",
                                   "--parallel-immediate",
                                   "--parallel-max",
                                   std::to_string(kParallel)};
  for (int n = 1; n <= kRequests; n++) {
    argv.insert(argv.end(), {"-o", "/dev/null", Url(kServicePort, "/order/" + std::to_string(n))});
  }
  const ClientRun c = Run(argv);
  ASSERT_EQ(c.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{service.pid(), 3 * kRequests}}));

  std::map<std::string, const Span*> requests;  // span id -> SERVER span
  std::vector<const Span*> pg_calls, redis_calls;
  const std::vector<Span> spans = SpansOf(service.pid());
  for (const Span& s : spans) {
    if (s.kind == kServer) {
      requests[s.span_id] = &s;
    } else if (s.Str("db.system.name") == "postgresql") {
      pg_calls.push_back(&s);
    } else if (s.Str("db.system.name") == "redis") {
      redis_calls.push_back(&s);
    } else {
      ADD_FAILURE() << "unexpected span: " << s.Describe();
    }
  }
  ASSERT_EQ(requests.size(), static_cast<size_t>(kRequests)) << Describe(service.pid());
  EXPECT_EQ(pg_calls.size(), static_cast<size_t>(kRequests));
  EXPECT_EQ(redis_calls.size(), static_cast<size_t>(kRequests));
  // A call is right when its parent is the request it names ("/order/n"), in that trace,
  // and it lies within that request.
  auto right_parent = [&](const Span& call, int64_t n) {
    auto it = requests.find(call.parent_span_id);
    const bool ok = it != requests.end() &&
                    it->second->Str("url.path") == "/order/" + std::to_string(n) &&
                    it->second->trace_id == call.trace_id &&
                    call.start_ns >= it->second->start_ns && call.end_ns <= it->second->end_ns;
    EXPECT_TRUE(ok) << "named request " << n << ": " << call.Describe()
                    << " parent: " << (it == requests.end() ? "none" : it->second->Describe());
    return ok;
  };
  int wrong = 0;
  for (const Span* s : pg_calls) {
    EXPECT_EQ(s->Str("db.query.text"), "SELECT g FROM generate_series(?, ?) g");
    wrong += !right_parent(*s, s->Int("db.response.returned_rows").value_or(-1));
  }
  for (const Span* s : redis_calls) {
    const std::string text = s->Str("db.query.text").value_or("");
    ASSERT_EQ(text.rfind("INCRBY order:", 0), 0u) << s->Describe();
    wrong += !right_parent(*s, std::stoll(text.substr(13)));
  }
  EXPECT_EQ(wrong, 0) << "of " << pg_calls.size() + redis_calls.size() << " database calls";
}

}  // namespace
}  // namespace zerotrace::e2e
