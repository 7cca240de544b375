// SocketTracer: the only place that turns libbpf's negative errno into a Status.
#include "probes/socket_tracer.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>
#include <zerotrace/maps.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>
#include <thread>

#include "probes/preflight.h"
#include "socket_trace.skel.h"

namespace zerotrace::probes {
namespace {

std::string Errno(int err) { return std::strerror(err < 0 ? -err : err); }

// What OnRingRecord returns once a Poll's budget is spent: libbpf stops consuming (the
// record was consumed) and passes it up. No errno epoll_wait returns.
constexpr int kBudgetSpent = -ECANCELED;

// "tracepoint/syscalls/sys_enter_read" -> {"syscalls", "sys_enter_read"}.
bool SplitTracepoint(const std::string& section, std::string* category, std::string* name) {
  const std::string prefix = "tracepoint/";
  if (section.rfind(prefix, 0) != 0) return false;
  const std::string rest = section.substr(prefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) return false;
  *category = rest.substr(0, slash);
  *name = rest.substr(slash + 1);
  return true;
}

// Whether sends can be stamped by the BTF tracepoint tcp_sendmsg_locked (Linux 6.2+) instead
// of five sys_enter programs: the tracepoint exists, and so does the sys_exit of every send,
// which must clear each stamp (bpf/send_stamp.bpf.h).
bool CanStampSendsInTcp(const std::string& tracefs) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  const bool has_tp =
      btf__find_by_name_kind(vmlinux, "btf_trace_tcp_sendmsg_locked", BTF_KIND_TYPEDEF) > 0;
  btf__free(vmlinux);
  if (!has_tp) return false;
  for (const char* name : {"sys_exit_write", "sys_exit_writev", "sys_exit_sendto",
                           "sys_exit_sendmsg", "sys_exit_sendmmsg"}) {
    if (!TracepointExists(tracefs, "syscalls", name)) return false;
  }
  return true;
}

// Whether the BTF tracepoints sock_recv_length and sock_send_length (Linux 6.3+) exist: every
// receive and send on a socket ends in one, with the socket.
bool HasSocketLengthTracepoints() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  const bool has =
      btf__find_by_name_kind(vmlinux, "btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) > 0 &&
      btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) > 0;
  btf__free(vmlinux);
  return has;
}

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

StatusOr<std::unique_ptr<SocketTracer>> SocketTracer::Start(const TracerConfig& config,
                                                            const std::string& tracefs,
                                                            RecordSink* sink,
                                                            std::vector<std::string>* notes) {
  if (config.capture_bytes > ZT_MAX_CAPTURE) {
    return Status::Error("--capture-bytes " + std::to_string(config.capture_bytes) +
                         " is above the maximum " + std::to_string(ZT_MAX_CAPTURE));
  }
  const auto page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  if (!IsPowerOfTwo(config.ringbuf_bytes) || config.ringbuf_bytes < page) {
    return Status::Error("--ringbuf-bytes must be a power of two and at least " +
                         std::to_string(page));
  }
  std::unique_ptr<SocketTracer> t(new SocketTracer());
  t->skel_ = socket_trace__open();
  if (!t->skel_) return Status::Error("opening the BPF object failed: " + Errno(errno));

  t->skel_->rodata->self_tgid = config.self_tgid;
  t->skel_->rodata->filter_pids = config.pids.empty() ? 0 : 1;
  t->skel_->rodata->filter_netns = config.netns;
  t->skel_->rodata->filter_skip = config.skip_processes ? 1 : 0;
  t->skel_->rodata->capture_bytes = config.capture_bytes;
  t->skel_->rodata->wakeup_bytes = config.ringbuf_bytes / 8;
  t->skel_->rodata->propagate_ctx = config.propagate_ctx ? 1 : 0;
  t->skel_->rodata->ctx_salt = config.ctx_salt;
  // An LRU map is allocated whole at load: without the flag nothing uses it.
  if (!config.propagate_ctx) bpf_map__set_max_entries(t->skel_->maps.thread_ctx, 1);
  t->skel_->rodata->tls_evidence = config.tls ? 1 : 0;
  bpf_map__set_max_entries(t->skel_->maps.events, config.ringbuf_bytes);

  const bool stamp_sends = CanStampSendsInTcp(tracefs);
  t->skel_->rodata->send_stamps = stamp_sends ? 1 : 0;
  bpf_program__set_autoload(t->skel_->progs.zt_send_stamp, stamp_sends);
  for (bpf_program* send_enter : {t->skel_->progs.zt_enter_write, t->skel_->progs.zt_enter_writev,
                                  t->skel_->progs.zt_enter_sendto, t->skel_->progs.zt_enter_sendmsg,
                                  t->skel_->progs.zt_enter_sendmmsg}) {
    bpf_program__set_autoload(send_enter, !stamp_sends);
  }
  if (!stamp_sends) {
    notes->push_back(
        "this kernel has no tracepoint tcp:tcp_sendmsg_locked; sends are stamped by sys_enter "
        "programs");
  }
  // The socket layer's end of a send takes the stamp there, so it needs the stamps too.
  const bool sock_hooks = config.sock_hooks && stamp_sends && HasSocketLengthTracepoints();
  if (config.sock_hooks && !sock_hooks) {
    notes->push_back(
        "this kernel has no tracepoints sock:sock_recv_length and sock:sock_send_length; "
        "receives and sends are taken at every read and write syscall's exit");
  }
  bpf_program__set_autoload(t->skel_->progs.zt_sock_recv, sock_hooks);
  bpf_program__set_autoload(t->skel_->progs.zt_sock_send, sock_hooks);

  bpf_program* prog;
  bpf_object__for_each_program(prog, t->skel_->obj) {
    std::string category, name;
    if (!SplitTracepoint(bpf_program__section_name(prog), &category, &name)) continue;
    if (!TracepointExists(tracefs, category, name)) {
      bpf_program__set_autoload(prog, false);
      t->disabled_.push_back(category + ":" + name);
      notes->push_back("this kernel has no tracepoint " + category + ":" + name +
                       "; that hook is disabled");
    }
  }
  if (int err = socket_trace__load(t->skel_); err) {
    return Status::Error(
        "loading the BPF programs failed: " + Errno(err) +
        "; on kernels older than 5.11 raise the locked-memory limit (ulimit -l unlimited)");
  }
  for (const uint32_t pid : config.pids) {
    const uint8_t one = 1;
    if (bpf_map__update_elem(t->skel_->maps.pid_filter, &pid, sizeof(pid), &one, sizeof(one),
                             BPF_ANY)) {
      return Status::Error("adding pid " + std::to_string(pid) +
                           " to the filter failed: " + Errno(errno));
    }
  }
  for (const uint32_t pid : config.skip_pids) t->SkipProcess(pid);
  bpf_object__for_each_program(prog, t->skel_->obj) {
    if (!bpf_program__autoload(prog) || prog == t->skel_->progs.zt_send_stamp) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      return Status::Error(std::string("attaching ") + bpf_program__section_name(prog) +
                           " failed: " + Errno(errno));
    }
    t->links_.push_back(link);
  }
  // The shared sys_exit program (attached above to sys_exit_recvmmsg) serves every data
  // syscall whose end the socket layer's tracepoints do not take (all of them without
  // sock_hooks), and the one of dup (attached to sys_exit_dup) the other dups.
  static const char* kAllDataExits[] = {
      "sys_exit_read",     "sys_exit_write",      "sys_exit_readv",   "sys_exit_writev",
      "sys_exit_sendto",   "sys_exit_recvfrom",   "sys_exit_sendmsg", "sys_exit_recvmsg",
      "sys_exit_sendmmsg", "sys_exit_sendfile64", "sys_exit_splice"};
  static const char* kSockHookDataExits[] = {"sys_exit_sendmmsg", "sys_exit_sendfile64",
                                             "sys_exit_splice"};
  const std::span<const char* const> more_data_exits =
      sock_hooks ? std::span<const char* const>(kSockHookDataExits)
                 : std::span<const char* const>(kAllDataExits);
  static const char* kMoreDupExits[] = {"sys_exit_dup2", "sys_exit_dup3", "sys_exit_fcntl"};
  const struct {
    bpf_program* prog;
    std::span<const char* const> tracepoints;
  } extra_exits[] = {{t->skel_->progs.zt_exit_data_syscall, more_data_exits},
                     {t->skel_->progs.zt_exit_dup, kMoreDupExits}};
  for (const auto& [exit_prog, tracepoints] : extra_exits) {
    if (!bpf_program__autoload(exit_prog)) continue;  // its own tracepoint is missing
    for (const char* name : tracepoints) {
      if (!TracepointExists(tracefs, "syscalls", name)) {
        t->disabled_.push_back(std::string("syscalls:") + name);
        notes->push_back(std::string("this kernel has no tracepoint syscalls:") + name +
                         "; that hook is disabled");
        continue;
      }
      bpf_link* link = bpf_program__attach_tracepoint(exit_prog, "syscalls", name);
      if (!link) {
        return Status::Error(std::string("attaching tracepoint/syscalls/") + name +
                             " failed: " + Errno(errno));
      }
      t->links_.push_back(link);
    }
  }
  // Last: every send's end (its sys_exit, or zt_sock_send), which clears the stamp this takes,
  // is hooked already.
  if (stamp_sends) {
    bpf_link* link = bpf_program__attach(t->skel_->progs.zt_send_stamp);
    if (!link) return Status::Error("attaching tp_btf/tcp_sendmsg_locked failed: " + Errno(errno));
    t->links_.push_back(link);
  }
  t->sink_ = sink;
  t->rb_ = ring_buffer__new(bpf_map__fd(t->skel_->maps.events), OnRingRecord, t.get(), nullptr);
  if (!t->rb_) return Status::Error("creating the ring buffer reader failed: " + Errno(errno));
  return t;
}

SocketTracer::~SocketTracer() {
  if (rb_) ring_buffer__free(rb_);
  Detach();
  if (skel_) socket_trace__destroy(skel_);
}

void SocketTracer::Detach() {
  // Each detach waits for an RCU grace period; detaching in parallel shares them, which keeps
  // shutdown well under the 2 s promised for SIGTERM.
  std::vector<std::thread> detachers;
  for (bpf_link* link : links_) detachers.emplace_back([link] { bpf_link__destroy(link); });
  for (auto& t : detachers) t.join();
  links_.clear();
}

uint64_t SocketTracer::DiscardPending() {
  struct CountingSink : RecordSink {
    uint64_t n = 0;
    void OnRecord(const void*, size_t) override { n++; }
  } counting;
  RecordSink* const sink = sink_;
  sink_ = &counting;
  // Counting is cheap, but the ring buffer is finite only once the programs are detached.
  for (int i = 0; i < 1024; i++) {
    const int n = Poll(0);
    if (n < 0 && n != -EINTR) break;
    if (drained()) break;
  }
  sink_ = sink;
  return counting.n;
}

// Hot path: one record to the sink, within the current Poll's budget.
int SocketTracer::OnRingRecord(void* ctx, void* data, size_t size) {
  auto* t = static_cast<SocketTracer*>(ctx);
  if (size >= sizeof(zt_event_header)) {
    uint64_t ts;
    std::memcpy(&ts, static_cast<const char*>(data) + offsetof(zt_event_header, ts_ns), sizeof(ts));
    t->newest_ns_ = std::max(t->newest_ns_, ts);
  }
  t->sink_->OnRecord(data, size);
  return --t->budget_ > 0 ? 0 : kBudgetSpent;
}

int SocketTracer::Poll(int timeout_ms) {
  budget_ = kMaxRecordsPerPoll;
  // Records below the wakeup threshold do not wake epoll: consume them after the wait.
  const int woken = ring_buffer__poll(rb_, timeout_ms);
  if (woken < 0 && woken != kBudgetSpent) return woken;
  if (woken != kBudgetSpent) {
    const int rest = ring_buffer__consume(rb_);
    if (rest < 0 && rest != kBudgetSpent) return rest;
  }
  if (budget_ > 0) DrainLostCloses();
  return kMaxRecordsPerPoll - budget_;
}

// After the ring buffer emptied: the records the closes followed are in, so delivering the
// closes now keeps each connection's order.
void SocketTracer::DrainLostCloses() {
  const uint64_t added = __atomic_load_n(&skel_->bss->lost_closes_added, __ATOMIC_RELAXED);
  if (added == lost_closes_drained_) return;
  bpf_map* map = skel_->maps.lost_closes;
  uint64_t key = 0;
  zt_conn_close close{};
  // Deleting the entry just read keeps the walk from the start valid.
  while (budget_ > 0 && bpf_map__get_next_key(map, nullptr, &key, sizeof(key)) == 0) {
    if (bpf_map__lookup_and_delete_elem(map, &key, sizeof(key), &close, sizeof(close), 0) != 0) {
      break;
    }
    lost_closes_drained_++;
    OnRingRecord(this, &close, sizeof(close));
  }
}

std::array<uint64_t, ZT_CNT_COUNT> SocketTracer::ReadCounters() const {
  std::array<uint64_t, ZT_CNT_COUNT> out{};
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> per_cpu(ncpu);
  for (uint32_t i = 0; i < ZT_CNT_COUNT; i++) {
    if (bpf_map__lookup_elem(skel_->maps.counters, &i, sizeof(i), per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0) == 0) {
      for (uint64_t v : per_cpu) out[i] += v;
    }
  }
  return out;
}

void SocketTracer::ForgetConnection(uint32_t tgid, uint32_t fd) {
  const conn_key key{tgid, fd};
  bpf_map__delete_elem(skel_->maps.conns, &key, sizeof(key), 0);
  bpf_map__delete_elem(skel_->maps.muted, &key, sizeof(key), 0);
}

void SocketTracer::PutMutedEntry(uint32_t tgid, uint32_t fd, uint64_t conn_id, uint64_t flags) {
  const conn_key key{tgid, fd};
  const uint64_t value = conn_id | flags;
  bpf_map__update_elem(skel_->maps.muted, &key, sizeof(key), &value, sizeof(value), BPF_ANY);
  // After the entry: the kernel consults the muted map only when the connection's slot moved.
  __atomic_fetch_add(&skel_->bss->muted_epochs[conn_id & (ZT_MUTED_EPOCHS - 1)], 1,
                     __ATOMIC_RELEASE);
}

void SocketTracer::MutePayload(uint32_t tgid, uint32_t fd, uint64_t conn_id, bool tls_plaintext) {
  PutMutedEntry(tgid, fd, conn_id, tls_plaintext ? ZT_MUTED_TLS : 0);
}

void SocketTracer::CapPayload(uint32_t tgid, uint32_t fd, uint64_t conn_id, uint32_t cap,
                              bool tls_plaintext, bool egress) {
  if (conn_id >= (1ULL << ZT_MUTED_ID_BITS) || cap > 0xffff) return;  // not expressible: no cap
  PutMutedEntry(tgid, fd, conn_id,
                ZT_MUTED_CAP | (tls_plaintext ? ZT_MUTED_TLS : 0) |
                    (egress ? ZT_MUTED_CAP_EGRESS : 0) | (uint64_t{cap} << ZT_MUTED_CAP_SHIFT));
}

void SocketTracer::SkipProcess(uint32_t tgid) {
  const uint8_t one = 1;
  // A full map only costs the kernel-side shortcut: userspace still leaves the process out.
  bpf_map__update_elem(skel_->maps.proc_skip, &tgid, sizeof(tgid), &one, sizeof(one), BPF_ANY);
}

SocketTracer::SharedMapFds SocketTracer::shared_maps() const {
  SharedMapFds m;
  m.conns = bpf_map__fd(skel_->maps.conns);
  m.tls_calls = bpf_map__fd(skel_->maps.tls_calls);
  m.thread_reads = bpf_map__fd(skel_->maps.thread_reads);
  m.muted = bpf_map__fd(skel_->maps.muted);
  m.pid_filter = bpf_map__fd(skel_->maps.pid_filter);
  m.proc_skip = bpf_map__fd(skel_->maps.proc_skip);
  m.counters = bpf_map__fd(skel_->maps.counters);
  m.events = bpf_map__fd(skel_->maps.events);
  m.h2_walks = bpf_map__fd(skel_->maps.h2_walks);
  m.thread_ctx = bpf_map__fd(skel_->maps.thread_ctx);
  m.ctx_counters = bpf_map__fd(skel_->maps.ctx_counters);
  return m;
}

size_t SocketTracer::KernelConnections(uint32_t tgid) const {
  size_t n = 0;
  conn_key key{}, next{};
  const conn_key* prev = nullptr;
  while (bpf_map__get_next_key(skel_->maps.conns, prev, &next, sizeof(next)) == 0) {
    if (next.tgid == tgid) n++;
    key = next;
    prev = &key;
  }
  return n;
}

std::vector<ProgramStats> ReadProgramStatsOf(const ::bpf_object* obj) {
  std::vector<ProgramStats> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    const int fd = bpf_program__fd(prog);
    if (fd < 0) continue;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) continue;
    out.push_back({bpf_program__name(prog), info.run_cnt, info.run_time_ns});
  }
  return out;
}

std::vector<ProgramStats> SocketTracer::ReadProgramStats() const {
  return ReadProgramStatsOf(skel_->obj);
}

}  // namespace zerotrace::probes
