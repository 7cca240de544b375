// OTLP/JSON output: exact structure for a mixed batch, string escaping, UTF-8 repair.
#include "export/otlp_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace zerotrace::exporter {
namespace {

using nlohmann::json;
using trace::Resource;
using trace::Span;
using trace::SpanId;
using trace::SpanKind;
using trace::StatusCode;
using trace::TraceId;

TraceId TraceIdFromHex(const std::string& hex) {
  TraceId id;
  for (size_t i = 0; i < id.bytes.size(); i++) id.bytes[i] = std::stoi(hex.substr(2 * i, 2), 0, 16);
  return id;
}

SpanId SpanIdFromHex(const std::string& hex) {
  SpanId id;
  for (size_t i = 0; i < id.bytes.size(); i++) id.bytes[i] = std::stoi(hex.substr(2 * i, 2), 0, 16);
  return id;
}

// Test messages: raw bytes as \xNN.
std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    out += buf;
  }
  return out;
}

std::string Escaped(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

// Two processes, three spans: a root SERVER span in "frontend", its CLIENT child that failed in
// "orders", and a second frontend span whose Resource is an equal copy (different pointer).
std::vector<Span> MixedBatch() {
  auto frontend = std::make_shared<Resource>();
  frontend->service_name = "frontend";
  frontend->pid = 4242;
  frontend->executable_name = "node";
  frontend->executable_path = "/usr/bin/node";
  frontend->host_name = "node-1";
  frontend->extra = {{"k8s.node.name", std::string("node-1")},
                     {"service.name", std::string("ignored: the agent's value wins")}};
  auto frontend_copy = std::make_shared<Resource>(*frontend);
  auto orders = std::make_shared<Resource>();
  orders->service_name = "orders";
  orders->pid = 77;
  orders->executable_name = "python3";
  orders->executable_path = "/usr/bin/python3.11";
  orders->container_id = "c0ffee";
  orders->host_name = "node-1";

  const TraceId trace = TraceIdFromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  Span root;
  root.trace_id = trace;
  root.span_id = SpanIdFromHex("00f067aa0ba902b7");
  root.trace_state = "vendor=a1";
  root.name = "GET /api/orders/{id}";
  root.kind = SpanKind::kServer;
  root.start_unix_ns = 1700000000123456789ull;
  root.end_unix_ns = 1700000000135801789ull;
  root.attributes = {{"http.request.method", std::string("GET")},
                     {"url.path", std::string("/api/orders/42")},
                     {"http.response.status_code", int64_t{200}},
                     {"zerotrace.sampled", true},
                     {"zerotrace.ratio", 1.5}};
  root.resource = frontend;

  Span client;
  client.trace_id = trace;
  client.span_id = SpanIdFromHex("b7ad6b7169203331");
  client.parent_span_id = root.span_id;
  client.name = "POST";
  client.kind = SpanKind::kClient;
  client.start_unix_ns = 1700000000124000000ull;
  client.end_unix_ns = 1700000000130000000ull;
  client.attributes = {{"http.request.method", std::string("POST")},
                       {"http.response.status_code", int64_t{503}},
                       {"error.type", std::string("503")}};
  client.status = StatusCode::kError;
  client.status_message = "Service \"Unavailable\"";
  client.resource = orders;

  Span second;
  second.trace_id = TraceIdFromHex("0af7651916cd43dd8448eb211c80319c");
  second.span_id = SpanIdFromHex("ffffffffffffff01");
  second.name = "GET";
  second.kind = SpanKind::kServer;
  second.start_unix_ns = 1;
  second.end_unix_ns = 18446744073709551615ull;  // uint64 max survives as a string
  second.status = StatusCode::kOk;
  second.resource = frontend_copy;
  return {root, client, second};
}

TEST(OtlpJsonTest, MixedBatchMatchesGolden) {
  const std::string out = ToOtlpJson(MixedBatch());
  EXPECT_EQ(out.find('\n'), std::string::npos) << "one line per request";
  const json expected = json::parse(R"({"resourceSpans":[
    {"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"frontend"}},
        {"key":"process.pid","value":{"intValue":"4242"}},
        {"key":"process.executable.name","value":{"stringValue":"node"}},
        {"key":"process.executable.path","value":{"stringValue":"/usr/bin/node"}},
        {"key":"host.name","value":{"stringValue":"node-1"}},
        {"key":"os.type","value":{"stringValue":"linux"}},
        {"key":"k8s.node.name","value":{"stringValue":"node-1"}}]},
     "scopeSpans":[{"scope":{"name":"zerotrace","version":"0.1.0"},"spans":[
        {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",
         "traceState":"vendor=a1","name":"GET /api/orders/{id}","kind":2,
         "startTimeUnixNano":"1700000000123456789","endTimeUnixNano":"1700000000135801789",
         "attributes":[
            {"key":"http.request.method","value":{"stringValue":"GET"}},
            {"key":"url.path","value":{"stringValue":"/api/orders/42"}},
            {"key":"http.response.status_code","value":{"intValue":"200"}},
            {"key":"zerotrace.sampled","value":{"boolValue":true}},
            {"key":"zerotrace.ratio","value":{"doubleValue":1.5}}],
         "status":{}},
        {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"ffffffffffffff01",
         "name":"GET","kind":2,
         "startTimeUnixNano":"1","endTimeUnixNano":"18446744073709551615",
         "attributes":[],"status":{"code":1}}]}]},
    {"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"orders"}},
        {"key":"process.pid","value":{"intValue":"77"}},
        {"key":"process.executable.name","value":{"stringValue":"python3"}},
        {"key":"process.executable.path","value":{"stringValue":"/usr/bin/python3.11"}},
        {"key":"host.name","value":{"stringValue":"node-1"}},
        {"key":"os.type","value":{"stringValue":"linux"}},
        {"key":"container.id","value":{"stringValue":"c0ffee"}}]},
     "scopeSpans":[{"scope":{"name":"zerotrace","version":"0.1.0"},"spans":[
        {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"b7ad6b7169203331",
         "parentSpanId":"00f067aa0ba902b7","name":"POST","kind":3,
         "startTimeUnixNano":"1700000000124000000","endTimeUnixNano":"1700000000130000000",
         "attributes":[
            {"key":"http.request.method","value":{"stringValue":"POST"}},
            {"key":"http.response.status_code","value":{"intValue":"503"}},
            {"key":"error.type","value":{"stringValue":"503"}}],
         "status":{"code":2,"message":"Service \"Unavailable\""}}]}]}]})");
  const json got = json::parse(out);
  EXPECT_EQ(got, expected) << "got:\n" << got.dump(2);
}

TEST(OtlpJsonTest, EmptyBatchIsAnEmptyRequest) {
  EXPECT_EQ(ToOtlpJson({}), R"({"resourceSpans":[]})");
}

TEST(OtlpJsonTest, SpanWithoutResourceGetsDefaults) {
  Span s;
  s.span_id = SpanIdFromHex("0000000000000001");
  const json got = json::parse(ToOtlpJson({s}));
  EXPECT_EQ(got["resourceSpans"][0]["resource"]["attributes"], json::parse(R"([
      {"key":"service.name","value":{"stringValue":"unknown_service"}},
      {"key":"os.type","value":{"stringValue":"linux"}}])"));
  const json& span = got["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_FALSE(span.contains("parentSpanId"));
  EXPECT_FALSE(span.contains("traceState"));
  EXPECT_EQ(span["kind"], 1);
}

TEST(OtlpJsonTest, DoublesUseProtoJsonSpellings) {
  struct Case {
    double value;
    json expected;
  };
  const Case cases[] = {
      {0.1, 0.1},
      {-2.0, -2.0},
      {1e300, 1e300},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
      {std::numeric_limits<double>::infinity(), "Infinity"},
      {-std::numeric_limits<double>::infinity(), "-Infinity"},
  };
  for (const Case& c : cases) {
    Span s;
    s.attributes = {{"d", c.value}};
    const json got = json::parse(ToOtlpJson({s}));
    EXPECT_EQ(got["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][0]["value"]
                 ["doubleValue"],
              c.expected)
        << c.value;
  }
}

TEST(OtlpJsonTest, NegativeAndExtremeIntsAreStrings) {
  Span s;
  s.attributes = {{"min", std::numeric_limits<int64_t>::min()}, {"neg", int64_t{-1}}};
  const json attrs =
      json::parse(ToOtlpJson({s}))["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"];
  EXPECT_EQ(attrs[0]["value"]["intValue"], "-9223372036854775808");
  EXPECT_EQ(attrs[1]["value"]["intValue"], "-1");
}

// Each row: raw bytes in, exact JSON text out.
TEST(JsonStringTest, EscapesAndRepairsAsSpecified) {
  struct Case {
    std::string in;
    std::string out;
  };
  const std::string R = "\xEF\xBF\xBD";  // U+FFFD
  const Case cases[] = {
      {"", R"("")"},
      {"plain /path?q=1", R"("plain /path?q=1")"},
      {"say \"hi\"", R"("say \"hi\"")"},
      {"C:\\dir", R"("C:\\dir")"},
      {"a\nb\rc\td\be\ff", R"("a\nb\rc\td\be\ff")"},
      {std::string("\x00\x01\x1f", 3), R"("\u0000\u0001\u001f")"},
      {"\x7f", "\"\x7f\""},  // DEL is legal in JSON strings
      {"\x1b[31mred", R"("\u001b[31mred")"},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
       "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""},
      {"\xE2\x80\xA8", "\"\xE2\x80\xA8\""},               // U+2028 is valid JSON
      {"\xFF", "\"" + R + "\""},                          // never a UTF-8 byte
      {"\x80", "\"" + R + "\""},                          // lone continuation
      {"a\xC3", "\"a" + R + "\""},                        // truncated at the end
      {"\xC3(", "\"" + R + "(\""},                        // truncated before ASCII
      {"\xC0\xAF", "\"" + R + R + "\""},                  // overlong '/': C0 is never valid
      {"\xE0\x80\xAF", "\"" + R + R + R + "\""},          // overlong 3-byte
      {"\xED\xA0\x80", "\"" + R + R + R + "\""},          // UTF-16 surrogate
      {"\xF4\x90\x80\x80", "\"" + R + R + R + R + "\""},  // past U+10FFFF
      {"\xE2\x82x", "\"" + R + "x\""},                    // maximal subpart: one U+FFFD
      {"\xF0\x9F\x98", "\"" + R + "\""},                  // truncated 4-byte at the end
      {"\xF0\x9F\x98\"", "\"" + R + "\\\"\""},            // truncated before a quote
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Escaped(c.in), c.out) << "input: " << Printable(c.in);
    EXPECT_NO_THROW(json::parse(Escaped(c.in))) << c.out;
  }
}

// For valid UTF-8, the output is byte-for-byte what nlohmann::json writes.
TEST(JsonStringTest, ValidUtf8MatchesNlohmann) {
  std::string all_ascii;
  for (int c = 0; c < 128; c++) all_ascii.push_back(static_cast<char>(c));
  for (const std::string& s :
       {all_ascii,
        std::string("\xC2\x80\xC2\x9F\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF")}) {
    EXPECT_EQ(Escaped(s), json(s).dump());
  }
}

// Random bytes, biased towards the interesting ones, always give JSON a strict parser accepts,
// and valid input survives the round trip unchanged.
TEST(JsonStringTest, RandomBytesAlwaysParse) {
  std::mt19937 rng(12345);
  const unsigned char interesting[] = {0x00, 0x1f, '"',  '\\', 0x7f, 0x80, 0xbf, 0xc0, 0xc2,
                                       0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 'a'};
  for (int iter = 0; iter < 20000; iter++) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) {
      c = static_cast<char>(rng() % 2 ? interesting[rng() % sizeof(interesting)] : rng() % 256);
    }
    const std::string out = Escaped(s);
    json parsed;
    ASSERT_NO_THROW(parsed = json::parse(out)) << Printable(s);
    // Compare with nlohmann's own view of validity.
    bool valid = true;
    try {
      (void)json(s).dump();
    } catch (const json::type_error&) {
      valid = false;
    }
    if (valid) {
      EXPECT_EQ(parsed.get<std::string>(), s);
    }
  }
}

TEST(Utf8Test, DecodesCodePoints) {
  EXPECT_EQ(DecodeUtf8("A").code_point, 0x41u);
  EXPECT_EQ(DecodeUtf8("\xC3\xA9").code_point, 0xE9u);
  EXPECT_EQ(DecodeUtf8("\xE2\x82\xAC").code_point, 0x20ACu);
  const Utf8Step emoji = DecodeUtf8("\xF0\x9F\x98\x80");
  EXPECT_TRUE(emoji.valid);
  EXPECT_EQ(emoji.code_point, 0x1F600u);
  EXPECT_EQ(emoji.length, 4u);
  const Utf8Step bad = DecodeUtf8("\xF0\x9F\x98");
  EXPECT_FALSE(bad.valid);
  EXPECT_EQ(bad.length, 3u);
}

}  // namespace
}  // namespace zerotrace::exporter
