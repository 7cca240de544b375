// Loads socket_trace.bpf.c (embedded skeleton), attaches its tracepoints, reads its ring buffer.
#pragma once

#include <zerotrace/events.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

struct bpf_object;  // libbpf

struct socket_trace;
struct ring_buffer;
struct bpf_link;

namespace zerotrace::probes {

struct TracerConfig {
  uint32_t self_tgid = 0;                       // never traced (the agent)
  std::vector<uint32_t> pids;                   // empty: trace every process
  bool skip_processes = false;                  // selectors in use: consult proc_skip
  uint32_t netns = 0;                           // --netns: only tasks in this netns (inode)
  std::vector<uint32_t> skip_pids;              // skipped from the start (--exclude-pid)
  uint32_t capture_bytes = ZT_DEFAULT_CAPTURE;  // per syscall, <= ZT_MAX_CAPTURE
  uint32_t ringbuf_bytes = 8u << 20;            // power of two, >= page size
  bool propagate_ctx = false;                   // --propagate-context: the server-read hook
  uint64_t ctx_salt = 0;                        // its zt_ctx_trace_id() salt
  bool tls = true;  // false (--no-tls): receives keep no evidence for TLS binding
  // Receives and sends at the socket layer's tracepoints where the kernel has them (6.3+),
  // not at every read/write syscall's exit (bpf/socket_trace.bpf.c, sock_hooks). false
  // (--no-socket-tracepoints): the syscall exits, as on older kernels.
  bool sock_hooks = true;
};

// Receives raw ring-buffer records on the consumer thread.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // Hot path: called once per record, in ring-buffer order.
  virtual void OnRecord(const void* data, size_t size) = 0;
};

// Run time of one BPF program as measured by kernel.bpf_stats_enabled.
struct ProgramStats {
  std::string name;
  uint64_t run_count = 0;
  uint64_t run_time_ns = 0;
};

// Run counts and times of every program of a loaded BPF object.
std::vector<ProgramStats> ReadProgramStatsOf(const ::bpf_object* obj);

class SocketTracer {
 public:
  // open -> configure -> disable hooks this kernel lacks -> load -> attach.
  // `notes` receives one line per hook that had to be disabled.
  static StatusOr<std::unique_ptr<SocketTracer>> Start(const TracerConfig& config,
                                                       const std::string& tracefs, RecordSink* sink,
                                                       std::vector<std::string>* notes);
  ~SocketTracer();
  SocketTracer(const SocketTracer&) = delete;
  SocketTracer& operator=(const SocketTracer&) = delete;

  // Delivers pending records to the sink. Waits up to timeout_ms unless the ring buffer is
  // an eighth full (the kernel side batches wakeups), so records wait at most timeout_ms.
  // Returns the number of records consumed, or a negative errno. At most kMaxRecordsPerPoll
  // are delivered per call: under overload the ring buffer never empties, and the caller must
  // still get control back (signals, timers, stats); drained() tells whether it emptied.
  int Poll(int timeout_ms);
  // Whether the last Poll consumed everything it found (false: it stopped at its budget).
  bool drained() const { return budget_ > 0; }
  // The newest event time (CLOCK_MONOTONIC ns) among the records delivered so far: when a
  // Poll was not drained, events before it (give or take per-CPU reservation order) are in.
  uint64_t newest_record_ns() const { return newest_ns_; }
  static constexpr int kMaxRecordsPerPoll = 4096;
  // Detaches every program (one RCU grace period, shared): no record is added from now on,
  // and what is in the ring buffer stays there for Poll. Maps and counters stay readable.
  void Detach();
  // Consumes what is left in the ring buffer (and the kernel's lost closes) without
  // delivering it, and returns how many records that was: the stop's deadline passed first.
  uint64_t DiscardPending();

  // Sums the per-CPU counters (enum zt_kernel_counter).
  std::array<uint64_t, ZT_CNT_COUNT> ReadCounters() const;
  // Frees the kernel's state for (tgid, fd): used when a process exits without close().
  void ForgetConnection(uint32_t tgid, uint32_t fd);
  // From now on only byte counts (no payload) are sent for this connection generation: for
  // its socket bytes, or with `tls_plaintext` for the plaintext of its TLS calls.
  void MutePayload(uint32_t tgid, uint32_t fd, uint64_t conn_id, bool tls_plaintext = false);
  // Receives on the connection (sends when `egress`; TLS plaintext when `tls_plaintext`) copy
  // at most `cap` bytes (0: no cap); see ZT_MUTED_CAP.
  void CapPayload(uint32_t tgid, uint32_t fd, uint64_t conn_id, uint32_t cap,
                  bool tls_plaintext = false, bool egress = false);
  // The selectors leave this process out: the kernel stops tracking its connections and
  // sending its bytes until it calls exec or exits (its exit is still reported).
  void SkipProcess(uint32_t tgid);
  // The maps tls_trace.bpf.c shares with socket_trace.bpf.c (valid while this tracer lives).
  struct SharedMapFds {
    int conns = -1, tls_calls = -1, thread_reads = -1, muted = -1, pid_filter = -1, proc_skip = -1,
        counters = -1, events = -1, h2_walks = -1, thread_ctx = -1, ctx_counters = -1;
  };
  SharedMapFds shared_maps() const;
  // Kernel connection-table entries that belong to tgid (tests and diagnostics; walks the map).
  size_t KernelConnections(uint32_t tgid) const;
  std::vector<ProgramStats> ReadProgramStats() const;
  const std::vector<std::string>& disabled_hooks() const { return disabled_; }

 private:
  // One entry of the kernel's `muted` map (a mute or a head cap: conn_id | flags), then the
  // bump of the connection's epoch slot that makes the kernel read it.
  void PutMutedEntry(uint32_t tgid, uint32_t fd, uint64_t conn_id, uint64_t flags);
  SocketTracer() = default;
  static int OnRingRecord(void* ctx, void* data, size_t size);
  void DrainLostCloses();
  socket_trace* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  RecordSink* sink_ = nullptr;
  int budget_ = 1;  // records the current Poll may still deliver
  uint64_t newest_ns_ = 0;
  uint64_t lost_closes_drained_ = 0;  // close records taken from the kernel's lost_closes map
  std::vector<bpf_link*> links_;
  std::vector<std::string> disabled_;
};

}  // namespace zerotrace::probes
