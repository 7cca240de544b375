// The slowest recent traces, for the top view: a bounded ring of the last finished spans (a
// few fields each, no attributes), and on demand the traces among them that took longest,
// each with its spans as a tree. Only made when the top view runs.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "trace/span.h"

namespace zerotrace::metrics {

struct TraceSpanLine {
  std::string service, name;
  trace::SpanKind kind = trace::SpanKind::kInternal;
  double seconds = 0;
  bool error = false;
  int depth = 0;  // 0: a root of the trace (as far as the ring holds it)
};

struct SlowTrace {
  std::string trace_id;  // hex
  std::string root_service, root_name;
  double seconds = 0;                // from the first span's start to the last one's end
  bool error = false;                // any span failed
  std::vector<TraceSpanLine> spans;  // depth-first, children by start time
};

class RecentTraces {
 public:
  explicit RecentTraces(size_t capacity) : capacity_(capacity) {}
  // Writer thread, hot path when the top view runs: one finished span.
  void Add(const trace::Span& span);
  // Any thread: the `n` slowest traces whose spans ended within `window_ns` of the newest.
  std::vector<SlowTrace> Slowest(size_t n, uint64_t window_ns) const;

 private:
  struct Entry {
    trace::TraceId trace_id;
    trace::SpanId span_id, parent_span_id;
    std::string service, name;
    trace::SpanKind kind;
    uint64_t start_unix_ns, end_unix_ns;
    bool error;
  };
  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<Entry> ring_;  // guarded by mu_
  size_t next_ = 0;
};

}  // namespace zerotrace::metrics
