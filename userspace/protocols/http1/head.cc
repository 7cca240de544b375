// Message-head grammar for HTTP/1.x (RFC 9112 sections 3-6) and first-bytes detection.
#include "protocols/http1/head.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

namespace zerotrace::protocols::http1 {
namespace {

constexpr size_t npos = std::string_view::npos;
// A request line longer than this is not trusted when detecting or resynchronising.
constexpr size_t kMaxDetectLine = 8 * 1024;
// Longer method tokens are not believed.
constexpr size_t kMaxMethod = 32;
// Content-Length values above this are treated as malformed (no real body is 4 EiB).
constexpr uint64_t kMaxContentLength = uint64_t{1} << 62;
// How much of a head's first bytes the scan prefetches (most heads are shorter).
constexpr size_t kPrefetchBytes = 1024;

// Methods that detection and resynchronisation accept (parsing accepts any token).
constexpr std::array<std::string_view, 19> kKnownMethods = {
    "GET",   "HEAD",   "POST",     "PUT",       "DELETE", "CONNECT", "OPTIONS",
    "TRACE", "PATCH",  "PROPFIND", "PROPPATCH", "MKCOL",  "COPY",    "MOVE",
    "LOCK",  "UNLOCK", "REPORT",   "SEARCH",    "PURGE"};

// RFC 9110 token characters.
constexpr std::array<bool, 256> MakeTcharTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = MakeTcharTable();

bool IsTchar(char c) { return kTchar[static_cast<unsigned char>(c)]; }
// What NameEnd accepts in a field name.
bool IsNameChar(char c) { return c > 0x20 && c < 0x7f && c != ':'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOws(char c) { return c == ' ' || c == '\t'; }
// What detection accepts in a request-target: no space, no control character, DEL excepted;
// bytes above 0x7f are fine (raw UTF-8 that clients send unescaped).
bool IsTargetByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

// Hot path. End of a field name starting at i: the first byte that is a space or control,
// ':', DEL or non-ASCII, found 8 bytes at a time. Names are thus visible ASCII without ':';
// RFC 9110 tokens are stricter, but a passive observer need not reject what a peer accepted.
size_t NameEnd(const char* b, size_t i, size_t n) {
  static_assert(std::endian::native == std::endian::little, "byte 0 must be the lowest bits");
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  while (i + 8 <= n) {
    uint64_t x;
    std::memcpy(&x, b + i, 8);
    const uint64_t colon = x ^ (kOnes * ':');
    const uint64_t del = x ^ (kOnes * 0x7f);
    // Per byte: below 0x21, equal to ':' or 0x7f, or high bit set. Only the lowest flagged
    // byte is exact (borrows run upward), and it is the one wanted.
    const uint64_t stop =
        (((x - kOnes * 0x21) & ~x) | ((colon - kOnes) & ~colon) | ((del - kOnes) & ~del) | x) &
        kHigh;
    if (stop != 0) return i + static_cast<size_t>(std::countr_zero(stop)) / 8;
    i += 8;
  }
  while (i < n && IsNameChar(b[i])) ++i;
  return i;
}

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && IsOws(v.front())) v.remove_prefix(1);
  while (!v.empty() && IsOws(v.back())) v.remove_suffix(1);
  return v;
}

// Compares `s` with `want` for as many bytes as `s` has: kMaybe when `s` is a proper prefix.
Detection MatchPrefix(std::string_view s, std::string_view want) {
  const size_t n = std::min(s.size(), want.size());
  if (s.substr(0, n) != want.substr(0, n)) return Detection::kNo;
  return n == want.size() ? Detection::kYes : Detection::kMaybe;
}

// "HTTP/1.x" followed by `next` (a predicate on the next byte); kMaybe when input runs out.
Detection MatchVersion(std::string_view s, size_t* used) {
  Detection d = MatchPrefix(s, "HTTP/1.");
  if (d != Detection::kYes) return d;
  if (s.size() < 8) return Detection::kMaybe;
  if (!IsDigit(s[7])) return Detection::kNo;
  *used = 8;
  return Detection::kYes;
}

}  // namespace

bool IsTokenChar(char c) { return IsTchar(c); }

bool IsKnownMethod(std::string_view method) {
  // Hot path (every message start): dispatch on length before comparing.
  if (method.size() < 3 || method.size() > 9) return false;
  for (std::string_view m : kKnownMethods) {
    if (m.size() == method.size() && m[0] == method[0] && m == method) return true;
  }
  return false;
}

// Any RFC 9110 token is a method (QUERY, M-SEARCH, lower-case "get"), when the rest of the line
// is a request line: "TOKEN SP target SP HTTP/1.x CRLF". The target is anything but spaces and
// control characters (raw UTF-8 and other non-ASCII bytes included: peers send them).
Detection DetectHttp1Request(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && i <= kMaxMethod && IsTchar(s[i])) ++i;
  if (i == s.size()) return i <= kMaxMethod ? Detection::kMaybe : Detection::kNo;
  if (i == 0 || i > kMaxMethod || s[i] != ' ') return Detection::kNo;
  const size_t target = ++i;
  while (i < s.size() && i - target <= kMaxDetectLine && IsTargetByte(s[i])) ++i;
  if (i == s.size()) return Detection::kMaybe;
  if (i == target || s[i] != ' ' || i - target > kMaxDetectLine) return Detection::kNo;
  size_t used = 0;
  const Detection v = MatchVersion(s.substr(i + 1), &used);
  if (v != Detection::kYes) return v;
  i += 1 + used;
  if (i == s.size()) return Detection::kMaybe;
  if (s[i] == '\n') return Detection::kYes;
  if (s[i] != '\r') return Detection::kNo;
  if (i + 1 == s.size()) return Detection::kMaybe;
  return s[i + 1] == '\n' ? Detection::kYes : Detection::kNo;
}

Detection DetectHttp1Response(std::string_view s) {
  size_t used = 0;
  const Detection v = MatchVersion(s, &used);
  if (v != Detection::kYes) return v;
  // SP, three digits (first 1-5), then SP or the end of the line.
  for (size_t i = used; i < used + 5; ++i) {
    if (i == s.size()) return Detection::kMaybe;
    const char c = s[i];
    bool ok;
    if (i == used) {
      ok = c == ' ';
    } else if (i == used + 1) {
      ok = c >= '1' && c <= '5';
    } else if (i < used + 4) {
      ok = IsDigit(c);
    } else {
      ok = c == ' ' || c == '\r' || c == '\n';
    }
    if (!ok) return Detection::kNo;
  }
  return Detection::kYes;
}

void HeadScanner::Reset(bool has_start_line) {
  line_start_ = 0;
  fields_start_ = 0;
  in_start_line_ = has_start_line;
  malformed_ = false;
  folded_ = false;
  entries_.clear();
  framing_fields_.clear();
}

// Hot path.
size_t HeadScanner::Scan(std::string_view s) {
  const char* b = s.data();
  const size_t n = s.size();
  const uint32_t base = static_cast<uint32_t>(fields_start_);
  if (line_start_ == 0) {
    // The bytes just arrived (from the ring buffer): cold. Ask for the cache lines a head
    // usually spans all at once, instead of one miss after another as the lines are read.
    const uintptr_t first = reinterpret_cast<uintptr_t>(b) & ~uintptr_t{63};
    const uintptr_t end = reinterpret_cast<uintptr_t>(b) + std::min(n, kPrefetchBytes);
    for (uintptr_t p = first + 64; p < end; p += 64) {
      __builtin_prefetch(reinterpret_cast<const void*>(p));
    }
  }
  while (line_start_ < n) {
    const size_t i = line_start_;
    if (!in_start_line_ && !malformed_) {
      // The common line, "name: value", read once: the name, then memchr for the line end.
      size_t c = NameEnd(b, i, n);
      if (c == n) return npos;
      if (c > i && b[c] == ':') {
        const void* nl = std::memchr(b + c, '\n', n - c);
        if (nl == nullptr) return npos;
        const size_t e = static_cast<size_t>(static_cast<const char*>(nl) - b);
        line_start_ = e + 1;
        if (entries_.size() >= kMaxHeaderFields) {
          malformed_ = true;
          continue;
        }
        size_t vs = c + 1;
        size_t ve = e;
        if (ve > vs && b[ve - 1] == '\r') --ve;
        while (vs < ve && IsOws(b[vs])) ++vs;
        while (ve > vs && IsOws(b[ve - 1])) --ve;
        // Content-Length (14), Transfer-Encoding (17) and Upgrade (7) decide framing: note
        // where they may be, so they are not searched for by name afterwards.
        const size_t name_len = c - i;
        const char first = static_cast<char>(b[i] | 0x20);
        if ((name_len == 14 && first == 'c') || (name_len == 17 && first == 't') ||
            (name_len == 7 && first == 'u')) {
          framing_fields_.push_back(static_cast<uint32_t>(entries_.size()));
        }
        entries_.push_back({static_cast<uint32_t>(i) - base, static_cast<uint32_t>(name_len),
                            static_cast<uint32_t>(vs) - base, static_cast<uint32_t>(ve - vs)});
        continue;
      }
    }
    // The start line, the empty line, an obs-fold, or a malformed line.
    const void* nl = std::memchr(b + i, '\n', n - i);
    if (nl == nullptr) return npos;
    const size_t e = static_cast<size_t>(static_cast<const char*>(nl) - b);
    line_start_ = e + 1;
    if (in_start_line_) {
      in_start_line_ = false;
      fields_start_ = line_start_;
      return Scan(s);  // fields are indexed relative to their start
    }
    size_t le = e;
    if (le > i && b[le - 1] == '\r') --le;
    if (le == i) return line_start_;         // the empty line ends the block
    if (malformed_) continue;                // only looking for the end now
    if (!IsOws(b[i]) || entries_.empty()) {  // not a field, nor a fold of one
      malformed_ = true;
      continue;
    }
    size_t ve = le;  // obs-fold: continues the previous field's value
    while (ve > i && IsOws(b[ve - 1])) --ve;
    HeaderList::Entry& last = entries_.back();
    const size_t value_off = last.value_off + base;
    if (ve > value_off) last.value_len = static_cast<uint32_t>(ve - value_off);
    folded_ = true;
  }
  return npos;
}

void HeadScanner::Fill(std::string_view unit, HeaderList* out) const {
  const size_t end = std::min(unit.size(), std::max(line_start_, fields_start_));
  out->Assign(unit.substr(fields_start_, end - fields_start_), entries_.data(), entries_.size());
  if (!folded_) return;
  // RFC 9112 section 5.2: a recipient may replace each obs-fold with spaces.
  for (const HeaderList::Entry& e : entries_) {
    for (size_t k = e.value_off; k < e.value_off + e.value_len; ++k) {
      if (out->buf_[k] == '\r' || out->buf_[k] == '\n') out->buf_[k] = ' ';
    }
  }
}

FramingHeaders HeadScanner::Framing(std::string_view unit) const {
  FramingHeaders f;
  for (uint32_t i : framing_fields_) {
    const HeaderList::Entry& e = entries_[i];
    AccumulateFraming(unit.substr(fields_start_ + e.name_off, e.name_len),
                      unit.substr(fields_start_ + e.value_off, e.value_len), &f);
  }
  return f;
}

Detection DetectMessageStart(MessageKind kind, std::string_view s) {
  if (kind == MessageKind::kResponse) {
    // "HTTP/1.x " is enough here: ParseStatusLine checks the status code.
    if (s.size() >= 9 && std::memcmp(s.data(), "HTTP/1.", 7) == 0 && IsDigit(s[7]) && s[8] == ' ') {
      return Detection::kYes;
    }
    return DetectHttp1Response(s);
  }
  // Any method token and a space: the whole line is checked when it is parsed.
  size_t i = 0;
  while (i < s.size() && i <= kMaxMethod && IsTchar(s[i])) ++i;
  if (i == s.size()) return DetectHttp1Request(s);  // the method may still be arriving
  return i > 0 && i <= kMaxMethod && s[i] == ' ' ? Detection::kYes : Detection::kNo;
}

bool ParseRequestLine(std::string_view line, HttpRequest* req) {
  // "METHOD SP target SP HTTP/1.x": the version is the fixed-size tail, the method a token,
  // and the target whatever lies between (no space inside).
  constexpr size_t kVersion = 8;  // "HTTP/1.x"
  if (line.size() < kVersion + 4) return false;
  const size_t v = line.size() - kVersion;
  if (line[v - 1] != ' ' || line.compare(v, 7, "HTTP/1.") != 0 || !IsDigit(line[v + 7])) {
    return false;
  }
  size_t i = 0;
  while (i < v && IsTchar(line[i])) ++i;
  if (i == 0 || line[i] != ' ') return false;
  const size_t target = i + 1;
  const size_t target_len = v - 1 - std::min(target, v - 1);
  if (target_len == 0 || std::memchr(line.data() + target, ' ', target_len) != nullptr) {
    return false;
  }
  req->method.assign(line.data(), i);
  req->target.assign(line.data() + target, target_len);
  req->version_minor = static_cast<uint8_t>(line[v + 7] - '0');
  return true;
}

bool ParseStatusLine(std::string_view line, HttpResponse* resp) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !IsDigit(line[7]) || line[8] != ' ' ||
      !IsDigit(line[9]) || !IsDigit(line[10]) || !IsDigit(line[11])) {
    return false;
  }
  if (line.size() > 12 && line[12] != ' ') return false;
  resp->version_minor = static_cast<uint8_t>(line[7] - '0');
  resp->status =
      static_cast<uint16_t>((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
  if (resp->status < 100) return false;
  const std::string_view reason = line.size() > 13 ? line.substr(13) : std::string_view();
  resp->reason.assign(reason.data(), reason.size());
  return true;
}

bool HeaderHasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

void AccumulateFraming(std::string_view name, std::string_view value, FramingHeaders* f) {
  if (name.size() == 7 && EqualsLowerLiteral(name, "upgrade")) {
    f->upgrade = true;
  } else if (name.size() == 14 && EqualsLowerLiteral(name, "content-length")) {
    if (!f->has_content_length && !value.empty() && value.size() <= 18) {  // the usual case
      uint64_t n = 0;
      size_t k = 0;
      while (k < value.size() && IsDigit(value[k]))
        n = n * 10 + static_cast<uint64_t>(value[k++] - '0');
      if (k == value.size()) {
        f->has_content_length = true;
        f->content_length = n;
        return;
      }
    }
    // A list of identical values is allowed (RFC 9110 section 8.6); anything else is not.
    std::string_view v = value;
    do {
      const size_t comma = v.find(',');
      const std::string_view item = TrimOws(v.substr(0, comma));
      uint64_t n = 0;
      bool ok = !item.empty();
      for (char c : item) {
        if (!IsDigit(c) || n > kMaxContentLength / 10) {
          ok = false;
          break;
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (!ok || n > kMaxContentLength || (f->has_content_length && n != f->content_length)) {
        f->content_length_valid = false;
      }
      f->has_content_length = true;
      f->content_length = n;
      v = comma == npos ? std::string_view() : v.substr(comma + 1);
    } while (!v.empty());
  } else if (name.size() == 17 && EqualsLowerLiteral(name, "transfer-encoding")) {
    f->has_transfer_encoding = true;
    // Only the final coding matters; a later field overrides an earlier one's last coding.
    const size_t comma = value.rfind(',');
    const std::string_view last = TrimOws(comma == npos ? value : value.substr(comma + 1));
    f->chunked = EqualsLowerLiteral(last, "chunked");
  }
}

FramingHeaders ScanFramingHeaders(const HeaderList& headers) {
  FramingHeaders f;
  for (const HeaderList::Field field : headers) AccumulateFraming(field.name, field.value, &f);
  return f;
}

size_t FindLineEnd(std::string_view s, size_t from) {
  if (from >= s.size()) return npos;
  const void* p = std::memchr(s.data() + from, '\n', s.size() - from);
  return p == nullptr ? npos : static_cast<size_t>(static_cast<const char*>(p) - s.data()) + 1;
}

}  // namespace zerotrace::protocols::http1
