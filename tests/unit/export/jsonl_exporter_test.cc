// --jsonl: one valid ExportTraceServiceRequest per line, written whole, crash-safe, failures
// counted.
#include "export/jsonl_exporter.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
  EXPECT_EQ(jsonl->Export({Named("a"), Named("b")}).delivered, 2u);
  EXPECT_EQ(jsonl->Export({}).delivered, 0u);  // nothing to write, no empty request
  EXPECT_EQ(jsonl->Export({Named("c\n\"quoted\"")}).delivered, 1u);
  // Nothing waits in the process: a line is in the file when Export returns.
  const std::vector<json> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["resourceSpans"][0]["scopeSpans"][0]["spans"].size(), 2u);
  EXPECT_EQ(lines[1]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "c\n\"quoted\"");
  EXPECT_EQ(jsonl->write_failed(), 0u);
}

TEST_F(JsonlExporterTest, AppendsAcrossRuns) {
  for (const char* run : {"first run", "second run"}) {
    auto jsonl = JsonlExporter::Open(path_);
    ASSERT_TRUE(jsonl.ok());
    EXPECT_EQ((*jsonl)->Export({Named(run)}).delivered, 1u);
  }
  const std::vector<json> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "second run");
}

TEST_F(JsonlExporterTest, AFileEndingInsideALineGetsANewlineFirst) {
  // What a run killed in the middle of a write leaves.
  {
    std::ofstream out(path_);
    out << "{\"resourceSpans\":[{\"resou";
  }
  auto jsonl = JsonlExporter::Open(path_);
  ASSERT_TRUE(jsonl.ok());
  EXPECT_EQ((*jsonl)->Export({Named("after restart")}).delivered, 1u);
  EXPECT_EQ((*jsonl)->Export({Named("next")}).delivered, 1u);
  std::istringstream in(Contents());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u) << Contents();
  EXPECT_EQ(lines[0], "{\"resourceSpans\":[{\"resou") << "the cut line stays as it was";
  EXPECT_EQ(json::parse(lines[1])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"],
            "after restart");
  EXPECT_EQ(json::parse(lines[2])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "next");
  EXPECT_EQ(Contents().back(), '\n');
}

// A child process this test forked; SIGKILLed and reaped however the test ends.
struct ChildGuard {
  pid_t pid;
  ~ChildGuard() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

TEST_F(JsonlExporterTest, KilledWriterLeavesEveryOtherLineWholeAndARestartStartsFresh) {
  // A child exports as fast as it can and is SIGKILLed mid-stream; a second writer, as the
  // restarted agent, then appends. Only the child's last line may be cut, and it must not take
  // the restart's line with it.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Bounded, whatever happens to the parent: past 64 MiB writes fail (EFBIG), and then the
    // child waits to be killed.
    signal(SIGXFSZ, SIG_IGN);
    const rlimit limit = {64 << 20, 64 << 20};
    setrlimit(RLIMIT_FSIZE, &limit);
    auto jsonl = JsonlExporter::Open(path_);
    if (!jsonl.ok()) _exit(1);
    std::vector<Span> batch;
    for (int i = 0; i < 50; i++) batch.push_back(Named("span " + std::to_string(i)));
    while ((*jsonl)->Export(batch).failed == 0) {
    }
    for (;;) pause();
  }
  ChildGuard guard{child};
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  struct stat st {};
  while ((stat(path_.c_str(), &st) != 0 || st.st_size < (1 << 20)) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  guard.pid = -1;
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: " << status;
  auto jsonl = JsonlExporter::Open(path_);
  ASSERT_TRUE(jsonl.ok());
  EXPECT_EQ((*jsonl)->Export({Named("restarted")}).delivered, 1u);

  std::istringstream in(Contents());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_GE(lines.size(), 3u);
  for (size_t i = 0; i + 2 < lines.size(); i++) {
    ASSERT_TRUE(json::accept(lines[i])) << "line " << i << " of " << lines.size() << " is cut";
  }
  ASSERT_TRUE(json::accept(lines.back()))
      << "the restart's line is not whole: " << lines.back().substr(0, 200);
  EXPECT_EQ(json::parse(lines.back())["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"],
            "restarted");
}

TEST_F(JsonlExporterTest, WriteFailureFailsTheBatch) {
  auto jsonl = JsonlExporter::Open("/dev/full");
  ASSERT_TRUE(jsonl.ok()) << jsonl.status().message();
  const ExportResult r = (*jsonl)->Export({Named("a"), Named("b"), Named("c")});
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_EQ(r.failed, 3u);
  EXPECT_FALSE(r.output_closed) << "a full disk is not a closed pipe";
  EXPECT_EQ((*jsonl)->write_failed(), 1u);
}

TEST_F(JsonlExporterTest, WorkerCountsSpansOfAFailedWriteAsFailedNotExported) {
  auto opened = JsonlExporter::Open("/dev/full");
  ASSERT_TRUE(opened.ok());
  std::vector<std::unique_ptr<SpanExporter>> exporters;
  exporters.push_back(std::move(opened.value()));
  ExportWorker worker(ExportWorkerOptions{}, std::move(exporters));
  for (int i = 0; i < 4; i++) ASSERT_TRUE(worker.TryPush(Named("lost")));
  worker.Stop(std::chrono::seconds(5));
  EXPECT_EQ(worker.counters().exported.load(), 0u);
  EXPECT_EQ(worker.counters().export_failed.load(), 4u);
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
  ExportWorker worker(ExportWorkerOptions{}, std::move(exporters));  // 200 ms batch delay
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
