// Http2Session: one connection's HTTP/2 frames in both directions, its two HPACK decoders,
// and its streams, each reported as a request when its headers are decoded and as an exchange
// when it ends.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocols/http2/frames.h"
#include "protocols/http2/hpack.h"
#include "protocols/http2/span_builder.h"
#include "protocols/http2/types.h"
#include "protocols/protocol.h"

namespace zerotrace::protocols::http2 {

// A request without any response for this long becomes an exchange with error "timeout"; a
// response that ended while its request never did is reported this long after.
inline constexpr uint64_t kResponseTimeoutNs = 30'000'000'000ULL;
// How long a response waits for its request's record (see OnHeaders) before it is unpaired.
inline constexpr uint64_t kRequestWaitNs = 200'000'000ULL;
// Open streams one connection may have; beyond, the oldest is dropped (counted).
inline constexpr size_t kMaxOpenStreams = 1024;

// What the sessions of one protocol instance share (they run one at a time on the consumer
// thread): counters, options, scratch for the propagated context of the request at hand.
struct SessionShared {
  Http2Stats stats;
  SpanOptions options;
  std::string traceparent, tracestate, correlation;
};

class Http2Session final : public Session {
 public:
  // The first bytes of the client-to-server stream tell the mode: kFull when they are the
  // client preface (the connection is followed from its start, or from its h2c upgrade): every
  // header block is decoded. kTableUnknown otherwise (found mid-life, claimed at a frame): the
  // HPACK tables are unknown, so no header is decoded and no exchange is reported; its request
  // streams are counted (Http2Stats::streams_table_unknown).
  enum class Mode : uint8_t { kUndecided, kFull, kTableUnknown };

  Http2Session(const SessionContext& context, SessionShared* shared);

  void Advance(conn::ByteStream& requests, conn::ByteStream& responses, uint64_t now_ns,
               SessionOutput* out) override;
  void Close(conn::ByteStream& requests, conn::ByteStream& responses, CloseReason reason,
             uint64_t now_ns, SessionOutput* out) override;
  void Expire(uint64_t now_ns, SessionOutput* out) override;

  size_t open_streams() const { return open_; }

 private:
  enum Dir : uint8_t { kReq = 0, kResp = 1 };
  enum class BlockKind : uint8_t {
    kRequest,           // a new stream's request headers
    kRequestTrailers,   // trailers of a request
    kResponse,          // response headers (1xx or final)
    kResponseTrailers,  // trailers of a response (gRPC status)
    kIgnore,            // decoded only to keep the table (closed or unknown streams, pushes)
  };
  // A header block whose CONTINUATION frames are still to come.
  struct Block {
    bool open = false;
    BlockKind kind = BlockKind::kIgnore;
    uint32_t stream_id = 0;
    bool end_stream = false;
    uint16_t status = 0;  // kResponse: its :status
  };

  void Parse(conn::ByteStream& requests, conn::ByteStream& responses);
  void ParseDirection(Dir d, conn::ByteStream& s, const conn::ByteStream& other);
  void ParseUnknownTable(conn::ByteStream& requests, conn::ByteStream& responses);
  // Decides the mode on the preface (consumed); false while too few bytes have come.
  bool Preface(conn::ByteStream& requests);
  // False: the frame must wait (a response to a request not read yet).
  bool OnFrame(Dir d, const FrameEvent& ev, conn::ByteStream& s, const conn::ByteStream& other);
  bool OnHeaders(Dir d, const FrameEvent& ev, conn::ByteStream& s, const conn::ByteStream& other);
  void FeedBlock(Dir d, Block& b, std::string_view fragment, bool end_headers, uint64_t end_pos,
                 conn::ByteStream& s);
  void OnField(Block& b, Stream* st, std::string_view name, std::string_view value);
  void FinishBlock(Block& b, uint64_t end_pos, conn::ByteStream& s);
  void OnReset(Dir d, const FrameEvent& ev, conn::ByteStream& s);
  void OnGoaway(Dir d, const FrameEvent& ev);
  void OnDataBegin(Dir d, const FrameEvent& ev, const conn::ByteStream& s);
  void OnDataBytes(Dir d, const FrameEvent& ev, const conn::ByteStream& s);
  void OnDataEnd(Dir d, const FrameEvent& ev);
  // Frames or headers of direction d can no longer be followed.
  void LoseDirection(Dir d, bool hpack);
  void ReportStart(Stream& st);
  void MaybeFinish(Stream& st);
  void Emit(Stream& st, StreamError error, uint64_t finished_ns);
  Stream* Find(uint32_t id);
  Stream& NewStream(uint32_t id);
  void Free(Stream& st);
  void ReleaseIdle();

  SessionContext context_;
  Mode mode_ = Mode::kUndecided;
  SessionShared* shared_;
  Http2Stats& stats_;
  SessionOutput* out_ = nullptr;  // the call in progress's output
  uint64_t now_ns_ = 0;
  bool upgraded_ = false;  // h2c: the connection began as HTTP/1 (stream 1 was its request)
  bool closing_ = false;
  uint64_t wait_since_ns_ = 0;  // a response has been waiting for its request since
  FrameReader reader_[2];
  HpackDecoder hpack_[2];
  Block block_[2];
  bool lost_[2] = {false, false};
  uint32_t data_stream_[2] = {0, 0};   // the stream of the DATA frame being read
  uint64_t last_data_ns_[2] = {0, 0};  // time of its last byte read so far
  uint32_t last_request_id_ = 0;       // highest client stream id whose HEADERS were read
  uint32_t last_unpaired_id_ = 0;
  std::vector<Stream> streams_;  // slots, reused
  size_t open_ = 0;
  uint64_t next_seq_ = 1;
};

}  // namespace zerotrace::protocols::http2
