// Redis commands: the command table (names, arity, key positions), what a command means for
// pairing (MULTI, SUBSCRIBE, CLIENT REPLY, ...), its operation name and its sanitised text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/redis/resp_parser.h"

namespace zerotrace::protocols::redis {

enum CommandFlag : uint8_t {
  kBlocking = 1,     // may wait for data (BLPOP, XREAD BLOCK, ...): no reply timeout
  kMovableKeys = 2,  // keys are not at fixed positions: none are shown
  kPubSub = 4,
  kContainer = 8,  // has subcommands (CLIENT, CONFIG, ...)
};

// One row of the table generated from a server's COMMAND reply (tools/gen-redis-commands).
struct CommandInfo {
  std::string_view name;              // upper case; "CONTAINER|SUB" for subcommands
  int arity;                          // argc with the name; negative: at least -arity
  int first_key, last_key, key_step;  // last_key < 0 counts from the end
  unsigned flags;
};

// The table's row for `upper_name`, or nullptr.
const CommandInfo* FindCommand(std::string_view upper_name);

// What the session must know of a command to pair its replies.
enum class CommandKind : uint8_t {
  kPlain = 0,
  kMulti,
  kExec,
  kDiscard,
  kSelect,
  kSubscribe,    // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: one confirmation per channel
  kUnsubscribe,  // their UN- forms: one per channel, or per subscription when none is named
  kReset,
  kHello,
  kMonitor,      // the connection then streams events: no more pairing
  kReplication,  // SYNC, PSYNC: the connection then carries replication: no more pairing
  kClientReply,  // CLIENT REPLY ON|OFF|SKIP
};

// Reply types a command may get (a bit per class); errors are always possible.
enum ReplyMask : uint8_t {
  kReplyStatus = 1,   // +
  kReplyInteger = 2,  // :
  kReplyBulk = 4,     // $ = and nulls
  kReplyArray = 8,    // * % ~ and nulls
  kReplyAny = 0xff,
};
// True when a reply of RESP type `type` fits `mask`.
bool ReplyFits(uint8_t mask, char type);

struct CommandSummary {
  std::string operation;  // "GET", "CLIENT SETNAME"
  std::string query;      // sanitised: the operation, keys, and "?" for every other argument
  const CommandInfo* info = nullptr;  // nullptr: not in the table
  CommandKind kind = CommandKind::kPlain;
  char pubsub = 0;         // kSubscribe/kUnsubscribe: 'c' channels, 'p' patterns, 's' shard
  uint32_t channels = 0;   // channels or patterns named
  int64_t select_db = -1;  // SELECT's index
  int hello_proto = 0;     // HELLO's protocol version (0: none given)
  char client_reply = 0;   // kClientReply: 'N' on, 'F' off, 'S' skip
  uint8_t reply_mask = kReplyAny;
  bool blocking = false;
};

// Summarises a parsed command. False for an empty one (no words: the server ignores it).
bool SummarizeCommand(const RespValue& v, CommandSummary* out);

// True when `upper_name` (upper case) is a command the table knows with arity matching argc.
bool KnownCommandWithArity(std::string_view name, int64_t argc);

// Upper-cases ASCII letters into `out` (at most `cap` bytes); false if longer or not a token.
bool UpperToken(std::string_view word, char* out, size_t cap, size_t* size);

}  // namespace zerotrace::protocols::redis
