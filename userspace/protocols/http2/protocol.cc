// Http2Protocol: detection on the client preface; sessions; counters.
#include "protocols/http2/protocol.h"

#include <algorithm>

namespace zerotrace::protocols::http2 {
namespace {

// The first bytes of `s` agree with the client preface (all of it, or as much as there is).
Verdict MatchPreface(std::string_view s) {
  const size_t n = std::min(s.size(), kClientPreface.size());
  if (s.substr(0, n) != kClientPreface.substr(0, n)) return Verdict::kNo;
  return n == kClientPreface.size() ? Verdict::kYes : Verdict::kMaybe;
}

// `s` is empty or begins like a server's first SETTINGS frame (under 256 bytes of settings,
// no ACK, stream 0), as far as it goes.
bool MaySettings(std::string_view s) {
  static constexpr int kPattern[kFrameHeaderSize] = {0, 0, -1, kSettings, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < s.size() && i < kFrameHeaderSize; i++) {
    if (kPattern[i] >= 0 && static_cast<uint8_t>(s[i]) != kPattern[i]) return false;
  }
  return true;
}

}  // namespace

Verdict LooksLikeFrames(std::string_view b) {
  if (b.size() < kFrameHeaderSize) return Verdict::kMaybe;
  if (!PlausibleFrame(b.data())) return Verdict::kNo;
  const size_t end = kFrameHeaderSize + ParseFrameHeader(b.data()).length;
  if (end == b.size()) return Verdict::kYes;
  if (b.size() < end + kFrameHeaderSize) return Verdict::kMaybe;
  return PlausibleFrame(b.data() + end) ? Verdict::kYes : Verdict::kNo;
}

Http2Protocol::Http2Protocol(const ProtocolOptions& options) {
  shared_.options.infer_routes = options.infer_routes;
}

protocols::Detection Http2Protocol::DetectStart(const StartBytes& b) const {
  if (b.role != ZT_ROLE_CLIENT && b.role != ZT_ROLE_SERVER) {
    const Verdict out = MatchPreface(b.sent), in = MatchPreface(b.received);
    if (out == Verdict::kYes) return {Verdict::kYes, ZT_ROLE_CLIENT};
    if (in == Verdict::kYes) return {Verdict::kYes, ZT_ROLE_SERVER};
    if (out == Verdict::kNo && in == Verdict::kNo) return {};
    return {Verdict::kMaybe, ZT_ROLE_UNKNOWN};
  }
  const std::string_view req = b.role == ZT_ROLE_CLIENT ? b.sent : b.received;
  const std::string_view resp = b.role == ZT_ROLE_CLIENT ? b.received : b.sent;
  if (req.empty()) {
    // A server may send its SETTINGS before the client's preface arrives (or, after an h2c
    // upgrade, right after its 101): wait while what it sent may be one.
    return {MaySettings(resp) ? Verdict::kMaybe : Verdict::kNo, b.role};
  }
  return {MatchPreface(req), b.role};
}

protocols::Detection Http2Protocol::DetectResync(const ResyncBytes& b) const {
  const Verdict v = LooksLikeFrames(b.bytes);
  if (v != Verdict::kYes) return {v, ZT_ROLE_UNKNOWN};
  // Both directions carry frames alike; the kernel's role says which is which, and without it
  // the session (which reports nothing) takes the sender for the client.
  uint8_t role = b.role;
  if (role != ZT_ROLE_CLIENT && role != ZT_ROLE_SERVER) {
    role = b.direction == ZT_DIR_EGRESS ? ZT_ROLE_CLIENT : ZT_ROLE_SERVER;
  }
  return {Verdict::kYes, role};
}

std::unique_ptr<Session> Http2Protocol::NewSession(const SessionContext& context) {
  return std::make_unique<Http2Session>(context, &shared_);
}

void Http2Protocol::ReportCounters(CounterReport* r) const {
  const Http2Stats& h = shared_.stats;
  r->Counter("h2_conns", "zerotrace_http2_conns_total",
             "connections detected as HTTP/2 from their start (every header decoded)", h.conns);
  r->Counter("h2_exchanges", "zerotrace_http2_exchanges_total",
             "HTTP/2 streams reported as exchanges, error exchanges included", h.exchanges);
  r->Counter(nullptr, "zerotrace_http2_grpc_calls_total", "of which gRPC calls", h.grpc_calls);
  r->Counter(nullptr, "zerotrace_http2_streams_total", "request streams whose headers were decoded",
             h.streams);
  r->Counter("h2_table_unknown_conns", "zerotrace_http2_table_unknown_conns_total",
             "HTTP/2 connections found mid-life: HPACK tables unknown, so no spans from them",
             h.conns_table_unknown);
  r->Counter("h2_table_unknown_streams", "zerotrace_http2_table_unknown_streams_total",
             "request streams seen on those connections and dropped", h.streams_table_unknown);
  r->Counter("h2_hpack_lost", "zerotrace_http2_hpack_lost_total",
             "directions whose header decoding stopped (a header block lost, cut or undecodable)",
             h.hpack_lost);
  r->Counter("h2_frames_lost", "zerotrace_http2_frames_lost_total",
             "directions whose frame boundaries were lost to a capture gap", h.frames_lost);
  r->Counter("h2_streams_dropped", "zerotrace_http2_streams_dropped_total",
             "streams dropped because a direction they needed was lost",
             h.streams_dropped + h.streams_over_limit + h.malformed_requests);
  r->Counter(nullptr, "zerotrace_http2_unpaired_responses_total",
             "responses on streams whose request was not seen", h.unpaired_responses);
  r->Counter(nullptr, "zerotrace_http2_upgrade_streams_total",
             "stream 1 after an h2c upgrade (its request is the HTTP/1 span)", h.upgrade_streams);
  r->Counter(nullptr, "zerotrace_http2_resets_total",
             "streams reset before their response ended (error spans)", h.resets);
  r->Counter(nullptr, "zerotrace_http2_refused_total",
             "streams a GOAWAY said were never processed (error spans)", h.refused);
  r->Counter(nullptr, "zerotrace_http2_pushes_total", "server pushes (not reported)", h.pushes);
  r->Counter(nullptr, "zerotrace_http2_timeouts_total", "exchanges emitted with error timeout",
             h.timeouts);
  r->Counter(nullptr, "zerotrace_http2_unfinished_unobserved_total",
             "streams in flight when the agent stopped following their connection",
             h.unfinished_unobserved);
  r->Counter(nullptr, "zerotrace_http2_grpc_counts_uncertain_total",
             "gRPC calls whose message counts are not reported (a prefix fell in a gap)",
             h.grpc_counts_uncertain);
  r->Counter(nullptr, "zerotrace_http2_data_gap_bytes_total",
             "DATA payload bytes not captured (body sizes stay exact)", h.data_gap_bytes);
}

std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions& options) {
  return std::make_unique<Http2Protocol>(options);
}

}  // namespace zerotrace::protocols::http2
