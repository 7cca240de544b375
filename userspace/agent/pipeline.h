// The consumer side of the ring buffer: decode -> connection table -> observers.
#pragma once

#include "conn/conn_table.h"
#include "probes/event_decode.h"
#include "probes/socket_tracer.h"
#include "probes/tls_probe_manager.h"

namespace zerotrace::agent {

// Frees kernel conn entries through the tracer (process exit).
class TracerKernelState : public conn::KernelConnState {
 public:
  void set_tracer(probes::SocketTracer* t) { tracer_ = t; }
  void set_head_caps(bool on) { head_caps_ = on; }  // --no-head-caps: off
  void Forget(uint32_t tgid, uint32_t fd) override {
    if (tracer_) tracer_->ForgetConnection(tgid, fd);
  }
  void MutePayload(uint32_t tgid, uint32_t fd, uint64_t conn_id, bool tls_plaintext) override {
    if (tracer_) tracer_->MutePayload(tgid, fd, conn_id, tls_plaintext);
  }
  void CapPayload(uint32_t tgid, uint32_t fd, uint64_t conn_id, uint32_t cap, bool tls_plaintext,
                  bool egress) override {
    if (tracer_ && head_caps_) tracer_->CapPayload(tgid, fd, conn_id, cap, tls_plaintext, egress);
  }

 private:
  probes::SocketTracer* tracer_ = nullptr;
  bool head_caps_ = true;
};

class Pipeline : public probes::RecordSink {
 public:
  Pipeline(conn::ConnTableLimits limits, conn::ConnObserver* observer,
           conn::KernelConnState* kernel)
      : table_(limits, observer, kernel, &processes_) {}

  // Hot path: decode and apply one record.
  void OnRecord(const void* data, size_t size) override {
    records_++;
    probes::EventView ev;
    if (probes::DecodeEvent(data, size, &ev) != probes::DecodeError::kNone) {
      decode_errors_++;
      return;
    }
    table_.OnEvent(ev);
    if (tls_ == nullptr) return;
    switch (ev.type) {  // processes that may bring TLS libraries, or stop using them
      case ZT_EV_PROC_EXEC:
        tls_->OnExec(ev.proc->hdr.tgid);
        break;
      case ZT_EV_PROC_EXIT:
        tls_->OnExit(ev.proc->hdr.tgid);
        break;
      case ZT_EV_EXEC_MAP:
        tls_->OnExecMap(ev.exec_map->hdr.tgid, ev.exec_map->dev, ev.exec_map->ino);
        break;
      default:
        break;
    }
  }
  void set_tls_probes(probes::TlsProbeManager* tls) { tls_ = tls; }
  conn::ConnTable& table() { return table_; }
  conn::ProcessCache& processes() { return processes_; }
  uint64_t decode_errors() const { return decode_errors_; }
  uint64_t records() const { return records_; }

 private:
  conn::ProcessCache processes_;
  conn::ConnTable table_;
  probes::TlsProbeManager* tls_ = nullptr;
  uint64_t decode_errors_ = 0;
  uint64_t records_ = 0;
};

}  // namespace zerotrace::agent
