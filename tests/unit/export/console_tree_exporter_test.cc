// ConsoleTreeExporter: a trace prints once, as a tree, after it has gone quiet.
#include "export/console_tree_exporter.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace zerotrace::exporter {
namespace {

trace::SpanId Id(uint8_t n) {
  trace::SpanId id;
  id.bytes[7] = n;
  return id;
}

trace::Span MakeSpan(uint8_t trace, uint8_t id, uint8_t parent, const char* service,
                     uint64_t start_ms) {
  static std::vector<std::shared_ptr<trace::Resource>> resources;
  auto r = std::make_shared<trace::Resource>();
  r->service_name = service;
  resources.push_back(r);
  trace::Span s;
  s.trace_id.bytes[15] = trace;
  s.span_id = Id(id);
  if (parent) s.parent_span_id = Id(parent);
  s.name = "GET";
  s.kind = parent ? trace::SpanKind::kServer : trace::SpanKind::kClient;
  s.start_unix_ns = start_ms * 1'000'000;
  s.end_unix_ns = s.start_unix_ns + 1'000'000;
  s.resource = r;
  return s;
}

// Each printed line without its time of day: the tree drawing and the service column on.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("trace ", 0) == 0) {
      out.push_back(line.substr(0, line.find(" · ")));
    } else {
      std::string rest = line.substr(13);  // "HH:MM:SS.mmm "
      out.push_back(rest.substr(0, rest.find(' ', rest.find_first_not_of("├└│─ "))));
    }
  }
  return out;
}

class ConsoleTreeTest : public ::testing::Test {
 protected:
  char* buf = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&buf, &size);
  uint64_t now = 0;
  std::unique_ptr<ConsoleTreeExporter> tree =
      std::make_unique<ConsoleTreeExporter>(out, 1000, [this] { return now; });

  std::string Text() {
    std::fflush(out);
    return std::string(buf, size);
  }
  void TearDown() override {
    tree.reset();
    std::fclose(out);
    std::free(buf);
  }
};

TEST_F(ConsoleTreeTest, QuietTracePrintsOnceAsATreeOrderedByStart) {
  // curl -> nginx (server) -> nginx (client) -> app, app; a second trace arrives later.
  ExportResult r = tree->Export({MakeSpan(1, 4, 3, "app-b", 40), MakeSpan(1, 2, 1, "nginx", 11)});
  now = 500;
  r += tree->Export({MakeSpan(1, 1, 0, "curl", 10), MakeSpan(1, 3, 2, "nginx", 12),
                     MakeSpan(1, 5, 3, "app-a", 30), MakeSpan(2, 9, 0, "other", 50)});
  r += tree->Flush();
  EXPECT_EQ(Text(), "") << "not quiet yet";
  EXPECT_EQ(r.delivered + r.failed, 0u) << "held spans are neither delivered nor failed yet";
  now = 1500;
  r = tree->Flush();
  EXPECT_EQ(r.delivered, 6u) << "counted once printed";
  EXPECT_EQ(r.failed, 0u);
  EXPECT_EQ(Lines(Text()), (std::vector<std::string>{
                               "trace 00000000000000000000000000000001",
                               "curl",
                               "└─ nginx",
                               "   └─ nginx",
                               "      ├─ app-a",
                               "      └─ app-b",
                               "trace 00000000000000000000000000000002",
                               "other",
                           }));
  const std::string printed = Text();
  now = 5000;
  EXPECT_EQ(tree->Flush().delivered, 0u);
  EXPECT_EQ(Text(), printed) << "printed once";
  EXPECT_EQ(tree->buffered_spans(), 0u);
}

TEST_F(ConsoleTreeTest, SpanWhoseParentIsElsewhereStartsItsOwnTree) {
  EXPECT_EQ(tree->Export({MakeSpan(3, 2, 7, "server", 10), MakeSpan(3, 3, 2, "db", 11)}).delivered,
            0u);
  EXPECT_EQ(tree->Finish().delivered, 2u);
  EXPECT_EQ(Lines(Text()), (std::vector<std::string>{
                               "trace 00000000000000000000000000000003",
                               "server",
                               "└─ db",
                           }));
  EXPECT_NE(Text().find("parent=00000000"), std::string::npos);
}

TEST_F(ConsoleTreeTest, ParentLoopStillPrintsEverySpan) {
  (void)tree->Export({MakeSpan(4, 1, 2, "a", 10), MakeSpan(4, 2, 1, "b", 11)});
  EXPECT_EQ(tree->PrintAll().delivered, 2u);
  EXPECT_EQ(Lines(Text()).size(), 3u);
}

TEST_F(ConsoleTreeTest, DestructionPrintsWhatIsLeft) {
  (void)tree->Export({MakeSpan(5, 1, 0, "solo", 10)});
  tree.reset();
  EXPECT_EQ(Lines(Text()),
            (std::vector<std::string>{"trace 00000000000000000000000000000005", "solo"}));
}

TEST_F(ConsoleTreeTest, MemoryIsBoundedByPrintingTheQuietestTracesEarly) {
  std::vector<trace::Span> batch;
  for (size_t i = 0; i < ConsoleTreeExporter::kMaxBufferedSpans + 10; i++) {
    trace::Span s =
        MakeSpan(static_cast<uint8_t>(i % 200), static_cast<uint8_t>(i % 250 + 1), 0, "svc", i);
    s.trace_id.bytes[0] = static_cast<uint8_t>(i / 200);
    batch.push_back(std::move(s));
  }
  const ExportResult r = tree->Export(batch);
  EXPECT_LE(tree->buffered_spans(), ConsoleTreeExporter::kMaxBufferedSpans);
  EXPECT_EQ(r.delivered, batch.size() - tree->buffered_spans()) << "printed early: delivered";
}

}  // namespace
}  // namespace zerotrace::exporter
