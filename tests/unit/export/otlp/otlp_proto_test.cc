// ToOtlpProto carries field for field what ToOtlpJson writes, and reuses its output message.
#include "export/otlp_proto.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "export/otlp_json.h"
#include "export/otlp_wire.h"
#include "otlp_test_support.h"

namespace zerotrace::exporter {
namespace {

using nlohmann::json;
using testing::ExportRequest;
using testing::ToJsonShape;

TEST(OtlpProtoTest, TrickyBatchEqualsTheJsonEncoding) {
  const auto spans = testing::TrickyBatch();
  ExportRequest request;
  ToOtlpProto(spans, &request);
  EXPECT_EQ(ToJsonShape(request), json::parse(ToOtlpJson(spans)));
  // Two processes: the equal-content copy of the first resource shares its ResourceSpans.
  ASSERT_EQ(request.resource_spans_size(), 2);
  EXPECT_EQ(request.resource_spans(0).scope_spans(0).spans_size(), 2);
}

TEST(OtlpProtoTest, TypicalBatchEqualsTheJsonEncoding) {
  const auto spans = testing::TypicalBatch(64);
  ExportRequest request;
  ToOtlpProto(spans, &request);
  EXPECT_EQ(ToJsonShape(request), json::parse(ToOtlpJson(spans)));
}

TEST(OtlpProtoTest, IdsAreRawBytesAndRootsHaveNoParent) {
  const auto spans = testing::TrickyBatch();
  ExportRequest request;
  ToOtlpProto(spans, &request);
  const auto& root = request.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(root.trace_id(),
            std::string(reinterpret_cast<const char*>(spans[0].trace_id.bytes.data()), 16));
  EXPECT_EQ(root.span_id().size(), 8u);
  EXPECT_TRUE(root.parent_span_id().empty());
  const auto& child = request.resource_spans(1).scope_spans(0).spans(0);
  EXPECT_EQ(child.parent_span_id(), root.span_id());
}

TEST(OtlpProtoTest, IllFormedUtf8IsRepairedSoTheRequestSerializes) {
  const auto spans = testing::TrickyBatch();
  ExportRequest request;
  ToOtlpProto(spans, &request);
  const auto& root = request.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(root.attributes(1).value().string_value(), "/a\"b\\c\n\t\x01\xEF\xBF\xBD");
  EXPECT_EQ(root.attributes(10).key(), "k\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  // A round trip through the wire format checks every string field for UTF-8 on parse.
  ExportRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(request.SerializeAsString()));
  EXPECT_EQ(ToJsonShape(parsed), ToJsonShape(request));
}

TEST(OtlpProtoTest, ReusedRequestHoldsOnlyTheLatestBatch) {
  ExportRequest reused;
  ToOtlpProto(testing::TypicalBatch(100), &reused);
  const auto spans = testing::TrickyBatch();
  ToOtlpProto(spans, &reused);
  ExportRequest fresh;
  ToOtlpProto(spans, &fresh);
  EXPECT_EQ(reused.SerializeAsString(), fresh.SerializeAsString());
  ToOtlpProto({}, &reused);
  EXPECT_EQ(reused.resource_spans_size(), 0);
}

TEST(OtlpProtoTest, WireEncoderWritesExactlyWhatProtobufSerializes) {
  auto edge = testing::TrickyBatch();
  static const std::string kLongKey(200, 'k');  // a span attribute's key outlives the span
  edge[2].attributes = {{"", std::string("")},
                        {"zero", int64_t{0}},
                        {"neg", int64_t{-1}},
                        {"f", 0.0},
                        {kLongKey, std::string(300, 'v')}};
  edge[2].status_message = "\xf0\x90\x80";  // a 3-byte ill-formed subpart: same length repaired
  edge[2].resource = nullptr;
  const std::vector<std::vector<trace::Span>> batches = {
      {}, testing::TrickyBatch(), testing::TypicalBatch(512), edge};
  for (const auto& spans : batches) {
    ExportRequest request;
    ToOtlpProto(spans, &request);
    std::string wire = "prefix";
    AppendOtlpProto(spans, &wire);
    ASSERT_EQ(wire.substr(0, 6), "prefix");
    EXPECT_EQ(wire.substr(6), request.SerializeAsString()) << spans.size() << " spans";
  }
}

// The UTF-8 check reads whole words: an ill-formed byte at any position of strings of every
// length around the word size is repaired alike by both encoders (the JSON one is separate).
TEST(OtlpProtoTest, IllFormedByteIsRepairedAtEveryPositionAndLength) {
  std::vector<trace::Span> spans(1);
  std::vector<std::string> want;
  for (size_t n = 0; n <= 20; n++) {
    for (size_t bad = 0; bad <= n; bad++) {  // bad == n: all valid
      std::string v(n, 'a'), repaired(n, 'a');
      if (bad < n) {
        v[bad] = '\xFF';
        repaired.replace(bad, 1, "\xEF\xBF\xBD");
      }
      spans[0].attributes.push_back({"v", v});
      want.push_back(repaired);
    }
  }
  ExportRequest request;
  ToOtlpProto(spans, &request);
  const auto& attributes = request.resource_spans(0).scope_spans(0).spans(0).attributes();
  ASSERT_EQ(static_cast<size_t>(attributes.size()), want.size());
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(attributes[static_cast<int>(i)].value().string_value(), want[i]) << i;
  }
  EXPECT_EQ(ToJsonShape(request), json::parse(ToOtlpJson(spans)));
  std::string wire;
  AppendOtlpProto(spans, &wire);
  EXPECT_EQ(wire, request.SerializeAsString());
}

// The consumer thread encodes each span alone (EncodeOtlpSpan), the export thread assembles the
// request: byte for byte the request encoded from the spans, UTF-8 repair and resource grouping
// included. One buffer is reused across spans of every size, as the export worker reuses them.
TEST(OtlpProtoTest, SpansEncodedOneByOneAssembleIntoTheSameRequest) {
  auto edge = testing::TrickyBatch();
  edge[2].attributes = {{"", std::string("")}, {"k", std::string(3000, 'v')}, {"i", int64_t{-1}}};
  edge[2].status_message = "\xf0\x90\x80";
  edge[2].resource = nullptr;
  auto mixed = testing::TypicalBatch(64);
  for (const trace::Span& s : testing::TrickyBatch()) mixed.push_back(s);
  const std::vector<std::vector<trace::Span>> batches = {
      {}, testing::TrickyBatch(), testing::TypicalBatch(512), edge, mixed};
  std::string scratch;
  for (const auto& spans : batches) {
    std::vector<EncodedSpan> encoded;
    for (const trace::Span& s : spans) {
      EncodeOtlpSpan(s, &scratch);
      encoded.push_back({scratch, s.resource});
    }
    std::string want = "prefix", got = "prefix";
    AppendOtlpProto(spans, &want);
    AppendOtlpProto(std::span<const EncodedSpan>(encoded), &got);
    EXPECT_EQ(got, want) << spans.size() << " spans";
    ExportRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(got.substr(6)));
    EXPECT_EQ(ToJsonShape(parsed), json::parse(ToOtlpJson(spans)));
  }
}

// Sizes are computed once per span and written from there: where a length's varint grows
// (127/128 bytes, 16383/16384) in a value, a key, the KeyValue, the AnyValue or the span, all
// three encoders agree with protobuf byte for byte.
TEST(OtlpProtoTest, LengthsWhereAVarintGrowsEncodeAsProtobufDoes) {
  static const std::string kKeys(200, 'k');  // a span attribute's key outlives the span
  std::vector<trace::Span> spans;
  auto add = [&spans](size_t key_length, size_t value_length) {
    trace::Span s = testing::TypicalBatch(1)[0];
    s.attributes.push_back(
        {std::string_view(kKeys).substr(0, key_length), std::string(value_length, 'v')});
    s.attributes.push_back({"after", int64_t{128}});
    spans.push_back(std::move(s));
  };
  for (size_t n = 118; n <= 132; n++) {
    add(1, n);
    add(n, 1);
    add(0, n);
  }
  std::string scratch;
  EncodeOtlpSpan(testing::TypicalBatch(1)[0], &scratch);
  const size_t base = scratch.size();
  // Spans whose own size crosses 16384, and attributes that cross it.
  for (size_t n = 16384 - base - 40; n <= 16384 - base + 4; n++) add(3, n);
  for (size_t n = 16370; n <= 16390; n += 2) add(3, n);
  ExportRequest request;
  ToOtlpProto(spans, &request);
  const std::string want = request.SerializeAsString();
  std::string wire;
  AppendOtlpProto(spans, &wire);
  EXPECT_EQ(wire, want);
  std::vector<EncodedSpan> encoded;
  for (const trace::Span& s : spans) {
    EncodeOtlpSpan(s, &scratch);
    encoded.push_back({scratch, s.resource});
  }
  std::string assembled;
  AppendOtlpProto(std::span<const EncodedSpan>(encoded), &assembled);
  EXPECT_EQ(assembled, want);
}

// EncodeOtlpSpan writes the Span message alone, in one pass into a reused buffer that it grows
// where a field does not fit: byte for byte what protobuf serializes for the span, whatever
// the buffer held before (a smaller or a larger span, or nothing).
TEST(OtlpProtoTest, EncodedSpanIsTheSpanMessageWhateverTheBufferHeld) {
  std::vector<trace::Span> spans;
  for (const trace::Span& s : testing::TrickyBatch()) spans.push_back(s);
  const trace::Span typical = testing::TypicalBatch(1)[0];
  static const auto* const kKeys = [] {  // a span attribute's key outlives the span
    auto* keys = new std::vector<std::string>;
    for (int k = 0; k < 40; k++) keys->push_back("key." + std::to_string(k));
    return keys;
  }();
  // Attributes of every count and size, so that the room runs out before, at and after each
  // position; some of them not valid UTF-8 (the repairing path).
  for (size_t count : {0, 1, 7, 40}) {
    for (size_t length : {0, 100, 300, 5000}) {
      trace::Span s = typical;
      for (size_t k = 0; k < count; k++) {
        s.attributes.push_back({(*kKeys)[k], std::string(length, 'a' + k % 26)});
        s.attributes.push_back({"n", int64_t{-1} - static_cast<int64_t>(k)});
      }
      s.name = std::string(length, 'n');
      s.status_message = std::string(length / 2, 's');
      spans.push_back(s);
      if (count == 7) {
        s.attributes[3].value = std::string(length, 'x') + "\xc3";
        spans.push_back(std::move(s));
      }
    }
  }
  const size_t n = spans.size();
  for (size_t i = 0; i < n; i++) spans.push_back(spans[n - 1 - i]);  // large ones, then small
  std::string scratch;
  for (const trace::Span& s : spans) {
    EncodeOtlpSpan(s, &scratch);
    ExportRequest request;
    ToOtlpProto({s}, &request);
    const auto& want = request.resource_spans(0).scope_spans(0).spans(0);
    EXPECT_EQ(scratch, want.SerializeAsString())
        << s.attributes.size() << " attributes, name " << s.name.size();
    std::string fresh;
    EncodeOtlpSpan(s, &fresh);
    EXPECT_EQ(fresh, scratch);
  }
}

// The exporters' request buffer is overwritten in place (AssignOtlpProto), not cleared first:
// whatever it held (a larger request, a smaller one, other bytes), it ends up holding exactly
// the request.
TEST(OtlpProtoTest, AssignedRequestReplacesWhatTheBufferHeld) {
  std::string body(5000, '\xff');
  for (int n : {64, 3, 512, 0, 1, 64}) {
    const auto spans = testing::TypicalBatch(n);
    std::vector<EncodedSpan> encoded;
    for (const trace::Span& s : spans) {
      encoded.push_back({"", s.resource});
      EncodeOtlpSpan(s, &encoded.back().bytes);
    }
    std::string want;
    AppendOtlpProto(spans, &want);
    AssignOtlpProto(std::span<const EncodedSpan>(encoded), &body);
    EXPECT_EQ(body, want) << n << " spans";
  }
}

// The varint size of every bit width, where a varint gains its next byte.
TEST(OtlpProtoTest, VarintSizeIsTheBytesOfTheVarint) {
  auto bytes = [](uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
      v >>= 7;
      n++;
    }
    return n;
  };
  EXPECT_EQ(otlp_wire::VarintSize(0), 1u);
  for (int bits = 1; bits <= 64; bits++) {
    const uint64_t top = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    const uint64_t bottom = uint64_t{1} << (bits - 1);
    EXPECT_EQ(otlp_wire::VarintSize(top), bytes(top)) << bits << " bits";
    EXPECT_EQ(otlp_wire::VarintSize(bottom), bytes(bottom)) << bits << " bits";
  }
}

}  // namespace
}  // namespace zerotrace::exporter
