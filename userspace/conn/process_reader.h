// Reads /proc (and executables' ELF notes) on a thread of its own, so that a slow /proc, or a
// process stuck in the kernel, never stalls the ring-buffer consumer.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "conn/process_info.h"

namespace zerotrace::conn {

class ProcessReader {
 public:
  // A finished read: nullopt when the process was already gone.
  struct Result {
    uint32_t pid = 0;
    std::optional<ProcessInfo> info;
  };

  explicit ProcessReader(ProcessInfoOptions options);
  // Stops the thread. One stuck in a read it cannot leave is let go (detached: it owns what it
  // touches), so that stopping the agent never waits on /proc.
  ~ProcessReader();
  ProcessReader(const ProcessReader&) = delete;
  ProcessReader& operator=(const ProcessReader&) = delete;

  // Queues a read of pid. Asked while a read of it is queued or in progress, only the read
  // that starts after this call counts (exec, pid reuse).
  void Request(uint32_t pid);
  // Waits up to `timeout` for pid's read to finish and takes its result.
  std::optional<Result> Await(uint32_t pid, std::chrono::microseconds timeout);
  // Takes every result finished so far (reads nobody waited for, or waited for in vain).
  std::vector<Result> TakeFinished();

 private:
  struct State;
  static void Run(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace zerotrace::conn
