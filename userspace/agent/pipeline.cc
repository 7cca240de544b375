// ConnSummaryPrinter: the interim default output (bytes per connection, both directions).
#include "agent/pipeline.h"

namespace zerotrace::agent {

void ConnSummaryPrinter::OnClose(conn::Connection& c, conn::CloseCause cause) {
  if (c.sent.end_pos() == 0 && c.received.end_pos() == 0) return;  // nothing moved
  const char* role = c.role == ZT_ROLE_CLIENT   ? "client"
                     : c.role == ZT_ROLE_SERVER ? "server"
                                                : "unknown";
  const double ms = (c.last_ts_ns - c.open_ts_ns) / 1e6;
  std::fprintf(out_, "%s %-16s pid=%-7u %-7s %s -> %s sent=%llu received=%llu %.3fms (%s)\n",
               WallClock::FormatTimeOfDay(clock_->ToUnixNs(c.last_ts_ns)).c_str(),
               c.process.service_name.empty() ? c.comm.c_str() : c.process.service_name.c_str(),
               c.tgid, role, c.tuple.LocalEndpoint().c_str(), c.tuple.RemoteEndpoint().c_str(),
               static_cast<unsigned long long>(c.sent.end_pos()),
               static_cast<unsigned long long>(c.received.end_pos()), ms,
               conn::CloseCauseName(cause));
}

}  // namespace zerotrace::agent
