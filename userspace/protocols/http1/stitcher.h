// Http1Stitcher: pairs one connection's HTTP/1.x requests with their responses, in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "conn/byte_stream.h"
#include "protocols/close_reason.h"
#include "protocols/http1/parser.h"
#include "protocols/http1/types.h"

namespace zerotrace::protocols::http1 {

// A request without a response for this long becomes an exchange with error "timeout".
inline constexpr uint64_t kDefaultResponseTimeoutNs = 30'000'000'000ULL;

// Requests awaiting an answer beyond this are dropped (counted) into a loss marker.
inline constexpr size_t kMaxPendingRequests = 1024;

using CloseReason = protocols::CloseReason;

// Pairs requests with responses strictly in order (pipelining included) and never pairs a
// request with the wrong response: when losses make the pairing uncertain, the requests
// involved are dropped (counted) and replaced by a "loss marker" that bounds how many of the
// coming responses answer dropped requests. Pairing resumes once that bound reaches zero.
// The bound falls when a response provably answers a dropped request: it started before the
// next kept request did, or the marker knows that at least one more answer is owed.
// That proof rests on one property of the timestamps (TimestampAt): a response's first byte
// is stamped later than its request's first byte. It holds when received bytes carry the
// syscall's exit time and sent bytes a time no later than when they left (its entry time).
// Requests delivered late (after a response to them) are handled; with no request lost,
// pairing never depends on timestamps at all.
//
// Told of each request as soon as its head is parsed, before any response: a request's span
// id is assigned then, so that calls made while serving it can name it as their parent.
class RequestListener {
 public:
  virtual ~RequestListener() = default;
  // `seq` is the exchange's HttpExchange::seq when it completes. `req` has its head only.
  virtual void OnRequestStart(uint64_t seq, const HttpRequest& req) = 0;
};

// Takes finished exchanges where they lie, in the order they would be appended to Advance's
// `out`: the exchange is read in place (a span built from it) instead of moved into a vector
// and moved out again. `x` is valid only during the call.
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  virtual void OnExchange(HttpExchange& x) = 0;
};

// For a CLIENT-role process `requests` is what it sent and `responses` what it received;
// for a SERVER-role process the other way round. One stitcher per connection; not thread-safe.
class Http1Stitcher {
 public:
  // `stats` is shared by all stitchers (the agent's counters); null keeps private ones.
  explicit Http1Stitcher(Http1Stats* stats = nullptr);

  // Who hears of requests as they start (may be null; not owned).
  void set_listener(RequestListener* listener) { listener_ = listener; }
  // Who takes finished exchanges (may be null; not owned). With a sink, the `out` vectors of
  // Advance, OnClose and Expire stay untouched (they may be null).
  void set_sink(ExchangeSink* sink) { sink_ = sink; }

  // Hot path. Parses both streams as far as they go and appends completed exchanges, in
  // request order, to `out`. `now_ns` (monotonic) times requests whose bytes have no time.
  void Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
               std::vector<HttpExchange>* out);

  // The connection ended: parses what remains (holes become gaps), completes read-until-close
  // bodies, and turns unanswered requests into exchanges whose error says why. kUnobserved
  // emits only complete exchanges; what is still in flight is counted (unfinished_unobserved).
  void OnClose(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
               std::vector<HttpExchange>* out);

  // Requests whose response has not started within `timeout_ns` become "timeout" exchanges.
  void Expire(uint64_t now_ns, std::vector<HttpExchange>* out,
              uint64_t timeout_ns = kDefaultResponseTimeoutNs);

  // True once the connection left HTTP (101 upgrade, CONNECT 2xx): no more parsing. The bytes
  // after the switch stay in the streams, at their fronts, for whatever protocol comes next
  // (h2c after "Upgrade: h2c").
  bool tunneled() const { return tunneled_; }
  // True when the next response would be paired (no loss marker is pending).
  bool aligned() const;
  // Requests (and loss markers) waiting for a response or for their own end.
  size_t pending() const { return entries_.size() - head_; }
  // Times response bytes were lost in a way that may have hidden a response (or its end).
  uint64_t response_losses() const { return response_losses_; }
  const Http1Stats& stats() const { return *stats_; }

  // Protocol inference on a connection's first bytes in either direction. False when the
  // bytes are not HTTP/1.x or too few to tell (see DetectHttp1Request for the tri-state).
  static bool LooksLikeHttp1Request(std::string_view first_bytes);
  static bool LooksLikeHttp1Response(std::string_view first_bytes);

 private:
  static constexpr uint64_t kUnbounded = UINT64_MAX;
  static constexpr size_t kMaxPhantoms = 64;

  // A request awaiting pairing, or a loss marker standing for dropped/lost requests.
  struct Entry {
    // User-provided: emplace_back() then runs the members' initializers only, instead of
    // zero-filling the whole entry (≈ 0.5 KB, per request) first. Every member has one.
    Entry() {}  // NOLINT(modernize-use-equals-default)
    uint64_t seq = 0;
    bool marker = false;
    // Request entries: the exchange being built (resp set when the response head is parsed).
    HttpExchange x;
    bool req_complete = false;
    bool resp_complete = false;
    uint64_t seen_ns = 0;  // when the request head was parsed (fallback for its start time)
    // Marker entries: responses still owed to the requests it stands for.
    uint64_t owed_min = 0;
    uint64_t owed_max = 0;           // kUnbounded when the number of lost requests is unknown
    bool framing_uncertain = false;  // it stands for a HEAD/CONNECT/Upgrade request
  };

  void ProcessRequests(conn::ByteStream& s, uint64_t now_ns);
  void ProcessResponses(conn::ByteStream& s);
  void HandleRequest(Http1Parser::Result r, uint64_t now_ns);
  void HandleResponse(Http1Parser::Result r);
  void OnResponseHead();
  void OnResponseComplete();
  void OnRequestLoss(uint64_t at_least_lost);
  void OnDoubtfulRequest(bool framing_uncertain);
  void OnResponseLoss(uint64_t at_least_lost, uint64_t lost_ns);
  void AbsorbFrom(size_t idx, uint64_t answered);
  void AddPhantom(uint64_t response_start_ns);
  bool MaybeAnsweredUnseen(const HttpRequest& req);
  size_t Awaiting();
  Entry* FindRequest(uint64_t seq);
  const Entry* NextRequestAfter(size_t idx) const;
  void EmitReady(std::vector<HttpExchange>* out);
  void Emit(Entry& e, ExchangeError error, std::vector<HttpExchange>* out);
  void PopFront();
  void EnterTunnel();
  static bool FramingDependsOnRequest(const HttpRequest& req);

  // Counters of a stitcher given none (tests). The agent's stitchers, one per connection end,
  // share one set: each does not carry its own 160 bytes.
  std::unique_ptr<Http1Stats> own_stats_;
  Http1Stats* stats_;
  RequestListener* listener_ = nullptr;
  ExchangeSink* sink_ = nullptr;
  // The parsers exist while their stream is being read, and go when it rests at a message
  // boundary; the entries' storage goes when none is pending. An idle keep-alive connection
  // then holds ~2 KB less (40 MB for 10 k idle connections traced at both ends). Allocated
  // and freed on the consumer thread, these blocks come from its malloc cache.
  // Hot path (several calls per message): the parser held, or one taken from the pool.
  Http1Parser& req_parser() {
    return req_parser_ ? *req_parser_ : TakeParser(MessageKind::kRequest, &req_parser_);
  }
  Http1Parser& resp_parser() {
    return resp_parser_ ? *resp_parser_ : TakeParser(MessageKind::kResponse, &resp_parser_);
  }
  Http1Parser& TakeParser(MessageKind kind, std::unique_ptr<Http1Parser>* slot);
  void ReleaseIdleState();
  std::unique_ptr<Http1Parser> req_parser_;
  std::unique_ptr<Http1Parser> resp_parser_;
  std::vector<Entry> entries_;  // live entries are [head_, size()); freed when empty
  size_t head_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t req_in_progress_ = 0;  // seq of the request whose body is being parsed
  uint64_t resp_for_ = 0;         // seq of the request the response in progress answers
  bool resp_discard_ = false;     // the response in progress answers no kept request
  uint64_t paused_for_ = 0;       // seq of an Upgrade/CONNECT request awaiting its verdict
  bool tunneled_ = false;
  uint64_t response_losses_ = 0;
  // Requests starting before this position lie inside the Content-Length of a request that had
  // both framings (HttpMessage::framing_conflict): doubtful.
  uint64_t conflict_until_ = 0;
  bool closing_ = false;
  // Every known request byte is parsed: no request can be hiding in unparsed bytes or holes.
  bool requests_caught_up_ = true;
  // Start times of responses taken as a dropped request's answer while no request was
  // visible; a request delivered later that started before one of them may be its owner.
  std::vector<uint64_t> phantoms_;
};

}  // namespace zerotrace::protocols::http1
