// SpanLog: OTLP/JSON lines → Span; CheckSpan: one span against the HTTP semantic conventions.
#include "span_log.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace zerotrace::e2e {
namespace {

using nlohmann::json;

// OTLP/JSON encodes 64-bit integers as strings, but accept numbers too.
std::optional<int64_t> JsonInt(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      size_t used = 0;
      const int64_t n = std::stoll(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size()) return n;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

int SpanKind(const json& v) {
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "SPAN_KIND_SERVER") return kServer;
    if (s == "SPAN_KIND_CLIENT") return kClient;
  }
  return 0;
}

std::map<std::string, json, std::less<>> Attributes(const json& list) {
  std::map<std::string, json, std::less<>> out;
  if (!list.is_array()) return out;
  for (const json& kv : list) out[kv.value("key", "")] = kv.value("value", json::object());
  return out;
}

bool IsLowerHex(const std::string& s, size_t len) {
  return s.size() == len &&
         std::all_of(s.begin(), s.end(),
                     [](char c) {
                       return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
                     }) &&
         s.find_first_not_of('0') != std::string::npos;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

std::string AnyValueText(const json& v) {
  if (v.contains("stringValue")) return '"' + v["stringValue"].get<std::string>() + '"';
  if (v.contains("intValue"))
    return JsonInt(v["intValue"]) ? std::to_string(*JsonInt(v["intValue"])) : v.dump();
  return v.dump();
}

}  // namespace

std::optional<std::string> Span::Str(std::string_view key) const {
  auto it = attributes.find(key);
  if (it == attributes.end() || !it->second.contains("stringValue")) return std::nullopt;
  return it->second["stringValue"].get<std::string>();
}

std::optional<int64_t> Span::Int(std::string_view key) const {
  auto it = attributes.find(key);
  if (it == attributes.end() || !it->second.contains("intValue")) return std::nullopt;
  return JsonInt(it->second["intValue"]);
}

std::string Span::Describe() const {
  std::ostringstream o;
  o << (kind == kServer   ? "SERVER"
        : kind == kClient ? "CLIENT"
                          : "kind=" + std::to_string(kind))
    << " \"" << name << "\" pid=" << pid << " (" << service_name << ") status=" << status_code
    << " dur=" << (end_ns - start_ns) / 1000 << "us span=" << span_id
    << " parent=" << parent_span_id << " {";
  for (const auto& [k, v] : attributes) o << ' ' << k << '=' << AnyValueText(v);
  o << " }";
  return o.str();
}

std::optional<std::string> SpanLog::Poll() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return std::nullopt;  // not written yet
  in.seekg(static_cast<std::streamoff>(offset_));
  std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  for (size_t nl; (nl = rest.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    const std::string line = rest.substr(pos, nl - pos);
    offset_ += nl + 1 - pos;
    if (line.empty()) continue;
    ++lines_;
    json req;
    try {
      req = json::parse(line);
    } catch (const std::exception& e) {
      return "line " + std::to_string(lines_) + " is not JSON (" + e.what() +
             "): " + line.substr(0, 300);
    }
    if (!req.contains("resourceSpans") || !req["resourceSpans"].is_array()) {
      return "line " + std::to_string(lines_) + " has no resourceSpans: " + line.substr(0, 300);
    }
    for (const json& rs : req["resourceSpans"]) {
      const auto resource =
          Attributes(rs.value("resource", json::object()).value("attributes", json()));
      Span base;
      base.resource = resource;
      if (auto it = resource.find("process.pid");
          it != resource.end() && it->second.contains("intValue")) {
        base.pid = JsonInt(it->second["intValue"]).value_or(-1);
      }
      if (auto it = resource.find("service.name"); it != resource.end()) {
        base.service_name = it->second.value("stringValue", "");
      }
      for (const json& ss : rs.value("scopeSpans", json::array())) {
        for (const json& s : ss.value("spans", json::array())) {
          Span span = base;
          span.trace_id = s.value("traceId", "");
          span.span_id = s.value("spanId", "");
          span.parent_span_id = s.value("parentSpanId", "");
          span.name = s.value("name", "");
          span.kind = SpanKind(s.value("kind", json()));
          span.start_ns =
              static_cast<uint64_t>(JsonInt(s.value("startTimeUnixNano", json())).value_or(0));
          span.end_ns =
              static_cast<uint64_t>(JsonInt(s.value("endTimeUnixNano", json())).value_or(0));
          span.status_code = s.value("status", json::object()).value("code", 0);
          span.attributes = Attributes(s.value("attributes", json()));
          spans_.push_back(std::move(span));
        }
      }
    }
  }
  return std::nullopt;
}

std::vector<Span> SpanLog::ForPid(int64_t pid) const {
  std::vector<Span> out;
  for (const Span& s : spans_) {
    if (s.pid == pid) out.push_back(s);
  }
  std::stable_sort(out.begin(), out.end(), [](const Span& a, const Span& b) {
    return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.end_ns < b.end_ns;
  });
  return out;
}

size_t SpanLog::CountForPid(int64_t pid) const {
  return std::count_if(spans_.begin(), spans_.end(), [pid](const Span& s) { return s.pid == pid; });
}

std::string ExpectedSpanName(std::string_view method, std::string_view path) {
  std::string route;
  size_t pos = 0;
  while (pos < path.size()) {
    const size_t slash = path.find('/', pos + 1);
    const std::string_view seg =
        path.substr(pos, slash == std::string_view::npos ? slash : slash - pos);
    route += AllDigits(seg.substr(1)) ? std::string("/{id}") : std::string(seg);
    if (slash == std::string_view::npos) break;
    pos = slash;
  }
  return std::string(method) + " " + route;
}

std::string RedactedQuery(std::string_view query) {
  std::string out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view pair = query.substr(pos, amp - pos);
    if (!out.empty()) out += '&';
    const size_t eq = pair.find('=');
    out += eq == std::string_view::npos ? std::string(pair)
                                        : std::string(pair.substr(0, eq)) + "=REDACTED";
    pos = amp + 1;
  }
  return out;
}

WantSpan::WantSpan(int kind_, std::string method_, std::string_view target, int status_)
    : kind(kind_), method(std::move(method_)), status(status_) {
  const size_t q = target.find('?');
  path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) query = RedactedQuery(target.substr(q + 1));
  name = ExpectedSpanName(method, path);
}

std::vector<std::string> CheckSpan(const Span& s, const WantSpan& w) {
  std::vector<std::string> bad;
  auto str = [&](const char* key, const std::string& want) {
    const auto got = s.Str(key);
    if (got != want)
      bad.push_back(std::string(key) + ": want \"" + want + "\", got " +
                    (got ? '"' + *got + '"' : "(absent)"));
  };
  auto num = [&](const char* key, int64_t want) {
    const auto got = s.Int(key);
    if (got != want)
      bad.push_back(std::string(key) + ": want " + std::to_string(want) + ", got " +
                    (got ? std::to_string(*got) : "(absent)"));
  };
  auto absent = [&](const char* key) {
    if (s.Has(key))
      bad.push_back(std::string(key) + ": want absent, got " + AnyValueText(s.attributes.at(key)));
  };

  if (s.kind != w.kind)
    bad.push_back("kind: want " + std::to_string(w.kind) + ", got " + std::to_string(s.kind));
  if (s.name != w.name) bad.push_back("name: want \"" + w.name + "\", got \"" + s.name + '"');
  if (!w.service_names.empty() && std::find(w.service_names.begin(), w.service_names.end(),
                                            s.service_name) == w.service_names.end()) {
    std::string want;
    for (const auto& n : w.service_names) want += (want.empty() ? "\"" : " or \"") + n + '"';
    bad.push_back("service.name: want " + want + ", got \"" + s.service_name + '"');
  }
  if (!IsLowerHex(s.trace_id, 32)) bad.push_back("traceId is not 32 hex digits: " + s.trace_id);
  if (!IsLowerHex(s.span_id, 16)) bad.push_back("spanId is not 16 hex digits: " + s.span_id);
  if (s.start_ns == 0 || s.end_ns < s.start_ns) {
    bad.push_back("bad times: start " + std::to_string(s.start_ns) + " end " +
                  std::to_string(s.end_ns));
  }
  str("http.request.method", w.method);
  str("url.path", w.path);
  if (w.query.empty()) {
    absent("url.query");
  } else {
    str("url.query", w.query);
  }
  str("url.scheme", w.scheme);
  str("network.protocol.version", w.version);
  str("server.address", "127.0.0.1");
  if (w.server_port != 0) num("server.port", w.server_port);
  str("network.peer.address", "127.0.0.1");
  if (w.kind == kServer) {
    str("client.address", "127.0.0.1");
    absent("url.full");
    if (w.peer_port != 0) num("network.peer.port", w.peer_port);
  } else {
    if (w.server_port != 0) {
      num("network.peer.port", w.server_port);
      str("url.full", w.scheme + "://127.0.0.1:" + std::to_string(w.server_port) + w.path +
                          (w.query.empty() ? "" : "?" + w.query));
    }
  }
  if (!w.user_agent.empty()) str("user_agent.original", w.user_agent);
  if (w.status != 0) {
    num("http.response.status_code", w.status);
  } else {
    absent("http.response.status_code");
  }
  if (w.resp_body) num("http.response.body.size", *w.resp_body);
  if (w.req_body != 0 || s.Has("http.request.body.size")) num("http.request.body.size", w.req_body);

  // Status and error.type: 5xx on both kinds and 4xx on CLIENT spans are errors named by the
  // status code; transport failures are errors with a reason.
  const bool http_error = w.status >= 500 || (w.kind == kClient && w.status >= 400);
  if (w.transport_error) {
    if (!w.error_type.empty()) {
      str("error.type", w.error_type);
    } else if (!s.Has("error.type")) {
      bad.push_back("error.type: want present, got (absent)");
    }
  } else if (http_error) {
    str("error.type", std::to_string(w.status));
  } else {
    absent("error.type");
  }
  const int want_status = (w.transport_error || http_error) ? kStatusError : kStatusUnset;
  if (s.status_code != want_status) {
    bad.push_back("status.code: want " + std::to_string(want_status) + ", got " +
                  std::to_string(s.status_code));
  }
  for (auto& b : bad) b = w.method + " " + w.path + ": " + b;
  return bad;
}

std::vector<std::string> CheckSpans(const std::vector<Span>& spans,
                                    const std::vector<WantSpan>& wants) {
  std::vector<std::string> bad;
  if (spans.size() != wants.size()) {
    bad.push_back("want " + std::to_string(wants.size()) + " spans, got " +
                  std::to_string(spans.size()));
  }
  for (size_t i = 0; i < std::min(spans.size(), wants.size()); ++i) {
    for (auto& b : CheckSpan(spans[i], wants[i]))
      bad.push_back("span " + std::to_string(i) + ": " + b);
  }
  return bad;
}

}  // namespace zerotrace::e2e
