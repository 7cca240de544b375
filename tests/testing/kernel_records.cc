// The record generator: events.h structs laid out as the BPF side writes them.
#include "kernel_records.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "conn/conn_table.h"
#include "probes/event_decode.h"

namespace zerotrace::testing {
namespace {

template <typename T>
Record Bytes(const T& v, std::string_view tail = {}) {
  Record r(sizeof(T) + tail.size());
  std::memcpy(r.data(), &v, sizeof(T));
  if (!tail.empty()) std::memcpy(r.data() + sizeof(T), tail.data(), tail.size());
  return r;
}

zt_event_header Header(uint8_t type, const ConnSpec& spec, uint64_t ts_ns, uint32_t tid = 0) {
  zt_event_header h{};
  h.type = type;
  h.tgid = spec.tgid;
  h.tid = tid != 0 ? tid : spec.tgid;
  h.fd = spec.fd;
  h.ts_ns = ts_ns;
  h.conn_id = spec.conn_id;
  return h;
}

}  // namespace

RecordSink Into(conn::ConnTable* table) {
  return [table](const Record& r) {
    probes::EventView v;
    const probes::DecodeError e = probes::DecodeEvent(r.data(), r.size(), &v);
    ASSERT_EQ(e, probes::DecodeError::kNone) << probes::DecodeErrorName(e);
    table->OnEvent(v);
  };
}

Record OpenRecord(const ConnSpec& spec, uint64_t ts_ns) {
  zt_conn_open o{};
  o.hdr = Header(ZT_EV_CONN_OPEN, spec, ts_ns);
  o.role = spec.role;
  o.flags = spec.flags;
  o.family = spec.family;
  const bool server = spec.role == ZT_ROLE_SERVER;
  o.local_port = spec.local_port != 0 ? spec.local_port : server ? 8080 : 50000;
  o.remote_port = spec.remote_port != 0 ? spec.remote_port : server ? 50000 : 8080;
  std::memcpy(o.local_addr, spec.local_addr, 16);
  std::memcpy(o.remote_addr, spec.remote_addr, 16);
  std::memcpy(o.comm, spec.comm.data(), std::min(spec.comm.size(), sizeof(o.comm) - 1));
  o.netns = spec.netns;
  return Bytes(o);
}

Record DataRecord(const ConnSpec& spec, uint8_t direction, uint64_t syscall_pos,
                  uint64_t stream_pos, uint32_t byte_count, std::string_view captured,
                  uint64_t ts_ns, uint8_t source, uint32_t tid, uint8_t syscall) {
  zt_data_event d{};
  d.hdr = Header(ZT_EV_DATA, spec, ts_ns, tid);
  d.syscall_pos = syscall_pos;
  d.stream_pos = stream_pos;
  d.byte_count = byte_count;
  d.captured = static_cast<uint32_t>(captured.size());
  d.direction = direction;
  d.source = source;
  d.syscall = syscall;
  return Bytes(d, captured);
}

Record CloseRecord(const ConnSpec& spec, uint64_t sent_bytes, uint64_t received_bytes,
                   uint64_t ts_ns, uint8_t reason, uint8_t flags) {
  zt_conn_close c{};
  c.hdr = Header(ZT_EV_CONN_CLOSE, spec, ts_ns);
  c.sent_bytes = sent_bytes;
  c.received_bytes = received_bytes;
  c.reason = reason;
  c.flags = flags;
  return Bytes(c);
}

Record ProcRecord(uint8_t type, uint32_t tgid, uint64_t ts_ns, std::string_view comm) {
  zt_proc_event p{};
  ConnSpec spec;
  spec.tgid = tgid;
  spec.fd = 0;
  spec.conn_id = 0;
  p.hdr = Header(type, spec, ts_ns);
  std::memcpy(p.comm, comm.data(), std::min(comm.size(), sizeof(p.comm) - 1));
  return Bytes(p);
}

Record GoCallRecord(const ConnSpec& spec, uint64_t send_pos, uint64_t served_conn_id,
                    uint64_t since_ns, uint64_t ts_ns) {
  zt_go_call_event g{};
  g.hdr = Header(ZT_EV_GO_CALL, spec, ts_ns);
  g.send_pos = send_pos;
  g.served_conn_id = served_conn_id;
  g.served_since_ns = since_ns;
  g.goid = 1;
  return Bytes(g);
}

ScriptedConnection::ScriptedConnection(RecordSink sink, ConnSpec spec, uint64_t ts_ns, bool open)
    : sink_(std::move(sink)), spec_(std::move(spec)) {
  if (open) sink_(OpenRecord(spec_, ts_ns));
}

uint64_t& ScriptedConnection::pos(uint8_t direction, bool tls) {
  return pos_[tls ? 1 : 0][direction == ZT_DIR_EGRESS ? 0 : 1];
}

uint64_t ScriptedConnection::position(uint8_t direction, bool tls) const {
  return pos_[tls ? 1 : 0][direction == ZT_DIR_EGRESS ? 0 : 1];
}

void ScriptedConnection::Syscall(uint8_t direction, std::string_view bytes, uint64_t ts_ns,
                                 uint32_t capture, bool tls, uint32_t tid) {
  tls_seen_ |= tls;
  uint64_t& p = pos(direction, tls);
  const uint64_t start = p;
  const uint8_t source = tls ? ZT_SRC_TLS : ZT_SRC_SYSCALL;
  const uint8_t sys = tls ? (direction == ZT_DIR_EGRESS ? ZT_SYS_TLS_WRITE : ZT_SYS_TLS_READ)
                          : (direction == ZT_DIR_EGRESS ? ZT_SYS_WRITE : ZT_SYS_READ);
  const size_t kept = std::min<size_t>(bytes.size(), capture);
  for (size_t off = 0; off < kept; off += ZT_MAX_CHUNK) {
    const std::string_view chunk = bytes.substr(off, std::min<size_t>(ZT_MAX_CHUNK, kept - off));
    sink_(DataRecord(spec_, direction, start, start + off, static_cast<uint32_t>(bytes.size()),
                     chunk, ts_ns, source, tid, sys));
  }
  if (kept < bytes.size()) {  // the trailer: the rest of the call is a gap
    sink_(DataRecord(spec_, direction, start, start + bytes.size(),
                     static_cast<uint32_t>(bytes.size()), {}, ts_ns, source, tid, sys));
  }
  p += bytes.size();
}

void ScriptedConnection::Uncaptured(uint8_t direction, uint64_t len, uint64_t ts_ns, bool tls) {
  tls_seen_ |= tls;
  uint64_t& p = pos(direction, tls);
  sink_(DataRecord(spec_, direction, p, p + len, static_cast<uint32_t>(len), {}, ts_ns,
                   tls ? ZT_SRC_TLS : ZT_SRC_SYSCALL));
  p += len;
}

void ScriptedConnection::Close(uint64_t ts_ns, uint8_t reason, uint8_t flags) {
  if (tls_seen_) flags |= ZT_CLOSE_F_TLS;
  sink_(CloseRecord(spec_, position(ZT_DIR_EGRESS, tls_seen_), position(ZT_DIR_INGRESS, tls_seen_),
                    ts_ns, reason, flags));
}

}  // namespace zerotrace::testing
