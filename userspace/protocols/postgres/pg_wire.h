// PostgreSQL v3 wire format: message framing over a gap-aware byte stream, the fields the
// session reads, and detection of a connection's start or of a request at a syscall's start.
#pragma once

#include <cstdint>
#include <string_view>

#include "conn/byte_stream.h"
#include "protocols/protocol.h"

namespace zerotrace::protocols::postgres {

// Codes of the untyped messages a client opens a connection with.
inline constexpr uint32_t kSslRequestCode = 80877103;
inline constexpr uint32_t kGssEncRequestCode = 80877104;
inline constexpr uint32_t kCancelRequestCode = 80877102;
// The largest message length believed (the server's own limit is 1 GB).
inline constexpr uint32_t kMaxMessageLength = 1u << 30;

uint32_t ReadBe32(const char* p);
uint16_t ReadBe16(const char* p);

// One message at the front of a stream: its type (0 for an untyped startup message), where it
// starts, its length (as on the wire: without the type byte, with the length field) and the
// captured part of its body (all of it when `complete`).
struct Message {
  char type = 0;
  uint64_t pos = 0;
  uint32_t length = 0;
  std::string_view body;
  bool complete = false;
  uint64_t end_pos() const { return pos + (type != 0 ? 1 : 0) + length; }
};

enum class ReadResult : uint8_t {
  kMessage,   // *m holds one message
  kNeedMore,  // wait for more bytes
  kLost,      // the framing is lost: a header fell into a gap, or a length is impossible
};

// Reads the message at `s`'s front without consuming it. `want_body`: wait for the whole body
// (unless a gap cuts it, or `max_wait` bytes are buffered: then the captured prefix comes).
ReadResult PeekMessage(const conn::ByteStream& s, bool typed, bool want_body, Message* m);

// The NUL-terminated string at `*body`'s front; advances past it. False if no NUL.
bool TakeCString(std::string_view* body, std::string_view* out);

// SQLSTATE (field 'C') of an ErrorResponse body; empty when absent or malformed.
std::string_view ErrorCode(std::string_view body);

// The row count a CommandComplete tag ends with ("SELECT 5", "INSERT 0 3"); -1 for tags with
// none ("CREATE TABLE").
int64_t TagRows(std::string_view tag);

// Detection from a connection's first bytes; role must be known. Only the client side claims:
// a server's side of the same connection would repeat every span.
Detection DetectPgStart(const StartBytes& b);
// A whole Query, Parse or Bind message at the start of a syscall the process wrote.
Detection DetectPgResync(const ResyncBytes& b);

}  // namespace zerotrace::protocols::postgres
