// NodeAgent and TwoNamespaces: two traced "nodes" on one machine.
#include "two_nodes.h"

#include <signal.h>
#include <unistd.h>

#include <iostream>

#ifndef ZT_AGENT
#error "ZT_AGENT must name the agent binary"
#endif

namespace zerotrace::e2e {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr size_t kKeptLines = 200;

}  // namespace

int Shell(const std::string& command, std::chrono::milliseconds timeout) {
  zerotrace::testing::Subprocess p({"/bin/sh", "-c", "{ " + command + "; } >/dev/null 2>&1"});
  return p.Wait(timeout);
}

NodeAgent::NodeAgent(const std::string& name, const std::string& jsonl,
                     std::vector<std::string> flags)
    : name_(name), log_(jsonl) {
  std::string cmd = std::string("exec ") + ZT_AGENT + " --jsonl " + jsonl;
  for (const auto& f : flags) cmd += " " + f;
  proc_ = std::make_unique<zerotrace::testing::Subprocess>(
      std::vector<std::string>{"/bin/sh", "-c", cmd + " 2>&1"});
  const auto deadline = Clock::now() + 30s;
  while (!attached_ && Clock::now() < deadline) {
    auto line = proc_->ReadLine(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!line) break;
    if (line->find("zerotrace: tracing ") != std::string::npos) attached_ = true;
    output_.push_back(std::move(*line));
  }
  drain_ = std::thread([this] {
    for (;;) {
      const bool stopping = stop_drain_;
      auto line = proc_->ReadLine(100ms);
      if (!line) {
        if (stopping) break;
        std::this_thread::sleep_for(20ms);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      output_.push_back(std::move(*line));
      if (output_.size() > kKeptLines) output_.pop_front();
    }
  });
}

NodeAgent::~NodeAgent() {
  Stop();
  if (::testing::Test::HasFailure()) {
    std::lock_guard<std::mutex> lock(mu_);
    std::cerr << "--- agent " << name_ << " (last " << output_.size() << " lines) ---\n";
    for (const auto& l : output_) std::cerr << l << "\n";
  }
}

bool NodeAgent::Stop() {
  if (stopped_) return true;
  stopped_ = true;
  kill(proc_->pid(), SIGTERM);
  const int rc = proc_->Wait(15s);
  stop_drain_ = true;
  if (drain_.joinable()) drain_.join();
  log_.Poll();
  return rc == 0;
}

std::vector<std::string> NodeAgent::Output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {output_.begin(), output_.end()};
}

std::optional<uint64_t> NodeAgent::Counter(const std::string& name) const {
  const std::string key = " " + name + "=";
  const auto lines = Output();
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    const size_t at = it->find(key);
    if (it->find("zerotrace: stats") == std::string::npos || at == std::string::npos) continue;
    return std::stoull(it->substr(at + key.size()));
  }
  return std::nullopt;
}

TwoNamespaces::TwoNamespaces() {
  const std::string tag = std::to_string(getpid());
  a_ = "zt" + tag + "a";
  b_ = "zt" + tag + "b";
  veth_a_ = "ztv" + tag + "a";
  veth_b_ = "ztv" + tag + "b";
  ok_ = Shell("ip netns add " + a_ + " && ip netns add " + b_ + " && ip link add " + veth_a_ +
              " type veth peer name " + veth_b_ + " && ip link set " + veth_a_ + " netns " + a_ +
              " && ip link set " + veth_b_ + " netns " + b_ + " && ip -n " + a_ + " addr add " +
              kAddrA + "/24 dev " + veth_a_ + " && ip -n " + b_ + " addr add " + kAddrB +
              "/24 dev " + veth_b_ + " && ip -n " + a_ + " link set " + veth_a_ + " up && ip -n " +
              b_ + " link set " + veth_b_ + " up && ip -n " + a_ + " link set lo up && ip -n " +
              b_ + " link set lo up") == 0;
}

TwoNamespaces::~TwoNamespaces() {
  // Deleting a namespace whose last process is gone also destroys its end of the veth pair
  // (and with it the peer); the link delete covers a veth that never moved.
  Shell("ip link del " + veth_a_ + "; ip netns del " + a_ + "; ip netns del " + b_ + "; true");
}

}  // namespace zerotrace::e2e
