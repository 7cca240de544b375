// The OTLP retry policy: retryable outcomes, server hints, jittered backoff and the deadline.
#include "export/retry.h"

#include <gtest/gtest.h>

#include <thread>

namespace zerotrace::exporter {
namespace {

using std::chrono::milliseconds;
using Kind = AttemptResult::Kind;

TEST(RetryTest, GrpcCodesFollowTheSpecification) {
  struct Case {
    int code;
    bool retry_info;
    bool retryable;
  };
  const Case cases[] = {
      {1, false, true},    // CANCELLED
      {2, false, false},   // UNKNOWN
      {3, false, false},   // INVALID_ARGUMENT
      {4, false, true},    // DEADLINE_EXCEEDED
      {5, false, false},   // NOT_FOUND
      {7, false, false},   // PERMISSION_DENIED
      {8, false, false},   // RESOURCE_EXHAUSTED without RetryInfo
      {8, true, true},     // RESOURCE_EXHAUSTED with RetryInfo
      {9, false, false},   // FAILED_PRECONDITION
      {10, false, true},   // ABORTED
      {11, false, true},   // OUT_OF_RANGE
      {12, false, false},  // UNIMPLEMENTED
      {13, false, false},  // INTERNAL
      {14, false, true},   // UNAVAILABLE
      {15, false, true},   // DATA_LOSS
      {16, false, false},  // UNAUTHENTICATED
  };
  for (const auto& c : cases) {
    EXPECT_EQ(IsRetryableGrpcCode(c.code, c.retry_info), c.retryable)
        << "code " << c.code << " retry_info " << c.retry_info;
    const std::string details =
        c.retry_info ? EncodeRpcStatus(c.code, "m", milliseconds(1500)) : "";
    const AttemptResult r = ClassifyGrpc(c.code, "m", details);
    EXPECT_EQ(r.kind, c.retryable ? Kind::kRetryable : Kind::kPermanent) << "code " << c.code;
  }
  EXPECT_EQ(ClassifyGrpc(0, "", "").kind, Kind::kOk);
  EXPECT_EQ(ClassifyGrpc(14, "down", "").reason, "UNAVAILABLE");
}

TEST(RetryTest, HttpStatusesFollowTheSpecification) {
  const auto now = std::chrono::system_clock::now();
  for (long status : {200L, 202L, 204L})
    EXPECT_EQ(ClassifyHttp(status, "", "", now).kind, Kind::kOk);
  for (long status : {429L, 502L, 503L, 504L}) {
    EXPECT_EQ(ClassifyHttp(status, "", "", now).kind, Kind::kRetryable) << status;
  }
  for (long status : {400L, 401L, 403L, 404L, 413L, 500L, 501L}) {
    EXPECT_EQ(ClassifyHttp(status, "", "", now).kind, Kind::kPermanent) << status;
  }
  const AttemptResult r = ClassifyHttp(503, "7", "busy", now);
  EXPECT_EQ(r.server_delay, milliseconds(7000));
  EXPECT_EQ(r.reason, "HTTP 503");
  EXPECT_EQ(r.message, "busy");
}

TEST(RetryTest, RetryAfterSecondsAndHttpDates) {
  // Sun, 06 Nov 1994 08:49:37 GMT
  const std::chrono::system_clock::time_point now{std::chrono::seconds(784111777)};
  const std::pair<const char*, std::optional<milliseconds>> cases[] = {
      {"0", milliseconds(0)},
      {"120", milliseconds(120000)},
      {" 3 \r\n", milliseconds(3000)},
      {"99999999999999999999", milliseconds(86400000)},         // clamped to a day
      {"Sun, 06 Nov 1994 08:50:07 GMT", milliseconds(30000)},   // IMF-fixdate
      {"Sunday, 06-Nov-94 08:49:47 GMT", milliseconds(10000)},  // RFC 850
      {"Sun Nov  6 08:49:42 1994", milliseconds(5000)},         // asctime
      {"Sun, 06 Nov 1994 08:00:00 GMT", milliseconds(0)},       // in the past
      {"-1", std::nullopt},
      {"1.5", std::nullopt},
      {"soon", std::nullopt},
      {"Sun, 32 Nov 1994 08:49:37 GMT", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& [value, expected] : cases) {
    EXPECT_EQ(ParseRetryAfter(value, now), expected) << "'" << value << "'";
  }
}

TEST(RetryTest, RetryInfoRoundTripsThroughGoogleRpcStatus) {
  for (milliseconds delay :
       {milliseconds(0), milliseconds(250), milliseconds(3000), milliseconds(61500)}) {
    const std::string status = EncodeRpcStatus(14, "try later", delay);
    EXPECT_EQ(RetryInfoDelay(status), delay);
    EXPECT_EQ(RpcStatusMessage(status), "try later");
  }
  EXPECT_EQ(RetryInfoDelay(EncodeRpcStatus(14, "no hint", std::nullopt)), std::nullopt);
  EXPECT_EQ(RetryInfoDelay(""), std::nullopt);
  EXPECT_EQ(RetryInfoDelay("\xff\xff\xff"), std::nullopt);  // truncated varint
}

TEST(RetryTest, RetryInfoIsFoundAmongOtherDetails) {
  // google.rpc.Status{code: 8, details: [Any{ErrorInfo}, Any{RetryInfo{2 s}}]}, bytes by hand.
  std::string other_any = std::string("\x0a\x28") + "type.googleapis.com/google.rpc.ErrorInfo" +
                          std::string("\x12\x03\x0a\x01x", 5);
  std::string retry = EncodeRpcStatus(0, "", milliseconds(2000));  // field 3 = the Any
  std::string status = std::string("\x08\x08", 2) + std::string("\x1a") +
                       static_cast<char>(other_any.size()) + other_any + retry;
  EXPECT_EQ(RetryInfoDelay(status), milliseconds(2000));
}

TEST(RetryTest, BackoffCeilingDoublesUpToTheMaximum) {
  RetryPolicy policy({milliseconds(100), milliseconds(1000), milliseconds(60000)}, 1);
  const std::pair<int, int> cases[] = {{1, 100}, {2, 200},  {3, 400},
                                       {4, 800}, {5, 1000}, {40, 1000}};
  for (const auto& [retry, ceiling] : cases) EXPECT_EQ(policy.Ceiling(retry).count(), ceiling);
}

TEST(RetryTest, FullJitterStaysWithinTheCeilingAndSpreads) {
  RetryPolicy policy({milliseconds(100), milliseconds(1000), milliseconds(60000)}, 42);
  for (int retry = 1; retry <= 6; retry++) {
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 500; i++) {
      const auto d = policy.NextDelay(retry, std::nullopt, milliseconds(0));
      ASSERT_TRUE(d.has_value());
      lo = std::min<int64_t>(lo, d->count());
      hi = std::max<int64_t>(hi, d->count());
    }
    const int64_t ceiling = policy.Ceiling(retry).count();
    EXPECT_GE(lo, 0);
    EXPECT_LE(hi, ceiling);
    EXPECT_LT(lo, ceiling / 4) << "retry " << retry;  // jitter, not a fixed delay
    EXPECT_GT(hi, ceiling * 3 / 4) << "retry " << retry;
  }
}

TEST(RetryTest, ServerHintReplacesBackoffAndTheDeadlineEndsRetries) {
  RetryPolicy policy({milliseconds(100), milliseconds(1000), milliseconds(10000)}, 7);
  struct Case {
    int retry;
    std::optional<milliseconds> hint;
    milliseconds elapsed;
    std::optional<milliseconds> expected;  // nullopt: give up
  };
  const Case cases[] = {
      {1, milliseconds(5000), milliseconds(0), milliseconds(5000)},  // hint beats max_backoff
      {3, milliseconds(0), milliseconds(0), milliseconds(0)},
      {1, milliseconds(5000), milliseconds(5000), std::nullopt},  // would end at the deadline
      {1, milliseconds(4999), milliseconds(5000), milliseconds(4999)},
      {2, std::nullopt, milliseconds(10000), std::nullopt},
      {2, milliseconds(20000), milliseconds(0), std::nullopt},  // hint past the deadline
  };
  for (const auto& c : cases) {
    EXPECT_EQ(policy.NextDelay(c.retry, c.hint, c.elapsed), c.expected)
        << "retry " << c.retry << " elapsed " << c.elapsed.count();
  }
}

TEST(RetryTest, SameSeedSameDelays) {
  RetryPolicy a({}, 99), b({}, 99);
  for (int retry = 1; retry < 10; retry++) {
    EXPECT_EQ(a.NextDelay(retry, std::nullopt, milliseconds(0)),
              b.NextDelay(retry, std::nullopt, milliseconds(0)));
  }
}

TEST(RetryTest, RealSleeperLimitEndsALongSleepAtOnce) {
  RealSleeper sleeper;
  const auto start = RetryClock::now();
  EXPECT_TRUE(sleeper.SleepUntil(start + milliseconds(1)));
  std::thread limiter([&] { sleeper.Limit(RetryClock::now()); });
  EXPECT_FALSE(sleeper.SleepUntil(start + std::chrono::hours(1)));
  limiter.join();
  EXPECT_LT(RetryClock::now() - start, std::chrono::seconds(30));
  // A sleep that ends before the limit still happens.
  RealSleeper limited;
  limited.Limit(RetryClock::now() + std::chrono::hours(1));
  EXPECT_TRUE(limited.SleepUntil(RetryClock::now() + milliseconds(1)));
}

}  // namespace
}  // namespace zerotrace::exporter
