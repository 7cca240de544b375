// TlsTracer: the tls_trace skeleton, sharing socket_trace's maps; uprobes per file.
#include "probes/tls_tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

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

struct ExecFileKey {
  uint64_t ino;
  uint32_t dev;
  uint32_t pad;
};

}  // namespace

TlsProbeSet::~TlsProbeSet() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
}

StatusOr<std::unique_ptr<TlsTracer>> TlsTracer::Start(const TracerConfig& config,
                                                      const SocketTracer& sockets,
                                                      const std::string& tracefs,
                                                      std::vector<std::string>* notes) {
  std::unique_ptr<TlsTracer> t(new TlsTracer());
  t->skel_ = tls_trace__open();
  if (!t->skel_) return Status::Error("opening the TLS BPF object failed: " + Errno(errno));
  t->skel_->rodata->self_tgid = config.self_tgid;
  t->skel_->rodata->filter_pids = config.pids.empty() ? 0 : 1;
  t->skel_->rodata->capture_bytes = config.capture_bytes;
  t->skel_->rodata->wakeup_bytes = config.ringbuf_bytes / 8;
  const SocketTracer::SharedMapFds fds = sockets.shared_maps();
  const std::pair<bpf_map*, int> shared[] = {
      {t->skel_->maps.conns, fds.conns},       {t->skel_->maps.tls_calls, fds.tls_calls},
      {t->skel_->maps.muted, fds.muted},       {t->skel_->maps.pid_filter, fds.pid_filter},
      {t->skel_->maps.counters, fds.counters}, {t->skel_->maps.events, fds.events}};
  for (const auto& [map, fd] : shared) {
    if (int err = bpf_map__reuse_fd(map, fd); err) {
      return Status::Error(std::string("sharing map ") + bpf_map__name(map) +
                           " with the TLS probes failed: " + Errno(err));
    }
  }
  const bool have_mmap = TracepointExists(tracefs, "syscalls", "sys_enter_mmap");
  if (!have_mmap) {
    bpf_program__set_autoload(t->skel_->progs.zt_enter_mmap, false);
    notes->push_back(
        "this kernel has no tracepoint syscalls:sys_enter_mmap; TLS libraries loaded with "
        "dlopen outside the system library directories are found only at exec");
  }
  if (int err = tls_trace__load(t->skel_); err) {
    return Status::Error("loading the TLS BPF programs failed: " + Errno(err));
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
  if (mmap_link_) bpf_link__destroy(mmap_link_);
  if (skel_) tls_trace__destroy(skel_);
}

StatusOr<std::unique_ptr<TlsProbeSet>> TlsTracer::Attach(const std::string& path,
                                                         const TlsSymbols& symbols) {
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

void TlsTracer::ForgetExecFile(uint32_t kernel_dev, uint64_t ino) {
  const ExecFileKey key{ino, kernel_dev, 0};
  bpf_map__delete_elem(skel_->maps.exec_files, &key, sizeof(key), 0);
}

std::vector<ProgramStats> TlsTracer::ReadProgramStats() const {
  std::vector<ProgramStats> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    const int fd = bpf_program__fd(prog);
    if (fd < 0) continue;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) continue;
    out.push_back({bpf_program__name(prog), info.run_cnt, info.run_time_ns});
  }
  return out;
}

}  // namespace zerotrace::probes
