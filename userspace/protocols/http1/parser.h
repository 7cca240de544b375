// Incremental HTTP/1.x message parser over the front of one gap-aware byte stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "conn/byte_stream.h"
#include "protocols/http1/head.h"
#include "protocols/http1/types.h"

namespace zerotrace::protocols::http1 {

// Why the parser discarded bytes (see Http1Parser::Result::kDropped).
enum class DropReason : uint8_t {
  kNone = 0,
  kGapAtStart = 1,       // a gap began where a message should begin
  kGapInHeaders = 2,     // a gap interrupted a header block
  kHeadersTooLarge = 3,  // no end of headers within kMaxHeaderBytes
  kMalformed = 4,        // bytes at a message boundary are not a valid message head
  kResyncSkipped = 5,    // bytes or gaps skipped while scanning for a message start
};

// Parses one direction. Data is parsed in place from ByteStream::Peek(); only kept fields are
// copied. Body bytes are skipped by length through data or gaps without being read.
class Http1Parser {
 public:
  enum class Result : uint8_t {
    kNeedMore = 0,  // nothing more until bytes (or a gap) arrive
    kHeaders = 1,   // a message head is ready in request()/response(); its body follows
    kComplete = 2,  // the message whose head was last reported ended; see body()
    kDropped = 3,   // bytes were discarded (drop_reason()); the parser is resynchronising
  };
  // How the body of the last reported message ended.
  struct BodyEnd {
    uint64_t body_size = 0;
    uint64_t end_ts_ns = 0;
    uint64_t end_pos = 0;
    bool truncated = false;     // the stream ended first (Finish)
    bool framing_lost = false;  // a gap or bad chunk line made the end unknowable
    HeaderList trailers;
  };

  // `stats` must outlive the parser.
  Http1Parser(MessageKind kind, Http1Stats* stats);

  // Gives a parser that is at_boundary() to another stream (kind may change): it reads the next
  // message as a new parser would, with its buffers' capacity (no allocation, no regrowing of
  // its field index).
  void Reuse(MessageKind kind, Http1Stats* stats);

  // Hot path. Advances over the front of `stream` until the next event. For responses,
  // `request_method` is the method of the request being answered ("" when unknown); it
  // decides framing for HEAD and CONNECT.
  Result Next(conn::ByteStream& stream, std::string_view request_method = {});

  // The stream has ended (close or reset): completes a read-until-close body, and reports a
  // message cut short as kHeaders/kComplete with `truncated` set. Call until kNeedMore.
  Result Finish(conn::ByteStream& stream);

  // Valid after kHeaders; the caller may move the message out.
  HttpRequest& request() { return request_; }
  HttpResponse& response() { return response_; }
  // Valid after kComplete; the caller may move the trailers out.
  BodyEnd& body() { return body_; }
  DropReason drop_reason() const { return drop_reason_; }
  // True when the last drop certainly lost one message that counts for pairing: its start
  // line was seen (for responses: a final status, since 1xx interim responses do not count).
  bool drop_confirmed() const { return drop_confirmed_; }
  // Whether the bytes of the last drop could have held a message. False for captured bytes
  // with no message start in them (a body longer than its Content-Length said, garbage
  // between messages): nothing was lost, and pairing need not doubt. Gaps and malformed
  // heads may hide one.
  bool drop_may_hide_message() const { return drop_may_hide_; }
  // When the bytes of the last drop moved (0: unknown).
  uint64_t drop_ts() const { return drop_ts_; }
  // True once a message switched the connection away from HTTP (101, CONNECT 2xx).
  bool tunnel() const { return state_ == State::kTunnel; }
  // True between kHeaders and kComplete.
  bool in_body() const;
  // True when no message is partly read (the front is a message boundary or resync point).
  bool idle() const {
    return (state_ == State::kStart || state_ == State::kResync) && !unit_started_ &&
           carry_.empty();
  }
  // True at a message boundary with nothing carried over (not even 1xx interim responses
  // counted for the final one): a new parser would continue exactly as this one (what the
  // stitcher checks before it lets an idle connection's parser go).
  bool at_boundary() const {
    return state_ == State::kStart && !unit_started_ && carry_.empty() && !body_head_ &&
           !tunnel_after_ && !resync_after_ && pending_interim_ == 0;
  }
  // Starts scanning for the next message start (caller lost track of this stream).
  void Resync();

 private:
  enum class State : uint8_t {
    kStart,          // at a message boundary: reading a header block
    kResync,         // scanning for a plausible message start
    kBodyLength,     // skipping remaining_ body bytes
    kChunkSize,      // reading a chunk-size line
    kChunkData,      // skipping remaining_ chunk payload bytes
    kChunkCrlf,      // the CRLF that ends a chunk's payload
    kTrailers,       // reading the trailer section after the last chunk
    kUntilClose,     // body runs until the stream ends
    kBodyDone,       // body ended; report kComplete
    kTunnel,         // bytes after an upgrade or CONNECT: not parsed
    kTruncatedHead,  // Finish reported a partial head; report kComplete(truncated) next
  };
  // Outcome of reading a delimited unit (header block, chunk line, trailers).
  enum class Take : uint8_t { kFound, kMore, kGap, kTooLong };
  // What a unit is, which decides how its end is found.
  enum class Unit : uint8_t { kHead, kChunkLine, kTrailers };

  Result ParseStart(conn::ByteStream& s, std::string_view request_method);
  bool TakeCutHead(conn::ByteStream& s, std::string_view request_method);
  Result ParseHead(std::string_view block, std::string_view request_method, bool* interim,
                   bool partial);
  Result ScanForStart(conn::ByteStream& s);
  Result Drop(conn::ByteStream& s, DropReason reason, uint64_t skip, bool confirmed);
  bool StartsCountedMessage(std::string_view bytes) const;
  // Each returns true when it made progress and the loop should continue.
  bool SkipBody(conn::ByteStream& s, State next);
  Result ReadChunkSize(conn::ByteStream& s, bool* progress);
  bool SkipChunkCrlf(conn::ByteStream& s);
  Result ReadTrailers(conn::ByteStream& s, bool* progress);
  Result LoseFraming();
  void BeginBody(BodyFraming framing, uint64_t length);
  Take TakeUnit(conn::ByteStream& s, Unit kind, size_t limit, std::string_view* unit);
  size_t FindUnitEnd(Unit kind, std::string_view s);
  void CommitUnit(conn::ByteStream& s);
  void ResetUnit();
  void Consume(conn::ByteStream& s, uint64_t n);

  MessageKind kind_;
  Http1Stats* stats_;
  State state_ = State::kStart;
  uint64_t remaining_ = 0;        // body or chunk bytes left to skip
  uint64_t last_ts_ = 0;          // time of the last byte consumed in the current message
  bool body_head_ = false;        // a head was reported and its kComplete is still owed
  bool tunnel_after_ = false;     // the current message switches the stream away from HTTP
  bool resync_after_ = false;     // the current body lost its framing: resync after it
  uint8_t crlf_seen_ = 0;         // bytes of a chunk's trailing CRLF already consumed
  uint16_t pending_interim_ = 0;  // 1xx responses consumed before the next final one
  uint64_t head_start_pos_ = 0;   // first byte of the reported head
  uint64_t head_start_ts_ = 0;
  uint32_t head_start_tid_ = 0;

  // Unit reading: a unit is parsed in place from the stream's data when it is contiguous;
  // when data is followed by a gap or hole, its bytes are moved into carry_ so the gap can
  // be seen (and a late hole still filled).
  std::string carry_;
  size_t scan_from_ = 0;  // bytes of the unit already searched for its end
  size_t unit_len_ = 0;   // length of the found unit
  uint64_t unit_start_pos_ = 0;
  uint64_t unit_start_ts_ = 0;
  uint32_t unit_start_tid_ = 0;
  bool unit_started_ = false;
  size_t resync_scanned_ = 0;  // bytes at the front already scanned without a match

  HeadScanner scanner_;  // indexes the head or trailers being read

  HttpRequest request_;
  HttpResponse response_;
  BodyEnd body_;
  DropReason drop_reason_ = DropReason::kNone;
  bool drop_confirmed_ = false;
  bool drop_may_hide_ = true;
  uint64_t drop_ts_ = 0;
  bool resync_clean_ = false;  // the resync began at a whole message's end, nothing lost before
};

}  // namespace zerotrace::protocols::http1
