// Address formatting with inet_ntop; v4-mapped IPv6 is shown the way users write it.
#include "conn/tuple.h"

#include <arpa/inet.h>
#include <zerotrace/events.h>

#include <cstring>

namespace zerotrace::conn {
namespace {

bool IsV4Mapped(const std::array<uint8_t, 16>& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), kPrefix, sizeof(kPrefix)) == 0;
}

std::string Endpoint(uint16_t family, const std::array<uint8_t, 16>& addr, uint16_t port) {
  std::string host = FormatAddress(family, addr);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

}  // namespace

std::string FormatAddress(uint16_t family, const std::array<uint8_t, 16>& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == ZT_AF_INET) {
    inet_ntop(AF_INET, addr.data(), buf, sizeof(buf));
  } else if (family == ZT_AF_INET6) {
    if (IsV4Mapped(addr)) {
      inet_ntop(AF_INET, addr.data() + 12, buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
    }
  } else {
    return "?";
  }
  return buf;
}

std::string Tuple::LocalAddress() const { return FormatAddress(family, local_addr); }
std::string Tuple::RemoteAddress() const { return FormatAddress(family, remote_addr); }
std::string Tuple::LocalEndpoint() const { return Endpoint(family, local_addr, local_port); }
std::string Tuple::RemoteEndpoint() const { return Endpoint(family, remote_addr, remote_port); }

Tuple Tuple::Mirrored() const {
  Tuple t = *this;
  std::swap(t.local_addr, t.remote_addr);
  std::swap(t.local_port, t.remote_port);
  return t;
}

}  // namespace zerotrace::conn
