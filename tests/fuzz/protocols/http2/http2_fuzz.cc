// libFuzzer harness: HTTP/2 bytes (the input, split into a client and a server direction by
// its own bytes) go through detection, the frame reader, HPACK and the session, in chunks,
// with capture gaps, then Close. Checks: no crash or sanitizer report, every exchange names a
// request that was reported started, at most once, and nothing is left open after Close.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "conn/byte_stream.h"
#include "protocols/http2/protocol.h"
#include "protocols/http2/session.h"
#include "trace/conn_endpoints.h"

namespace zt = zerotrace;
using zt::protocols::http2::Http2Session;
using zt::protocols::http2::kClientPreface;

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "check failed: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const uint8_t role = fdp.ConsumeBool() ? ZT_ROLE_CLIENT : ZT_ROLE_SERVER;
  const bool preface = fdp.ConsumeBool();
  zt::trace::ConnEndpoints ends;
  ends.known = true;
  ends.server = role == ZT_ROLE_SERVER;
  ends.local_address = "127.0.0.1";
  ends.remote_address = "127.0.0.2";
  ends.local_port = 8080;
  ends.remote_port = 40000;
  zt::protocols::http2::Http2Protocol protocol({});
  zt::protocols::SessionContext ctx{role, fdp.ConsumeBool(), &ends};
  auto session = protocol.NewSession(ctx);
  zt::conn::ByteStream req, resp;
  uint64_t pos[2] = {0, 0};
  uint64_t ts = 1;
  if (preface) {
    req.AddData(0, kClientPreface, ts);
    pos[0] = kClientPreface.size();
  }
  zt::protocols::SessionOutput out;
  std::set<uint64_t> started, finished;
  auto collect = [&] {
    for (size_t i = 0; i < out.starts(); i++) {
      Check(started.insert(out.start(i).id).second, "a request started twice");
    }
    for (size_t i = 0; i < out.exchanges(); i++) {
      const auto& x = out.exchange(i);
      Check(x.id == 0 || started.count(x.id) == 1, "an exchange of a request never started");
      Check(x.id == 0 || finished.insert(x.id).second, "an exchange reported twice");
      Check(x.end_ns >= x.start_ns, "an exchange ends before it starts");
    }
    out.Clear();
  };
  while (fdp.remaining_bytes() > 0) {
    const int dir = fdp.ConsumeBool() ? 1 : 0;
    zt::conn::ByteStream& s = dir == 0 ? req : resp;
    ts += fdp.ConsumeIntegralInRange<uint64_t>(0, 400'000'000);
    const uint32_t tid = fdp.ConsumeIntegralInRange<uint32_t>(1, 4);
    if (fdp.ConsumeIntegralInRange<int>(0, 15) == 0) {  // bytes the kernel did not capture
      const uint64_t n = fdp.ConsumeIntegralInRange<uint64_t>(1, 70000);
      s.AddGap(pos[dir], n, ts, tid);
      pos[dir] += n;
    } else {
      const std::string bytes =
          fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<size_t>(1, 600));
      s.AddData(pos[dir], bytes, ts, tid);
      pos[dir] += bytes.size();
      (void)protocol.DetectResync({bytes, static_cast<uint8_t>(dir), role});
    }
    session->Advance(req, resp, ts, &out);
    collect();
    if (fdp.ConsumeIntegralInRange<int>(0, 31) == 0) {
      session->Expire(ts + 31'000'000'000ULL, &out);
      collect();
    }
  }
  req.DeclareHolesAsGaps();
  resp.DeclareHolesAsGaps();
  session->Close(req, resp, zt::protocols::CloseReason::kShutdown, ts + 1, &out);
  collect();
  Check(static_cast<Http2Session*>(session.get())->open_streams() == 0, "streams left open");
  return 0;
}
