// How a connection ended, as the protocol stage tells a session.
#pragma once

#include <cstdint>

namespace zerotrace::protocols {

// kUnobserved: the agent stopped following the connection (table eviction, idle expiry) or its
// close record was lost: it may still be open, so nothing pending is known to have failed.
// kShutdown: the agent is stopping; requests still waiting become error exchanges
// ("agent_shutdown") rather than vanishing.
enum class CloseReason : uint8_t { kClosed = 0, kReset = 1, kUnobserved = 2, kShutdown = 3 };

}  // namespace zerotrace::protocols
