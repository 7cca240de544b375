// OTLP/JSON decoding (hex ids, integer enums, string int64s, either field spelling) and encoding.
#include "otlp_json_codec.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace zerotrace::otlp_sink {
namespace {

using nlohmann::json;
using opentelemetry::proto::trace::v1::Span;

std::string Bytes(const std::string& hex) {
  std::string out;
  EXPECT_TRUE(FromHex(hex, &out)) << hex;
  return out;
}

const Span& OnlySpan(const ExportRequest& r) {
  EXPECT_EQ(r.resource_spans_size(), 1);
  EXPECT_EQ(r.resource_spans(0).scope_spans_size(), 1);
  EXPECT_EQ(r.resource_spans(0).scope_spans(0).spans_size(), 1);
  return r.resource_spans(0).scope_spans(0).spans(0);
}

ExportRequest MustDecode(const std::string& text) {
  auto decoded = DecodeOtlpJson(text);
  if (auto* error = std::get_if<DecodeError>(&decoded)) {
    ADD_FAILURE() << error->message << "\n" << text;
    return {};
  }
  return std::get<ExportRequest>(decoded);
}

TEST(OtlpJsonDecodeTest, HexIdsIntegerEnumsAndStringInt64s) {
  const ExportRequest r = MustDecode(R"({"resourceSpans":[{
    "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}},
                              {"key":"process.pid","value":{"intValue":"4242"}}]},
    "scopeSpans":[{"scope":{"name":"zerotrace","version":"0.1.0"},"spans":[{
      "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
      "parentSpanId":"eee19b7ec3c1b173","name":"GET /items/{id}","kind":2,
      "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
      "attributes":[{"key":"http.response.status_code","value":{"intValue":200}},
                    {"key":"url.path","value":{"stringValue":"/items/7"}},
                    {"key":"raw","value":{"bytesValue":"AQI="}}],
      "links":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331"}],
      "status":{"code":2,"message":"boom"},
      "someFutureField":{"ignored":true}}]}]}]})");
  const Span& s = OnlySpan(r);
  EXPECT_EQ(s.trace_id(), Bytes("5b8efff798038103d269b633813fc60c"));
  EXPECT_EQ(s.span_id(), Bytes("eee19b7ec3c1b174"));
  EXPECT_EQ(s.parent_span_id(), Bytes("eee19b7ec3c1b173"));
  EXPECT_EQ(s.kind(), Span::SPAN_KIND_SERVER);
  EXPECT_EQ(s.start_time_unix_nano(), 1544712660000000000u);
  EXPECT_EQ(s.end_time_unix_nano(), 1544712661000000000u);
  EXPECT_EQ(s.status().code(), opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(s.status().message(), "boom");
  ASSERT_EQ(s.attributes_size(), 3);
  EXPECT_EQ(s.attributes(0).value().int_value(), 200);
  EXPECT_EQ(s.attributes(2).value().bytes_value(), std::string("\x01\x02"));  // stays base64
  ASSERT_EQ(s.links_size(), 1);
  EXPECT_EQ(s.links(0).trace_id(), Bytes("0af7651916cd43dd8448eb211c80319c"));
  EXPECT_EQ(s.links(0).span_id(), Bytes("b7ad6b7169203331"));
  EXPECT_EQ(r.resource_spans(0).resource().attributes(1).value().int_value(), 4242);
}

TEST(OtlpJsonDecodeTest, OriginalFieldNamesAndEnumNames) {
  const ExportRequest r = MustDecode(R"({"resource_spans":[{"scope_spans":[{"spans":[{
      "trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708",
      "parent_span_id":"","kind":"SPAN_KIND_CLIENT","name":"x"}]}]}]})");
  const Span& s = OnlySpan(r);
  EXPECT_EQ(s.trace_id(), Bytes("0102030405060708090a0b0c0d0e0f10"));
  EXPECT_EQ(s.span_id(), Bytes("0102030405060708"));
  EXPECT_TRUE(s.parent_span_id().empty());
  EXPECT_EQ(s.kind(), Span::SPAN_KIND_CLIENT);
}

TEST(OtlpJsonDecodeTest, EmptyObjectIsAnEmptyRequest) {
  EXPECT_EQ(MustDecode("{}").resource_spans_size(), 0);
}

TEST(OtlpJsonDecodeTest, RejectsWithAMessage) {
  struct Case {
    const char* name;
    const char* body;
    const char* says;  // part of the error message
  };
  const Case cases[] = {
      {"not json", "{", "not valid JSON"},
      {"not an object", "[]", "not a JSON object"},
      {"odd hex", R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc"}]}]}]})",
       "traceId"},
      {"non-hex",
       R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zz00000000000000"}]}]}]})",
       "spanId"},
      {"number id", R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"parentSpanId":7}]}]}]})",
       "parentSpanId"},
      {"link id", R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"links":[{"spanId":"x"}]}]}]}]})",
       "spanId"},
      {"wrong type", R"({"resourceSpans":[{"scopeSpans":[{"spans":"many"}]}]})",
       "ExportTraceServiceRequest"},
      {"bad int64",
       R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]})",
       "ExportTraceServiceRequest"},
  };
  for (const Case& c : cases) {
    auto decoded = DecodeOtlpJson(c.body);
    ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded)) << c.name;
    EXPECT_NE(std::get<DecodeError>(decoded).message.find(c.says), std::string::npos)
        << c.name << ": " << std::get<DecodeError>(decoded).message;
  }
}

ExportRequest SampleRequest() {
  ExportRequest r;
  auto* rs = r.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("checkout");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("zerotrace");
  Span* s = ss->add_spans();
  s->set_trace_id(Bytes("5b8efff798038103d269b633813fc60c"));
  s->set_span_id(Bytes("eee19b7ec3c1b174"));
  s->set_parent_span_id(Bytes("00000000000000ff"));
  s->set_name("GET /");
  s->set_kind(Span::SPAN_KIND_SERVER);
  s->set_start_time_unix_nano(1700000000123456789u);
  s->set_end_time_unix_nano(1700000000223456789u);
  auto* a = s->add_attributes();
  a->set_key("http.response.status_code");
  a->mutable_value()->set_int_value(200);
  auto* b = s->add_attributes();
  b->set_key("raw");
  b->mutable_value()->set_bytes_value(std::string("\x01\x02", 2));
  s->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  auto* link = s->add_links();
  link->set_trace_id(Bytes("0af7651916cd43dd8448eb211c80319c"));
  link->set_span_id(Bytes("b7ad6b7169203331"));
  ss->add_spans()->set_name("no ids");  // ids absent: no id fields in JSON
  return r;
}

TEST(OtlpJsonEncodeTest, OtlpShape) {
  const json doc = json::parse(EncodeOtlpJson(SampleRequest()));
  const json& s = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(s["traceId"], "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(s["spanId"], "eee19b7ec3c1b174");
  EXPECT_EQ(s["parentSpanId"], "00000000000000ff");
  EXPECT_EQ(s["kind"], 2);
  EXPECT_EQ(s["startTimeUnixNano"], "1700000000123456789");
  EXPECT_EQ(s["endTimeUnixNano"], "1700000000223456789");
  EXPECT_EQ(s["attributes"][0], json::parse(R"({"key":"http.response.status_code",
                                                "value":{"intValue":"200"}})"));
  EXPECT_EQ(s["attributes"][1]["value"]["bytesValue"], "AQI=");
  EXPECT_EQ(s["status"], json::parse(R"({"code":2})"));
  EXPECT_EQ(s["links"][0]["traceId"], "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(s["links"][0]["spanId"], "b7ad6b7169203331");
  const json& bare = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1];
  EXPECT_EQ(bare, json::parse(R"({"name":"no ids"})"));
  EXPECT_EQ(doc["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "checkout");
}

TEST(OtlpJsonEncodeTest, IsOneLineInFieldNumberOrder) {
  const std::string line = EncodeOtlpJson(SampleRequest());
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.rfind(R"({"resourceSpans":[{"resource":)", 0), 0u) << line;
  EXPECT_LT(line.find(R"("traceId")"), line.find(R"("spanId")"));
  EXPECT_LT(line.find(R"("name":"GET /")"), line.find(R"("kind")"));
}

TEST(OtlpJsonCodecTest, DecodeOfEncodeIsIdentity) {
  const ExportRequest original = SampleRequest();
  const ExportRequest back = MustDecode(EncodeOtlpJson(original));
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(original, back)) << diff;
}

TEST(OtlpJsonCodecTest, ResponseWithPartialSuccess) {
  ExportResponse response;
  EXPECT_EQ(EncodeOtlpJsonResponse(response), "{}");
  response.mutable_partial_success()->set_rejected_spans(3);
  response.mutable_partial_success()->set_error_message("full");
  EXPECT_EQ(json::parse(EncodeOtlpJsonResponse(response)),
            json::parse(R"({"partialSuccess":{"rejectedSpans":"3","errorMessage":"full"}})"));
}

TEST(HexTest, RoundTripAndRejects) {
  std::string bytes;
  ASSERT_TRUE(FromHex("00ffA0", &bytes));
  EXPECT_EQ(bytes, std::string("\x00\xff\xa0", 3));
  EXPECT_EQ(ToHex(bytes), "00ffa0");
  EXPECT_FALSE(FromHex("0", &bytes));
  EXPECT_FALSE(FromHex("0g", &bytes));
  ASSERT_TRUE(FromHex("", &bytes));
  EXPECT_TRUE(bytes.empty());
}

}  // namespace
}  // namespace zerotrace::otlp_sink
