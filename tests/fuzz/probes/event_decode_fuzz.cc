// libFuzzer target for ring-buffer records as userspace reads them: a record of any bytes is
// decoded, and the payload a decoded data record names must lie inside that record.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "probes/event_decode.h"

using namespace zerotrace::probes;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Records are 8-byte aligned in the ring: so is this copy.
  std::vector<uint64_t> aligned((size + 7) / 8);
  if (size > 0) __builtin_memcpy(aligned.data(), data, size);
  const auto* record = reinterpret_cast<const char*>(aligned.data());
  EventView v;
  if (DecodeEvent(record, size, &v) != DecodeError::kNone || v.data == nullptr) return 0;
  if (v.payload.data() < record || v.payload.data() + v.payload.size() > record + size) abort();
  return 0;
}
