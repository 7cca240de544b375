// EventDumper: formats records; remembers each open connection until its close.
#include "agent/event_dump.h"

#include <cstring>

#include "probes/event_decode.h"

namespace zerotrace::agent {
namespace {

const char* RoleName(uint8_t role) {
  switch (role) {
    case ZT_ROLE_CLIENT:
      return "client";
    case ZT_ROLE_SERVER:
      return "server";
    default:
      return "unknown";
  }
}

const char* SyscallName(uint8_t sys) {
  static const char* kNames[ZT_SYS_COUNT] = {"read",      "write",       "readv",       "writev",
                                             "sendto",    "recvfrom",    "sendmsg",     "recvmsg",
                                             "sendmmsg",  "recvmmsg",    "sendfile",    "tls_read",
                                             "tls_write", "splice_read", "splice_write"};
  return sys < ZT_SYS_COUNT ? kNames[sys] : "?";
}

constexpr size_t kDumpBytes = 64;

}  // namespace

std::string EscapeBytes(std::string_view bytes, size_t max_bytes) {
  std::string out;
  const size_t n = std::min(bytes.size(), max_bytes);
  out.reserve(n + 8);
  for (size_t i = 0; i < n; i++) {
    const unsigned char ch = bytes[i];
    switch (ch) {
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      default:
        if (ch >= 0x20 && ch < 0x7f) {
          out += static_cast<char>(ch);
        } else {
          char buf[5];
          std::snprintf(buf, sizeof(buf), "\\x%02x", ch);
          out += buf;
        }
    }
  }
  if (bytes.size() > n) out += "...";
  return out;
}

void EventDumper::OnRecord(const void* data, size_t size) {
  probes::EventView ev;
  if (probes::DecodeEvent(data, size, &ev) != probes::DecodeError::kNone) {
    decode_errors_++;
    return;
  }
  const zt_event_header& h = *ev.header;
  const std::string when = WallClock::FormatTimeOfDay(clock_->ToUnixNs(h.ts_ns));
  std::fprintf(out_, "%s pid=%u tid=%u ", when.c_str(), h.tgid, h.tid);
  switch (ev.type) {
    case ZT_EV_CONN_OPEN: {
      Known k;
      k.tgid = h.tgid;
      k.role = ev.open->role;
      k.comm.assign(ev.open->comm, strnlen(ev.open->comm, ZT_COMM_LEN));
      k.tuple.family = ev.open->family;
      k.tuple.local_port = ev.open->local_port;
      k.tuple.remote_port = ev.open->remote_port;
      std::memcpy(k.tuple.local_addr.data(), ev.open->local_addr, 16);
      std::memcpy(k.tuple.remote_addr.data(), ev.open->remote_addr, 16);
      std::fprintf(out_, "comm=%s conn=%llu fd=%u OPEN role=%s %s -> %s%s\n", k.comm.c_str(),
                   static_cast<unsigned long long>(h.conn_id), h.fd, RoleName(k.role),
                   k.tuple.LocalEndpoint().c_str(), k.tuple.RemoteEndpoint().c_str(),
                   (ev.open->flags & ZT_CONN_F_PREEXISTING) ? " preexisting" : "");
      conns_[h.conn_id] = std::move(k);
      break;
    }
    case ZT_EV_DATA: {
      const zt_data_event& d = *ev.data;
      auto it = conns_.find(h.conn_id);
      const Known* k = it == conns_.end() ? nullptr : &it->second;
      std::fprintf(out_,
                   "comm=%s conn=%llu fd=%u DATA role=%s %s -> %s %s %s pos=%llu "
                   "syscall_pos=%llu bytes=%u captured=%u \"%s\"\n",
                   k ? k->comm.c_str() : "?", static_cast<unsigned long long>(h.conn_id), h.fd,
                   RoleName(k ? k->role : 0), k ? k->tuple.LocalEndpoint().c_str() : "?",
                   k ? k->tuple.RemoteEndpoint().c_str() : "?",
                   d.direction == ZT_DIR_EGRESS ? "egress" : "ingress", SyscallName(d.syscall),
                   static_cast<unsigned long long>(d.stream_pos),
                   static_cast<unsigned long long>(d.syscall_pos), d.byte_count, d.captured,
                   EscapeBytes(ev.payload, kDumpBytes).c_str());
      break;
    }
    case ZT_EV_CONN_CLOSE: {
      auto it = conns_.find(h.conn_id);
      std::fprintf(out_, "comm=%s conn=%llu fd=%u CLOSE reason=%s sent=%llu received=%llu\n",
                   it == conns_.end() ? "?" : it->second.comm.c_str(),
                   static_cast<unsigned long long>(h.conn_id), h.fd,
                   ev.close->reason == ZT_CLOSE_FD_REUSE ? "fd_reuse" : "close",
                   static_cast<unsigned long long>(ev.close->sent_bytes),
                   static_cast<unsigned long long>(ev.close->received_bytes));
      if (it != conns_.end()) conns_.erase(it);
      break;
    }
    case ZT_EV_EXEC_MAP:
      std::fprintf(out_, "EXEC_MAP dev=%u:%u ino=%llu\n", ev.exec_map->dev >> 20,
                   ev.exec_map->dev & ((1u << 20) - 1),
                   static_cast<unsigned long long>(ev.exec_map->ino));
      break;
    case ZT_EV_PROC_EXEC:
    case ZT_EV_PROC_EXIT:
      std::fprintf(out_, "comm=%.*s %s ppid=%u\n", ZT_COMM_LEN, ev.proc->comm,
                   ev.type == ZT_EV_PROC_EXEC ? "EXEC" : "EXIT", ev.proc->ppid);
      if (ev.type == ZT_EV_PROC_EXIT) {
        // Exit frees the process's connections without close events.
        std::erase_if(conns_, [&](const auto& kv) { return kv.second.tgid == h.tgid; });
      }
      break;
  }
}

}  // namespace zerotrace::agent
