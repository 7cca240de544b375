// Hands heap memory freed after a burst back to the kernel.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zerotrace::agent {

// Heap bytes the allocator holds free, over all its arenas (glibc's mallinfo2 fordblks); 0
// where the allocator cannot tell (under sanitizers, which bring their own).
size_t FreeHeapBytes();

// glibc keeps what it frees for reuse, so after a burst (10 k connections closing, a backlog
// of spans exported) the agent's RSS would stay at its peak for good. Tick() trims the heap
// (malloc_trim: whole free pages go back to the kernel) when at least `min_free_bytes` of it
// is free and, since the last trim, as much was freed anew or RSS grew by as much: a
// fragmented heap whose free pages are already returned is not walked again and again.
class HeapTrimmer {
 public:
  struct Options {
    size_t min_free_bytes = size_t{8} << 20;
    uint64_t interval_ns = 2'000'000'000;  // how often Tick looks
  };
  HeapTrimmer() : HeapTrimmer(Options()) {}
  explicit HeapTrimmer(Options options) : options_(options) {}

  // From the agent's main loop (monotonic time). True when it trimmed.
  bool Tick(uint64_t now_ns);
  uint64_t trims() const { return trims_; }

 private:
  Options options_;
  uint64_t next_ns_ = 0;
  uint64_t rss_after_trim_ = 0;
  size_t low_free_since_trim_ = 0;
  uint64_t trims_ = 0;
};

}  // namespace zerotrace::agent
