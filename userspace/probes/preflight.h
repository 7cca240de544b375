// Checks the machine before loading BPF: privileges, BTF, tracefs, memlock.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace zerotrace::probes {

// What preflight found or changed; notes are printed once at start-up.
struct PreflightReport {
  std::vector<std::string> notes;  // e.g. "mounted tracefs at /sys/kernel/tracing"
  std::string tracefs;             // where tracepoint ids live
};

// Fails with an actionable message when the agent cannot load or attach its programs.
Status Preflight(PreflightReport* report);

// Whether the tracepoint category/name exists in tracefs (e.g. "syscalls", "sys_enter_read").
bool TracepointExists(const std::string& tracefs, const std::string& category,
                      const std::string& name);

}  // namespace zerotrace::probes
