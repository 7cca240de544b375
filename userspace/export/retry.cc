// Retry classification (OTLP specification), RetryInfo/Retry-After parsing and jittered backoff.
#include "export/retry.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <vector>

namespace zerotrace::exporter {
namespace {

using std::chrono::milliseconds;

// gRPC status codes (grpc/impl/codegen/status.h), spelled out so this file needs no gRPC.
constexpr std::array<const char*, 17> kGrpcCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
enum GrpcCode {
  kCancelled = 1,
  kDeadlineExceeded = 4,
  kResourceExhausted = 8,
  kAborted = 10,
  kOutOfRange = 11,
  kUnavailable = 14,
  kDataLoss = 15,
};

constexpr std::string_view kRetryInfoType = "google.rpc.RetryInfo";

// Minimal protobuf wire reader: enough to walk google.rpc.Status and skip unknown fields.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : p_(data) {}
  bool done() const { return p_.empty(); }

  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && !p_.empty(); shift += 7) {
      const auto b = static_cast<uint8_t>(p_.front());
      p_.remove_prefix(1);
      *v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  // Next field: its number and wire type; for LEN fields *bytes holds the payload, for VARINT
  // *varint the value. Fixed-width fields are skipped over (value not needed here).
  bool Next(uint32_t* field, uint32_t* type, uint64_t* varint, std::string_view* bytes) {
    uint64_t tag;
    if (!Varint(&tag)) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *type = static_cast<uint32_t>(tag & 7);
    switch (*type) {
      case 0:
        return Varint(varint);
      case 1:
        return Skip(8);
      case 2: {
        uint64_t len;
        if (!Varint(&len) || len > p_.size()) return false;
        *bytes = p_.substr(0, len);
        p_.remove_prefix(len);
        return true;
      }
      case 5:
        return Skip(4);
      default:
        return false;  // groups are not used by these messages
    }
  }

 private:
  bool Skip(size_t n) {
    if (p_.size() < n) return false;
    p_.remove_prefix(n);
    return true;
  }
  std::string_view p_;
};

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutLen(uint32_t field, std::string_view bytes, std::string* out) {
  PutVarint((uint64_t{field} << 3) | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

void PutVarintField(uint32_t field, uint64_t v, std::string* out) {
  PutVarint(uint64_t{field} << 3, out);
  PutVarint(v, out);
}

// google.protobuf.Duration{seconds = 1, nanos = 2}.
std::optional<milliseconds> DecodeDuration(std::string_view bytes) {
  WireReader r(bytes);
  int64_t seconds = 0;
  int32_t nanos = 0;
  while (!r.done()) {
    uint32_t field, type;
    uint64_t v = 0;
    std::string_view b;
    if (!r.Next(&field, &type, &v, &b)) return std::nullopt;
    if (field == 1 && type == 0) seconds = static_cast<int64_t>(v);
    if (field == 2 && type == 0) nanos = static_cast<int32_t>(v);
  }
  if (seconds < 0 || nanos < 0) return milliseconds(0);
  // A hint past a day is nonsense; clamp so arithmetic cannot overflow.
  seconds = std::min<int64_t>(seconds, 86400);
  return milliseconds(seconds * 1000 + (nanos + 999999) / 1000000);
}

std::optional<int> MonthIndex(std::string_view m) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; i++) {
    if (m == kMonths[i]) return i;
  }
  return std::nullopt;
}

bool ParseInt(std::string_view s, int* v) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" or
// asctime "Sun Nov  6 08:49:37 1994"; seconds since the epoch.
std::optional<int64_t> ParseHttpDate(std::string_view s) {
  std::vector<std::string_view> t;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',' || s[i] == '-')) i++;
    const size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != ',' && s[i] != '-') i++;
    if (i > start) t.push_back(s.substr(start, i - start));
  }
  std::string_view day, month, year, time;
  if (t.size() == 6 && t[5] == "GMT") {
    day = t[1], month = t[2], year = t[3], time = t[4];
  } else if (t.size() == 5) {
    month = t[1], day = t[2], time = t[3], year = t[4];
  } else {
    return std::nullopt;
  }
  std::tm tm{};
  const auto mon = MonthIndex(month);
  int y, d, hh, mm, ss;
  if (!mon || !ParseInt(year, &y) || !ParseInt(day, &d) || time.size() != 8 || time[2] != ':' ||
      time[5] != ':' || !ParseInt(time.substr(0, 2), &hh) || !ParseInt(time.substr(3, 2), &mm) ||
      !ParseInt(time.substr(6, 2), &ss)) {
    return std::nullopt;
  }
  if (year.size() == 2) y += y < 70 ? 2000 : 1900;  // RFC 850's two-digit years
  if (d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = *mon;
  tm.tm_mday = d;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

bool IsRetryableGrpcCode(int code, bool has_retry_info) {
  switch (code) {
    case kCancelled:
    case kDeadlineExceeded:
    case kAborted:
    case kOutOfRange:
    case kUnavailable:
    case kDataLoss:
      return true;
    case kResourceExhausted:
      return has_retry_info;
    default:
      return false;
  }
}

bool IsRetryableHttpStatus(long status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

AttemptResult ClassifyGrpc(int code, std::string_view message, std::string_view details) {
  AttemptResult r;
  if (code == 0) return r;
  r.server_delay = details.empty() ? std::nullopt : RetryInfoDelay(details);
  r.kind = IsRetryableGrpcCode(code, r.server_delay.has_value()) ? AttemptResult::Kind::kRetryable
                                                                 : AttemptResult::Kind::kPermanent;
  r.reason = code > 0 && code < static_cast<int>(kGrpcCodeNames.size())
                 ? kGrpcCodeNames[code]
                 : "code " + std::to_string(code);
  r.message = std::string(message);
  return r;
}

AttemptResult ClassifyHttp(long status, std::string_view retry_after, std::string_view message,
                           std::chrono::system_clock::time_point now) {
  AttemptResult r;
  if (status >= 200 && status < 300) return r;
  r.reason = "HTTP " + std::to_string(status);
  r.message = std::string(message);
  if (IsRetryableHttpStatus(status)) {
    r.kind = AttemptResult::Kind::kRetryable;
    if (!retry_after.empty()) r.server_delay = ParseRetryAfter(retry_after, now);
  } else {
    r.kind = AttemptResult::Kind::kPermanent;
  }
  return r;
}

std::optional<milliseconds> ParseRetryAfter(std::string_view value,
                                            std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r' ||
                            value.back() == '\n')) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    uint64_t seconds = 0;
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ptr != value.data() + value.size()) return std::nullopt;
    if (ec == std::errc::result_out_of_range) seconds = 86400;
    if (ec != std::errc() && ec != std::errc::result_out_of_range) return std::nullopt;
    return milliseconds(std::min<uint64_t>(seconds, 86400) * 1000);
  }
  const auto date = ParseHttpDate(value);
  if (!date) return std::nullopt;
  const auto delta = std::chrono::sys_seconds(std::chrono::seconds(*date)) - now;
  const auto ms = std::chrono::ceil<milliseconds>(delta);
  return std::clamp(ms, milliseconds(0), milliseconds(86400 * 1000));
}

std::optional<milliseconds> RetryInfoDelay(std::string_view rpc_status) {
  WireReader status(rpc_status);
  while (!status.done()) {
    uint32_t field, type;
    uint64_t v = 0;
    std::string_view any;
    if (!status.Next(&field, &type, &v, &any)) return std::nullopt;
    if (field != 3 || type != 2) continue;
    // google.protobuf.Any{type_url = 1, value = 2}
    WireReader a(any);
    std::string_view type_url, value;
    bool has_value = false;
    while (!a.done()) {
      uint32_t f, t;
      std::string_view b;
      if (!a.Next(&f, &t, &v, &b)) return std::nullopt;
      if (f == 1 && t == 2) type_url = b;
      if (f == 2 && t == 2) value = b, has_value = true;
    }
    const size_t slash = type_url.rfind('/');
    if (type_url.substr(slash == std::string_view::npos ? 0 : slash + 1) != kRetryInfoType) {
      continue;
    }
    if (!has_value) return milliseconds(0);
    // google.rpc.RetryInfo{retry_delay = 1}
    WireReader info(value);
    std::optional<milliseconds> delay = milliseconds(0);
    while (!info.done()) {
      uint32_t f, t;
      std::string_view b;
      if (!info.Next(&f, &t, &v, &b)) return std::nullopt;
      if (f == 1 && t == 2) delay = DecodeDuration(b);
    }
    return delay;
  }
  return std::nullopt;
}

std::optional<std::string> RpcStatusMessage(std::string_view rpc_status) {
  WireReader r(rpc_status);
  std::optional<std::string> message;
  while (!r.done()) {
    uint32_t field, type;
    uint64_t v = 0;
    std::string_view b;
    if (!r.Next(&field, &type, &v, &b)) return std::nullopt;
    if (field == 2 && type == 2) message = std::string(b);
  }
  return message;
}

std::string EncodeRpcStatus(int code, std::string_view message,
                            std::optional<milliseconds> retry_delay) {
  std::string out;
  if (code != 0) PutVarintField(1, static_cast<uint32_t>(code), &out);
  if (!message.empty()) PutLen(2, message, &out);
  if (retry_delay) {
    std::string duration;
    const int64_t ms = retry_delay->count();
    if (ms / 1000 != 0) PutVarintField(1, static_cast<uint64_t>(ms / 1000), &duration);
    if (ms % 1000 != 0) PutVarintField(2, static_cast<uint64_t>(ms % 1000 * 1000000), &duration);
    std::string info, any;
    PutLen(1, duration, &info);
    PutLen(1, std::string("type.googleapis.com/") + std::string(kRetryInfoType), &any);
    PutLen(2, info, &any);
    PutLen(3, any, &out);
  }
  return out;
}

RetryPolicy::RetryPolicy(RetryOptions options, uint64_t seed)
    : options_(options), rng_(seed != 0 ? seed : std::random_device{}()) {
  options_.initial_backoff = std::max(options_.initial_backoff, milliseconds(0));
  options_.max_backoff = std::max(options_.max_backoff, options_.initial_backoff);
}

milliseconds RetryPolicy::Ceiling(int retry) const {
  milliseconds ceiling = options_.initial_backoff;
  for (int k = 1; k < retry && ceiling < options_.max_backoff; k++) ceiling *= 2;
  return std::min(ceiling, options_.max_backoff);
}

std::optional<milliseconds> RetryPolicy::NextDelay(int retry,
                                                   std::optional<milliseconds> server_hint,
                                                   milliseconds elapsed) {
  milliseconds delay;
  if (server_hint) {
    delay = std::max(*server_hint, milliseconds(0));
  } else {
    const int64_t ceiling = Ceiling(std::max(retry, 1)).count();
    delay = milliseconds(std::uniform_int_distribution<int64_t>(0, ceiling)(rng_));
  }
  if (elapsed + delay >= options_.max_elapsed) return std::nullopt;
  return delay;
}

bool RealSleeper::SleepUntil(RetryClock::time_point until) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, until, [&] { return until > limit_; });
  return until <= limit_;
}

void RealSleeper::Limit(RetryClock::time_point limit) {
  {
    std::lock_guard lock(mu_);
    limit_ = std::min(limit_, limit);
  }
  cv_.notify_all();
}

}  // namespace zerotrace::exporter
