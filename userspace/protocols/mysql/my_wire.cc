// MySQL packet framing, integer readers and detection.
#include "protocols/mysql/my_wire.h"

#include <algorithm>

namespace zerotrace::protocols::mysql {
namespace {

constexpr size_t kMaxPayloadWait = 64 * 1024;

bool PlausibleText(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
  }
  return true;
}

uint32_t ReadLe24(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16);
}

}  // namespace

uint16_t ReadLe16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}

uint32_t ReadLe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16) | (uint32_t{u[3]} << 24);
}

// Hot path.
ReadResult PeekPacket(const conn::ByteStream& s, bool want_payload, Packet* p) {
  const conn::ByteStream::Front f = s.Peek();
  if (f.gap != 0) return ReadResult::kLost;
  if (f.data.size() < 4) {
    return s.GapAfterFrontData() ? ReadResult::kLost : ReadResult::kNeedMore;
  }
  p->pos = f.pos;
  p->length = ReadLe24(f.data.data());
  p->seq = static_cast<uint8_t>(f.data[3]);
  const size_t total = 4 + size_t{p->length};
  const size_t have = std::min(total, f.data.size());
  p->complete = have == total;
  // Without the payload, its first byte (what kind of packet) is still awaited.
  const size_t wait = want_payload ? total : std::min<size_t>(total, 5);
  if (have < wait && !s.GapAfterFrontData() && f.data.size() < kMaxPayloadWait) {
    return ReadResult::kNeedMore;
  }
  p->payload = f.data.substr(4, have - 4);
  return ReadResult::kPacket;
}

bool TakeLenenc(std::string_view* s, uint64_t* v) {
  if (s->empty()) return false;
  const auto* u = reinterpret_cast<const unsigned char*>(s->data());
  size_t n = 0;
  if (u[0] < 0xfb) {
    *v = u[0];
    s->remove_prefix(1);
    return true;
  }
  if (u[0] == 0xfc) n = 2;
  if (u[0] == 0xfd) n = 3;
  if (u[0] == 0xfe) n = 8;
  if (n == 0 || s->size() < 1 + n) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) x |= uint64_t{u[1 + i]} << (8 * i);
  *v = x;
  s->remove_prefix(1 + n);
  return true;
}

// TLS plaintext begins after the SSLRequest (sequence 1, in the clear): the client's
// handshake response, sequence 2, with CLIENT_PROTOCOL_41 and CLIENT_SSL and its filler (23
// zero bytes, of which MariaDB clients use the last 4 for capabilities).
Detection DetectMyTlsStart(const StartBytes& b) {
  if (!b.received.empty() && b.sent.empty()) return {};  // the server spoke first: not this
  const std::string_view s = b.sent;
  // Each check runs as soon as its bytes are here: other plaintext is turned away at once,
  // not held as "maybe" until 36 bytes arrive (a short exchange would never be muted).
  if (s.size() < 4) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const uint32_t len = ReadLe24(s.data());
  if (s[3] != 2 || len < 32 || len > kMaxPayloadWait) return {};
  if (s.size() < 8) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const uint32_t caps = ReadLe32(s.data() + 4);
  if ((caps & (kClientProtocol41 | kClientSsl)) != (kClientProtocol41 | kClientSsl)) return {};
  if (s.size() < 4 + 32) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const std::string_view filler = s.substr(4 + 9, 19);
  if (filler.find_first_not_of('\0') != std::string_view::npos) return {};
  return {Verdict::kYes, ZT_ROLE_CLIENT};
}

Detection DetectMyStart(const StartBytes& b) {
  if (b.role != ZT_ROLE_CLIENT) return {};  // the server's side: muted, never a duplicate
  if (b.tls) return DetectMyTlsStart(b);
  if (!b.sent.empty() && b.received.empty()) return {};  // client spoke first: not MySQL
  const std::string_view r = b.received;
  if (r.size() < 6) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const uint32_t len = ReadLe24(r.data());
  if (r[3] != 0 || r[4] != 10 || len < 20 || len > 1024) return {};
  if (r.size() < 4 + size_t{len}) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const std::string_view version = r.substr(5, len - 1);
  const size_t nul = version.find('\0');
  if (nul == std::string_view::npos || nul == 0 || !PlausibleText(version.substr(0, nul))) {
    return {};
  }
  return {Verdict::kYes, ZT_ROLE_CLIENT};
}

Detection DetectMyResync(const ResyncBytes& b) {
  if (b.direction != ZT_DIR_EGRESS || b.role == ZT_ROLE_SERVER) return {};
  const std::string_view s = b.bytes;
  if (s.size() < 5) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  const uint32_t len = ReadLe24(s.data());
  const uint8_t cmd = static_cast<uint8_t>(s[4]);
  if (s[3] != 0 || (cmd != kComQuery && cmd != kComStmtPrepare) || len < 2 ||
      len >= kMaxPacketPayload) {
    return {};
  }
  // The whole write is that one packet: what drivers do, and what a reply never looks like.
  if (s.size() < 4 + size_t{len}) return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  if (s.size() != 4 + size_t{len} || !PlausibleText(s.substr(5))) return {};
  return {Verdict::kYes, ZT_ROLE_CLIENT};
}

}  // namespace zerotrace::protocols::mysql
