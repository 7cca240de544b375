// URL handling for spans: request-target splitting, route templates, privacy redaction.
#include "protocols/http_common/route.h"

#include <algorithm>
#include <array>

namespace zerotrace::protocols::http_common {
namespace {

constexpr size_t npos = std::string_view::npos;
// Hex runs at least this long are ids (hashes, object ids), not words.
constexpr size_t kMinHexId = 16;
// Base64 runs at least this long (with mixed case and digits) are tokens.
constexpr size_t kMinToken = 32;

// base64 and base64url characters (and '=' padding).
bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '-' || c == '_' || c == '=';
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool AllOf(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

bool IsDigitChar(char c) { return c >= '0' && c <= '9'; }

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !IsHex(s[i])) return false;
  }
  return true;
}

// The first `c` in s from `from` on, or npos. Measured hot path: a path's segments are a few
// bytes each, where a memchr call per segment costs more than the bytes it scans.
size_t FindChar(std::string_view s, char c, size_t from) {
  for (size_t i = from; i < s.size(); i++) {
    if (s[i] == c) return i;
  }
  return npos;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

// True if `needle` (lower case) occurs in `hay`, ignoring the case of `hay`.
bool ContainsIgnoreCase(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && Lower(hay[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

}  // namespace

TargetParts SplitTarget(std::string_view target) {
  TargetParts parts;
  if (!target.empty() && target[0] == '/') {  // origin-form, nearly every request: one pass
    size_t q = npos, i = 0;
    for (; i < target.size() && target[i] != '#'; i++) {
      if (target[i] == '?' && q == npos) q = i;
    }
    parts.path = target.substr(0, std::min(q, i));
    if (q != npos) parts.query = target.substr(q + 1, i - q - 1);
    return parts;
  }
  if (const size_t hash = target.find('#'); hash != npos) target = target.substr(0, hash);
  if (target == "*") {
    parts.path = target;
    return parts;
  }
  std::string_view rest = target;
  if (!target.empty() && target[0] != '/') {
    const size_t sep = target.find("://");
    if (sep == npos) {  // authority-form (CONNECT host:port)
      parts.authority = target;
      return parts;
    }
    parts.scheme = target.substr(0, sep);
    rest = target.substr(sep + 3);
    const size_t end = rest.find_first_of("/?");
    parts.authority = rest.substr(0, end);
    if (const size_t at = parts.authority.rfind('@'); at != npos) {  // user info: never kept
      parts.authority.remove_prefix(at + 1);
      parts.userinfo = true;
    }
    rest = end == npos ? std::string_view() : rest.substr(end);
  }
  const size_t q = rest.find('?');
  parts.path = rest.substr(0, q);
  if (q != npos) parts.query = rest.substr(q + 1);
  if (parts.path.empty() && !parts.scheme.empty()) parts.path = "/";
  return parts;
}

bool IsTokenSegment(std::string_view seg) {
  // A JWT: header.payload.signature, base64url each, the header a JSON object ("eyJ").
  if (seg.size() >= 20 && seg.substr(0, 3) == "eyJ" &&
      std::count(seg.begin(), seg.end(), '.') == 2) {
    for (char c : seg) {
      if (!IsBase64Char(c) && c != '.') return false;
    }
    return true;
  }
  if (seg.size() < kMinToken) return false;
  bool upper = false, lower = false, digit = false;
  for (char c : seg) {
    if (!IsBase64Char(c)) return false;
    upper |= c >= 'A' && c <= 'Z';
    lower |= c >= 'a' && c <= 'z';
    digit |= IsDigitChar(c);
  }
  return upper && lower && digit;
}

std::string InferRoute(std::string_view path) {
  std::string route;
  route.reserve(path.size());
  AppendRoute(path, &route);
  return route;
}

// Hot path (every span's name).
void AppendRoute(std::string_view path, std::string* out) {
  if (path.empty()) {
    out->push_back('/');
    return;
  }
  // Measured hot path (BM_StageBuild ≈ 0.93, ≈ −10 ns per span; docs/PERFORMANCE.md, seventh
  // session): a path of short words (every segment under kMinHexId bytes, the shortest a
  // template takes, and none all digits; no ';') is its own route, appended whole after one
  // pass over it instead of a pass per rule and an append per segment.
  size_t seg_len = 0;
  bool digits = true, plain = true;
  for (const char c : path) {
    if (c == '/') {
      if (seg_len > 0 && digits) {
        plain = false;
        break;
      }
      seg_len = 0;
      digits = true;
    } else if (c == ';' || ++seg_len >= kMinHexId) {
      plain = false;
      break;
    } else {
      digits = digits && IsDigitChar(c);
    }
  }
  if (plain && !(seg_len > 0 && digits)) {
    out->append(path);
    return;
  }
  std::string& route = *out;
  size_t i = 0;
  while (i <= path.size()) {
    const size_t slash = FindChar(path, '/', i);
    std::string_view seg = path.substr(i, slash == npos ? npos : slash - i);
    seg = seg.substr(0, FindChar(seg, ';', 0));  // path parameters: not part of a route
    if (AllOf(seg, IsDigitChar)) {
      route += "{id}";
    } else if (IsUuid(seg)) {
      route += "{uuid}";
    } else if (seg.size() >= kMinHexId && AllOf(seg, IsHex)) {
      route += "{hex}";
    } else if (IsTokenSegment(seg)) {
      route += "{token}";
    } else {
      route += seg;
    }
    if (slash == npos) break;
    route += '/';
    i = slash + 1;
  }
}

// Hot path (every span): the common path has no ';' and no long segment, and is not copied.
bool RedactPath(std::string_view path, std::string* out) {
  // One pass: a ';' anywhere, or a segment long enough to be a token that is one.
  bool needed = false;
  for (size_t i = 0, seg_start = 0; !needed && i <= path.size(); i++) {
    const char c = i < path.size() ? path[i] : '/';
    if (c == ';') {
      needed = true;
    } else if (c == '/') {
      needed = i - seg_start >= 20 && IsTokenSegment(path.substr(seg_start, i - seg_start));
      seg_start = i + 1;
    }
  }
  if (!needed) return false;
  out->clear();
  size_t i = 0;
  while (i <= path.size()) {
    const size_t slash = path.find('/', i);
    const std::string_view seg = path.substr(i, slash == npos ? npos : slash - i);
    const size_t semi = seg.find(';');
    const std::string_view name = seg.substr(0, semi);
    out->append(IsTokenSegment(name) ? std::string_view("REDACTED") : name);
    // ";k=v;flag" -> ";k=REDACTED;REDACTED": a parameter's value, or a bare one, may be secret.
    for (size_t p = semi; p != npos;) {
      const size_t next = seg.find(';', p + 1);
      const std::string_view param = seg.substr(p + 1, next == npos ? npos : next - p - 1);
      const size_t eq = param.find('=');
      out->push_back(';');
      if (eq != npos) out->append(param.substr(0, eq + 1));
      if (!param.empty()) out->append("REDACTED");
      p = next;
    }
    if (slash == npos) break;
    out->push_back('/');
    i = slash + 1;
  }
  return true;
}

std::string RedactQuery(std::string_view query) {
  if (query.empty()) return {};  // most requests: no reserve(), no allocation
  std::string out;
  out.reserve(query.size() + 16);
  AppendRedactedQuery(query, &out);
  return out;
}

void AppendRedactedQuery(std::string_view query, std::string* out) {
  size_t i = 0;
  while (!query.empty() && i <= query.size()) {
    const size_t amp = query.find('&', i);
    const std::string_view pair = query.substr(i, amp == npos ? npos : amp - i);
    const size_t eq = pair.find('=');
    if (eq == npos) {
      if (!pair.empty()) out->append("REDACTED");  // a bare key may be the secret itself
    } else {
      out->append(pair.substr(0, eq + 1)).append("REDACTED");
    }
    if (amp == npos) break;
    out->push_back('&');
    i = amp + 1;
  }
}

bool IsSensitiveHeader(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kMarks = {
      "auth",   "cookie",  "token",   "secret",  "password",   "passwd",
      "apikey", "api-key", "api_key", "session", "credential", "signature"};
  for (std::string_view mark : kMarks) {
    if (ContainsIgnoreCase(name, mark)) return true;
  }
  return false;
}

}  // namespace zerotrace::protocols::http_common
