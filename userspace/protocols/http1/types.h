// HTTP/1.x messages and exchanges: what the parser produces and the stitcher pairs.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerotrace::protocols::http1 {

// ASCII case-insensitive equality (header names, methods, tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// Like EqualsIgnoreCase when `lower` is already lower case (cheaper: one side is folded).
// Hot path (header names against literals, per head): inline, 8 bytes folded at a time.
inline bool EqualsLowerLiteral(std::string_view a, std::string_view lower) {
  const size_t n = a.size();
  if (n != lower.size()) return false;
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) {
      const char c = a[i];
      if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c) != lower[i]) {
        return false;
      }
    }
    return true;
  }
  // Per byte: 0x20 added where it is 'A'..'Z' (an ASCII byte whose low 7 bits are >= 'A' and
  // not > 'Z'); the sums of the low 7 bits cannot carry into the next byte.
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const auto fold = [](uint64_t x) {
    const uint64_t low7 = x & ~kHigh;
    const uint64_t ge_a = low7 + kOnes * (0x80 - 'A');
    const uint64_t gt_z = low7 + kOnes * (0x7f - 'Z');
    return x | (((ge_a & ~gt_z) & ~x & kHigh) >> 2);
  };
  uint64_t u, v;
  for (size_t i = 0; i + 8 < n; i += 8) {
    std::memcpy(&u, a.data() + i, 8);
    std::memcpy(&v, lower.data() + i, 8);
    if (fold(u) != v) return false;
  }
  std::memcpy(&u, a.data() + n - 8, 8);
  std::memcpy(&v, lower.data() + n - 8, 8);
  return fold(u) == v;
}

// Header fields in wire order. The field text and its index share one buffer, so a message's
// headers cost a single allocation whatever their number.
class HeaderList {
 public:
  struct Field {
    std::string_view name;
    std::string_view value;
  };

  HeaderList() = default;
  HeaderList(const HeaderList&) = default;
  HeaderList& operator=(const HeaderList&) = default;
  // Moves leave the source empty (its index must not outlive its buffer).
  HeaderList(HeaderList&& o) noexcept { *this = std::move(o); }
  HeaderList& operator=(HeaderList&& o) noexcept {
    buf_ = std::move(o.buf_);
    index_off_ = o.index_off_;
    count_ = o.count_;
    o.buf_.clear();
    o.index_off_ = o.count_ = 0;
    return *this;
  }

  // Appends a field (copies both strings; rebuilds the index, so not for hot paths).
  void Add(std::string_view name, std::string_view value);
  // The first value whose name matches case-insensitively.
  std::optional<std::string_view> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  Field operator[](size_t i) const {
    const Entry e = entry(i);
    return {std::string_view(buf_.data() + e.name_off, e.name_len),
            std::string_view(buf_.data() + e.value_off, e.value_len)};
  }
  void clear() {
    buf_.clear();
    index_off_ = count_ = 0;
  }
  // The buffer's storage, for another list to reuse (this one is left empty).
  std::string TakeBuffer() {
    index_off_ = count_ = 0;
    std::string b = std::move(buf_);
    buf_.clear();
    return b;
  }
  // Reuses b's storage; for an empty list (one whose fields were moved away).
  void AdoptBuffer(std::string&& b) {
    buf_ = std::move(b);
    clear();
  }

  // Iteration yields Field.
  class Iterator {
   public:
    Iterator(const HeaderList* list, size_t i) : list_(list), i_(i) {}
    Field operator*() const { return (*list_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const Iterator& o) const { return i_ == o.i_; }
    bool operator!=(const Iterator& o) const { return i_ != o.i_; }

   private:
    const HeaderList* list_;
    size_t i_;
  };
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, count_}; }

 private:
  friend class HeadScanner;  // fills the buffer from a raw field block and its index
  // Offsets are into the field text at the start of buf_.
  struct Entry {
    uint32_t name_off, name_len, value_off, value_len;
  };
  Entry entry(size_t i) const {
    Entry e;
    std::memcpy(&e, buf_.data() + index_off_ + i * sizeof(Entry), sizeof(Entry));
    return e;
  }
  // Lays out `text`, then the index, in buf_ (one allocation).
  void Assign(std::string_view text, const Entry* entries, size_t n);

  std::string buf_;  // field text, then `count_` Entry records from index_off_
  uint32_t index_off_ = 0;
  uint32_t count_ = 0;
};

// How a message's body is delimited on the wire (RFC 9112 section 6).
enum class BodyFraming : uint8_t {
  kNone = 0,           // no body: requests without length, HEAD/1xx/204/304 responses
  kContentLength = 1,  // exactly Content-Length bytes
  kChunked = 2,        // chunked transfer coding, optionally with trailers
  kUntilClose = 3,     // response body runs until the connection closes
  kTunnel = 4,         // 101 Switching Protocols / CONNECT 2xx: the bytes after are not HTTP
};

// Fields every HTTP/1.x message has.
struct HttpMessage {
  uint8_t version_minor = 1;  // HTTP/1.<minor>
  HeaderList headers;
  HeaderList trailers;     // chunked trailer fields, if any
  uint64_t body_size = 0;  // decoded body bytes (chunk payloads, not chunk framing)
  BodyFraming framing = BodyFraming::kNone;
  uint64_t start_ts_ns = 0;        // monotonic time of the first byte (0 if unknown)
  uint64_t end_ts_ns = 0;          // monotonic time of the last byte (0 if unknown)
  uint32_t start_tid = 0;          // thread whose syscall moved the first byte (0 if unknown)
  uint64_t start_pos = 0;          // stream position of the first byte
  uint64_t end_pos = 0;            // stream position one past the last byte
  bool truncated = false;          // the connection ended before the message did
  bool body_framing_lost = false;  // bytes after the headers could not be framed (gap, bad chunk)
  // Requests with both Content-Length and Transfer-Encoding (RFC 9112 6.3: a smuggling vector):
  // the peers may disagree about where the body ends. conflict_end_pos is where it ends by its
  // Content-Length (the parser follows the chunked coding).
  bool framing_conflict = false;
  uint64_t conflict_end_pos = 0;
  // The capture limit cut the head: fields after the cut are unknown, and its end (with any
  // body) was skipped by position.
  bool head_cut = false;
};

struct HttpRequest : HttpMessage {
  std::string method;
  std::string target;    // request-target as sent (origin, absolute, authority or asterisk form)
  bool upgrade = false;  // asks to switch protocols (Upgrade field): HTTP may end after it
};

struct HttpResponse : HttpMessage {
  uint16_t status = 0;
  std::string reason;
  uint16_t interim_responses = 0;  // 1xx (e.g. 100 Continue) seen before this final response
};

// Why an exchange has no (complete) response.
enum class ExchangeError : uint8_t {
  kNone = 0,
  kResponseMissingAtClose = 1,  // connection closed with the request unanswered
  kConnectionReset = 2,         // connection reset with the request unanswered
  kTimeout = 3,                 // no response within the timeout
  kResponseTruncated = 4,       // the response started but the connection ended mid-message
  kRequestTruncated = 5,        // the connection ended before the request was complete
  kAgentShutdown = 6,           // the agent stopped while the exchange was in flight
};

// The `error.type` string for an error (empty for kNone).
std::string_view ExchangeErrorName(ExchangeError error);

// One request and, unless `error` says why not, its response.
struct HttpExchange {
  uint64_t seq = 0;  // the request's number on its connection (RequestListener's seq)
  HttpRequest req;
  std::optional<HttpResponse> resp;
  std::string error_type;  // ExchangeErrorName(error); empty when the exchange completed
  ExchangeError error = ExchangeError::kNone;
};

// Self-metrics of the HTTP/1.x stage. Shared by every connection's stitcher.
struct Http1Stats {
  uint64_t requests_parsed = 0;         // request heads parsed
  uint64_t responses_parsed = 0;        // final response heads parsed
  uint64_t interim_responses = 0;       // 1xx responses skipped (100 Continue, 103, ...)
  uint64_t exchanges = 0;               // exchanges emitted (including error exchanges)
  uint64_t parse_errors = 0;            // malformed start lines, headers or chunk framing
  uint64_t resyncs = 0;                 // times a parser started scanning for a message start
  uint64_t resync_bytes_skipped = 0;    // bytes (data and gaps) skipped while scanning
  uint64_t dropped_gap_at_start = 0;    // messages whose start fell in a gap
  uint64_t dropped_gap_in_headers = 0;  // messages dropped for a gap inside the header block
  uint64_t headers_too_large = 0;       // header blocks over the 64 KiB limit
  uint64_t body_framing_lost = 0;       // bodies that could not be followed to their end
  uint64_t body_gap_bytes = 0;          // body bytes skipped through gaps (capture limit)
  uint64_t unpaired_requests = 0;       // requests dropped because pairing became uncertain
  uint64_t unpaired_responses = 0;      // responses not paired (stale, ambiguous, unsolicited)
  uint64_t ambiguous_responses = 0;     // responses that could answer more than one request
  uint64_t timeouts = 0;                // exchanges emitted with error "timeout"
  uint64_t missing_at_close = 0;        // exchanges emitted without response at close/reset
  uint64_t truncated_at_close = 0;      // exchanges with a truncated request or response
  uint64_t unfinished_unobserved = 0;   // requests in flight when the agent stopped following
  uint64_t unfinished_shutdown = 0;     // requests in flight at shutdown (error exchanges)
  uint64_t tunnels = 0;                 // connections that left HTTP (upgrade, CONNECT)
  uint64_t framing_conflicts = 0;       // requests with both Content-Length and Transfer-Encoding
  uint64_t doubtful_requests = 0;       // requests inside such a body's Content-Length: not paired
  uint64_t garbage_skips = 0;  // response bytes skipped that could hide no response (no doubt)
  uint64_t heads_cut = 0;      // heads longer than their syscall's capture, kept up to the cut

  Http1Stats& operator+=(const Http1Stats& o);
};

}  // namespace zerotrace::protocols::http1
