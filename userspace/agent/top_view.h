// `zerotrace top`: a live view of the RED figures per service and per edge, redrawn every
// interval. On a terminal it redraws in place and reads keys (q quits; s changes the sort);
// on a pipe it prints one plain-text frame per interval, for scripts and tests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "metrics/metric_data.h"

namespace zerotrace::agent {

enum class TopSort { kTime = 0, kRate = 1, kErrors = 2, kP99 = 3 };
const char* TopSortName(TopSort sort);

// One frame: services sorted by `sort` (kTime: time spent serving, rate x mean latency), then
// the busiest edges. Rates and percentiles cover what happened between `before` and `now`
// (`seconds` apart). Pure: the tests drive it directly.
std::string RenderTopFrame(const metrics::MetricsSnapshot& now,
                           const metrics::MetricsSnapshot& before, double seconds, TopSort sort,
                           size_t max_rows);

class TopView {
 public:
  struct Options {
    std::chrono::milliseconds interval{2000};
    std::FILE* out = stdout;
    int keys_fd = 0;  // read keys from here when `out` is a terminal
    size_t max_rows = 15;
  };
  using SnapshotFn = std::function<metrics::MetricsSnapshot()>;
  // `quit` is set when the user presses q or the output has gone (EPIPE).
  TopView(Options options, SnapshotFn snapshot, std::atomic<bool>* quit);
  ~TopView() { Stop(); }
  void Start();
  // Restores the terminal; on a pipe, prints a last frame covering the whole run.
  void Stop();

 private:
  void Loop();
  void Draw(const metrics::MetricsSnapshot& now, double seconds);

  Options options_;
  SnapshotFn snapshot_;
  std::atomic<bool>* quit_;
  bool tty_ = false;
  std::atomic<int> sort_{0};
  metrics::MetricsSnapshot before_;
  std::chrono::steady_clock::time_point before_time_, start_time_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_, keys_;
  int wake_pipe_[2] = {-1, -1};  // wakes the key reader at Stop
};

}  // namespace zerotrace::agent
