// SpanLinker: the linking rules of DESIGN.md ("Linking"), applied as requests start.
#include "trace/span_linker.h"

#include <algorithm>
#include <cstring>

#include "trace/w3c.h"

namespace zerotrace::trace {
namespace {

// Completed server requests whose response another thread wrote stay candidates this long.
constexpr uint64_t kOtherThreadGraceNs = 1'000'000'000;
constexpr uint64_t kSweepEveryNs = 1'000'000'000;
constexpr int kMaxDepth = 64;  // parent chains longer than this are not followed
constexpr size_t kMaxMigratingProcesses = 65536;

uint64_t ThreadKey(uint32_t tgid, uint32_t tid) { return (uint64_t{tgid} << 32) | tid; }

bool IsLoopback(const std::array<uint8_t, 16>& a) {
  static constexpr std::array<uint8_t, 16> kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0,
                                                          0, 0, 0, 0, 0, 0, 0, 1};
  if (a == kV6Loopback) return true;
  for (int i = 0; i < 10; i++) {
    if (a[i] != 0) return false;
  }
  return a[10] == 0xff && a[11] == 0xff && a[12] == 127;  // 127.0.0.0/8, v4-mapped
}

}  // namespace

size_t SpanLinker::PeerKeyHash::operator()(const PeerKey& k) const {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over the fields
  auto mix = [&h](uint64_t v) {
    h ^= v;
    h *= 1099511628211ULL;
  };
  for (size_t i = 0; i < 16; i += 8) {
    uint64_t a, b;  // 8 address bytes at a time, in host order (the hash stays in the process)
    std::memcpy(&a, k.client_addr.data() + i, 8);
    std::memcpy(&b, k.server_addr.data() + i, 8);
    mix(a);
    mix(b);
  }
  mix((uint64_t{k.client_port} << 16) | k.server_port);
  mix(k.stream_pos);
  return h;
}

SpanLinker::SpanLinker(Sink sink, Options options) : sink_(std::move(sink)), options_(options) {}

SpanLinker::PeerKey SpanLinker::KeyOf(const RequestStart& r) {
  return {r.conn.client_addr, r.conn.server_addr, r.conn.client_port, r.conn.server_port,
          r.stream_pos};
}

// Loopback tuples are only unique inside a network namespace; an unknown namespace matches.
bool SpanLinker::SameNetwork(const Record& other, const RequestStart& r) {
  if (other.netns == 0 || r.conn.netns == 0 || other.netns == r.conn.netns) return true;
  return !IsLoopback(r.conn.client_addr) && !IsLoopback(r.conn.server_addr);
}

uint64_t SpanLinker::Start(const RequestStart& r) {
  const uint64_t handle = Allocate();
  stats_.requests++;
  now_ns_ = std::max(now_ns_, r.start_ns);
  Record& rec = *Find(handle);
  rec.tgid = r.tgid;
  rec.tid = r.tid;
  rec.server = r.server;
  rec.start_ns = r.start_ns;
  rec.netns = r.conn.netns;
  rec.conn_id = r.conn_id;
  rec.span_id = NewSpanId();
  NoteContext(rec, r);
  order_.push_back(handle);
  if (r.server) {
    LinkServed(handle, rec, r);
  } else {
    LinkCall(handle, r);
  }
  while (live_ > options_.max_records && !order_.empty()) {
    const uint64_t oldest = order_.front();
    order_.pop_front();
    if (oldest == handle) {
      order_.push_back(handle);
      break;
    }
    if (Record* o = Find(oldest)) {
      if (!o->finished) stats_.abandoned++;
      if (!o->resolved) ResolveAsRoot(oldest);
      Free(oldest);
    }
  }
  return handle;
}

// Remembers a prefix rewrite seen on an unambiguous pair (one request in flight on the thread),
// so that later, under concurrency, the same rewrite counts as evidence (link_forwarded_rewritten).
void SpanLinker::LearnRewrite(uint32_t tgid, std::string_view request_op,
                              std::string_view call_op) {
  std::string rw = PrefixRewrite(request_op, call_op);
  if (rw.empty()) return;
  if (rewrites_.size() >= kMaxMigratingProcesses && rewrites_.count(tgid) == 0) rewrites_.clear();
  auto& set = rewrites_[tgid];
  if (set.size() >= kMaxRewritesPerProcess || !set.insert(std::move(rw)).second) return;
  stats_.rewrites_learned++;
}

// Rule 3: a call made while its thread serves a request is that request's child, when the
// evidence leaves no doubt. Rule 2 (the callee's side) is settled here too if it came first.
void SpanLinker::LinkCall(uint64_t handle, const RequestStart& r) {
  std::vector<uint64_t>& in_flight = in_flight_scratch_;  // reused: no allocation per call
  in_flight.clear();
  // A runtime that moves a request between threads (Go, work-stealing pools: seen as responses
  // written by another thread than the request's reader) makes the thread prove nothing: the
  // candidates are then every request the process is serving.
  const bool unstable = r.threads_migrate || migrating_.count(r.tgid) != 0;
  const uint64_t scope = ThreadKey(r.tgid, unstable ? 0 : r.tid);
  // Goroutine evidence (Go) names the request's connection: it rules the other rules out.
  const bool by_goroutine = r.served_conn_id != 0;
  if (auto it = by_goroutine ? serving_.end() : serving_.find(scope); it != serving_.end()) {
    for (uint64_t h : it->second) {
      const Record* s = Find(h);
      if (s == nullptr || h == handle) continue;
      if (s->start_ns > r.start_ns) continue;  // started after the call
      if (s->finished && s->end_ns < r.start_ns) continue;
      in_flight.push_back(h);
    }
  }
  uint64_t parent = 0;
  if (by_goroutine) {
    parent = GoroutineParent(handle, r);
  } else if (in_flight.size() == 1) {
    parent = in_flight[0];
    stats_.link_thread++;
    LearnRewrite(r.tgid, Find(parent)->operation, r.operation);
  } else if (in_flight.size() > 1) {
    // Evidence a call repeats from the request it serves: its operation (a proxy), a request id,
    // the trace id of a W3C context passed on (as received, or under a span of the process's
    // own). Each names the candidates that share it; a link needs one named by some evidence
    // and contradicted by none.
    std::vector<uint64_t> forwarded, correlated, propagated;
    const std::optional<TraceParent> call_tp = ParseTraceParent(r.traceparent);
    for (uint64_t h : in_flight) {
      const Record& s = *Find(h);
      if (s.operation == r.operation) forwarded.push_back(h);
      if (r.correlation.size() >= kMinCorrelationBytes && s.correlation == r.correlation) {
        correlated.push_back(h);
      }
      if (call_tp && s.carried_trace == call_tp->trace_id) propagated.push_back(h);
    }
    auto agree = [](const std::vector<uint64_t>& v, uint64_t h) {
      return v.empty() || std::find(v.begin(), v.end(), h) != v.end();
    };
    if (propagated.size() == 1 && agree(correlated, propagated[0]) &&
        agree(forwarded, propagated[0])) {
      parent = propagated[0];
      stats_.link_propagated++;
    } else if (correlated.size() == 1 && agree(forwarded, correlated[0]) &&
               agree(propagated, correlated[0])) {
      parent = correlated[0];
      stats_.link_correlation++;
    } else if (forwarded.size() == 1 && agree(correlated, forwarded[0]) &&
               agree(propagated, forwarded[0])) {
      parent = forwarded[0];
      stats_.link_forwarded++;
    } else if (correlated.empty() && forwarded.empty() && propagated.empty()) {
      // A proxy rewriting a prefix ("/api/orders/7" -> "/orders/7"), a rewrite this process
      // was seen making when nothing else was in flight: exactly one request in flight whose
      // target the call's is, up to that prefix.
      uint64_t only = 0;
      int matches = 0;
      if (auto learned = rewrites_.find(r.tgid); learned != rewrites_.end()) {
        for (uint64_t h : in_flight) {
          const std::string rw = PrefixRewrite(Find(h)->operation, r.operation);
          if (!rw.empty() && learned->second.count(rw) != 0) {
            only = h;
            matches++;
          }
        }
      }
      if (matches == 1) {
        parent = only;
        stats_.link_forwarded_rewritten++;
      } else {
        stats_.link_ambiguous++;
      }
    } else {
      stats_.link_ambiguous++;
    }
  } else {
    stats_.client_roots++;
  }
  if (parent == 0 || !Adopt(parent, handle)) {
    // A root here. An instrumented caller's own context, if it sent one, names the trace.
    Record& self = *Find(handle);
    if (auto tp = ParseTraceParent(r.traceparent)) {
      self.parent_span_id = tp->parent_id;
      self.trace_state.assign(r.tracestate);
      Resolve(handle, tp->trace_id);
    } else {
      ResolveAsRoot(handle);
    }
  }

  if (!r.conn.known || !r.conn.from_start) return;
  if (const uint64_t served = MatchPeer(handle, r)) {  // its server side came first
    if (Adopt(handle, served)) {
      stats_.link_peer++;
    } else {
      stats_.server_roots++;
      ResolveAsRoot(served);
    }
  }
}

// Rule 2's index, by mirrored connection and stream position: returns the other side of r's
// exchange if it is waiting (and takes it out), else leaves `handle` waiting for it.
uint64_t SpanLinker::MatchPeer(uint64_t handle, const RequestStart& r) {
  const PeerKey key = KeyOf(r);
  if (auto it = peers_.find(key); it != peers_.end()) {
    const uint64_t other_handle = it->second;
    Record* other = Find(other_handle);
    ErasePeer(it);
    if (other != nullptr) other->peer.reset();
    if (other != nullptr && other->server != r.server && SameNetwork(*other, r)) {
      return other_handle;
    }
    // Otherwise an older request under the same key (or another namespace's): it waits no more.
  }
  Record& self = *Find(handle);
  self.peer = key;
  InsertPeer(key, handle);
  peer_deadlines_.emplace_back(r.start_ns + options_.peer_wait_ns, handle);
  return 0;
}

// Rules 1 and 2: a request with a valid traceparent joins that trace; otherwise its caller on
// this node (the mirrored connection, the same stream position) is its parent.
void SpanLinker::LinkServed(uint64_t handle, Record& served, const RequestStart& r) {
  served.operation.assign(r.operation);  // assign: a reused record keeps its capacity
  served.correlation.assign(r.correlation);
  served.thread_list = &serving_[ThreadKey(r.tgid, r.tid)];
  served.process_list = &serving_[ThreadKey(r.tgid, 0)];  // process-wide (no tid is 0)
  served.thread_list->push_back(handle);
  served.process_list->push_back(handle);
  served.in_thread_index = true;
  if (r.multiplexed && migrating_.count(r.tgid) == 0) {
    if (migrating_.size() >= kMaxMigratingProcesses) migrating_.clear();
    migrating_.insert(r.tgid);
  }

  if (auto tp = ParseTraceParent(r.traceparent)) {
    served.parent_span_id = tp->parent_id;
    served.trace_state.assign(r.tracestate);
    served.carried_trace = tp->trace_id;
    stats_.link_traceparent++;
    Resolve(handle, tp->trace_id);
    return;
  }
  if (!r.conn.known || !r.conn.from_start) {
    stats_.server_roots++;
    ResolveAsRoot(handle);
    return;
  }
  if (const uint64_t caller = MatchPeer(handle, r)) {
    if (Adopt(caller, handle)) {
      stats_.link_peer++;
      return;
    }
    stats_.server_roots++;
    ResolveAsRoot(handle);
  }
  // Otherwise it waits for its caller until Tick() gives up on it.
}

bool SpanLinker::Adopt(uint64_t parent_handle, uint64_t child_handle) {
  uint64_t h = parent_handle;
  for (int depth = 0; h != 0 && depth < kMaxDepth; depth++) {
    if (h == child_handle) {
      stats_.cycles_refused++;
      return false;
    }
    const Record* up = Find(h);
    h = up == nullptr ? 0 : up->parent;
  }
  Record& parent = *Find(parent_handle);
  Record& child = *Find(child_handle);
  child.parent = parent_handle;
  child.parent_span_id = parent.span_id;
  if (parent.resolved) {
    const TraceId trace_id = parent.trace_id;
    Resolve(child_handle, trace_id);
  } else {
    parent.waiters.push_back(child_handle);
  }
  return true;
}

// Fixes the trace id of `handle` and of every descendant waiting for it.
void SpanLinker::Resolve(uint64_t handle, const TraceId& trace_id) {
  Record* first = Find(handle);
  if (first == nullptr || first->resolved) return;
  if (first->waiters.empty()) {  // hot path: most have no waiters, and need no list
    first->trace_id = trace_id;
    first->resolved = true;
    if (first->ctx.kernel) JudgeKernelContext(*first);
    if (first->finished && !first->released) Release(*first);
    if (Freeable(*first)) Free(handle);
    return;
  }
  std::vector<std::pair<uint64_t, TraceId>> todo{{handle, trace_id}};
  while (!todo.empty()) {
    auto [h, id] = todo.back();
    todo.pop_back();
    Record* r = Find(h);
    if (r == nullptr || r->resolved) continue;
    r->trace_id = id;
    r->resolved = true;
    if (r->ctx.kernel) JudgeKernelContext(*r);
    for (uint64_t w : r->waiters) todo.emplace_back(w, id);
    r->waiters.clear();
    if (r->finished && !r->released) Release(*r);
    if (Freeable(*r)) Free(h);
  }
}

void SpanLinker::ResolveAsRoot(uint64_t handle) {
  const Record* r = Find(handle);
  if (r != nullptr) Resolve(handle, RootTraceId(*r));
}

void SpanLinker::Finish(uint64_t handle, Span&& span, uint64_t end_ns, uint32_t response_tid) {
  FinishInSlot(handle, &span, end_ns, response_tid);
  KeepSpare(span);
}

void SpanLinker::FinishInSlot(uint64_t handle, Span* slot, uint64_t end_ns,
                              uint32_t response_tid) {
  Span& span = *slot;
  Record* r = Find(handle);
  if (r == nullptr) {
    FinishUnstarted(std::move(span));
    return;
  }
  now_ns_ = std::max(now_ns_, end_ns);
  r->finished = true;
  r->end_ns = end_ns;
  // Same thread: every call it made while serving was reported before this response.
  if (r->in_thread_index && response_tid == r->tid) DropFromThreadIndex(handle, *r);
  if (r->server && response_tid != 0 && response_tid != r->tid) {
    if (migrating_.size() >= kMaxMigratingProcesses) migrating_.clear();
    migrating_.insert(r->tgid);
  }
  if (r->resolved) {
    // Released from where it lies: the record never holds it.
    r->released = true;
    Deliver(*r, span);
    if (Freeable(*r)) Free(handle);
  } else {
    r->span = std::move(span);
    TakeSpare(slot);
  }
}

void SpanLinker::FinishUnstarted(Span&& span) {
  stats_.unstarted++;
  stats_.spans_released++;
  span.trace_id = NewTraceId();
  span.span_id = NewSpanId();
  sink_(std::move(span));
}

void SpanLinker::Abandon(uint64_t handle) {
  Record* r = Find(handle);
  if (r == nullptr || r->finished) return;
  stats_.abandoned++;
  r->finished = true;  // nothing left to release
  r->released = true;
  r->end_ns = now_ns_;
  if (r->in_thread_index) DropFromThreadIndex(handle, *r);
  if (Freeable(*r)) Free(handle);
}

void SpanLinker::Release(Record& r) {
  r.released = true;
  if (!r.span) return;
  Emit(r, *r.span);
  r.span.reset();
}

void SpanLinker::Emit(const Record& r, Span& s) {
  Deliver(r, s);
  KeepSpare(s);
}

void SpanLinker::Deliver(const Record& r, Span& s) {
  s.trace_id = r.trace_id;
  s.span_id = r.span_id;
  s.parent_span_id = r.parent_span_id;
  s.trace_state = r.trace_state;
  stats_.spans_released++;
  sink_(std::move(s));
}

// What the sink left in s (an exported span, or nothing) is storage for the next span.
void SpanLinker::KeepSpare(Span& s) {
  if (s.attributes.capacity() > 0 && spares_.size() < kMaxSpares) spares_.push_back(std::move(s));
}

void SpanLinker::TakeSpare(Span* into) {
  if (spares_.empty()) {
    *into = Span();
    return;
  }
  *into = std::move(spares_.back());
  spares_.pop_back();
}

bool SpanLinker::Freeable(const Record& r) const {
  if (!r.resolved || !r.released || r.peer.has_value()) return false;
  return !r.in_thread_index || r.end_ns + kOtherThreadGraceNs < now_ns_;
}

// Hot path: the lists are the record's own pointers, no lookup. They stay valid while it is in
// them: the sweep erases only empty lists, and a map's nodes never move.
void SpanLinker::DropFromThreadIndex(uint64_t handle, Record& r) {
  r.in_thread_index = false;
  for (std::vector<uint64_t>* v : {r.thread_list, r.process_list}) {
    if (v == nullptr) continue;
    if (auto at = std::find(v->begin(), v->end(), handle); at != v->end()) {
      *at = v->back();
      v->pop_back();
    }
    // An emptied list stays until the sweep: a thread serving one request after another
    // would otherwise allocate and free a map node and a vector per request.
  }
  r.thread_list = r.process_list = nullptr;
}

// Every request waits in peers_ for a moment: its map nodes are recycled, not freed.
void SpanLinker::InsertPeer(const PeerKey& key, uint64_t handle) {
  if (spare_peer_nodes_.empty()) {
    peers_[key] = handle;
    return;
  }
  auto node = std::move(spare_peer_nodes_.back());
  spare_peer_nodes_.pop_back();
  node.key() = key;
  node.mapped() = handle;
  auto result = peers_.insert(std::move(node));
  if (!result.inserted) result.position->second = handle;  // as operator[] would
}

void SpanLinker::ErasePeer(PeerMap::iterator it) {
  auto node = peers_.extract(it);
  if (spare_peer_nodes_.size() < kSparePeerNodes) spare_peer_nodes_.push_back(std::move(node));
}

void SpanLinker::DropPeer(Record& r) {
  if (!r.peer) return;
  if (auto it = peers_.find(*r.peer); it != peers_.end()) ErasePeer(it);
  r.peer.reset();
}

void SpanLinker::Tick(uint64_t now_ns) {
  now_ns_ = std::max(now_ns_, now_ns);
  while (!peer_deadlines_.empty() && peer_deadlines_.front().first <= now_ns_) {
    const uint64_t h = peer_deadlines_.front().second;
    peer_deadlines_.pop_front();
    Record* r = Find(h);
    if (r == nullptr || !r->peer) continue;
    auto it = peers_.find(*r->peer);
    if (it != peers_.end() && it->second == h) ErasePeer(it);
    r->peer.reset();
    if (r->server && !r->resolved) {
      stats_.server_roots++;
      ResolveAsRoot(h);  // may free it
    } else if (Freeable(*r)) {
      Free(h);
    }
  }
  if (now_ns_ < next_sweep_ns_) return;
  next_sweep_ns_ = now_ns_ + kSweepEveryNs;
  std::erase_if(serving_, [](const auto& entry) { return entry.second.empty(); });
  // Frees what became freeable by time alone and gives up requests that never finished.
  const size_t n = order_.size();
  for (size_t i = 0; i < n; i++) {
    const uint64_t h = order_.front();
    order_.pop_front();
    Record* r = Find(h);
    if (r == nullptr) continue;
    if (Freeable(*r)) {
      Free(h);
    } else if (r->start_ns + options_.max_age_ns < now_ns_) {
      if (!r->finished) stats_.abandoned++;
      DropPeer(*r);
      if (!r->resolved) ResolveAsRoot(h);
      Free(h);
    } else {
      order_.push_back(h);
    }
  }
}

void SpanLinker::Flush() {
  // Roots first settle their whole subtrees; a record whose parent is gone becomes a root.
  std::vector<uint64_t> handles(order_.begin(), order_.end());
  for (uint64_t h : handles) {
    Record* r = Find(h);
    if (r == nullptr) continue;
    DropPeer(*r);
    if (!r->resolved) {
      if (r->server && r->parent == 0) stats_.server_roots++;
      if (r->parent != 0 && Find(r->parent) == nullptr) r->parent = 0;
      if (r->parent == 0) ResolveAsRoot(h);
    }
  }
  for (uint64_t h : handles) {
    Record* r = Find(h);
    if (r == nullptr) continue;
    if (!r->resolved) ResolveAsRoot(h);  // its parent could not settle: keep the span
    r = Find(h);
    if (r == nullptr) continue;
    if (!r->finished) stats_.abandoned++;
    if (r->finished && !r->released) Release(*r);
  }
  for (uint64_t h : handles) Free(h);
  order_.clear();
  peer_deadlines_.clear();
}

void SpanLinker::ReportCounters(CounterReport* r) const {
  const SpanLinkerStats& l = stats_;
  r->Counter("link_traceparent", "zerotrace_link_traceparent_total",
             "server spans that joined the caller's W3C trace", l.link_traceparent);
  r->Counter("link_peer", "zerotrace_link_peer_total",
             "server spans parented by the same-node client span", l.link_peer);
  r->Counter("link_thread", "zerotrace_link_thread_total",
             "calls made while their thread served exactly one request", l.link_thread);
  r->Counter("link_forwarded", "zerotrace_link_forwarded_total",
             "calls repeating the operation of one request", l.link_forwarded);
  r->Counter("link_forwarded_rewritten", "zerotrace_link_forwarded_rewritten_total",
             "calls repeating the target of one request up to a rewritten path prefix",
             l.link_forwarded_rewritten);
  r->Counter("link_rewrites_learned", "zerotrace_link_rewrites_learned_total",
             "path prefix rewrites learned from unambiguous proxy calls", l.rewrites_learned);
  r->Counter("link_correlation", "zerotrace_link_correlation_total",
             "calls carrying the request id of one request", l.link_correlation);
  r->Counter("link_propagated", "zerotrace_link_propagated_total",
             "calls carrying the W3C trace id that exactly one request in flight carried",
             l.link_propagated);
  r->Counter("link_goroutine", "zerotrace_link_goroutine_total",
             "calls made by a goroutine serving exactly one request in flight (Go)",
             l.link_goroutine);
  r->Counter("link_goroutine_unserved", "zerotrace_link_goroutine_unserved_total",
             "calls whose goroutine evidence named no single request in flight (unparented)",
             l.link_goroutine_unserved);
  r->Counter("ctx_adopted", "zerotrace_ctx_adopted_total",
             "calls given the span id the kernel put in their inserted traceparent", l.ctx_adopted);
  r->Counter("ctx_disagree", "zerotrace_ctx_disagree_total",
             "calls whose inserted traceparent named another trace than their own (own ids kept)",
             l.ctx_disagree);
  r->Counter("link_ambiguous", "zerotrace_link_ambiguous_total",
             "calls left unparented: several requests, no evidence", l.link_ambiguous);
  r->Counter("link_client_roots", "zerotrace_link_client_roots_total",
             "calls made while their thread served no request", l.client_roots);
  r->Counter("link_server_roots", "zerotrace_link_server_roots_total",
             "requests whose caller is not traced on this node", l.server_roots);
  r->Counter("link_cycles_refused", "zerotrace_link_cycles_refused_total",
             "links refused because they would close a loop", l.cycles_refused);
  r->Counter("link_abandoned", "zerotrace_link_abandoned_total", "requests that never finished",
             l.abandoned);
  r->Counter(nullptr, "zerotrace_link_requests_total", "requests the linker saw start", l.requests);
  r->Counter(nullptr, "zerotrace_link_unstarted_total",
             "finished spans whose start was never reported", l.unstarted);
  r->Counter(nullptr, "zerotrace_stage_items_total", kStageItemsHelp, l.spans_released,
             {{"stage", "trace"}});
  r->Gauge(nullptr, "zerotrace_linker_pending_requests",
           "requests the linker holds (in flight, or waiting for their trace)", live_);
}

}  // namespace zerotrace::trace
