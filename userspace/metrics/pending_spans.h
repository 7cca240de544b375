// The service graph's spans waiting for their other side: a table by span id and a FIFO of
// deadlines, both reusing their storage, so that nothing is allocated per span once they have
// grown to the high-water mark.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace zerotrace::metrics {

// Smallest capacity of a PendingTable or DeadlineQueue (a power of two).
inline constexpr size_t kMinPendingCapacity = 64;

// What a table or ring of `capacity` slots holding `used` entries shrinks to: the power of two
// (at least kMinPendingCapacity) that holds them at one in `spread`; 0 (keep it) unless at most
// an eighth of it is used.
inline size_t SparseShrinkTo(size_t capacity, size_t used, size_t spread) {
  if (capacity <= kMinPendingCapacity || 8 * used > capacity) return 0;
  size_t to = kMinPendingCapacity;
  while (to < spread * used) to *= 2;
  return to;
}

// Values by 64-bit id: open addressing with linear probing; an erase shifts the entries after
// it back (no tombstones, so probes stay short however many spans came and went). Grows at
// half full; ShrinkIfSparse gives a burst's room back. Hand-written, not std::unordered_map:
// a heap node per waiting span was measured (docs/PERFORMANCE.md, sixth session). Writer
// thread only.
template <typename V>
class PendingTable {
 public:
  size_t size() const { return size_; }
  size_t capacity() const { return keys_.size(); }

  // Off the hot path (once per tick): after a burst, when at most an eighth of the slots are
  // used, rehashes into a quarter-full table, so that resident memory falls back.
  void ShrinkIfSparse() {
    if (const size_t to = SparseShrinkTo(keys_.size(), size_, 4)) Rehash(to);
  }

  // Hot path. The value stored under `key`, or null. Valid until the next Insert or Erase.
  V* Find(uint64_t key) {
    if (size_ == 0) return nullptr;
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      const Key& k = keys_[i];
      if (!k.used) return nullptr;
      if (k.id == key) return &values_[i];
    }
  }

  // Hot path. Stores `value` under `key` unless the key is there already (then the first
  // stays): returns whether it was stored.
  bool Insert(uint64_t key, V&& value) {
    if (2 * (size_ + 1) > keys_.size()) Grow();
    size_t i = Home(key);
    for (; keys_[i].used; i = (i + 1) & mask_) {
      if (keys_[i].id == key) return false;
    }
    Place(i, key, std::move(value));
    return true;
  }

  // Hot path. Removes the entry whose value Find returned.
  void Erase(V* value) {
    size_t hole = static_cast<size_t>(value - values_.data());
    // Each later entry of the run moves into the hole unless its home lies cyclically in
    // (hole, j]: then the hole is not on its probe path.
    for (size_t j = (hole + 1) & mask_; keys_[j].used; j = (j + 1) & mask_) {
      const size_t home = Home(keys_[j].id);
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        keys_[hole].id = keys_[j].id;
        values_[hole] = std::move(values_[j]);
        hole = j;
      }
    }
    keys_[hole].used = false;
    values_[hole] = V();  // let go of what it holds now, not when the slot is reused
    size_--;
  }

 private:
  struct Key {
    uint64_t id = 0;
    bool used = false;
  };

  // Fibonacci hashing: ids that differ only in low bits (sequential ones) spread too.
  size_t Home(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
  }
  void Place(size_t i, uint64_t key, V&& value) {
    keys_[i] = {key, true};
    values_[i] = std::move(value);
    size_++;
  }

  void Grow() { Rehash(keys_.empty() ? kMinPendingCapacity : 2 * keys_.size()); }
  void Rehash(size_t capacity) {
    std::vector<Key> old_keys = std::move(keys_);
    std::vector<V> old_values = std::move(values_);
    keys_.assign(capacity, Key());
    values_ = std::vector<V>(capacity);
    mask_ = capacity - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(capacity));
    size_ = 0;
    for (size_t j = 0; j < old_keys.size(); j++) {
      if (!old_keys[j].used) continue;
      size_t i = Home(old_keys[j].id);
      while (keys_[i].used) i = (i + 1) & mask_;
      Place(i, old_keys[j].id, std::move(old_values[j]));
    }
  }

  // Parallel arrays, a power of two of entries or none: probes read only the keys.
  std::vector<Key> keys_;
  std::vector<V> values_;
  size_t mask_ = 0, size_ = 0;
  unsigned shift_ = 64;
};

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
    if (const size_t to = SparseShrinkTo(ring_.size(), count_, 2)) Resize(to);
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
