// Loads go_tls.bpf.c on the maps of a running SocketTracer and attaches its uprobes to Go
// executables: one slot of field offsets per binary, one uprobe per entry and RET.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "probes/go_tls_target.h"
#include "probes/socket_tracer.h"

struct go_tls;

namespace zerotrace::probes {

class TlsProbeSet;

class GoTlsTracer {
 public:
  // open -> share the socket tracer's maps -> configure -> load. `multi`: attach with one
  // multi-uprobe link per binary (Linux 6.6+) instead of one link per probe.
  static StatusOr<std::unique_ptr<GoTlsTracer>> Start(const TracerConfig& config,
                                                      const SocketTracer& sockets, bool multi);
  ~GoTlsTracer();
  GoTlsTracer(const GoTlsTracer&) = delete;
  GoTlsTracer& operator=(const GoTlsTracer&) = delete;

  // Writes the binary's offsets to a free slot and attaches every probe of `target` in
  // `path`; the slot is freed when the returned set is destroyed. Safe from any one thread.
  StatusOr<std::unique_ptr<TlsProbeSet>> Attach(const std::string& path, const GoTlsTarget& target);
  std::vector<ProgramStats> ReadProgramStats() const;

 private:
  struct Slots;  // shared with the probe sets, which may outlive nothing but must not dangle
  GoTlsTracer() = default;
  go_tls* skel_ = nullptr;
  bool multi_ = false;
  std::shared_ptr<Slots> slots_;
};

}  // namespace zerotrace::probes
