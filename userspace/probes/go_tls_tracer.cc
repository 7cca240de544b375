// GoTlsTracer: the go_tls skeleton, sharing socket_trace's maps; a slot per Go binary.
#include "probes/go_tls_tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "go_tls.skel.h"
#include "probes/tls_tracer.h"

namespace zerotrace::probes {
namespace {

std::string Errno(int err) { return std::strerror(err < 0 ? -err : err); }

constexpr uint32_t kTraceUprobeMulti = 48;  // BPF_TRACE_UPROBE_MULTI

}  // namespace

// Free slots of the go_binaries map.
struct GoTlsTracer::Slots {
  std::mutex mu;
  std::vector<uint32_t> free;
};

StatusOr<std::unique_ptr<GoTlsTracer>> GoTlsTracer::Start(const TracerConfig& config,
                                                          const SocketTracer& sockets, bool multi) {
  std::unique_ptr<GoTlsTracer> t(new GoTlsTracer());
  t->skel_ = go_tls__open();
  if (!t->skel_) return Status::Error("opening the Go TLS BPF object failed: " + Errno(errno));
  go_tls* skel = t->skel_;
  skel->rodata->self_tgid = config.self_tgid;
  skel->rodata->filter_pids = config.pids.empty() ? 0 : 1;
  skel->rodata->filter_netns = config.netns;
  skel->rodata->capture_bytes = config.capture_bytes;
  skel->rodata->wakeup_bytes = config.ringbuf_bytes / 8;
  const SocketTracer::SharedMapFds fds = sockets.shared_maps();
  const std::pair<bpf_map*, int> shared[] = {{skel->maps.conns, fds.conns},
                                             {skel->maps.tls_calls, fds.tls_calls},
                                             {skel->maps.thread_reads, fds.thread_reads},
                                             {skel->maps.muted, fds.muted},
                                             {skel->maps.pid_filter, fds.pid_filter},
                                             {skel->maps.counters, fds.counters},
                                             {skel->maps.events, fds.events}};
  for (const auto& [map, fd] : shared) {
    if (int err = bpf_map__reuse_fd(map, fd); err) {
      return Status::Error(std::string("sharing map ") + bpf_map__name(map) +
                           " with the Go TLS probes failed: " + Errno(err));
    }
  }
  if (multi) {
    bpf_program__set_expected_attach_type(skel->progs.zt_go_tls,
                                          static_cast<bpf_attach_type>(kTraceUprobeMulti));
  }
  if (int err = go_tls__load(skel); err) {
    return Status::Error("loading the Go TLS BPF programs failed: " + Errno(err));
  }
  t->multi_ = multi;
  t->slots_ = std::make_shared<Slots>();
  for (uint32_t i = ZT_GO_MAX_BINARIES; i > 0; i--) t->slots_->free.push_back(i - 1);
  return t;
}

GoTlsTracer::~GoTlsTracer() {
  if (skel_) go_tls__destroy(skel_);
}

StatusOr<std::unique_ptr<TlsProbeSet>> GoTlsTracer::Attach(const std::string& path,
                                                           const GoTlsTarget& target) {
  uint32_t slot;
  {
    std::lock_guard<std::mutex> lock(slots_->mu);
    if (slots_->free.empty())
      return Status::Error("already " + std::to_string(ZT_GO_MAX_BINARIES) + " Go binaries probed");
    slot = slots_->free.back();
    slots_->free.pop_back();
  }
  auto release = [slots = slots_, slot] {
    std::lock_guard<std::mutex> lock(slots->mu);
    slots->free.push_back(slot);
  };
  if (int err = bpf_map__update_elem(skel_->maps.go_binaries, &slot, sizeof(slot), &target.offsets,
                                     sizeof(target.offsets), BPF_ANY);
      err) {
    release();
    return Status::Error("writing the Go field offsets failed: " + Errno(err));
  }
  std::vector<uint64_t> offsets, cookies;
  for (const GoTlsProbe& p : target.probes) {
    offsets.push_back(p.file_offset);
    cookies.push_back(ZT_GO_COOKIE(slot, p.kind));
  }
  const int prog = bpf_program__fd(skel_->progs.zt_go_tls);
  if (multi_) {
    auto fd = AttachUprobeMulti(prog, path, offsets, cookies, /*retprobe=*/false);
    if (!fd.ok()) {
      release();
      return Status::Error("attaching the Go TLS uprobes failed: " + fd.status().message());
    }
    return std::make_unique<TlsProbeSet>(std::vector<bpf_link*>{}, std::vector<int>{*fd}, release);
  }
  std::vector<bpf_link*> links;
  for (size_t i = 0; i < offsets.size(); i++) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookies[i], .retprobe = false);
    bpf_link* link = bpf_program__attach_uprobe_opts(skel_->progs.zt_go_tls, -1, path.c_str(),
                                                     offsets[i], &opts);
    if (!link) {
      const int err = errno;
      for (bpf_link* l : links) bpf_link__destroy(l);
      release();
      return Status::Error("attaching a Go TLS uprobe failed: " + Errno(err));
    }
    links.push_back(link);
  }
  return std::make_unique<TlsProbeSet>(std::move(links), std::vector<int>{}, release);
}

std::vector<ProgramStats> GoTlsTracer::ReadProgramStats() const {
  return ReadProgramStatsOf(skel_->obj);
}

}  // namespace zerotrace::probes
