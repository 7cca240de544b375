// libFuzzer target for the MySQL session, over a fuzzed schedule of records (see
// ../session_schedule.h for the input format and the checks). A gap record is 2 * length + 1
// bytes, so that rows longer than any terminator are cut too. Bit 4 of the first control byte
// makes the streams TLS plaintext (the session starts at the handshake response).
#include "../session_schedule.h"
#include "protocols/mysql/my_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace zt = zerotrace;
  zt::trace::ConnEndpoints ends;
  zt::protocols::mysql::MyStats stats;
  zt::protocols::mysql::MyTlsHandoff handoff;
  const bool tls = size > 0 && (data[0] & 16) != 0;
  zt::protocols::mysql::MySession session({ZT_ROLE_CLIENT, tls, &ends},
                                          zt::fuzz::ScheduleStartsMidStream(data, size), &stats,
                                          &handoff);
  zt::fuzz::RunSessionSchedule(session, data, size, 1 << 18,
                               [](size_t len) { return uint64_t{len * 2 + 1}; });
  return 0;
}
