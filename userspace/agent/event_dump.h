// --dump-events: one readable line per kernel record, with the connection's tuple and role.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"
#include "conn/tuple.h"
#include "probes/socket_tracer.h"

namespace zerotrace::agent {

// Printable form of raw bytes: \r \n \t \\ \" and \xNN; at most max_bytes input bytes.
std::string EscapeBytes(std::string_view bytes, size_t max_bytes);

// Payload bytes with what a span would not show either replaced by REDACTED: the query values
// and userinfo of request lines ("GET /a?token=x HTTP/1.1") and the values of credential
// headers ("Authorization: Bearer x"). protocols/http1 decides what is secret. Any line that
// looks like one is redacted, wherever it is in the bytes.
std::string RedactPayload(std::string_view bytes);

class EventDumper : public probes::RecordSink {
 public:
  EventDumper(FILE* out, const WallClock* clock) : out_(out), clock_(clock) {}
  void OnRecord(const void* data, size_t size) override;
  // Flushes the output; false once it is gone for good (stdout a pipe whose reader exited):
  // the agent then stops, as any command-line tool does on EPIPE.
  bool Flush();
  uint64_t decode_errors() const { return decode_errors_; }

 private:
  struct Known {
    conn::Tuple tuple;
    uint32_t tgid = 0;
    uint8_t role = 0;
    std::string comm;
  };
  FILE* out_;
  const WallClock* clock_;
  std::unordered_map<uint64_t, Known> conns_;  // conn_id -> what its open event said
  uint64_t decode_errors_ = 0;
};

}  // namespace zerotrace::agent
