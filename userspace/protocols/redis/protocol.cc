// RedisProtocol: detection of commands (at a connection's start and mid-stream), sessions and
// counters.
#include "protocols/redis/protocol.h"

#include <string_view>

namespace zerotrace::protocols::redis {
namespace {

// Bytes of a first command that detection reads before it decides.
constexpr size_t kMaxDetectLine = 256;

// Reads "<digits>\r\n" at `*i`. kMaybe when the bytes end first.
Verdict ReadCount(std::string_view b, size_t* i, int64_t* out) {
  int64_t n = 0;
  size_t digits = 0;
  for (; *i < b.size(); ++*i) {
    const char c = b[*i];
    if (c == '\r') break;
    if (c < '0' || c > '9' || ++digits > 9) return Verdict::kNo;
    n = n * 10 + (c - '0');
  }
  if (*i + 2 > b.size()) return Verdict::kMaybe;
  if (digits == 0 || b[*i + 1] != '\n') return Verdict::kNo;
  *i += 2;
  *out = n;
  return Verdict::kYes;
}

// A reply's first byte: a RESP type.
bool IsReplyStart(char c) {
  return std::string_view("+-:$*_,#!=(%~>|").find(c) != std::string_view::npos;
}

}  // namespace

Verdict DetectCommand(std::string_view b, bool inline_ok, bool known_only) {
  if (b.empty()) return Verdict::kMaybe;
  if (b[0] == '*') {
    size_t i = 1;
    int64_t argc = 0, len = 0;
    Verdict v = ReadCount(b, &i, &argc);
    if (v != Verdict::kYes) return v;
    if (argc < 1 || argc > 1024 * 1024) return Verdict::kNo;
    if (i == b.size()) return Verdict::kMaybe;
    if (b[i++] != '$') return Verdict::kNo;
    v = ReadCount(b, &i, &len);
    if (v != Verdict::kYes) return v;
    if (len < 1 || len > 64) return Verdict::kNo;
    if (b.size() < i + static_cast<size_t>(len) + 2) return Verdict::kMaybe;
    const std::string_view name = b.substr(i, static_cast<size_t>(len));
    if (b.substr(i + static_cast<size_t>(len), 2) != "\r\n") return Verdict::kNo;
    char upper[72];
    size_t size = 0;
    if (!UpperToken(name, upper, 64, &size)) return Verdict::kNo;
    if (known_only && !KnownCommandWithArity(name, argc)) return Verdict::kNo;
    return Verdict::kYes;
  }
  if (!inline_ok) return Verdict::kNo;
  // An inline command starts with a command name: letters only (binary or other text: no).
  for (size_t i = 0;; i++) {
    if (i == b.size()) return i < 24 ? Verdict::kMaybe : Verdict::kNo;
    const char c = b[i];
    if (c == ' ' || c == '\r' || c == '\n') {
      if (i == 0) return Verdict::kNo;
      break;
    }
    if (i >= 24 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return Verdict::kNo;
  }
  const size_t nl = b.substr(0, kMaxDetectLine).find('\n');
  if (nl == std::string_view::npos) {
    return b.size() < kMaxDetectLine ? Verdict::kMaybe : Verdict::kNo;
  }
  std::string_view line = b.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find("HTTP/") != std::string_view::npos) return Verdict::kNo;
  int64_t words = 0;
  std::string_view first;
  for (size_t i = 0; i < line.size();) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i == line.size()) break;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (words++ == 0) first = line.substr(start, i - start);
  }
  return KnownCommandWithArity(first, words) ? Verdict::kYes : Verdict::kNo;
}

Detection RedisProtocol::DetectStart(const StartBytes& b) const {
  // The server's side of a connection: its client (traced too when it runs on this node)
  // makes the spans. The stage mutes it.
  if (b.role == ZT_ROLE_SERVER) return {};
  const std::string_view req = b.sent, resp = b.received;
  if (req.empty()) return {resp.empty() ? Verdict::kMaybe : Verdict::kNo, ZT_ROLE_UNKNOWN};
  const Verdict v = DetectCommand(req, true, false);
  if (v != Verdict::kYes) return {v, ZT_ROLE_UNKNOWN};
  if (req[0] != '*') {
    // An inline command is plain text: the server's first reply bytes must be RESP too.
    if (resp.empty()) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
    if (!IsReplyStart(resp[0])) return {};
  }
  return {Verdict::kYes, ZT_ROLE_CLIENT};
}

// Mid-stream, only the client's side is claimed, at a command it sends; a command the server
// side receives is its peer's span.
Detection RedisProtocol::DetectResync(const ResyncBytes& b) const {
  if (b.direction != ZT_DIR_EGRESS || b.role == ZT_ROLE_SERVER) return {};
  const Verdict v = DetectCommand(b.bytes, false, true);
  return {v, v == Verdict::kYes ? uint8_t{ZT_ROLE_CLIENT} : uint8_t{ZT_ROLE_UNKNOWN}};
}

std::unique_ptr<Session> RedisProtocol::NewSession(const SessionContext& context) {
  return std::make_unique<RedisSession>(context, context.mid_stream, &stats_);
}

void RedisProtocol::ReportCounters(CounterReport* r) const {
  const RedisStats& s = stats_;
  r->Counter("redis_conns", "zerotrace_redis_conns_total", "client connections detected as Redis",
             s.conns);
  r->Counter(nullptr, "zerotrace_redis_conns_mid_stream_total",
             "Redis connections found mid-stream (pairing started at a realignment)",
             s.conns_mid_stream);
  r->Counter(nullptr, "zerotrace_redis_commands_total", "Redis commands parsed", s.commands);
  r->Counter("redis_exchanges", "zerotrace_redis_exchanges_total",
             "Redis exchanges emitted, error exchanges included", s.exchanges);
  r->Counter(nullptr, "zerotrace_redis_error_replies_total", "Redis error replies",
             s.error_replies);
  r->Counter("redis_unpaired_commands", "zerotrace_redis_unpaired_commands_total",
             "Redis commands dropped because their reply could not be told for sure",
             s.unpaired_commands);
  r->Counter("redis_unpaired_replies", "zerotrace_redis_unpaired_replies_total",
             "Redis replies that answered no kept command (lost commands, unsolicited)",
             s.unpaired_replies);
  r->Counter("redis_framing_lost", "zerotrace_redis_framing_lost_total",
             "Redis streams whose framing was lost (gaps in headers, malformed bytes)",
             s.request_framing_lost + s.reply_framing_lost, {{"stream", "all"}});
  r->Counter(nullptr, "zerotrace_redis_reply_mismatches_total",
             "Redis replies of a shape their command never gets (pairing dropped)",
             s.reply_mismatches);
  r->Counter(nullptr, "zerotrace_redis_realigned_total",
             "times Redis pairing resumed at a command after a loss", s.realigned);
  r->Counter("redis_pubsub_messages", "zerotrace_redis_pubsub_messages_total",
             "pub/sub messages pushed to subscribers (no span each)", s.pubsub_messages);
  r->Counter(nullptr, "zerotrace_redis_pushes_other_total",
             "other Redis pushes (RESP3 invalidations, unsolicited confirmations)", s.pushes_other);
  r->Counter(nullptr, "zerotrace_redis_transactions_total", "Redis EXEC replies paired",
             s.transactions);
  r->Counter(nullptr, "zerotrace_redis_no_reply_commands_total",
             "Redis commands sent under CLIENT REPLY OFF/SKIP", s.no_reply_commands);
  r->Counter(nullptr, "zerotrace_redis_timeouts_total",
             "Redis exchanges emitted with error.type timeout", s.timeouts);
  r->Counter(nullptr, "zerotrace_redis_truncated_replies_total",
             "Redis replies whose end was lost (their span ends where it was lost)",
             s.truncated_replies);
  r->Counter(nullptr, "zerotrace_redis_stopped_total",
             "Redis connections that turned to MONITOR or replication (no more spans)", s.stopped);
  r->Counter(nullptr, "zerotrace_redis_unfinished_unobserved_total",
             "Redis commands pending when the agent stopped following their connection",
             s.unfinished_unobserved);
}

std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions&) {
  return std::make_unique<RedisProtocol>();
}

}  // namespace zerotrace::protocols::redis
