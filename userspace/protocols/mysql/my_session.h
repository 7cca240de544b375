// A MySQL/MariaDB client connection: the greeting and handshake (database, capabilities), then
// commands answered strictly in order; each COM_QUERY and COM_STMT_EXECUTE is one exchange.
// Over TLS, the plaintext session starts at the handshake response.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "protocols/mysql/my_wire.h"
#include "protocols/protocol.h"
#include "protocols/sql/sql_text.h"
#include "trace/conn_endpoints.h"

namespace zerotrace::protocols::mysql {

struct MyStats {
  uint64_t conns = 0, resynced = 0;
  uint64_t calls = 0;               // exchanges reported
  uint64_t errors = 0;              // of which answered with ERR
  uint64_t unknown_statements = 0;  // executes of statements prepared before we followed
  uint64_t dropped = 0;             // calls dropped: pairing uncertain
  uint64_t desyncs = 0;             // sessions that lost framing or pairing (then idle)
  uint64_t tls = 0;                 // sessions that switched to TLS
  uint64_t auth_failures = 0;
  uint64_t unfinished = 0;  // calls pending when the connection ended
};

// What a connection's cleartext session learnt from the greeting (mysql or mariadb) before it
// switched to TLS, for the session that then follows its plaintext (which starts after the
// greeting). Keyed by the connection's tuple; bounded.
class MyTlsHandoff {
 public:
  void Put(const trace::ConnEndpoints* e, std::string_view system);
  // The system put for this tuple (removed), or empty.
  std::string Take(const trace::ConnEndpoints* e);

 private:
  static constexpr size_t kMaxEntries = 1024;
  std::unordered_map<std::string, std::string> systems_;
};

class MySession final : public Session {
 public:
  // `handoff`: where sessions that switch to TLS leave what the greeting said (may be null).
  MySession(const SessionContext& context, bool resynced, MyStats* stats,
            MyTlsHandoff* handoff = nullptr);
  void Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
               SessionOutput* out) override;
  void Close(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
             uint64_t now_ns, SessionOutput* out) override;
  void Expire(uint64_t, SessionOutput*) override {}

 private:
  enum class Step : uint8_t {
    kFirst,
    kColumns,
    kColumnsEof,
    kRows,  // a result (query, execute)
    kPrepParams,
    kPrepParamsEof,
    kPrepCols,
    kPrepColsEof,  // a prepare's reply
  };
  struct Command {
    uint8_t cmd = 0;
    uint8_t next_seq = 1;  // sequence id of the next reply packet
    Step step = Step::kFirst;
    uint64_t left = 0;     // column or parameter definitions still to come
    uint32_t stmt_id = 0;  // a prepare's new statement
    uint16_t prep_cols = 0;
    bool result_set = false;
    bool continued = false;    // the previous reply packet was 16 MB: this one continues it
    std::string arg;           // COM_INIT_DB's database
    sql::SqlSummary prepared;  // a prepare's statement
    uint64_t call_id = 0;      // its exchange (0: none)
  };
  struct Call {
    uint64_t id = 0, start_ns = 0, end_ns = 0;
    uint32_t response_tid = 0;
    bool known = true, done = false, failed = false, emit = true, result_set = false;
    int64_t rows = -1;
    char code[8] = {};
    sql::SqlSummary sql;
  };
  enum class Phase : uint8_t { kGreeting, kHandshake, kAuth, kCommands, kTls, kDead };

  bool ParseRequests(conn::ByteStream& s, uint64_t now_ns, SessionOutput* out);
  bool ParseResponses(conn::ByteStream& s, const conn::ByteStream& requests);
  void OnCommand(const conn::ByteStream& s, const Packet& p, uint64_t now_ns, SessionOutput* out);
  bool OnReply(const conn::ByteStream& s, const Packet& p);
  bool OnReplyRow(const conn::ByteStream& s, const Packet& p, Command& c, Call* call);
  bool Fail(const conn::ByteStream& s, const Packet& p, Call* call);
  Call* CallOf(const Command& c);
  void Complete(Command& c, const conn::ByteStream& s, uint64_t end_pos);
  void Emit(SessionOutput* out);
  void Desync();
  void ReadStatus(uint16_t status);

  SessionContext context_;
  MyStats* stats_;
  MyTlsHandoff* handoff_;
  Phase phase_ = Phase::kGreeting;  // of the reply stream; requests follow kHandshake/kCommands
  bool requests_in_commands_ = false;
  bool req_continued_ = false;  // the previous request packet was 16 MB
  int deprecate_eof_ = -1;      // CLIENT_DEPRECATE_EOF: 1, 0, -1 unknown (resynced)
  bool backslash_ = true;       // off under NO_BACKSLASH_ESCAPES
  bool unverified_ = false;
  std::string system_ = "mysql";
  std::string database_;
  uint64_t skip_req_ = 0, skip_resp_ = 0;
  uint64_t next_id_ = 1;
  std::deque<Command> commands_;
  std::deque<Call> calls_;
  std::unordered_map<uint32_t, sql::SqlSummary> statements_;
};

}  // namespace zerotrace::protocols::mysql
