// Bounds how long stopping may take, whatever blocks it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace zerotrace::agent {

// Once a stop is requested (`requested` turns true, or Stopping() is called), the process has
// `budget` to finish. A write that never returns (stdout piped to a reader that stopped
// reading, a file on a hung disk) must not keep a stopped agent alive: past the budget the
// watchdog says so on stderr, if stderr takes the line without blocking, and ends the process
// with _exit(exit_status). The kernel then detaches the BPF programs as it closes their fds.
class StopWatchdog {
 public:
  StopWatchdog(const std::atomic<bool>* requested, std::chrono::milliseconds budget,
               int exit_status = 1);
  // The process finished stopping in time (or never stopped): the watchdog thread ends.
  ~StopWatchdog();
  StopWatchdog(const StopWatchdog&) = delete;
  StopWatchdog& operator=(const StopWatchdog&) = delete;

  // A stop that no signal requested (--duration ran out): the budget starts now.
  void Stopping();

 private:
  using Clock = std::chrono::steady_clock;
  void Run();

  const std::atomic<bool>* requested_;
  const std::chrono::milliseconds budget_;
  const int exit_status_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  Clock::time_point since_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the rest is set
};

}  // namespace zerotrace::agent
