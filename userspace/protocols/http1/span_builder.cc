// BuildExchange: attribute names and status rules follow the OpenTelemetry HTTP conventions.
#include "protocols/http1/span_builder.h"

#include <algorithm>
#include <charconv>

#include "protocols/http1/route.h"

namespace zerotrace::protocols::http1 {
namespace {

// The most attributes an HTTP span gets, the stage's endpoint attributes included.
constexpr size_t kMaxAttributes = 16;

// "example.com:8080" -> {"example.com", 8080}; "[::1]:80" -> {"::1", 80}; no port -> 0.
std::pair<std::string, int64_t> SplitHostPort(std::string_view authority) {
  std::string_view host = authority, port;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close != std::string_view::npos) {
      port = host.substr(close + 1);
      host = host.substr(1, close - 1);
      if (!port.empty() && port.front() == ':') port.remove_prefix(1);
    }
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  int64_t p = 0;
  std::from_chars(port.data(), port.data() + port.size(), p);
  return {std::string(host), p};
}

// The methods the HTTP conventions name (RFC 9110, PATCH, QUERY); case-sensitive. Others are
// reported as "_OTHER", with the method as sent in http.request.method_original.
bool IsConventionalMethod(std::string_view m) {
  static constexpr std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                                  "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"};
  for (std::string_view k : kMethods) {
    if (k == m) return true;
  }
  return false;
}

}  // namespace

void BuildExchange(const HttpExchange& x, const SessionContext& ctx, const SpanOptions& options,
                   uint64_t finished_ns, ExchangeDone* done) {
  const HttpRequest& req = x.req;
  const HttpResponse* resp = x.resp ? &*x.resp : nullptr;
  const bool server = ctx.role == ZT_ROLE_SERVER;
  const trace::ConnEndpoints& ends = *ctx.endpoints;
  trace::Span& s = done->span;
  s.status = trace::StatusCode::kUnset;
  s.status_message.clear();
  s.attributes.reserve(kMaxAttributes);  // one allocation instead of a growing vector's five
  trace::AttributeWriter attrs(&s.attributes);
  const uint64_t start = req.start_ts_ns;
  uint64_t end = resp && resp->end_ts_ns ? resp->end_ts_ns : req.end_ts_ns;
  if (!resp) end = std::max(end, finished_ns);
  if (end < start) end = start;
  done->id = x.seq;
  done->start_ns = start;
  done->end_ns = end;
  done->response_tid = resp ? resp->start_tid : 0;

  const TargetParts target = SplitTarget(req.target);
  std::string_view path = target.path.empty() ? std::string_view("/") : target.path;
  // The name's route drops path parameters and templates tokens; the attributes redact them.
  const std::string route = options.infer_routes ? InferRoute(path) : std::string();
  std::string redacted_path;
  if (RedactPath(path, &redacted_path)) path = redacted_path;
  const bool conventional = IsConventionalMethod(req.method);
  s.name.assign(conventional ? std::string_view(req.method) : std::string_view("HTTP"));
  if (options.infer_routes) s.name.append(" ").append(route);

  attrs.Add("http.request.method", conventional ? std::string_view(req.method) : "_OTHER");
  if (!conventional) attrs.Add("http.request.method_original", req.method);
  attrs.Add("url.path", path);
  const std::string query = RedactQuery(target.query);
  if (!target.query.empty()) attrs.Add("url.query", query);
  // TLS plaintext: the same HTTP, spoken inside TLS.
  const std::string_view scheme = ctx.tls ? "https" : "http";
  attrs.Add("url.scheme", scheme);

  // server.address/port: what the client asked for (Host), else the server socket.
  std::string host;
  int64_t port = 0;
  if (auto h = req.headers.Get("host")) std::tie(host, port) = SplitHostPort(*h);
  if (!target.authority.empty()) std::tie(host, port) = SplitHostPort(target.authority);
  if (host.empty()) host = ends.server_address();
  if (port == 0) port = ends.server_port();
  attrs.Add("server.address", host);
  attrs.Add("server.port", port);
  if (!server) {
    char port_text[24];
    size_t port_size = 0;
    if (port != (ctx.tls ? 443 : 80)) {
      port_text[0] = ':';
      port_size = static_cast<size_t>(
          std::to_chars(port_text + 1, port_text + sizeof(port_text), port).ptr - port_text);
    }
    // Credentials in the target are never kept; the conventions mark that they were there.
    const std::string_view userinfo = target.userinfo ? "REDACTED:REDACTED@" : "";
    std::string full;  // sized once: appending piecewise reallocated it two or three times
    full.reserve(scheme.size() + 3 + userinfo.size() + host.size() + port_size + path.size() +
                 (target.query.empty() ? 0 : 1 + query.size()));
    full.append(scheme).append("://").append(userinfo).append(host);
    full.append(port_text, port_size).append(path);
    if (!target.query.empty()) full.append("?").append(query);
    attrs.Add("url.full", full);
  } else if (ends.known) {
    attrs.Add("client.address", ends.remote_address);
  }
  attrs.Add("network.protocol.version", req.version_minor == 0 ? "1.0" : "1.1");
  if (auto ua = req.headers.Get("user-agent")) attrs.Add("user_agent.original", *ua);
  attrs.Add("http.request.body.size", static_cast<int64_t>(req.body_size));
  if (resp) {
    attrs.Add("http.response.status_code", static_cast<int64_t>(resp->status));
    attrs.Add("http.response.body.size", static_cast<int64_t>(resp->body_size));
    const bool error = resp->status >= 500 || (!server && resp->status >= 400);
    if (error) {
      s.status = trace::StatusCode::kError;
      attrs.Add("error.type", std::to_string(resp->status));
    }
  }
  if (req.framing_conflict) {  // answered or not, not a request to show as a success
    s.status = trace::StatusCode::kError;
    if (!attrs.Has("error.type")) attrs.Add("error.type", "http_framing_conflict");
    s.status_message = "request has both Content-Length and Transfer-Encoding";
  }
  if (!x.error_type.empty() && (!resp || x.error != ExchangeError::kNone)) {
    s.status = trace::StatusCode::kError;
    if (!attrs.Has("error.type")) attrs.Add("error.type", x.error_type);
    s.status_message = x.error_type;
  }
  attrs.Done();
}

}  // namespace zerotrace::protocols::http1
