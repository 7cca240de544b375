// The shared OTLP retry loop, driven by a scripted transport and virtual time.
#include "export/otlp_exporter_base.h"

#include <gtest/gtest.h>

#include <deque>

#include "otlp_test_support.h"

namespace zerotrace::exporter {
namespace {

using std::chrono::milliseconds;
using Kind = AttemptResult::Kind;

AttemptResult Ok(int64_t rejected = 0, std::string message = "") {
  AttemptResult r;
  r.rejected_spans = rejected;
  r.partial_message = std::move(message);
  return r;
}

AttemptResult Fail(Kind kind, std::string reason, std::optional<milliseconds> hint = {}) {
  AttemptResult r;
  r.kind = kind;
  r.reason = std::move(reason);
  r.server_delay = hint;
  return r;
}

// A retryable failure with no answer from the collector (refused, unreachable, timed out).
AttemptResult NoAnswer(std::string reason) {
  AttemptResult r = Fail(Kind::kRetryable, std::move(reason));
  r.unreachable = true;
  return r;
}

// Answers Send() from a script; each attempt takes `attempt_cost` of virtual time.
class ScriptedExporter final : public OtlpExporterBase {
 public:
  ScriptedExporter(OtlpConfig config, OtlpExporterOptions options,
                   std::shared_ptr<testing::FakeSleeper> clock)
      : OtlpExporterBase(std::move(config), std::move(options)), clock_(std::move(clock)) {}
  const char* name() const override { return "scripted"; }

  std::deque<AttemptResult> script;
  std::vector<milliseconds> timeouts;  // what each Send was given
  int encodes = 0;
  int cancels = 0;                    // CancelAttempt calls
  std::vector<size_t> encoded_spans;  // each Encode's batch size
  size_t bytes_per_span = 100;
  milliseconds attempt_cost{0};
  std::function<void()> on_send;

 private:
  size_t Encode(const std::vector<trace::Span>& spans) override {
    encodes++;
    encoded_spans.push_back(spans.size());
    return spans.size() * bytes_per_span;
  }
  size_t Assemble(std::span<const EncodedSpan> spans) override {
    encodes++;
    encoded_spans.push_back(spans.size());
    return spans.size() * bytes_per_span;
  }
  bool TakesProto() const override { return true; }
  AttemptResult Send(milliseconds timeout) override {
    timeouts.push_back(timeout);
    clock_->Advance(std::min(attempt_cost, timeout));
    if (on_send) on_send();
    if (script.empty()) return Ok();
    AttemptResult r = script.front();
    script.pop_front();
    return r;
  }
  void CancelAttempt() override { cancels++; }
  std::shared_ptr<testing::FakeSleeper> clock_;
};

class OtlpExporterBaseTest : public ::testing::Test {
 protected:
  OtlpExporterBaseTest() {
    config_.endpoint = "http://collector:4318/v1/traces";
    config_.timeout = milliseconds(1000);
    options_.retry = {milliseconds(100), milliseconds(400), milliseconds(5000)};
    options_.retry_seed = 1;
    options_.sleeper = clock_;
    options_.log = [this](const std::string& line) { logs_.push_back(line); };
  }
  std::unique_ptr<ScriptedExporter> Make() {
    return std::make_unique<ScriptedExporter>(config_, options_, clock_);
  }

  std::shared_ptr<testing::FakeSleeper> clock_ = std::make_shared<testing::FakeSleeper>();
  OtlpConfig config_;
  OtlpExporterOptions options_;
  std::vector<std::string> logs_;
  const std::vector<trace::Span> batch_ = testing::TypicalBatch(10);
};

TEST_F(OtlpExporterBaseTest, RetryableFailuresAreRetriedWithBackoffThenSucceed) {
  auto e = Make();
  e->script = {Fail(Kind::kRetryable, "UNAVAILABLE"), Fail(Kind::kRetryable, "UNAVAILABLE"),
               Fail(Kind::kRetryable, "UNAVAILABLE"), Ok()};
  (void)e->Export(batch_);
  EXPECT_EQ(e->encodes, 1) << "a batch is encoded once, however often it is sent";
  EXPECT_EQ(e->timeouts.size(), 4u);
  const auto sleeps = clock_->sleeps();
  ASSERT_EQ(sleeps.size(), 3u);
  EXPECT_LE(sleeps[0], milliseconds(100));
  EXPECT_LE(sleeps[1], milliseconds(200));
  EXPECT_LE(sleeps[2], milliseconds(400));
  const auto& c = e->counters();
  EXPECT_EQ(c.retries.load(), 3u);
  EXPECT_EQ(c.batches_ok.load(), 1u);
  EXPECT_EQ(c.spans_ok.load(), 10u);
  EXPECT_EQ(c.spans_dropped_retry_exhausted.load(), 0u);
}

TEST_F(OtlpExporterBaseTest, BatchOverTheRequestLimitIsSentInHalvesUntilEachFits) {
  options_.max_request_bytes = 350;  // 100 bytes a span: at most 3 spans a request
  auto e = Make();
  e->script = {Ok(), Fail(Kind::kPermanent, "INVALID_ARGUMENT")};
  (void)e->Export(batch_);
  // 10 -> 5 + 5 -> (2 + 3) + (2 + 3): every part is encoded, only parts that fit are sent.
  EXPECT_EQ(e->encoded_spans, (std::vector<size_t>{10, 5, 2, 3, 5, 2, 3}));
  EXPECT_EQ(e->timeouts.size(), 4u);
  const auto& c = e->counters();
  EXPECT_EQ(c.batches_ok.load(), 3u);
  EXPECT_EQ(c.spans_ok.load(), 7u);
  EXPECT_EQ(c.spans_dropped_non_retryable.load(), 3u) << "each request's outcome is its own";
}

TEST_F(OtlpExporterBaseTest, EncodedBatchOverTheRequestLimitIsSplitAsSpansAre) {
  options_.max_request_bytes = 350;
  auto e = Make();
  EXPECT_NE(e->span_encoder(), nullptr);
  e->script = {Ok(), Fail(Kind::kPermanent, "INVALID_ARGUMENT")};
  const std::vector<EncodedSpan> encoded(batch_.size());
  const ExportResult r = e->ExportEncoded(encoded);
  EXPECT_EQ(e->encoded_spans, (std::vector<size_t>{10, 5, 2, 3, 5, 2, 3}));
  EXPECT_EQ(r.delivered, 7u);
  EXPECT_EQ(r.failed, 3u);
  EXPECT_EQ(e->counters().spans_dropped_non_retryable.load(), 3u);
}

TEST_F(OtlpExporterBaseTest, OneSpanOverTheLimitIsStillSent) {
  options_.max_request_bytes = 50;
  auto e = Make();
  (void)e->Export(std::vector<trace::Span>(batch_.begin(), batch_.begin() + 1));
  EXPECT_EQ(e->encodes, 1);
  EXPECT_EQ(e->counters().spans_ok.load(), 1u);
}

TEST_F(OtlpExporterBaseTest, DefaultLimitIsHalfOfGrpcsFourMiB) {
  auto e = Make();
  e->bytes_per_span = (2 << 20) / 10;  // exactly 2 MiB: one request
  (void)e->Export(batch_);
  e->bytes_per_span++;
  (void)e->Export(batch_);
  EXPECT_EQ(e->encoded_spans, (std::vector<size_t>{10, 10, 5, 5}));
}

TEST_F(OtlpExporterBaseTest, ServerHintIsHonouredExactly) {
  auto e = Make();
  e->script = {Fail(Kind::kRetryable, "HTTP 503", milliseconds(3000)), Ok()};
  (void)e->Export(batch_);
  EXPECT_EQ(clock_->sleeps(), std::vector<milliseconds>{milliseconds(3000)});
  EXPECT_EQ(e->counters().spans_ok.load(), 10u);
  ASSERT_EQ(logs_.size(), 1u);
  EXPECT_EQ(logs_[0],
            "exporter scripted (http://collector:4318/v1/traces): export failed (HTTP 503); "
            "retrying in 3 s as the collector asked");
}

TEST_F(OtlpExporterBaseTest, NonRetryableErrorDropsTheBatchAtOnce) {
  auto e = Make();
  e->script = {Fail(Kind::kPermanent, "INVALID_ARGUMENT")};
  (void)e->Export(batch_);
  EXPECT_EQ(e->timeouts.size(), 1u);
  EXPECT_TRUE(clock_->sleeps().empty());
  EXPECT_EQ(e->counters().spans_dropped_non_retryable.load(), 10u);
  EXPECT_EQ(e->counters().batches_ok.load(), 0u);
}

TEST_F(OtlpExporterBaseTest, TotalDeadlineBoundsRetriesAndAttemptTimeouts) {
  auto e = Make();
  e->attempt_cost = milliseconds(1000);  // every attempt times out
  for (int i = 0; i < 100; i++) e->script.push_back(Fail(Kind::kRetryable, "DEADLINE_EXCEEDED"));
  const auto start = clock_->Now();
  (void)e->Export(batch_);
  EXPECT_EQ(e->counters().spans_dropped_retry_exhausted.load(), 10u);
  EXPECT_LE(clock_->Now() - start, milliseconds(5000));
  // No attempt is given more than what is left before the deadline.
  milliseconds used{0};
  const auto sleeps = clock_->sleeps();
  for (size_t i = 0; i < e->timeouts.size(); i++) {
    EXPECT_LE(e->timeouts[i], milliseconds(5000) - used) << "attempt " << i;
    used += std::min(e->timeouts[i], milliseconds(1000)) +
            (i < sleeps.size() ? sleeps[i] : milliseconds(0));
  }
  EXPECT_GE(e->timeouts.size(), 4u);
}

TEST_F(OtlpExporterBaseTest, PartialSuccessIsCountedAndNotRetried) {
  auto e = Make();
  e->script = {Ok(3, "3 spans had no name")};
  (void)e->Export(batch_);
  EXPECT_EQ(e->timeouts.size(), 1u);
  EXPECT_EQ(e->counters().batches_ok.load(), 1u);
  EXPECT_EQ(e->counters().spans_ok.load(), 7u);
  EXPECT_EQ(e->counters().spans_rejected_partial.load(), 3u);
  ASSERT_EQ(logs_.size(), 1u);
  EXPECT_NE(logs_[0].find("the collector rejected 3 of 10 spans: 3 spans had no name"),
            std::string::npos)
      << logs_[0];
  // A warning without rejections is logged, not counted as a rejection.
  e->script = {Ok(0, "deprecated field")};
  (void)e->Export(batch_);
  EXPECT_EQ(e->counters().spans_rejected_partial.load(), 3u);
  EXPECT_EQ(e->counters().spans_ok.load(), 17u);
}

TEST_F(OtlpExporterBaseTest, FailuresAreLoggedOncePerIntervalPerReason) {
  auto e = Make();
  for (int i = 0; i < 5; i++) {
    e->script = {Fail(Kind::kPermanent, "HTTP 400")};
    (void)e->Export(batch_);
  }
  e->script = {Fail(Kind::kPermanent, "HTTP 401")};
  (void)e->Export(batch_);
  ASSERT_EQ(logs_.size(), 2u) << "one line per reason";
  clock_->Advance(milliseconds(10000));
  e->script = {Fail(Kind::kPermanent, "HTTP 400")};
  (void)e->Export(batch_);
  ASSERT_EQ(logs_.size(), 3u);
  EXPECT_NE(logs_[2].find("dropped 10 spans: export failed, not retryable: HTTP 400 (and 4 more "
                          "like it since the last report)"),
            std::string::npos)
      << logs_[2];
  EXPECT_EQ(e->counters().spans_dropped_non_retryable.load(), 70u);
}

TEST_F(OtlpExporterBaseTest, ShutdownCutsRetriesShort) {
  options_.retry = {milliseconds(20), milliseconds(1000), milliseconds(60000)};
  auto e = Make();
  for (int i = 0; i < 100; i++) e->script.push_back(Fail(Kind::kRetryable, "UNAVAILABLE"));
  // The agent stops while the second attempt runs, with 50 ms left for the drain.
  int sends = 0;
  RetryClock::time_point deadline;
  e->on_send = [&] {
    if (++sends == 2) {
      deadline = clock_->Now() + milliseconds(50);
      e->BeginShutdown(deadline);
    }
  };
  (void)e->Export(batch_);
  EXPECT_EQ(e->counters().spans_dropped_shutdown.load(), 10u);
  EXPECT_LE(clock_->Now(), deadline) << "no sleep runs past the shutdown deadline";
  // After the deadline, a batch is dropped without an attempt.
  clock_->Advance(milliseconds(100));
  const size_t before = e->timeouts.size();
  (void)e->Export(batch_);
  EXPECT_EQ(e->timeouts.size(), before);
  EXPECT_EQ(e->counters().spans_dropped_shutdown.load(), 20u);
}

TEST_F(OtlpExporterBaseTest, ResultSaysWhatTheCollectorTook) {
  auto e = Make();
  e->script = {Ok(3, "3 spans had no name")};
  ExportResult r = e->Export(batch_);
  EXPECT_EQ(r.delivered, 7u);
  EXPECT_EQ(r.failed, 3u) << "rejected in a partial success: not delivered";
  e->script = {Fail(Kind::kPermanent, "HTTP 400")};
  r = e->Export(batch_);
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_EQ(r.failed, 10u);
  e->attempt_cost = milliseconds(1000);
  for (int i = 0; i < 100; i++) e->script.push_back(Fail(Kind::kRetryable, "UNAVAILABLE"));
  r = e->Export(batch_);
  EXPECT_EQ(r.delivered, 0u) << "a collector that is down delivers nothing";
  EXPECT_EQ(r.failed, 10u);
}

TEST_F(OtlpExporterBaseTest, StoppingWithTheCollectorDownGivesUpAtOnce) {
  auto e = Make();
  for (int i = 0; i < 100; i++) e->script.push_back(NoAnswer("connect"));
  // The agent stops during the batch's retries (the collector refused the first attempt),
  // with 10 s of drain time: nothing more is waited for.
  int sends = 0;
  const auto stopped_at = clock_->Now() + milliseconds(50);
  e->on_send = [&] {
    if (++sends == 2) e->BeginShutdown(clock_->Now() + milliseconds(10000));
  };
  clock_->Advance(milliseconds(50));
  ExportResult r = e->Export(batch_);
  EXPECT_EQ(r.failed, 10u);
  EXPECT_EQ(sends, 2) << "the attempt that failed during the stop was the last";
  EXPECT_EQ(e->cancels, 1) << "an attempt in flight is cut short";
  EXPECT_LT(clock_->Now() - stopped_at, milliseconds(2000)) << "no backoff after the stop";
  // Every batch still queued is dropped without an attempt, long before the drain deadline.
  for (int i = 0; i < 5; i++) {
    r = e->Export(batch_);
    EXPECT_EQ(r.failed, 10u);
  }
  EXPECT_EQ(sends, 2);
  EXPECT_EQ(e->counters().spans_dropped_shutdown.load(), 60u);
}

TEST_F(OtlpExporterBaseTest, StoppingWithACollectorThatAnswersStillDeliversWithinTheDeadline) {
  auto e = Make();
  (void)e->Export(batch_);  // the collector answers
  e->BeginShutdown(clock_->Now() + milliseconds(10000));
  EXPECT_EQ(e->cancels, 0);
  EXPECT_EQ(e->Export(batch_).delivered, 10u) << "the final flush is sent";
  // Busy: it asks for 300 ms, which fits the drain deadline.
  e->script = {Fail(Kind::kRetryable, "HTTP 503", milliseconds(300)), Ok()};
  EXPECT_EQ(e->Export(batch_).delivered, 10u);
  // A wait past the deadline is not begun.
  e->script = {Fail(Kind::kRetryable, "HTTP 503", milliseconds(20000))};
  EXPECT_EQ(e->Export(batch_).failed, 10u);
  EXPECT_EQ(clock_->sleeps(), std::vector<milliseconds>{milliseconds(300)});
}

TEST_F(OtlpExporterBaseTest, FinishLogsExactTotalsTheRateLimitMayHaveHidden) {
  auto e = Make();
  e->BeginShutdown(clock_->Now());
  for (int i = 0; i < 7; i++) (void)e->Export(batch_);  // dropped at shutdown, one line logged
  ASSERT_EQ(logs_.size(), 1u);
  EXPECT_NE(logs_[0].find("dropped 10 spans"), std::string::npos) << logs_[0];
  EXPECT_EQ(e->Finish().delivered, 0u);
  ASSERT_EQ(logs_.size(), 2u);
  EXPECT_EQ(logs_[1],
            "exporter scripted (http://collector:4318/v1/traces): in total 0 spans delivered and "
            "70 dropped (0 after retries ran out, 0 on errors not worth a retry, 70 at shutdown, "
            "0 rejected by the collector)");
}

TEST_F(OtlpExporterBaseTest, LogLinesNeverShowEndpointSecrets) {
  config_.endpoint = "https://bob:hunter2@collector:4318/v1/traces?token=s3cret&team=a";
  auto e = Make();
  e->script = {Fail(Kind::kPermanent, "HTTP 401")};
  (void)e->Export(batch_);
  ASSERT_EQ(logs_.size(), 1u);
  EXPECT_EQ(logs_[0].find("hunter2"), std::string::npos) << logs_[0];
  EXPECT_EQ(logs_[0].find("s3cret"), std::string::npos) << logs_[0];
  EXPECT_NE(logs_[0].find("(https://REDACTED@collector:4318/v1/traces?REDACTED)"),
            std::string::npos)
      << logs_[0];
}

TEST_F(OtlpExporterBaseTest, AttemptTimeoutIsTheConfiguredTimeout) {
  auto e = Make();
  (void)e->Export(batch_);
  EXPECT_EQ(e->timeouts, std::vector<milliseconds>{milliseconds(1000)});
  (void)e->Export({});
  EXPECT_EQ(e->timeouts.size(), 1u) << "an empty batch sends nothing";
}

}  // namespace
}  // namespace zerotrace::exporter
