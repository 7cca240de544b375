// PostgreSQL framing and field readers, and detection (strict: structure checked end to end).
#include "protocols/postgres/pg_wire.h"

#include <algorithm>
#include <charconv>

namespace zerotrace::protocols::postgres {
namespace {

// Bytes of a message body buffered before the session reads the captured prefix instead of
// waiting for the rest (a long query text: what is kept of it is much shorter anyway).
constexpr size_t kMaxBodyWait = 64 * 1024;

// Query text as people and drivers write it: printable, UTF-8 bytes or white space.
bool PlausibleText(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

bool ValidQuery(std::string_view body) {
  return body.size() >= 2 && body.back() == '\0' && body.find('\0') == body.size() - 1 &&
         PlausibleText(body.substr(0, body.size() - 1));
}

// Parse: name, query, int16 count, count int32 type ids; nothing left over.
bool ValidParse(std::string_view body) {
  std::string_view name, query;
  if (!TakeCString(&body, &name) || !TakeCString(&body, &query)) return false;
  if (!PlausibleText(query) || body.size() < 2) return false;
  const uint16_t n = ReadBe16(body.data());
  return body.size() == 2 + 4u * n;
}

// Bind: portal, statement, formats, parameters, result formats; nothing left over.
bool ValidBind(std::string_view body) {
  std::string_view portal, stmt;
  if (!TakeCString(&body, &portal) || !TakeCString(&body, &stmt)) return false;
  auto take16 = [&](uint16_t* v) {
    if (body.size() < 2) return false;
    *v = ReadBe16(body.data());
    body.remove_prefix(2);
    return true;
  };
  uint16_t n = 0;
  if (!take16(&n) || body.size() < 2u * n) return false;
  for (uint16_t i = 0; i < n; i++) {
    if (ReadBe16(body.data() + 2 * i) > 1) return false;  // 0 text, 1 binary
  }
  body.remove_prefix(2u * n);
  if (!take16(&n)) return false;
  for (uint16_t i = 0; i < n; i++) {
    if (body.size() < 4) return false;
    const int32_t len = static_cast<int32_t>(ReadBe32(body.data()));
    body.remove_prefix(4);
    if (len < -1 || (len > 0 && body.size() < static_cast<size_t>(len))) return false;
    if (len > 0) body.remove_prefix(static_cast<size_t>(len));
  }
  if (!take16(&n) || body.size() != 2u * n) return false;
  return true;
}

}  // namespace

uint32_t ReadBe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

uint16_t ReadBe16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

// Hot path.
ReadResult PeekMessage(const conn::ByteStream& s, bool typed, bool want_body, Message* m) {
  const conn::ByteStream::Front f = s.Peek();
  if (f.gap != 0) return ReadResult::kLost;
  const size_t header = typed ? 5 : 4;
  if (f.data.size() < header) {
    return s.GapAfterFrontData() ? ReadResult::kLost : ReadResult::kNeedMore;
  }
  m->type = typed ? f.data[0] : 0;
  m->pos = f.pos;
  m->length = ReadBe32(f.data.data() + (typed ? 1 : 0));
  if (m->length < 4 || m->length > kMaxMessageLength) return ReadResult::kLost;
  const size_t total = (typed ? 1 : 0) + size_t{m->length};
  const size_t have = std::min(total, f.data.size());
  m->complete = have == total;
  if (!m->complete && want_body && !s.GapAfterFrontData() && f.data.size() < kMaxBodyWait) {
    return ReadResult::kNeedMore;
  }
  m->body = f.data.substr(header, have - header);
  return ReadResult::kMessage;
}

bool TakeCString(std::string_view* body, std::string_view* out) {
  const size_t nul = body->find('\0');
  if (nul == std::string_view::npos) return false;
  *out = body->substr(0, nul);
  body->remove_prefix(nul + 1);
  return true;
}

std::string_view ErrorCode(std::string_view body) {
  while (!body.empty() && body.front() != '\0') {
    const char field = body.front();
    body.remove_prefix(1);
    std::string_view value;
    if (!TakeCString(&body, &value)) return {};
    if (field == 'C') {
      if (value.size() != 5) return {};
      for (char c : value) {
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return {};
      }
      return value;
    }
  }
  return {};
}

int64_t TagRows(std::string_view tag) {
  const size_t space = tag.rfind(' ');
  if (space == std::string_view::npos) return -1;
  const std::string_view n = tag.substr(space + 1);
  int64_t rows = -1;
  const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), rows);
  if (ec != std::errc() || end != n.data() + n.size()) return -1;
  return rows;
}

Detection DetectPgStart(const StartBytes& b) {
  if (b.role != ZT_ROLE_CLIENT) return {};  // the server's side: muted, never a duplicate span
  const std::string_view s = b.sent;
  if (s.empty()) return {b.received.empty() ? Verdict::kMaybe : Verdict::kNo, ZT_ROLE_UNKNOWN};
  // A startup length is below 10000: its first two bytes are zero (a TLS record's are not).
  if (s[0] != 0 || (s.size() >= 2 && s[1] != 0)) return {};
  if (s.size() < 8) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const uint32_t len = ReadBe32(s.data()), code = ReadBe32(s.data() + 4);
  if (code == kSslRequestCode || code == kGssEncRequestCode) {
    return {len == 8 ? Verdict::kYes : Verdict::kNo, ZT_ROLE_CLIENT};
  }
  if ((code >> 16) != 3 || len < 9 || len > 10000) return {};
  if (s.size() < len) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  // Parameters: name\0value\0 pairs ending in an empty name; "user" is required.
  std::string_view body = s.substr(8, len - 8);
  bool user = false;
  while (!body.empty() && body.front() != '\0') {
    std::string_view name, value;
    if (!TakeCString(&body, &name) || !TakeCString(&body, &value)) return {};
    user |= name == "user";
  }
  if (body.size() != 1 || !user) return {};
  return {Verdict::kYes, ZT_ROLE_CLIENT};
}

Detection DetectPgResync(const ResyncBytes& b) {
  if (b.direction != ZT_DIR_EGRESS || b.role == ZT_ROLE_SERVER) return {};
  const std::string_view s = b.bytes;
  if (s.size() < 5) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const char type = s[0];
  if (type != 'Q' && type != 'P' && type != 'B') return {};
  const uint32_t len = ReadBe32(s.data() + 1);
  if (len < 5 || len > 1u << 20) return {};
  // Only a whole message is certain: wait for the rest of the syscall's bytes.
  if (s.size() < 1 + size_t{len}) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const std::string_view body = s.substr(5, len - 4);
  const bool ok = type == 'Q' ? ValidQuery(body) : type == 'P' ? ValidParse(body) : ValidBind(body);
  return ok ? Detection{Verdict::kYes, ZT_ROLE_CLIENT} : Detection{};
}

}  // namespace zerotrace::protocols::postgres
