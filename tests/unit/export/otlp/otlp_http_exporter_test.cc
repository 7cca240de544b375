// OtlpHttpExporter against an in-process HTTP/1.1 receiver, OK and failing.
#include "export/otlp_http_exporter.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "export/otlp_json.h"
#include "otlp_test_support.h"

namespace zerotrace::exporter {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::HttpReceiver;
using testing::Reply;

class OtlpHttpExporterTest : public ::testing::Test {
 protected:
  OtlpHttpExporterTest() {
    config_.endpoint = receiver_.endpoint();
    config_.insecure = true;
    config_.timeout = milliseconds(5000);
    options_.retry = {milliseconds(10), milliseconds(50), milliseconds(10000)};
    options_.sleeper = sleeper_;
    options_.log = [this](const std::string& line) { logs_.push_back(line); };
  }
  std::unique_ptr<OtlpHttpExporter> Make() {
    auto e = OtlpHttpExporter::Create(config_, options_);
    EXPECT_TRUE(e.ok()) << e.status().message();
    return std::move(e.value());
  }

  HttpReceiver receiver_;
  std::shared_ptr<testing::FakeSleeper> sleeper_ = std::make_shared<testing::FakeSleeper>();
  OtlpConfig config_;
  OtlpExporterOptions options_;
  std::vector<std::string> logs_;
};

TEST_F(OtlpHttpExporterTest, ProtobufSpansArriveFieldForField) {
  config_.headers = {{"authorization", "Bearer abc="}, {"x-tenant", "a,b"}};
  auto e = Make();
  const auto spans = testing::TrickyBatch();
  (void)e->Export(spans);
  const auto got = receiver_.script().received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers.at("content-type"), "application/x-protobuf");
  EXPECT_EQ(got[0].headers.count("content-encoding"), 0u);
  EXPECT_EQ(got[0].headers.at("authorization"), "Bearer abc=");
  EXPECT_EQ(got[0].headers.at("x-tenant"), "a,b");
  EXPECT_EQ(got[0].headers.at("user-agent").rfind("zerotrace/", 0), 0u);
  EXPECT_EQ(testing::ToJsonShape(got[0].request), json::parse(ToOtlpJson(spans)));
  EXPECT_EQ(e->counters().spans_ok.load(), 3u);
  EXPECT_EQ(e->counters().bytes_sent.load(), got[0].body.size());
}

TEST_F(OtlpHttpExporterTest, ProtobufSpansEncodedBeforehandArriveGzippedFieldForField) {
  config_.gzip = true;
  auto e = Make();
  ASSERT_NE(e->span_encoder(), nullptr);
  const auto spans = testing::TrickyBatch();
  std::vector<EncodedSpan> encoded;
  for (const trace::Span& s : spans) {
    encoded.push_back({"", s.resource});
    e->span_encoder()(s, &encoded.back().bytes);
  }
  EXPECT_EQ(e->ExportEncoded(encoded).delivered, 3u);
  const auto got = receiver_.script().received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers.at("content-encoding"), "gzip");
  EXPECT_EQ(testing::ToJsonShape(got[0].request), json::parse(ToOtlpJson(spans)));
  EXPECT_EQ(e->counters().spans_ok.load(), 3u);
}

TEST_F(OtlpHttpExporterTest, JsonBodiesKeepTheSpanPath) {
  config_.protocol = OtlpConfig::Protocol::kHttpJson;
  EXPECT_EQ(Make()->span_encoder(), nullptr);
}

TEST_F(OtlpHttpExporterTest, JsonBodiesAreTheJsonEncoderOutput) {
  config_.protocol = OtlpConfig::Protocol::kHttpJson;
  auto e = Make();
  const auto spans = testing::TrickyBatch();
  (void)e->Export(spans);
  const auto got = receiver_.script().received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(got[0].body, ToOtlpJson(spans));
}

TEST_F(OtlpHttpExporterTest, GzipBodiesDecodeToTheSameRequest) {
  config_.gzip = true;
  for (auto protocol : {OtlpConfig::Protocol::kHttpProtobuf, OtlpConfig::Protocol::kHttpJson}) {
    config_.protocol = protocol;
    auto e = Make();
    const auto spans = testing::TypicalBatch(300);
    (void)e->Export(spans);
    (void)e->Export(spans);  // the deflate stream is reset between batches
    const auto got = receiver_.script().received();
    ASSERT_EQ(got.size(), 2u);
    for (const auto& r : got) {
      EXPECT_EQ(r.headers.at("content-encoding"), "gzip");
      const std::string plain = testing::Gunzip(r.body);
      EXPECT_LT(r.body.size(), plain.size() / 3) << "compressed";
      if (protocol == OtlpConfig::Protocol::kHttpJson) {
        EXPECT_EQ(plain, ToOtlpJson(spans));
      } else {
        EXPECT_EQ(testing::ToJsonShape(r.request), json::parse(ToOtlpJson(spans)));
      }
    }
    receiver_.script().Reset();
  }
}

TEST_F(OtlpHttpExporterTest, RetryAfterIsHonouredThenTheBatchArrives) {
  Reply busy;
  busy.http_status = 503;
  busy.retry_after = milliseconds(2000);
  Reply throttled;
  throttled.http_status = 429;  // no Retry-After: jittered backoff
  receiver_.script().Set({busy, throttled});
  auto e = Make();
  const auto spans = testing::TypicalBatch(8);
  (void)e->Export(spans);
  EXPECT_EQ(receiver_.script().count(), 3u);
  const auto sleeps = sleeper_->sleeps();
  ASSERT_EQ(sleeps.size(), 2u);
  EXPECT_EQ(sleeps[0], milliseconds(2000));
  EXPECT_LE(sleeps[1], milliseconds(20));
  EXPECT_EQ(e->counters().retries.load(), 2u);
  EXPECT_EQ(e->counters().spans_ok.load(), 8u);
  const auto got = receiver_.script().received();
  EXPECT_EQ(got[0].body, got[2].body) << "the same batch is sent again";
}

TEST_F(OtlpHttpExporterTest, RetryableStatusesAreExactlyTheSpecificationsOnes) {
  for (int status : {502, 504, 400, 401, 404, 413, 500}) {
    SCOPED_TRACE(status);
    Reply reply;
    reply.http_status = status;
    reply.message = "status " + std::to_string(status);
    receiver_.script().Set({reply});
    auto e = Make();
    (void)e->Export(testing::TypicalBatch(4));
    const bool retryable = status == 502 || status == 504;
    EXPECT_EQ(e->counters().retries.load(), retryable ? 1u : 0u);
    EXPECT_EQ(e->counters().spans_ok.load(), retryable ? 4u : 0u);
    EXPECT_EQ(e->counters().spans_dropped_non_retryable.load(), retryable ? 0u : 4u);
  }
}

TEST_F(OtlpHttpExporterTest, BadRequestIsDroppedAndLoggedWithTheCollectorsMessage) {
  Reply bad;
  bad.http_status = 400;
  bad.message = "span name must not be empty";
  receiver_.script().Set({bad});
  auto e = Make();
  (void)e->Export(testing::TypicalBatch(8));
  EXPECT_EQ(e->counters().spans_dropped_non_retryable.load(), 8u);
  ASSERT_EQ(logs_.size(), 1u);
  EXPECT_NE(logs_[0].find("dropped 8 spans: export failed, not retryable: HTTP 400: span name "
                          "must not be empty"),
            std::string::npos)
      << logs_[0];
}

TEST_F(OtlpHttpExporterTest, PartialSuccessIsReadFromProtobufAndJsonBodies) {
  for (auto protocol : {OtlpConfig::Protocol::kHttpProtobuf, OtlpConfig::Protocol::kHttpJson}) {
    config_.protocol = protocol;
    Reply partial;
    partial.rejected_spans = 3;
    partial.partial_message = "too old";
    receiver_.script().Set({partial});
    auto e = Make();
    (void)e->Export(testing::TypicalBatch(8));
    EXPECT_EQ(e->counters().spans_ok.load(), 5u) << static_cast<int>(protocol);
    EXPECT_EQ(e->counters().spans_rejected_partial.load(), 3u);
    EXPECT_EQ(e->counters().retries.load(), 0u);
  }
}

TEST_F(OtlpHttpExporterTest, SlowCollectorIsBoundedByTimeoutAndDeadline) {
  Reply slow;
  slow.hold = milliseconds(60000);  // released when the receiver stops
  receiver_.script().Set({}, slow);
  config_.timeout = milliseconds(200);
  options_.sleeper = nullptr;  // real time
  options_.retry = {milliseconds(10), milliseconds(50), milliseconds(1000)};
  auto e = Make();
  const auto start = std::chrono::steady_clock::now();
  (void)e->Export(testing::TypicalBatch(8));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, milliseconds(2500));
  EXPECT_GE(took, milliseconds(200));
  EXPECT_EQ(e->counters().spans_dropped_retry_exhausted.load(), 8u);
  EXPECT_GE(e->counters().retries.load(), 1u);
  ASSERT_FALSE(logs_.empty());
  EXPECT_NE(logs_[0].find("Timeout was reached"), std::string::npos) << logs_[0];
  receiver_.Stop();
}

TEST_F(OtlpHttpExporterTest, NoCollectorMeansRetriesThenACountedDrop) {
  const std::string endpoint = receiver_.endpoint();
  receiver_.Stop();  // connection refused from now on
  config_.endpoint = endpoint;
  options_.retry = {milliseconds(100), milliseconds(400), milliseconds(3000)};
  auto e = Make();
  (void)e->Export(testing::TypicalBatch(8));
  EXPECT_EQ(e->counters().spans_dropped_retry_exhausted.load(), 8u);
  EXPECT_GE(e->counters().retries.load(), 3u);
  ASSERT_FALSE(logs_.empty());
  EXPECT_NE(logs_[0].find("Couldn't connect to server"), std::string::npos) << logs_[0];
}

TEST_F(OtlpHttpExporterTest, StoppingWithTheCollectorRefusingSendsNothingMore) {
  const std::string endpoint = receiver_.endpoint();
  receiver_.Stop();  // connection refused from now on
  config_.endpoint = endpoint;
  options_.retry = {milliseconds(100), milliseconds(400), milliseconds(1000)};
  auto e = Make();
  EXPECT_EQ(e->Export(testing::TypicalBatch(8)).failed, 8u);
  const uint64_t attempts = e->counters().attempts_retryable_failed.load();
  e->BeginShutdown(RetryClock::now() + std::chrono::seconds(10));
  EXPECT_EQ(e->Export(testing::TypicalBatch(8)).failed, 8u);
  EXPECT_EQ(e->counters().attempts_retryable_failed.load(), attempts)
      << "a refused connection is not tried again while stopping";
  EXPECT_EQ(e->counters().spans_dropped_shutdown.load(), 8u);
}

TEST_F(OtlpHttpExporterTest, StoppingStillWaitsBrieflyForACollectorThatAsks) {
  Reply busy;
  busy.http_status = 503;
  busy.retry_after = milliseconds(1000);
  receiver_.script().Set({busy});
  auto e = Make();
  e->BeginShutdown(RetryClock::now() + std::chrono::seconds(10));
  EXPECT_EQ(e->Export(testing::TypicalBatch(8)).delivered, 8u)
      << "the collector answered: a retry within the drain deadline is worth it";
  EXPECT_EQ(sleeper_->sleeps(), std::vector<milliseconds>{milliseconds(1000)});
}

TEST_F(OtlpHttpExporterTest, CreateRejectsGrpcAndBadUrls) {
  config_.protocol = OtlpConfig::Protocol::kGrpc;
  EXPECT_FALSE(OtlpHttpExporter::Create(config_, options_).ok());
  config_.protocol = OtlpConfig::Protocol::kHttpProtobuf;
  config_.endpoint = "collector:4318";
  EXPECT_FALSE(OtlpHttpExporter::Create(config_, options_).ok());
}

}  // namespace
}  // namespace zerotrace::exporter
