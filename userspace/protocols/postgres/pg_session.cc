// PgSession: requests are parsed ahead of replies (a reply never precedes its request); each
// frontend message that the server answers leaves an entry in owed_, and replies settle those
// entries in order. Anything that does not fit ends the session's reporting (counted).
#include "protocols/postgres/pg_session.h"

#include <algorithm>
#include <cstring>

#include "protocols/sql/db_span.h"

namespace zerotrace::protocols::postgres {
namespace {

// Prepared statements remembered per connection (their sanitised summaries), in bytes.
constexpr size_t kMaxStatementBytes = 64 * 1024;
constexpr size_t kMaxStatements = 256;
constexpr size_t kMaxPortals = 64;
// Calls a connection may have pending; beyond, the pairing is given up (a client that never
// reads its replies, or a desync we did not see).
constexpr size_t kMaxPendingCalls = 4096;

std::string_view FirstWord(std::string_view s) {
  const size_t space = s.find(' ');
  return space == std::string_view::npos ? s : s.substr(0, space);
}

// A Query's tag names its command: "SELECT 3" for SELECT (and WITH ... SELECT, VALUES, TABLE).
bool TagFitsOperation(std::string_view tag_verb, std::string_view operation) {
  const std::string_view op = FirstWord(operation);
  if (op.empty() || tag_verb.empty()) return false;
  if (op == "WITH") return false;  // its verb is its body's: not checked
  return tag_verb == op;
}

}  // namespace

PgSession::PgSession(const SessionContext& context, bool resynced, PgStats* stats)
    : context_(context), stats_(stats) {
  stats_->conns++;
  if (resynced) {
    stats_->resynced++;
    phase_ = Phase::kReady;
    unverified_ = true;
  }
}

// Hot path.
void PgSession::Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
                        SessionOutput* out) {
  bool progress = true;
  while (progress && phase_ != Phase::kDead && phase_ != Phase::kTls) {
    progress = ParseRequests(requests, now_ns, out);
    progress |= ParseResponses(responses, requests);
  }
  if (phase_ == Phase::kDead || phase_ == Phase::kTls) {
    requests.ConsumeTo(requests.end_pos());
    responses.ConsumeTo(responses.end_pos());
  }
  Emit(out);
}

bool PgSession::ParseRequests(conn::ByteStream& s, uint64_t now_ns, SessionOutput* out) {
  bool progress = false;
  while (phase_ != Phase::kDead && phase_ != Phase::kAwaitSsl && phase_ != Phase::kTls) {
    if (s.front_pos() < skip_req_) {
      s.ConsumeTo(std::min(skip_req_, s.end_pos()));
      if (s.front_pos() < skip_req_) break;
    }
    Message m;
    const bool typed = phase_ != Phase::kStartup;
    // Copy data and passwords are skipped unread; what a call is comes from the rest.
    const ReadResult r = PeekMessage(s, typed, /*want_body=*/true, &m);
    if (r == ReadResult::kNeedMore) break;
    if (r == ReadResult::kLost) {
      Desync();
      break;
    }
    OnRequest(s, m, now_ns, out);
    skip_req_ = m.end_pos();
    s.ConsumeTo(std::min(skip_req_, s.end_pos()));
    progress = true;
  }
  return progress;
}

void PgSession::OnRequest(const conn::ByteStream& s, const Message& m, uint64_t now_ns,
                          SessionOutput* out) {
  std::string_view body = m.body;
  if (m.type == 0) {  // untyped: SSLRequest, GSSENCRequest, CancelRequest, StartupMessage
    if (body.size() < 4) return Desync();
    const uint32_t code = ReadBe32(body.data());
    body.remove_prefix(4);
    if (code == kSslRequestCode || code == kGssEncRequestCode) {
      owed_.push_back({Owed::kSslAnswer, 0, 0});
      phase_ = Phase::kAwaitSsl;  // what follows depends on the answer
      return;
    }
    if (code == kCancelRequestCode || (code >> 16) != 3) {
      phase_ = Phase::kTls;  // nothing to trace on this connection: stop reading it
      return;
    }
    std::string_view user;
    while (!body.empty() && body.front() != '\0') {
      std::string_view name, value;
      if (!TakeCString(&body, &name) || !TakeCString(&body, &value)) break;
      if (name == "database") database_.assign(value);
      if (name == "user") user = value;
    }
    if (database_.empty()) database_.assign(user);  // the server's default
    owed_.push_back({Owed::kStartup, 0, 0});
    phase_ = Phase::kReady;
    return;
  }
  if (discard_until_sync_ && m.type != 'S') return;  // the server skips these too
  if ((m.type == 'Q' || m.type == 'E') && calls_.size() >= kMaxPendingCalls) return Desync();
  auto batch_start = [&] {
    if (batch_started_) return;
    batch_started_ = true;
    const conn::ByteStream::Stamp st = s.StampAt(m.pos);
    batch_start_ns_ = st.ts_ns != 0 ? st.ts_ns : now_ns;
    batch_start_tid_ = st.tid;
    batch_start_pos_ = m.pos;
  };
  switch (m.type) {
    case 'Q': {
      std::string_view text = body;
      if (!text.empty() && text.back() == '\0') text.remove_suffix(1);
      batch_started_ = false;
      Call& c = NewCall(s, m.pos, now_ns, out);
      sql::SummarizeSql(text, sql::Dialect::kPostgres, backslash_, &c.sql);
      if (c.sql.operation == "DEALLOCATE" || c.sql.operation == "DISCARD") {
        statements_.clear();  // by SQL: what is left is not known, so nothing is
        statement_bytes_ = 0;
      }
      owed_.push_back({Owed::kQuery, 0, c.id});
      return;
    }
    case 'P': {
      batch_start();
      std::string_view name, text;
      if (TakeCString(&body, &name)) {
        if (!TakeCString(&body, &text)) text = body;  // cut by the capture: its prefix
        sql::SummarizeSql(text, sql::Dialect::kPostgres, backslash_, &scratch_);
        Remember(name, scratch_);
      } else {
        statements_.erase(std::string(body));  // a name too long to see: forget it
      }
      owed_.push_back({Owed::kParse, 0, 0});
      return;
    }
    case 'B': {
      batch_start();
      std::string_view portal, stmt;
      if (TakeCString(&body, &portal) && TakeCString(&body, &stmt)) {
        auto it = statements_.find(std::string(stmt));
        if (it != statements_.end()) {
          if (portals_.size() >= kMaxPortals) portals_.clear();
          portals_[std::string(portal)] = it->second;
        } else {
          portals_.erase(std::string(portal));
        }
      }
      owed_.push_back({Owed::kBind, 0, 0});
      return;
    }
    case 'D':
      owed_.push_back(
          {!body.empty() && body[0] == 'S' ? Owed::kDescribeStatement : Owed::kDescribePortal, 0,
           0});
      return;
    case 'E': {
      batch_start();
      std::string_view portal;
      if (!TakeCString(&body, &portal)) portal = {};
      Call& c = NewCall(s, batch_start_pos_, now_ns, out);
      c.start_ns = batch_start_ns_;
      out->start(out->starts() - 1).start_ns = batch_start_ns_;
      out->start(out->starts() - 1).tid = batch_start_tid_;
      batch_started_ = false;
      auto it = portals_.find(std::string(portal));
      if (it != portals_.end()) {
        c.sql = it->second;
      } else {
        c.known = false;
        stats_->unknown_statements++;
      }
      owed_.push_back({Owed::kExecute, 0, c.id});
      return;
    }
    case 'C': {
      std::string_view rest = body.empty() ? body : body.substr(1), name;
      if (!body.empty() && TakeCString(&rest, &name)) {
        auto& map = body[0] == 'S' ? statements_ : portals_;
        map.erase(std::string(name));
      }
      owed_.push_back({Owed::kClose, 0, 0});
      return;
    }
    case 'S':
      batch_started_ = false;
      discard_until_sync_ = false;
      owed_.push_back({Owed::kSync, 0, 0});
      return;
    case 'F':
      owed_.push_back({Owed::kFunction, 0, 0});
      return;
    case 'H':  // Flush
    case 'd':  // CopyData, CopyDone, CopyFail: part of the COPY the Query or Execute began
    case 'c':
    case 'f':
    case 'p':  // password, SASL: never read
    case 'X':  // Terminate
      return;
    default:
      Desync();
  }
}

PgSession::Call& PgSession::NewCall(const conn::ByteStream& s, uint64_t pos, uint64_t now_ns,
                                    SessionOutput* out) {
  calls_.emplace_back();
  Call& c = calls_.back();
  c.id = next_id_++;
  const conn::ByteStream::Stamp st = s.StampAt(pos);
  c.start_ns = st.ts_ns != 0 ? st.ts_ns : now_ns;
  RequestStarted& r = out->AddStart();
  r.id = c.id;
  r.start_ns = c.start_ns;
  r.tid = st.tid;
  r.stream_pos = pos;
  r.operation.clear();
  r.correlation.clear();
  r.traceparent.clear();
  r.tracestate.clear();
  return c;
}

PgSession::Call* PgSession::FindCall(uint64_t id) {
  for (Call& c : calls_) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

bool PgSession::ParseResponses(conn::ByteStream& s, const conn::ByteStream& requests) {
  bool progress = false;
  while (phase_ != Phase::kDead && phase_ != Phase::kTls) {
    if (s.front_pos() < skip_resp_) {
      s.ConsumeTo(std::min(skip_resp_, s.end_pos()));
      if (s.front_pos() < skip_resp_) break;
    }
    const conn::ByteStream::Front f = s.Peek();
    if (f.gap == 0 && f.data.empty()) break;
    // A reply to a request not parsed yet (its bytes still on their way): wait for it.
    if (owed_.empty() && requests.front_pos() < requests.end_pos()) break;
    if (!owed_.empty() && owed_.front().owed == Owed::kSslAnswer) {
      if (f.gap != 0) {
        Desync();
        return progress;
      }
      const char answer = f.data[0];
      owed_.pop_front();
      skip_resp_ = f.pos + 1;
      s.ConsumeTo(skip_resp_);
      if (answer == 'N') {
        phase_ = Phase::kStartup;  // plaintext: a StartupMessage follows
      } else if (answer == 'S' || answer == 'G') {
        stats_->tls++;
        phase_ = Phase::kTls;  // encrypted: the TLS probes (OpenSSL) bring the plaintext
      } else {
        Desync();
      }
      progress = true;
      continue;
    }
    Message m;
    // Only small replies are read whole; rows and copy data are skipped by their length.
    const bool want = f.data.size() > 0 && f.data[0] != 'D' && f.data[0] != 'd';
    const ReadResult r = PeekMessage(s, /*typed=*/true, want, &m);
    if (r == ReadResult::kNeedMore) break;
    if (r == ReadResult::kLost || !OnResponse(s, m)) {
      Desync();
      break;
    }
    skip_resp_ = m.end_pos();
    s.ConsumeTo(std::min(skip_resp_, s.end_pos()));
    progress = true;
  }
  return progress;
}

bool PgSession::OnResponse(const conn::ByteStream& s, const Message& m) {
  std::string_view body = m.body;
  switch (m.type) {
    case 'N':  // NoticeResponse, NotificationResponse: at any time
    case 'A':
      return true;
    case 'S': {  // ParameterStatus
      std::string_view name, value;
      if (TakeCString(&body, &name) && TakeCString(&body, &value) &&
          name == "standard_conforming_strings") {
        backslash_ = value == "off";
      }
      return true;
    }
    default:
      break;
  }
  if (owed_.empty()) return false;  // a reply nothing asked for
  Pending& p = owed_.front();
  Call* call = p.call != 0 ? FindCall(p.call) : nullptr;
  const uint64_t end = m.end_pos();
  switch (m.type) {
    case 'E': {  // ErrorResponse
      const std::string_view code = ErrorCode(body);
      if (p.owed == Owed::kStartup) {
        stats_->auth_failures++;
        owed_.pop_front();
        return true;
      }
      if (p.owed == Owed::kQuery) {
        if (call) {
          call->failed = true;
          code.copy(call->sqlstate, sizeof(call->sqlstate) - 1);  // empty: no data pointer
          call->sqlstate[code.size()] = '\0';
        }
        return true;  // ReadyForQuery ends it
      }
      if (p.owed == Owed::kFunction) return true;
      // Extended protocol: the error answers the first call before the next Sync, and the
      // server skips everything else up to that Sync.
      bool blamed = false, synced = false;
      while (!owed_.empty() && !(synced = owed_.front().owed == Owed::kSync)) {
        Pending q = owed_.front();
        owed_.pop_front();
        Call* c = q.call != 0 ? FindCall(q.call) : nullptr;
        if (!c) continue;
        if (!blamed) {
          blamed = true;
          c->failed = true;
          code.copy(c->sqlstate, sizeof(c->sqlstate) - 1);
          c->sqlstate[code.size()] = '\0';
          Finish(*c, s, end);
        } else {
          stats_->skipped++;
          c->done = true;
          c->id = 0;  // not emitted: the server never ran it
        }
      }
      // No Sync sent yet: the client's next messages up to it are skipped by the server.
      if (!synced) discard_until_sync_ = true;
      return true;
    }
    case 'Z':  // ReadyForQuery
      if (p.owed == Owed::kQuery || p.owed == Owed::kFunction) {
        if (call) Finish(*call, s, end);
      } else if (p.owed != Owed::kSync && p.owed != Owed::kStartup) {
        return false;
      }
      owed_.pop_front();
      return true;
    case 'R':  // authentication exchange, BackendKeyData, NegotiateProtocolVersion
    case 'K':
    case 'v':
      return p.owed == Owed::kStartup;
    case '1':
      if (p.owed != Owed::kParse) return false;
      owed_.pop_front();
      return true;
    case '2':
      if (p.owed != Owed::kBind) return false;
      owed_.pop_front();
      return true;
    case '3':
      if (p.owed != Owed::kClose) return false;
      owed_.pop_front();
      return true;
    case 't':
      if (p.owed != Owed::kDescribeStatement || p.step != 0) return false;
      p.step = 1;
      return true;
    case 'T':
    case 'n':
      if (p.owed == Owed::kQuery && m.type == 'T') return true;
      if (p.owed == Owed::kDescribePortal || (p.owed == Owed::kDescribeStatement && p.step == 1)) {
        owed_.pop_front();
        return true;
      }
      return false;
    case 'D':  // rows; copy traffic
    case 'd':
    case 'c':
    case 'G':
    case 'H':
    case 'W':
      return p.owed == Owed::kQuery || p.owed == Owed::kExecute;
    case 'V':
      return p.owed == Owed::kFunction;
    case 'C':    // CommandComplete
    case 'I':    // EmptyQueryResponse
    case 's': {  // PortalSuspended
      if (p.owed != Owed::kQuery && p.owed != Owed::kExecute) return false;
      if (call && m.type == 'C') {
        std::string_view tag = body;
        if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
        const int64_t rows = TagRows(tag);
        const std::string_view verb = FirstWord(tag);
        call->tag_verb.assign(verb);
        // Rows that a statement returned or changed; a multi-statement Query: the last one's.
        call->rows = rows;
      }
      if (p.owed == Owed::kExecute) {
        if (call) Finish(*call, s, end);
        owed_.pop_front();
      }
      return true;
    }
    default:
      return false;
  }
}

void PgSession::Finish(Call& c, const conn::ByteStream& s, uint64_t end_pos) {
  c.done = true;
  const conn::ByteStream::Stamp st = s.StampAt(end_pos > 0 ? end_pos - 1 : 0);
  c.end_ns = st.ts_ns;
  c.response_tid = st.tid;
}

// Finished calls leave in request order (a pipelined batch's spans in the order sent).
void PgSession::Emit(SessionOutput* out) {
  while (!calls_.empty() && calls_.front().done) {
    Call& c = calls_.front();
    if (c.id != 0 && unverified_) {
      // Claimed mid-stream: a reply to a request sent before the claim could be taken for
      // this one's. Trust the pairing once a reply's tag names the call's own command.
      if (!c.failed && c.known && c.sql.statements == 1 &&
          TagFitsOperation(c.tag_verb, c.sql.operation)) {
        unverified_ = false;
      } else {
        stats_->dropped++;
        c.id = 0;
      }
    }
    if (c.id != 0) {
      ExchangeDone& x = out->AddExchange();
      x.id = c.id;
      x.start_ns = c.start_ns;
      x.end_ns = std::max(c.end_ns, c.start_ns);
      x.response_tid = c.response_tid;
      sql::DbCall call;
      call.system = "postgresql";
      call.name_space = database_;
      call.sql = c.known ? &c.sql : nullptr;
      call.answered = true;
      call.failed = c.failed;
      call.status_code = c.failed ? std::string_view(c.sqlstate) : std::string_view();
      call.rows = c.failed ? -1 : c.rows;
      sql::BuildDbSpan(call, &x);
      stats_->calls++;
      if (c.failed) stats_->errors++;
    }
    calls_.pop_front();
  }
}

// The pairing can no longer be trusted: pending calls are dropped (counted), and the session
// reports nothing more on this connection.
void PgSession::Desync() {
  if (phase_ == Phase::kDead) return;
  stats_->desyncs++;
  for (const Call& c : calls_) {
    if (c.id != 0) stats_->dropped++;
  }
  calls_.clear();
  owed_.clear();
  phase_ = Phase::kDead;
}

void PgSession::Remember(std::string_view name, const sql::SqlSummary& summary) {
  auto it = statements_.find(std::string(name));
  if (it != statements_.end()) {
    statement_bytes_ -= it->second.text.size();
    it->second = summary;
    statement_bytes_ += summary.text.size();
    return;
  }
  if (statements_.size() >= kMaxStatements ||
      statement_bytes_ + summary.text.size() > kMaxStatementBytes) {
    stats_->statements_untracked++;  // its executes will be of unknown text
    return;
  }
  statements_.emplace(std::string(name), summary);
  statement_bytes_ += summary.text.size();
}

void PgSession::Close(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
                      uint64_t now_ns, SessionOutput* out) {
  Advance(requests, responses, now_ns, out);
  // Calls never answered: on shutdown, error spans; else (closed, reset, no longer followed)
  // dropped and counted, since whether the server ran them is unknown.
  for (Call& c : calls_) {
    if (c.done || c.id == 0) continue;
    stats_->unfinished++;
    if (reason != CloseReason::kShutdown) {
      c.id = 0;
      c.done = true;
      continue;
    }
    ExchangeDone& x = out->AddExchange();
    x.id = c.id;
    x.start_ns = c.start_ns;
    x.end_ns = std::max(now_ns, c.start_ns);
    sql::DbCall call;
    call.system = "postgresql";
    call.name_space = database_;
    call.sql = c.known ? &c.sql : nullptr;
    call.error_type = "agent_shutdown";
    sql::BuildDbSpan(call, &x);
    c.id = 0;
    c.done = true;
  }
  Emit(out);
  calls_.clear();
  owed_.clear();
}

}  // namespace zerotrace::protocols::postgres
