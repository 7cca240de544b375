// RedisSession: one client connection's commands paired with their replies, in order, into
// exchanges (pipelining, MULTI/EXEC, pub/sub, CLIENT REPLY, blocking commands, losses).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocols/protocol.h"
#include "protocols/redis/commands.h"
#include "protocols/redis/resp_parser.h"

namespace zerotrace::protocols::redis {

// Counters of all sessions (the protocol's).
struct RedisStats {
  uint64_t conns = 0;                  // sessions (client connections) started
  uint64_t conns_mid_stream = 0;       // of which found mid-stream (pairing starts unaligned)
  uint64_t commands = 0;               // commands parsed
  uint64_t exchanges = 0;              // exchanges emitted (error exchanges included)
  uint64_t error_replies = 0;          // exchanges whose reply was an error
  uint64_t unpaired_commands = 0;      // commands dropped: their reply could not be told for sure
  uint64_t unpaired_replies = 0;       // replies that answered no kept command (lost, unsolicited)
  uint64_t request_framing_lost = 0;   // gaps or malformed bytes in the command stream
  uint64_t reply_framing_lost = 0;     // in the reply stream
  uint64_t reply_mismatches = 0;       // a reply of a shape its command never gets: realigned
  uint64_t realigned = 0;              // pairing resumed at a command after a loss
  uint64_t pubsub_messages = 0;        // pub/sub messages pushed to subscribers (no span)
  uint64_t pushes_other = 0;           // other pushes (RESP3 invalidations, ...), no span
  uint64_t transactions = 0;           // EXEC replies paired
  uint64_t no_reply_commands = 0;      // commands sent under CLIENT REPLY OFF/SKIP (span, no reply)
  uint64_t timeouts = 0;               // exchanges emitted with error.type timeout
  uint64_t truncated_replies = 0;      // replies whose end was lost (span ends where it was lost)
  uint64_t stopped = 0;                // connections that turned to MONITOR or replication
  uint64_t unfinished_unobserved = 0;  // pending when the agent stopped following a connection
};

// A command without a reply for this long (blocking commands excepted) becomes a timeout.
inline constexpr uint64_t kReplyTimeoutNs = 30'000'000'000ULL;
// Commands pending on one connection (MULTI's queue included) beyond which the oldest go.
inline constexpr size_t kMaxPending = 1024;

class RedisSession final : public Session {
 public:
  RedisSession(const SessionContext& context, bool mid_stream, RedisStats* stats);

  void Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
               SessionOutput* out) override;
  void Close(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
             uint64_t now_ns, SessionOutput* out) override;
  void Expire(uint64_t now_ns, SessionOutput* out) override;

  size_t pending() const { return entries_.size() - head_; }
  bool aligned() const { return head_ == entries_.size() || !entries_[head_].marker; }

 private:
  struct Entry {
    uint64_t id = 0;
    bool marker = false;     // stands for commands lost with request bytes (count unknown)
    bool timed_out = false;  // reported as a timeout; its late reply is absorbed
    bool no_reply = false;   // sent under CLIENT REPLY OFF/SKIP
    uint64_t start_ns = 0;
    uint64_t pos = 0;  // of its first byte in the command stream
    uint64_t req_end_ns = 0;
    uint32_t tid = 0;
    uint64_t resp_end_at = 0;    // reply-stream end when it was parsed (its reply starts later)
    uint32_t confirmations = 0;  // (un)subscribe confirmations still to come
    uint64_t last_confirmation_ns = 0;  // (un)subscribe: end of its latest confirmation
    CommandSummary cmd;
  };

  void ProcessRequests(conn::ByteStream& requests, uint64_t responses_end, uint64_t now_ns);
  void ProcessReplies(conn::ByteStream& responses);
  void OnCommand(const RespValue& v, uint64_t responses_end, uint64_t now_ns);
  void OnReply(const RespValue& v);
  bool OnPubSubShape(const RespValue& v, Entry* head);
  static bool Confirms(const RespValue& v, const Entry& head);
  void OnReplyLoss(conn::ByteStream& responses);
  bool Realign(conn::ByteStream& responses);
  void Unalign();
  void PopFront();
  Entry& Head() { return entries_[head_]; }
  void FinishExec(Entry& exec, const RespValue& v);
  // Emits the exchange of `e` answered by a reply of `type` (error `error_prefix`).
  void Emit(Entry& e, uint64_t end_ns, uint32_t reply_tid, std::string_view error_prefix,
            std::string_view error_type, int64_t batch_size = 0);
  void ReportStart(const Entry& e);

  SessionContext context_;
  RedisStats* stats_;
  SessionOutput* out_ = nullptr;
  RespParser req_parser_{true};
  RespParser resp_parser_{false};
  std::vector<Entry> entries_;  // live entries are [head_, size())
  size_t head_ = 0;
  std::vector<Entry> queued_;  // commands queued in MULTI, answered by EXEC
  uint64_t next_id_ = 1;
  bool req_skipping_ = false;   // the command stream lost framing: skip to after a gap
  bool resp_skipping_ = false;  // likewise for replies, while nothing can be paired
  bool stopped_ = false;        // MONITOR or replication: nothing more to pair
  bool multi_ = false;          // the server queues commands (MULTI answered +OK)
  bool reply_off_ = false;      // CLIENT REPLY OFF sent (request side)
  bool skip_next_ = false;      // CLIENT REPLY SKIP sent: the next command gets no reply
  bool req_multi_ = false;      // MULTI sent, EXEC/DISCARD not yet (request side)
  int64_t db_ = -1;             // database index; -1: unknown (found mid-stream)
  int64_t subscriptions_ = 0;   // from the last confirmation; -1: unknown
  int resp_version_ = 2;        // 0: unknown (mid-stream)
  std::string prefix_;          // scratch: an error prefix
};

// The error prefix of an error reply's text ("WRONGTYPE Operation ..." -> "WRONGTYPE"); the
// rest of the text is never kept: it can quote the command's arguments.
std::string_view ErrorPrefix(std::string_view text);

}  // namespace zerotrace::protocols::redis
