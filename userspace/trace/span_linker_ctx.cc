// SpanLinker's part of --propagate-context: root trace ids the kernel can compute too, and the
// span ids the kernel chose for the calls it put a traceparent into.
#include <zerotrace/ctx_hash.h>

#include "trace/span_linker.h"

namespace zerotrace::trace {
namespace {

// The IPv4 address of a v4-mapped one, first byte most significant; false for IPv6.
bool V4(const std::array<uint8_t, 16>& a, uint32_t* out) {
  for (int i = 0; i < 10; i++) {
    if (a[i] != 0) return false;
  }
  if (a[10] != 0xff || a[11] != 0xff) return false;
  *out = (uint32_t{a[12]} << 24) | (uint32_t{a[13]} << 16) | (uint32_t{a[14]} << 8) | a[15];
  return true;
}

}  // namespace

// Hot path (with propagation on): what a root needs for its hashed trace id, and the kernel's
// ids of a call.
void SpanLinker::NoteContext(Record& rec, const RequestStart& r) const {
  ContextEvidence& c = rec.ctx;
  if (options_.hashed_roots && r.conn.known && r.conn.from_start &&
      V4(r.conn.client_addr, &c.client_ip) && V4(r.conn.server_addr, &c.server_ip)) {
    c.hashable = true;
    c.client_port = r.conn.client_port;
    c.server_port = r.conn.server_port;
    c.stream_pos = r.stream_pos;
  }
  if (r.kernel_ctx && !r.server) {
    c.kernel = true;
    c.kernel_trace_id = r.kernel_trace_id;
    c.kernel_span_id = r.kernel_span_id;
  }
}

TraceId SpanLinker::RootTraceId(const Record& rec) const {
  if (!rec.ctx.hashable) return NewTraceId();
  TraceId id;
  zt_ctx_trace_id(options_.root_salt, rec.ctx.client_ip, rec.ctx.client_port, rec.ctx.server_ip,
                  rec.ctx.server_port, rec.ctx.stream_pos, id.bytes.data());
  return id;
}

// The kernel inserted `traceparent: 00-T-S-01` for this call. The callee makes S its parent
// in T, so S is this span's id only if this agent put the call in T as well: otherwise the
// agent's own ids stay (the callee's parent then names no span here: counted, never wrong).
void SpanLinker::JudgeKernelContext(Record& rec) {
  rec.ctx.kernel = false;
  if (!(rec.trace_id == rec.ctx.kernel_trace_id)) {
    stats_.ctx_disagree++;
    return;
  }
  stats_.ctx_adopted++;
  const SpanId old = rec.span_id;
  rec.span_id = rec.ctx.kernel_span_id;
  // Children linked while this record waited copied the old id.
  for (uint64_t w : rec.waiters) {
    Record* child = Find(w);
    if (child != nullptr && child->parent_span_id == old) child->parent_span_id = rec.span_id;
  }
}

}  // namespace zerotrace::trace
