// MySQL/MariaDB as a protocol of the protocol stage: detection (client sides only), sessions.
#include <memory>

#include "protocols/mysql/my_session.h"
#include "protocols/mysql/my_wire.h"

namespace zerotrace::protocols::mysql {
namespace {

class MyProtocol final : public Protocol {
 public:
  std::string_view name() const override { return "mysql"; }
  Detection DetectStart(const StartBytes& b) const override {
    const Detection d = DetectMyStart(b);
    if (d.verdict == Verdict::kYes) resync_pending_ = false;
    return d;
  }
  // The stage starts a session right after a yes; that session begins mid-stream.
  Detection DetectResync(const ResyncBytes& b) const override {
    const Detection d = DetectMyResync(b);
    if (d.verdict == Verdict::kYes) resync_pending_ = true;
    return d;
  }
  std::unique_ptr<Session> NewSession(const SessionContext& context) override {
    const bool resynced = resync_pending_;
    resync_pending_ = false;
    return std::make_unique<MySession>(context, resynced, &stats_, &tls_handoff_);
  }
  void ReportCounters(CounterReport* r) const override {
    const MyStats& s = stats_;
    r->Counter(nullptr, "zerotrace_mysql_conns_total",
               "client connections followed as MySQL/MariaDB", s.conns);
    r->Counter(nullptr, "zerotrace_mysql_resynced_conns_total",
               "MySQL connections followed from a command mid-stream", s.resynced);
    r->Counter("mysql_calls", "zerotrace_mysql_calls_total",
               "MySQL queries and statement executions reported as spans", s.calls);
    r->Counter(nullptr, "zerotrace_mysql_errors_total", "MySQL calls answered with ERR", s.errors);
    r->Counter("mysql_unknown_statements", "zerotrace_mysql_unknown_statements_total",
               "executions of statements prepared before the agent followed the connection",
               s.unknown_statements);
    r->Counter("mysql_dropped", "zerotrace_mysql_dropped_calls_total",
               "MySQL calls dropped because their pairing was uncertain", s.dropped);
    r->Counter("mysql_desyncs", "zerotrace_mysql_desyncs_total",
               "MySQL connections whose framing or pairing was lost (no spans after)", s.desyncs);
    r->Counter(nullptr, "zerotrace_mysql_tls_total",
               "MySQL connections that switched to TLS (plaintext from the TLS probes)", s.tls);
    r->Counter(nullptr, "zerotrace_mysql_auth_failures_total", "MySQL handshakes answered with ERR",
               s.auth_failures);
    r->Counter(nullptr, "zerotrace_mysql_unfinished_total",
               "MySQL calls pending when their connection ended", s.unfinished);
  }

 private:
  MyStats stats_;
  MyTlsHandoff tls_handoff_;
  mutable bool resync_pending_ = false;
};

}  // namespace

std::unique_ptr<Protocol> MakeProtocol(const ProtocolOptions&) {
  return std::make_unique<MyProtocol>();
}

}  // namespace zerotrace::protocols::mysql
