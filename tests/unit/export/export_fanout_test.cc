// ExportFanout: a blocked exporter delays only its own group.
#include "export/export_fanout.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace zerotrace::exporter {
namespace {

using namespace std::chrono_literals;

// Counts spans; while `blocked`, Export waits until it is released (a collector that hangs).
class GateExporter final : public SpanExporter {
 public:
  explicit GateExporter(bool blocked) : blocked_(blocked) {}
  ExportResult Export(const std::vector<trace::Span>& spans) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !blocked_; });
    spans_ += spans.size();
    cv_.notify_all();
    return ExportResult::Delivered(spans.size());
  }
  const char* name() const override { return "gate"; }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = false;
    cv_.notify_all();
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return spans_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_;
  size_t spans_ = 0;
};

TEST(ExportFanoutTest, BlockedCollectorDoesNotHoldUpLocalExporters) {
  auto local = std::make_unique<GateExporter>(false);
  auto remote = std::make_unique<GateExporter>(true);
  GateExporter *l = local.get(), *r = remote.get();
  std::vector<std::vector<std::unique_ptr<SpanExporter>>> groups(2);
  groups[0].push_back(std::move(local));
  groups[1].push_back(std::move(remote));
  ExportWorkerOptions options;
  options.queue.max_batch_delay = 10ms;
  ExportFanout fanout(options, std::move(groups));
  ASSERT_EQ(fanout.groups(), 2u);
  for (int i = 0; i < 3; i++) fanout.TryPush(trace::Span());
  EXPECT_TRUE(l->WaitFor(3, 10s)) << "the local exporter waited for the blocked one";
  r->Release();
  EXPECT_TRUE(r->WaitFor(3, 10s));
  EXPECT_TRUE(fanout.Stop(5s));
  EXPECT_EQ(fanout.Totals().queued, 6u) << "each group got every span";
  EXPECT_EQ(fanout.Totals().exported, 6u);
}

TEST(ExportFanoutTest, EmptyGroupsAreSkipped) {
  std::vector<std::vector<std::unique_ptr<SpanExporter>>> groups(2);
  groups[1].push_back(std::make_unique<GateExporter>(false));
  ExportFanout fanout(ExportWorkerOptions{}, std::move(groups));
  EXPECT_EQ(fanout.groups(), 1u);
  fanout.TryPush(trace::Span());
  EXPECT_TRUE(fanout.Stop(5s));
  EXPECT_EQ(fanout.Totals().exported, 1u);
}

}  // namespace
}  // namespace zerotrace::exporter
