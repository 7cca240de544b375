// The protocol stage: finds which registered protocol each connection speaks, feeds its
// streams to that protocol's session, and turns the exchanges into spans for the linker. It
// knows no protocol by name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/counters.h"
#include "conn/conn_table.h"
#include "protocols/protocol.h"
#include "trace/span.h"
#include "trace/span_linker.h"

namespace zerotrace::protocols {

struct ProtocolStageStats {
  uint64_t conns_claimed = 0;    // connections a protocol claimed
  uint64_t conns_unclaimed = 0;  // connections no protocol claimed (payload muted)
  uint64_t conns_resynced = 0;   // claimed mid-stream: found at a message start after a gap
  // Followed mid-stream, no message start found within the limit: given up (payload muted).
  uint64_t resync_gave_up = 0;
  uint64_t resync_bytes_skipped = 0;  // bytes dropped while looking for a message start
  uint64_t protocol_left = 0;         // sessions whose connection left their protocol (an upgrade)
  uint64_t exchanges = 0;             // exchanges the sessions reported
  uint64_t spans = 0;                 // spans made from them
  uint64_t pending_dropped = 0;       // requests given up because too many were pending on a conn
  uint64_t head_caps_set = 0;         // connections whose responses the kernel copies heads of
  uint64_t head_caps_lifted = 0;      // such caps lifted again (a head did not fit, an upgrade)
};

class ProtocolStage : public conn::ConnObserver {
 public:
  // Requests are reported to `linker` as they start and their spans when they finish. `kernel`
  // (may be null) is told about connections no protocol claims, so that the kernel stops
  // copying their payload.
  ProtocolStage(std::vector<std::unique_ptr<Protocol>> protocols, trace::SpanLinker* linker,
                const WallClock* clock, std::vector<trace::ResourceAttribute> resource_extra,
                conn::KernelConnState* kernel = nullptr);
  ~ProtocolStage() override;

  void OnData(conn::Connection& c, const conn::DataChunk& chunk) override;
  void OnStreamsReplaced(conn::Connection& c) override;
  void OnClose(conn::Connection& c, conn::CloseCause cause) override;
  // Requests unanswered for too long become error spans (call about once a second).
  void Expire(conn::ConnTable& table, uint64_t now_ns);

  // The stage's counters and every protocol's.
  void ReportCounters(CounterReport* report) const;
  const ProtocolStageStats& stats() const { return stats_; }
  const std::vector<std::unique_ptr<Protocol>>& protocols() const { return protocols_; }

 private:
  struct ConnState;
  ConnState& StateOf(conn::Connection& c);
  void DetectAtStart(conn::Connection& c, ConnState& s, uint64_t ts_ns);
  void Resync(conn::Connection& c, ConnState& s, const conn::DataChunk& chunk);
  // Counts one failed resync try; gives the connection up (muted, counted) after too many.
  bool GiveUpAfterTry(conn::Connection& c, ConnState& s);
  void Claim(conn::Connection& c, ConnState& s, Protocol* p, uint8_t role, bool mid_stream);
  void Mute(conn::Connection& c, ConnState& s);
  void Advance(conn::Connection& c, ConnState& s, uint64_t now_ns);
  // Tells the kernel the head cap the session asked for (0: none), if it changed.
  void SetHeadCap(conn::Connection& c, ConnState& s, uint32_t cap);
  // Hands what the session reported to the linker: starts first, then finished exchanges.
  void Apply(conn::Connection& c, ConnState& s, uint64_t now_ns);
  // `served_port`: the local port of a server connection (0 for a client's), for the name
  // map's port rules.
  std::shared_ptr<const trace::Resource> ResourceOf(const conn::Connection& c,
                                                    uint16_t served_port);

  std::vector<std::unique_ptr<Protocol>> protocols_;
  trace::SpanLinker* linker_;
  const WallClock* clock_;
  conn::KernelConnState* kernel_;
  std::vector<trace::ResourceAttribute> resource_extra_;
  std::string host_name_;
  std::unordered_map<uint32_t, std::shared_ptr<const trace::Resource>> resources_;
  SessionOutput out_;  // reused by every session call
  ProtocolStageStats stats_;
};

}  // namespace zerotrace::protocols
