// Flag parsing with CLI11; every flag is documented in --help.
#include "agent/options.h"

#include <CLI/CLI.hpp>

namespace zerotrace::agent {

StatusOr<Options> ParseOptions(int argc, char** argv, bool* exit_now) {
  *exit_now = false;
  Options o;
  CLI::App app{
      "zerotrace: traces every TCP connection on this node with eBPF, no instrumentation.\n"
      "Run as root."};
  app.set_version_flag("--version", "zerotrace 0.1.0");
  app.add_flag("--dump-events", o.dump_events,
               "print every kernel event readably (time, pid/tid, comm, tuple, role, direction,"
               " stream position, sizes, first bytes)");
  app.add_option("--duration", o.duration_s, "exit cleanly after this many seconds")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--pid", o.pids, "trace only this process id (repeatable)");
  app.add_option("--capture-bytes", o.capture_bytes,
                 "payload bytes copied per syscall (default 16384, max 65536)")
      ->check(CLI::Range(0, ZT_MAX_CAPTURE));
  app.add_option("--ringbuf-bytes", o.ringbuf_bytes,
                 "kernel ring buffer size, a power of two (default 8 MiB)");
  app.add_option("--stats-interval", o.stats_interval_s,
                 "seconds between self-metric summary lines on stderr (0: off)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--verbose,-v", o.verbose, "log loader details");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    app.exit(e);
    *exit_now = true;
    return o;
  } catch (const CLI::ParseError& e) {
    return Status::Error(e.what() + std::string("; see --help"));
  }
  return o;
}

}  // namespace zerotrace::agent
