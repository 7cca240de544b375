// The protocol stage's observer: detects HTTP/1.x per connection, feeds each HTTP
// connection's streams to its stitcher and turns finished exchanges into spans.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "conn/conn_table.h"
#include "protocols/http1/span_builder.h"
#include "protocols/http1/stitcher.h"
#include "trace/span.h"
#include "trace/span_linker.h"

namespace zerotrace::agent {

struct HttpSpanStats {
  uint64_t conns_http = 0;      // connections detected as HTTP/1.x
  uint64_t conns_not_http = 0;  // connections that stopped costing parse time
  uint64_t spans = 0;
  uint64_t tunneled = 0;  // upgrades/CONNECT that ended parsing
};

class HttpSpanProducer : public conn::ConnObserver, protocols::http1::RequestListener {
 public:
  // Requests are reported to `linker` as they start and their spans when they finish.
  // `kernel` (may be null) is told about connections that carry no HTTP, so that the kernel
  // side stops copying their payload.
  HttpSpanProducer(trace::SpanLinker* linker, const WallClock* clock,
                   protocols::http1::SpanOptions options,
                   std::vector<trace::ResourceAttribute> resource_extra,
                   conn::KernelConnState* kernel = nullptr);

  void OnData(conn::Connection& c, uint8_t direction, uint64_t ts_ns) override;
  void OnStreamsReplaced(conn::Connection& c) override;
  void OnClose(conn::Connection& c, conn::CloseCause cause) override;
  // Requests unanswered for longer than the timeout become error spans (call ~1/s).
  void Expire(conn::ConnTable& table, uint64_t now_ns);

  const HttpSpanStats& stats() const { return stats_; }
  const protocols::http1::Http1Stats& http1_stats() const { return http1_stats_; }

 private:
  struct Session;
  Session* SessionOf(conn::Connection& c);
  bool Detect(conn::Connection& c, Session& s);
  void Emit(conn::Connection& c, Session& s, uint64_t finished_ns);
  void OnRequestStart(uint64_t seq, const protocols::http1::HttpRequest& req) override;
  // The connection whose stitcher runs now (the listener's context).
  void Enter(conn::Connection& c, Session& s, uint64_t ts_ns);
  std::shared_ptr<const trace::Resource> ResourceOf(const conn::Connection& c,
                                                    uint16_t served_port);

  trace::SpanLinker* linker_;
  conn::Connection* cur_conn_ = nullptr;
  Session* cur_session_ = nullptr;
  uint64_t cur_ts_ns_ = 0;
  const WallClock* clock_;
  conn::KernelConnState* kernel_;
  protocols::http1::SpanOptions options_;
  std::vector<trace::ResourceAttribute> resource_extra_;
  std::string host_name_;
  std::unordered_map<uint32_t, std::shared_ptr<const trace::Resource>> resources_;
  std::vector<protocols::http1::HttpExchange> exchanges_;  // reused per call
  protocols::http1::Http1Stats http1_stats_;
  HttpSpanStats stats_;
};

}  // namespace zerotrace::agent
