// A PostgreSQL client connection: follows the startup, the simple and the extended protocol on
// both streams, pairs each Query and each Execute with its reply, and reports one exchange per
// call. Only client sides get sessions (see DetectPgStart).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "protocols/postgres/pg_wire.h"
#include "protocols/protocol.h"
#include "protocols/sql/sql_text.h"

namespace zerotrace::protocols::postgres {

struct PgStats {
  uint64_t conns = 0;                 // sessions started
  uint64_t resynced = 0;              // of which claimed mid-stream
  uint64_t calls = 0;                 // exchanges reported (queries and executes)
  uint64_t errors = 0;                // of which answered with an ErrorResponse
  uint64_t unknown_statements = 0;    // executes of statements prepared before we followed
  uint64_t statements_untracked = 0;  // statements not remembered (the per-connection cap)
  uint64_t dropped = 0;        // calls dropped: pairing uncertain (desync, unverified resync)
  uint64_t skipped = 0;        // executes the server skipped after an error in their batch
  uint64_t desyncs = 0;        // sessions that lost the framing or the pairing (then idle)
  uint64_t tls = 0;            // sessions that switched to TLS (plaintext comes from probes)
  uint64_t auth_failures = 0;  // startups answered with an error
  uint64_t unfinished = 0;     // calls pending when the connection ended
};

class PgSession final : public Session {
 public:
  // `resynced`: claimed at a request mid-stream (no startup seen: database unknown).
  PgSession(const SessionContext& context, bool resynced, PgStats* stats);

  void Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
               SessionOutput* out) override;
  void Close(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
             uint64_t now_ns, SessionOutput* out) override;
  void Expire(uint64_t, SessionOutput*) override {}  // queries may rightly run for hours

 private:
  // What the server owes for one frontend message, in order.
  enum class Owed : uint8_t {
    kSslAnswer,          // one byte: 'S' or 'N' (also GSSENCRequest: 'G' or 'N')
    kStartup,            // authentication ... ReadyForQuery
    kQuery,              // a simple Query's results ... ReadyForQuery
    kParse,              // ParseComplete
    kBind,               // BindComplete
    kDescribeStatement,  // ParameterDescription, then RowDescription or NoData
    kDescribePortal,     // RowDescription or NoData
    kExecute,            // DataRow* then CommandComplete, EmptyQueryResponse or PortalSuspended
    kClose,              // CloseComplete
    kSync,               // ReadyForQuery
    kFunction,           // FunctionCallResponse, ReadyForQuery... (not traced)
  };
  struct Pending {
    Owed owed = Owed::kSync;
    uint8_t step = 0;   // messages of it seen (Describe statement: two)
    uint64_t call = 0;  // the call it ends or belongs to (0: none)
  };
  struct Call {
    uint64_t id = 0;
    uint64_t start_ns = 0, end_ns = 0;
    uint32_t response_tid = 0;
    bool known = true;  // text known (else: a statement prepared before we followed)
    bool done = false, failed = false;
    int64_t rows = -1;
    char sqlstate[6] = {};
    std::string tag_verb;  // first word of the last CommandComplete tag (resync check)
    sql::SqlSummary sql;
  };
  enum class Phase : uint8_t { kStartup, kAwaitSsl, kReady, kTls, kDead };

  bool ParseRequests(conn::ByteStream& s, uint64_t now_ns, SessionOutput* out);
  bool ParseResponses(conn::ByteStream& s, const conn::ByteStream& requests);
  void OnRequest(const conn::ByteStream& s, const Message& m, uint64_t now_ns, SessionOutput* out);
  // False: the message does not fit what is owed (the pairing is lost).
  bool OnResponse(const conn::ByteStream& s, const Message& m);
  Call& NewCall(const conn::ByteStream& s, uint64_t pos, uint64_t now_ns, SessionOutput* out);
  Call* FindCall(uint64_t id);
  void Finish(Call& c, const conn::ByteStream& s, uint64_t end_pos);
  void Emit(SessionOutput* out);
  void Desync();
  void Remember(std::string_view name, const sql::SqlSummary& summary);

  SessionContext context_;
  PgStats* stats_;
  Phase phase_ = Phase::kStartup;
  bool unverified_ = false;  // resynced: calls are checked against their tags until one passes
  bool backslash_ = false;   // standard_conforming_strings=off
  std::string database_;
  uint64_t skip_req_ = 0, skip_resp_ = 0;  // stream positions consumed up to (message ends)
  uint64_t next_id_ = 1;
  // The extended-protocol messages before an Execute (Parse, Bind) start its span.
  uint64_t batch_start_ns_ = 0, batch_start_pos_ = 0;
  uint32_t batch_start_tid_ = 0;
  bool batch_started_ = false;
  bool discard_until_sync_ = false;  // an extended-protocol error before its batch's Sync
  std::deque<Pending> owed_;
  std::deque<Call> calls_;  // in request order; emitted from the front when done
  size_t statement_bytes_ = 0;
  std::unordered_map<std::string, sql::SqlSummary> statements_;  // prepared, by name
  std::unordered_map<std::string, sql::SqlSummary> portals_;     // bound, by name
  sql::SqlSummary scratch_;
};

}  // namespace zerotrace::protocols::postgres
