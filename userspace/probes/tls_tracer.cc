// TlsTracer: the tls_trace skeleton, sharing socket_trace's maps; uprobes per file.
#include "probes/tls_tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "probes/go_tls_tracer.h"
#include "probes/preflight.h"
#include "tls_trace.skel.h"

namespace zerotrace::probes {
namespace {

std::string Errno(int err) { return std::strerror(err < 0 ? -err : err); }

// The entry program of each TlsFunction; every function shares one return program.
bpf_program* EntryProgram(tls_trace* skel, TlsFunction f) {
  switch (f) {
    case TlsFunction::kSslWrite:
      return skel->progs.zt_ssl_write;
    case TlsFunction::kSslRead:
      return skel->progs.zt_ssl_read;
    case TlsFunction::kSslWriteEx:
      return skel->progs.zt_ssl_write_ex;
    case TlsFunction::kSslReadEx:
      return skel->progs.zt_ssl_read_ex;
    case TlsFunction::kGnutlsRecordSend:
      return skel->progs.zt_gnutls_send;
    case TlsFunction::kGnutlsRecordRecv:
      return skel->progs.zt_gnutls_recv;
    case TlsFunction::kSslDoHandshake:
    case TlsFunction::kGnutlsHandshake:
      return skel->progs.zt_tls_handshake;
  }
  return nullptr;
}

// union bpf_attr's link_create for a multi-uprobe link (Linux 6.6+; newer than this libbpf).
struct UprobeMultiLinkAttr {
  uint32_t prog_fd, target_fd, attach_type, flags;
  uint64_t path, offsets, ref_ctr_offsets, cookies;
  uint32_t cnt, multi_flags, pid, pad;
};
constexpr int kBpfLinkCreate = 28;          // BPF_LINK_CREATE
constexpr uint32_t kTraceUprobeMulti = 48;  // BPF_TRACE_UPROBE_MULTI
constexpr uint32_t kUprobeMultiReturn = 1;  // BPF_F_UPROBE_MULTI_RETURN

struct ExecFileKey {
  uint64_t ino;
  uint32_t dev;
  uint32_t pad;
};

}  // namespace

// Each detach waits for the kernel to quiesce the probe; in parallel the waits overlap.
TlsProbeSet::~TlsProbeSet() {
  std::vector<std::thread> detachers;
  for (bpf_link* link : links_) detachers.emplace_back([link] { bpf_link__destroy(link); });
  for (int fd : link_fds_) detachers.emplace_back([fd] { close(fd); });
  for (auto& t : detachers) t.join();
  if (on_detached_) on_detached_();
}

StatusOr<int> AttachUprobeMulti(int prog_fd, const std::string& path,
                                const std::vector<uint64_t>& offsets,
                                const std::vector<uint64_t>& cookies, bool retprobe) {
  UprobeMultiLinkAttr attr{};
  attr.prog_fd = prog_fd;
  attr.attach_type = kTraceUprobeMulti;
  attr.path = reinterpret_cast<uint64_t>(path.c_str());
  attr.offsets = reinterpret_cast<uint64_t>(offsets.data());
  attr.cookies = reinterpret_cast<uint64_t>(cookies.data());
  attr.cnt = static_cast<uint32_t>(offsets.size());
  attr.multi_flags = retprobe ? kUprobeMultiReturn : 0;
  const int fd = static_cast<int>(syscall(__NR_bpf, kBpfLinkCreate, &attr, sizeof(attr)));
  if (fd < 0) return Status::Error(Errno(errno));
  return fd;
}

namespace {

// Opens and loads the object with either the multi-uprobe programs or the per-function ones.
StatusOr<tls_trace*> OpenAndLoad(const TracerConfig& config, const SocketTracer& sockets,
                                 bool have_mmap, bool multi) {
  tls_trace* skel = tls_trace__open();
  if (!skel) return Status::Error("opening the TLS BPF object failed: " + Errno(errno));
  auto fail = [skel](std::string message) -> Status {
    tls_trace__destroy(skel);
    return Status::Error(std::move(message));
  };
  skel->rodata->self_tgid = config.self_tgid;
  skel->rodata->filter_pids = config.pids.empty() ? 0 : 1;
  skel->rodata->filter_netns = config.netns;
  skel->rodata->filter_skip = config.skip_processes ? 1 : 0;
  skel->rodata->capture_bytes = config.capture_bytes;
  skel->rodata->wakeup_bytes = config.ringbuf_bytes / 8;
  const SocketTracer::SharedMapFds fds = sockets.shared_maps();
  const std::pair<bpf_map*, int> shared[] = {{skel->maps.conns, fds.conns},
                                             {skel->maps.tls_calls, fds.tls_calls},
                                             {skel->maps.thread_reads, fds.thread_reads},
                                             {skel->maps.muted, fds.muted},
                                             {skel->maps.pid_filter, fds.pid_filter},
                                             {skel->maps.proc_skip, fds.proc_skip},
                                             {skel->maps.counters, fds.counters},
                                             {skel->maps.events, fds.events},
                                             {skel->maps.h2_walks, fds.h2_walks}};
  for (const auto& [map, fd] : shared) {
    if (int err = bpf_map__reuse_fd(map, fd); err) {
      return fail(std::string("sharing map ") + bpf_map__name(map) +
                  " with the TLS probes failed: " + Errno(err));
    }
  }
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    const bool is_multi =
        prog == skel->progs.zt_tls_entry_multi || prog == skel->progs.zt_tls_return_multi;
    const bool is_mmap = prog == skel->progs.zt_enter_mmap;
    if (is_mmap) {
      bpf_program__set_autoload(prog, have_mmap);
    } else if (is_multi) {
      bpf_program__set_autoload(prog, multi);
      bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(kTraceUprobeMulti));
    } else {
      bpf_program__set_autoload(prog, !multi);
    }
  }
  if (int err = tls_trace__load(skel); err) {
    return fail("loading the TLS BPF programs failed: " + Errno(err));
  }
  return skel;
}

}  // namespace

StatusOr<std::unique_ptr<TlsTracer>> TlsTracer::Start(const TracerConfig& config,
                                                      const SocketTracer& sockets,
                                                      const std::string& tracefs,
                                                      std::vector<std::string>* notes,
                                                      bool per_function) {
  std::unique_ptr<TlsTracer> t(new TlsTracer());
  const bool have_mmap = TracepointExists(tracefs, "syscalls", "sys_enter_mmap");
  if (!have_mmap) {
    notes->push_back(
        "this kernel has no tracepoint syscalls:sys_enter_mmap; TLS libraries loaded with "
        "dlopen outside the system library directories are found only at exec");
  }
  StatusOr<tls_trace*> loaded = Status::Error("per-function probes requested");
  if (!per_function) loaded = OpenAndLoad(config, sockets, have_mmap, /*multi=*/true);
  t->multi_ = loaded.ok();
  if (!loaded.ok()) {  // before Linux 6.6: one uprobe per function (slower attach and detach)
    if (!per_function)
      notes->push_back("this kernel has no multi-uprobe links; TLS probes attach one by one");
    loaded = OpenAndLoad(config, sockets, have_mmap, /*multi=*/false);
    if (!loaded.ok()) return loaded.status();
  }
  t->skel_ = loaded.value();
  auto go = GoTlsTracer::Start(config, sockets, t->multi_);
  if (go.ok()) {
    t->go_ = std::move(go.value());
  } else {
    notes->push_back("Go crypto/tls probes are off: " + go.status().message());
  }
  if (have_mmap) {
    t->mmap_link_ = bpf_program__attach(t->skel_->progs.zt_enter_mmap);
    if (!t->mmap_link_) {
      return Status::Error("attaching tracepoint/syscalls/sys_enter_mmap failed: " + Errno(errno));
    }
  }
  return t;
}

TlsTracer::~TlsTracer() {
  go_.reset();
  if (mmap_link_) bpf_link__destroy(mmap_link_);
  if (skel_) tls_trace__destroy(skel_);
}

StatusOr<std::unique_ptr<TlsProbeSet>> TlsTracer::Attach(const std::string& path,
                                                         const TlsSymbols& symbols) {
  if (multi_) return AttachMulti(path, symbols);
  std::vector<bpf_link*> links;
  auto fail = [&](const char* fn, bool ret) -> Status {
    const int err = errno;
    for (bpf_link* l : links) bpf_link__destroy(l);
    return Status::Error(std::string("attaching a ") + (ret ? "uretprobe" : "uprobe") + " to " +
                         fn + " in " + path + " failed: " + Errno(err));
  };
  for (size_t i = 0; i < kTlsFunctionCount; i++) {
    const auto f = static_cast<TlsFunction>(i);
    const uint64_t offset = symbols.Offset(f);
    if (offset == 0) continue;
    LIBBPF_OPTS(bpf_uprobe_opts, entry_opts, .retprobe = false);
    bpf_link* entry = bpf_program__attach_uprobe_opts(EntryProgram(skel_, f), -1, path.c_str(),
                                                      offset, &entry_opts);
    if (!entry) return fail(TlsFunctionName(f), false);
    links.push_back(entry);
    LIBBPF_OPTS(bpf_uprobe_opts, ret_opts, .retprobe = true);
    bpf_link* ret = bpf_program__attach_uprobe_opts(skel_->progs.zt_tls_return, -1, path.c_str(),
                                                    offset, &ret_opts);
    if (!ret) return fail(TlsFunctionName(f), true);
    links.push_back(ret);
  }
  return std::make_unique<TlsProbeSet>(std::move(links));
}

// Two links for the whole file: every entry, then every return (cookie: the function).
StatusOr<std::unique_ptr<TlsProbeSet>> TlsTracer::AttachMulti(const std::string& path,
                                                              const TlsSymbols& symbols) {
  std::vector<uint64_t> offsets, cookies;
  for (size_t i = 0; i < kTlsFunctionCount; i++) {
    if (symbols.offset[i] == 0) continue;
    offsets.push_back(symbols.offset[i]);
    cookies.push_back(i);
  }
  std::vector<int> fds;
  for (const bool ret : {false, true}) {
    const int prog =
        bpf_program__fd(ret ? skel_->progs.zt_tls_return_multi : skel_->progs.zt_tls_entry_multi);
    auto fd = AttachUprobeMulti(prog, path, offsets, cookies, ret);
    if (!fd.ok()) {
      for (int f : fds) close(f);
      return Status::Error(std::string("attaching ") + (ret ? "uretprobes" : "uprobes") +
                           " to the TLS functions in " + path +
                           " failed: " + fd.status().message());
    }
    fds.push_back(*fd);
  }
  return std::make_unique<TlsProbeSet>(std::vector<bpf_link*>{}, std::move(fds));
}

StatusOr<std::unique_ptr<TlsProbeSet>> TlsTracer::AttachGo(const std::string& path,
                                                           const GoTlsTarget& target) {
  if (!go_) return Status::Error("the Go crypto/tls probes did not load");
  return go_->Attach(path, target);
}

void TlsTracer::ForgetExecFile(uint32_t kernel_dev, uint64_t ino) {
  const ExecFileKey key{ino, kernel_dev, 0};
  bpf_map__delete_elem(skel_->maps.exec_files, &key, sizeof(key), 0);
}

std::vector<ProgramStats> TlsTracer::ReadProgramStats() const {
  std::vector<ProgramStats> out = ReadProgramStatsOf(skel_->obj);
  if (go_) {
    for (auto& s : go_->ReadProgramStats()) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace zerotrace::probes
