// EventDumper: formats records; remembers each open connection until its close.
#include "agent/event_dump.h"

#include <cerrno>
#include <cstring>

#include "export/console_exporter.h"
#include "probes/event_decode.h"
#include "protocols/http_common/route.h"

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
// Bytes of a payload redacted before the first kDumpBytes of the result are shown: enough
// for any line that reaches into those first bytes.
constexpr size_t kRedactWindow = 4096;

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// A request target with its query values and userinfo redacted.
std::string RedactTarget(std::string_view target) {
  std::string out;
  const size_t scheme = target.find("://");
  if (target.empty() || target.front() != '/') {
    // absolute-form: "http://user:pass@host/path?q"
    if (scheme != std::string_view::npos) {
      const size_t host = scheme + 3;
      const size_t end = std::min(target.find_first_of("/?#", host), target.size());
      const size_t at = target.substr(host, end - host).rfind('@');
      if (at != std::string_view::npos) {
        out.append(target.substr(0, host)).append("REDACTED:REDACTED@");
        target.remove_prefix(host + at + 1);
      }
    }
  }
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return out.append(target);
  const size_t hash = target.find('#', q);
  const std::string_view query = target.substr(q + 1, hash == target.npos ? hash : hash - q - 1);
  out.append(target.substr(0, q + 1)).append(protocols::http_common::RedactQuery(query));
  if (hash != std::string_view::npos) out.append(target.substr(hash));
  return out;
}

// One line (without its '\n', maybe with its '\r') as it may be shown.
void AppendRedactedLine(std::string_view line, std::string* out) {
  const bool cr = !line.empty() && line.back() == '\r';
  const std::string_view text = cr ? line.substr(0, line.size() - 1) : line;
  size_t token = 0;
  while (token < text.size() && IsTokenChar(text[token])) token++;
  if (token > 0 && token < text.size() && text[token] == ':') {
    // A header line: "Name: value".
    if (protocols::http_common::IsSensitiveHeader(text.substr(0, token))) {
      out->append(text.substr(0, token)).append(": REDACTED");
      if (cr) out->push_back('\r');
      return;
    }
  } else if (token > 0 && token + 1 < text.size() && text[token] == ' ') {
    // A request line: "METHOD target[ HTTP/1.1]" (cut short when the capture ended).
    const std::string_view rest = text.substr(token + 1);
    const size_t sp = rest.find(' ');
    const std::string_view target = rest.substr(0, sp);
    if (target.front() == '/' || target.find("://") != std::string_view::npos) {
      out->append(text.substr(0, token + 1)).append(RedactTarget(target));
      if (sp != std::string_view::npos) out->append(rest.substr(sp));
      if (cr) out->push_back('\r');
      return;
    }
  }
  out->append(line);
}

}  // namespace

std::string RedactPayload(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 16);
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    AppendRedactedLine(bytes.substr(0, nl), &out);
    if (nl == std::string_view::npos) break;
    out.push_back('\n');
    bytes.remove_prefix(nl + 1);
  }
  return out;
}

bool EventDumper::Flush() {
  if (std::fflush(out_) == 0) {
    // Also when nothing more is written: `zerotrace --dump-events | head` ends.
    if (!exporter::ReaderGone(out_)) return true;
  } else if (errno != EPIPE) {
    std::clearerr(out_);
    return true;  // a passing failure (EAGAIN, EINTR): the dump goes on
  }
  std::fprintf(stderr, "zerotrace: the reader of stdout has gone; stopping\n");
  return false;
}

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

namespace {

// The first kDumpBytes of a payload, redacted and escaped, "..." when there is more.
std::string Shown(std::string_view payload) {
  const std::string redacted = RedactPayload(payload.substr(0, kRedactWindow));
  std::string shown = EscapeBytes(redacted, kDumpBytes);
  if (payload.size() > kRedactWindow && redacted.size() <= kDumpBytes) shown += "...";
  return shown;
}

}  // namespace

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
                   Shown(ev.payload).c_str());
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
    case ZT_EV_GO_CALL:
      std::fprintf(out_, "conn=%llu fd=%u GO_CALL goroutine=%llu send_pos=%llu serves conn=%llu",
                   static_cast<unsigned long long>(h.conn_id), h.fd,
                   static_cast<unsigned long long>(ev.go_call->goid),
                   static_cast<unsigned long long>(ev.go_call->send_pos),
                   static_cast<unsigned long long>(ev.go_call->served_conn_id));
      std::fprintf(out_, " since=%llu\n",
                   static_cast<unsigned long long>(ev.go_call->served_since_ns));
      break;
    case ZT_EV_CTX: {
      const zt_ctx_event& c = *ev.ctx;
      std::fprintf(out_, "CTX_INSERTED %u.%u.%u.%u:%u -> %u.%u.%u.%u:%u traceparent=00-",
                   c.local_ip >> 24, (c.local_ip >> 16) & 255, (c.local_ip >> 8) & 255,
                   c.local_ip & 255, c.local_port, c.remote_ip >> 24, (c.remote_ip >> 16) & 255,
                   (c.remote_ip >> 8) & 255, c.remote_ip & 255, c.remote_port);
      for (uint8_t b : c.trace_id) std::fprintf(out_, "%02x", b);
      std::fputc('-', out_);
      for (uint8_t b : c.span_id) std::fprintf(out_, "%02x", b);
      std::fprintf(out_, "-01\n");
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
