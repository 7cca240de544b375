// HeapTrimmer: malloc_trim after bursts, decided from mallinfo2 and /proc/self/statm.
#include "agent/heap_trim.h"

#include <malloc.h>

#include <algorithm>

#include "agent/self_metrics.h"

namespace zerotrace::agent {

size_t FreeHeapBytes() { return mallinfo2().fordblks; }

bool HeapTrimmer::Tick(uint64_t now_ns) {
  if (now_ns < next_ns_) return false;
  next_ns_ = now_ns + options_.interval_ns;
  const size_t free_bytes = FreeHeapBytes();
  // Memory reused since the last trim lowers the mark, so that freeing it again counts.
  low_free_since_trim_ = std::min(low_free_since_trim_, free_bytes);
  if (free_bytes < options_.min_free_bytes) return false;
  // New free memory (its pages were in use), or pages of returned free memory in use again.
  const bool freed = free_bytes >= low_free_since_trim_ + options_.min_free_bytes;
  const uint64_t rss = ReadProcessStats().rss_bytes;
  if (!freed && rss < rss_after_trim_ + options_.min_free_bytes) return false;
  malloc_trim(0);
  rss_after_trim_ = ReadProcessStats().rss_bytes;
  low_free_since_trim_ = FreeHeapBytes();
  trims_++;
  return true;
}

}  // namespace zerotrace::agent
