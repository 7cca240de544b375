// HeapTrimmer: malloc_trim after bursts, decided from mallinfo2 and /proc/self/statm.
#include "agent/heap_trim.h"

#include <malloc.h>

#include "agent/self_metrics.h"

namespace zerotrace::agent {

size_t FreeHeapBytes() { return mallinfo2().fordblks; }

bool HeapTrimmer::Tick(uint64_t now_ns) {
  if (now_ns < next_ns_) return false;
  next_ns_ = now_ns + options_.interval_ns;
  if (FreeHeapBytes() < options_.min_free_bytes) return false;
  if (ReadProcessStats().rss_bytes < rss_after_trim_ + options_.min_free_bytes) return false;
  malloc_trim(0);
  rss_after_trim_ = ReadProcessStats().rss_bytes;
  trims_++;
  return true;
}

}  // namespace zerotrace::agent
