// MySQL wire format: packets (3-byte length, sequence id; 16 MB payloads continue in the next
// packet), the fields the session reads, and detection.
#pragma once

#include <cstdint>
#include <string_view>

#include "conn/byte_stream.h"
#include "protocols/protocol.h"

namespace zerotrace::protocols::mysql {

inline constexpr uint32_t kMaxPacketPayload = 0xffffff;  // a payload this long continues
inline constexpr uint32_t kClientConnectWithDb = 0x8;
inline constexpr uint32_t kClientProtocol41 = 0x200;
inline constexpr uint32_t kClientSsl = 0x800;
inline constexpr uint32_t kClientSecureConnection = 0x8000;
inline constexpr uint32_t kClientPluginAuthLenencData = 0x200000;
inline constexpr uint32_t kClientDeprecateEof = 0x1000000;
inline constexpr uint16_t kServerMoreResultsExist = 0x8;
inline constexpr uint16_t kServerNoBackslashEscapes = 0x200;

enum Command : uint8_t {
  kComQuit = 0x01,
  kComInitDb = 0x02,
  kComQuery = 0x03,
  kComPing = 0x0e,
  kComChangeUser = 0x11,
  kComStmtPrepare = 0x16,
  kComStmtExecute = 0x17,
  kComStmtSendLongData = 0x18,
  kComStmtClose = 0x19,
  kComStmtReset = 0x1a,
  kComSetOption = 0x1b,
  kComResetConnection = 0x1f,
};

// One packet at a stream's front: its sequence id, payload length, and the captured part of
// its payload (all of it when `complete`).
struct Packet {
  uint64_t pos = 0;
  uint32_t length = 0;
  uint8_t seq = 0;
  std::string_view payload;
  bool complete = false;
  uint64_t end_pos() const { return pos + 4 + length; }
};

enum class ReadResult : uint8_t { kPacket, kNeedMore, kLost };

// Reads the packet at the front without consuming it; `want_payload` waits for all of it,
// else for its first byte (unless a gap cuts it or it is large: then the captured prefix
// comes, possibly empty).
ReadResult PeekPacket(const conn::ByteStream& s, bool want_payload, Packet* p);

// A length-encoded integer at `*s`'s front; advances. False if cut or malformed.
bool TakeLenenc(std::string_view* s, uint64_t* v);
uint16_t ReadLe16(const char* p);
uint32_t ReadLe32(const char* p);

// Detection: a client whose first received bytes are a server greeting (protocol 10); in TLS
// plaintext, one whose first sent bytes are a handshake response that asked for TLS.
Detection DetectMyStart(const StartBytes& b);
// A whole COM_QUERY or COM_STMT_PREPARE packet (sequence 0) as a syscall's bytes written.
Detection DetectMyResync(const ResyncBytes& b);

}  // namespace zerotrace::protocols::mysql
