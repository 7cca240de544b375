// Http2Session: frames -> header blocks and DATA -> streams -> exchanges. Precision rules: a
// header block is decoded only against a table this session has followed from the start; a
// direction whose frames or headers are lost stops there, and what depended on it is dropped
// and counted, never guessed.
#include "protocols/http2/session.h"

#include <algorithm>
#include <charconv>

#include "trace/span_linker.h"

namespace zerotrace::protocols::http2 {
namespace {

uint32_t Be32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

void Drain(conn::ByteStream& s) { s.ConsumeTo(s.end_pos()); }

// Every known byte of `s` has been read: a stream it does not name yet has not been opened.
bool CaughtUp(const conn::ByteStream& s) { return s.front_pos() >= s.end_pos(); }

}  // namespace

std::string_view StreamErrorName(StreamError e) {
  switch (e) {
    case StreamError::kNone:
      return {};
    case StreamError::kReset:
      return "stream_reset";
    case StreamError::kRefused:
      return "goaway";
    case StreamError::kTimeout:
      return "timeout";
    case StreamError::kMissingAtClose:
      return "response_missing_at_close";
    case StreamError::kTruncated:
      return "response_truncated";
    case StreamError::kConnectionReset:
      return "connection_reset";
    case StreamError::kAgentShutdown:
      return "agent_shutdown";
  }
  return {};
}

Http2Session::Http2Session(const SessionContext& context, SessionShared* shared)
    : context_(context), shared_(shared), stats_(shared->stats) {}

// Hot path.
void Http2Session::Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
                           SessionOutput* out) {
  out_ = out;
  now_ns_ = now_ns;
  Parse(requests, responses);
  ReleaseIdle();
  out_ = nullptr;
}

void Http2Session::Parse(conn::ByteStream& requests, conn::ByteStream& responses) {
  if (mode_ == Mode::kUndecided && !Preface(requests)) return;
  if (mode_ == Mode::kTableUnknown) {
    ParseUnknownTable(requests, responses);
    return;
  }
  ParseDirection(kReq, requests, responses);
  ParseDirection(kResp, responses, requests);
}

// The client's preface opens the request direction; the server's SETTINGS is an ordinary frame.
bool Http2Session::Preface(conn::ByteStream& requests) {
  const conn::ByteStream::Front f = requests.Peek();
  const size_t n = std::min(f.data.size(), kClientPreface.size());
  if (f.gap != 0 || f.data.substr(0, n) != kClientPreface.substr(0, n)) {
    mode_ = Mode::kTableUnknown;  // claimed mid-stream, at a frame
    stats_.conns_table_unknown++;
    return true;
  }
  if (n < kClientPreface.size()) return false;
  upgraded_ = f.pos > 0;  // an HTTP/1 request (the h2c upgrade) came before the preface
  requests.Consume(kClientPreface.size());
  mode_ = Mode::kFull;
  stats_.conns++;
  return true;
}

// Hot path.
void Http2Session::ParseDirection(Dir d, conn::ByteStream& s, const conn::ByteStream& other) {
  FrameReader& r = reader_[d];
  for (;;) {
    if (lost_[d] || lost_[kResp]) {  // nothing can finish once responses are lost
      Drain(s);
      return;
    }
    const FrameEvent ev = r.Next(s);
    switch (ev.kind) {
      case FrameEvent::kNeedMore:
        return;
      case FrameEvent::kLost:
        LoseDirection(d, false);
        break;
      case FrameEvent::kFrame:
        if (!OnFrame(d, ev, s, other)) return;  // waits for the request direction
        r.Commit(s);
        break;
      case FrameEvent::kDataBegin:
        if (block_[d].open) {  // a header block must not be interrupted
          LoseDirection(d, true);
          break;
        }
        OnDataBegin(d, ev, s);
        r.Commit(s);
        break;
      case FrameEvent::kDataBytes:
        OnDataBytes(d, ev, s);
        r.Commit(s);
        break;
      case FrameEvent::kDataEnd:
        OnDataEnd(d, ev);
        break;
    }
  }
}

// Mid-life: streams are counted from their HEADERS frames; nothing is decoded or reported.
void Http2Session::ParseUnknownTable(conn::ByteStream& requests, conn::ByteStream& responses) {
  Drain(responses);  // may start anywhere in a frame: never parsed
  FrameReader& r = reader_[kReq];
  for (;;) {
    if (r.lost()) {
      Drain(requests);
      return;
    }
    const FrameEvent ev = r.Next(requests);
    switch (ev.kind) {
      case FrameEvent::kNeedMore:
        return;
      case FrameEvent::kLost:
        stats_.frames_lost++;
        break;
      case FrameEvent::kFrame:
        if (ev.header.type == kHeaders && (ev.header.stream_id & 1) != 0 &&
            ev.header.stream_id > last_request_id_) {
          last_request_id_ = ev.header.stream_id;
          stats_.streams_table_unknown++;
        }
        r.Commit(requests);
        break;
      case FrameEvent::kDataBegin:
      case FrameEvent::kDataBytes:
        r.Commit(requests);
        break;
      case FrameEvent::kDataEnd:
        break;
    }
  }
}

bool Http2Session::OnFrame(Dir d, const FrameEvent& ev, conn::ByteStream& s,
                           const conn::ByteStream& other) {
  const FrameHeader& h = ev.header;
  Block& b = block_[d];
  if (b.open && h.type != kContinuation) {  // RFC 9113 6.10: nothing may interleave
    LoseDirection(d, true);
    return true;
  }
  switch (h.type) {
    case kHeaders:
      return OnHeaders(d, ev, s, other);
    case kContinuation:
      if (!b.open || h.stream_id != b.stream_id) {
        LoseDirection(d, true);
        return true;
      }
      FeedBlock(d, b, ev.bytes, h.has(kEndHeaders), ev.end_pos, s);
      return true;
    case kPushPromise: {
      // Decoded (the table must follow) and otherwise ignored: pushes are not requests.
      std::string_view p = ev.bytes;
      size_t pad = 0;
      if (h.has(kPadded)) {
        if (p.empty()) {
          LoseDirection(d, true);
          return true;
        }
        pad = static_cast<uint8_t>(p[0]);
        p.remove_prefix(1);
      }
      if (p.size() < 4 + pad) {
        LoseDirection(d, true);
        return true;
      }
      p = p.substr(4, p.size() - 4 - pad);
      stats_.pushes++;
      b = Block{};
      b.stream_id = h.stream_id;
      FeedBlock(d, b, p, h.has(kEndHeaders), ev.end_pos, s);
      return true;
    }
    case kRstStream:
      OnReset(d, ev, s);
      return true;
    case kGoaway:
      OnGoaway(d, ev);
      return true;
    default:  // SETTINGS, PING, WINDOW_UPDATE, PRIORITY, extensions: nothing for spans
      return true;
  }
}

bool Http2Session::OnHeaders(Dir d, const FrameEvent& ev, conn::ByteStream& s,
                             const conn::ByteStream& other) {
  const FrameHeader& h = ev.header;
  std::string_view p = ev.bytes;
  size_t pad = 0;
  if (h.has(kPadded)) {
    if (p.empty()) {
      LoseDirection(d, true);
      return true;
    }
    pad = static_cast<uint8_t>(p[0]);
    p.remove_prefix(1);
  }
  const size_t priority = h.has(kPriorityFlag) ? 5 : 0;
  if (p.size() < priority + pad) {
    LoseDirection(d, true);
    return true;
  }
  p = p.substr(priority, p.size() - priority - pad);

  Block b;
  b.stream_id = h.stream_id;
  b.end_stream = h.has(kEndStream);
  const bool client_stream = (h.stream_id & 1) != 0;
  Stream* st = Find(h.stream_id);
  if (d == kReq) {
    if (st != nullptr) {
      b.kind = BlockKind::kRequestTrailers;
    } else if (client_stream && h.stream_id > last_request_id_) {
      last_request_id_ = h.stream_id;
      Stream& fresh = NewStream(h.stream_id);
      const conn::ByteStream::Stamp stamp = s.StampAt(ev.pos);
      fresh.start_ns = stamp.ts_ns != 0 ? stamp.ts_ns : now_ns_;
      fresh.seen_ns = fresh.start_ns;
      fresh.start_tid = stamp.tid;
      fresh.start_pos = ev.pos;
      b.kind = BlockKind::kRequest;
      shared_->traceparent.clear();
      shared_->tracestate.clear();
      shared_->correlation.clear();
    }
  } else if (st != nullptr) {
    b.kind = st->final_headers ? BlockKind::kResponseTrailers : BlockKind::kResponse;
    if (!st->resp_seen) {
      st->resp_seen = true;
      st->resp_tid = s.StampAt(ev.pos).tid;
    }
  } else if (upgraded_ && h.stream_id == 1) {
    // The answer to the HTTP/1 upgrade request: HTTP/1 reported that exchange.
    if (last_unpaired_id_ != 1) {
      last_unpaired_id_ = 1;
      stats_.upgrade_streams++;
    }
  } else if (client_stream && h.stream_id > last_request_id_) {
    // Its request may still be on its way: a sender's record can come after the answer to it
    // (the writing thread was preempted before its syscall's exit). Wait for it a moment.
    if (!lost_[kReq] && !closing_) {
      if (!CaughtUp(other)) return false;
      if (wait_since_ns_ == 0) wait_since_ns_ = now_ns_;
      if (now_ns_ < wait_since_ns_ + kRequestWaitNs) return false;
    }
    if (h.stream_id != last_unpaired_id_) {
      last_unpaired_id_ = h.stream_id;
      stats_.unpaired_responses++;
    }
  }
  if (d == kResp) wait_since_ns_ = 0;
  FeedBlock(d, b, p, h.has(kEndHeaders), ev.end_pos, s);
  return true;
}

// Hot path.
void Http2Session::FeedBlock(Dir d, Block& b, std::string_view fragment, bool end_headers,
                             uint64_t end_pos, conn::ByteStream& s) {
  Stream* st = b.kind == BlockKind::kIgnore ? nullptr : Find(b.stream_id);
  const bool ok =
      hpack_[d].Feed(fragment, end_headers, [&](std::string_view n, std::string_view v) {
        if (st != nullptr) OnField(b, st, n, v);
      });
  if (!ok) {
    LoseDirection(d, true);
    return;
  }
  if (!end_headers) {
    b.open = true;
    block_[d] = b;
    return;
  }
  Block done = b;
  block_[d] = Block{};
  FinishBlock(done, end_pos, s);
}

// Hot path: keeps what spans and links use; every other field is only decoded.
void Http2Session::OnField(Block& b, Stream* st, std::string_view n, std::string_view v) {
  switch (b.kind) {
    case BlockKind::kRequest:
      if (n.empty()) return;
      if (n[0] == ':') {
        if (n == ":method") {
          st->method.assign(v);
        } else if (n == ":path") {
          st->path.assign(v);
        } else if (n == ":authority") {
          st->authority.assign(v);
          st->has_authority = true;
        } else if (n == ":scheme") {
          st->scheme.assign(v);
        }
      } else if (n == "user-agent") {
        st->user_agent.assign(v);
        st->has_user_agent = true;
      } else if (n == "content-type") {
        st->grpc = IsGrpcContentType(v);
      } else if (n == "host") {
        if (!st->has_authority) {
          st->authority.assign(v);
          st->has_authority = true;
        }
      } else if (n == "grpc-timeout") {
        st->timeout_ns = ParseGrpcTimeout(v).value_or(0);
      } else if (n == "traceparent") {
        shared_->traceparent.assign(v);
      } else if (n == "tracestate") {
        shared_->tracestate.assign(v);
      } else if (shared_->correlation.empty() && trace::IsCorrelationHeader(n)) {
        shared_->correlation.assign(v);
      }
      return;
    case BlockKind::kResponse:
      if (n == ":status") {
        uint16_t status = 0;
        std::from_chars(v.data(), v.data() + v.size(), status);
        b.status = status;
        return;
      }
      [[fallthrough]];  // a Trailers-Only response carries the gRPC status
    case BlockKind::kResponseTrailers:
      if (n == "grpc-status") {
        st->grpc_status = ParseGrpcStatus(v).value_or(kGrpcUnknown);
      } else if (n == "grpc-message") {
        st->grpc_message = DecodeGrpcMessage(v);
      }
      return;
    case BlockKind::kRequestTrailers:
    case BlockKind::kIgnore:
      return;
  }
}

void Http2Session::FinishBlock(Block& b, uint64_t end_pos, conn::ByteStream& s) {
  Stream* st = b.kind == BlockKind::kIgnore ? nullptr : Find(b.stream_id);
  if (st == nullptr) return;
  switch (b.kind) {
    case BlockKind::kRequest:
      if (st->method.empty() || (st->path.empty() && st->method != "CONNECT")) {
        stats_.malformed_requests++;
        Free(*st);
        return;
      }
      ReportStart(*st);
      if (b.end_stream) st->req_ended = true;
      break;
    case BlockKind::kRequestTrailers:
      if (b.end_stream) st->req_ended = true;
      break;
    case BlockKind::kResponse:
      if (b.status >= 100 && b.status < 200) return;  // 1xx: the final response follows
      st->final_headers = true;
      st->status = b.status;  // 0: a response without :status (malformed; no status reported)
      [[fallthrough]];
    case BlockKind::kResponseTrailers:
      if (b.end_stream) {
        st->resp_ended = true;
        st->end_ns = s.TimestampAt(end_pos - 1);
      }
      break;
    case BlockKind::kIgnore:
      return;
  }
  MaybeFinish(*st);
}

void Http2Session::ReportStart(Stream& st) {
  st.started = true;
  stats_.streams++;
  RequestStarted& r = out_->AddStart();
  r.id = st.seq;
  r.start_ns = st.start_ns;
  r.tid = st.start_tid;
  r.stream_pos = st.start_pos;
  r.operation.assign(st.method).append(" ").append(st.path);
  r.correlation.assign(shared_->correlation);
  r.traceparent.assign(shared_->traceparent);
  r.tracestate.assign(shared_->tracestate);
  r.multiplexed = true;
}

void Http2Session::OnReset(Dir d, const FrameEvent& ev, conn::ByteStream& s) {
  Stream* st = Find(ev.header.stream_id);
  if (st == nullptr || !st->started || ev.bytes.size() != 4) return;
  if (st->resp_ended) {  // the answer is complete: the reset only ends the request side
    st->req_ended = true;
    MaybeFinish(*st);
    return;
  }
  st->reset_code = Be32(ev.bytes.data());
  st->reset_by_client = d == kReq;
  st->reset_ns = s.TimestampAt(ev.pos);
  stats_.resets++;
  Emit(*st, StreamError::kReset, st->reset_ns != 0 ? st->reset_ns : now_ns_);
}

// A GOAWAY from the server: the client's streams above its last stream id were never processed.
void Http2Session::OnGoaway(Dir d, const FrameEvent& ev) {
  if (d != kResp || ev.bytes.size() < 8) return;
  const uint32_t last = Be32(ev.bytes.data()) & 0x7fffffffU;
  for (Stream& st : streams_) {
    if (st.live && st.started && st.id > last && !st.resp_seen) {
      stats_.refused++;
      Emit(st, StreamError::kRefused, now_ns_);
    }
  }
}

void Http2Session::OnDataBegin(Dir d, const FrameEvent& ev, const conn::ByteStream& s) {
  last_data_ns_[d] = s.TimestampAt(ev.pos + kFrameHeaderSize - 1);
  Stream* st = Find(ev.header.stream_id);
  data_stream_[d] = st != nullptr && st->started ? st->id : 0;
  if (st == nullptr || !ev.body_unknown) return;
  if (d == kReq) {
    st->req_body_known = false;
    st->req_msgs.Skip(UINT64_MAX);
  } else {
    st->resp_body_known = false;
    st->resp_msgs.Skip(UINT64_MAX);
  }
}

// Hot path.
void Http2Session::OnDataBytes(Dir d, const FrameEvent& ev, const conn::ByteStream& s) {
  const uint64_t n = ev.gap != 0 ? ev.gap : ev.bytes.size();
  if (data_stream_[d] == 0) return;
  last_data_ns_[d] = s.TimestampAt(ev.pos + n - 1);
  Stream* st = Find(data_stream_[d]);
  if (st == nullptr) return;
  stats_.data_gap_bytes += ev.gap;
  uint64_t& body = d == kReq ? st->req_body : st->resp_body;
  GrpcMessageCounter& msgs = d == kReq ? st->req_msgs : st->resp_msgs;
  body += n;
  if (!st->grpc) return;
  if (ev.gap != 0) {
    msgs.Skip(ev.gap);
  } else {
    msgs.Feed(ev.bytes);
  }
}

void Http2Session::OnDataEnd(Dir d, const FrameEvent& ev) {
  const uint32_t id = data_stream_[d];
  data_stream_[d] = 0;
  if (id == 0 || !ev.header.has(kEndStream)) return;
  Stream* st = Find(id);
  if (st == nullptr) return;
  if (d == kReq) {
    st->req_ended = true;
  } else {
    st->resp_ended = true;
    st->end_ns = last_data_ns_[d];  // its bytes are consumed: the time was kept as they went
  }
  MaybeFinish(*st);
}

void Http2Session::LoseDirection(Dir d, bool hpack) {
  if (lost_[d]) return;
  lost_[d] = true;
  reader_[d].MarkLost();
  if (hpack) {
    stats_.hpack_lost++;
  } else {
    stats_.frames_lost++;
  }
  Block& b = block_[d];
  if (b.open && b.kind == BlockKind::kRequest) {
    if (Stream* st = Find(b.stream_id)) {
      stats_.streams_dropped++;
      Free(*st);
    }
  }
  b = Block{};
  for (Stream& st : streams_) {
    if (!st.live) continue;
    if (!st.started || d == kResp) {  // no response can be read any more
      stats_.streams_dropped++;
      Free(st);
      continue;
    }
    if (!st.req_ended) {  // its end will not be seen: its size is unknown
      st.req_ended = true;
      st.req_body_known = false;
      st.req_msgs.Skip(UINT64_MAX);
    }
    MaybeFinish(st);
  }
}

void Http2Session::MaybeFinish(Stream& st) {
  if (st.live && st.resp_ended && st.req_ended) Emit(st, StreamError::kNone, now_ns_);
}

void Http2Session::Emit(Stream& st, StreamError error, uint64_t finished_ns) {
  stats_.exchanges++;
  if (st.grpc) {
    stats_.grpc_calls++;
    if (!st.req_msgs.certain() || !st.resp_msgs.certain()) stats_.grpc_counts_uncertain++;
  }
  if (error == StreamError::kTimeout) stats_.timeouts++;
  st.error = error;
  BuildExchange(st, context_, shared_->options, finished_ns, &out_->AddExchange());
  Free(st);
}

void Http2Session::Close(conn::ByteStream& requests, conn::ByteStream& responses,
                         CloseReason reason, uint64_t now_ns, SessionOutput* out) {
  out_ = out;
  now_ns_ = now_ns;
  closing_ = true;  // nothing more will come: no response waits for its request
  Parse(requests, responses);
  std::vector<Stream*> pending;
  for (Stream& st : streams_) {
    if (st.live && st.started) pending.push_back(&st);
    if (st.live && !st.started) {  // its header block never ended: no request to report
      stats_.streams_dropped++;
      Free(st);
    }
  }
  std::sort(pending.begin(), pending.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  for (Stream* st : pending) {
    if (st->resp_ended) {
      Emit(*st, StreamError::kNone, now_ns);
      continue;
    }
    switch (reason) {
      case CloseReason::kUnobserved:
        stats_.unfinished_unobserved++;
        Free(*st);
        break;
      case CloseReason::kShutdown:
        stats_.unfinished_shutdown++;
        Emit(*st, StreamError::kAgentShutdown, now_ns);
        break;
      case CloseReason::kReset:
        Emit(*st, StreamError::kConnectionReset, now_ns);
        break;
      case CloseReason::kClosed:
        Emit(*st, st->resp_seen ? StreamError::kTruncated : StreamError::kMissingAtClose, now_ns);
        break;
    }
  }
  ReleaseIdle();
  out_ = nullptr;
}

void Http2Session::Expire(uint64_t now_ns, SessionOutput* out) {
  if (open_ == 0) return;
  out_ = out;
  now_ns_ = now_ns;
  for (Stream& st : streams_) {
    if (!st.live || !st.started) continue;
    if (!st.resp_seen && now_ns > st.seen_ns + kResponseTimeoutNs) {
      Emit(st, StreamError::kTimeout, now_ns);
    } else if (st.resp_ended && now_ns > st.end_ns + kResponseTimeoutNs) {
      Emit(st, StreamError::kNone, now_ns);  // the client never ended its side
    }
  }
  ReleaseIdle();
  out_ = nullptr;
}

Stream* Http2Session::Find(uint32_t id) {
  if (id == 0) return nullptr;
  for (Stream& st : streams_) {
    if (st.live && st.id == id) return &st;
  }
  return nullptr;
}

Stream& Http2Session::NewStream(uint32_t id) {
  if (open_ >= kMaxOpenStreams) {  // the oldest open stream goes
    Stream* oldest = nullptr;
    for (Stream& st : streams_) {
      if (st.live && (oldest == nullptr || st.seq < oldest->seq)) oldest = &st;
    }
    stats_.streams_over_limit++;
    Free(*oldest);
  }
  Stream* slot = nullptr;
  for (Stream& st : streams_) {
    if (!st.live) {
      slot = &st;
      break;
    }
  }
  if (slot == nullptr) slot = &streams_.emplace_back();
  Stream& st = *slot;
  // Reset field by field: the strings keep their capacity for the next stream.
  st.id = id;
  st.seq = next_seq_++;
  st.live = true;
  st.started = false;
  st.start_ns = st.seen_ns = 0;
  st.start_tid = 0;
  st.start_pos = 0;
  st.method.clear();
  st.path.clear();
  st.authority.clear();
  st.scheme.clear();
  st.user_agent.clear();
  st.has_authority = st.has_user_agent = st.grpc = false;
  st.timeout_ns = 0;
  st.req_ended = false;
  st.req_body_known = true;
  st.req_body = 0;
  st.req_msgs = GrpcMessageCounter();
  st.resp_seen = false;
  st.resp_tid = 0;
  st.status = 0;
  st.final_headers = false;
  st.resp_ended = false;
  st.resp_body_known = true;
  st.resp_body = 0;
  st.end_ns = 0;
  st.resp_msgs = GrpcMessageCounter();
  st.grpc_status = -1;
  st.grpc_message.clear();
  st.error = StreamError::kNone;
  st.reset_code = 0;
  st.reset_by_client = false;
  st.reset_ns = 0;
  open_++;
  return st;
}

void Http2Session::Free(Stream& st) {
  if (!st.live) return;
  st.live = false;
  open_--;
}

// Called when no stream pointer is held: a burst's slots go once it is over.
void Http2Session::ReleaseIdle() {
  if (open_ == 0 && streams_.size() > 8) streams_.clear();
}

}  // namespace zerotrace::protocols::http2
