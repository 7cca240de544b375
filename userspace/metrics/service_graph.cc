// Service-graph pairing (writer thread) and the edge store (shared with readers).
#include "metrics/service_graph.h"

#include <cmath>

#include "metrics/instruments.h"

namespace zerotrace::metrics {
namespace {

constexpr char kOverflowKey[] = "\x7f";  // no service name is only this byte

void AddPoint(MetricFamily* f, uint64_t id, const Attributes& attrs, uint64_t start,
              const HistogramData* h, uint64_t value) {
  Point& p = f->points.emplace_back();
  p.id = id;
  p.attributes = attrs;
  p.start_unix_ns = start;
  if (h != nullptr) p.histogram = *h;
  p.value = value;
}

}  // namespace

void ServiceGraph::OnClient(const GraphSpan& span, uint64_t now_ns) {
  if (Pending* server = servers_.Find(span.span_id)) {
    const Side s = server->side();
    Record(Side{span.shape->get(), span.seconds, span.error}, &s);
    servers_.Erase(server);
    return;
  }
  if (clients_.size() >= options_.max_pending) EvictOldest(/*client=*/true);
  if (clients_.InsertIfAbsent(span.span_id, Pending{*span.shape, span.seconds, span.error})) {
    client_deadlines_.push_back(now_ns + options_.wait_ns, span.span_id);
  }
  // else: a span id seen twice: keep the first
}

void ServiceGraph::OnServer(const GraphSpan& span, uint64_t now_ns) {
  RedMetrics::Series* const series = (*span.shape)->series;
  if (span.parent_span_id == 0) {
    std::lock_guard lock(mu_);
    red_->RecordToLocked(series, span.seconds);
    unpaired_servers_++;  // a root: its caller is not traced here
    return;
  }
  if (Pending* client = clients_.Find(span.parent_span_id)) {
    const Side s{span.shape->get(), span.seconds, span.error};
    Record(client->side(), &s, /*server_series=*/true);
    clients_.Erase(client);
    return;
  }
  {
    std::lock_guard lock(mu_);
    red_->RecordToLocked(series, span.seconds);
  }
  if (servers_.size() >= options_.max_pending) EvictOldest(/*client=*/false);
  if (servers_.InsertIfAbsent(span.parent_span_id,
                              Pending{*span.shape, span.seconds, span.error})) {
    server_deadlines_.push_back(now_ns + options_.wait_ns, span.parent_span_id);
  }
}

// The oldest span still waiting on one side is resolved early, and counted. Deadlines of spans
// paired meanwhile are passed over: they free no room.
void ServiceGraph::EvictOldest(bool client) {
  DeadlineQueue& deadlines = client ? client_deadlines_ : server_deadlines_;
  PendingSpans& pending = client ? clients_ : servers_;
  while (!deadlines.empty()) {
    const uint64_t id = deadlines.front().second;
    deadlines.pop_front();
    if (pending.Find(id) == nullptr) continue;
    {
      std::lock_guard lock(mu_);
      pending_dropped_++;  // a client: as if its server were not traced here
    }
    if (client) {
      ExpireClient(id);
    } else {
      ExpireServer(id);
    }
    return;
  }
}

void ServiceGraph::ExpireClient(uint64_t span_id) {
  Pending* client = clients_.Find(span_id);
  if (client == nullptr) return;  // paired meanwhile
  Record(client->side(), nullptr);
  clients_.Erase(client);
}

void ServiceGraph::ExpireServer(uint64_t parent_id) {
  Pending* server = servers_.Find(parent_id);
  if (server == nullptr) return;
  servers_.Erase(server);
  std::lock_guard lock(mu_);
  unpaired_servers_++;
}

void ServiceGraph::Expire(uint64_t now_ns, bool all) {
  while (!client_deadlines_.empty() && (all || client_deadlines_.front().first <= now_ns)) {
    const uint64_t id = client_deadlines_.front().second;
    client_deadlines_.pop_front();
    ExpireClient(id);
  }
  while (!server_deadlines_.empty() && (all || server_deadlines_.front().first <= now_ns)) {
    const uint64_t id = server_deadlines_.front().second;
    server_deadlines_.pop_front();
    ExpireServer(id);
  }
  clients_.ShrinkIfSparse();  // after a burst, resident memory falls back
  servers_.ShrinkIfSparse();
  client_deadlines_.ShrinkIfSparse();
  server_deadlines_.ShrinkIfSparse();
}

// Writer thread: one request on the edge from the client's service to the server's service or,
// without a server (`s` null), to the client's peer address. The client's shape remembers the
// series and edge of its last server and of its peer: found once, not per request.
void ServiceGraph::Record(const Side& c, const Side* s, bool server_series) {
  SpanShape& shape = *c.shape;
  const bool peer = s == nullptr;
  RedMetrics::Series* series;
  if (peer) {
    if (shape.peer_series == nullptr) shape.peer_series = red_->Resolve(shape.key, {});
    series = shape.peer_series;
  } else {
    if (shape.edge == nullptr || shape.paired_service != s->shape->service) {
      shape.paired_service.assign(s->shape->service);
      shape.series = red_->Resolve(shape.key, shape.paired_service);
      shape.edge = nullptr;
    }
    series = shape.series;
  }
  const bool failed = c.error || (s != nullptr && s->error);
  std::lock_guard lock(mu_);  // red_'s: the series and the edge under one lock
  if (server_series) red_->RecordToLocked(s->shape->series, s->seconds);
  red_->RecordToLocked(series, c.seconds);
  (peer ? to_peer_ : paired_)++;
  GraphEdge*& memo = peer ? shape.peer_edge : shape.edge;
  if (memo == nullptr) memo = FindEdge(shape.service, peer ? shape.peer : s->shape->service, peer);
  Edge& e = *memo;
  if (e.overflow) overflow_++;  // as every recording past the limit is counted
  e.requests++;
  if (failed) e.failed++;
  if (s != nullptr) e.server_seconds.Record(s->seconds, kDurationBounds);
  e.client_seconds.Record(c.seconds, kDurationBounds);
  if (options_.sketches) e.sketch.Record(c.seconds, failed);
}

// Under mu_: the edge client -> server, made if new, or the overflow edge past the limit.
ServiceGraph::Edge* ServiceGraph::FindEdge(std::string_view client, std::string_view server,
                                           bool peer) {
  edge_key_.assign(client).push_back('\0');
  edge_key_.append(server);
  auto it = edges_.find(edge_key_);
  if (it != edges_.end()) return &it->second;
  const bool overflow = edges_.size() >= options_.max_edges;
  if (overflow) {
    it = edges_.find(std::string_view(kOverflowKey));
    if (it != edges_.end()) return &it->second;
  }
  Edge e;
  e.id = edges_.size() + 1;
  e.overflow = overflow;
  e.peer = peer && !overflow;
  if (!overflow) {
    e.client.assign(client);
    e.server.assign(server);
  }
  e.start_unix_ns = WallNowNs();
  return &edges_.emplace(overflow ? std::string(kOverflowKey) : edge_key_, std::move(e))
              .first->second;
}

void ServiceGraph::AppendFamilies(std::vector<MetricFamily>* out) const {
  MetricFamily total, failed, server, client;
  total.name = "traces_service_graph_request_total";
  total.description = "Requests between two services (client and server spans).";
  failed.name = "traces_service_graph_request_failed_total";
  failed.description = "Requests between two services that failed on either side.";
  server.name = "traces_service_graph_request_server_seconds";
  server.description = "Duration of requests between two services, as the server saw them.";
  client.name = "traces_service_graph_request_client_seconds";
  client.description = "Duration of requests between two services, as the client saw them.";
  total.kind = failed.kind = MetricFamily::Kind::kCounter;
  server.unit = client.unit = "s";
  server.bounds.assign(kDurationBounds.begin(), kDurationBounds.end());
  client.bounds = server.bounds;
  std::lock_guard lock(mu_);
  for (const auto& [key, e] : edges_) {
    Attributes attrs;
    if (e.overflow) {
      attrs.push_back({kOverflowAttribute, true});
    } else {
      attrs.push_back({"client", e.client});
      attrs.push_back({"server", e.server});
      // Tempo's name for a server known only by the client's side.
      if (e.peer) attrs.push_back({"connection_type", std::string("virtual_node")});
    }
    AddPoint(&total, e.id, attrs, e.start_unix_ns, nullptr, e.requests);
    AddPoint(&failed, e.id, attrs, e.start_unix_ns, nullptr, e.failed);
    if (e.server_seconds.count > 0) {
      AddPoint(&server, e.id, attrs, e.start_unix_ns, &e.server_seconds, 0);
    }
    if (e.client_seconds.count > 0) {
      AddPoint(&client, e.id, attrs, e.start_unix_ns, &e.client_seconds, 0);
    }
  }
  for (MetricFamily* f : {&total, &failed, &server, &client}) {
    if (!f->points.empty()) out->push_back(std::move(*f));
  }
}

void ServiceGraph::AppendSummaries(std::vector<EdgeSummary>* out) const {
  std::lock_guard lock(mu_);
  for (const auto& [key, e] : edges_) {
    EdgeSummary& s = out->emplace_back();
    s.client = e.overflow ? "(overflow)" : e.client;
    s.server = e.overflow ? "(overflow)" : e.server;
    s.peer = e.peer;
    s.client_side = e.sketch;
  }
}

void ServiceGraph::AddStats(MetricsStageStats* stats) const {
  std::lock_guard lock(mu_);
  stats->edges = edges_.size();
  stats->edges_paired = paired_;
  stats->edges_to_peer = to_peer_;
  stats->edge_overflow = overflow_;
  stats->unpaired_servers = unpaired_servers_;
  stats->pending_dropped = pending_dropped_;
}

}  // namespace zerotrace::metrics
