// Redis (RESP2/RESP3) as a protocol of the protocol stage: detection on commands, and a
// session per client connection. The server's side of a connection makes no spans: each
// command is one CLIENT span, from the process that sent it.
#pragma once

#include <memory>
#include <string_view>

#include "protocols/protocol.h"
#include "protocols/redis/session.h"

namespace zerotrace::protocols::redis {

// Whether `bytes` start with a command: a RESP array whose first bulk string is a command
// name, or (`inline_ok`) an inline command line naming a known command. `known_only`: the
// name must be in the command table with a fitting arity (mid-stream, where an array reply
// could look like a command).
Verdict DetectCommand(std::string_view bytes, bool inline_ok, bool known_only);

class RedisProtocol final : public Protocol {
 public:
  std::string_view name() const override { return "redis"; }
  Detection DetectStart(const StartBytes& bytes) const override;
  Detection DetectResync(const ResyncBytes& bytes) const override;
  std::unique_ptr<Session> NewSession(const SessionContext& context) override;
  void ReportCounters(CounterReport* report) const override;

  const RedisStats& stats() const { return stats_; }

 private:
  RedisStats stats_;
};

// The registry's entry (protocols/registry.cc).
std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions& options);

}  // namespace zerotrace::protocols::redis
