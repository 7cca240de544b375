// BuildExchange: HTTP streams through http_common's HTTP span; gRPC calls by the RPC
// conventions (semconv v1.37.0), with zerotrace.grpc.* for what those conventions lack.
#include "protocols/http2/span_builder.h"

#include <algorithm>
#include <string>

#include "protocols/http2/frames.h"
#include "protocols/http2/grpc.h"
#include "protocols/http_common/http_span.h"
#include "trace/attribute_writer.h"

namespace zerotrace::protocols::http2 {
namespace {

constexpr size_t kMaxGrpcAttributes = 16;

std::string ResetMessage(const Stream& st) {
  std::string m = "stream reset by ";
  m += st.reset_by_client ? "client: " : "server: ";
  m += ErrorCodeName(st.reset_code);
  return m;
}

// OpenTelemetry's gRPC conventions: a client's call is an error for any code but OK; a server
// marks only the codes that point at itself (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
// INTERNAL, UNAVAILABLE, DATA_LOSS), not those that judge the caller's request.
bool GrpcCodeIsError(int code, bool server) {
  if (code <= 0) return false;
  if (!server) return true;
  switch (code) {
    case 2:
    case 4:
    case 12:
    case 13:
    case 14:
    case 15:
      return true;
    default:
      return false;
  }
}

std::string_view SchemeOf(const Stream& st, const SessionContext& ctx) {
  if (st.scheme == "http" || st.scheme == "https") return st.scheme;
  return ctx.tls ? "https" : "http";
}

void BuildHttp(const Stream& st, const SessionContext& ctx, const SpanOptions& options,
               trace::Span* span) {
  http_common::HttpSpanFields f;
  f.method = st.method;
  f.target = st.path;
  if (st.has_authority) f.host = st.authority;
  f.scheme = SchemeOf(st, ctx);
  f.version = "2";
  if (st.has_user_agent) f.user_agent = st.user_agent;
  if (st.req_body_known && st.req_ended) f.request_body_size = st.req_body;
  if (st.final_headers && st.status != 0) {
    f.status = st.status;
    if (st.resp_ended && st.resp_body_known) f.response_body_size = st.resp_body;
  }
  std::string message;
  if (st.error == StreamError::kReset) {
    f.error_type = ErrorCodeName(st.reset_code);
    message = ResetMessage(st);
    f.error_message = message;
  } else if (st.error != StreamError::kNone) {
    f.error_type = StreamErrorName(st.error);
  }
  http_common::WriteHttpSpan(f, ctx, {options.infer_routes}, span);
}

void BuildGrpc(const Stream& st, const SessionContext& ctx, trace::Span* span) {
  trace::Span& s = *span;
  s.status = trace::StatusCode::kUnset;
  s.status_message.clear();
  s.attributes.reserve(kMaxGrpcAttributes);
  trace::AttributeWriter attrs(&s.attributes);
  std::string_view service, method;
  SplitGrpcPath(st.path, &service, &method);
  s.name.assign(st.path.size() > 1 ? std::string_view(st.path).substr(1) : st.path);
  attrs.Add("rpc.system", "grpc");
  if (!service.empty()) {
    attrs.Add("rpc.service", service);
    attrs.Add("rpc.method", method);
  }
  const int code = GrpcStatusOf(st);
  if (code >= 0) attrs.Add("rpc.grpc.status_code", static_cast<int64_t>(code));
  std::string_view host;
  int64_t port = 0;
  if (st.has_authority) std::tie(host, port) = http_common::SplitHostPort(st.authority);
  if (!host.empty()) attrs.Add("server.address", host);
  if (port != 0) attrs.Add("server.port", port);
  attrs.Add("network.protocol.name", "http");
  attrs.Add("network.protocol.version", "2");
  if (ctx.role == ZT_ROLE_SERVER && ctx.endpoints->known) {
    attrs.Add("client.address", ctx.endpoints->remote_address);
  }
  if (st.req_ended && st.req_msgs.certain()) {
    attrs.Add("zerotrace.grpc.request_messages", static_cast<int64_t>(st.req_msgs.count()));
  }
  if (st.resp_ended && st.resp_msgs.certain()) {
    attrs.Add("zerotrace.grpc.response_messages", static_cast<int64_t>(st.resp_msgs.count()));
  }
  if (st.timeout_ns != 0) {
    attrs.Add("zerotrace.grpc.timeout_ms", static_cast<double>(st.timeout_ns) / 1e6);
  }
  if (GrpcCodeIsError(code, ctx.role == ZT_ROLE_SERVER)) {
    s.status = trace::StatusCode::kError;
    attrs.Add("error.type", GrpcStatusName(code));
    if (!st.grpc_message.empty() && st.grpc_status >= 0) {
      s.status_message = st.grpc_message;
    } else if (st.error == StreamError::kReset) {
      s.status_message = ResetMessage(st);
    } else {
      s.status_message.assign(GrpcStatusName(code));
    }
  } else if (code < 0 && st.error != StreamError::kNone) {
    s.status = trace::StatusCode::kError;
    attrs.Add("error.type", StreamErrorName(st.error));
    s.status_message.assign(StreamErrorName(st.error));
  }
  attrs.Done();
}

}  // namespace

int GrpcStatusOf(const Stream& st) {
  if (st.grpc_status >= 0 && st.resp_ended) return st.grpc_status;
  switch (st.error) {
    case StreamError::kNone:
      break;
    case StreamError::kReset:
      if (st.grpc_status >= 0) return st.grpc_status;  // trailers came, then the reset
      // A client cancels at its deadline: a CANCEL from it once grpc-timeout has passed.
      if (st.reset_by_client && st.reset_code == 0x8 && st.timeout_ns != 0 &&
          st.reset_ns + 1'000'000 >= st.start_ns + st.timeout_ns) {
        return kGrpcDeadlineExceeded;
      }
      return GrpcStatusFromReset(st.reset_code);
    case StreamError::kRefused:
      return 14;  // UNAVAILABLE: the server never saw it
    default:
      return -1;  // the connection failed or was not followed to the end
  }
  if (!st.resp_ended) return -1;
  if (st.status != 200) return GrpcStatusFromHttp(st.status);
  return kGrpcUnknown;  // a 200 without grpc-status
}

void BuildExchange(const Stream& st, const SessionContext& ctx, const SpanOptions& options,
                   uint64_t finished_ns, ExchangeDone* done) {
  uint64_t end = st.resp_ended ? st.end_ns : finished_ns;
  if (end == 0) end = finished_ns;
  end = std::max(end, st.start_ns);
  done->id = st.seq;
  done->start_ns = st.start_ns;
  done->end_ns = end;
  done->response_tid = st.resp_tid;
  if (st.grpc) {
    BuildGrpc(st, ctx, &done->span);
  } else {
    BuildHttp(st, ctx, options, &done->span);
  }
}

}  // namespace zerotrace::protocols::http2
