// RespParser: incremental RESP2/RESP3 parser over the front of one gap-aware byte stream. It
// frames whole values (commands, replies, pushes) and keeps a small summary of each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conn/byte_stream.h"

namespace zerotrace::protocols::redis {

// A direct element of a top-level aggregate (a command's argument, an element of EXEC's reply).
struct RespElement {
  char type = 0;         // RESP type byte ('$', ':', '-', '*', ...)
  bool null = false;     // $-1, *-1, _
  bool clipped = false;  // its content is longer than what was kept, or was not captured
  int64_t number = 0;    // ':' value; aggregate count; bulk length
  uint32_t offset = 0;   // kept content: RespValue::text().substr(offset, size)
  uint32_t size = 0;
};

// One complete top-level value.
struct RespValue {
  char type = 0;           // its type byte; 'i' for an inline command (request stream only)
  bool null = false;       // $-1, *-1, _
  bool truncated = false;  // some of its bytes were never captured (gaps in bulk payloads)
  int64_t number = 0;      // aggregate count, bulk length, or integer value
  uint64_t start_pos = 0, end_pos = 0;  // stream positions: first byte, one past the last
  uint64_t start_ns = 0, end_ns = 0;    // monotonic times of the first and last byte
  uint32_t start_tid = 0, end_tid = 0;
  uint32_t head_offset = 0, head_size = 0;  // kept content of a scalar (line or bulk prefix)
  std::string text;                         // kept content bytes
  std::vector<RespElement> elements;        // the first kMaxElements direct elements
  uint64_t elements_seen = 0;               // direct elements, recorded or not

  std::string_view head() const { return std::string_view(text).substr(head_offset, head_size); }
  std::string_view content(const RespElement& e) const {
    return std::string_view(text).substr(e.offset, e.size);
  }
  void Clear();
};

class RespParser {
 public:
  enum class Result : uint8_t {
    kNeedMore = 0,  // nothing more until bytes arrive
    kValue = 1,     // a top-level value is complete: value()
    kLost = 2,      // framing was lost (a gap in a header line, malformed bytes): Reset()
  };
  static constexpr size_t kMaxElements = 1024;      // direct elements recorded per value
  static constexpr size_t kKeptElements = 16;       // of which this many keep content
  static constexpr size_t kKeepElementBytes = 128;  // content kept per such element
  static constexpr size_t kKeepErrorBytes = 32;     // error elements past those (their prefix)
  static constexpr size_t kKeepHeadBytes = 64;      // content kept of a top-level scalar
  static constexpr size_t kMaxLine = 64 * 1024;     // longest header, simple or inline line
  static constexpr size_t kMaxDepth = 64;

  // `requests`: the client-to-server stream (commands: arrays of bulk strings, or inline).
  explicit RespParser(bool requests) : requests_(requests) {}

  // Hot path. Parses from the stream's front until a top-level value completes.
  Result Next(conn::ByteStream& s);
  RespValue& value() { return value_; }
  // At a top-level boundary: no value is partly parsed.
  bool idle() const { return !in_value_; }
  // Forgets a partly parsed value (after kLost, or to restart elsewhere).
  void Reset();
  // After a loss: skips bytes until the first data that follows a gap (the start of a later
  // syscall, where a message may start). True once there.
  static bool SkipToAfterGap(conn::ByteStream& s);

 private:
  struct Frame {
    int64_t remaining = 0;
    bool attribute = false;  // RESP3 attribute: its elements do not count for the parent
  };
  Result ParseLine(conn::ByteStream& s, std::string_view data, size_t nl);
  Result ParseInline(conn::ByteStream& s, std::string_view line, size_t consumed);
  Result SkipBulk(conn::ByteStream& s, const conn::ByteStream::Front& front);
  // An element (or the top-level value) ended at `last_pos`; true when the value is complete.
  bool ElementDone(const conn::ByteStream& s, uint64_t last_pos);
  void StartValue(const conn::ByteStream& s, uint64_t pos);
  RespElement* NewElement(char type);
  void Keep(RespElement* e, std::string_view bytes, size_t limit);

  bool requests_;
  bool in_value_ = false;
  RespValue value_;
  std::vector<Frame> stack_;
  // Inside a bulk payload: bytes left including its CRLF, and where its kept content goes.
  uint64_t bulk_left_ = 0;
  size_t bulk_keep_ = 0;    // payload bytes still to keep
  int64_t bulk_elem_ = -1;  // index in value_.elements; -1: none; -2: the top-level head
};

}  // namespace zerotrace::protocols::redis
