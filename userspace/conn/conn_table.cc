// ConnTable: applies kernel records in order; frees state on close, exit, idle and cap.
#include "conn/conn_table.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace zerotrace::conn {

const char* CloseCauseName(CloseCause c) {
  switch (c) {
    case CloseCause::kClose:
      return "close";
    case CloseCause::kReset:
      return "reset";
    case CloseCause::kFdReuse:
      return "fd_reuse";
    case CloseCause::kProcessExit:
      return "process_exit";
    case CloseCause::kIdle:
      return "idle";
    case CloseCause::kEvicted:
      return "evicted";
    case CloseCause::kShutdown:
      return "shutdown";
  }
  return "?";
}

ConnTable::ConnTable(ConnTableLimits limits, ConnObserver* observer, KernelConnState* kernel,
                     ProcessCache* processes)
    : limits_(limits), observer_(observer), kernel_(kernel), processes_(processes) {}

ConnTable::~ConnTable() = default;

Connection* ConnTable::Find(uint64_t conn_id) { return conns_.FindObject(conn_id); }

size_t ConnTable::ConnectionsOf(uint32_t tgid) const {
  auto it = by_tgid_.find(tgid);
  return it == by_tgid_.end() ? 0 : it->second.size();
}

Connection& ConnTable::Open(const zt_event_header& h) {
  if (conns_.size() >= limits_.max_connections) EvictOldest();
  auto c = std::make_unique<Connection>();
  c->conn_id = h.conn_id;
  c->tgid = h.tgid;
  c->fd = h.fd;
  c->open_ts_ns = h.ts_ns;
  c->last_ts_ns = h.ts_ns;
  c->sent = ByteStream(limits_.stream_byte_cap, &stats_.streams);
  c->received = ByteStream(limits_.stream_byte_cap, &stats_.streams);
  Connection& ref = *conns_.InsertOrReplace(h.conn_id, std::move(c));
  by_tgid_[h.tgid].insert(h.conn_id);
  by_fd_[FdKey(h.tgid, h.fd)] = h.conn_id;
  stats_.opened++;
  return ref;
}

void ConnTable::Remove(uint64_t conn_id, CloseCause cause) {
  Connection* found = Find(conn_id);
  if (found == nullptr) return;
  Connection& c = *found;
  c.sent.DeclareHolesAsGaps();
  c.received.DeclareHolesAsGaps();
  if (observer_) observer_->OnClose(c, cause);
  if (cause == CloseCause::kProcessExit && kernel_) kernel_->Forget(c.tgid, c.fd);
  auto t = by_tgid_.find(c.tgid);
  if (t != by_tgid_.end()) {
    t->second.erase(conn_id);
    if (t->second.empty()) by_tgid_.erase(t);
  }
  auto f = by_fd_.find(FdKey(c.tgid, c.fd));
  if (f != by_fd_.end() && f->second == conn_id) by_fd_.erase(f);
  conns_.Take(conn_id);  // frees c
  stats_.closed++;
}

// The kernel finds a socket on first use only when its table holds nothing for the fd, and it
// closes what an fd named before (close, fd reuse): a live connection still on the fd was
// dropped from its LRU table unannounced, positions included; the new one starts afresh.
void ConnTable::ForgetKernelEvicted(const zt_event_header& h) {
  auto f = by_fd_.find(FdKey(h.tgid, h.fd));
  if (f == by_fd_.end() || f->second == h.conn_id || !Find(f->second)) return;
  stats_.kernel_evicted++;
  Remove(f->second, CloseCause::kEvicted);
}

void ConnTable::OnEvent(const probes::EventView& ev) {
  stats_.events[ev.type & 7]++;
  switch (ev.type) {
    case ZT_EV_CONN_OPEN: {
      const zt_conn_open& o = *ev.open;
      if (o.flags & ZT_CONN_F_AGENT) {
        RememberAgentConn(o);
        return;
      }
      if (Find(o.hdr.conn_id)) return;  // data for it arrived first (reordered across CPUs)
      if (o.flags & ZT_CONN_F_PREEXISTING) ForgetKernelEvicted(o.hdr);
      Connection& c = Open(o.hdr);
      c.open_seen = true;
      c.role = o.role;
      c.preexisting = o.flags & ZT_CONN_F_PREEXISTING;
      c.tuple.family = o.family;
      c.tuple.local_port = o.local_port;
      c.tuple.remote_port = o.remote_port;
      std::memcpy(c.tuple.local_addr.data(), o.local_addr, 16);
      std::memcpy(c.tuple.remote_addr.data(), o.remote_addr, 16);
      c.tuple.netns = o.netns;
      c.comm.assign(o.comm, strnlen(o.comm, sizeof(o.comm)));
      c.comm_of_process = o.hdr.tid == o.hdr.tgid;
      if (processes_) c.process = processes_->GetShared(o.hdr.tgid, c.comm);
      if (observer_) observer_->OnOpen(c);
      return;
    }
    case ZT_EV_CONN_CLOSE: {
      const zt_conn_close& cl = *ev.close;
      if (!Find(cl.hdr.conn_id)) {
        stats_.stale_close++;
        return;
      }
      if (cl.reason == ZT_CLOSE_FD_REUSE) stats_.fd_reused++;
      Connection& c = *Find(cl.hdr.conn_id);
      c.last_ts_ns = cl.hdr.ts_ns;  // spans waiting on it end here
      // Bytes the kernel counted that never arrived (their records and trailers were dropped)
      // are a gap: a request whose response was lost is then not reported as unanswered.
      // Muted or left out: no bytes were kept, so none were lost.
      if (c.tls == bool(cl.flags & ZT_CLOSE_F_TLS) && !c.muted && !c.deselected) {
        const bool sent_lost = cl.sent_bytes > c.sent.end_pos();
        const bool received_lost = cl.received_bytes > c.received.end_pos();
        if (sent_lost) {
          c.sent.AddGap(c.sent.end_pos(), cl.sent_bytes - c.sent.end_pos(), cl.hdr.ts_ns);
        }
        if (received_lost) {
          c.received.AddGap(c.received.end_pos(), cl.received_bytes - c.received.end_pos(),
                            cl.hdr.ts_ns);
        }
        if (sent_lost || received_lost) stats_.tail_lost_at_close++;
      }
      Remove(cl.hdr.conn_id, cl.reason == ZT_CLOSE_FD_REUSE  ? CloseCause::kFdReuse
                             : (cl.flags & ZT_CLOSE_F_RESET) ? CloseCause::kReset
                                                             : CloseCause::kClose);
      return;
    }
    case ZT_EV_DATA:
      OnData(*ev.data, ev.payload);
      return;
    case ZT_EV_PROC_EXEC:
      if (processes_) {
        processes_->Refresh(ev.proc->hdr.tgid,
                            std::string_view(ev.proc->comm, strnlen(ev.proc->comm, ZT_COMM_LEN)));
      }
      return;
    case ZT_EV_GO_CALL: {
      const zt_go_call_event& g = *ev.go_call;
      Connection* c = Find(g.hdr.conn_id);
      if (!c) {
        stats_.go_call_unknown_conn++;
        return;
      }
      c->go_call = Connection::GoCall{g.send_pos, g.served_conn_id, g.served_since_ns};
      return;
    }
    case ZT_EV_CTX:
      OnCtx(*ev.ctx);
      return;
    case ZT_EV_PROC_EXIT: {
      auto t = by_tgid_.find(ev.proc->hdr.tgid);
      if (t != by_tgid_.end()) {
        const std::vector<uint64_t> ids(t->second.begin(), t->second.end());
        for (uint64_t id : ids) {
          stats_.proc_exit_closed++;
          Find(id)->last_ts_ns = ev.proc->hdr.ts_ns;
          Remove(id, CloseCause::kProcessExit);
        }
      }
      if (processes_) processes_->Forget(ev.proc->hdr.tgid);
      return;
    }
    default:
      return;
  }
}

// The connection of e's process with e's IPv4 tuple (few per process: only calls that carry an
// inserted traceparent come here) gets the kernel's ids for its next request.
void ConnTable::OnCtx(const zt_ctx_event& e) {
  auto ip = [](const std::array<uint8_t, 16>& a) {
    return (uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3];
  };
  if (auto t = by_tgid_.find(e.hdr.tgid); t != by_tgid_.end()) {
    for (uint64_t id : t->second) {
      Connection* c = Find(id);
      if (c == nullptr || c->tuple.family != ZT_AF_INET || c->tuple.local_port != e.local_port ||
          c->tuple.remote_port != e.remote_port || ip(c->tuple.local_addr) != e.local_ip ||
          ip(c->tuple.remote_addr) != e.remote_ip) {
        continue;
      }
      Connection::CtxCall call;
      call.tid = e.hdr.tid;
      std::copy(std::begin(e.trace_id), std::end(e.trace_id), call.trace_id.begin());
      std::copy(std::begin(e.span_id), std::end(e.span_id), call.span_id.begin());
      c->ctx_call = call;
      return;
    }
  }
  stats_.ctx_unknown_conn++;
}

// Hot path: places a chunk in its stream; uncaptured bytes of a syscall become gaps.
void ConnTable::OnData(const zt_data_event& d, std::string_view payload) {
  Connection* c = Find(d.hdr.conn_id);
  if (!c) {
    stats_.data_unknown_conn++;
    c = &Open(d.hdr);
    if (processes_) c->process = processes_->GetShared(d.hdr.tgid, "");
    if (observer_) observer_->OnOpen(*c);
  }
  c->last_ts_ns = d.hdr.ts_ns;
  if (d.source == ZT_SRC_TLS) {
    if (!c->tls) {
      SwitchToPlaintext(*c);
      if (c->deselected && kernel_) kernel_->MutePayload(c->tgid, c->fd, c->conn_id, true);
    }
  } else if (c->tls) {
    stats_.ciphertext_ignored++;  // sent before the kernel knew: never parsed as plaintext
    return;
  }
  if (!c->selection_decided && selector_) {
    c->selection_decided = true;
    const Selection s = selector_(*c);
    if (s != Selection::kTrace) {
      c->deselected = true;
      (s == Selection::kSkip ? stats_.deselected_conns : stats_.undecided_conns)++;
      if (kernel_) kernel_->MutePayload(c->tgid, c->fd, c->conn_id, c->tls);
    }
  }
  // Only sizes (now and then) flow from the kernel now; nothing is kept.
  if (c->deselected || c->muted) return;
  // Checked at the first bytes: the agent's open event precedes any byte it sends.
  if (c->open_seen && !c->agent_peer && c->sent.end_pos() == 0 && c->received.end_pos() == 0 &&
      agent_peers_.count(TupleKey(c->tuple))) {
    c->agent_peer = true;
    stats_.agent_peer_conns++;
  }
  ByteStream& s = c->stream(d.direction);
  SyscallCursor& cur = d.direction == ZT_DIR_EGRESS ? c->sent_cursor : c->received_cursor;
  if (cur.syscall_pos != d.syscall_pos) {
    cur.syscall_pos = d.syscall_pos;
    cur.covered_to = d.syscall_pos;
  }
  if (d.captured > 0) {
    if (d.stream_pos > cur.covered_to) {
      s.AddGap(cur.covered_to, d.stream_pos - cur.covered_to, d.hdr.ts_ns, d.hdr.tid);
    }
    s.AddDataLent(d.stream_pos, payload, d.hdr.ts_ns, d.hdr.tid);  // settled below
    cur.covered_to = std::max<uint64_t>(cur.covered_to, d.stream_pos + d.captured);
    if (d.flags & ZT_DATA_REST_GAP) {  // a body the kernel skipped ends the syscall
      const uint64_t end = d.syscall_pos + d.byte_count;
      if (end > cur.covered_to) {
        s.AddGap(cur.covered_to, end - cur.covered_to, d.hdr.ts_ns, d.hdr.tid, GapKind::kSkipped);
      }
      cur.covered_to = std::max(cur.covered_to, end);
    }
  } else {
    const uint64_t end = d.syscall_pos + d.byte_count;
    if (end > cur.covered_to)
      s.AddGap(cur.covered_to, end - cur.covered_to, d.hdr.ts_ns, d.hdr.tid);
    cur.covered_to = end;
  }
  if (observer_) {
    observer_->OnData(*c,
                      DataChunk{d.direction, d.hdr.ts_ns, d.syscall_pos, d.stream_pos, d.captured});
  }
  s.Settle();  // the payload is the ring buffer's: what the parser left must be copied now
}

// Once per connection: plaintext positions count TLS bytes, so the socket streams go.
void ConnTable::SwitchToPlaintext(Connection& c) {
  c.sent.DeclareHolesAsGaps();
  c.received.DeclareHolesAsGaps();
  if (observer_) observer_->OnStreamsReplaced(c);
  c.tls = true;
  c.muted = false;  // a mute of socket bytes: the plaintext is judged afresh
  c.sent = ByteStream(limits_.stream_byte_cap, &stats_.streams);
  c.received = ByteStream(limits_.stream_byte_cap, &stats_.streams);
  c.sent_cursor = SyscallCursor{};
  c.received_cursor = SyscallCursor{};
  stats_.tls_conns++;
}

std::string ConnTable::TupleKey(const Tuple& t) {
  std::string k(reinterpret_cast<const char*>(t.local_addr.data()), 16);
  k.append(reinterpret_cast<const char*>(t.remote_addr.data()), 16);
  k += std::to_string(t.local_port) + ":" + std::to_string(t.remote_port);
  return k;
}

void ConnTable::RememberAgentConn(const zt_conn_open& o) {
  Tuple t;
  t.family = o.family;
  t.local_port = o.local_port;
  t.remote_port = o.remote_port;
  std::memcpy(t.local_addr.data(), o.local_addr, 16);
  std::memcpy(t.remote_addr.data(), o.remote_addr, 16);
  std::string key = TupleKey(t.Mirrored());
  if (!agent_peers_.insert(key).second) return;
  agent_peers_order_.push_back(std::move(key));
  constexpr size_t kMaxAgentConns = 4096;  // exporters keep few connections open
  if (agent_peers_order_.size() > kMaxAgentConns) {
    agent_peers_.erase(agent_peers_order_.front());
    agent_peers_order_.pop_front();
  }
}

void ConnTable::ExpireIdle(uint64_t now_ns) {
  std::vector<uint64_t> idle;
  conns_.ForEach([&](uint64_t id, const std::unique_ptr<Connection>& c) {
    if (now_ns > c->last_ts_ns && now_ns - c->last_ts_ns > limits_.idle_timeout_ns) {
      idle.push_back(id);
    }
  });
  for (uint64_t id : idle) {
    stats_.expired_idle++;
    Remove(id, CloseCause::kIdle);
  }
  conns_.ShrinkIfSparse();  // after a burst of connections, their slots go too
}

// Evicts the least recently active 1/16 of the table at once, so a flood costs O(1) amortised.
void ConnTable::EvictOldest() {
  std::vector<std::pair<uint64_t, uint64_t>> by_age;  // (last_ts, id)
  by_age.reserve(conns_.size());
  conns_.ForEach([&](uint64_t id, const std::unique_ptr<Connection>& c) {
    by_age.emplace_back(c->last_ts_ns, id);
  });
  const size_t n = std::max<size_t>(1, by_age.size() / 16);
  std::nth_element(by_age.begin(), by_age.begin() + (n - 1), by_age.end());
  for (size_t i = 0; i < n; i++) {
    stats_.evicted_cap++;
    Remove(by_age[i].second, CloseCause::kEvicted);
  }
}

void ConnTable::RefreshProcesses() {
  if (!processes_) return;
  for (std::shared_ptr<const ProcessInfo>& info : processes_->Drain()) {
    auto t = by_tgid_.find(info->pid);
    if (t == by_tgid_.end()) continue;
    for (uint64_t id : t->second) Find(id)->process = info;
  }
}

void ConnTable::CloseAll() {
  std::vector<uint64_t> ids;
  ids.reserve(conns_.size());
  conns_.ForEach([&](uint64_t id, const std::unique_ptr<Connection>&) { ids.push_back(id); });
  for (uint64_t id : ids) Remove(id, CloseCause::kShutdown);
}

void ConnTable::ReportCounters(CounterReport* r) const {
  const ConnTableStats& c = stats_;
  r->Counter("tls_conns", "zerotrace_tls_conns_total", "connections that carried TLS plaintext",
             c.tls_conns);
  r->Counter("tls_ciphertext_ignored", "zerotrace_tls_ciphertext_ignored_total",
             "ciphertext data events ignored on TLS connections", c.ciphertext_ignored);
  r->Counter(nullptr, "zerotrace_go_call_unknown_conn_total",
             "goroutine evidence for a connection the table does not hold (dropped)",
             c.go_call_unknown_conn);
  r->Counter("ctx_unknown_conn", "zerotrace_ctx_unknown_conn_total",
             "inserted-context records naming no connection the table holds (dropped)",
             c.ctx_unknown_conn);
  r->Counter(nullptr, "zerotrace_conns_opened_total", "connections the connection table opened",
             c.opened);
  r->Counter(nullptr, "zerotrace_conns_closed_total", "connections the connection table freed",
             c.closed);
  r->Counter(nullptr, "zerotrace_conns_fd_reused_total", "connections ended by their fd's reuse",
             c.fd_reused);
  r->Counter("stream_gaps", "zerotrace_stream_gaps_total",
             "gaps (bytes moved but lost or not captured: capture cap, ring loss, truncation) "
             "that reached a stream's reader; deliberate skips are not among them",
             c.streams.gaps);
  r->Counter(nullptr, "zerotrace_stream_gap_bytes_total", "bytes skipped as gaps by stream readers",
             c.streams.gap_bytes);
  r->Counter("stream_skips", "zerotrace_stream_skips_total",
             "bytes the kernel deliberately did not copy (HTTP/1 bodies after a whole head), "
             "as ranges that reached a stream's reader",
             c.streams.skips);
  r->Counter(nullptr, "zerotrace_stream_skipped_bytes_total",
             "bytes the kernel deliberately did not copy, passed over by stream readers",
             c.streams.skipped_bytes);
  r->Counter("stream_bytes_dropped_cap", "zerotrace_stream_bytes_dropped_cap_total",
             "captured bytes turned into a gap by a stream's buffer cap",
             c.streams.bytes_dropped_cap);
  r->Counter(nullptr, "zerotrace_stream_bytes_duplicate_total",
             "captured bytes that arrived twice (overlapping records)", c.streams.bytes_duplicate);
  r->Counter("conns_tail_lost", "zerotrace_conns_tail_lost_total",
             "connections closed with their last bytes lost on the way (a gap at the end)",
             c.tail_lost_at_close);
  r->Counter(nullptr, "zerotrace_conns_process_exit_total",
             "connections ended by their process's exit", c.proc_exit_closed);
  r->Counter(nullptr, "zerotrace_conns_expired_idle_total",
             "connections freed after the idle timeout", c.expired_idle);
  r->Counter("conns_evicted", "zerotrace_conns_evicted_total",
             "connections evicted at the table's cap", c.evicted_cap);
  r->Counter("conns_kernel_evicted", "zerotrace_conns_kernel_evicted_total",
             "connections the kernel's table dropped without a close (LRU eviction), found when "
             "their fd opened again",
             c.kernel_evicted);
  r->Counter("conns_data_unknown", "zerotrace_conns_data_unknown_total",
             "data events for connections whose open event was lost", c.data_unknown_conn);
  r->Counter(nullptr, "zerotrace_conns_agent_peer_total",
             "connections whose peer is the agent's own export (ignored)", c.agent_peer_conns);
  r->Counter("conns_deselected", "zerotrace_conns_deselected_total",
             "connections the include/exclude selectors leave out (payload muted)",
             c.deselected_conns);
  r->Counter("conns_undecided", "zerotrace_conns_selector_undecided_total",
             "connections left out because /proc could not tell whether the selectors match "
             "(exe, cgroup or network namespace unreadable)",
             c.undecided_conns);
  r->Counter(nullptr, "zerotrace_stage_items_total", kStageItemsHelp, c.events[ZT_EV_DATA],
             {{"stage", "conn"}});
  r->Gauge(nullptr, "zerotrace_tracked_connections", "connections in the connection table",
           conns_.size());
  if (processes_) {
    const ProcessCacheStats& p = processes_->stats();
    r->Counter(nullptr, "zerotrace_process_reads_total", "processes whose /proc entries were read",
               p.reads);
    r->Counter("process_reads_late", "zerotrace_process_reads_late_total",
               "process reads that did not finish in time (the kernel's comm named the process "
               "until they did)",
               p.late);
  }
}

}  // namespace zerotrace::conn
