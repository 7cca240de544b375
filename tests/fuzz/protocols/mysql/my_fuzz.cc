// libFuzzer target for the MySQL session: the input is a schedule of records, each a
// control byte (bit 0: reply direction; bit 1: a gap instead of bytes; bit 2: an Advance after
// it; bit 3: the session began mid-stream, read from the first record only), a 16-bit length
// and the bytes (a gap record: 2 * length + 1 bytes, so that rows longer than any terminator are cut too).
// Checks: no crash, every exchange was started once and finishes once, times in order.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "conn/byte_stream.h"
#include "protocols/mysql/my_session.h"
#include "protocols/mysql/my_wire.h"

namespace zt = zerotrace;
using zt::protocols::CloseReason;
using zt::protocols::SessionOutput;

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

namespace {

struct Checker {
  std::set<uint64_t> open;
  void Take(SessionOutput& out) {
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
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool resynced = size > 0 && (data[0] & 8) != 0;
  zt::trace::ConnEndpoints ends;
  zt::protocols::mysql::MyStats stats;
  zt::protocols::mysql::MySession session({ZT_ROLE_CLIENT, false, &ends}, resynced, &stats);
  zt::conn::ByteStream req(1 << 18), resp(1 << 18);
  uint64_t pos[2] = {0, 0}, ts = 1;
  SessionOutput out;
  Checker check;
  size_t i = 0;
  while (i + 3 <= size) {
    const uint8_t ctl = data[i];
    size_t len = (size_t{data[i + 1]} << 8) | data[i + 2];
    i += 3;
    const int dir = ctl & 1;
    zt::conn::ByteStream& s = dir ? resp : req;
    if (ctl & 2) {
      s.AddGap(pos[dir], len * 2 + 1, ++ts);
      pos[dir] += len * 2 + 1;
    } else {
      len = std::min(len, size - i);
      s.AddData(pos[dir], std::string_view(reinterpret_cast<const char*>(data + i), len), ++ts, 1);
      pos[dir] += len;
      i += len;
    }
    if (ctl & 4) {
      session.Advance(req, resp, ++ts, &out);
      check.Take(out);
    }
  }
  session.Advance(req, resp, ++ts, &out);
  check.Take(out);
  req.DeclareHolesAsGaps();
  resp.DeclareHolesAsGaps();
  session.Close(req, resp, CloseReason::kShutdown, ++ts, &out);
  check.Take(out);
  return 0;
}
