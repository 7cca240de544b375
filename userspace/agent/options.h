// Command-line options of the agent.
#pragma once

#include <zerotrace/events.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace zerotrace::agent {

struct Options {
  bool dump_events = false;
  double duration_s = 0;  // 0: until SIGINT/SIGTERM
  std::vector<uint32_t> pids;
  uint32_t capture_bytes = ZT_DEFAULT_CAPTURE;
  uint32_t ringbuf_bytes = 8u << 20;
  double stats_interval_s = 60;
  bool verbose = false;
};

// Parses argv. Returns an error for bad values; sets *exit_now for --help/--version.
StatusOr<Options> ParseOptions(int argc, char** argv, bool* exit_now);

}  // namespace zerotrace::agent
