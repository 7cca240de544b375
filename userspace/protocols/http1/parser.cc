// Http1Parser: header blocks, body framing and resynchronisation over a gap-aware stream.
#include "protocols/http1/parser.h"

#include <algorithm>

#include "protocols/http1/head.h"

namespace zerotrace::protocols::http1 {
namespace {

constexpr size_t npos = std::string_view::npos;
// A chunk-size line (size plus extensions) longer than this loses the body's framing.
constexpr size_t kMaxChunkLine = 4096;
// Chunk sizes above 2^60 are treated as malformed.
constexpr int kMaxChunkHexDigits = 15;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view StripLineEnd(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

Http1Parser::Http1Parser(MessageKind kind, Http1Stats* stats) : kind_(kind), stats_(stats) {}

// Only parsers at_boundary() are reused: they are then in the state a parser reaches between
// two messages of one connection, which reads the next message exactly as a new parser would.
void Http1Parser::Reuse(MessageKind kind, Http1Stats* stats) {
  kind_ = kind;
  stats_ = stats;
  state_ = State::kStart;
  remaining_ = 0;
  last_ts_ = 0;
  crlf_seen_ = 0;
  ResetUnit();
  resync_scanned_ = 0;
  drop_reason_ = DropReason::kNone;
  drop_confirmed_ = false;
}

bool Http1Parser::in_body() const {
  return body_head_ && state_ != State::kStart && state_ != State::kResync;
}

void Http1Parser::Resync() {
  ResetUnit();
  body_head_ = false;
  tunnel_after_ = false;
  resync_after_ = false;
  state_ = State::kResync;
  resync_scanned_ = 0;
  ++stats_->resyncs;
}

// Hot path.
Http1Parser::Result Http1Parser::Next(conn::ByteStream& s, std::string_view request_method) {
  for (;;) {
    switch (state_) {
      case State::kStart: {
        const Result r = ParseStart(s, request_method);
        if (r != Result::kComplete) return r;
        break;  // an interim response was consumed: parse the next head
      }
      case State::kResync: {
        const Result r = ScanForStart(s);
        if (r != Result::kComplete) return r;
        break;  // positioned on a plausible start
      }
      case State::kBodyLength:
        if (!SkipBody(s, State::kBodyDone)) return Result::kNeedMore;
        break;
      case State::kChunkData:
        if (!SkipBody(s, State::kChunkCrlf)) return Result::kNeedMore;
        break;
      case State::kChunkSize: {
        bool progress = false;
        const Result r = ReadChunkSize(s, &progress);
        if (!progress) return r;
        break;
      }
      case State::kChunkCrlf:
        if (!SkipChunkCrlf(s)) return Result::kNeedMore;
        break;
      case State::kTrailers: {
        bool progress = false;
        const Result r = ReadTrailers(s, &progress);
        if (!progress) return r;
        break;
      }
      case State::kUntilClose: {
        const conn::ByteStream::Front f = s.Peek();
        const uint64_t n = f.gap > 0 ? f.gap : f.data.size();
        if (n == 0) return Result::kNeedMore;
        if (f.gap > 0) stats_->body_gap_bytes += n;
        body_.body_size += n;
        Consume(s, n);
        break;
      }
      case State::kBodyDone:
        body_.end_pos = s.front_pos();
        body_.end_ts_ns = last_ts_;
        body_head_ = false;
        if (tunnel_after_) {
          state_ = State::kTunnel;
        } else if (resync_after_) {
          Resync();
        } else {
          state_ = State::kStart;
        }
        tunnel_after_ = resync_after_ = false;
        return Result::kComplete;
      case State::kTunnel:
      case State::kTruncatedHead:
        return Result::kNeedMore;
    }
  }
}

Http1Parser::Result Http1Parser::Finish(conn::ByteStream& s) {
  switch (state_) {
    case State::kUntilClose:
      state_ = State::kBodyDone;
      return Next(s);
    case State::kBodyLength:
    case State::kChunkData:
      // Only the bytes that moved count: the rest of the promised length never arrived.
      body_.body_size -= std::min(body_.body_size, remaining_);
      [[fallthrough]];
    case State::kChunkSize:
    case State::kChunkCrlf:
    case State::kTrailers:
      ResetUnit();
      body_.truncated = true;
      state_ = State::kBodyDone;
      return Next(s);
    case State::kTruncatedHead:
      body_ = BodyEnd{};
      body_.truncated = true;
      body_.end_pos = s.front_pos();
      body_.end_ts_ns = last_ts_;
      body_head_ = false;
      state_ = State::kResync;
      return Result::kComplete;
    case State::kStart: {
      if (!unit_started_) return Result::kNeedMore;
      const conn::ByteStream::Front f = s.Peek();
      const std::string_view bytes = !carry_.empty() ? std::string_view(carry_) : f.data;
      scanner_.Scan(bytes);
      bool interim = false;
      if (scanner_.fields_start() > 0 &&
          ParseHead(bytes.substr(0, scanner_.complete_end()), {}, &interim, /*partial=*/true) ==
              Result::kHeaders &&
          !interim) {
        HttpMessage& m = kind_ == MessageKind::kRequest ? static_cast<HttpMessage&>(request_)
                                                        : static_cast<HttpMessage&>(response_);
        m.truncated = true;
        if (carry_.empty() && !f.data.empty()) Consume(s, f.data.size());
        ResetUnit();
        state_ = State::kTruncatedHead;
        body_head_ = true;
        return Result::kHeaders;
      }
      ResetUnit();
      state_ = State::kResync;
      return Result::kNeedMore;
    }
    default:
      return Result::kNeedMore;
  }
}

// At a message boundary: skips blank lines, reads the header block and parses the head.
// Returns kComplete when an interim (1xx) response was consumed and parsing should go on.
Http1Parser::Result Http1Parser::ParseStart(conn::ByteStream& s, std::string_view method) {
  while (!unit_started_) {
    const conn::ByteStream::Front f = s.Peek();
    if (f.gap > 0) {
      ++stats_->dropped_gap_at_start;
      return Drop(s, DropReason::kGapAtStart, f.gap, false);
    }
    if (f.data.empty()) return Result::kNeedMore;
    size_t blank = 0;  // RFC 9112 section 2.2: ignore empty lines before a message
    while (blank < f.data.size() && (f.data[blank] == '\r' || f.data[blank] == '\n')) ++blank;
    if (blank > 0) {
      s.Consume(blank);
      continue;
    }
    if (DetectMessageStart(kind_, f.data) == Detection::kNo) {
      ++stats_->parse_errors;
      const Result r = Drop(s, DropReason::kMalformed, 0, false);
      // Not a message start, right after a whole message: the scan that follows tells whether
      // a response hid in the bytes.
      drop_may_hide_ = kind_ == MessageKind::kRequest;
      resync_clean_ = true;
      return r;
    }
    unit_started_ = true;
    unit_start_pos_ = f.pos;
    const conn::ByteStream::Stamp stamp = s.StampAt(f.pos);
    unit_start_ts_ = stamp.ts_ns;
    unit_start_tid_ = stamp.tid;
    last_ts_ = unit_start_ts_;
  }
  std::string_view block;
  switch (TakeUnit(s, Unit::kHead, kMaxHeaderBytes, &block)) {
    case Take::kMore:
      return Result::kNeedMore;
    case Take::kGap:
      if (TakeCutHead(s, method)) return Result::kHeaders;
      ++stats_->dropped_gap_in_headers;
      return Drop(s, DropReason::kGapInHeaders, s.Peek().gap, StartsCountedMessage(carry_));
    case Take::kTooLong: {
      ++stats_->headers_too_large;
      const std::string_view seen = carry_.empty() ? s.Peek().data : std::string_view(carry_);
      const bool confirmed = StartsCountedMessage(seen);
      return Drop(s, DropReason::kHeadersTooLarge, carry_.empty() ? seen.size() : 0, confirmed);
    }
    case Take::kFound:
      break;
  }
  bool interim = false;
  const Result r = ParseHead(block, method, &interim, /*partial=*/false);
  if (r != Result::kHeaders) {
    ++stats_->parse_errors;
    const bool confirmed = StartsCountedMessage(block);
    CommitUnit(s);
    return Drop(s, DropReason::kMalformed, 0, confirmed);
  }
  CommitUnit(s);
  if (interim) {
    ++stats_->interim_responses;
    ++pending_interim_;
    return Result::kComplete;
  }
  HttpMessage& m = kind_ == MessageKind::kRequest ? static_cast<HttpMessage&>(request_)
                                                  : static_cast<HttpMessage&>(response_);
  if (kind_ == MessageKind::kRequest) {
    ++stats_->requests_parsed;
  } else {
    ++stats_->responses_parsed;
    response_.interim_responses = pending_interim_;
    pending_interim_ = 0;
  }
  m.start_pos = head_start_pos_;
  m.start_ts_ns = head_start_ts_;
  m.start_tid = head_start_tid_;
  body_head_ = true;
  return Result::kHeaders;
}

// Parses start line + fields of `block` into request_/response_ and sets up body framing.
Http1Parser::Result Http1Parser::ParseHead(std::string_view block, std::string_view method,
                                           bool* interim, bool partial) {
  const size_t fields = scanner_.fields_start();
  if (fields == 0 || scanner_.malformed()) return Result::kDropped;
  const std::string_view line = StripLineEnd(block.substr(0, fields));
  HttpMessage* m;
  if (kind_ == MessageKind::kRequest) {
    if (!ParseRequestLine(line, &request_)) return Result::kDropped;
    request_.upgrade = false;
    m = &request_;
  } else {
    if (!ParseStatusLine(line, &response_)) return Result::kDropped;
    m = &response_;
  }
  scanner_.Fill(block, &m->headers);
  m->trailers.clear();
  m->body_size = 0;
  m->truncated = false;
  m->body_framing_lost = false;
  m->framing_conflict = false;
  m->head_cut = false;
  m->end_ts_ns = 0;
  m->end_pos = 0;
  head_start_pos_ = unit_start_pos_;
  head_start_ts_ = unit_start_ts_;
  head_start_tid_ = unit_start_tid_;
  if (partial) {
    m->start_pos = head_start_pos_;
    m->start_ts_ns = head_start_ts_;
    m->start_tid = head_start_tid_;
    m->framing = BodyFraming::kNone;
    if (kind_ == MessageKind::kResponse) {
      *interim = response_.status < 200 && response_.status != 101;
      if (!*interim) ++stats_->responses_parsed;
    } else {
      ++stats_->requests_parsed;
    }
    return Result::kHeaders;
  }
  const FramingHeaders fh = scanner_.Framing(block);
  if (kind_ == MessageKind::kRequest) {
    request_.upgrade = fh.upgrade;
    request_.framing_conflict = false;
    if (fh.has_transfer_encoding) {
      if (!fh.chunked) return Result::kDropped;  // RFC 9112 6.3: a server must reject it
      if (fh.has_content_length) {               // the chunked coding wins, if the server agrees
        ++stats_->framing_conflicts;
        request_.framing_conflict = true;
        request_.conflict_end_pos = unit_start_pos_ + block.size() + fh.content_length;
      }
      BeginBody(BodyFraming::kChunked, 0);
    } else if (fh.has_content_length) {
      if (!fh.content_length_valid) return Result::kDropped;
      BeginBody(fh.content_length > 0 ? BodyFraming::kContentLength : BodyFraming::kNone,
                fh.content_length);
    } else {
      BeginBody(BodyFraming::kNone, 0);
    }
    return Result::kHeaders;
  }
  const uint16_t status = response_.status;
  if (status < 200 && status != 101) {
    *interim = true;
    return Result::kHeaders;
  }
  if (status == 101 || (method == "CONNECT" && status < 300 && status >= 200)) {
    BeginBody(BodyFraming::kTunnel, 0);
  } else if (method == "HEAD" || status == 204 || status == 304) {
    BeginBody(BodyFraming::kNone, 0);
  } else if (fh.has_transfer_encoding) {
    BeginBody(fh.chunked ? BodyFraming::kChunked : BodyFraming::kUntilClose, 0);
  } else if (fh.has_content_length) {
    if (!fh.content_length_valid) return Result::kDropped;
    BeginBody(fh.content_length > 0 ? BodyFraming::kContentLength : BodyFraming::kNone,
              fh.content_length);
  } else {
    BeginBody(BodyFraming::kUntilClose, 0);
  }
  return Result::kHeaders;
}

// A head longer than what the kernel captured of its syscall (a 17 KB Cookie against the 16 KiB
// capture): the start line and the fields that fit make the message, and its end lies in the
// gap after them, skipped by position. A body in that gap goes with it; whatever follows the
// gap must be a message start, or the stream resynchronises as after any loss. False when too
// little was captured to parse a start line (the message is dropped as before).
bool Http1Parser::TakeCutHead(conn::ByteStream& s, std::string_view method) {
  if (carry_.empty()) return false;
  scanner_.Reset(true);
  scanner_.Scan(carry_);
  bool interim = false;
  if (scanner_.fields_start() == 0 ||
      ParseHead(std::string_view(carry_).substr(0, scanner_.complete_end()), method, &interim,
                /*partial=*/true) != Result::kHeaders ||
      interim) {
    return false;
  }
  ++stats_->heads_cut;
  HttpMessage& m = kind_ == MessageKind::kRequest ? static_cast<HttpMessage&>(request_)
                                                  : static_cast<HttpMessage&>(response_);
  m.head_cut = true;
  const uint64_t gap = s.Peek().gap;
  last_ts_ = s.TimestampAt(s.front_pos());  // the message ends with the gap's bytes
  ResetUnit();
  BeginBody(BodyFraming::kNone, 0);  // reported complete next, at the gap's end
  // The gap may also hold messages after this one, whole or their starts (a pipelined write
  // cut by the limit): what follows is not known to be aligned, and pairing doubts until it is.
  body_.framing_lost = true;
  Consume(s, gap);
  body_head_ = true;
  return true;
}

void Http1Parser::BeginBody(BodyFraming framing, uint64_t length) {
  HttpMessage& m = kind_ == MessageKind::kRequest ? static_cast<HttpMessage&>(request_)
                                                  : static_cast<HttpMessage&>(response_);
  m.framing = framing;
  body_.body_size = 0;
  body_.end_ts_ns = 0;
  body_.end_pos = 0;
  body_.truncated = false;
  body_.framing_lost = false;
  body_.trailers.clear();
  tunnel_after_ = framing == BodyFraming::kTunnel;
  resync_after_ = false;
  switch (framing) {
    case BodyFraming::kNone:
    case BodyFraming::kTunnel:
      state_ = State::kBodyDone;
      break;
    case BodyFraming::kContentLength:
      remaining_ = length;
      body_.body_size = length;
      state_ = State::kBodyLength;
      break;
    case BodyFraming::kChunked:
      state_ = State::kChunkSize;
      break;
    case BodyFraming::kUntilClose:
      state_ = State::kUntilClose;
      break;
  }
}

// Skips remaining_ body bytes from data or gaps; returns false when nothing is available.
bool Http1Parser::SkipBody(conn::ByteStream& s, State next) {
  const conn::ByteStream::Front f = s.Peek();
  const uint64_t avail = f.gap > 0 ? f.gap : f.data.size();
  if (avail == 0) return false;
  const uint64_t n = std::min(avail, remaining_);
  if (f.gap > 0) stats_->body_gap_bytes += n;
  Consume(s, n);
  remaining_ -= n;
  if (remaining_ == 0) state_ = next;
  return true;
}

Http1Parser::Result Http1Parser::ReadChunkSize(conn::ByteStream& s, bool* progress) {
  std::string_view line;
  switch (TakeUnit(s, Unit::kChunkLine, kMaxChunkLine, &line)) {
    case Take::kMore:
      return Result::kNeedMore;
    case Take::kGap:
    case Take::kTooLong:
      *progress = true;
      return LoseFraming();
    case Take::kFound:
      break;
  }
  *progress = true;
  uint64_t size = 0;
  int digits = 0;
  size_t i = 0;
  for (; i < line.size(); ++i) {
    const int h = HexValue(line[i]);
    if (h < 0) break;
    if (++digits > kMaxChunkHexDigits) break;
    size = size * 16 + static_cast<uint64_t>(h);
  }
  const std::string_view rest = StripLineEnd(line.substr(i));
  const size_t ext = rest.find_first_not_of(" \t");
  if (digits == 0 || digits > kMaxChunkHexDigits || (ext != npos && rest[ext] != ';')) {
    ++stats_->parse_errors;
    ResetUnit();
    return LoseFraming();
  }
  CommitUnit(s);
  if (size == 0) {
    state_ = State::kTrailers;
  } else {
    remaining_ = size;
    body_.body_size += size;
    state_ = State::kChunkData;
  }
  return Result::kNeedMore;
}

// The CRLF after chunk data; bytes of it that fell in a gap are taken on trust.
bool Http1Parser::SkipChunkCrlf(conn::ByteStream& s) {
  const conn::ByteStream::Front f = s.Peek();
  if (f.gap > 0) {
    const uint64_t n = std::min<uint64_t>(f.gap, 2 - crlf_seen_);
    Consume(s, n);
    crlf_seen_ += static_cast<uint8_t>(n);
  } else if (f.data.empty()) {
    return false;
  } else if (f.data[0] == '\r' && crlf_seen_ == 0) {
    Consume(s, 1);
    crlf_seen_ = 1;
  } else if (f.data[0] == '\n') {
    Consume(s, 1);
    crlf_seen_ = 2;
  } else {
    ++stats_->parse_errors;
    crlf_seen_ = 0;
    LoseFraming();
    return true;
  }
  if (crlf_seen_ == 2) {
    crlf_seen_ = 0;
    state_ = State::kChunkSize;
  }
  return true;
}

Http1Parser::Result Http1Parser::ReadTrailers(conn::ByteStream& s, bool* progress) {
  std::string_view block;
  if (!unit_started_) scanner_.Reset(/*has_start_line=*/false);
  switch (TakeUnit(s, Unit::kTrailers, kMaxHeaderBytes, &block)) {
    case Take::kMore:
      return Result::kNeedMore;
    case Take::kGap:
    case Take::kTooLong:
      *progress = true;
      return LoseFraming();
    case Take::kFound:
      break;
  }
  *progress = true;
  // A malformed trailer section is still delimited: the message ends, the trailers are lost.
  if (scanner_.malformed()) {
    ++stats_->parse_errors;
    body_.trailers.clear();
  } else {
    scanner_.Fill(block, &body_.trailers);
  }
  CommitUnit(s);
  state_ = State::kBodyDone;
  return Result::kNeedMore;
}

// The body's end is unknowable: report the message as complete with framing_lost, then
// resynchronise, since the bytes after it cannot be placed.
Http1Parser::Result Http1Parser::LoseFraming() {
  ++stats_->body_framing_lost;
  ResetUnit();
  body_.framing_lost = true;
  resync_after_ = true;
  state_ = State::kBodyDone;
  return Result::kNeedMore;
}

}  // namespace zerotrace::protocols::http1
