// U64Table: values by 64-bit key in one flat array (the connection table's index, the service
// graph's waiting spans), and the shrink rule it shares with other power-of-two storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace zerotrace {

// What a table or ring of `capacity` slots holding `used` entries shrinks to: the power of two
// (at least `min_capacity`) that holds them at one in `spread`; 0 (keep it) unless at most an
// eighth of it is used.
inline size_t SparseShrinkTo(size_t capacity, size_t used, size_t spread, size_t min_capacity) {
  if (capacity <= min_capacity || 8 * used > capacity) return 0;
  size_t to = min_capacity;
  while (to < spread * used) to *= 2;
  return to;
}

namespace u64_table_internal {

// A slot holds the key and its value side by side, so that a lookup reads one slot; a flag
// marks it taken.
template <typename V>
struct Slot {
  uint64_t key = 0;
  bool used = false;
  V value{};
  bool taken() const { return used; }
  void Mark(bool taken) { used = taken; }
};

// An owning pointer marks its own slot (null: free), so that a slot is 16 bytes.
template <typename T>
struct Slot<std::unique_ptr<T>> {
  uint64_t key = 0;
  std::unique_ptr<T> value;
  bool taken() const { return value != nullptr; }
  void Mark(bool) {}
};

template <typename V>
inline constexpr bool kIsUniquePtr = false;
template <typename T>
inline constexpr bool kIsUniquePtr<std::unique_ptr<T>> = true;

}  // namespace u64_table_internal

// Values by 64-bit key: open addressing with linear probing over slots of (key, value); an
// erase shifts the entries after it back (no tombstones, so probes stay short however many
// keys came and went). Grows at half full; ShrinkIfSparse gives a burst's room back (never
// below kMinCapacity slots, a power of two). With V = std::unique_ptr<T> the table owns heap
// objects that never move, and a null pointer cannot be stored (null marks a free slot).
// Two ways to insert: InsertOrReplace (the last value stays) and InsertIfAbsent (the first
// stays); two ways to erase: Take (by key, the value handed over) and Erase (by the pointer
// Find returned). One thread only.
// Hand-written, not std::unordered_map: its find walks bucket -> node before -> node -> value
// and it allocates a node per entry. Measured (docs/PERFORMANCE.md): the connection lookup,
// BM_StageConn -13-18 % (-8 ns per span), in place its share of the consumer thread 2.77 % ->
// 1.99 % (seventh session); the service graph, no heap node per waiting span (sixth session).
template <typename V, size_t kMinCapacity = 64>
class U64Table {
  static_assert(kMinCapacity > 0 && (kMinCapacity & (kMinCapacity - 1)) == 0,
                "kMinCapacity is a power of two");

 public:
  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }

  // Hot path. The value under `key`, or null. Valid until the next insert, erase or shrink.
  V* Find(uint64_t key) { return const_cast<V*>(std::as_const(*this).Find(key)); }
  const V* Find(uint64_t key) const {
    return Lookup<const V*>(key, [](const Slot& s) { return &s.value; });
  }

  // Hot path, owning tables (V = std::unique_ptr<T>) only: the object under `key`, or null.
  // Returns the pointer the probe has just read as the slot's mark: through Find, GCC 12 loads
  // it again on a hit (objdump of ConnTable::Find).
  auto FindObject(uint64_t key) const requires u64_table_internal::kIsUniquePtr<V> {
    return Lookup<typename V::pointer>(key, [](const Slot& s) { return s.value.get(); });
  }

  // Hot path. Stores `value` under `key`, replacing (and destroying) one stored there before;
  // returns the stored value.
  V& InsertOrReplace(uint64_t key, V&& value) {
    Slot& s = SlotFor(key);
    if (s.taken()) {
      s.value = std::move(value);
    } else {
      Place(s, key, std::move(value));
    }
    return s.value;
  }

  // Hot path. Stores `value` under `key` unless the key is there already (then the first
  // stays): returns whether it was stored.
  bool InsertIfAbsent(uint64_t key, V&& value) {
    Slot& s = SlotFor(key);
    if (s.taken()) return false;
    Place(s, key, std::move(value));
    return true;
  }

  // Removes the entry under `key` and hands its value over (V() when none was there).
  V Take(uint64_t key) {
    if (size_ == 0) return V();
    const size_t i = Probe(key);
    if (!slots_[i].taken()) return V();
    V out = std::move(slots_[i].value);
    EraseAt(i);
    return out;
  }

  // Hot path. Removes the entry whose value Find (or an insert) returned.
  void Erase(V* value) {
    const auto offset =
        reinterpret_cast<const char*>(value) - reinterpret_cast<const char*>(&slots_.front().value);
    EraseAt(static_cast<size_t>(offset) / sizeof(Slot));
  }

  // Calls fn(key, value) on every entry; fn must not insert or erase.
  template <typename Fn>
  void ForEach(Fn&& fn) {
    for (Slot& s : slots_) {
      if (s.taken()) fn(s.key, s.value);
    }
  }
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Slot& s : slots_) {
      if (s.taken()) fn(s.key, s.value);
    }
  }

  // Off the hot path: when at most an eighth of the slots are used, rehashes into a
  // quarter-full array, so that a burst's room (and resident memory) goes back.
  void ShrinkIfSparse() {
    if (const size_t to = SparseShrinkTo(slots_.size(), size_, 4, kMinCapacity)) Rehash(to);
  }

 private:
  using Slot = u64_table_internal::Slot<V>;

  // Fibonacci hashing: keys that differ only in low bits (counted ids) spread too.
  size_t Home(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
  }

  // hit(slot) for the slot holding `key`, else null.
  template <typename Out, typename Hit>
  Out Lookup(uint64_t key, Hit hit) const {
    if (size_ == 0) return nullptr;
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.taken()) return nullptr;
      if (s.key == key) return hit(s);
    }
  }

  // The slot holding `key`, else the free slot that ends its probe run (the table has one).
  size_t Probe(uint64_t key) const {
    size_t i = Home(key);
    while (slots_[i].taken() && slots_[i].key != key) i = (i + 1) & mask_;
    return i;
  }

  // The slot for an insert under `key`, growing first when the table would pass half full.
  Slot& SlotFor(uint64_t key) {
    if (2 * (size_ + 1) > slots_.size()) Rehash(slots_.empty() ? kMinCapacity : 2 * slots_.size());
    return slots_[Probe(key)];
  }

  void Place(Slot& s, uint64_t key, V&& value) {
    s.key = key;
    s.value = std::move(value);
    s.Mark(true);
    size_++;
  }

  void EraseAt(size_t hole) {
    // Each later entry of the run moves into the hole unless its home lies cyclically in
    // (hole, j]: then the hole is not on its probe path.
    for (size_t j = (hole + 1) & mask_; slots_[j].taken(); j = (j + 1) & mask_) {
      const size_t home = Home(slots_[j].key);
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        slots_[hole] = std::move(slots_[j]);
        hole = j;
      }
    }
    slots_[hole].value = V();  // let go of what it holds now, not when the slot is reused
    slots_[hole].Mark(false);
    size_--;
  }

  void Rehash(size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_ = std::vector<Slot>(capacity);
    mask_ = capacity - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(capacity));
    for (Slot& s : old) {
      if (!s.taken()) continue;
      size_t i = Home(s.key);
      while (slots_[i].taken()) i = (i + 1) & mask_;
      slots_[i] = std::move(s);
    }
  }

  std::vector<Slot> slots_;  // a power of two of them, or none
  size_t mask_ = 0, size_ = 0;
  unsigned shift_ = 64;
};

}  // namespace zerotrace
