// The protocol-neutral half of spans: kind, wall-clock times, network attributes, resource.
#include "trace/conn_endpoints.h"

namespace zerotrace::trace {

void AddEndpointAttributes(const ConnEndpoints& e, AttributeWriter* w) {
  if (!w->Has("server.address")) w->Add("server.address", e.server_address());
  if (!w->Has("server.port")) w->Add("server.port", static_cast<int64_t>(e.server_port()));
  if (e.known) {
    w->Add("network.peer.address", e.remote_address);
    w->Add("network.peer.port", static_cast<int64_t>(e.remote_port));
  }
}

void FrameSpan(uint64_t start_ns, uint64_t end_ns, const ConnEndpoints& e, const WallClock& clock,
               const std::shared_ptr<const Resource>& resource, Span* span) {
  span->trace_id = {};
  span->span_id = {};
  span->parent_span_id = {};
  span->trace_state.clear();
  span->kind = e.server ? SpanKind::kServer : SpanKind::kClient;
  span->start_unix_ns = clock.ToUnixNs(start_ns);
  span->end_unix_ns = clock.ToUnixNs(end_ns > start_ns ? end_ns : start_ns);
  AttributeWriter attrs(&span->attributes, span->attributes.size());
  AddEndpointAttributes(e, &attrs);
  attrs.Done();
  // A recycled span of the same process keeps its pointer: no count changes (2 atomic updates).
  if (span->resource != resource) span->resource = resource;
}

}  // namespace zerotrace::trace
