// Http1Parser: reading delimited units (in place, or carried across a hole) and scanning for
// a message start after a loss.
#include <algorithm>

#include "protocols/http1/head.h"
#include "protocols/http1/parser.h"

namespace zerotrace::protocols::http1 {
namespace {

constexpr size_t npos = std::string_view::npos;
// While resynchronising, this much of the unmatched tail is kept: a message start may straddle
// the end of the captured bytes.
constexpr size_t kResyncKeep = 2048;
constexpr std::string_view kVersionPrefix = "HTTP/1.";

// Where a request line could begin, given that "HTTP/1." starts at `v`: walks back over
// " target " to a method. npos if the bytes before `v` cannot be a request line. A known method
// may follow any bytes (the tail of a body that was not followed); another token must start
// the line (at a line end or where the bytes start), so that body text is not taken for one.
size_t RequestStartBefore(std::string_view s, size_t v) {
  if (v < 2 || s[v - 1] != ' ') return npos;
  size_t t = v - 1;  // target is [t, v - 1)
  while (t > 0 && s[t - 1] != ' ' && static_cast<unsigned char>(s[t - 1]) > 0x20 &&
         s[t - 1] != 0x7f && v - 1 - t <= kResyncKeep) {
    --t;
  }
  if (t == v - 1 || t < 2 || s[t - 1] != ' ') return npos;
  const size_t method_end = t - 1;
  size_t m = method_end;
  while (m > 0 && method_end - m < 32 && IsTokenChar(s[m - 1])) --m;
  if (m < method_end && (m == 0 || s[m - 1] == '\n')) return m;
  // The longest known method that ends right before the space: bytes before it are a body tail.
  size_t best = npos;
  for (size_t len = 3; len <= 9 && len <= method_end; ++len) {
    if (IsKnownMethod(s.substr(method_end - len, len))) best = method_end - len;
  }
  return best;
}

}  // namespace

// Whether `bytes` begin a message that pairing counts: a request line, or a final status line.
bool Http1Parser::StartsCountedMessage(std::string_view bytes) const {
  if (kind_ == MessageKind::kRequest) return DetectHttp1Request(bytes) == Detection::kYes;
  return DetectHttp1Response(bytes) == Detection::kYes && bytes[9] != '1';
}

Http1Parser::Result Http1Parser::Drop(conn::ByteStream& s, DropReason reason, uint64_t skip,
                                      bool confirmed) {
  drop_confirmed_ = confirmed;
  drop_may_hide_ = true;
  drop_ts_ = s.TimestampAt(s.front_pos());
  resync_clean_ = false;  // set again by the one caller whose drop loses nothing
  ResetUnit();
  if (skip > 0) s.Consume(skip);
  drop_reason_ = reason;
  body_head_ = false;
  pending_interim_ = 0;
  if (state_ != State::kResync) {
    state_ = State::kResync;
    resync_scanned_ = 0;
    ++stats_->resyncs;
  }
  return Result::kDropped;
}

// Scans the front for a plausible message start. Returns kComplete when positioned on one,
// kDropped after skipping bytes (so the caller can account for them), kNeedMore otherwise.
Http1Parser::Result Http1Parser::ScanForStart(conn::ByteStream& s) {
  const conn::ByteStream::Front f = s.Peek();
  if (f.gap > 0) {
    drop_ts_ = s.TimestampAt(f.pos);
    stats_->resync_bytes_skipped += f.gap;
    s.Consume(f.gap);
    resync_scanned_ = 0;
    drop_reason_ = DropReason::kResyncSkipped;
    drop_confirmed_ = false;
    drop_may_hide_ = true;
    resync_clean_ = false;  // what the gap held is unknown from here on
    return Result::kDropped;
  }
  const std::string_view d = f.data;
  if (d.empty()) return Result::kNeedMore;
  // A candidate cut short by the end of the data can only complete if nothing else follows.
  const bool more_contiguous = f.pos + d.size() >= s.end_pos();
  size_t found = npos;     // a verified start
  size_t wait_at = npos;   // a start that may complete when more bytes arrive
  size_t doubtful = npos;  // the first "HTTP/1." that did not verify: a message may hide there
  for (size_t v = d.find(kVersionPrefix, resync_scanned_); v != npos;
       v = d.find(kVersionPrefix, v + 1)) {
    const size_t start = kind_ == MessageKind::kResponse ? v : RequestStartBefore(d, v);
    if (start == npos) continue;
    const std::string_view cand = d.substr(start);
    const Detection det =
        kind_ == MessageKind::kResponse ? DetectHttp1Response(cand) : DetectHttp1Request(cand);
    if (det == Detection::kYes) {
      found = start;
      break;
    }
    if (det == Detection::kMaybe && more_contiguous) {
      wait_at = start;
      break;
    }
    if (doubtful == npos) doubtful = v;
  }
  if (found == 0) {
    state_ = State::kStart;
    resync_scanned_ = 0;
    return Result::kComplete;
  }
  size_t skip;
  if (found != npos) {
    skip = found;
    state_ = State::kStart;
    resync_scanned_ = 0;
  } else if (wait_at != npos) {
    skip = wait_at;
    resync_scanned_ = 0;
  } else {
    // Keep a tail that may begin a message straddling the end, unless a gap or hole follows.
    const size_t tail = kind_ == MessageKind::kRequest ? kResyncKeep : kVersionPrefix.size();
    const size_t keep = more_contiguous ? std::min(d.size(), tail) : 0;
    skip = d.size() - keep;
    // Resume the "HTTP/1." search where a straddling prefix could start.
    resync_scanned_ = keep >= kVersionPrefix.size() ? keep - (kVersionPrefix.size() - 1) : 0;
  }
  if (skip == 0) return Result::kNeedMore;
  drop_ts_ = s.TimestampAt(f.pos);
  stats_->resync_bytes_skipped += skip;
  s.Consume(skip);
  drop_reason_ = DropReason::kResyncSkipped;
  drop_confirmed_ = false;
  // Only responses: a request stream's garbage may still draw an answer (a 400).
  // A scan that began after a loss (a gap, a cut or malformed head) may be skipping what is
  // left of a lost response: only one that began at a whole message's end loses nothing.
  drop_may_hide_ =
      kind_ == MessageKind::kRequest || !resync_clean_ || (doubtful != npos && doubtful < skip);
  return Result::kDropped;
}

// Reads a unit ending where `find` says. In place when the stream's data holds it whole; when
// data is followed by a gap or hole, moves the bytes into carry_ so what follows is visible.
size_t Http1Parser::FindUnitEnd(Unit kind, std::string_view s) {
  if (kind == Unit::kChunkLine) return FindLineEnd(s, scan_from_);
  return scanner_.Scan(s);  // resumes where it stopped
}

Http1Parser::Take Http1Parser::TakeUnit(conn::ByteStream& s, Unit kind, size_t limit,
                                        std::string_view* unit) {
  if (!unit_started_) {
    const conn::ByteStream::Front f = s.Peek();
    unit_started_ = true;
    unit_start_pos_ = f.pos;
    const conn::ByteStream::Stamp stamp = s.StampAt(f.pos);
    unit_start_ts_ = stamp.ts_ns;
    unit_start_tid_ = stamp.tid;
  }
  for (;;) {
    const conn::ByteStream::Front f = s.Peek();
    if (f.gap > 0) return Take::kGap;
    if (f.data.empty()) return Take::kMore;
    if (carry_.empty()) {
      const size_t end = FindUnitEnd(kind, f.data);
      if (end != npos) {
        if (end > limit) return Take::kTooLong;
        unit_len_ = end;
        *unit = f.data.substr(0, end);
        return Take::kFound;
      }
      if (f.data.size() > limit) return Take::kTooLong;
      scan_from_ = f.data.size();
      if (f.pos + f.data.size() >= s.end_pos()) return Take::kMore;
      carry_.assign(f.data);
      Consume(s, f.data.size());
      continue;
    }
    const size_t old = carry_.size();
    carry_.append(f.data);
    const size_t end = FindUnitEnd(kind, carry_);
    if (end != npos) {
      if (end > limit) {
        carry_.resize(old);
        return Take::kTooLong;
      }
      carry_.resize(end);
      unit_len_ = end - old;  // bytes still to consume from the stream
      *unit = carry_;
      return Take::kFound;
    }
    if (carry_.size() > limit) {
      carry_.resize(old);
      return Take::kTooLong;
    }
    scan_from_ = carry_.size();
    Consume(s, f.data.size());
  }
}

void Http1Parser::CommitUnit(conn::ByteStream& s) {
  if (unit_len_ > 0) Consume(s, unit_len_);
  ResetUnit();
}

void Http1Parser::ResetUnit() {
  scanner_.Reset(/*has_start_line=*/true);
  carry_.clear();
  scan_from_ = 0;
  unit_len_ = 0;
  unit_started_ = false;
}

// Consumes message bytes, remembering the time of the last one (the message's end time).
void Http1Parser::Consume(conn::ByteStream& s, uint64_t n) {
  const uint64_t ts = s.TimestampAt(s.front_pos() + n - 1);
  if (ts != 0) last_ts_ = ts;
  s.Consume(n);
}

}  // namespace zerotrace::protocols::http1
