// Message-head grammar for HTTP/1.x: start lines, header fields, framing headers, detection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "protocols/http1/types.h"

namespace zerotrace::protocols::http1 {

// Header blocks (start line + fields) above this are dropped: real servers reject them too.
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;
// Fields per header block above this make the message malformed.
inline constexpr size_t kMaxHeaderFields = 256;

// Which messages a stream carries.
enum class MessageKind : uint8_t { kRequest = 0, kResponse = 1 };

// Detection on a connection's first bytes; kMaybe when too few bytes to tell.
enum class Detection : uint8_t { kNo = 0, kYes = 1, kMaybe = 2 };
Detection DetectHttp1Request(std::string_view first_bytes);
Detection DetectHttp1Response(std::string_view first_bytes);

// True if `method` is one of the registered methods resynchronisation trusts after arbitrary
// bytes (a body's tail); other tokens are trusted only at a line start.
bool IsKnownMethod(std::string_view method);
// An RFC 9110 token character.
bool IsTokenChar(char c);

// Framing-relevant header values, gathered in one pass over the fields.
struct FramingHeaders {
  bool has_content_length = false;
  bool content_length_valid = true;  // false: non-numeric, overflow or conflicting values
  uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  bool chunked = false;  // "chunked" is the final transfer coding
  bool upgrade = false;  // an Upgrade field is present
};
// Finds the end of a message head (or trailer section) and indexes its fields in the same
// pass. Incremental: each Scan resumes at the first line it has not seen complete, so a head
// that arrives in pieces is read once.
class HeadScanner {
 public:
  // `has_start_line`: a message head (start line first); else a trailer section.
  void Reset(bool has_start_line);
  // `s` is the unit so far, from its first byte. Returns one past the empty line that ends
  // it, or npos while incomplete.
  size_t Scan(std::string_view s);
  // Offset of the first field line (one past the start line's end).
  size_t fields_start() const { return fields_start_; }
  // End of the last complete line scanned (what a head cut short at close still has).
  size_t complete_end() const { return line_start_; }
  // A field line broke the grammar (bad name, fold without a field, too many fields).
  bool malformed() const { return malformed_; }
  // Copies the field bytes of `unit` once into `out` and hands it the index.
  void Fill(std::string_view unit, HeaderList* out) const;
  // Content-Length / Transfer-Encoding of the scanned fields (only those are looked at).
  FramingHeaders Framing(std::string_view unit) const;

 private:
  size_t line_start_ = 0;
  size_t fields_start_ = 0;
  bool in_start_line_ = true;
  bool malformed_ = false;
  bool folded_ = false;
  std::vector<HeaderList::Entry> entries_;  // offsets relative to fields_start_; reused
  std::vector<uint32_t> framing_fields_;    // entries that may be framing headers; reused
};

// Cheap first check at a message boundary: a known method and a space (requests), or
// "HTTP/1.x NNN" (responses). The full start line is checked when it is parsed.
Detection DetectMessageStart(MessageKind kind, std::string_view s);

// Parses "METHOD SP target SP HTTP/1.x" (without the line ending). False if malformed.
bool ParseRequestLine(std::string_view line, HttpRequest* req);
// Parses "HTTP/1.x SP NNN [SP reason]" (without the line ending). False if malformed.
bool ParseStatusLine(std::string_view line, HttpResponse* resp);

FramingHeaders ScanFramingHeaders(const HeaderList& headers);
// Folds one field into `f` if it is Content-Length or Transfer-Encoding.
void AccumulateFraming(std::string_view name, std::string_view value, FramingHeaders* f);

// True if the comma-separated header value contains `token` (case-insensitive).
bool HeaderHasToken(std::string_view value, std::string_view token);

// End (one past) of the first line.
size_t FindLineEnd(std::string_view s, size_t from);

}  // namespace zerotrace::protocols::http1
