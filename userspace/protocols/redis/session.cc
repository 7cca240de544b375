// RedisSession: in-order pairing of commands and replies, with loss markers and realignment.
#include "protocols/redis/session.h"

#include <algorithm>
#include <charconv>

#include "trace/attribute_writer.h"

namespace zerotrace::protocols::redis {
namespace {

enum class PushKind : uint8_t { kNone, kData, kSubscribe, kUnsubscribe };

// What a pub/sub-shaped value's first word says it is, and for confirmations their kind.
PushKind KindOf(std::string_view w, char* pubsub) {
  *pubsub = 'c';
  if (w == "message" || w == "pmessage" || w == "smessage") return PushKind::kData;
  if (w.size() == 10 && (w[0] == 'p' || w[0] == 's')) *pubsub = w[0];  // psubscribe, ssubscribe
  if (w.size() == 12 && (w[0] == 'p' || w[0] == 's')) *pubsub = w[0];  // punsubscribe, ...
  if (*pubsub != 'c') w.remove_prefix(1);
  if (w == "subscribe") return PushKind::kSubscribe;
  if (w == "unsubscribe") return PushKind::kUnsubscribe;
  return PushKind::kNone;
}

bool IsError(char type) { return type == '-' || type == '!'; }

}  // namespace

std::string_view ErrorPrefix(std::string_view text) {
  const size_t end = std::min(text.find(' '), text.size());
  std::string_view word = text.substr(0, end);
  if (word.empty() || word.size() > 32) return "ERR";
  for (const char c : word) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return "ERR";
  }
  return word;
}

RedisSession::RedisSession(const SessionContext& context, bool mid_stream, RedisStats* stats)
    : context_(context), stats_(stats) {
  stats_->conns++;
  if (mid_stream) {
    // Replies to commands sent before the agent looked may still come: pairing starts at the
    // first command whose reply can be placed (Realign).
    stats_->conns_mid_stream++;
    entries_.emplace_back().marker = true;
    db_ = -1;
    subscriptions_ = -1;
    resp_version_ = 0;
  } else {
    db_ = 0;
  }
}

// Hot path.
void RedisSession::Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
                           SessionOutput* out) {
  out_ = out;
  if (stopped_) {
    requests.ConsumeTo(requests.end_pos());
    responses.ConsumeTo(responses.end_pos());
    return;
  }
  ProcessRequests(requests, responses.end_pos(), now_ns);
  ProcessReplies(responses);
  if (stopped_) responses.ConsumeTo(responses.end_pos());
  if (req_parser_.idle()) requests.ReleaseIdle();
  if (resp_parser_.idle()) responses.ReleaseIdle();
  out_ = nullptr;
}

void RedisSession::ProcessRequests(conn::ByteStream& requests, uint64_t responses_end,
                                   uint64_t now_ns) {
  while (!stopped_) {
    if (req_skipping_) {
      if (!RespParser::SkipToAfterGap(requests)) return;
      req_skipping_ = false;
    }
    const RespParser::Result r = req_parser_.Next(requests);
    if (r == RespParser::Result::kNeedMore) return;
    if (r == RespParser::Result::kLost) {
      // Commands may hide in the lost bytes: their replies come after those already owed.
      stats_->request_framing_lost++;
      req_parser_.Reset();
      req_skipping_ = true;
      if (entries_.size() == head_ || !entries_.back().marker)
        entries_.emplace_back().marker = true;
      continue;
    }
    OnCommand(req_parser_.value(), responses_end, now_ns);
  }
}

void RedisSession::ReportStart(const Entry& e) {
  RequestStarted& r = out_->AddStart();
  r.id = e.id;
  r.start_ns = e.start_ns;
  r.tid = e.tid;
  r.stream_pos = e.pos;
  r.operation.assign(e.cmd.query);
  r.correlation.clear();
  r.traceparent.clear();
  r.tracestate.clear();
}

void RedisSession::OnCommand(const RespValue& v, uint64_t responses_end, uint64_t now_ns) {
  if (entries_.size() - head_ >= kMaxPending) {
    // Replies stopped coming: what is pending becomes one loss marker.
    Unalign();
  }
  Entry& e = entries_.emplace_back();
  if (!SummarizeCommand(v, &e.cmd)) {  // an empty command: the server skips it silently
    entries_.pop_back();
    return;
  }
  stats_->commands++;
  e.id = next_id_++;
  e.start_ns = v.start_ns != 0 ? v.start_ns : now_ns;
  e.req_end_ns = v.end_ns != 0 ? v.end_ns : e.start_ns;
  e.tid = v.start_tid;
  e.resp_end_at = responses_end;
  const CommandSummary& c = e.cmd;
  if (c.kind == CommandKind::kSubscribe || c.kind == CommandKind::kUnsubscribe) {
    e.confirmations = c.channels > 0 ? c.channels : UINT32_MAX;  // none named: until count 0
  }
  // CLIENT REPLY OFF/SKIP: the server stays silent (not inside MULTI, where it is queued).
  if (reply_off_ || skip_next_) {
    e.no_reply = !(reply_off_ && c.kind == CommandKind::kClientReply && c.client_reply == 'N');
    skip_next_ = false;
  }
  if (c.kind == CommandKind::kClientReply && !req_multi_) {
    if (c.client_reply == 'F') {
      reply_off_ = true;
      e.no_reply = true;
    } else if (c.client_reply == 'S') {
      skip_next_ = !reply_off_;
      e.no_reply = true;
    } else {
      reply_off_ = false;
    }
  }
  if (c.kind == CommandKind::kMulti) req_multi_ = true;
  if (c.kind == CommandKind::kExec || c.kind == CommandKind::kDiscard) req_multi_ = false;
  const bool behind_marker =
      !aligned() || std::any_of(entries_.begin() + static_cast<long>(head_), entries_.end() - 1,
                                [](const Entry& x) { return x.marker; });
  e.pos = v.start_pos;
  if (!behind_marker) ReportStart(e);
  if (e.no_reply) {
    stats_->no_reply_commands++;
    if (!behind_marker) {
      Emit(e, e.req_end_ns, 0, {}, {});
    } else {
      stats_->unpaired_commands++;
    }
    entries_.pop_back();
  }
}

void RedisSession::ProcessReplies(conn::ByteStream& responses) {
  while (!stopped_) {
    if (head_ < entries_.size() && Head().marker && !Realign(responses)) return;
    if (resp_skipping_) {
      if (!RespParser::SkipToAfterGap(responses)) return;
      resp_skipping_ = false;
    }
    const RespParser::Result r = resp_parser_.Next(responses);
    if (r == RespParser::Result::kNeedMore) return;
    if (r == RespParser::Result::kLost) {
      OnReplyLoss(responses);
      continue;
    }
    OnReply(resp_parser_.value());
  }
}

// The head is a loss marker. Pairing resumes at the first kept command C after it: C's reply
// cannot start before the reply-stream position where C was sent (the server had not read
// C), and the bytes before that position answer the lost commands. That holds when the
// client had read every earlier reply before sending C (request/response clients, and
// batches read in full before the next); C's reply shape is then checked, and a mismatch
// drops it. A C whose position was already passed cannot be placed and is dropped.
bool RedisSession::Realign(conn::ByteStream& responses) {
  while (head_ < entries_.size() && Head().marker) {
    if (head_ + 1 == entries_.size()) {  // nothing kept: what came answers lost commands
      if (responses.end_pos() > responses.front_pos()) {
        resp_parser_.Reset();
        responses.ConsumeTo(responses.end_pos());
      }
      resp_skipping_ = false;
      return false;
    }
    Entry& c = entries_[head_ + 1];
    if (resp_parser_.idle() && responses.front_pos() <= c.resp_end_at) {
      resp_parser_.Reset();
      responses.ConsumeTo(c.resp_end_at);
      resp_skipping_ = false;
      PopFront();
      stats_->realigned++;
      // A lost SELECT, MULTI, HELLO or SUBSCRIBE may have changed the connection's state.
      db_ = -1;
      subscriptions_ = -1;
      resp_version_ = 0;
      multi_ = false;
      queued_.clear();
      for (size_t i = head_; i < entries_.size() && !entries_[i].marker; i++) {
        ReportStart(entries_[i]);
      }
      return true;
    }
    if (!resp_parser_.idle()) {
      // A reply is being read past where C was sent: it answers a lost command or C; which
      // one is unknowable.
      resp_parser_.Reset();
      resp_skipping_ = true;
    }
    stats_->unpaired_commands++;
    entries_.erase(entries_.begin() + static_cast<long>(head_) + 1);
  }
  return true;
}

// Everything pending becomes one loss marker (dropped, counted).
void RedisSession::Unalign() {
  for (size_t i = head_; i < entries_.size(); i++) {
    if (!entries_[i].marker && !entries_[i].timed_out) stats_->unpaired_commands++;
  }
  stats_->unpaired_commands += queued_.size();
  queued_.clear();
  entries_.clear();
  head_ = 0;
  entries_.emplace_back().marker = true;
}

void RedisSession::PopFront() {
  ++head_;
  if (head_ == entries_.size()) {
    entries_.clear();
    head_ = 0;
  } else if (head_ >= 32 && head_ * 2 >= entries_.size()) {
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(head_));
    head_ = 0;
  }
}

void RedisSession::OnReplyLoss(conn::ByteStream& responses) {
  stats_->reply_framing_lost++;
  const RespValue& v = resp_parser_.value();
  const bool started = !resp_parser_.idle() && v.type != 0;
  if (started && head_ < entries_.size() && !Head().marker && !Head().timed_out &&
      head_ + 1 == entries_.size() && !IsError(v.type)) {
    // The only command pending got the start of a reply whose end was lost (a large reply):
    // its span ends at the last byte seen of it.
    Entry& h = Head();
    const uint64_t last = responses.front_pos() > 0 ? responses.front_pos() - 1 : 0;
    const conn::ByteStream::Stamp st = responses.StampAt(last);
    stats_->truncated_replies++;
    Emit(h, std::max(st.ts_ns, v.start_ns), st.tid != 0 ? st.tid : v.start_tid, {}, {});
    PopFront();
  }
  resp_parser_.Reset();
  resp_skipping_ = true;
  if (head_ < entries_.size()) {
    Unalign();
  } else {
    entries_.emplace_back().marker = true;  // the lost bytes may hold more replies
  }
}

// True when `v` is a confirmation of the (un)subscribe `head`.
bool RedisSession::Confirms(const RespValue& v, const Entry& head) {
  if ((v.type != '>' && v.type != '*') || v.elements_seen != 3 || v.elements.empty() ||
      v.elements[0].type != '$') {
    return false;
  }
  char pubsub = 'c';
  const PushKind kind = KindOf(v.content(v.elements[0]), &pubsub);
  return pubsub == head.cmd.pubsub &&
         ((kind == PushKind::kSubscribe && head.cmd.kind == CommandKind::kSubscribe) ||
          (kind == PushKind::kUnsubscribe && head.cmd.kind == CommandKind::kUnsubscribe));
}

// The reply to PUBLISH-fed subscribers and (un)subscribe confirmations: true when `v` was one
// (consumed), false when it is an ordinary reply.
bool RedisSession::OnPubSubShape(const RespValue& v, Entry* head) {
  const bool push = v.type == '>';
  const bool shaped = v.type == '*' && resp_version_ != 3 &&
                      (v.elements_seen == 3 || v.elements_seen == 4) && !v.elements.empty() &&
                      v.elements[0].type == '$';
  if (!push && !shaped) return false;
  char pubsub = 'c';
  const PushKind kind =
      v.elements.empty() ? PushKind::kNone : KindOf(v.content(v.elements[0]), &pubsub);
  if (shaped && kind == PushKind::kNone) return false;
  if (push) resp_version_ = 3;
  const bool confirmation = kind == PushKind::kSubscribe || kind == PushKind::kUnsubscribe;
  const bool expected = confirmation && head != nullptr && !head->marker && !head->timed_out &&
                        head->confirmations > 0 && Confirms(v, *head);
  int64_t count = -1;
  if (confirmation && v.elements.size() >= 3 && v.elements[2].type == ':') {
    count = v.elements[2].number;
  }
  if (expected) {
    if (count >= 0) subscriptions_ = count;
    if (head->confirmations != UINT32_MAX) head->confirmations--;
    head->last_confirmation_ns = v.end_ns;  // the latest confirmation's end
    if (head->confirmations == 0 || (head->confirmations == UINT32_MAX && count == 0)) {
      Emit(*head, v.end_ns, v.end_tid, {}, {});
      PopFront();
    }
    return true;
  }
  if (!push && subscriptions_ == 0) return false;  // not subscribed: an ordinary reply
  if (!push && subscriptions_ < 0 && head != nullptr && !head->marker) {
    // Whether the connection is subscribed is unknown (found mid-stream): this may be the
    // head's reply or a message pushed to a subscriber.
    stats_->unpaired_replies++;
    Unalign();
    return true;
  }
  if (confirmation && count >= 0) subscriptions_ = count;
  if (kind == PushKind::kData) {
    stats_->pubsub_messages++;
  } else {
    stats_->pushes_other++;
  }
  return true;
}

void RedisSession::OnReply(const RespValue& v) {
  Entry* head = head_ < entries_.size() ? &Head() : nullptr;
  // An unsubscribe naming nothing ends at its last confirmation, when something else comes.
  if (head != nullptr && head->confirmations == UINT32_MAX && head->last_confirmation_ns != 0 &&
      !Confirms(v, *head)) {
    Emit(*head, head->last_confirmation_ns, 0, {}, {});
    PopFront();
    head = head_ < entries_.size() ? &Head() : nullptr;
  }
  if (OnPubSubShape(v, head)) return;
  if (head == nullptr || head->marker) {
    stats_->unpaired_replies++;  // nothing was asked (or was lost): it answers nothing kept
    return;
  }
  Entry& e = *head;
  if (e.timed_out) {  // reported already; its reply is late
    PopFront();
    return;
  }
  const std::string_view text = v.head();
  if (v.type == '+' && text == "QUEUED" && e.cmd.kind != CommandKind::kExec) {
    multi_ = true;  // the server queues commands: EXEC's reply answers this one
    if (queued_.size() >= kMaxPending) {
      stats_->unpaired_commands++;
    } else {
      queued_.push_back(std::move(e));
    }
    PopFront();
    return;
  }
  if (!ReplyFits(e.cmd.reply_mask, v.type)) {
    // A reply of a shape this command never gets: pairing is wrong here (or, just after a
    // loss, was never right). Nothing pending can be placed any more.
    stats_->reply_mismatches++;
    stats_->unpaired_replies++;
    Unalign();
    return;
  }
  if (IsError(v.type)) {
    prefix_.assign(ErrorPrefix(text));
    stats_->error_replies++;
    Emit(e, v.end_ns, v.end_tid, prefix_, {});
    if (e.cmd.kind == CommandKind::kExec || e.cmd.kind == CommandKind::kDiscard) {
      for (Entry& q : queued_) Emit(q, v.end_ns, v.end_tid, prefix_, {});
      queued_.clear();
      multi_ = false;
    }
    PopFront();
    return;
  }
  switch (e.cmd.kind) {
    case CommandKind::kMulti:
      multi_ = true;
      break;
    case CommandKind::kExec:
      FinishExec(e, v);
      PopFront();
      return;
    case CommandKind::kDiscard:
      for (Entry& q : queued_) Emit(q, v.end_ns, v.end_tid, {}, {});
      queued_.clear();
      multi_ = false;
      break;
    case CommandKind::kSelect:
      db_ = e.cmd.select_db;
      break;
    case CommandKind::kReset:
      db_ = 0;
      subscriptions_ = 0;
      resp_version_ = 2;
      multi_ = false;
      stats_->unpaired_commands += queued_.size();
      queued_.clear();
      break;
    case CommandKind::kHello:
      if (e.cmd.hello_proto != 0) resp_version_ = e.cmd.hello_proto;
      break;
    case CommandKind::kMonitor:
    case CommandKind::kReplication:
      stopped_ = true;  // what follows is not replies
      stats_->stopped++;
      break;
    default:
      break;
  }
  Emit(e, v.end_ns, v.end_tid, {}, {});
  PopFront();
}

// EXEC's reply holds the replies of the commands queued since MULTI, in order.
void RedisSession::FinishExec(Entry& exec, const RespValue& v) {
  stats_->transactions++;
  const int64_t batch = static_cast<int64_t>(queued_.size());
  const bool fits = v.null || static_cast<size_t>(v.number) == queued_.size();
  if (!fits) stats_->unpaired_commands += queued_.size();  // queued before the agent looked
  for (size_t i = 0; fits && i < queued_.size(); i++) {
    Entry& q = queued_[i];
    std::string_view prefix;
    if (!v.null && i < v.elements.size()) {
      const RespElement& el = v.elements[i];
      if (IsError(el.type)) {
        prefix_.assign(ErrorPrefix(v.content(el)));
        prefix = prefix_;
        stats_->error_replies++;
      } else if (q.cmd.kind == CommandKind::kSelect && el.type == '+') {
        db_ = q.cmd.select_db;
      }
    }
    // A transaction that WATCH aborted (a null reply) ran nothing: no error, no result.
    Emit(q, v.end_ns, v.end_tid, prefix, {});
  }
  queued_.clear();
  multi_ = false;
  Emit(exec, v.end_ns, v.end_tid, {}, {}, batch);
}

void RedisSession::Emit(Entry& e, uint64_t end_ns, uint32_t reply_tid,
                        std::string_view error_prefix, std::string_view error_type,
                        int64_t batch_size) {
  stats_->exchanges++;
  ExchangeDone& x = out_->AddExchange();
  x.id = e.id;
  x.start_ns = e.start_ns;
  x.end_ns = std::max(end_ns, e.start_ns);
  x.response_tid = reply_tid;
  trace::Span& s = x.span;
  s.name.assign(e.cmd.operation);
  s.status = trace::StatusCode::kUnset;
  s.status_message.clear();
  trace::AttributeWriter a(&s.attributes);
  a.Add("db.system.name", "redis");
  a.Add("db.operation.name", e.cmd.operation);
  a.Add("db.query.text", e.cmd.query);
  if (db_ >= 0) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof(buf), db_).ptr;
    a.Add("db.namespace", std::string_view(buf, static_cast<size_t>(end - buf)));
  }
  if (batch_size >= 2) a.Add("db.operation.batch.size", batch_size);
  if (!error_prefix.empty()) {
    a.Add("db.response.status_code", error_prefix);
    a.Add("error.type", error_prefix);
    s.status = trace::StatusCode::kError;
    s.status_message.assign(error_prefix);  // the message itself may quote arguments
  } else if (!error_type.empty()) {
    a.Add("error.type", error_type);
    s.status = trace::StatusCode::kError;
    s.status_message.assign(error_type);
  }
  a.Done();
}

void RedisSession::Expire(uint64_t now_ns, SessionOutput* out) {
  out_ = out;
  // In order: a blocking command holds the replies of everything behind it.
  for (size_t i = head_; i < entries_.size(); i++) {
    Entry& e = entries_[i];
    if (e.marker || e.cmd.blocking || e.confirmations != 0) break;
    if (e.timed_out) continue;
    if (now_ns < e.start_ns || now_ns - e.start_ns < kReplyTimeoutNs) break;
    stats_->timeouts++;
    Emit(e, now_ns, 0, {}, "timeout");
    e.timed_out = true;
  }
  out_ = nullptr;
}

void RedisSession::Close(conn::ByteStream& requests, conn::ByteStream& responses,
                         CloseReason reason, uint64_t now_ns, SessionOutput* out) {
  requests.DeclareHolesAsGaps();
  responses.DeclareHolesAsGaps();
  Advance(requests, responses, now_ns, out);
  out_ = out;
  std::string_view error;
  switch (reason) {
    case CloseReason::kClosed:
      error = "response_missing_at_close";
      break;
    case CloseReason::kReset:
      error = "connection_reset";
      break;
    case CloseReason::kShutdown:
      error = "agent_shutdown";
      break;
    case CloseReason::kUnobserved:
      break;
  }
  // An (un)subscribe that got confirmations ends at its last one.
  bool behind_marker = false;
  for (size_t i = head_; i < entries_.size(); i++) {
    Entry& e = entries_[i];
    if (e.marker) {
      behind_marker = true;
    } else if (e.timed_out) {
      continue;
    } else if (e.last_confirmation_ns != 0) {
      Emit(e, e.last_confirmation_ns, 0, {}, {});
    } else if (behind_marker || stopped_) {
      stats_->unpaired_commands++;
    } else if (error.empty()) {
      stats_->unfinished_unobserved++;
    } else {
      Emit(e, now_ns, 0, {}, error);
    }
  }
  for (Entry& q : queued_) {
    if (error.empty()) {
      stats_->unfinished_unobserved++;
    } else {
      Emit(q, now_ns, 0, {}, error);
    }
  }
  queued_.clear();
  entries_.clear();
  head_ = 0;
  out_ = nullptr;
}

}  // namespace zerotrace::protocols::redis
