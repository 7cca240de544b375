// Console output that goes away: `zerotrace | head -2`. Spans written to a pipe nobody reads
// fail, are not exported, and the worker tells the agent to stop.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "export/console_exporter.h"
#include "export/console_tree_exporter.h"
#include "export/span_queue.h"

namespace zerotrace::exporter {
namespace {

using std::chrono::milliseconds;

trace::Span MakeSpan(uint8_t trace0) {
  trace::Span s;
  s.name = "GET /";
  s.trace_id.bytes[0] = trace0;
  s.span_id.bytes[0] = 1;
  return s;
}

// A pipe whose write end is a FILE; the test plays the reader (`head`).
class BrokenPipeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }  // as the agent does
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    read_fd_ = fds[0];
    out_ = fdopen(fds[1], "w");
    ASSERT_NE(out_, nullptr);
  }
  void TearDown() override {
    if (read_fd_ >= 0) close(read_fd_);
    std::fclose(out_);
  }
  // The reader reads what is there and exits.
  std::string ReadAndClose() {
    std::string got;
    char buf[4096];
    fcntl(read_fd_, F_SETFL, O_NONBLOCK);
    for (ssize_t n; (n = read(read_fd_, buf, sizeof(buf))) > 0;) got.append(buf, n);
    close(read_fd_);
    read_fd_ = -1;
    return got;
  }
  int read_fd_ = -1;
  FILE* out_ = nullptr;
};

TEST_F(BrokenPipeTest, SpansWrittenToAPipeWithoutReaderFail) {
  ConsoleExporter console(out_);
  const ExportResult before = console.Export({MakeSpan(1), MakeSpan(1)});
  EXPECT_EQ(before.delivered, 2u);
  EXPECT_FALSE(before.output_closed);
  EXPECT_NE(ReadAndClose().find("GET /"), std::string::npos);
  const ExportResult after = console.Export({MakeSpan(2), MakeSpan(2), MakeSpan(2)});
  EXPECT_EQ(after.delivered, 0u);
  EXPECT_EQ(after.failed, 3u);
  EXPECT_TRUE(after.output_closed);
  const ExportResult later = console.Export({MakeSpan(3)});
  EXPECT_EQ(later.failed, 1u) << "once closed, every span fails";
}

TEST_F(BrokenPipeTest, FlushNoticesTheReaderLeftWithNothingToWrite) {
  ConsoleExporter console(out_);
  EXPECT_FALSE(console.Flush().output_closed);
  ReadAndClose();
  const ExportResult r = console.Flush();
  EXPECT_TRUE(r.output_closed) << "`zerotrace | head` must end even when no span comes";
  EXPECT_EQ(r.delivered + r.failed, 0u);
}

TEST_F(BrokenPipeTest, TreeFailsWhatItHeldOnceTheReaderLeft) {
  uint64_t now = 0;
  ConsoleTreeExporter tree(out_, 1000, [&now] { return now; });
  EXPECT_EQ(tree.Export({MakeSpan(1), MakeSpan(1)}).delivered, 0u);  // held
  ReadAndClose();
  now = 500;
  ExportResult r = tree.Flush();  // nothing quiet yet, but the reader is gone
  EXPECT_TRUE(r.output_closed);
  r = tree.Export({MakeSpan(2)});
  EXPECT_EQ(r.failed, 1u) << "not held once the output is gone";
  r = tree.Finish();
  EXPECT_EQ(r.failed, 2u) << "the held spans are counted, as failed";
  EXPECT_EQ(r.delivered, 0u);
}

TEST_F(BrokenPipeTest, WorkerCountsThemFailedAndAsksTheAgentToStop) {
  std::atomic<int> closed_calls{0};
  std::string closed_name;
  ExportWorkerOptions options;
  options.queue.max_batch_delay = milliseconds(1);
  options.on_output_closed = [&](const char* name) {
    closed_name = name;
    closed_calls++;
  };
  std::vector<std::unique_ptr<SpanExporter>> exporters;
  exporters.push_back(std::make_unique<ConsoleExporter>(out_));
  ExportWorker worker(options, std::move(exporters));
  ReadAndClose();
  for (int i = 0; i < 5; i++) ASSERT_TRUE(worker.TryPush(MakeSpan(1)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (closed_calls.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  for (int i = 0; i < 5; i++) ASSERT_TRUE(worker.TryPush(MakeSpan(2)));
  worker.Stop(std::chrono::seconds(5));
  EXPECT_EQ(closed_calls.load(), 1) << "told once";
  EXPECT_EQ(closed_name, "console");
  EXPECT_EQ(worker.counters().exported.load(), 0u);
  EXPECT_EQ(worker.counters().export_failed.load(), 10u);
}

}  // namespace
}  // namespace zerotrace::exporter
