// Loads ctx_propagate.bpf.c for --propagate-context on socket_trace's maps (thread_ctx,
// ctx_counters, the ring buffer) and attaches it: sock_ops on the cgroup v2 root, sk_msg on its
// sockhash. Detaches when destroyed.
#pragma once

#include <zerotrace/ctx_propagate.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "probes/socket_tracer.h"

struct ctx_propagate;
struct bpf_link;

namespace zerotrace::probes {

class CtxPropagator {
 public:
  // netns: only sockets of this namespace (inode; 0: every one).
  static StatusOr<std::unique_ptr<CtxPropagator>> Start(const SocketTracer& sockets,
                                                        uint32_t netns);
  ~CtxPropagator();
  CtxPropagator(const CtxPropagator&) = delete;
  CtxPropagator& operator=(const CtxPropagator&) = delete;
  // Detaches both programs (idempotent): nothing is inserted from now on.
  void Detach();

 private:
  CtxPropagator() = default;
  ctx_propagate* skel_ = nullptr;
  bpf_link* sockops_link_ = nullptr;
  int cgroup_fd_ = -1;
  bool msg_attached_ = false;
};

// The kernel's ctx_counters (socket_trace's map, summed over CPUs; enum zt_ctx_counter).
std::array<uint64_t, ZT_CTX_CNT_COUNT> ReadCtxCounters(int ctx_counters_fd);

}  // namespace zerotrace::probes
