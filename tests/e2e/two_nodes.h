// Two "nodes" on one machine: network namespaces A and B joined by a veth pair, one agent per
// namespace (--netns), each writing its own span file, and a call chain across them.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "span_log.h"
#include "subprocess.h"

namespace zerotrace::e2e {

// One agent started with `flags`, its output drained by a thread (kept: the last lines).
class NodeAgent {
 public:
  NodeAgent(const std::string& name, const std::string& jsonl, std::vector<std::string> flags);
  ~NodeAgent();
  NodeAgent(const NodeAgent&) = delete;
  NodeAgent& operator=(const NodeAgent&) = delete;

  bool attached() const { return attached_; }
  // SIGTERM; true when it exited 0 within 15 s. The span log is then final.
  bool Stop();
  SpanLog& log() { return log_; }
  std::vector<std::string> Output() const;
  // The newest value of a stats-line counter ("name=N"), or nullopt.
  std::optional<uint64_t> Counter(const std::string& name) const;

 private:
  std::string name_;
  SpanLog log_;
  std::unique_ptr<zerotrace::testing::Subprocess> proc_;
  bool attached_ = false, stopped_ = false;
  std::thread drain_;
  std::atomic<bool> stop_drain_{false};
  mutable std::mutex mu_;
  std::deque<std::string> output_;
};

// Namespaces zt<tag>a and zt<tag>b (unique per test process), 10.77.0.1 (A) and 10.77.0.2 (B)
// on a veth pair; removed by the destructor, also when the test failed.
class TwoNamespaces {
 public:
  TwoNamespaces();
  ~TwoNamespaces();
  bool ok() const { return ok_; }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }
  static constexpr const char* kAddrA = "10.77.0.1";
  static constexpr const char* kAddrB = "10.77.0.2";

 private:
  std::string a_, b_, veth_a_, veth_b_;
  bool ok_ = false;
};

// Runs a shell command to completion (killed after `timeout`); its exit status.
int Shell(const std::string& command, std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace zerotrace::e2e
