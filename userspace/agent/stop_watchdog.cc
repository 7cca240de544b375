// StopWatchdog: a thread that notices the stop request and, past the budget, exits.
#include "agent/stop_watchdog.h"

#include <poll.h>
#include <unistd.h>

#include <cstdio>

namespace zerotrace::agent {

StopWatchdog::StopWatchdog(const std::atomic<bool>* requested, std::chrono::milliseconds budget,
                           int exit_status)
    : requested_(requested),
      budget_(budget),
      exit_status_(exit_status),
      thread_([this] { Run(); }) {}

StopWatchdog::~StopWatchdog() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StopWatchdog::Stopping() {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  stopping_ = true;
  since_ = Clock::now();
  cv_.notify_all();
}

void StopWatchdog::Run() {
  std::unique_lock lock(mu_);
  // A signal handler can only set the flag: look at it a few times a second.
  while (!done_ && !stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (!stopping_ && requested_->load()) {
      stopping_ = true;
      since_ = Clock::now();
    }
  }
  if (cv_.wait_until(lock, since_ + budget_, [this] { return done_; })) return;
  char line[160];
  const int n = std::snprintf(line, sizeof(line),
                              "zerotrace: still stopping %lld ms after the stop began (is an "
                              "output blocked?): exiting now; what was not flushed is lost\n",
                              static_cast<long long>(budget_.count()));
  pollfd p = {STDERR_FILENO, POLLOUT, 0};
  if (n > 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0) {
    const ssize_t ignored = write(STDERR_FILENO, line, static_cast<size_t>(n));
    (void)ignored;
  }
  _exit(exit_status_);
}

}  // namespace zerotrace::agent
