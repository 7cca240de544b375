// PostgreSQL as a protocol of the protocol stage: detection (client sides only) and sessions.
#include "protocols/protocol.h"

#include <memory>

#include "protocols/postgres/pg_session.h"
#include "protocols/postgres/pg_wire.h"

namespace zerotrace::protocols::postgres {
namespace {

class PgProtocol final : public Protocol {
 public:
  std::string_view name() const override { return "postgresql"; }
  Detection DetectStart(const StartBytes& b) const override {
    const Detection d = DetectPgStart(b);
    if (d.verdict == Verdict::kYes) resync_pending_ = false;
    return d;
  }
  // The stage starts a session right after a yes; that session begins mid-stream.
  Detection DetectResync(const ResyncBytes& b) const override {
    const Detection d = DetectPgResync(b);
    if (d.verdict == Verdict::kYes) resync_pending_ = true;
    return d;
  }
  std::unique_ptr<Session> NewSession(const SessionContext& context) override {
    // Sessions claimed at their start see the startup message first; others a request.
    const bool resynced = resync_pending_;
    resync_pending_ = false;
    return std::make_unique<PgSession>(context, resynced, &stats_);
  }
  void ReportCounters(CounterReport* r) const override {
    const PgStats& s = stats_;
    r->Counter(nullptr, "zerotrace_postgres_conns_total",
               "client connections followed as PostgreSQL", s.conns);
    r->Counter(nullptr, "zerotrace_postgres_resynced_conns_total",
               "PostgreSQL connections followed from a request mid-stream", s.resynced);
    r->Counter("pg_calls", "zerotrace_postgres_calls_total",
               "PostgreSQL queries and executes reported as spans", s.calls);
    r->Counter(nullptr, "zerotrace_postgres_errors_total",
               "PostgreSQL calls answered with an ErrorResponse", s.errors);
    r->Counter("pg_unknown_statements", "zerotrace_postgres_unknown_statements_total",
               "executes of statements prepared before the agent followed the connection "
               "(reported without text)",
               s.unknown_statements);
    r->Counter(nullptr, "zerotrace_postgres_statements_untracked_total",
               "prepared statements not remembered (per-connection cap)", s.statements_untracked);
    r->Counter("pg_dropped", "zerotrace_postgres_dropped_calls_total",
               "PostgreSQL calls dropped because their pairing was uncertain", s.dropped);
    r->Counter(nullptr, "zerotrace_postgres_skipped_calls_total",
               "executes the server skipped after an error earlier in their batch", s.skipped);
    r->Counter("pg_desyncs", "zerotrace_postgres_desyncs_total",
               "PostgreSQL connections whose framing or pairing was lost (no spans after)",
               s.desyncs);
    r->Counter(nullptr, "zerotrace_postgres_tls_total",
               "PostgreSQL connections that switched to TLS (plaintext from the TLS probes)",
               s.tls);
    r->Counter(nullptr, "zerotrace_postgres_auth_failures_total",
               "PostgreSQL startups answered with an error", s.auth_failures);
    r->Counter(nullptr, "zerotrace_postgres_unfinished_total",
               "PostgreSQL calls pending when their connection ended", s.unfinished);
  }

 private:
  PgStats stats_;
  mutable bool resync_pending_ = false;
};

}  // namespace

std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions&) {
  return std::make_unique<PgProtocol>();
}

}  // namespace zerotrace::protocols::postgres
