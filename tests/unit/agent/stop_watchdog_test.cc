// StopWatchdog in forked children: a stop that never finishes ends the process with the
// status and the line on stderr; one that finishes in time ends nothing.
#include "agent/stop_watchdog.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace zerotrace::agent {
namespace {

using std::chrono::milliseconds;

// Runs body in a child with stderr on a pipe; returns {exit status or -1, stderr text}.
std::pair<int, std::string> InChild(void (*body)()) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    body();
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) text.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

std::atomic<bool> g_requested{false};

TEST(StopWatchdogTest, AStopThatHangsEndsTheProcessAfterTheBudget) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto [status, err] = InChild([] {
    StopWatchdog watchdog(&g_requested, milliseconds(300), 7);
    g_requested.store(true);  // as the signal handler does
    pause();                  // a write that never returns
  });
  EXPECT_EQ(status, 7);
  EXPECT_NE(err.find("still stopping 300 ms after the stop began"), std::string::npos) << err;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(300));
}

TEST(StopWatchdogTest, StoppingWithoutASignalStartsTheBudgetToo) {
  const auto [status, err] = InChild([] {
    StopWatchdog watchdog(&g_requested, milliseconds(100), 5);
    watchdog.Stopping();
    pause();
  });
  EXPECT_EQ(status, 5);
  EXPECT_NE(err.find("still stopping"), std::string::npos) << err;
}

TEST(StopWatchdogTest, AStopThatFinishesInTimeEndsNothing) {
  const auto [status, err] = InChild([] {
    {
      StopWatchdog watchdog(&g_requested, milliseconds(500), 7);
      g_requested.store(true);
      std::this_thread::sleep_for(milliseconds(150));  // the watchdog has seen the request
    }                                                  // stopped in time
    std::this_thread::sleep_for(milliseconds(600));    // past the budget: nothing happens
    _exit(0);
  });
  EXPECT_EQ(status, 0);
  EXPECT_EQ(err, "");
}

TEST(StopWatchdogTest, NoStopNoExit) {
  const auto [status, err] = InChild([] {
    std::atomic<bool> never{false};
    StopWatchdog watchdog(&never, milliseconds(50), 7);
    std::this_thread::sleep_for(milliseconds(300));
  });
  EXPECT_EQ(status, 0);
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace zerotrace::agent
