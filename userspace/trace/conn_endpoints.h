// The two ends of a span's connection as the reporting process sees them, formatted once per
// connection, and the protocol-neutral attributes made from them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "trace/attribute_writer.h"
#include "trace/span.h"

namespace zerotrace::trace {

struct ConnEndpoints {
  bool known = false;   // the tuple is known (the connection's open event arrived)
  bool server = false;  // the reporting process accepted the connection
  std::string local_address, remote_address;  // "127.0.0.1", "::1"
  uint16_t local_port = 0, remote_port = 0;

  std::string_view server_address() const { return server ? local_address : remote_address; }
  uint16_t server_port() const { return server ? local_port : remote_port; }
};

// server.address and server.port from the tuple, unless the protocol already set them from
// what the client asked for (an HTTP Host); network.peer.address and network.peer.port.
void AddEndpointAttributes(const ConnEndpoints& e, AttributeWriter* w);

// The protocol-neutral half of a span whose protocol half (name, attributes, status) is in
// *span already: kind, wall-clock times of the monotonic [start_ns, end_ns], the endpoint
// attributes, the resource. Ids are cleared: the linker assigns them.
void FrameSpan(uint64_t start_ns, uint64_t end_ns, const ConnEndpoints& e, const WallClock& clock,
               const std::shared_ptr<const Resource>& resource, Span* span);

}  // namespace zerotrace::trace
