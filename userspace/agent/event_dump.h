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

class EventDumper : public probes::RecordSink {
 public:
  EventDumper(FILE* out, const WallClock* clock) : out_(out), clock_(clock) {}
  void OnRecord(const void* data, size_t size) override;
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
