// OTEL_EXPORTER_OTLP_* parsing: precedence, defaults and start-up errors per the specification.
#include "export/otlp_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/text.h"
#include "export/pem_files.h"

namespace zerotrace::exporter {
namespace {

using Protocol = OtlpConfig::Protocol;

constexpr std::string_view kTracesPath = "v1/traces";
constexpr std::string_view kMetricsPath = "v1/metrics";

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// A setting and where it came from, for error messages.
struct Setting {
  std::string source;  // variable or flag name
  std::string value;   // trimmed, non-empty
};

// OTEL_EXPORTER_OTLP_TRACES_<name> (or _METRICS_), else OTEL_EXPORTER_OTLP_<name>; empty counts
// as unset.
std::optional<Setting> Lookup(const GetEnvFn& getenv, const char* name,
                              OtlpSignal signal = OtlpSignal::kTraces) {
  const char* specific =
      signal == OtlpSignal::kMetrics ? "OTEL_EXPORTER_OTLP_METRICS_" : "OTEL_EXPORTER_OTLP_TRACES_";
  for (const char* prefix : {specific, "OTEL_EXPORTER_OTLP_"}) {
    std::string var = std::string(prefix) + name;
    const char* v = getenv(var.c_str());
    if (v == nullptr) continue;
    std::string_view trimmed = Trim(v);
    if (trimmed.empty()) continue;
    return Setting{std::move(var), std::string(trimmed)};
  }
  return std::nullopt;
}

StatusOr<Protocol> ParseProtocol(const Setting& s) {
  const std::string v = Lower(s.value);
  if (v == "grpc") return Protocol::kGrpc;
  if (v == "http/protobuf") return Protocol::kHttpProtobuf;
  if (v == "http/json") return Protocol::kHttpJson;
  return Status::Error(s.source + ": unknown protocol '" + s.value +
                       "' (expected grpc, http/protobuf or http/json)");
}

// Header keys are HTTP tokens; values are percent-decoded and must not break the request.
StatusOr<std::vector<std::pair<std::string, std::string>>> ParseHeaders(const Setting& s) {
  // Header values are credentials more often than not: errors name an entry by its position
  // and never echo its text.
  std::vector<std::pair<std::string, std::string>> out;
  std::string_view rest = s.value;
  for (int entry = 1; !rest.empty(); entry++) {
    const size_t comma = rest.find(',');
    const std::string_view item = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    const std::string where = s.source + ": entry " + std::to_string(entry);
    const size_t eq = item.find('=');
    const std::string_view key = eq == std::string_view::npos ? item : Trim(item.substr(0, eq));
    if (eq == std::string_view::npos || key.empty()) {
      return Status::Error(where + " is not key=value (expected k1=v1,k2=v2; text not shown)");
    }
    for (size_t i = 0; i < key.size(); i++) {
      const char c = key[i];
      const bool token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
      if (!token) {
        return Status::Error(where + ": the header name has a character not allowed in header " +
                             "names at position " + std::to_string(i + 1) +
                             " (expected k1=v1,k2=v2; text not shown)");
      }
    }
    std::string value = PercentDecode(Trim(item.substr(eq + 1)));
    for (unsigned char c : value) {
      if (c < 0x20 || c == 0x7f) {
        return Status::Error(s.source + ": the value of header '" + std::string(key) +
                             "' has a control character");
      }
    }
    out.emplace_back(Lower(key), std::move(value));
  }
  return out;
}

StatusOr<std::chrono::milliseconds> ParseTimeout(const Setting& s) {
  int64_t ms = 0;
  const char* end = s.value.data() + s.value.size();
  const auto [ptr, ec] = std::from_chars(s.value.data(), end, ms);
  if (ec != std::errc() || ptr != end || ms <= 0) {
    return Status::Error(s.source + ": '" + s.value +
                         "' is not a positive whole number of milliseconds");
  }
  return std::chrono::milliseconds(ms);
}

Status CheckReadable(const Setting& s) {
  const int fd = ::open(s.value.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::Error(s.source + ": cannot read '" + s.value + "': " + std::strerror(errno));
  }
  ::close(fd);
  return Status::Ok();
}

// The URL HTTP requests go to: a base endpoint gets "v1/traces" (`signal_path`) appended.
std::string HttpTracesUrl(const EndpointUrl& url, bool base, std::string_view signal_path) {
  std::string path = url.path, query;
  if (const size_t q = path.find('?'); q != std::string::npos) {
    query = path.substr(q);
    path.resize(q);
  }
  if (base) {
    if (path.empty() || path.back() != '/') path += '/';
    path += signal_path;
  } else if (path.empty()) {
    path = "/";
  }
  std::string out = url.scheme + "://" + url.host;
  if (url.port != 0) out += ":" + std::to_string(url.port);
  return out + path + query;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

const char* ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kGrpc:
      return "grpc";
    case Protocol::kHttpProtobuf:
      return "http/protobuf";
    case Protocol::kHttpJson:
      return "http/json";
  }
  return "?";
}

std::string EndpointForLogs(std::string_view url) {
  url = url.substr(0, url.find('#'));
  const size_t sep = url.find("://");
  const size_t host_start = sep == std::string_view::npos ? 0 : sep + 3;
  const size_t auth_end = std::min(url.find_first_of("/?", host_start), url.size());
  std::string out(url.substr(0, host_start));
  const std::string_view authority = url.substr(host_start, auth_end - host_start);
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    out += "REDACTED@";
    out += authority.substr(at + 1);
  } else {
    out += authority;
  }
  const std::string_view rest = url.substr(auth_end);
  const size_t q = rest.find('?');
  out += rest.substr(0, q);
  if (q != std::string_view::npos) out += "?REDACTED";
  return out;
}

StatusOr<EndpointUrl> ParseEndpointUrl(std::string_view url, bool allow_no_scheme) {
  const std::string quoted = "'" + EndpointForLogs(url) + "'";
  auto bad = [&](const std::string& why) {
    return Status::Error(quoted + " is not a valid endpoint: " + why);
  };
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) return bad("it contains a space or a non-ASCII character");
  }
  EndpointUrl out;
  std::string_view rest = url;
  if (const size_t sep = rest.find("://"); sep != std::string_view::npos) {
    out.scheme = Lower(rest.substr(0, sep));
    if (out.scheme != "http" && out.scheme != "https") {
      return bad("the scheme must be http:// or https://");
    }
    rest.remove_prefix(sep + 3);
  } else if (!allow_no_scheme) {
    return bad("it must start with http:// or https://");
  }
  if (const size_t hash = rest.find('#'); hash != std::string_view::npos)
    rest = rest.substr(0, hash);
  const size_t auth_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, auth_end);
  out.path = auth_end == std::string_view::npos ? "" : std::string(rest.substr(auth_end));
  if (!out.path.empty() && out.path.front() == '?') out.path.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) {
    return bad("credentials in the URL are not supported; use OTEL_EXPORTER_OTLP_HEADERS");
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 address lacks its ']'");
    out.host = std::string(authority.substr(0, close + 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return bad("unexpected text after the IPv6 address");
      port = authority.substr(1);
    }
    for (char c : std::string_view(out.host).substr(1, out.host.size() - 2)) {
      if (HexValue(c) < 0 && c != ':' && c != '.') return bad("the IPv6 address is malformed");
    }
    if (out.host.size() <= 2) return bad("the host is empty");
  } else {
    const size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (out.host.empty()) return bad("the host is empty");
    for (char c : out.host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_';
      if (!ok) return bad("the host has a character not allowed in host names");
    }
  }
  if (!port.empty() || (authority.size() > 0 && authority.back() == ':')) {
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value == 0 ||
        value > 65535) {
      return bad("the port must be a number from 1 to 65535");
    }
    out.port = static_cast<uint16_t>(value);
  }
  if (out.scheme.empty() && !out.path.empty()) {
    return bad("a path needs a scheme (http:// or https://)");
  }
  return out;
}

std::string GrpcTarget(const EndpointUrl& url) {
  const uint16_t port = url.port != 0 ? url.port : url.scheme == "http" ? 80 : 443;
  return url.host + ":" + std::to_string(port);
}

StatusOr<std::optional<OtlpConfig>> OtlpConfigFrom(const GetEnvFn& getenv,
                                                   const std::string& flag_endpoint,
                                                   const std::string& flag_protocol,
                                                   OtlpEnvSelection selection, OtlpSignal signal) {
  const bool env_endpoints = selection != OtlpEnvSelection::kOff;
  const bool metrics = signal == OtlpSignal::kMetrics;
  const char* signal_endpoint =
      metrics ? "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" : "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
  const auto Lookup = [signal](const GetEnvFn& get, const char* name) {
    return exporter::Lookup(get, name, signal);
  };
  OtlpConfig c;
  // Protocol first: it decides how the endpoint is read.
  std::optional<Setting> protocol;
  if (!Trim(flag_protocol).empty()) {
    protocol = Setting{"--otlp-protocol", std::string(Trim(flag_protocol))};
  } else {
    protocol = Lookup(getenv, "PROTOCOL");
  }
  if (protocol) {
    auto p = ParseProtocol(*protocol);
    if (!p.ok()) return p.status();
    c.protocol = *p;
  }
  const bool grpc = c.protocol == Protocol::kGrpc;

  // Endpoint: the flag, else the signal-specific variable, else the base variable.
  std::optional<Setting> endpoint;
  bool base = true;
  if (!Trim(flag_endpoint).empty()) {
    endpoint = Setting{"--otlp-endpoint", std::string(Trim(flag_endpoint))};
  } else if (const char* v = getenv(signal_endpoint);
             env_endpoints && v != nullptr && !Trim(v).empty()) {
    endpoint = Setting{signal_endpoint, std::string(Trim(v))};
    base = false;
  } else if (const char* v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
             env_endpoints && v != nullptr && !Trim(v).empty()) {
    endpoint = Setting{"OTEL_EXPORTER_OTLP_ENDPOINT", std::string(Trim(v))};
  } else if (!Trim(flag_protocol).empty() || selection == OtlpEnvSelection::kOn) {
    // --otlp-protocol alone (or OTEL_TRACES_EXPORTER=otlp) asks for OTLP: the specification's
    // default endpoint.
    endpoint =
        Setting{"default endpoint", grpc ? "http://localhost:4317" : "http://localhost:4318"};
  } else {
    return std::optional<OtlpConfig>();  // no OTLP export
  }
  auto url = ParseEndpointUrl(endpoint->value, grpc);
  if (!url.ok()) return Status::Error(endpoint->source + ": " + url.status().message());
  if (grpc) {
    c.endpoint = endpoint->value;
    if (url->scheme.empty()) {
      const auto insecure = Lookup(getenv, "INSECURE");
      c.insecure = insecure && Lower(insecure->value) == "true";
    } else {
      c.insecure = url->scheme == "http";  // the scheme wins over OTEL_EXPORTER_OTLP_INSECURE
    }
  } else {
    if (endpoint->source == "--otlp-endpoint" &&
        EndsWith(url->path.substr(0, url->path.find('?')), "/v1/traces")) {
      if (metrics) {  // the flag names the traces URL: metrics go beside it
        const size_t q = url->path.find('?');
        url->path.replace(q == std::string::npos ? url->path.size() - 10 : q - 10, 10, "");
      } else {
        base = false;
      }
    }
    c.endpoint = HttpTracesUrl(*url, base, metrics ? kMetricsPath : kTracesPath);
    c.insecure = url->scheme == "http";
  }

  if (const auto h = Lookup(getenv, "HEADERS")) {
    auto headers = ParseHeaders(*h);
    if (!headers.ok()) return headers.status();
    c.headers = std::move(*headers);
  }
  if (const auto z = Lookup(getenv, "COMPRESSION")) {
    const std::string v = Lower(z->value);
    if (v != "gzip" && v != "none") {
      return Status::Error(z->source + ": unknown compression '" + z->value +
                           "' (expected gzip or none)");
    }
    c.gzip = v == "gzip";
  }
  if (const auto t = Lookup(getenv, "TIMEOUT")) {
    auto timeout = ParseTimeout(*t);
    if (!timeout.ok()) return timeout.status();
    c.timeout = *timeout;
  }
  const auto ca = Lookup(getenv, "CERTIFICATE");
  const auto key = Lookup(getenv, "CLIENT_KEY");
  const auto cert = Lookup(getenv, "CLIENT_CERTIFICATE");
  if (key.has_value() != cert.has_value()) {
    return Status::Error(
        std::string(key ? key->source : cert->source) + " is set but " +
        (key ? "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE" : "OTEL_EXPORTER_OTLP_CLIENT_KEY") +
        " is not: mTLS needs both");
  }
  // Certificates only matter with TLS; a plaintext endpoint ignores them.
  if (!c.insecure) {
    for (const auto* s : {&ca, &key, &cert}) {
      if (!s->has_value()) continue;
      if (Status st = CheckReadable(**s); !st.ok()) return st;
    }
    // Unusable contents would otherwise only show as every export failing.
    if (ca) {
      if (Status st = CheckPemCertificates({ca->source, ca->value}); !st.ok()) return st;
    }
    if (cert) {
      const PemSetting cert_file{cert->source, cert->value};
      if (Status st = CheckPemCertificates(cert_file); !st.ok()) return st;
      if (Status st = CheckPemKeyPair({key->source, key->value}, cert_file); !st.ok()) return st;
    }
    if (ca) c.certificate = ca->value;
    if (key) c.client_key = key->value;
    if (cert) c.client_certificate = cert->value;
  }
  return std::optional<OtlpConfig>(std::move(c));
}

}  // namespace zerotrace::exporter
