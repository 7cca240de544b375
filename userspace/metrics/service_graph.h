// The service graph: client and server spans of one request (linked on this node) paired into
// an edge between two services, or a client span whose server is not traced here into an edge
// to the peer's address. Edge metrics are named as Tempo's service graph names them.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/u64_table.h"
#include "metrics/metric_data.h"
#include "metrics/pending_spans.h"
#include "metrics/red_metrics.h"

namespace zerotrace::metrics {

// One edge of the graph: requests from a client service to a server (a service or an address).
struct GraphEdge {
  uint64_t id = 0;
  std::string client, server;
  bool peer = false, overflow = false;
  uint64_t start_unix_ns = 0;
  uint64_t requests = 0, failed = 0;
  HistogramData server_seconds, client_seconds;
  LatencySketch sketch;  // client side, for the top view
};

// What spans of one shape (instrument, service and the values of the series attributes) resolve
// to, found once and shared by the metrics stage's cache and the spans waiting in the graph:
// no key is written or hashed for the spans after the first. Writer thread only.
struct SpanShape {
  SeriesKey key;                      // the RED series key, without peer.service
  std::string service;                // the span's service
  std::string peer;                   // clients: "host:port" of the server they called
  uint64_t hash = 0;                  // RedMetrics::HashOf the key
  ServiceSummary* summary = nullptr;  // the top view's; null: past its limit, counted
  // Server instruments: their series. Clients: the series and edge of the last server service
  // they were paired with, and those of the edge to their peer address.
  RedMetrics::Series* series = nullptr;
  GraphEdge* edge = nullptr;
  std::string paired_service;
  RedMetrics::Series* peer_series = nullptr;
  GraphEdge* peer_edge = nullptr;
};

// What the graph needs of one finished span.
struct GraphSpan {
  uint64_t span_id = 0, parent_span_id = 0;  // first 8 bytes as a number; 0: none
  // Its service, peer and series; owned by the caller for the call, shared by the graph
  // only while the span waits for its other side.
  const std::shared_ptr<SpanShape>* shape = nullptr;
  double seconds = 0;
  bool error = false;
};

class ServiceGraph {
 public:
  struct Options {
    size_t max_edges = 1000;           // past it, edges fold into the overflow edge, counted
    uint64_t wait_ns = 5'000'000'000;  // how long one side waits for the other
    size_t max_pending = 1 << 16;      // spans waiting; past it the oldest is resolved early
    bool sketches = true;              // each edge's latency sketch (the top view's)
  };
  // Client durations go to `red` once their server is known (peer.service), or not.
  // Its data shares `red`'s lock (one lock per request for the edge and the client's series).
  ServiceGraph(Options options, RedMetrics* red)
      : options_(options), red_(red), mu_(red->mutex()) {}

  // Hot path, one writer thread.
  void OnClient(const GraphSpan& span, uint64_t now_ns);
  // Also records the server span's duration into its shape's RED series (resolved already).
  void OnServer(const GraphSpan& span, uint64_t now_ns);
  // Writer thread: clients waiting past their time become edges to their peer address, and
  // servers waiting past theirs are counted as unpaired. `now_ns` 0 with `all`: everything.
  void Expire(uint64_t now_ns, bool all = false);

  // Any thread.
  void AppendFamilies(std::vector<MetricFamily>* out) const;
  void AppendSummaries(std::vector<EdgeSummary>* out) const;
  void AddStats(MetricsStageStats* stats) const;

 private:
  // One side of a request, for the length of a call.
  struct Side {
    SpanShape* shape;
    double seconds;
    bool error;
  };
  struct Pending {
    std::shared_ptr<SpanShape> shape;
    double seconds = 0;
    bool error = false;
    Side side() const { return {shape.get(), seconds, error}; }
  };
  // Spans by id; the first span under an id stays (InsertIfAbsent), a paired one is erased
  // by the pointer Find returned.
  using PendingSpans = U64Table<Pending, kMinPendingCapacity>;
  using Edge = GraphEdge;
  // One request: the client's side and, if paired, the server's (else: to the peer address).
  // `server_series`: the server's duration goes into its RED series too, under the same lock.
  void Record(const Side& c, const Side* s, bool server_series = false);
  Edge* FindEdge(std::string_view client, std::string_view server, bool peer);
  void EvictOldest(bool client);
  void ExpireClient(uint64_t span_id);
  void ExpireServer(uint64_t parent_id);

  const Options options_;
  RedMetrics* red_;
  // Writer thread only. Their storage is reused: nothing is allocated per waiting span.
  PendingSpans clients_;                               // by span id
  PendingSpans servers_;                               // by parent (client) span id
  DeadlineQueue client_deadlines_, server_deadlines_;  // (deadline, id) in arrival order
  // Readers too: what follows is guarded by red_'s lock.
  std::mutex& mu_;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  // By client + '\0' + server; edge_key_ is the writer's reused lookup key. Edges live as long
  // as the graph (shapes point to them).
  std::unordered_map<std::string, Edge, Hash, std::equal_to<>> edges_;
  std::string edge_key_;
  uint64_t paired_ = 0, to_peer_ = 0, overflow_ = 0, unpaired_servers_ = 0, pending_dropped_ = 0;
};

}  // namespace zerotrace::metrics
