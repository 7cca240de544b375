// Test helpers: PostgreSQL v3 messages as a client and a server put them on the wire.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zerotrace::protocols::postgres::testing {

inline std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
inline std::string Be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
inline std::string Msg(char type, std::string_view body) {
  return std::string(1, type) + Be32(static_cast<uint32_t>(body.size() + 4)) + std::string(body);
}
inline std::string Cstr(std::string_view s) { return std::string(s) + '\0'; }

inline std::string Startup(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body = Be32(196608);
  for (const auto& [k, v] : params) body += Cstr(k) + Cstr(v);
  body += '\0';
  return Be32(static_cast<uint32_t>(body.size() + 4)) + body;
}
inline std::string SslRequest() { return Be32(8) + Be32(80877103); }
inline std::string Query(std::string_view q) { return Msg('Q', Cstr(q)); }
inline std::string Parse(std::string_view name, std::string_view q) {
  return Msg('P', Cstr(name) + Cstr(q) + Be16(0));
}
inline std::string Bind(std::string_view portal, std::string_view stmt,
                        const std::vector<std::string>& params) {
  std::string b = Cstr(portal) + Cstr(stmt) + Be16(0) + Be16(static_cast<uint16_t>(params.size()));
  for (const auto& p : params) b += Be32(static_cast<uint32_t>(p.size())) + p;
  return Msg('B', b + Be16(0));
}
inline std::string DescribePortal(std::string_view p) { return Msg('D', "P" + Cstr(p)); }
inline std::string Execute(std::string_view portal) { return Msg('E', Cstr(portal) + Be32(0)); }
inline std::string Sync() { return Msg('S', ""); }
inline std::string Terminate() { return Msg('X', ""); }

// Server side.
inline std::string AuthOk() { return Msg('R', Be32(0)); }
inline std::string ParamStatus(std::string_view k, std::string_view v) {
  return Msg('S', Cstr(k) + Cstr(v));
}
inline std::string Ready(char status = 'I') { return Msg('Z', std::string(1, status)); }
inline std::string StartupReply() {
  return AuthOk() + ParamStatus("server_version", "15.18") +
         ParamStatus("standard_conforming_strings", "on") + Msg('K', Be32(1) + Be32(2)) + Ready();
}
inline std::string RowDesc() {
  return Msg('T', Be16(1) + Cstr("a") + Be32(0) + Be16(0) + Be32(23) + Be16(4) + Be32(0) + Be16(0));
}
inline std::string DataRow(std::string_view v) {
  return Msg('D', Be16(1) + Be32(static_cast<uint32_t>(v.size())) + std::string(v));
}
inline std::string Complete(std::string_view tag) { return Msg('C', Cstr(tag)); }
inline std::string Error(std::string_view sqlstate, std::string_view message) {
  return Msg('E',
             "SERROR" + std::string(1, '\0') + "C" + Cstr(sqlstate) + "M" + Cstr(message) + '\0');
}
inline std::string ParseComplete() { return Msg('1', ""); }
inline std::string BindComplete() { return Msg('2', ""); }
inline std::string NoData() { return Msg('n', ""); }

}  // namespace zerotrace::protocols::postgres::testing
