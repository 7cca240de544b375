// SpanLinker: gives every request its span id when it starts and its parent when the
// evidence leaves no doubt, then releases finished spans once their trace id is known.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/counters.h"
#include "trace/span.h"

namespace zerotrace::trace {

// The two ends of a request's TCP connection, as the side reporting it knows them.
struct ConnEnds {
  bool known = false;                     // false: the tuple is unknown (its open event was lost)
  std::array<uint8_t, 16> client_addr{};  // IPv6, or IPv4 as v4-mapped IPv6
  std::array<uint8_t, 16> server_addr{};
  uint16_t client_port = 0;
  uint16_t server_port = 0;
  // Network namespace (inode) of the reporting process: loopback tuples are only unique in it.
  uint64_t netns = 0;
  // Stream positions count from the connection's first byte (it opened while traced), so both
  // sides number the same request byte alike.
  bool from_start = false;
};

// What is known of a request when its head has been parsed.
struct RequestStart {
  uint32_t tgid = 0;
  uint32_t tid = 0;  // thread that read (server) or wrote (client) the request's first byte
  bool server = false;
  uint64_t start_ns = 0;  // monotonic time of the request's first byte
  ConnEnds conn;
  uint64_t stream_pos = 0;  // position of that byte in the client→server stream
  // What a proxy forwarding the request repeats (HTTP: "METHOD target"): a call with the same
  // operation as exactly one request in flight serves that request.
  std::string_view operation;
  std::string_view correlation;  // a request-id value it carries (see IsCorrelationHeader)
  std::string_view traceparent;  // the propagated W3C context, raw; empty when absent
  std::string_view tracestate;
  // The process runs a runtime known to move requests between threads (Go).
  bool threads_migrate = false;
  uint64_t conn_id = 0;  // the connection, unique on this node (0: unknown)
  // Calls: goroutine evidence (Go) that the call serves a request of this process's server
  // connection served_conn_id, the one in flight at served_since_ns (0: at start_ns).
  uint64_t served_conn_id = 0;
  uint64_t served_since_ns = 0;
  // The request shares its connection with others (HTTP/2 streams), so the thread that read it
  // need not serve it: calls its process makes are judged process-wide, as for Go.
  bool multiplexed = false;
  // Calls (--propagate-context): the kernel inserted `traceparent: 00-T-S-01` into this
  // request, T the trace it judged the sending thread to serve, S the span id it chose.
  bool kernel_ctx = false;
  TraceId kernel_trace_id;
  SpanId kernel_span_id;
};

// The request-id headers that count as evidence: the same value on a call and on one request
// in flight identifies the request the call serves. Values shorter than 8 bytes do not count.
inline constexpr std::string_view kCorrelationHeaders[] = {
    "x-request-id",          "x-correlation-id", "request-id",   "x-amzn-trace-id",
    "x-cloud-trace-context", "x-b3-traceid",     "uber-trace-id"};
bool IsCorrelationHeader(std::string_view lowercase_name);
// Hot path (every request header): false when name, in any case, cannot be one of
// kCorrelationHeaders (no header of its length ends in its last letter), without a lowercase
// copy. Most names (Host, User-Agent, Accept) stop here.
inline bool MayBeCorrelationHeader(std::string_view name) {
  if (name.empty()) return false;
  const char last = static_cast<char>(name.back() | 0x20);  // ASCII letters to lowercase
  for (std::string_view h : kCorrelationHeaders) {
    if (name.size() == h.size() && last == h.back()) return true;
  }
  return false;
}
// The path prefix rewrite that turns a request's operation into a call's ("-/api" or "+/v1"),
// or empty (see span_linker.cc): the evidence of link_forwarded_rewritten.
std::string PrefixRewrite(std::string_view request_operation, std::string_view call_operation);
inline constexpr size_t kMinCorrelationBytes = 8;

struct SpanLinkerStats {
  uint64_t requests = 0;
  uint64_t link_traceparent = 0;  // server spans that joined the caller's W3C trace
  uint64_t link_peer = 0;         // server spans parented by the same-node client span
  // Calls made while their thread served exactly one request (or their process, when its
  // runtime moves requests between threads).
  uint64_t link_thread = 0;
  uint64_t link_forwarded = 0;            // calls repeating the operation of one request
  uint64_t link_forwarded_rewritten = 0;  // ...up to a learned path prefix rewrite (proxies)
  uint64_t rewrites_learned = 0;          // prefix rewrites seen on unambiguous pairs
  uint64_t link_correlation = 0;          // calls carrying the request id of one request
  uint64_t link_propagated = 0;  // calls carrying the W3C trace id that one request carried
  uint64_t link_ambiguous = 0;   // calls left unparented: several requests, no evidence
  uint64_t client_roots = 0;     // calls made while their thread served no request
  uint64_t server_roots = 0;     // requests whose caller is not traced on this node
  uint64_t cycles_refused = 0;   // links that would have closed a loop
  uint64_t abandoned = 0;        // requests that never finished (freed by age or cap)
  uint64_t unstarted = 0;        // finished spans whose start was never reported
  uint64_t spans_released = 0;
  // Calls whose goroutine (or its ancestor) served exactly one request in flight (Go).
  uint64_t link_goroutine = 0;
  // Calls with goroutine evidence but no single request of its connection in flight then:
  // left unparented (the evidence rules the other rules out).
  uint64_t link_goroutine_unserved = 0;
  // --propagate-context: calls whose kernel-chosen span id was taken (their trace is the one
  // the kernel put on the wire), and calls whose trace differed (own ids kept).
  uint64_t ctx_adopted = 0;
  uint64_t ctx_disagree = 0;
};

class SpanLinker {
 public:
  using Sink = std::function<void(Span&&)>;
  struct Options {
    // How long a server span waits for its same-node caller (whose event may come later).
    uint64_t peer_wait_ns = 2'000'000'000;
    // Requests older than this that have not finished are given up.
    uint64_t max_age_ns = 120'000'000'000;
    size_t max_records = 1 << 18;  // beyond: the oldest record is given up
    // --propagate-context: roots on IPv4 connections traced from their start get the trace id
    // zt_ctx_trace_id(salt, ...) the kernel computes at the server's read (zerotrace/ctx_hash.h).
    bool hashed_roots = false;
    uint64_t root_salt = 0;
  };

  explicit SpanLinker(Sink sink) : SpanLinker(std::move(sink), Options()) {}
  SpanLinker(Sink sink, Options options);

  // Hot path. A request started; its span id is fixed now. Returns the handle for Finish.
  uint64_t Start(const RequestStart& r);
  // Hot path. The request's exchange finished: `span` gets its ids and leaves once its trace
  // id is known. `response_tid` wrote the response's first byte (0 if unknown).
  void Finish(uint64_t handle, Span&& span, uint64_t end_ns, uint32_t response_tid);
  // Hot path. Finish with the span built in *slot, which then holds storage for the next span:
  // its own when the span left at once (what the sink left in it), else a spare (the span waits
  // in its record). A span's storage thus stays where it is built, where Finish's caller
  // moved it out and TakeSpare moved it back (a Span's move is ~150 instructions).
  void FinishInSlot(uint64_t handle, Span* slot, uint64_t end_ns, uint32_t response_tid);
  // A span whose start was never reported (no handle): released as a root.
  void FinishUnstarted(Span&& span);
  // The request will never finish (its connection is gone).
  void Abandon(uint64_t handle);
  // Monotonic time passed: server spans stop waiting for callers; old state is freed.
  void Tick(uint64_t now_ns);
  // Resolves everything still waiting and releases every finished span (shutdown).
  void Flush();

  const SpanLinkerStats& stats() const { return stats_; }
  size_t records() const { return live_; }
  // The linker's counters and gauges.
  void ReportCounters(CounterReport* report) const;

 private:
  struct PeerKey {
    std::array<uint8_t, 16> client_addr, server_addr;
    uint16_t client_port, server_port;
    uint64_t stream_pos;
    bool operator==(const PeerKey&) const = default;
  };
  struct PeerKeyHash {
    size_t operator()(const PeerKey& k) const;
  };
  using PeerMap = std::unordered_map<PeerKey, uint64_t, PeerKeyHash>;
  // What the kernel can compute of a root's trace id, and what it put on the wire of a call.
  struct ContextEvidence {
    bool hashable = false;  // an IPv4 connection traced from its start
    uint16_t client_port = 0, server_port = 0;
    uint32_t client_ip = 0, server_ip = 0;
    uint64_t stream_pos = 0;
    bool kernel = false;  // the kernel inserted a traceparent with these ids
    TraceId kernel_trace_id;
    SpanId kernel_span_id;
  };
  struct Record {
    uint32_t tgid = 0, tid = 0;
    uint64_t netns = 0;
    uint64_t conn_id = 0;
    bool server = false;
    uint64_t start_ns = 0, end_ns = 0;
    bool finished = false;
    bool released = false;
    bool resolved = false;  // trace_id is final
    bool in_thread_index = false;
    // While in_thread_index: its lists in serving_ (its thread's, its process's).
    std::vector<uint64_t>* thread_list = nullptr;
    std::vector<uint64_t>* process_list = nullptr;
    std::optional<PeerKey> peer;  // set while waiting in peers_
    SpanId span_id, parent_span_id;
    TraceId trace_id;
    std::string trace_state;
    uint64_t parent = 0;                 // handle of a parent linked here (0: none / remote)
    std::vector<uint64_t> waiters;       // children waiting for this record's trace id
    std::string operation, correlation;  // servers: evidence for calls they make
    TraceId carried_trace;               // servers: the trace id of their traceparent, if any
    std::optional<Span> span;
    ContextEvidence ctx;
  };

  // Hot path (several times per request).
  Record* Find(uint64_t handle) {
    const uint64_t index = (handle & 0xffffffffULL) - 1;  // handles are never 0
    if (index >= slot_count_) return nullptr;
    Slot& s = slot(index);
    return s.live && s.gen == (handle >> 32) ? &s.rec : nullptr;
  }
  uint64_t Allocate();
  static PeerKey KeyOf(const RequestStart& r);
  static bool SameNetwork(const Record& other, const RequestStart& r);
  void LinkCall(uint64_t handle, const RequestStart& r);
  // The goroutine rule (span_linker_go.cc): the parent the evidence names, or 0.
  uint64_t GoroutineParent(uint64_t handle, const RequestStart& r);
  void LinkServed(uint64_t handle, Record& served, const RequestStart& r);
  void LearnRewrite(uint32_t tgid, std::string_view request_op, std::string_view call_op);
  uint64_t MatchPeer(uint64_t handle, const RequestStart& r);
  // Makes `child` a child of `parent` (both here); false if that would close a loop.
  bool Adopt(uint64_t parent_handle, uint64_t child_handle);
  void Resolve(uint64_t handle, const TraceId& trace_id);
  void ResolveAsRoot(uint64_t handle);
  // span_linker_ctx.cc (--propagate-context).
  void NoteContext(Record& rec, const RequestStart& r) const;
  TraceId RootTraceId(const Record& rec) const;
  // The record's trace is now `id`: takes the kernel's span id if the kernel put it in `id`.
  void JudgeKernelContext(Record& rec);
  void Release(Record& r);
  // Hands `s` to the sink with the record's ids; what the sink leaves in it becomes a spare.
  void Emit(const Record& r, Span& s);
  // Hands `s` to the sink with the record's ids; what the sink leaves in it stays in `s`.
  void Deliver(const Record& r, Span& s);
  // Keeps what is left in `s` as a spare, if it has storage worth keeping and there is room.
  void KeepSpare(Span& s);
  // *into becomes storage for the next span: one the sink handed back when it took a span, or
  // an empty one (FinishInSlot, when the span it finished must wait in its record).
  void TakeSpare(Span* into);
  void DropFromThreadIndex(uint64_t handle, Record& r);
  void DropPeer(Record& r);
  void InsertPeer(const PeerKey& key, uint64_t handle);
  void ErasePeer(PeerMap::iterator it);
  void Free(uint64_t handle);
  // A freed slot's record, emptied: strings and lists up to this many bytes keep their storage.
  static constexpr size_t kMaxKeptBytes = 256;
  // Free slots past this many keep no storage (ResetRecord).
  static constexpr size_t kKeptStorageSlots = 1024;
  static void ResetRecord(Record& rec, bool keep_storage);
  bool Freeable(const Record& r) const;

  Sink sink_;
  Options options_;
  // Spans the sink handed back, with their storage, for TakeSpare; a few are enough (the
  // consumer builds spans one at a time).
  static constexpr size_t kMaxSpares = 16;
  std::vector<Span> spares_;
  uint64_t now_ns_ = 0;
  uint64_t next_sweep_ns_ = 0;
  // Records live in reused slots; a handle is (generation << 32) | (slot index + 1), so a
  // stale handle finds nothing. No hashing and no allocation per request in steady state.
  struct Slot {
    uint32_t gen = 1;
    bool live = false;
    Record rec;
  };
  // Slots come in fixed chunks, so growing moves no record. (A vector's doubling copied every
  // live record and held both copies meanwhile: 12.6 MB at the peak of 10 k requests in
  // flight, for 5 MB of records.)
  static constexpr size_t kSlotsPerChunk = 256;
  Slot& slot(size_t index) { return slot_chunks_[index / kSlotsPerChunk][index % kSlotsPerChunk]; }
  std::vector<std::unique_ptr<Slot[]>> slot_chunks_;
  size_t slot_count_ = 0;
  std::vector<uint32_t> free_;
  size_t live_ = 0;
  std::deque<uint64_t> order_;  // handles by start (records and freed ones alike)
  // Server requests in flight, per (tgid, tid) of the thread that read them, and per process
  // under (tgid, 0).
  std::unordered_map<uint64_t, std::vector<uint64_t>> serving_;
  // Processes seen answering a request from another thread than the one that read it.
  std::unordered_set<uint32_t> migrating_;
  // Path prefix rewrites each process was seen making on unambiguous pairs (see PrefixRewrite).
  static constexpr size_t kMaxRewritesPerProcess = 8;
  std::unordered_map<uint32_t, std::unordered_set<std::string>> rewrites_;
  // Requests waiting for their other side on this node, by mirrored connection + position.
  PeerMap peers_;
  static constexpr size_t kSparePeerNodes = 256;
  std::vector<PeerMap::node_type> spare_peer_nodes_;
  std::vector<uint64_t> in_flight_scratch_;                   // LinkCall's candidates
  std::deque<std::pair<uint64_t, uint64_t>> peer_deadlines_;  // (deadline, handle), FIFO
  SpanLinkerStats stats_;
};

}  // namespace zerotrace::trace
