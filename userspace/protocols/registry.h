// The protocol registry: every protocol the agent parses, in detection order.
#pragma once

#include <memory>
#include <vector>

#include "protocols/protocol.h"

namespace zerotrace::protocols {

// One instance of every registered protocol. Detection asks them in this order; the first
// that claims a connection gets it.
std::vector<std::unique_ptr<Protocol>> MakeRegisteredProtocols(const ProtocolOptions& options);

}  // namespace zerotrace::protocols
