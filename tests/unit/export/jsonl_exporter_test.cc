// --jsonl: one valid ExportTraceServiceRequest per line, buffered, flushed within a second.
#include "export/jsonl_exporter.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "export/span_queue.h"

namespace zerotrace::exporter {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using trace::Span;

class JsonlExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "zt_jsonl_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/spans.jsonl";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  std::string Contents() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::vector<json> Lines() const {
    std::vector<json> lines;
    std::istringstream in(Contents());
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
    return lines;
  }

  static Span Named(const std::string& name) {
    Span s;
    s.name = name;
    s.span_id.bytes[7] = 1;
    return s;
  }

  std::string dir_, path_;
};

TEST_F(JsonlExporterTest, OneRequestPerBatchLine) {
  auto opened = JsonlExporter::Open(path_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  std::unique_ptr<JsonlExporter> jsonl = std::move(opened.value());
  jsonl->Export({Named("a"), Named("b")});
  jsonl->Export({});  // nothing to write, no empty request
  jsonl->Export({Named("c\n\"quoted\"")});
  EXPECT_EQ(Contents(), "") << "buffered until Flush";
  jsonl->Flush();
  const std::vector<json> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["resourceSpans"][0]["scopeSpans"][0]["spans"].size(), 2u);
  EXPECT_EQ(lines[1]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "c\n\"quoted\"");
  EXPECT_EQ(jsonl->write_failed(), 0u);
}

TEST_F(JsonlExporterTest, AppendsAndFlushesOnDestruction) {
  {
    auto jsonl = JsonlExporter::Open(path_);
    ASSERT_TRUE(jsonl.ok());
    (*jsonl)->Export({Named("first run")});
  }
  {
    auto jsonl = JsonlExporter::Open(path_);
    ASSERT_TRUE(jsonl.ok());
    (*jsonl)->Export({Named("second run")});
  }
  const std::vector<json> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "second run");
}

TEST_F(JsonlExporterTest, OpenFailureSaysWhichPathAndWhy) {
  const std::string bad = dir_ + "/missing/dir/spans.jsonl";
  auto jsonl = JsonlExporter::Open(bad);
  ASSERT_FALSE(jsonl.ok());
  EXPECT_NE(jsonl.status().message().find(bad), std::string::npos);
  EXPECT_NE(jsonl.status().message().find("No such file or directory"), std::string::npos);
}

TEST_F(JsonlExporterTest, WorkerGetsLinesToDiskWithinASecond) {
  auto opened = JsonlExporter::Open(path_);
  ASSERT_TRUE(opened.ok());
  std::vector<std::unique_ptr<SpanExporter>> exporters;
  exporters.push_back(std::move(opened.value()));
  ExportWorker worker(ExportWorkerOptions{}, std::move(exporters));  // 200 ms delay, 1 s flush
  const auto pushed = Clock::now();
  ASSERT_TRUE(worker.TryPush(Named("live")));
  const auto deadline = pushed + std::chrono::seconds(5);
  while (Contents().find('\n') == std::string::npos && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto waited = Clock::now() - pushed;
  ASSERT_EQ(Lines().size(), 1u);
  // Batch delay (200 ms) + flush interval (1 s), with slack for a loaded machine.
  EXPECT_LT(waited, std::chrono::milliseconds(2500));
  ASSERT_TRUE(worker.TryPush(Named("at exit")));
  EXPECT_TRUE(worker.Stop(std::chrono::seconds(5)));
  EXPECT_EQ(Lines().size(), 2u) << "Stop drains and flushes";
}

}  // namespace
}  // namespace zerotrace::exporter
