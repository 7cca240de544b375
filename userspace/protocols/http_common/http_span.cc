// WriteHttpSpan: attribute names and status rules follow the OpenTelemetry HTTP conventions.
#include "protocols/http_common/http_span.h"

#include <charconv>
#include <string>

#include "protocols/http_common/route.h"
#include "trace/attribute_writer.h"

namespace zerotrace::protocols::http_common {
namespace {

// The most attributes an HTTP span gets, the stage's endpoint attributes included.
constexpr size_t kMaxAttributes = 16;

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

std::pair<std::string_view, int64_t> SplitHostPort(std::string_view authority) {
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
  return {host, p};
}

void WriteHttpSpan(const HttpSpanFields& f, const SessionContext& ctx,
                   const HttpSpanOptions& options, trace::Span* span) {
  const bool server = ctx.role == ZT_ROLE_SERVER;
  const trace::ConnEndpoints& ends = *ctx.endpoints;
  trace::Span& s = *span;
  s.status = trace::StatusCode::kUnset;
  s.status_message.clear();
  s.attributes.reserve(kMaxAttributes);  // one allocation instead of a growing vector's five
  trace::AttributeWriter attrs(&s.attributes);

  const TargetParts target = SplitTarget(f.target);
  std::string_view path = target.path.empty() ? std::string_view("/") : target.path;
  const bool conventional = IsConventionalMethod(f.method);
  // Measured hot path: the name's route (path parameters dropped, tokens templated) is written
  // straight into the name, and url.query and url.full into their attributes' own strings
  // (reused across spans), so no string of their own is allocated and copied per span.
  s.name.assign(conventional ? f.method : std::string_view("HTTP"));
  if (options.infer_routes) {
    s.name.push_back(' ');
    AppendRoute(path, &s.name);
  }
  std::string redacted_path;
  if (RedactPath(path, &redacted_path)) path = redacted_path;

  attrs.Add("http.request.method", conventional ? f.method : "_OTHER");
  if (!conventional) attrs.Add("http.request.method_original", f.method);
  attrs.Add("url.path", path);
  if (!target.query.empty()) AppendRedactedQuery(target.query, &attrs.AddString("url.query"));
  attrs.Add("url.scheme", f.scheme);

  // server.address/port: what the client asked for (Host), else the server socket.
  std::string_view host;
  int64_t port = 0;
  if (f.host) std::tie(host, port) = SplitHostPort(*f.host);
  if (!target.authority.empty()) std::tie(host, port) = SplitHostPort(target.authority);
  if (host.empty()) host = ends.server_address();
  if (port == 0) port = ends.server_port();
  attrs.Add("server.address", host);
  attrs.Add("server.port", port);
  if (!server) {
    char port_text[24];
    size_t port_size = 0;
    if (port != (f.scheme == "https" ? 443 : 80)) {
      port_text[0] = ':';
      port_size = static_cast<size_t>(
          std::to_chars(port_text + 1, port_text + sizeof(port_text), port).ptr - port_text);
    }
    // Credentials in the target are never kept; the conventions mark that they were there.
    const std::string_view userinfo = target.userinfo ? "REDACTED:REDACTED@" : "";
    std::string& full = attrs.AddString("url.full");
    full.reserve(f.scheme.size() + 3 + userinfo.size() + host.size() + port_size + path.size() +
                 (target.query.empty() ? 0 : 1 + target.query.size() + 16));
    full.append(f.scheme).append("://").append(userinfo).append(host);
    full.append(port_text, port_size).append(path);
    if (!target.query.empty()) AppendRedactedQuery(target.query, &full.append("?"));
  } else if (ends.known) {
    attrs.Add("client.address", ends.remote_address);
  }
  attrs.Add("network.protocol.version", f.version);
  if (f.user_agent) attrs.Add("user_agent.original", *f.user_agent);
  if (f.request_body_size) {
    attrs.Add("http.request.body.size", static_cast<int64_t>(*f.request_body_size));
  }
  if (f.status != 0) {
    attrs.Add("http.response.status_code", static_cast<int64_t>(f.status));
    if (f.response_body_size) {
      attrs.Add("http.response.body.size", static_cast<int64_t>(*f.response_body_size));
    }
    const bool error = f.status >= 500 || (!server && f.status >= 400);
    if (error) {
      s.status = trace::StatusCode::kError;
      attrs.Add("error.type", std::to_string(f.status));
    }
  }
  if (!f.request_error_type.empty()) {  // answered or not, not a request to show as a success
    s.status = trace::StatusCode::kError;
    if (!attrs.Has("error.type")) attrs.Add("error.type", f.request_error_type);
    s.status_message.assign(f.request_error_message);
  }
  if (!f.error_type.empty()) {
    s.status = trace::StatusCode::kError;
    if (!attrs.Has("error.type")) attrs.Add("error.type", f.error_type);
    s.status_message.assign(f.error_message.empty() ? f.error_type : f.error_message);
  }
  attrs.Done();
}

}  // namespace zerotrace::protocols::http_common
