// Loads tls_trace.bpf.c on the maps of a running SocketTracer and attaches its uprobes to
// TLS library files, one probe set per file (uprobes on a file reach every process mapping it).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "probes/socket_tracer.h"
#include "probes/tls_files.h"
#include "probes/tls_probe_manager.h"

struct tls_trace;

namespace zerotrace::probes {

class GoTlsTracer;

// The uprobes and uretprobes on one file; detached when destroyed.
class TlsProbeSet {
 public:
  // `on_detached` runs once every link is gone (the Go probes free their binary's slot).
  explicit TlsProbeSet(std::vector<bpf_link*> links, std::vector<int> link_fds = {},
                       std::function<void()> on_detached = {})
      : links_(std::move(links)),
        link_fds_(std::move(link_fds)),
        on_detached_(std::move(on_detached)) {}
  ~TlsProbeSet();
  TlsProbeSet(const TlsProbeSet&) = delete;
  TlsProbeSet& operator=(const TlsProbeSet&) = delete;
  size_t size() const { return links_.size() + link_fds_.size(); }

 private:
  std::vector<bpf_link*> links_;  // libbpf's perf-event links (one per function and kind)
  std::vector<int> link_fds_;     // multi-uprobe link fds (one for entries, one for returns)
  std::function<void()> on_detached_;
};

// A multi-uprobe link (Linux 6.6+): `prog_fd` at every offset of `path`, each with its cookie.
// Returns the link's fd.
StatusOr<int> AttachUprobeMulti(int prog_fd, const std::string& path,
                                const std::vector<uint64_t>& offsets,
                                const std::vector<uint64_t>& cookies, bool retprobe);

class TlsTracer : public TlsProbeBackend {
 public:
  // open -> share the socket tracer's maps -> configure -> load -> attach the mmap hook.
  // `sockets` must outlive the TlsTracer.
  // `per_function`: one uprobe link per function even where multi-uprobe links exist (the
  // fallback for kernels before 6.6, kept testable).
  static StatusOr<std::unique_ptr<TlsTracer>> Start(const TracerConfig& config,
                                                    const SocketTracer& sockets,
                                                    const std::string& tracefs,
                                                    std::vector<std::string>* notes,
                                                    bool per_function = false);
  ~TlsTracer() override;
  TlsTracer(const TlsTracer&) = delete;
  TlsTracer& operator=(const TlsTracer&) = delete;

  // Attaches an entry probe and a return probe to each function `symbols` has in `path`
  // (a path the agent can open, e.g. under /proc/PID/root). Safe from any one thread.
  StatusOr<std::unique_ptr<TlsProbeSet>> Attach(const std::string& path,
                                                const TlsSymbols& symbols) override;
  // The crypto/tls probes of one Go executable (go_tls.bpf.c).
  StatusOr<std::unique_ptr<TlsProbeSet>> AttachGo(const std::string& path,
                                                  const GoTlsTarget& target) override;
  // The kernel reports the next executable mapping of this file again (kernel dev encoding).
  void ForgetExecFile(uint32_t kernel_dev, uint64_t ino) override;
  // False when this kernel has no sys_enter_mmap tracepoint: dlopen'ed files outside the
  // library directories are then found only at exec.
  bool watches_mmap() const { return mmap_link_ != nullptr; }
  // Whether each file gets two multi-uprobe links (Linux 6.6+) instead of a link per function.
  bool multi_links() const { return multi_; }
  // Run counts and times of the TLS programs (kernel.bpf_stats_enabled).
  std::vector<ProgramStats> ReadProgramStats() const;

 private:
  TlsTracer() = default;
  StatusOr<std::unique_ptr<TlsProbeSet>> AttachMulti(const std::string& path,
                                                     const TlsSymbols& symbols);
  tls_trace* skel_ = nullptr;
  bool multi_ = false;  // the kernel has multi-uprobe links
  bpf_link* mmap_link_ = nullptr;
  std::unique_ptr<GoTlsTracer> go_;  // null when the Go probes could not load
};

}  // namespace zerotrace::probes
