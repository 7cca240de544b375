// HTTP/1.x as a protocol of the protocol stage: detection, and a session per connection that
// pairs requests with responses (Http1Stitcher) and builds each exchange's HTTP half.
#pragma once

#include <memory>
#include <vector>

#include "protocols/http1/span_builder.h"
#include "protocols/http1/types.h"
#include "protocols/protocol.h"

namespace zerotrace::protocols::http1 {

class Http1Protocol final : public Protocol {
 public:
  explicit Http1Protocol(const ProtocolOptions& options);

  std::string_view name() const override { return "http1"; }
  protocols::Detection DetectStart(const StartBytes& bytes) const override;
  protocols::Detection DetectResync(const ResyncBytes& bytes) const override;
  std::unique_ptr<Session> NewSession(const SessionContext& context) override;
  void ReportCounters(CounterReport* report) const override;

  const Http1Stats& stats() const { return stats_; }

 private:
  SpanOptions span_options_;
  // BuildExchange's scratch, reused: sessions run on one thread (the consumer's).
  http_common::HttpSpanFields span_fields_;
  Http1Stats stats_;    // every session's stitcher counts here
  uint64_t conns_ = 0;  // sessions started: connections detected as HTTP/1.x
};

// The registry's entry (protocols/registry.cc).
std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions& options);

}  // namespace zerotrace::protocols::http1
