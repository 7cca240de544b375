// The connection table: (tgid, fd, generation) -> tuple, role, process, two byte streams.
#pragma once

#include <zerotrace/events.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "base/counters.h"
#include "base/u64_table.h"
#include "conn/byte_stream.h"
#include "conn/process_info.h"
#include "conn/tuple.h"
#include "probes/event_decode.h"

namespace zerotrace::conn {

// Per-protocol state a later stage hangs on a connection; owned by the connection.
class ConnAttachment {
 public:
  virtual ~ConnAttachment() = default;
};

// Where a syscall's records stand in one direction (to turn uncaptured bytes into gaps).
struct SyscallCursor {
  uint64_t syscall_pos = UINT64_MAX;  // syscall whose records are arriving
  uint64_t covered_to = 0;            // stream position after the last delivered byte
};

struct Connection {
  uint64_t conn_id = 0;
  uint32_t tgid = 0;
  uint32_t fd = 0;
  uint8_t role = ZT_ROLE_UNKNOWN;  // enum zt_role
  bool preexisting = false;        // found on first use: stream positions start mid-way
  bool open_seen = false;          // false: the open event was lost, tuple unknown
  bool agent_peer = false;         // the other end is the agent itself (its OTLP export)
  bool selection_decided = false;  // the selectors have judged it (at its first bytes)
  bool deselected = false;         // not selected (or undecided): no bytes kept, none parsed
  // A later stage parses none of its bytes and had the kernel mute them: the kernel now sends
  // a sizes-only record at most once a second (liveness), its positions jumping over the
  // syscalls in between. No bytes kept, no gaps: its records only refresh last_ts_ns.
  bool muted = false;
  // TLS plaintext arrived: the streams hold plaintext (positions of the TLS calls, from 0)
  // and the connection's socket bytes, being ciphertext, are ignored.
  bool tls = false;
  Tuple tuple;
  std::string comm;              // the opening thread's name, from the kernel (open event)
  bool comm_of_process = false;  // that thread was the main one: comm is the process's name
  std::shared_ptr<const ProcessInfo> process;  // null without a process cache
  uint64_t open_ts_ns = 0;
  uint64_t last_ts_ns = 0;
  ByteStream sent;      // egress: what this process wrote
  ByteStream received;  // ingress: what this process read
  SyscallCursor sent_cursor, received_cursor;
  // Goroutine evidence for the next request this (client) connection sends: the request whose
  // first byte is at send_pos is a call made for a request of server connection served_conn_id
  // (the one in flight at served_since_ns; 0: at the call's start). See zt_go_call_event.
  struct GoCall {
    uint64_t send_pos = 0;
    uint64_t served_conn_id = 0;
    uint64_t served_since_ns = 0;
  };
  std::optional<GoCall> go_call;
  // --propagate-context: the kernel inserted a traceparent with these ids into the request
  // this (client) connection's thread `tid` sends next (zt_ctx_event).
  struct CtxCall {
    uint32_t tid = 0;
    std::array<uint8_t, 16> trace_id{};
    std::array<uint8_t, 8> span_id{};
  };
  std::optional<CtxCall> ctx_call;
  std::unique_ptr<ConnAttachment> attachment;

  ByteStream& stream(uint8_t direction) { return direction == ZT_DIR_EGRESS ? sent : received; }
  const ProcessInfo& process_info() const {
    static const ProcessInfo kUnknown;
    return process ? *process : kUnknown;
  }
};

// Why a connection left the table.
enum class CloseCause { kClose, kReset, kFdReuse, kProcessExit, kIdle, kEvicted, kShutdown };
const char* CloseCauseName(CloseCause c);

// One data record as it reached a stream: where its bytes sit and which syscall moved them.
struct DataChunk {
  uint8_t direction = ZT_DIR_EGRESS;  // enum zt_direction
  uint64_t ts_ns = 0;                 // the record's time (CLOCK_MONOTONIC)
  uint64_t syscall_pos = 0;           // stream position of the syscall's first byte
  uint64_t stream_pos = 0;            // position of the record's first captured byte
  uint32_t captured = 0;              // bytes placed (0: a trailer, the rest of the call is a gap)
  // The record starts at its syscall's first byte: a message may start there.
  bool at_syscall_start() const { return captured > 0 && stream_pos == syscall_pos; }
};

// The next stage (protocol parsing). Called on the consumer thread.
class ConnObserver {
 public:
  virtual ~ConnObserver() = default;
  virtual void OnOpen(Connection&) {}
  // Hot path: new bytes or gaps in `chunk.direction`'s stream.
  virtual void OnData(Connection&, const DataChunk& /*chunk*/) {}
  // The connection turned out to carry TLS: its streams are about to be replaced by empty
  // plaintext streams, so state built on the old bytes must go.
  virtual void OnStreamsReplaced(Connection&) {}
  // Last call before the connection is freed; streams have had their holes declared.
  virtual void OnClose(Connection&, CloseCause) {}
};

// Frees kernel-side state the kernel cannot free itself (process exit skips close()).
class KernelConnState {
 public:
  virtual ~KernelConnState() = default;
  virtual void Forget(uint32_t tgid, uint32_t fd) = 0;
  // The connection carries nothing we parse: the kernel may stop copying its payload (its
  // TLS plaintext when `tls_plaintext`, else its socket bytes).
  virtual void MutePayload(uint32_t /*tgid*/, uint32_t /*fd*/, uint64_t /*conn_id*/,
                           bool /*tls_plaintext*/) {}
  // Each syscall in one direction of the connection (its sends when `egress`, else its
  // receives) may copy only its first `cap` bytes (0: lifts the cap); the rest arrives as a gap
  // of known length. Of its TLS plaintext when `tls_plaintext`.
  virtual void CapPayload(uint32_t /*tgid*/, uint32_t /*fd*/, uint64_t /*conn_id*/,
                          uint32_t /*cap*/, bool /*tls_plaintext*/, bool /*egress*/) {}
};

struct ConnTableLimits {
  size_t max_connections = 65536;              // beyond: the least recently active is evicted
  size_t stream_byte_cap = 1 << 20;            // buffered captured bytes per direction
  uint64_t idle_timeout_ns = 300'000'000'000;  // no events for this long: freed
};

struct ConnTableStats {
  uint64_t events[8] = {};         // by enum zt_event_type
  uint64_t data_unknown_conn = 0;  // data for a conn whose open event was lost
  uint64_t opened = 0, closed = 0, fd_reused = 0, proc_exit_closed = 0;
  uint64_t expired_idle = 0, evicted_cap = 0;
  // Live connections whose fd opened anew with no close first: the kernel's LRU table evicted
  // them (or their close record was lost); freed as evicted.
  uint64_t kernel_evicted = 0;
  uint64_t stale_close = 0;         // close for a conn not in the table
  uint64_t tail_lost_at_close = 0;  // closes whose streams' last bytes never arrived (drops)
  uint64_t agent_peer_conns = 0;    // connections whose peer is the agent itself (ignored)
  uint64_t deselected_conns = 0;    // connections the selectors leave out (payload muted)
  uint64_t undecided_conns = 0;     // connections left out because /proc could not tell
  uint64_t tls_conns = 0;           // connections whose streams became TLS plaintext
  uint64_t ciphertext_ignored = 0;  // socket-byte events of TLS connections, dropped
  ByteStreamStats streams;          // every tracked stream's, summed
  // Goroutine evidence (ZT_EV_GO_CALL) for a connection not in the table: dropped.
  uint64_t go_call_unknown_conn = 0;
  // Inserted-context records (ZT_EV_CTX) that named no connection of the table: dropped.
  uint64_t ctx_unknown_conn = 0;
};

class ConnTable {
 public:
  ConnTable(ConnTableLimits limits, ConnObserver* observer, KernelConnState* kernel,
            ProcessCache* processes);
  ~ConnTable();

  // Hot path: applies one decoded ring-buffer record.
  void OnEvent(const probes::EventView& ev);
  // Frees connections idle since before now_ns - idle_timeout (call about once a second).
  void ExpireIdle(uint64_t now_ns);
  // Closes everything (agent exit) so observers can flush.
  void CloseAll();
  // Process info read since (ProcessCache::Drain, when /proc is read on its own thread) goes
  // to the connections of those processes (call about once per poll).
  void RefreshProcesses();

  // What the selectors say about a connection, asked once at its first bytes; null: all
  // are traced. A connection left out is muted in the kernel and never reaches the observer.
  enum class Selection { kTrace, kSkip, kUndecided };
  using ConnSelector = std::function<Selection(const Connection&)>;
  void set_selector(ConnSelector selector) { selector_ = std::move(selector); }

  Connection* Find(uint64_t conn_id);
  // Calls fn on every live connection (not on the hot path: timers and diagnostics).
  template <typename Fn>
  void ForEach(Fn&& fn) {
    conns_.ForEach([&fn](uint64_t, std::unique_ptr<Connection>& c) { fn(*c); });
  }
  size_t size() const { return conns_.size(); }
  size_t ConnectionsOf(uint32_t tgid) const;
  const ConnTableStats& stats() const { return stats_; }
  // The table's counters and gauges (consumer thread).
  void ReportCounters(CounterReport* report) const;

 private:
  Connection& Open(const zt_event_header& h);
  void Remove(uint64_t conn_id, CloseCause cause);
  void OnData(const zt_data_event& d, std::string_view payload);
  void OnCtx(const zt_ctx_event& e);
  void SwitchToPlaintext(Connection& c);
  void EvictOldest();
  void RememberAgentConn(const zt_conn_open& o);
  static std::string TupleKey(const Tuple& t);
  static uint64_t FdKey(uint32_t tgid, uint32_t fd) { return uint64_t{tgid} << 32 | fd; }
  void ForgetKernelEvicted(const zt_event_header& h);

  ConnTableLimits limits_;
  ConnObserver* observer_;
  KernelConnState* kernel_;
  ProcessCache* processes_;
  U64Table<std::unique_ptr<Connection>> conns_;  // hot path: one lookup per record
  std::unordered_map<uint32_t, std::unordered_set<uint64_t>> by_tgid_;
  std::unordered_map<uint64_t, uint64_t> by_fd_;  // (tgid << 32 | fd) -> conn_id
  ConnTableStats stats_;
  ConnSelector selector_;
  // Tuples of the agent's own connections, as their peers see them (mirrored); bounded.
  std::unordered_set<std::string> agent_peers_;
  std::deque<std::string> agent_peers_order_;
};

}  // namespace zerotrace::conn
