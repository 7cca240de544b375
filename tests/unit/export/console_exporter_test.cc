// Console lines: exact text per case, terminal-safe escaping, one write per batch.
#include "export/console_exporter.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace zerotrace::exporter {
namespace {

using trace::Resource;
using trace::Span;
using trace::SpanKind;
using trace::StatusCode;

// 2024-01-01 16:40:34 UTC.
constexpr uint64_t kSecond = 1704127234ull * 1'000'000'000ull;

class ConsoleExporterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("TZ", "UTC", 1);
    tzset();
  }

  static std::shared_ptr<const Resource> Service(const std::string& name) {
    auto r = std::make_shared<Resource>();
    r->service_name = name;
    return r;
  }

  static Span MakeSpan(uint8_t trace0, uint8_t span0) {
    Span s;
    s.trace_id.bytes = {trace0, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                        0xa3,   0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    s.span_id.bytes = {0x00, 0x00, 0x00, span0, 0x0b, 0xa9, 0x02, 0xb7};
    s.start_unix_ns = kSecond + 1'000'000'000;
    s.end_unix_ns = kSecond + 1'001'000'000;  // 16:40:35.001, 1 ms
    s.kind = SpanKind::kServer;
    return s;
  }

  std::string Line(const Span& s) {
    std::string out;
    exporter_.AppendLine(s, &out);
    return out;
  }

  ConsoleExporter exporter_{stdout};
};

Span ServerSpan() {
  Span s;
  s.trace_id.bytes = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                      0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  s.span_id.bytes = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
  s.name = "GET /api/orders/{id}";
  s.kind = SpanKind::kServer;
  s.end_unix_ns = kSecond + 332'999'999;
  s.start_unix_ns = s.end_unix_ns - 12'345'000;
  s.attributes = {{"http.request.method", std::string("GET")},
                  {"url.path", std::string("/api/orders/42")},
                  {"http.response.status_code", int64_t{200}}};
  return s;
}

TEST_F(ConsoleExporterTest, ServerSpanLine) {
  Span s = ServerSpan();
  s.resource = Service("frontend");
  EXPECT_EQ(Line(s),
            "16:40:34.332 frontend          SERVER GET     /api/orders/42                   200 "
            "    12.345ms trace=4bf92f35 span=00f067aa\n");
}

TEST_F(ConsoleExporterTest, ClientSpanWithParentAndErrorType) {
  Span s = MakeSpan(0x0a, 0xff);
  s.trace_id.bytes[1] = 0xf7;
  s.trace_id.bytes[2] = 0x65;
  s.trace_id.bytes[3] = 0x19;
  s.span_id.bytes = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};
  s.parent_span_id.bytes = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
  s.kind = SpanKind::kClient;
  s.start_unix_ns = s.end_unix_ns - 30'000'000'500;  // rounds to the nearest microsecond
  s.attributes = {{"http.request.method", std::string("POST")},
                  {"url.path", std::string("/charge")},
                  {"error.type", std::string("timeout")}};
  s.status = StatusCode::kError;
  s.resource = Service("orders");
  EXPECT_EQ(
      Line(s),
      "16:40:35.001 orders            CLIENT POST    /charge                          timeout "
      "30000.001ms trace=0af76519 span=b7ad6b71 parent=00f067aa\n");
}

TEST_F(ConsoleExporterTest, NameFillsMethodAndPathWhenAttributesAreMissing) {
  Span s = MakeSpan(0x0a, 0xff);
  s.trace_id.bytes[1] = 0xf7;
  s.trace_id.bytes[2] = 0x65;
  s.trace_id.bytes[3] = 0x19;
  s.name = "GET";
  s.kind = SpanKind::kInternal;
  s.start_unix_ns = s.end_unix_ns + 5;  // clock skew shows as zero, not as a huge number
  EXPECT_EQ(Line(s),
            "16:40:35.001 -                 INTERNAL GET                                      -   "
            "     0.000ms trace=0af76519 span=000000ff\n");
}

TEST_F(ConsoleExporterTest, UntrustedBytesCannotDriveTheTerminal) {
  Span s = MakeSpan(0x0a, 0xff);
  s.trace_id.bytes[1] = 0xf7;
  s.trace_id.bytes[2] = 0x65;
  s.trace_id.bytes[3] = 0x19;
  s.resource = Service("caf\xC3");  // truncated UTF-8
  s.attributes = {{"http.request.method", std::string("GET")},
                  {"url.path", std::string("/x\x1b[2Jy")}};
  s.status = StatusCode::kError;
  EXPECT_EQ(Line(s),
            "16:40:35.001 caf\\xc3           SERVER GET     /x\\x1b[2Jy                       ERR "
            "     1.000ms trace=0af76519 span=000000ff\n");
  // C1 controls (U+0080..U+009F) are escaped too; other UTF-8 is one column per character.
  s.resource = Service("caf\xC3\xA9");
  s.attributes[1].value = std::string(
      "/\xC2\x9B"
      "1m");
  EXPECT_EQ(Line(s), "16:40:35.001 caf\xC3\xA9" + std::string(14, ' ') +
                         "SERVER GET     /\\xc2\\x9b1m" + std::string(22, ' ') +
                         "ERR      1.000ms trace=0af76519 span=000000ff\n");
}

TEST_F(ConsoleExporterTest, LongPathIsCut) {
  Span s = MakeSpan(0x0a, 0xff);
  s.trace_id.bytes[1] = 0xf7;
  s.trace_id.bytes[2] = 0x65;
  s.trace_id.bytes[3] = 0x19;
  s.resource = Service("cafe!");
  s.attributes = {{"http.request.method", std::string("GET")}, {"url.path", std::string(500, 'a')}};
  EXPECT_EQ(Line(s), "16:40:35.001 cafe!             SERVER GET     " + std::string(93, 'a') +
                         "... -        1.000ms trace=0af76519 span=000000ff\n");
}

TEST_F(ConsoleExporterTest, ColumnsAlignAcrossSpans) {
  std::vector<size_t> offsets;
  for (const char* method : {"GET", "DELETE", "OPTIONS"}) {
    for (const char* path : {"/", "/api/v1/users/{id}/orders"}) {
      Span s = ServerSpan();
      s.resource = Service(method);
      s.attributes[0].value = std::string(method);
      s.attributes[1].value = std::string(path);
      offsets.push_back(Line(s).find(" trace="));
    }
  }
  for (size_t off : offsets) EXPECT_EQ(off, offsets[0]);
}

TEST_F(ConsoleExporterTest, ExportWritesTheBatchAndFlushes) {
  char* data = nullptr;
  size_t size = 0;
  FILE* mem = open_memstream(&data, &size);
  ASSERT_NE(mem, nullptr);
  ConsoleExporter console(mem);
  Span a = ServerSpan();
  a.resource = Service("frontend");
  Span b = a;
  b.attributes[2].value = int64_t{404};
  const ExportResult r = console.Export({a, b});
  EXPECT_EQ(r.delivered, 2u);
  EXPECT_EQ(r.failed, 0u);
  // open_memstream updates data/size on fflush: Export must have flushed.
  const std::string written(data, size);
  EXPECT_EQ(written, Line(a) + Line(b));
  EXPECT_NE(written.find(" 404 "), std::string::npos);
  std::fclose(mem);
  std::free(data);
}

TEST_F(ConsoleExporterTest, EachProcessIsDescribedOnceBeforeItsFirstSpan) {
  auto orders = std::make_shared<Resource>();
  orders->service_name = "orders";
  orders->pid = 4242;
  orders->runtime_name = "cpython";
  orders->command_args = {"python3", "-B", "/srv/order.py", "--token=REDACTED"};
  orders->container_id = std::string(64, 'c');
  orders->k8s_pod_uid = "0c1d2e3f-aaaa-bbbb-cccc-0123456789ab";
  auto nginx = std::make_shared<Resource>();
  nginx->service_name = "nginx";
  nginx->pid = 7;
  nginx->executable_path = "/usr/sbin/nginx";
  Span a = ServerSpan(), b = ServerSpan(), c = ServerSpan();
  a.resource = orders;
  b.resource = nginx;
  c.resource = std::make_shared<Resource>(*orders);  // same process, another pointer
  ConsoleExporter console(nullptr);
  std::string out;
  console.AppendNewServices({a, b, c}, &out);
  EXPECT_EQ(out,
            "service orders · pid 4242 · cpython · python3 -B /srv/order.py --token=REDACTED"
            " · container cccccccccccc · pod 0c1d2e3f-aaaa-bbbb-cccc-0123456789ab\n"
            "service nginx · pid 7 · /usr/sbin/nginx\n");
  out.clear();
  console.AppendNewServices({a, b}, &out);
  EXPECT_EQ(out, "") << "described already";
  console.AppendNewServices({ServerSpan()}, &out);
  EXPECT_EQ(out, "") << "no pid: not a traced process";
}

}  // namespace
}  // namespace zerotrace::exporter
