// CountSpansInWire against protobuf's own encoding of requests, and broken framing.
#include "wire_count.h"

#include <gtest/gtest.h>

#include <string>

#include "sink.h"

namespace zerotrace::otlp_sink {
namespace {

// `resources` resources, each with `scopes` scopes of `spans` spans, every field set that
// could throw a walker off (varints, fixed64s, nested messages, strings).
ExportRequest Request(int resources, int scopes, int spans) {
  ExportRequest r;
  for (int i = 0; i < resources; i++) {
    auto* rs = r.add_resource_spans();
    auto* attr = rs->mutable_resource()->add_attributes();
    attr->set_key("service.name");
    attr->mutable_value()->set_string_value("svc-" + std::to_string(i));
    rs->set_schema_url("https://opentelemetry.io/schemas/1.26.0");
    for (int j = 0; j < scopes; j++) {
      auto* ss = rs->add_scope_spans();
      ss->mutable_scope()->set_name("zerotrace");
      for (int k = 0; k < spans; k++) {
        auto* span = ss->add_spans();
        span->set_trace_id(std::string(16, static_cast<char>(k + 1)));
        span->set_span_id(std::string(8, static_cast<char>(k + 2)));
        span->set_name("GET /items/{id}");
        span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER);
        span->set_start_time_unix_nano(1700000000000000000ull + k);
        span->set_end_time_unix_nano(1700000000000000999ull + k);
        auto* a = span->add_attributes();
        a->set_key("http.response.status_code");
        a->mutable_value()->set_int_value(200);
        span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_OK);
      }
    }
  }
  return r;
}

TEST(CountSpansInWireTest, CountsWhatProtobufEncoded) {
  for (const auto& [resources, scopes, spans] :
       {std::tuple{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {1, 1, 1}, {3, 2, 5}, {2, 1, 700}}) {
    const ExportRequest r = Request(resources, scopes, spans);
    const auto counted = CountSpansInWire(r.SerializeAsString());
    ASSERT_TRUE(counted) << resources << "x" << scopes << "x" << spans;
    EXPECT_EQ(*counted, CountSpans(r)) << resources << "x" << scopes << "x" << spans;
  }
}

TEST(CountSpansInWireTest, UnknownFieldsAreSkipped) {
  // Field 9 (varint), 10 (fixed32), 11 (fixed64) and 12 (bytes) around one real resource.
  std::string bytes = std::string("\x48\x96\x01", 3) + std::string("\x55\x01\x02\x03\x04", 5) +
                      std::string("\x59", 1) + std::string(8, '\x07') + "\x62\x02hi";
  bytes += Request(1, 1, 3).SerializeAsString();
  EXPECT_EQ(CountSpansInWire(bytes), 3);
}

TEST(CountSpansInWireTest, BrokenFramingIsRefused) {
  const std::string good = Request(1, 2, 4).SerializeAsString();
  EXPECT_FALSE(CountSpansInWire("\xff\xff\xff"));                    // varint runs off the end
  EXPECT_FALSE(CountSpansInWire(std::string("\x0a\x05\x12", 3)));    // length past the end
  EXPECT_FALSE(CountSpansInWire(std::string("\x0b", 1)));            // a group
  EXPECT_FALSE(CountSpansInWire(std::string("\x0f", 1)));            // wire type 7
  EXPECT_FALSE(CountSpansInWire(std::string("\x00\x01", 2)));        // field 0
  EXPECT_FALSE(CountSpansInWire(std::string(11, '\x80') + "\x01"));  // varint over 10 bytes
  // Every cut of a valid request inside a ResourceSpans leaves a length past the end.
  for (size_t cut = 1; cut < good.size(); cut += 7) {
    EXPECT_FALSE(CountSpansInWire(std::string_view(good).substr(0, cut))) << cut;
  }
  // A ScopeSpans whose inside is broken: resource_spans { scope_spans { 0xff } }.
  EXPECT_FALSE(CountSpansInWire(std::string("\x0a\x03\x12\x01\xff", 5)));
}

}  // namespace
}  // namespace zerotrace::otlp_sink
