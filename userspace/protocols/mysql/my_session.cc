// MySession: requests are parsed ahead of replies; each command that the server answers waits
// in commands_, and reply packets (sequence ids checked) advance the front one's state.
#include "protocols/mysql/my_session.h"

#include <algorithm>
#include <cstdio>

#include "protocols/sql/db_span.h"

namespace zerotrace::protocols::mysql {
namespace {

constexpr size_t kMaxStatements = 256;
constexpr size_t kMaxPendingCommands = 1024;
// Longer than any packet that ends a result set (ERR messages are at most 512 bytes; OK
// packets carry a short info text and session state changes).
constexpr uint32_t kMaxTerminator = 64 * 1024;

bool IsEof(const Packet& p) {
  return !p.payload.empty() && static_cast<uint8_t>(p.payload[0]) == 0xfe &&
         p.length < kMaxPacketPayload;
}

// Operations whose success is a result set (checked on the first call after a resync).
bool ReturnsRows(std::string_view op) {
  return op == "SELECT" || op == "SHOW" || op == "DESCRIBE" || op == "DESC" || op == "EXPLAIN" ||
         op == "WITH" || op == "VALUES" || op == "TABLE";
}

std::string TupleKey(const trace::ConnEndpoints& e) {
  return e.local_address + ' ' + std::to_string(e.local_port) + ' ' + e.remote_address + ' ' +
         std::to_string(e.remote_port);
}

}  // namespace

void MyTlsHandoff::Put(const trace::ConnEndpoints* e, std::string_view system) {
  if (e == nullptr || !e->known) return;
  if (systems_.size() >= kMaxEntries) systems_.clear();  // switches never followed: forget
  systems_[TupleKey(*e)].assign(system);
}

std::string MyTlsHandoff::Take(const trace::ConnEndpoints* e) {
  if (e == nullptr || !e->known || systems_.empty()) return {};
  auto it = systems_.find(TupleKey(*e));
  if (it == systems_.end()) return {};
  std::string system = std::move(it->second);
  systems_.erase(it);
  return system;
}

MySession::MySession(const SessionContext& context, bool resynced, MyStats* stats,
                     MyTlsHandoff* handoff)
    : context_(context), stats_(stats), handoff_(handoff) {
  stats_->conns++;
  if (resynced) {
    stats_->resynced++;
    phase_ = Phase::kCommands;
    requests_in_commands_ = true;
    unverified_ = true;
  } else if (context.tls) {
    phase_ = Phase::kAuth;  // the greeting went in the clear, before the switch
    if (handoff_) {
      std::string system = handoff_->Take(context.endpoints);
      if (!system.empty()) system_ = std::move(system);
    }
  }
}

void MySession::Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
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

bool MySession::ParseRequests(conn::ByteStream& s, uint64_t now_ns, SessionOutput* out) {
  bool progress = false;
  while (phase_ != Phase::kDead && phase_ != Phase::kTls) {
    if (s.front_pos() < skip_req_) {
      s.ConsumeTo(std::min(skip_req_, s.end_pos()));
      if (s.front_pos() < skip_req_) break;
    }
    Packet p;
    const ReadResult r = PeekPacket(s, /*want_payload=*/true, &p);
    if (r == ReadResult::kNeedMore) break;
    if (r == ReadResult::kLost) {
      Desync();
      break;
    }
    const bool continuation = req_continued_;
    req_continued_ = p.length == kMaxPacketPayload;
    if (!requests_in_commands_) {
      if (phase_ == Phase::kGreeting) break;  // its answer first: it names the server
      // The handshake response (or an SSLRequest: 32 bytes, CLIENT_SSL).
      if (p.payload.size() >= 32 && !continuation) {
        const uint32_t caps = ReadLe32(p.payload.data());
        deprecate_eof_ = (caps & kClientDeprecateEof) != 0 ? 1 : 0;
        if ((caps & kClientSsl) != 0 && p.length == 32) {
          stats_->tls++;
          if (handoff_) handoff_->Put(context_.endpoints, system_);
          phase_ = Phase::kTls;  // the TLS probes bring the plaintext, if the library is probed
          break;
        }
        std::string_view rest = p.payload.substr(32);
        const size_t nul = rest.find('\0');
        if (nul != std::string_view::npos) {
          rest.remove_prefix(nul + 1);
          uint64_t auth_len = 0;
          if ((caps & kClientPluginAuthLenencData) != 0) {
            if (!TakeLenenc(&rest, &auth_len)) auth_len = rest.size();
          } else if ((caps & kClientSecureConnection) != 0 && !rest.empty()) {
            auth_len = static_cast<uint8_t>(rest[0]);
            rest.remove_prefix(1);
          } else {
            auth_len = rest.find('\0') + 1;
          }
          rest.remove_prefix(std::min<uint64_t>(auth_len, rest.size()));
          if ((caps & kClientConnectWithDb) != 0) {
            const size_t end = rest.find('\0');
            if (end != std::string_view::npos) database_.assign(rest.substr(0, end));
          }
        }
        requests_in_commands_ = true;
      }
    } else if (p.seq == 0 && !continuation) {
      OnCommand(s, p, now_ns, out);
    }
    // Other packets: authentication rounds, 16 MB continuations, long data: not read.
    skip_req_ = p.end_pos();
    s.ConsumeTo(std::min(skip_req_, s.end_pos()));
    progress = true;
  }
  return progress;
}

void MySession::OnCommand(const conn::ByteStream& s, const Packet& p, uint64_t now_ns,
                          SessionOutput* out) {
  if (p.payload.empty()) return Desync();
  if (commands_.size() >= kMaxPendingCommands) return Desync();
  const uint8_t cmd = static_cast<uint8_t>(p.payload[0]);
  const std::string_view arg = p.payload.substr(1);
  Command c;
  c.cmd = cmd;
  // A 16 MB command continues in packets 1, 2...: the reply follows the last of them.
  c.next_seq = static_cast<uint8_t>(1 + p.length / kMaxPacketPayload);
  auto new_call = [&]() -> Call& {
    calls_.emplace_back();
    Call& call = calls_.back();
    call.id = next_id_++;
    const conn::ByteStream::Stamp st = s.StampAt(p.pos);
    call.start_ns = st.ts_ns != 0 ? st.ts_ns : now_ns;
    RequestStarted& r = out->AddStart();
    r.id = call.id;
    r.start_ns = call.start_ns;
    r.tid = st.tid;
    r.stream_pos = p.pos;
    r.operation.clear();
    r.correlation.clear();
    r.traceparent.clear();
    r.tracestate.clear();
    c.call_id = call.id;
    return call;
  };
  switch (cmd) {
    case kComQuery: {
      Call& call = new_call();
      sql::SummarizeSql(arg, sql::Dialect::kMySql, backslash_, &call.sql);
      break;
    }
    case kComStmtExecute: {
      Call& call = new_call();
      const uint32_t id = arg.size() >= 4 ? ReadLe32(arg.data()) : 0;
      auto it = statements_.find(id);
      if (arg.size() >= 4 && it != statements_.end()) {
        call.sql = it->second;
      } else {
        call.known = false;
        stats_->unknown_statements++;
      }
      break;
    }
    case kComStmtPrepare: {
      // A failed prepare is reported (its error); a successful one only names its statement.
      Call& call = new_call();
      call.emit = false;
      sql::SummarizeSql(arg, sql::Dialect::kMySql, backslash_, &call.sql);
      break;
    }
    case kComStmtClose:
      if (arg.size() >= 4) statements_.erase(ReadLe32(arg.data()));
      return;  // no reply
    case kComStmtSendLongData:
    case kComQuit:
      return;  // no reply
    case kComInitDb:
      c.arg.assign(arg);
      break;
    case kComPing:
    case kComStmtReset:
    case kComSetOption:
    case kComResetConnection:
      break;
    default:
      return Desync();  // a reply whose shape we do not follow (COM_CHANGE_USER, ...)
  }
  commands_.push_back(std::move(c));
}

MySession::Call* MySession::CallOf(const Command& c) {
  if (c.call_id == 0) return nullptr;
  for (Call& call : calls_) {
    if (call.id == c.call_id) return &call;
  }
  return nullptr;
}

bool MySession::ParseResponses(conn::ByteStream& s, const conn::ByteStream& requests) {
  bool progress = false;
  while (phase_ != Phase::kDead && phase_ != Phase::kTls) {
    if (s.front_pos() < skip_resp_) {
      s.ConsumeTo(std::min(skip_resp_, s.end_pos()));
      if (s.front_pos() < skip_resp_) break;
    }
    const conn::ByteStream::Front f = s.Peek();
    if (f.gap == 0 && f.data.empty()) break;
    if (phase_ == Phase::kCommands && commands_.empty()) {
      if (requests.front_pos() < requests.end_pos()) break;  // its command is on its way
      Desync();                                              // a reply nothing asked for
      break;
    }
    Packet p;
    // Rows are skipped by length; only their first byte is read.
    const bool want = phase_ != Phase::kCommands || commands_.front().step != Step::kRows;
    const ReadResult r = PeekPacket(s, want, &p);
    if (r == ReadResult::kNeedMore) break;
    if (r == ReadResult::kLost || !OnReply(s, p)) {
      Desync();
      break;
    }
    skip_resp_ = p.end_pos();
    s.ConsumeTo(std::min(skip_resp_, s.end_pos()));
    progress = true;
  }
  return progress;
}

void MySession::ReadStatus(uint16_t status) {
  backslash_ = (status & kServerNoBackslashEscapes) == 0;
}

bool MySession::OnReply(const conn::ByteStream& s, const Packet& p) {
  if (phase_ != Phase::kCommands && p.payload.empty()) return false;
  const uint8_t h = p.payload.empty() ? 0 : static_cast<uint8_t>(p.payload[0]);
  if (phase_ == Phase::kGreeting) {
    if (h != 10) return false;
    const std::string_view rest = p.payload.substr(1);
    const std::string_view version = rest.substr(0, rest.find('\0'));
    if (version.find("MariaDB") != std::string_view::npos) system_ = "mariadb";
    phase_ = Phase::kAuth;
    return true;
  }
  if (phase_ == Phase::kAuth) {
    if (h == 0x00) phase_ = Phase::kCommands;
    if (h == 0xff) stats_->auth_failures++;
    return true;  // auth switch, more data: the client answers; we do not follow it
  }
  Command& c = commands_.front();
  if (p.seq != c.next_seq) return false;
  c.next_seq++;
  const bool continuation = c.continued;
  c.continued = p.length == kMaxPacketPayload;
  if (continuation) return true;  // the rest of a 16 MB packet
  if (p.payload.empty()) {
    // Its first byte was not captured (or it has none). Definitions are only counted, and a
    // packet longer than any terminator is a row: the walk goes on by length.
    const bool counted = c.step == Step::kColumns || c.step == Step::kPrepParams ||
                         c.step == Step::kPrepCols ||
                         (c.step == Step::kRows && p.length > kMaxTerminator);
    if (!counted || p.length == 0) return false;
  }
  Call* call = CallOf(c);
  std::string_view body = p.payload.substr(p.payload.empty() ? 0 : 1);
  auto finish = [&] {
    Complete(c, s, p.end_pos());
    commands_.pop_front();
    return true;
  };
  auto fail = [&] { return Fail(s, p, call); };
  auto ok_status = [&](std::string_view b, uint64_t* affected) {
    uint64_t insert_id = 0;
    if (!TakeLenenc(&b, affected) || !TakeLenenc(&b, &insert_id) || b.size() < 2)
      return uint16_t{0};
    const uint16_t status = ReadLe16(b.data());
    ReadStatus(status);
    return status;
  };
  switch (c.step) {
    case Step::kFirst: {
      if (h == 0xff) return fail();
      if (c.cmd == kComStmtPrepare) {
        if (h != 0x00 || p.payload.size() < 12) return false;
        c.stmt_id = ReadLe32(p.payload.data() + 1);
        c.prep_cols = ReadLe16(p.payload.data() + 5);
        c.left = ReadLe16(p.payload.data() + 7);
        c.step = Step::kPrepParams;
        if (c.left == 0) c.step = Step::kPrepCols, c.left = c.prep_cols;
        if (c.left == 0) return finish();
        return true;
      }
      if (h == 0x00 || (h == 0xfe && c.cmd == kComSetOption)) {
        uint64_t affected = 0;
        const uint16_t status = h == 0x00 ? ok_status(body, &affected) : 0;
        if (call) call->rows = static_cast<int64_t>(affected);
        if (c.cmd == kComInitDb) database_ = c.arg;
        if ((status & kServerMoreResultsExist) != 0) return true;  // another result follows
        return finish();
      }
      if (c.cmd != kComQuery && c.cmd != kComStmtExecute) return false;
      if (h == 0xfb) return false;  // LOCAL INFILE: not followed
      std::string_view b = p.payload;
      if (!TakeLenenc(&b, &c.left) || c.left == 0) return false;
      c.result_set = true;
      if (call) call->result_set = true, call->rows = 0;
      c.step = Step::kColumns;
      return true;
    }
    case Step::kColumns:
    case Step::kPrepParams:
    case Step::kPrepCols:
      if (--c.left > 0) return true;
      if (c.step == Step::kColumns) {
        c.step = deprecate_eof_ == 1 ? Step::kRows : Step::kColumnsEof;
      } else if (deprecate_eof_ != 1) {
        c.step = c.step == Step::kPrepParams ? Step::kPrepParamsEof : Step::kPrepColsEof;
      } else if (c.step == Step::kPrepParams && c.prep_cols > 0) {
        c.step = Step::kPrepCols, c.left = c.prep_cols;
      } else {
        return finish();
      }
      return true;
    case Step::kColumnsEof:
      if (deprecate_eof_ == -1) {  // resynced: an EOF here is 5 bytes; an OK ends the result
        deprecate_eof_ = IsEof(p) && p.length == 5 ? 0 : 1;
        if (deprecate_eof_ == 1) {
          c.step = Step::kRows;
          return OnReplyRow(s, p, c, call);
        }
      }
      if (!IsEof(p)) return false;
      c.step = Step::kRows;
      return true;
    case Step::kPrepParamsEof:
      if (!IsEof(p)) return false;
      if (c.prep_cols == 0) return finish();
      c.step = Step::kPrepCols;
      c.left = c.prep_cols;
      return true;
    case Step::kPrepColsEof:
      if (!IsEof(p)) return false;
      return finish();
    case Step::kRows:
      return OnReplyRow(s, p, c, call);
  }
  return false;
}

bool MySession::Fail(const conn::ByteStream& s, const Packet& p, Call* call) {
  if (call) {
    call->failed = true;
    call->emit = true;  // a failed prepare too
    if (p.payload.size() >= 3) {
      std::snprintf(call->code, sizeof(call->code), "%u", ReadLe16(p.payload.data() + 1));
    }
  }
  Complete(commands_.front(), s, p.end_pos());
  commands_.pop_front();
  return true;
}

bool MySession::OnReplyRow(const conn::ByteStream& s, const Packet& p, Command& c, Call* call) {
  const uint8_t h = p.payload.empty() ? 0 : static_cast<uint8_t>(p.payload[0]);
  if (h == 0xff) return Fail(s, p, call);  // the query failed mid-result (killed, timeout)
  if (!IsEof(p)) {
    if (call) call->rows++;
    return true;
  }
  std::string_view b = p.payload.substr(1);
  uint16_t status = 0;
  if (deprecate_eof_ == 1) {  // an OK packet with an 0xFE header
    uint64_t affected = 0, insert_id = 0;
    if (TakeLenenc(&b, &affected) && TakeLenenc(&b, &insert_id) && b.size() >= 2) {
      status = ReadLe16(b.data());
    }
  } else if (b.size() >= 4) {
    status = ReadLe16(b.data() + 2);
  }
  ReadStatus(status);
  if ((status & kServerMoreResultsExist) != 0) {
    c.step = Step::kFirst;
    return true;
  }
  Complete(c, s, p.end_pos());
  commands_.pop_front();
  return true;
}

void MySession::Complete(Command& c, const conn::ByteStream& s, uint64_t end_pos) {
  Call* call = CallOf(c);
  if (!call) return;
  call->done = true;
  call->result_set = c.result_set;
  const conn::ByteStream::Stamp st = s.StampAt(end_pos > 0 ? end_pos - 1 : 0);
  call->end_ns = st.ts_ns;
  call->response_tid = st.tid;
  if (c.cmd == kComStmtPrepare && !call->failed) {
    if (statements_.size() >= kMaxStatements) statements_.clear();  // later executes: unknown
    statements_[c.stmt_id] = call->sql;
  }
}

void MySession::Emit(SessionOutput* out) {
  while (!calls_.empty() && calls_.front().done) {
    Call& c = calls_.front();
    if (c.emit && unverified_) {
      // Resynced: the first reply must fit its query (rows for a SELECT, OK for the rest).
      const std::string_view op = c.sql.operation;
      if (!c.failed && c.known && c.sql.statements == 1 && !op.empty() &&
          ReturnsRows(op) == c.result_set) {
        unverified_ = false;
      } else {
        stats_->dropped++;
        c.emit = false;
      }
    }
    if (c.emit) {
      ExchangeDone& x = out->AddExchange();
      x.id = c.id;
      x.start_ns = c.start_ns;
      x.end_ns = std::max(c.end_ns, c.start_ns);
      x.response_tid = c.response_tid;
      sql::DbCall call;
      call.system = system_;
      call.name_space = database_;
      call.sql = c.known ? &c.sql : nullptr;
      call.answered = true;
      call.failed = c.failed;
      call.status_code = c.failed ? std::string_view(c.code) : std::string_view();
      call.rows = c.failed ? -1 : c.rows;
      sql::BuildDbSpan(call, &x);
      stats_->calls++;
      if (c.failed) stats_->errors++;
    }
    calls_.pop_front();
  }
}

void MySession::Desync() {
  if (phase_ == Phase::kDead) return;
  stats_->desyncs++;
  for (const Call& c : calls_) {
    if (c.emit && !c.done) stats_->dropped++;
  }
  calls_.clear();
  commands_.clear();
  phase_ = Phase::kDead;
}

void MySession::Close(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
                      uint64_t now_ns, SessionOutput* out) {
  Advance(requests, responses, now_ns, out);
  for (Call& c : calls_) {
    if (c.done) continue;
    c.done = true;
    if (!c.emit) continue;
    stats_->unfinished++;
    c.emit = false;
    if (reason != CloseReason::kShutdown) continue;
    ExchangeDone& x = out->AddExchange();
    x.id = c.id;
    x.start_ns = c.start_ns;
    x.end_ns = std::max(now_ns, c.start_ns);
    sql::DbCall call;
    call.system = system_;
    call.name_space = database_;
    call.sql = c.known ? &c.sql : nullptr;
    call.error_type = "agent_shutdown";
    sql::BuildDbSpan(call, &x);
  }
  Emit(out);
  calls_.clear();
  commands_.clear();
}

}  // namespace zerotrace::protocols::mysql
