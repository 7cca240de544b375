// The service graph's spans waiting for their other side: the FIFO of their deadlines (the
// spans themselves wait in U64Tables by span id), reusing its storage, so that nothing is
// allocated per span once it has grown to the high-water mark.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "base/u64_table.h"

namespace zerotrace::metrics {

// Smallest capacity of the service graph's pending span tables (U64Table) and of a
// DeadlineQueue (a power of two).
inline constexpr size_t kMinPendingCapacity = 64;

// (deadline, id) in arrival order: a ring that doubles when full; ShrinkIfSparse gives a
// burst's room back.
class DeadlineQueue {
 public:
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  size_t capacity() const { return ring_.size(); }
  // Off the hot path: when at most an eighth of the ring is used, halves it down to twice what
  // it holds.
  void ShrinkIfSparse() {
    if (const size_t to = SparseShrinkTo(ring_.size(), count_, 2, kMinPendingCapacity)) Resize(to);
  }
  const std::pair<uint64_t, uint64_t>& front() const { return ring_[head_]; }
  void pop_front() {
    head_ = (head_ + 1) & (ring_.size() - 1);
    count_--;
  }
  void push_back(uint64_t deadline_ns, uint64_t id) {
    if (count_ == ring_.size()) Grow();
    ring_[(head_ + count_) & (ring_.size() - 1)] = {deadline_ns, id};
    count_++;
  }

 private:
  void Grow() { Resize(ring_.empty() ? kMinPendingCapacity : 2 * ring_.size()); }
  void Resize(size_t capacity) {
    std::vector<std::pair<uint64_t, uint64_t>> next(capacity);
    for (size_t i = 0; i < count_; i++) next[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_ = std::move(next);
    head_ = 0;
  }

  std::vector<std::pair<uint64_t, uint64_t>> ring_;  // a power of two of them, or none
  size_t head_ = 0, count_ = 0;
};

}  // namespace zerotrace::metrics
