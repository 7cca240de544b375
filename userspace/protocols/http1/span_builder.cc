// BuildExchange: attribute names and status rules follow the OpenTelemetry HTTP conventions.
#include "protocols/http1/span_builder.h"

#include <algorithm>

#include "protocols/http_common/http_span.h"

namespace zerotrace::protocols::http1 {

// Every field of HttpSpanFields is assigned below: one added there must be too.
static_assert(sizeof(http_common::HttpSpanFields) == 216, "assign the new field in BuildExchange");

void BuildExchange(const HttpExchange& x, const SessionContext& ctx, const SpanOptions& options,
                   uint64_t finished_ns, ExchangeDone* done, http_common::HttpSpanFields* fields) {
  const HttpRequest& req = x.req;
  const HttpResponse* resp = x.resp ? &*x.resp : nullptr;
  const uint64_t start = req.start_ts_ns;
  uint64_t end = resp && resp->end_ts_ns ? resp->end_ts_ns : req.end_ts_ns;
  if (!resp) end = std::max(end, finished_ns);
  if (end < start) end = start;
  done->id = x.seq;
  done->start_ns = start;
  done->end_ns = end;
  done->response_tid = resp ? resp->start_tid : 0;

  // Reused: a fresh one would be zero-filled whole (rep stos) and then written again.
  http_common::HttpSpanFields& f = *fields;
  f.method = req.method;
  f.target = req.target;
  f.host.reset();
  f.user_agent.reset();
  // Measured hot path: Host and User-Agent (the first of each) in one pass over the fields.
  for (const HeaderList::Field h : req.headers) {
    if (h.name.size() == 4) {
      if (!f.host && EqualsLowerLiteral(h.name, "host")) f.host = h.value;
    } else if (h.name.size() == 10) {
      if (!f.user_agent && EqualsLowerLiteral(h.name, "user-agent")) f.user_agent = h.value;
    }
    if (f.host && f.user_agent) break;
  }
  // TLS plaintext: the same HTTP, spoken inside TLS.
  f.scheme = ctx.tls ? "https" : "http";
  f.version = req.version_minor == 0 ? "1.0" : "1.1";
  f.request_body_size = req.body_size;
  f.status = resp ? resp->status : 0;
  // A head cut short, or a body whose framing was lost, leaves the size unknown: not 0.
  if (resp && !resp->head_cut && !resp->body_framing_lost) {
    f.response_body_size = resp->body_size;
  } else {
    f.response_body_size.reset();
  }
  f.request_error_type = {};
  f.request_error_message = {};
  if (req.framing_conflict) {
    f.request_error_type = "http_framing_conflict";
    f.request_error_message = "request has both Content-Length and Transfer-Encoding";
  }
  f.error_type = !resp || x.error != ExchangeError::kNone ? std::string_view(x.error_type)
                                                          : std::string_view();
  f.error_message = {};
  http_common::WriteHttpSpan(f, ctx, {options.infer_routes}, &done->span);
}

}  // namespace zerotrace::protocols::http1
