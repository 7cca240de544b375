// SpanLinker's goroutine rule (Go): a call made by a goroutine that serves a server connection
// (its conn.serve goroutine, or one started from it) is the child of the request in flight on
// that connection, when exactly one is.
#include "trace/span_linker.h"

namespace zerotrace::trace {

// HTTP/1 serves a connection's requests one at a time, so one request is in flight on it when
// the handler runs; a pipelining client may put two there, and then nothing is linked. A
// started goroutine serves the request in flight when it started (served_since_ns), and only
// while that request is: a call it makes after the request ended, or for a later one, is no
// evidence of either.
uint64_t SpanLinker::GoroutineParent(uint64_t handle, const RequestStart& r) {
  const uint64_t since = r.served_since_ns != 0 ? r.served_since_ns : r.start_ns;
  uint64_t parent = 0;
  int candidates = 0;
  if (auto it = serving_.find((uint64_t{r.tgid} << 32)); it != serving_.end()) {
    for (uint64_t h : it->second) {
      const Record* s = Find(h);
      if (s == nullptr || h == handle || s->conn_id != r.served_conn_id) continue;
      if (s->start_ns > since) continue;                    // started after
      if (s->finished && s->end_ns < r.start_ns) continue;  // ended before the call
      parent = h;
      candidates++;
    }
  }
  if (candidates == 1) {
    stats_.link_goroutine++;
    return parent;
  }
  stats_.link_goroutine_unserved++;
  return 0;
}

}  // namespace zerotrace::trace
