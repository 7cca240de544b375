// Http1Stitcher: in-order pairing with loss markers, close/timeout exchanges, detection.
#include "protocols/http1/stitcher.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protocols/http1/head.h"

namespace zerotrace::protocols::http1 {
namespace {

uint64_t SatAdd(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
// Unbounded stays unbounded; otherwise subtracts down to zero.
uint64_t SatSub(uint64_t a, uint64_t b) {
  if (a == UINT64_MAX) return a;
  return a > b ? a - b : 0;
}

}  // namespace

Http1Stitcher::Http1Stitcher(Http1Stats* stats)
    : own_stats_(stats != nullptr ? nullptr : std::make_unique<Http1Stats>()),
      stats_(stats != nullptr ? stats : own_stats_.get()) {}

namespace {

// Parsers of connections between messages, kept for the next message of any connection on
// this thread: an idle connection holds no parser (memory), and a message that starts takes
// one with its buffers' capacity instead of allocating a parser and regrowing its field index.
class ParserPool {
 public:
  std::unique_ptr<Http1Parser> Take(MessageKind kind, Http1Stats* stats) {
    if (free_.empty()) return std::make_unique<Http1Parser>(kind, stats);
    std::unique_ptr<Http1Parser> p = std::move(free_.back());
    free_.pop_back();
    p->Reuse(kind, stats);
    return p;
  }
  void Give(std::unique_ptr<Http1Parser> p) {
    if (free_.size() < kMaxPooled) free_.push_back(std::move(p));
  }

 private:
  static constexpr size_t kMaxPooled = 64;  // ~1 KB each
  std::vector<std::unique_ptr<Http1Parser>> free_;
};

thread_local ParserPool parser_pool;

// Field buffers of exchanges already emitted, for the parser whose head was just moved into an
// entry: without them each message head allocated its buffer, and the entry freed it (two
// malloc/free pairs per exchange). Bounded in count and per buffer, as the parser pool.
class HeaderBufferPool {
 public:
  std::string Take() {
    if (free_.empty()) return {};
    std::string b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void Give(HeaderList* h) {
    if (free_.size() >= kMaxPooled) return;
    std::string b = h->TakeBuffer();
    // Moved-from (inline storage only) or huge buffers are not worth keeping.
    if (b.capacity() < kMinBytes || b.capacity() > kMaxBytes) return;
    free_.push_back(std::move(b));
  }

 private:
  static constexpr size_t kMaxPooled = 64;
  static constexpr size_t kMinBytes = 64;
  static constexpr size_t kMaxBytes = 4096;
  std::vector<std::string> free_;
};

thread_local HeaderBufferPool header_pool;

}  // namespace

Http1Parser& Http1Stitcher::TakeParser(MessageKind kind, std::unique_ptr<Http1Parser>* slot) {
  *slot = parser_pool.Take(kind, stats_);
  return **slot;
}

void Http1Stitcher::ReleaseIdleState() {
  if (req_parser_ && req_parser_->at_boundary()) parser_pool.Give(std::move(req_parser_));
  if (resp_parser_ && resp_parser_->at_boundary()) parser_pool.Give(std::move(resp_parser_));
  if (entries_.empty() && entries_.capacity() > 0) entries_ = {};  // its storage too
}

bool Http1Stitcher::LooksLikeHttp1Request(std::string_view first_bytes) {
  return DetectHttp1Request(first_bytes) == Detection::kYes;
}

bool Http1Stitcher::LooksLikeHttp1Response(std::string_view first_bytes) {
  return DetectHttp1Response(first_bytes) == Detection::kYes;
}

bool Http1Stitcher::aligned() const {
  for (size_t i = head_; i < entries_.size(); ++i) {
    if (entries_[i].marker && entries_[i].owed_max > 0) return false;
  }
  return true;
}

// HEAD, CONNECT and Upgrade change how the answer is framed, so an answer to an unknown one
// of them cannot be framed with certainty.
bool Http1Stitcher::FramingDependsOnRequest(const HttpRequest& req) {
  return req.method == "HEAD" || req.method == "CONNECT" || req.upgrade;
}

// Hot path.
void Http1Stitcher::Advance(conn::ByteStream& requests, conn::ByteStream& responses,
                            uint64_t now_ns, std::vector<HttpExchange>* out) {
  while (!tunneled_) {
    ProcessRequests(requests, now_ns);
    const bool paused = paused_for_ != 0;
    ProcessResponses(responses);
    EmitReady(out);
    // Requests go first, so responses always see them; only a verdict on an Upgrade/CONNECT
    // request (which releases the request stream) calls for another round.
    if (!paused || (paused_for_ != 0 && FindRequest(paused_for_) != nullptr)) break;
  }
  ReleaseIdleState();
  if (!req_parser_) requests.ReleaseIdle();
  if (!resp_parser_) responses.ReleaseIdle();
}

void Http1Stitcher::ProcessRequests(conn::ByteStream& s, uint64_t now_ns) {
  while (!tunneled_) {
    // An Upgrade/CONNECT request holds the stream until its response says whether HTTP goes on.
    if (paused_for_ != 0) {
      if (FindRequest(paused_for_) != nullptr) break;
      paused_for_ = 0;
    }
    // Hot path: with no parser (it rests at a boundary) and no bytes, there is nothing to
    // parse; a pooled parser taken only to say kNeedMore costs a take, a reset and a give.
    if (!req_parser_ && s.front_pos() >= s.end_pos()) break;
    const Http1Parser::Result r = req_parser().Next(s);
    if (r == Http1Parser::Result::kNeedMore) break;
    HandleRequest(r, now_ns);
  }
  requests_caught_up_ =
      paused_for_ == 0 && (!req_parser_ || req_parser_->idle()) && s.front_pos() >= s.end_pos();
}

void Http1Stitcher::HandleRequest(Http1Parser::Result r, uint64_t now_ns) {
  switch (r) {
    case Http1Parser::Result::kNeedMore:
      break;
    case Http1Parser::Result::kHeaders: {
      // Bounds memory when answers stop coming: the awaiting requests become one marker.
      if (entries_.size() - head_ >= kMaxPendingRequests) AbsorbFrom(Awaiting(), 0);
      if (MaybeAnsweredUnseen(req_parser().request())) {
        req_in_progress_ = 0;
        break;
      }
      const HttpRequest& head = req_parser().request();
      if (head.start_pos < conflict_until_) {
        // Inside the body of a request whose framing the peers may see differently: a request
        // to the server, or body bytes to it. Its answer may or may not come.
        ++stats_->doubtful_requests;
        OnDoubtfulRequest(FramingDependsOnRequest(head));
        req_in_progress_ = 0;
        break;
      }
      if (head.framing_conflict) conflict_until_ = std::max(conflict_until_, head.conflict_end_pos);
      Entry& e = entries_.emplace_back();
      e.seq = next_seq_++;
      e.x.seq = e.seq;
      e.x.req = std::move(req_parser().request());
      req_parser().request().headers.AdoptBuffer(header_pool.Take());
      e.seen_ns = now_ns;
      req_in_progress_ = e.seq;
      if (listener_ != nullptr) listener_->OnRequestStart(e.seq, e.x.req);
      break;
    }
    case Http1Parser::Result::kComplete: {
      Http1Parser::BodyEnd& body = req_parser().body();
      Entry* e = FindRequest(req_in_progress_);
      req_in_progress_ = 0;
      if (e != nullptr) {
        e->x.req.body_size = body.body_size;
        e->x.req.end_ts_ns = body.end_ts_ns;
        e->x.req.end_pos = body.end_pos;
        e->x.req.truncated |= body.truncated;
        e->x.req.body_framing_lost = body.framing_lost;
        e->x.req.trailers = std::move(body.trailers);
        e->req_complete = true;
        if (!e->resp_complete && (e->x.req.method == "CONNECT" || e->x.req.upgrade)) {
          paused_for_ = e->seq;
        }
      }
      // Requests after a body that could not be framed may have been lost with it.
      if (body.framing_lost) OnRequestLoss(0);
      break;
    }
    case Http1Parser::Result::kDropped:
      OnRequestLoss(req_parser().drop_confirmed() ? 1 : 0);
      break;
  }
}

void Http1Stitcher::ProcessResponses(conn::ByteStream& s) {
  while (!tunneled_) {
    // As for requests: no parser and no bytes, nothing to parse (closing_ included: a parser
    // at a boundary with no bytes reports kNeedMore).
    if (!resp_parser_ && s.front_pos() >= s.end_pos()) break;
    std::string_view method;
    if (!resp_parser().in_body()) {
      const size_t idx = Awaiting();
      if (idx == entries_.size()) {
        if (!closing_) break;  // nothing asked yet: the request may still be on its way
      } else if (!entries_[idx].marker) {
        method = entries_[idx].x.req.method;
      } else if (!requests_caught_up_ && NextRequestAfter(idx) == nullptr) {
        // Deciding whether the next response answers the marker needs the next request,
        // which may still be in unparsed request bytes.
        break;
      }
    }
    const Http1Parser::Result r = resp_parser().Next(s, method);
    if (r == Http1Parser::Result::kNeedMore) break;
    HandleResponse(r);
  }
}

void Http1Stitcher::HandleResponse(Http1Parser::Result r) {
  switch (r) {
    case Http1Parser::Result::kNeedMore:
      break;
    case Http1Parser::Result::kHeaders:
      OnResponseHead();
      break;
    case Http1Parser::Result::kComplete:
      OnResponseComplete();
      break;
    case Http1Parser::Result::kDropped:
      // Bytes that could not hide a response (a longer body than announced, garbage) lose no
      // answer: pairing goes on undoubted.
      if (resp_parser().drop_may_hide_message()) {
        OnResponseLoss(resp_parser().drop_confirmed() ? 1 : 0, resp_parser().drop_ts());
      } else {
        ++stats_->garbage_skips;
      }
      break;
  }
}

// A response head arrived: pair it with the first awaiting request, or decide what it answers
// when a loss marker comes first.
void Http1Stitcher::OnResponseHead() {
  resp_for_ = 0;
  resp_discard_ = true;
  const size_t idx = Awaiting();
  if (idx == entries_.size()) {  // unsolicited (or at close with nothing asked)
    ++stats_->unpaired_responses;
    return;
  }
  Entry& e = entries_[idx];
  if (!e.marker) {
    e.x.resp = std::move(resp_parser().response());
    resp_parser().response().headers.AdoptBuffer(header_pool.Take());
    resp_for_ = e.seq;
    resp_discard_ = false;
    return;
  }
  ++stats_->unpaired_responses;
  // Its framing assumed a plain method; if it may answer HEAD/CONNECT the count is now unsure.
  if (e.framing_uncertain) e.owed_max = kUnbounded;
  const HttpResponse& resp = resp_parser().response();
  const Entry* next = NextRequestAfter(idx);
  // Causality: a response that started before the next kept request cannot answer it.
  const bool before_next =
      next == nullptr || (resp.start_ts_ns != 0 && next->x.req.start_ts_ns != 0 &&
                          resp.start_ts_ns < next->x.req.start_ts_ns);
  if (e.owed_min > 0 || before_next) {
    // With no request in sight, a request delivered late may still turn out to be its own.
    if (e.owed_min == 0 && next == nullptr) AddPhantom(resp.start_ts_ns);
    e.owed_min = e.owed_min > 0 ? e.owed_min - 1 : 0;
    e.owed_max = SatSub(e.owed_max, 1);
    return;
  }
  // It may answer a dropped request or the next kept one: both become unknowable.
  ++stats_->ambiguous_responses;
  AbsorbFrom(idx, 1);
}

void Http1Stitcher::OnResponseComplete() {
  Http1Parser::BodyEnd& body = resp_parser().body();
  Entry* e = resp_discard_ ? nullptr : FindRequest(resp_for_);
  resp_for_ = 0;
  resp_discard_ = false;
  if (e != nullptr && e->x.resp.has_value()) {
    HttpResponse& resp = *e->x.resp;
    resp.body_size = body.body_size;
    resp.end_ts_ns = body.end_ts_ns;
    resp.end_pos = body.end_pos;
    resp.truncated |= body.truncated;
    resp.body_framing_lost = body.framing_lost;
    resp.trailers = std::move(body.trailers);
    e->resp_complete = true;
    if (paused_for_ == e->seq) paused_for_ = 0;
  }
  if (resp_parser().tunnel()) {
    EnterTunnel();
    return;
  }
  // Responses after a body that could not be framed may have been lost with it.
  if (body.framing_lost) OnResponseLoss(0, body.end_ts_ns);
}

void Http1Stitcher::AddPhantom(uint64_t response_start_ns) {
  if (phantoms_.size() >= kMaxPhantoms) {
    // Too many to track: any request may have been answered already; stop pairing.
    phantoms_.clear();
    OnRequestLoss(0);
    return;
  }
  phantoms_.push_back(response_start_ns);
}

// A response was taken for a dropped request's answer while no request was visible. If this
// request (delivered late) started before that response, the response may have been its
// answer: the request then joins the loss markers instead of waiting for a wrong answer.
bool Http1Stitcher::MaybeAnsweredUnseen(const HttpRequest& req) {
  const uint64_t start = req.start_ts_ns;
  size_t gone = 0;  // responses that began before this request can answer nothing after it
  while (gone < phantoms_.size() && start != 0 && phantoms_[gone] != 0 &&
         phantoms_[gone] <= start) {
    ++gone;
  }
  phantoms_.erase(phantoms_.begin(), phantoms_.begin() + static_cast<std::ptrdiff_t>(gone));
  if (phantoms_.empty()) return false;
  phantoms_.erase(phantoms_.begin());
  ++stats_->unpaired_requests;
  // Either this request or an earlier dropped one still owes exactly that one answer.
  Entry* m = head_ < entries_.size() && entries_.back().marker ? &entries_.back() : nullptr;
  if (m == nullptr) {
    m = &entries_.emplace_back();
    m->seq = next_seq_++;
    m->marker = true;
  }
  m->owed_max = SatAdd(m->owed_max, 1);
  m->framing_uncertain |= FramingDependsOnRequest(req);
  return true;
}

// Request bytes were lost: an unknown number of requests (at least `at_least_lost`) whose
// answers will come after those of the requests already queued.
// A request that the server may not have seen as one: owes zero or one answer.
void Http1Stitcher::OnDoubtfulRequest(bool framing_uncertain) {
  if (head_ < entries_.size() && entries_.back().marker) {
    Entry& m = entries_.back();
    m.owed_max = SatAdd(m.owed_max, 1);
    m.framing_uncertain |= framing_uncertain;
    return;
  }
  Entry& m = entries_.emplace_back();
  m.seq = next_seq_++;
  m.marker = true;
  m.owed_min = 0;
  m.owed_max = 1;
  m.framing_uncertain = framing_uncertain;
}

void Http1Stitcher::OnRequestLoss(uint64_t at_least_lost) {
  if (head_ < entries_.size() && entries_.back().marker) {
    Entry& m = entries_.back();
    m.owed_min = SatAdd(m.owed_min, at_least_lost);
    m.owed_max = kUnbounded;
    m.framing_uncertain = true;
    return;
  }
  Entry& m = entries_.emplace_back();
  m.seq = next_seq_++;
  m.marker = true;
  m.owed_min = at_least_lost;
  m.owed_max = kUnbounded;
  m.framing_uncertain = true;
}

// Response bytes were lost (at least `at_least_lost` responses when the loss began at a
// message boundary): which awaiting request the next response answers is no longer known.
// `lost_ns`: when the lost bytes moved (0: unknown). With nothing awaited, the lost bytes may
// still have answered a request delivered late (records reorder across CPUs): one that started
// before them joins a loss marker instead of taking the next answer (a phantom, as for answers
// taken for dropped requests).
void Http1Stitcher::OnResponseLoss(uint64_t at_least_lost, uint64_t lost_ns) {
  ++response_losses_;
  const size_t idx = Awaiting();
  if (idx == entries_.size()) {
    AddPhantom(lost_ns);
    return;
  }
  AbsorbFrom(idx, at_least_lost);
}

// Replaces entries [idx, end) (all awaiting a response) by one marker owing their answers,
// minus `answered` responses known to have answered some of them.
void Http1Stitcher::AbsorbFrom(size_t idx, uint64_t answered) {
  if (idx >= entries_.size()) return;
  uint64_t owed = 0;
  bool framing_uncertain = false;
  for (size_t i = idx; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (e.marker) {
      owed = SatAdd(owed, e.owed_max);
      framing_uncertain |= e.framing_uncertain;
    } else {
      owed = SatAdd(owed, 1);
      framing_uncertain |= FramingDependsOnRequest(e.x.req);
      ++stats_->unpaired_requests;
    }
  }
  entries_.resize(idx + 1);
  Entry& m = entries_[idx];
  m.marker = true;
  m.x = HttpExchange{};
  m.owed_min = 0;
  m.owed_max = SatSub(owed, answered);
  m.framing_uncertain = framing_uncertain;
}

// Index of the first entry still waiting for a response head (exhausted markers skipped).
size_t Http1Stitcher::Awaiting() {
  for (size_t i = head_; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.marker ? e.owed_max > 0 : !e.x.resp.has_value()) return i;
  }
  return entries_.size();
}

const Http1Stitcher::Entry* Http1Stitcher::NextRequestAfter(size_t idx) const {
  for (size_t i = idx + 1; i < entries_.size(); ++i) {
    if (!entries_[i].marker) return &entries_[i];
  }
  return nullptr;
}

Http1Stitcher::Entry* Http1Stitcher::FindRequest(uint64_t seq) {
  if (seq == 0) return nullptr;
  for (size_t i = head_; i < entries_.size(); ++i) {
    if (entries_[i].seq == seq) return entries_[i].marker ? nullptr : &entries_[i];
    if (entries_[i].seq > seq) break;
  }
  return nullptr;
}

void Http1Stitcher::EmitReady(std::vector<HttpExchange>* out) {
  while (head_ < entries_.size()) {
    Entry& e = entries_[head_];
    if (e.marker) {
      if (e.owed_max > 0) break;
    } else if (e.req_complete && e.resp_complete) {
      ExchangeError error = ExchangeError::kNone;
      if (e.x.resp->truncated) {
        error = ExchangeError::kResponseTruncated;
      } else if (e.x.req.truncated) {
        error = ExchangeError::kRequestTruncated;
      }
      Emit(e, error, out);
    } else {
      break;
    }
    PopFront();
  }
}

void Http1Stitcher::Emit(Entry& e, ExchangeError error, std::vector<HttpExchange>* out) {
  e.x.error = error;
  if (error != ExchangeError::kNone) e.x.error_type = ExchangeErrorName(error);
  if (sink_ != nullptr) {
    sink_->OnExchange(e.x);  // read in place; the entry then goes (or turns into a marker)
  } else {
    out->push_back(std::move(e.x));
  }
  ++stats_->exchanges;
  switch (error) {
    case ExchangeError::kNone:
      break;
    case ExchangeError::kTimeout:
      ++stats_->timeouts;
      break;
    case ExchangeError::kResponseMissingAtClose:
    case ExchangeError::kConnectionReset:
      ++stats_->missing_at_close;
      break;
    case ExchangeError::kResponseTruncated:
    case ExchangeError::kRequestTruncated:
      ++stats_->truncated_at_close;
      break;
    case ExchangeError::kAgentShutdown:
      break;
  }
}

void Http1Stitcher::PopFront() {
  Entry& front = entries_[head_];
  if (!front.marker) {  // its exchange was emitted (or moved out): its buffers go to the pool
    header_pool.Give(&front.x.req.headers);
    if (front.x.resp.has_value()) header_pool.Give(&front.x.resp->headers);
  }
  ++head_;
  if (head_ == entries_.size()) {
    entries_.clear();
    head_ = 0;
  } else if (head_ >= 32 && head_ * 2 >= entries_.size()) {
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

// 101 or CONNECT 2xx: the exchange that switched is emitted; nothing after it is HTTP.
void Http1Stitcher::EnterTunnel() {
  tunneled_ = true;
  ++stats_->tunnels;
  for (size_t i = head_; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (!e.marker && !e.resp_complete) {
      ++stats_->unpaired_requests;
      e.marker = true;  // dropped; EmitReady skips markers that owe nothing
      e.owed_max = 0;
    }
  }
}

void Http1Stitcher::Expire(uint64_t now_ns, std::vector<HttpExchange>* out, uint64_t timeout_ns) {
  for (size_t i = Awaiting(); i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (e.marker || e.x.resp.has_value()) continue;
    const uint64_t start = e.x.req.start_ts_ns != 0 ? e.x.req.start_ts_ns : e.seen_ns;
    if (now_ns < start || now_ns - start < timeout_ns) break;  // later requests are newer
    const bool framing_uncertain = FramingDependsOnRequest(e.x.req);
    Emit(e, ExchangeError::kTimeout, out);
    // Its response may still come: the marker makes sure it is not given to a later request.
    e.marker = true;
    e.x = HttpExchange{};
    e.owed_min = 0;
    e.owed_max = 1;
    e.framing_uncertain = framing_uncertain;
  }
  EmitReady(out);
}

void Http1Stitcher::OnClose(conn::ByteStream& requests, conn::ByteStream& responses,
                            CloseReason reason, std::vector<HttpExchange>* out) {
  requests.DeclareHolesAsGaps();
  responses.DeclareHolesAsGaps();
  Advance(requests, responses, 0, out);
  const bool stream_ended = reason == CloseReason::kClosed || reason == CloseReason::kReset;
  if (reason == CloseReason::kUnobserved) {
    // No end of stream was seen: a read-until-close body or an answer may still be coming.
    for (size_t i = head_; i < entries_.size(); ++i) {
      if (!entries_[i].marker) ++stats_->unfinished_unobserved;
    }
  } else if (!stream_ended) {
    // The agent stops: what is in flight is reported as such, not as the peer's failure.
    bool behind_marker = false;
    for (size_t i = head_; i < entries_.size(); ++i) {
      Entry& e = entries_[i];
      if (e.marker) {
        behind_marker |= e.owed_max > 0;
      } else if (behind_marker) {
        ++stats_->unpaired_requests;
      } else {
        ++stats_->unfinished_shutdown;
        Emit(e, ExchangeError::kAgentShutdown, out);
      }
    }
  } else if (!tunneled_) {
    if (paused_for_ == 0) {
      for (auto r = req_parser().Finish(requests); r != Http1Parser::Result::kNeedMore;
           r = req_parser().Finish(requests)) {
        HandleRequest(r, 0);
      }
    }
    requests_caught_up_ = true;  // no request can arrive any more
    closing_ = true;             // so a response nothing asked for is parsed and dropped
    ProcessResponses(responses);
    for (auto r = resp_parser().Finish(responses); r != Http1Parser::Result::kNeedMore;
         r = resp_parser().Finish(responses)) {
      HandleResponse(r);
    }
    EmitReady(out);
  }
  // What is left never got (all of) its answer. Behind a loss marker that is not certain.
  bool behind_marker = false;
  for (size_t i = stream_ended ? head_ : entries_.size(); i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (e.marker) {
      behind_marker |= e.owed_max > 0;
      continue;
    }
    if (e.x.resp.has_value()) {
      e.x.resp->truncated |= !e.resp_complete;
      e.x.req.truncated |= !e.req_complete;
      Emit(e,
           e.x.resp->truncated ? ExchangeError::kResponseTruncated
                               : ExchangeError::kRequestTruncated,
           out);
    } else if (behind_marker) {
      ++stats_->unpaired_requests;
    } else if (e.x.req.truncated || !e.req_complete) {
      e.x.req.truncated = true;
      Emit(e, ExchangeError::kRequestTruncated, out);
    } else {
      Emit(e,
           reason == CloseReason::kReset ? ExchangeError::kConnectionReset
                                         : ExchangeError::kResponseMissingAtClose,
           out);
    }
  }
  entries_.clear();
  phantoms_.clear();
  head_ = 0;
  req_in_progress_ = resp_for_ = paused_for_ = 0;
  resp_discard_ = false;
}

}  // namespace zerotrace::protocols::http1
