// HTTP/2 framing (RFC 9113 section 4 and 6): frame headers, and a reader that takes whole
// frames from one direction's byte stream, DATA payloads piece by piece (captured or not).
#pragma once

#include <cstdint>
#include <string_view>

#include "conn/byte_stream.h"

namespace zerotrace::protocols::http2 {

// The client connection preface (RFC 9113 section 3.4).
inline constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
inline constexpr size_t kFrameHeaderSize = 9;
// Non-DATA frames longer than this are not buffered: the direction is given up. HEADERS
// blocks this large do not occur in practice (servers refuse them long before).
inline constexpr uint32_t kMaxControlFrame = 256 * 1024;

enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};

enum FrameFlag : uint8_t {
  kEndStream = 0x1,      // DATA, HEADERS
  kAck = 0x1,            // SETTINGS, PING
  kEndHeaders = 0x4,     // HEADERS, PUSH_PROMISE, CONTINUATION
  kPadded = 0x8,         // DATA, HEADERS, PUSH_PROMISE
  kPriorityFlag = 0x20,  // HEADERS
};

struct FrameHeader {
  uint32_t length = 0;  // payload bytes
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;  // reserved bit cleared
  bool has(uint8_t flag) const { return (flags & flag) != 0; }
};

// Reads the 9 bytes at `p`.
FrameHeader ParseFrameHeader(const char* p);

// Whether the 9 bytes at `p` could be the header of a frame a conforming peer sends: a known
// type with its fixed sizes, stream-id rules and defined flags, the reserved bit clear, and no
// more than the default maximum frame size (16384). For recognising frames mid-stream, where
// nothing else is known.
bool PlausibleFrame(const char* p);

// The name of an HTTP/2 error code (RFC 9113 section 7): "CANCEL", "0x1f" when unknown.
std::string_view ErrorCodeName(uint32_t code);

// What FrameReader::Next found.
struct FrameEvent {
  enum Kind : uint8_t {
    kNeedMore = 0,   // the next frame has not fully arrived yet
    kFrame = 1,      // a whole non-DATA frame: header and payload
    kDataBegin = 2,  // a DATA frame's header (and pad length): body bytes follow
    kDataBytes = 3,  // body bytes of the current DATA frame: captured (`bytes`) or not (`gap`)
    kDataEnd = 4,    // the current DATA frame ended (its END_STREAM flag is in `header`)
    kLost = 5,       // frame boundaries are lost (a gap where a header should be, a frame
                     // cut short by a gap, an oversized frame): nothing more can be read
  };
  Kind kind = kNeedMore;
  FrameHeader header;      // kFrame, kDataBegin, kDataEnd
  std::string_view bytes;  // kFrame: the payload; kDataBytes: captured body bytes
  uint64_t gap = 0;        // kDataBytes: body bytes not captured
  uint64_t pos = 0;        // first byte of the frame (kFrame, kDataBegin) or of the bytes
  uint64_t end_pos = 0;    // kFrame, kDataEnd: one past the frame's last byte
  // kDataBegin: the body size is not known (a PADDED frame whose pad length was not captured).
  bool body_unknown = false;
};

// Reads one direction's frames. Next() returns what comes next; the bytes of a kFrame,
// kDataBegin or kDataBytes event stay in the stream until Commit(), so a caller that must wait
// (a response whose request has not been read yet) can leave them there. Padding is skipped.
class FrameReader {
 public:
  // Hot path.
  FrameEvent Next(conn::ByteStream& s);
  // Consumes the bytes of the event the last Next() returned.
  void Commit(conn::ByteStream& s);
  bool lost() const { return lost_; }
  // Gives up on this direction (the caller saw something it cannot follow).
  void MarkLost() { lost_ = true; }
  // Inside a DATA frame.
  bool in_data() const { return in_data_; }

 private:
  FrameEvent Lost();

  bool lost_ = false;
  bool in_data_ = false;
  FrameHeader data_;                 // the DATA frame being read
  uint64_t body_end_ = 0;            // stream position where its body ends (padding follows)
  uint64_t frame_end_ = 0;           // and where the frame ends
  uint64_t commit_to_ = 0;           // what Commit() consumes up to
  bool commit_begins_data_ = false;  // Commit() enters the DATA frame below
  FrameHeader next_data_;
  uint64_t next_body_end_ = 0, next_frame_end_ = 0;
};

}  // namespace zerotrace::protocols::http2
