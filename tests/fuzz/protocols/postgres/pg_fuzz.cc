// libFuzzer target for the PostgreSQL session, over a fuzzed schedule of records (see
// ../session_schedule.h for the input format and the checks). Gaps are up to 5000 bytes.
#include "../session_schedule.h"
#include "protocols/postgres/pg_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace zt = zerotrace;
  zt::trace::ConnEndpoints ends;
  zt::protocols::postgres::PgStats stats;
  zt::protocols::postgres::PgSession session({ZT_ROLE_CLIENT, false, &ends},
                                             zt::fuzz::ScheduleStartsMidStream(data, size), &stats);
  zt::fuzz::RunSessionSchedule(session, data, size, 1 << 16,
                               [](size_t len) { return uint64_t{len % 5000 + 1}; });
  return 0;
}
