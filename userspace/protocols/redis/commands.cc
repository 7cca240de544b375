// The command table, reply classes, operation names and sanitised query texts.
#include "protocols/redis/commands.h"

#include <algorithm>
#include <charconv>
#include <iterator>

namespace zerotrace::protocols::redis {
namespace {

constexpr CommandInfo kCommands[] = {
#include "protocols/redis/command_table.inc"
};

// Reply classes of common commands whose replies have one shape; the rest may get anything.
// A reply of another shape means pairing went wrong (or never was right, mid-stream).
struct ReplyClass {
  std::string_view name;
  uint8_t mask;
};
constexpr ReplyClass kReplyClasses[] = {
    {"APPEND", kReplyInteger},    {"DBSIZE", kReplyInteger},   {"DECR", kReplyInteger},
    {"DECRBY", kReplyInteger},    {"DEL", kReplyInteger},      {"EXISTS", kReplyInteger},
    {"EXPIRE", kReplyInteger},    {"EXPIREAT", kReplyInteger}, {"FLUSHALL", kReplyStatus},
    {"FLUSHDB", kReplyStatus},    {"GET", kReplyBulk},         {"GETDEL", kReplyBulk},
    {"HDEL", kReplyInteger},      {"HEXISTS", kReplyInteger},  {"HGET", kReplyBulk},
    {"HGETALL", kReplyArray},     {"HINCRBY", kReplyInteger},  {"HKEYS", kReplyArray},
    {"HLEN", kReplyInteger},      {"HMGET", kReplyArray},      {"HSET", kReplyInteger},
    {"HVALS", kReplyArray},       {"INCR", kReplyInteger},     {"INCRBY", kReplyInteger},
    {"KEYS", kReplyArray},        {"LLEN", kReplyInteger},     {"LPUSH", kReplyInteger},
    {"LRANGE", kReplyArray},      {"MGET", kReplyArray},       {"MSET", kReplyStatus},
    {"PERSIST", kReplyInteger},   {"PEXPIRE", kReplyInteger},  {"PTTL", kReplyInteger},
    {"PUBLISH", kReplyInteger},   {"RPUSH", kReplyInteger},    {"SADD", kReplyInteger},
    {"SCARD", kReplyInteger},     {"SELECT", kReplyStatus},    {"SETEX", kReplyStatus},
    {"SISMEMBER", kReplyInteger}, {"SMEMBERS", kReplyArray},   {"SREM", kReplyInteger},
    {"STRLEN", kReplyInteger},    {"TTL", kReplyInteger},      {"TYPE", kReplyStatus},
    {"UNLINK", kReplyInteger},    {"ZCARD", kReplyInteger},    {"ZRANGE", kReplyArray},
    {"ZREM", kReplyInteger},
};

// Shown keys longer than this are cut (with "..."), and texts longer than kMaxQuery end so.
constexpr size_t kMaxKeyShown = 64;
constexpr size_t kMaxQuery = 512;
constexpr size_t kMaxWordsShown = 16;

bool Printable(std::string_view s) {
  for (const char c : s) {
    if (c <= ' ' || c > '~' || c == '"' || c == '\'' || c == '\\') return false;
  }
  return !s.empty();
}

// A key as redis-cli would show it: bare when printable, else quoted with \x escapes.
void AppendKey(std::string_view key, bool clipped, std::string* out) {
  const bool cut = clipped || key.size() > kMaxKeyShown;
  key = key.substr(0, kMaxKeyShown);
  if (Printable(key)) {
    out->append(key);
  } else {
    static constexpr char kHex[] = "0123456789abcdef";
    out->push_back('"');
    for (const char ch : key) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        out->push_back('\\');
        out->push_back(ch);
      } else if (c < ' ' || c > '~') {
        out->append("\\x").push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
      } else {
        out->push_back(ch);
      }
    }
    out->push_back('"');
  }
  if (cut) out->append("...");
}

bool IsKeyIndex(const CommandInfo* info, int64_t argc, int64_t i) {
  if (info == nullptr || info->first_key <= 0 || (info->flags & kMovableKeys) != 0) return false;
  const int64_t last = info->last_key < 0 ? argc + info->last_key : info->last_key;
  const int64_t step = std::max(1, info->key_step);
  return i >= info->first_key && i <= last && (i - info->first_key) % step == 0;
}

bool Equals(std::string_view a, std::string_view upper) {
  if (a.size() != upper.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    const char c = a[i] >= 'a' && a[i] <= 'z' ? static_cast<char>(a[i] - 32) : a[i];
    if (c != upper[i]) return false;
  }
  return true;
}

void Classify(std::string_view name, const RespValue& v, CommandSummary* out) {
  const auto word = [&v](size_t i) {
    return i < v.elements.size() ? v.content(v.elements[i]) : std::string_view();
  };
  const uint32_t args = static_cast<uint32_t>(v.elements_seen - 1);
  auto subscribe = [&](CommandKind kind, char pubsub) {
    out->kind = kind;
    out->pubsub = pubsub;
    out->channels = args;
  };
  if (name == "MULTI") {
    out->kind = CommandKind::kMulti;
  } else if (name == "EXEC") {
    out->kind = CommandKind::kExec;
  } else if (name == "DISCARD") {
    out->kind = CommandKind::kDiscard;
  } else if (name == "SELECT") {
    out->kind = CommandKind::kSelect;
    const std::string_view db = word(1);
    int64_t n = -1;
    if (std::from_chars(db.data(), db.data() + db.size(), n).ptr != db.data() + db.size()) n = -1;
    out->select_db = args == 1 ? n : -1;
  } else if (name == "SUBSCRIBE") {
    subscribe(CommandKind::kSubscribe, 'c');
  } else if (name == "PSUBSCRIBE") {
    subscribe(CommandKind::kSubscribe, 'p');
  } else if (name == "SSUBSCRIBE") {
    subscribe(CommandKind::kSubscribe, 's');
  } else if (name == "UNSUBSCRIBE") {
    subscribe(CommandKind::kUnsubscribe, 'c');
  } else if (name == "PUNSUBSCRIBE") {
    subscribe(CommandKind::kUnsubscribe, 'p');
  } else if (name == "SUNSUBSCRIBE") {
    subscribe(CommandKind::kUnsubscribe, 's');
  } else if (name == "RESET") {
    out->kind = CommandKind::kReset;
  } else if (name == "HELLO") {
    out->kind = CommandKind::kHello;
    const std::string_view p = word(1);
    out->hello_proto = p == "2" ? 2 : p == "3" ? 3 : 0;
  } else if (name == "MONITOR") {
    out->kind = CommandKind::kMonitor;
  } else if (name == "SYNC" || name == "PSYNC") {
    out->kind = CommandKind::kReplication;
  } else if (name == "CLIENT|REPLY" && args == 2) {
    const std::string_view mode = word(2);
    out->client_reply = Equals(mode, "ON")     ? 'N'
                        : Equals(mode, "OFF")  ? 'F'
                        : Equals(mode, "SKIP") ? 'S'
                                               : 0;
    if (out->client_reply != 0) out->kind = CommandKind::kClientReply;
  }
}

}  // namespace

bool ReplyFits(uint8_t mask, char type) {
  switch (type) {
    case '-':
    case '!':
      return true;
    case '+':
      return (mask & kReplyStatus) != 0;
    case ':':
      return (mask & kReplyInteger) != 0;
    case '$':
    case '=':
      return (mask & kReplyBulk) != 0;
    case '*':
    case '%':
    case '~':
      return (mask & kReplyArray) != 0;
    case '_':
      return (mask & (kReplyBulk | kReplyArray)) != 0;
    default:
      return mask == kReplyAny;
  }
}

const CommandInfo* FindCommand(std::string_view upper_name) {
  const auto it =
      std::lower_bound(std::begin(kCommands), std::end(kCommands), upper_name,
                       [](const CommandInfo& c, std::string_view n) { return c.name < n; });
  return it != std::end(kCommands) && it->name == upper_name ? &*it : nullptr;
}

bool UpperToken(std::string_view word, char* out, size_t cap, size_t* size) {
  if (word.empty() || word.size() > cap) return false;
  for (size_t i = 0; i < word.size(); i++) {
    const char c = word[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == ':' || c == '|';
    if (!ok) return false;
    out[i] = c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
  }
  *size = word.size();
  return true;
}

bool KnownCommandWithArity(std::string_view name, int64_t argc) {
  char upper[40];
  size_t n = 0;
  if (!UpperToken(name, upper, sizeof(upper), &n)) return false;
  const CommandInfo* info = FindCommand(std::string_view(upper, n));
  if (info == nullptr) return false;
  return info->arity >= 0 ? argc == info->arity : argc >= -info->arity;
}

bool SummarizeCommand(const RespValue& v, CommandSummary* out) {
  out->operation.clear();
  out->query.clear();
  *out = CommandSummary{std::move(out->operation), std::move(out->query)};
  if (v.elements.empty()) return false;
  const int64_t argc = static_cast<int64_t>(v.elements_seen);
  char name[72];
  size_t size = 0;
  const RespElement& first = v.elements[0];
  if (first.clipped || !UpperToken(v.content(first), name, 32, &size)) {
    out->operation = "_OTHER";  // not a command name the conventions could show
  } else {
    out->operation.assign(name, size);
    out->info = FindCommand(out->operation);
  }
  size_t words = 1;  // the command's own words: its name and a subcommand
  if (out->info != nullptr && (out->info->flags & kContainer) != 0 && v.elements.size() > 1) {
    size_t sub = 0;
    name[size] = '|';
    if (!v.elements[1].clipped && UpperToken(v.content(v.elements[1]), name + size + 1, 32, &sub)) {
      if (const CommandInfo* s = FindCommand(std::string_view(name, size + 1 + sub))) {
        out->info = s;
        out->operation.append(" ").append(name + size + 1, sub);
        words = 2;
      }
    }
  }
  const std::string_view table_name = out->info != nullptr ? out->info->name : "";
  Classify(table_name, v, out);
  if (out->info != nullptr) out->blocking = (out->info->flags & kBlocking) != 0;
  for (const ReplyClass& c : kReplyClasses) {
    if (c.name == table_name) out->reply_mask = c.mask;
  }
  // The query text: the operation, then keys as they are and "?" for everything else.
  std::string& q = out->query;
  q = out->operation;
  for (int64_t i = static_cast<int64_t>(words); i < argc; i++) {
    if (i >= static_cast<int64_t>(kMaxWordsShown) || q.size() >= kMaxQuery) {
      q.append(" ...");
      break;
    }
    q.push_back(' ');
    const size_t idx = static_cast<size_t>(i);
    if (idx < RespParser::kKeptElements && idx < v.elements.size() &&
        IsKeyIndex(out->info, argc, i)) {
      AppendKey(v.content(v.elements[idx]), v.elements[idx].clipped, &q);
    } else {
      q.push_back('?');
    }
  }
  return true;
}

}  // namespace zerotrace::protocols::redis
