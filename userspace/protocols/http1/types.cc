// HeaderList lookups, error names and counter arithmetic for the HTTP/1.x types.
#include "protocols/http1/types.h"

#include <array>

namespace zerotrace::protocols::http1 {
namespace {

constexpr std::array<char, 256> MakeLowerTable() {
  std::array<char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  return t;
}
constexpr std::array<char, 256> kLower = MakeLowerTable();

char Lower(char c) { return kLower[static_cast<unsigned char>(c)]; }

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

void HeaderList::Add(std::string_view name, std::string_view value) {
  std::vector<Entry> entries(count_);
  for (size_t i = 0; i < count_; ++i) entries[i] = entry(i);
  std::string text(buf_.data(), index_off_);
  Entry e;
  e.name_off = static_cast<uint32_t>(text.size());
  e.name_len = static_cast<uint32_t>(name.size());
  text.append(name);
  e.value_off = static_cast<uint32_t>(text.size());
  e.value_len = static_cast<uint32_t>(value.size());
  text.append(value);
  entries.push_back(e);
  Assign(text, entries.data(), entries.size());
}

void HeaderList::Assign(std::string_view text, const Entry* entries, size_t n) {
  const size_t need = text.size() + n * sizeof(Entry);
  if (buf_.capacity() < need) {  // once per pooled buffer: then it is rewritten in place
    buf_.clear();
    buf_.reserve(need);
  }
  buf_.assign(text);
  buf_.append(reinterpret_cast<const char*>(entries), n * sizeof(Entry));
  index_off_ = static_cast<uint32_t>(text.size());
  count_ = static_cast<uint32_t>(n);
}

std::optional<std::string_view> HeaderList::Get(std::string_view name) const {
  for (size_t i = 0; i < count_; ++i) {
    const Entry e = entry(i);
    if (e.name_len == name.size() &&
        EqualsIgnoreCase(std::string_view(buf_.data() + e.name_off, e.name_len), name)) {
      return std::string_view(buf_.data() + e.value_off, e.value_len);
    }
  }
  return std::nullopt;
}

std::string_view ExchangeErrorName(ExchangeError error) {
  switch (error) {
    case ExchangeError::kNone:
      return {};
    case ExchangeError::kResponseMissingAtClose:
      return "response_missing_at_close";
    case ExchangeError::kConnectionReset:
      return "connection_reset";
    case ExchangeError::kTimeout:
      return "timeout";
    case ExchangeError::kResponseTruncated:
      return "response_truncated";
    case ExchangeError::kRequestTruncated:
      return "request_truncated";
    case ExchangeError::kAgentShutdown:
      return "agent_shutdown";
  }
  return {};
}

Http1Stats& Http1Stats::operator+=(const Http1Stats& o) {
  requests_parsed += o.requests_parsed;
  responses_parsed += o.responses_parsed;
  interim_responses += o.interim_responses;
  exchanges += o.exchanges;
  parse_errors += o.parse_errors;
  resyncs += o.resyncs;
  resync_bytes_skipped += o.resync_bytes_skipped;
  dropped_gap_at_start += o.dropped_gap_at_start;
  dropped_gap_in_headers += o.dropped_gap_in_headers;
  headers_too_large += o.headers_too_large;
  body_framing_lost += o.body_framing_lost;
  body_gap_bytes += o.body_gap_bytes;
  unpaired_requests += o.unpaired_requests;
  unpaired_responses += o.unpaired_responses;
  ambiguous_responses += o.ambiguous_responses;
  timeouts += o.timeouts;
  missing_at_close += o.missing_at_close;
  truncated_at_close += o.truncated_at_close;
  unfinished_unobserved += o.unfinished_unobserved;
  unfinished_shutdown += o.unfinished_shutdown;
  framing_conflicts += o.framing_conflicts;
  doubtful_requests += o.doubtful_requests;
  garbage_skips += o.garbage_skips;
  heads_cut += o.heads_cut;
  tunnels += o.tunnels;
  return *this;
}

}  // namespace zerotrace::protocols::http1
