// A TCP connection's addresses as the kernel socket reported them, and their text forms.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace zerotrace::conn {

struct Tuple {
  uint16_t family = 0;  // ZT_AF_INET or ZT_AF_INET6 (0: unknown, open event lost)
  std::array<uint8_t, 16> local_addr{};
  std::array<uint8_t, 16> remote_addr{};
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  uint32_t netns = 0;  // the socket's network namespace inode (0: unknown)

  // "127.0.0.1", "::1"; v4-mapped IPv6 prints as IPv4 ("::ffff:1.2.3.4" -> "1.2.3.4").
  std::string LocalAddress() const;
  std::string RemoteAddress() const;
  // "127.0.0.1:8080", "[::1]:8080".
  std::string LocalEndpoint() const;
  std::string RemoteEndpoint() const;
  // The tuple of the other end of this connection on the same node.
  Tuple Mirrored() const;
  bool operator==(const Tuple&) const = default;
};

std::string FormatAddress(uint16_t family, const std::array<uint8_t, 16>& addr);

}  // namespace zerotrace::conn
