// Test helpers: MySQL packets as a client and a MariaDB server put them on the wire.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/mysql/my_wire.h"

namespace zerotrace::protocols::mysql::testing {

inline std::string Le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; i++) s += static_cast<char>(v >> (8 * i));
  return s;
}
inline std::string Lenenc(uint64_t v) {
  if (v < 0xfb) return Le(v, 1);
  if (v < 0x10000) return "\xfc" + Le(v, 2);
  if (v < 0x1000000) return "\xfd" + Le(v, 3);
  return "\xfe" + Le(v, 8);
}
inline std::string LenencStr(std::string_view s) { return Lenenc(s.size()) + std::string(s); }
inline std::string Cstr(std::string_view s) { return std::string(s) + '\0'; }
// One packet; a payload of 16 MB - 1 or more is split as the protocol does.
inline std::string Pkt(uint8_t seq, std::string_view payload) {
  std::string out;
  while (true) {
    const size_t n = std::min<size_t>(payload.size(), kMaxPacketPayload);
    out += Le(n, 3) + Le(seq++, 1) + std::string(payload.substr(0, n));
    payload.remove_prefix(n);
    if (n < kMaxPacketPayload) return out;
  }
}

inline constexpr uint32_t kCaps = kClientProtocol41 | kClientSecureConnection |
                                  kClientPluginAuthLenencData | 0x80000 /* PLUGIN_AUTH */;

// Server side.
inline std::string Greeting(std::string_view version = "10.11.19-MariaDB-0+deb12u1") {
  std::string b = "\x0a" + Cstr(version) + Le(42, 4) + "abcdefgh" + '\0';
  b += Le(0xffff, 2) + "\x2d" + Le(2, 2) + Le(0x81ff, 2) + "\x15" + std::string(10, '\0');
  b += "ijklmnopqrst" + std::string(1, '\0') + Cstr("mysql_native_password");
  return Pkt(0, b);
}
inline std::string Ok(uint8_t seq, uint64_t affected = 0, uint16_t status = 2) {
  return Pkt(seq, std::string(1, '\0') + Lenenc(affected) + Lenenc(0) + Le(status, 2) + Le(0, 2));
}
// The OK packet that ends a result set under CLIENT_DEPRECATE_EOF.
inline std::string OkEof(uint8_t seq, uint16_t status = 2) {
  return Pkt(seq, "\xfe" + Lenenc(0) + Lenenc(0) + Le(status, 2) + Le(0, 2));
}
inline std::string Eof(uint8_t seq, uint16_t status = 2) {
  return Pkt(seq, "\xfe" + Le(0, 2) + Le(status, 2));
}
inline std::string Err(uint8_t seq, uint16_t code, std::string_view state, std::string_view msg) {
  return Pkt(seq, "\xff" + Le(code, 2) + "#" + std::string(state) + std::string(msg));
}
inline std::string ColumnDef(uint8_t seq, std::string_view name) {
  std::string b = LenencStr("def") + LenencStr("test") + LenencStr("t") + LenencStr("t") +
                  LenencStr(name) + LenencStr(name);
  b += "\x0c" + Le(45, 2) + Le(200, 4) + "\xfd" + Le(0, 2) + Le(0, 1) + Le(0, 2);
  return Pkt(seq, b);
}
inline std::string TextRow(uint8_t seq, const std::vector<std::string>& values) {
  std::string b;
  for (const auto& v : values) b += LenencStr(v);
  return Pkt(seq, b);
}
// A whole text result set: its packets from sequence `seq`, `rows` rows of two columns, the
// first `row_bytes` long.
inline std::string ResultSet(size_t rows, bool deprecate_eof, size_t row_bytes = 3,
                             uint16_t end_status = 2, uint8_t seq = 1) {
  std::string out = Pkt(seq++, Lenenc(2));
  out += ColumnDef(seq++, "a");
  out += ColumnDef(seq++, "b");
  if (!deprecate_eof) out += Eof(seq++);
  for (size_t i = 0; i < rows; i++) out += TextRow(seq++, {std::string(row_bytes, 'r'), "1"});
  out += deprecate_eof ? OkEof(seq, end_status) : Eof(seq, end_status);
  return out;
}
inline std::string PrepareOk(uint8_t seq, uint32_t id, uint16_t cols, uint16_t params) {
  return Pkt(seq, std::string(1, '\0') + Le(id, 4) + Le(cols, 2) + Le(params, 2) + '\0' + Le(0, 2));
}

// Client side.
inline std::string HandshakeResponse(uint32_t caps, std::string_view user, std::string_view db) {
  if (!db.empty()) caps |= kClientConnectWithDb;
  std::string b = Le(caps, 4) + Le(1 << 24, 4) + "\x2d" + std::string(23, '\0') + Cstr(user);
  b += Lenenc(20) + std::string(20, 'p');
  if (!db.empty()) b += Cstr(db);
  b += Cstr("mysql_native_password");
  return Pkt(1, b);
}
inline std::string Cmd(uint8_t cmd, std::string_view arg) {
  return Pkt(0, std::string(1, static_cast<char>(cmd)) + std::string(arg));
}
inline std::string Query(std::string_view q) { return Cmd(kComQuery, q); }
inline std::string Execute(uint32_t id) {
  return Cmd(kComStmtExecute, Le(id, 4) + '\0' + Le(1, 4));
}

}  // namespace zerotrace::protocols::mysql::testing
