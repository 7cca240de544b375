// IdMap: heap objects owned by a 64-bit id, in one flat array (the connection table's index).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace zerotrace::conn {

// Owned objects by 64-bit id: open addressing with linear probing over slots of (id, owner),
// so that a lookup reads one slot (the id and the pointer share it) and then the object; an
// erase shifts the entries after it back (no tombstones). Grows at half full; ShrinkIfSparse
// gives a burst's room back. Hand-written, not std::unordered_map<uint64_t, unique_ptr<T>>:
// its find walks bucket -> node before -> node -> object, on every ring-buffer record. Measured
// (docs/PERFORMANCE.md, seventh session): BM_StageConn -13-18 % (-8 ns per span); in place the
// lookup's share of the consumer thread 2.77 % -> 1.99 %. One thread only.
template <typename T>
class IdMap {
 public:
  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

  // Hot path. The object under `id`, or null.
  T* Find(uint64_t id) const {
    if (size_ == 0) return nullptr;
    for (size_t i = Home(id);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.owner) return nullptr;
      if (s.id == id) return s.owner.get();
    }
  }

  // Stores `object` (not null) under `id`, replacing (and freeing) one stored there before.
  T& Insert(uint64_t id, std::unique_ptr<T> object) {
    if (2 * (size_ + 1) > slots_.size()) Rehash(slots_.empty() ? kMinCapacity : 2 * slots_.size());
    size_t i = Home(id);
    for (; slots_[i].owner; i = (i + 1) & mask_) {
      if (slots_[i].id == id) {
        slots_[i].owner = std::move(object);
        return *slots_[i].owner;
      }
    }
    slots_[i].id = id;
    slots_[i].owner = std::move(object);
    size_++;
    return *slots_[i].owner;
  }

  // Removes the object under `id` and hands it over (null: none was there).
  std::unique_ptr<T> Erase(uint64_t id) {
    if (size_ == 0) return nullptr;
    size_t hole = Home(id);
    for (;; hole = (hole + 1) & mask_) {
      if (!slots_[hole].owner) return nullptr;
      if (slots_[hole].id == id) break;
    }
    std::unique_ptr<T> out = std::move(slots_[hole].owner);
    // Each later entry of the run moves into the hole unless its home lies cyclically in
    // (hole, j]: then the hole is not on its probe path.
    for (size_t j = (hole + 1) & mask_; slots_[j].owner; j = (j + 1) & mask_) {
      const size_t home = Home(slots_[j].id);
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        slots_[hole] = std::move(slots_[j]);
        hole = j;
      }
    }
    slots_[hole].owner.reset();
    size_--;
    return out;
  }

  // Calls fn(id, object) on every entry; fn must not insert or erase.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Slot& s : slots_) {
      if (s.owner) fn(s.id, *s.owner);
    }
  }

  // Off the hot path: when at most an eighth of the slots are used, rehashes into a
  // quarter-full array, so that a burst's room goes back.
  void ShrinkIfSparse() {
    if (slots_.size() <= kMinCapacity || 8 * size_ > slots_.size()) return;
    size_t to = kMinCapacity;
    while (to < 4 * size_) to *= 2;
    Rehash(to);
  }

 private:
  static constexpr size_t kMinCapacity = 64;  // a power of two

  struct Slot {
    uint64_t id = 0;
    std::unique_ptr<T> owner;  // null: the slot is free
  };

  // Fibonacci hashing: ids that differ only in low bits (the kernel counts them) spread too.
  size_t Home(uint64_t id) const {
    return static_cast<size_t>((id * 0x9E3779B97F4A7C15ULL) >> shift_);
  }

  void Rehash(size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_ = std::vector<Slot>(capacity);
    mask_ = capacity - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(capacity));
    for (Slot& s : old) {
      if (!s.owner) continue;
      size_t i = Home(s.id);
      while (slots_[i].owner) i = (i + 1) & mask_;
      slots_[i] = std::move(s);
    }
  }

  std::vector<Slot> slots_;  // a power of two of them, or none
  size_t mask_ = 0, size_ = 0;
  unsigned shift_ = 64;
};

}  // namespace zerotrace::conn
