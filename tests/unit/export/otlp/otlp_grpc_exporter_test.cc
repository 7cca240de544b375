// OtlpGrpcExporter against an in-process grpc++ TraceService, OK and failing.
#include "export/otlp_grpc_exporter.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "export/otlp_json.h"
#include "otlp_test_support.h"

namespace zerotrace::exporter {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::GrpcReceiver;
using testing::Reply;

class OtlpGrpcExporterTest : public ::testing::Test {
 protected:
  OtlpGrpcExporterTest() {
    config_.protocol = OtlpConfig::Protocol::kGrpc;
    config_.endpoint = receiver_.endpoint();
    config_.insecure = true;
    config_.timeout = milliseconds(5000);
    options_.retry = {milliseconds(10), milliseconds(50), milliseconds(10000)};
    options_.log = [this](const std::string& line) {
      std::lock_guard lock(mu_);
      logs_.push_back(line);
    };
  }
  std::unique_ptr<OtlpGrpcExporter> Make() {
    auto e = OtlpGrpcExporter::Create(config_, options_);
    EXPECT_TRUE(e.ok()) << e.status().message();
    return std::move(e.value());
  }
  std::vector<std::string> logs() {
    std::lock_guard lock(mu_);
    return logs_;
  }

  GrpcReceiver receiver_;
  OtlpConfig config_;
  OtlpExporterOptions options_;
  std::mutex mu_;
  std::vector<std::string> logs_;
};

TEST_F(OtlpGrpcExporterTest, SpansArriveFieldForFieldAsTheJsonEncoderWritesThem) {
  auto e = Make();
  const auto spans = testing::TrickyBatch();
  (void)e->Export(spans);
  const auto got = receiver_.script().received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(testing::ToJsonShape(got[0].request), json::parse(ToOtlpJson(spans)));
  EXPECT_FALSE(got[0].grpc_gzip);
  EXPECT_EQ(e->counters().batches_ok.load(), 1u);
  EXPECT_EQ(e->counters().spans_ok.load(), 3u);
  EXPECT_GT(e->counters().bytes_sent.load(), 0u);
}

// What the export worker sends when the consumer thread encoded the spans (EncodeOtlpSpan).
std::vector<EncodedSpan> Encoded(const SpanExporter& e, const std::vector<trace::Span>& spans) {
  std::vector<EncodedSpan> out;
  for (const trace::Span& s : spans) {
    out.push_back({"", s.resource});
    e.span_encoder()(s, &out.back().bytes);
  }
  return out;
}

TEST_F(OtlpGrpcExporterTest, SpansEncodedBeforehandArriveFieldForField) {
  config_.gzip = true;
  auto e = Make();
  ASSERT_NE(e->span_encoder(), nullptr);
  const auto spans = testing::TrickyBatch();
  EXPECT_EQ(e->ExportEncoded(Encoded(*e, spans)).delivered, 3u);
  const auto got = receiver_.script().received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].grpc_gzip);
  EXPECT_EQ(testing::ToJsonShape(got[0].request), json::parse(ToOtlpJson(spans)));
  EXPECT_EQ(e->counters().spans_ok.load(), 3u);
}

TEST_F(OtlpGrpcExporterTest, HeadersArriveAsMetadataWithOurUserAgent) {
  config_.headers = {{"authorization", "Bearer abc="}, {"x-tenant", "a,b"}};
  auto e = Make();
  (void)e->Export(testing::TypicalBatch(4));
  const auto got = receiver_.script().received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers.at("authorization"), "Bearer abc=");
  EXPECT_EQ(got[0].headers.at("x-tenant"), "a,b");
  EXPECT_EQ(got[0].headers.at("user-agent").rfind("zerotrace/", 0), 0u)
      << got[0].headers.at("user-agent");
}

TEST_F(OtlpGrpcExporterTest, GzipRequestsArriveIntact) {
  config_.gzip = true;
  auto e = Make();
  const auto spans = testing::TypicalBatch(200);
  (void)e->Export(spans);
  const auto got = receiver_.script().received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].grpc_gzip);
  EXPECT_EQ(testing::ToJsonShape(got[0].request), json::parse(ToOtlpJson(spans)));
}

TEST_F(OtlpGrpcExporterTest, UnavailableWithRetryInfoIsRetriedAfterTheHint) {
  auto sleeper = std::make_shared<testing::FakeSleeper>();
  options_.sleeper = sleeper;
  Reply unavailable;
  unavailable.grpc_code = 14;
  unavailable.message = "restarting";
  unavailable.retry_after = milliseconds(1500);
  receiver_.script().Set({unavailable, unavailable});
  auto e = Make();
  (void)e->Export(testing::TypicalBatch(8));
  EXPECT_EQ(receiver_.script().count(), 3u);
  EXPECT_EQ(sleeper->sleeps(), (std::vector<milliseconds>{milliseconds(1500), milliseconds(1500)}));
  EXPECT_EQ(e->counters().retries.load(), 2u);
  EXPECT_EQ(e->counters().spans_ok.load(), 8u);
  const auto lines = logs();
  ASSERT_EQ(lines.size(), 1u) << "the second retry's line is within the log interval";
  EXPECT_NE(lines[0].find("export failed (UNAVAILABLE: restarting); retrying in 1.5 s as the "
                          "collector asked"),
            std::string::npos)
      << lines[0];
}

TEST_F(OtlpGrpcExporterTest, ResourceExhaustedIsRetriedOnlyWithRetryInfo) {
  auto sleeper = std::make_shared<testing::FakeSleeper>();
  options_.sleeper = sleeper;
  Reply throttled;
  throttled.grpc_code = 8;
  throttled.retry_after = milliseconds(200);
  Reply exhausted;
  exhausted.grpc_code = 8;
  receiver_.script().Set({throttled, exhausted});
  auto e = Make();
  (void)e->Export(testing::TypicalBatch(8));
  EXPECT_EQ(receiver_.script().count(), 2u);
  EXPECT_EQ(e->counters().retries.load(), 1u);
  EXPECT_EQ(e->counters().spans_dropped_non_retryable.load(), 8u);
}

TEST_F(OtlpGrpcExporterTest, InvalidArgumentDropsTheBatchWithoutRetrying) {
  Reply invalid;
  invalid.grpc_code = 3;
  invalid.message = "bad span";
  receiver_.script().Set({invalid});
  auto e = Make();
  (void)e->Export(testing::TypicalBatch(8));
  EXPECT_EQ(receiver_.script().count(), 1u);
  EXPECT_EQ(e->counters().spans_dropped_non_retryable.load(), 8u);
  EXPECT_EQ(e->counters().retries.load(), 0u);
  ASSERT_EQ(logs().size(), 1u);
  EXPECT_NE(logs()[0].find("dropped 8 spans: export failed, not retryable: INVALID_ARGUMENT: bad "
                           "span"),
            std::string::npos)
      << logs()[0];
}

TEST_F(OtlpGrpcExporterTest, PartialSuccessIsCountedNotRetried) {
  Reply partial;
  partial.rejected_spans = 2;
  partial.partial_message = "too old";
  receiver_.script().Set({partial});
  auto e = Make();
  (void)e->Export(testing::TypicalBatch(8));
  EXPECT_EQ(receiver_.script().count(), 1u);
  EXPECT_EQ(e->counters().spans_ok.load(), 6u);
  EXPECT_EQ(e->counters().spans_rejected_partial.load(), 2u);
}

TEST_F(OtlpGrpcExporterTest, SlowCollectorIsBoundedByTimeoutAndDeadline) {
  Reply slow;
  slow.hold = milliseconds(60000);  // released when the receiver stops
  receiver_.script().Set({}, slow);
  config_.timeout = milliseconds(200);
  options_.retry = {milliseconds(10), milliseconds(50), milliseconds(1000)};
  auto e = Make();
  const auto start = std::chrono::steady_clock::now();
  (void)e->Export(testing::TypicalBatch(8));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, milliseconds(2500));
  EXPECT_GE(took, milliseconds(200));
  EXPECT_EQ(e->counters().spans_dropped_retry_exhausted.load(), 8u);
  EXPECT_GE(e->counters().retries.load(), 1u);
  receiver_.Stop();
}

TEST_F(OtlpGrpcExporterTest, CollectorThatComesUpLaterGetsTheBatch) {
  const int port = receiver_.port();
  receiver_.Stop();  // nothing listens on the port now
  std::unique_ptr<GrpcReceiver> late;
  options_.retry = {milliseconds(20), milliseconds(100), milliseconds(20000)};
  options_.log = [&](const std::string&) {
    if (!late) late = std::make_unique<GrpcReceiver>(port);  // up after the first failure
  };
  auto e = Make();
  const auto spans = testing::TypicalBatch(16);
  (void)e->Export(spans);
  ASSERT_TRUE(late);
  const auto got = late->script().received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(testing::ToJsonShape(got[0].request), json::parse(ToOtlpJson(spans)));
  EXPECT_GE(e->counters().retries.load(), 1u);
  EXPECT_EQ(e->counters().spans_ok.load(), 16u);
}

TEST_F(OtlpGrpcExporterTest, BeginShutdownFromAnotherThreadEndsABackoffAtOnce) {
  Reply unavailable;
  unavailable.grpc_code = 14;
  unavailable.retry_after = milliseconds(30000);  // a long wait the shutdown must cut
  receiver_.script().Set({}, unavailable);
  std::mutex mu;
  std::condition_variable cv;
  bool retrying = false;
  options_.retry.max_elapsed = milliseconds(120000);
  options_.log = [&](const std::string&) {
    std::lock_guard lock(mu);
    retrying = true;
    cv.notify_all();
  };
  auto e = Make();
  std::thread stopper([&] {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(20), [&] { return retrying; });
    e->BeginShutdown(RetryClock::now());
  });
  const auto start = std::chrono::steady_clock::now();
  (void)e->Export(testing::TypicalBatch(8));
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(e->counters().spans_dropped_shutdown.load(), 8u);
}

TEST_F(OtlpGrpcExporterTest, StoppingWithTheCollectorRefusingSendsNothingMore) {
  receiver_.Stop();  // nothing listens on the port now
  options_.sleeper = std::make_shared<testing::FakeSleeper>();
  options_.retry = {milliseconds(100), milliseconds(400), milliseconds(1000)};
  auto e = Make();
  EXPECT_EQ(e->Export(testing::TypicalBatch(8)).failed, 8u);
  const uint64_t attempts = e->counters().attempts_retryable_failed.load();
  ASSERT_GT(attempts, 0u);
  e->BeginShutdown(RetryClock::now() + std::chrono::seconds(10));
  EXPECT_EQ(e->Export(testing::TypicalBatch(8)).failed, 8u);
  EXPECT_EQ(e->counters().attempts_retryable_failed.load(), attempts)
      << "a refused connection is not tried again while stopping";
  EXPECT_EQ(e->counters().spans_dropped_shutdown.load(), 8u);
}

TEST_F(OtlpGrpcExporterTest, StoppingStillWaitsBrieflyForACollectorThatAsks) {
  auto sleeper = std::make_shared<testing::FakeSleeper>();
  options_.sleeper = sleeper;
  Reply unavailable;
  unavailable.grpc_code = 14;  // sent by the server itself, without a hint
  receiver_.script().Set({unavailable});
  auto e = Make();
  EXPECT_EQ(e->Export(testing::TypicalBatch(4)).failed, 0u);  // retried, then accepted
  receiver_.script().Set({unavailable});
  e->BeginShutdown(RetryClock::now() + std::chrono::seconds(10));
  EXPECT_EQ(e->Export(testing::TypicalBatch(8)).delivered, 8u)
      << "the collector answered: a retry within the drain deadline is worth it";
}

TEST_F(OtlpGrpcExporterTest, CreateFailsOnUnreadableCertificates) {
  config_.insecure = false;
  config_.endpoint = "https://collector:4317";
  config_.certificate = "/nonexistent/ca.pem";
  auto e = OtlpGrpcExporter::Create(config_, options_);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "cannot read the CA certificate file '/nonexistent/ca.pem'");
  config_.certificate.clear();
  config_.endpoint = "https://collector:99999";
  EXPECT_FALSE(OtlpGrpcExporter::Create(config_, options_).ok());
}

}  // namespace
}  // namespace zerotrace::exporter
