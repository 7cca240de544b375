// ProcessReader: one thread, a queue of pids, results handed back under one lock.
#include "conn/process_reader.h"

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>

namespace zerotrace::conn {

// Shared by the reader and its thread, so that a thread let go still has what it touches.
struct ProcessReader::State {
  explicit State(ProcessInfoOptions o) : options(std::move(o)) {}
  const ProcessInfoOptions options;
  std::mutex mu;
  std::condition_variable work, done;
  std::deque<uint32_t> queue;
  std::unordered_map<uint32_t, Result> finished;
  // pid -> queued or being read; true: asked again since, so the read in progress is stale.
  std::unordered_map<uint32_t, bool> queued;
  bool stop = false;
  bool exited = false;
};

ProcessReader::ProcessReader(ProcessInfoOptions options)
    : state_(std::make_shared<State>(std::move(options))) {
  thread_ = std::thread(Run, state_);
  pthread_setname_np(thread_.native_handle(), "zt-proc-reader");
}

ProcessReader::~ProcessReader() {
  std::unique_lock lock(state_->mu);
  state_->stop = true;
  state_->work.notify_all();
  const bool exited =
      state_->done.wait_for(lock, std::chrono::milliseconds(200), [&] { return state_->exited; });
  lock.unlock();
  if (exited) {
    thread_.join();
  } else {
    thread_.detach();
  }
}

void ProcessReader::Request(uint32_t pid) {
  State& s = *state_;
  {
    std::lock_guard lock(s.mu);
    s.finished.erase(pid);  // a newer read replaces an older result
    auto [it, added] = s.queued.emplace(pid, false);
    if (!added) {
      it->second = true;
      return;
    }
    s.queue.push_back(pid);
  }
  s.work.notify_one();
}

std::optional<ProcessReader::Result> ProcessReader::Await(uint32_t pid,
                                                          std::chrono::microseconds timeout) {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  if (!s.done.wait_for(lock, timeout, [&] { return s.finished.count(pid) != 0; })) {
    return std::nullopt;
  }
  auto it = s.finished.find(pid);
  Result r = std::move(it->second);
  s.finished.erase(it);
  return r;
}

std::vector<ProcessReader::Result> ProcessReader::TakeFinished() {
  State& s = *state_;
  std::vector<Result> out;
  std::lock_guard lock(s.mu);
  out.reserve(s.finished.size());
  for (auto& [pid, r] : s.finished) out.push_back(std::move(r));
  s.finished.clear();
  return out;
}

void ProcessReader::Run(std::shared_ptr<State> state) {
  State& s = *state;
  std::unique_lock lock(s.mu);
  for (;;) {
    s.work.wait(lock, [&] { return s.stop || !s.queue.empty(); });
    if (s.stop) break;
    const uint32_t pid = s.queue.front();
    s.queue.pop_front();
    lock.unlock();
    Result r{pid, ReadProcessInfo(pid, s.options)};  // the slow part, outside the lock
    lock.lock();
    auto it = s.queued.find(pid);
    if (it != s.queued.end() && it->second) {  // asked again meanwhile: this read is stale
      it->second = false;
      s.queue.push_back(pid);
      continue;
    }
    s.queued.erase(pid);
    s.finished[pid] = std::move(r);
    s.done.notify_all();
  }
  s.exited = true;
  s.done.notify_all();
}

}  // namespace zerotrace::conn
