// The slowest recent traces: a ring of span summaries, grouped into trees on demand.
#include "metrics/recent_traces.h"

#include <algorithm>
#include <functional>
#include <map>

namespace zerotrace::metrics {

void RecentTraces::Add(const trace::Span& span) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mu_);
  if (ring_.size() < capacity_) {
    ring_.emplace_back();
    next_ = ring_.size() % capacity_;
    Entry& e = ring_.back();
    e = {span.trace_id,
         span.span_id,
         span.parent_span_id,
         span.resource ? span.resource->service_name : std::string(),
         span.name,
         span.kind,
         span.start_unix_ns,
         span.end_unix_ns,
         span.status == trace::StatusCode::kError};
    return;
  }
  Entry& e = ring_[next_];  // the oldest: its strings' storage is reused
  next_ = (next_ + 1) % capacity_;
  e.trace_id = span.trace_id;
  e.span_id = span.span_id;
  e.parent_span_id = span.parent_span_id;
  if (span.resource) {
    e.service.assign(span.resource->service_name);
  } else {
    e.service.clear();
  }
  e.name.assign(span.name);
  e.kind = span.kind;
  e.start_unix_ns = span.start_unix_ns;
  e.end_unix_ns = span.end_unix_ns;
  e.error = span.status == trace::StatusCode::kError;
}

std::vector<SlowTrace> RecentTraces::Slowest(size_t n, uint64_t window_ns) const {
  std::vector<Entry> spans;
  {
    std::lock_guard lock(mu_);
    spans = ring_;
  }
  uint64_t newest = 0;
  for (const Entry& e : spans) newest = std::max(newest, e.end_unix_ns);
  const uint64_t since = newest > window_ns ? newest - window_ns : 0;
  // Traces by id, the indices of their spans in start order.
  std::map<std::array<uint8_t, 16>, std::vector<size_t>> traces;
  for (size_t i = 0; i < spans.size(); i++) traces[spans[i].trace_id.bytes].push_back(i);
  struct Candidate {
    double seconds;
    const std::vector<size_t>* members;
  };
  std::vector<Candidate> candidates;
  for (auto& [id, members] : traces) {
    uint64_t first = UINT64_MAX, last = 0;
    for (size_t i : members) {
      first = std::min(first, spans[i].start_unix_ns);
      last = std::max(last, spans[i].end_unix_ns);
    }
    if (last < since || last < first) continue;
    std::sort(members.begin(), members.end(), [&spans](size_t a, size_t b) {
      return spans[a].start_unix_ns < spans[b].start_unix_ns;
    });
    candidates.push_back({(last - first) * 1e-9, &members});
  }
  const size_t k = std::min(n, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(),
                    [](const Candidate& a, const Candidate& b) { return a.seconds > b.seconds; });
  std::vector<SlowTrace> out;
  for (size_t c = 0; c < k; c++) {
    const std::vector<size_t>& members = *candidates[c].members;
    SlowTrace t;
    t.trace_id = spans[members.front()].trace_id.Hex();
    t.seconds = candidates[c].seconds;
    auto has = [&](const trace::SpanId& id) {
      return std::any_of(members.begin(), members.end(),
                         [&](size_t i) { return spans[i].span_id == id; });
    };
    // Depth first from each root (a span whose parent is not among the trace's spans here).
    std::function<void(size_t, int)> visit = [&](size_t i, int depth) {
      const Entry& e = spans[i];
      t.spans.push_back(
          {e.service, e.name, e.kind,
           e.end_unix_ns > e.start_unix_ns ? (e.end_unix_ns - e.start_unix_ns) * 1e-9 : 0, e.error,
           depth});
      t.error |= e.error;
      if (depth >= 32) return;  // ids repeat only in corrupt input; never loop
      for (size_t j : members) {
        if (j != i && spans[j].parent_span_id == e.span_id) visit(j, depth + 1);
      }
    };
    for (size_t i : members) {
      if (!spans[i].parent_span_id.valid() || !has(spans[i].parent_span_id)) visit(i, 0);
    }
    if (!t.spans.empty()) {
      t.root_service = t.spans.front().service;
      t.root_name = t.spans.front().name;
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace zerotrace::metrics
