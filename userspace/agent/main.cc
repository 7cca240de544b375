// zerotrace agent: parse options, configure, start, run until told to stop.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

#include "agent/agent.h"
#include "agent/config_file.h"
#include "agent/options.h"
#include "agent/stop_watchdog.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

void InstallSignals() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace zerotrace;
  bool exit_now = false;
  // `zerotrace top [flags]` is `zerotrace --top [flags]`.
  std::vector<char*> args(argv, argv + argc);
  static char top_flag[] = "--top";
  if (argc > 1 && std::string_view(argv[1]) == "top") args[1] = top_flag;
  auto opts = agent::ParseOptions(argc, args.data(), &exit_now);
  if (!opts.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", opts.status().message().c_str());
    return 2;
  }
  if (exit_now) return 0;
  if (opts->print_config) {
    std::fputs(agent::EffectiveConfigYaml(*opts, agent::EnvWithFile(*opts)).c_str(), stdout);
    return 0;
  }
  auto configured = agent::Agent::Configure(*opts);
  if (!configured.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", configured.status().message().c_str());
    return 2;
  }
  std::unique_ptr<agent::Agent> agent = std::move(configured.value());
  // A stop drains the ring buffer within its drain limit, flushes within the flush timeout,
  // and detaching the probes takes up to seconds more (per-function uprobes under load);
  // whatever blocks it for longer (an output nobody reads), the process still ends.
  agent::StopWatchdog watchdog(
      &g_stop, agent->flush_timeout() + agent::Agent::kStopDrainLimit + std::chrono::seconds(5));
  InstallSignals();
  std::vector<std::string> notes;
  const Status started = agent->Start(&notes);
  for (const auto& note : notes) std::fprintf(stderr, "zerotrace: %s\n", note.c_str());
  if (!started.ok()) {
    std::fprintf(stderr, "zerotrace: %s\n", started.message().c_str());
    return 1;
  }
  std::fprintf(
      stderr, "zerotrace: tracing%s (pid %u); Ctrl-C to stop\n",
      opts->selectors.empty() && opts->netns.empty() ? " every process" : " selected processes",
      static_cast<unsigned>(getpid()));
  agent->Run(&g_stop);
  watchdog.Stopping();  // also when --duration ended the run
  agent->Stop();
  return 0;
}
