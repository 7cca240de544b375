// HTTP/2 (and gRPC over it) as a protocol of the protocol stage: detection on the client
// preface (prior knowledge, TLS with ALPN h2, or after an h2c upgrade), and a session per
// connection (Http2Session).
#pragma once

#include <memory>

#include "protocols/http2/session.h"
#include "protocols/protocol.h"

namespace zerotrace::protocols::http2 {

class Http2Protocol final : public Protocol {
 public:
  explicit Http2Protocol(const ProtocolOptions& options);

  std::string_view name() const override { return "http2"; }
  // Yes when the client-to-server stream begins with the client preface.
  protocols::Detection DetectStart(const StartBytes& bytes) const override;
  // Mid-stream, a syscall that begins with two plausible frames (or one that ends exactly where
  // the bytes do): claimed with a session that counts streams and decodes nothing, since the
  // HPACK tables are unknown (Http2Session::Mode::kTableUnknown).
  protocols::Detection DetectResync(const ResyncBytes& bytes) const override;
  std::unique_ptr<Session> NewSession(const SessionContext& context) override;
  void ReportCounters(CounterReport* report) const override;

  const Http2Stats& stats() const { return shared_.stats; }

 private:
  SessionShared shared_;
};

// Whether `bytes` (a syscall's first bytes) begin with HTTP/2 frames, as far as can be told
// without any state: kMaybe while fewer than a frame header.
Verdict LooksLikeFrames(std::string_view bytes);

// The registry's entry (protocols/registry.cc).
std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions& options);

}  // namespace zerotrace::protocols::http2
