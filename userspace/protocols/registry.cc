// The registry: adding a protocol is one folder under protocols/ (whose CMakeLists.txt calls
// zt_protocol()) and one line in this list. Each folder defines
// zerotrace::protocols::<name>::MakeProtocol(const ProtocolOptions&).
#include "protocols/registry.h"

// Detection order: the first protocol that claims a connection gets it. HTTP/2 goes first:
// its client preface ("PRI * HTTP/2.0") is also a well-formed HTTP/1 request line.
#define ZT_REGISTERED_PROTOCOLS(X) X(http2) X(http1) X(redis) X(postgres) X(mysql)

namespace zerotrace::protocols {

#define ZT_DECLARE_PROTOCOL(name)                                         \
  namespace name {                                                        \
  std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions& options); \
  }
ZT_REGISTERED_PROTOCOLS(ZT_DECLARE_PROTOCOL)
#undef ZT_DECLARE_PROTOCOL

std::vector<std::unique_ptr<Protocol>> MakeRegisteredProtocols(const ProtocolOptions& options) {
  std::vector<std::unique_ptr<Protocol>> out;
#define ZT_MAKE_PROTOCOL(name) out.push_back(name::MakeProtocol(options));
  ZT_REGISTERED_PROTOCOLS(ZT_MAKE_PROTOCOL)
#undef ZT_MAKE_PROTOCOL
  return out;
}

}  // namespace zerotrace::protocols
