// CtxPropagator: load and attach order of ctx_propagate.bpf.c, and its detach.
#include "probes/ctx_propagator.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>
#include <vector>

#include "ctx_propagate.skel.h"

namespace zerotrace::probes {
namespace {

std::string Errno(int err) { return std::strerror(err < 0 ? -err : err); }

// The mount point of the cgroup v2 hierarchy, or empty.
std::string Cgroup2Root() {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest)) {
    if (type == "cgroup2") return dir;
  }
  return "";
}

}  // namespace

StatusOr<std::unique_ptr<CtxPropagator>> CtxPropagator::Start(const SocketTracer& sockets,
                                                              uint32_t netns) {
  std::unique_ptr<CtxPropagator> p(new CtxPropagator());
  p->skel_ = ctx_propagate__open();
  if (!p->skel_) return Status::Error("opening the context BPF object failed: " + Errno(errno));
  p->skel_->rodata->filter_netns = netns;
  const SocketTracer::SharedMapFds fds = sockets.shared_maps();
  const std::pair<bpf_map*, int> shared[] = {{p->skel_->maps.thread_ctx, fds.thread_ctx},
                                             {p->skel_->maps.ctx_counters, fds.ctx_counters},
                                             {p->skel_->maps.events, fds.events}};
  for (const auto& [map, fd] : shared) {
    if (int err = bpf_map__reuse_fd(map, fd); err) {
      return Status::Error(std::string("sharing map ") + bpf_map__name(map) +
                           " with --propagate-context failed: " + Errno(err));
    }
  }
  if (int err = ctx_propagate__load(p->skel_); err) {
    return Status::Error("loading the --propagate-context BPF programs failed: " + Errno(err));
  }
  const std::string root = Cgroup2Root();
  if (root.empty())
    return Status::Error("--propagate-context needs cgroup v2, which is not mounted");
  p->cgroup_fd_ = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (p->cgroup_fd_ < 0) return Status::Error("opening " + root + " failed: " + Errno(errno));
  p->sockops_link_ = bpf_program__attach_cgroup(p->skel_->progs.zt_ctx_sockops, p->cgroup_fd_);
  if (!p->sockops_link_) {
    return Status::Error("attaching the sock_ops program to " + root + " failed: " + Errno(errno));
  }
  if (bpf_prog_attach(bpf_program__fd(p->skel_->progs.zt_ctx_msg),
                      bpf_map__fd(p->skel_->maps.ctx_socks), BPF_SK_MSG_VERDICT, 0) != 0) {
    return Status::Error("attaching the sk_msg program failed: " + Errno(errno));
  }
  p->msg_attached_ = true;
  return p;
}

void CtxPropagator::Detach() {
  if (sockops_link_ != nullptr) {
    bpf_link__destroy(sockops_link_);  // no socket joins the sockhash from now on
    sockops_link_ = nullptr;
  }
  if (msg_attached_) {
    bpf_prog_detach2(bpf_program__fd(skel_->progs.zt_ctx_msg), bpf_map__fd(skel_->maps.ctx_socks),
                     BPF_SK_MSG_VERDICT);
    msg_attached_ = false;
  }
}

CtxPropagator::~CtxPropagator() {
  Detach();
  if (cgroup_fd_ >= 0) close(cgroup_fd_);
  // Freeing the sockhash takes its sockets out of it: they send unchanged bytes again.
  if (skel_ != nullptr) ctx_propagate__destroy(skel_);
}

std::array<uint64_t, ZT_CTX_CNT_COUNT> ReadCtxCounters(int fd) {
  std::array<uint64_t, ZT_CTX_CNT_COUNT> out{};
  const int ncpu = libbpf_num_possible_cpus();
  if (fd < 0 || ncpu <= 0) return out;
  std::vector<uint64_t> per_cpu(ncpu);
  for (uint32_t i = 0; i < ZT_CTX_CNT_COUNT; i++) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) == 0) {
      for (uint64_t v : per_cpu) out[i] += v;
    }
  }
  return out;
}

}  // namespace zerotrace::probes
