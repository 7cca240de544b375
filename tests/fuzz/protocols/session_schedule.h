// A fuzzed schedule of records driving one protocol session, shared by the session fuzz targets.
// The input is a list of records, each a control byte (bit 0: reply direction; bit 1: a gap
// instead of bytes; bit 2: an Advance after it; bit 3: the session began mid-stream, read from
// the first record only), a 16-bit length and the bytes. Checks: no crash, every exchange was
// started once and finishes once, its times in order, and it has a span name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>

#include "conn/byte_stream.h"
#include "protocols/protocol.h"

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

namespace zerotrace::fuzz {

// Whether the schedule says the session began mid-stream (bit 3 of its first control byte).
inline bool ScheduleStartsMidStream(const uint8_t* data, size_t size) {
  return size > 0 && (data[0] & 8) != 0;
}

// Feeds the schedule to `session` on two streams of `stream_bytes` each; a gap record of
// length field `len` is `gap_length(len)` bytes long.
template <typename SessionT, typename GapLength>
void RunSessionSchedule(SessionT& session, const uint8_t* data, size_t size, size_t stream_bytes,
                        GapLength gap_length) {
  conn::ByteStream req(stream_bytes), resp(stream_bytes);
  uint64_t pos[2] = {0, 0}, ts = 1;
  protocols::SessionOutput out;
  std::set<uint64_t> open;
  auto take = [&] {
    for (size_t i = 0; i < out.starts(); i++) {
      FUZZ_CHECK(out.start(i).id != 0);
      FUZZ_CHECK(open.insert(out.start(i).id).second);
    }
    for (size_t i = 0; i < out.exchanges(); i++) {
      const auto& x = out.exchange(i);
      FUZZ_CHECK(open.erase(x.id) == 1);
      FUZZ_CHECK(x.end_ns >= x.start_ns);
      FUZZ_CHECK(!x.span.name.empty());
    }
    out.Clear();
  };
  size_t i = 0;
  while (i + 3 <= size) {
    const uint8_t ctl = data[i];
    size_t len = (size_t{data[i + 1]} << 8) | data[i + 2];
    i += 3;
    const int dir = ctl & 1;
    conn::ByteStream& s = dir ? resp : req;
    if (ctl & 2) {
      const uint64_t gap = gap_length(len);
      s.AddGap(pos[dir], gap, ++ts);
      pos[dir] += gap;
    } else {
      len = std::min(len, size - i);
      s.AddData(pos[dir], std::string_view(reinterpret_cast<const char*>(data + i), len), ++ts, 1);
      pos[dir] += len;
      i += len;
    }
    if (ctl & 4) {
      session.Advance(req, resp, ++ts, &out);
      take();
    }
  }
  session.Advance(req, resp, ++ts, &out);
  take();
  req.DeclareHolesAsGaps();
  resp.DeclareHolesAsGaps();
  session.Close(req, resp, protocols::CloseReason::kShutdown, ++ts, &out);
  take();
}

}  // namespace zerotrace::fuzz
