// ByteStream: places captured bytes and gaps by stream position and serves the front.
#include "conn/byte_stream.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

namespace zerotrace::conn {

thread_local ByteStreamStats ByteStream::unattributed_stats_;
namespace {

// Released map nodes kept for reuse: in steady state a data and a gap range come and go.
constexpr size_t kMaxSpareNodes = 2;
// A spare node's buffer above this size is freed so idle connections do not pin memory.
constexpr size_t kMaxSpareCapacity = 4096;
// A dead prefix smaller than this is not worth a memmove.
constexpr uint64_t kCompactMinBytes = 1024;
// Bounds bookkeeping when events arrive far out of order; beyond it the front becomes a gap.
constexpr size_t kMaxRanges = 1024;
// Bounds timestamp marks for a stream whose parser is not consuming.
constexpr size_t kMaxTsMarks = 4096;
// A drained mark vector above this capacity is freed (a burst should not pin memory).
constexpr size_t kMaxIdleTsMarks = 256;

// Shortens len so that pos + len does not wrap around.
uint64_t ClampLen(uint64_t pos, uint64_t len) {
  return std::min(len, std::numeric_limits<uint64_t>::max() - pos);
}

}  // namespace

// Hot path.
void ByteStream::AddDataLent(uint64_t pos, std::string_view data, uint64_t ts_ns, uint32_t tid) {
  const uint64_t len = ClampLen(pos, data.size());
  if (len == 0 || pos != front_ || end_ != front_ || !ranges_.empty() || lent_size_ != 0 ||
      len > byte_cap_) {
    AddData(pos, data, ts_ns, tid);
    return;
  }
  lent_data_ = data.data();
  lent_size_ = static_cast<uint32_t>(len);  // <= byte_cap_
  lent_gap_skipped_ = 0;
  lent_ts_ns_ = ts_ns;
  lent_tid_ = tid;
  end_ = pos + len;
  buffered_ += len;
  stats_->bytes_added += len;
}

// What a Settle() keeps: the unconsumed lent bytes become the stream's first range, and the
// inline gap after them (or what is left of it) a gap range.
void ByteStream::KeepLent() {
  const Stamp stamp{lent_ts_ns_, lent_tid_};
  const uint64_t data_end = front_ + lent_size_;
  const bool gap_reached = lent_data_ == nullptr;  // its first byte was consumed (counted)
  if (lent_size_ != 0) {
    AddTsMark(front_, data_end, stamp);
    Range& range = NewRange(front_, ranges_.end())->second;
    range.is_gap = false;
    range.base = front_;
    range.end = data_end;
    range.bytes.assign(lent_data_, lent_size_);
  }
  if (end_ > data_end) {
    AddTsMark(data_end, end_, stamp);
    // A gap already entered is keyed before the front, as a range partly consumed is, so
    // that reaching the front does not count it again.
    const uint64_t key = gap_reached ? front_ - 1 : data_end;
    Range& gap = NewRange(key, ranges_.end())->second;
    gap.is_gap = true;
    gap.skipped = lent_gap_skipped_;
    gap.base = key;
    gap.end = end_;
    gap.bytes.clear();
  }
  lent_data_ = nullptr;
  lent_size_ = 0;
}

// Hot path.
void ByteStream::AddData(uint64_t pos, std::string_view data, uint64_t ts_ns, uint32_t tid) {
  Settle();
  uint64_t len = ClampLen(pos, data.size());
  if (len == 0) return;
  const uint64_t end = pos + len;
  if (end <= front_) {
    stats_->bytes_stale += len;
    return;
  }
  if (pos < front_) {
    stats_->bytes_stale += front_ - pos;
    data.remove_prefix(front_ - pos);
    pos = front_;
  }
  // In-order data skips the search: nothing at or past end_ exists yet.
  auto it = pos >= end_ ? ranges_.end() : ranges_.upper_bound(pos);
  uint64_t cur = pos;
  if (it != ranges_.begin()) {
    const Range& prev = std::prev(it)->second;
    if (prev.end > cur) {
      const uint64_t stop = std::min(prev.end, end);
      stats_->bytes_duplicate += stop - cur;
      cur = stop;
    }
  }
  while (cur < end) {
    if (it != ranges_.end() && it->first <= cur) {  // already known: first writer wins
      const uint64_t stop = std::min(it->second.end, end);
      stats_->bytes_duplicate += stop - cur;
      cur = stop;
      ++it;
      continue;
    }
    const uint64_t stop = it == ranges_.end() ? end : std::min(end, it->first);
    PlaceData(cur, data.substr(cur - pos, stop - cur), {ts_ns, tid}, it);
    cur = stop;
  }
  end_ = std::max(end_, end);
  MergeFront();
  EnforceCap();
}

// Hot path.
void ByteStream::AddGap(uint64_t pos, uint64_t len, uint64_t ts_ns, uint32_t tid, GapKind kind) {
  len = ClampLen(pos, len);
  if (len == 0) return;
  const bool skipped = kind == GapKind::kSkipped;
  // The rest of a lent record's syscall (a body the kernel skipped): inline, as the record.
  if (lent_data_ != nullptr && pos == end_ && pos >= front_ && ts_ns == lent_ts_ns_ &&
      tid == lent_tid_) {
    const bool had_gap = end_ > front_ + lent_size_;
    lent_gap_skipped_ = skipped && (!had_gap || lent_gap_skipped_);
    end_ = pos + len;
    return;
  }
  Settle();
  const uint64_t end = pos + len;
  if (end <= front_) return;
  pos = std::max(pos, front_);
  auto it = pos >= end_ ? ranges_.end() : ranges_.upper_bound(pos);
  uint64_t cur = pos;
  if (it != ranges_.begin()) cur = std::clamp(std::prev(it)->second.end, cur, end);
  while (cur < end) {
    if (it != ranges_.end() && it->first <= cur) {  // captured or known bytes stay as they are
      cur = std::min(it->second.end, end);
      ++it;
      continue;
    }
    const uint64_t stop = it == ranges_.end() ? end : std::min(end, it->first);
    auto gap = PlaceGap(cur, stop, it, skipped);
    AddTsMark(cur, stop, {ts_ns, tid});
    cur = std::min(gap->second.end, end);  // a merged-in following gap is already known
    it = std::next(gap);
  }
  end_ = std::max(end_, end);
  EnforceCap();
}

void ByteStream::DeclareHolesAsGaps() {
  Settle();
  uint64_t cur = front_;
  auto it = ranges_.begin();
  while (cur < end_) {
    if (it != ranges_.end() && it->first <= cur) {
      cur = it->second.end;
      ++it;
      continue;
    }
    const uint64_t stop = it == ranges_.end() ? end_ : it->first;
    auto gap = PlaceGap(cur, stop, it);
    cur = gap->second.end;
    it = std::next(gap);
  }
  EnforceCap();
}

// Hot path.
ByteStream::Front ByteStream::Peek() const {
  Front front;
  front.pos = front_;
  if (ranges_.empty()) {  // lent bytes, else the inline gap after them, else nothing
    if (lent_size_ != 0) {
      front.data = lent();
    } else {
      front.gap = end_ - front_;
    }
    return front;
  }
  const auto& [start, range] = *ranges_.begin();
  if (start > front_) return front;  // unknown hole: the parser waits
  if (range.is_gap) {
    front.gap = range.end - front_;
  } else {
    front.data = std::string_view(range.bytes.data() + (front_ - range.base), range.end - front_);
  }
  return front;
}

bool ByteStream::GapAfterFrontData() const {
  if (ranges_.empty()) return lent_size_ != 0 && end_ > front_ + lent_size_;
  auto front = ranges_.begin();
  if (front->first > front_ || front->second.is_gap) return false;
  auto next = std::next(front);
  return next != ranges_.end() && next->second.is_gap && next->first == front->second.end;
}

// Hot path.
void ByteStream::Consume(uint64_t n) {
  n = ClampLen(front_, n);
  if (ranges_.empty()) {  // lent bytes and the inline gap after them, or nothing
    const uint32_t step = static_cast<uint32_t>(std::min<uint64_t>(n, lent_size_));
    lent_data_ += step;
    lent_size_ -= step;
    buffered_ -= step;
    front_ += step;
    n -= step;
    if (n > 0 && end_ > front_) {
      const uint64_t gap = std::min(n, end_ - front_);
      // lent_data_ set: its first byte, the gap reached the front
      CountGap(lent_gap_skipped_, lent_data_ != nullptr, gap);
      lent_data_ = nullptr;
      front_ += gap;
      n -= gap;
    }
    front_ += n;  // past every known byte: an unknown hole
    end_ = std::max(end_, front_);
    if (!ts_marks_.empty()) PruneTsMarks();
    return;
  }
  while (n > 0) {
    if (ranges_.empty()) {
      front_ += n;
      break;
    }
    auto it = ranges_.begin();
    if (it->first > front_) {  // unknown hole
      const uint64_t step = std::min(n, it->first - front_);
      front_ += step;
      n -= step;
      continue;
    }
    Range& range = it->second;
    const uint64_t step = std::min(n, range.end - front_);
    if (range.is_gap) {
      CountGap(range.skipped, front_ == it->first, step);
    } else {
      buffered_ -= step;
    }
    front_ += step;
    n -= step;
    if (front_ == range.end) Release(it);
  }
  end_ = std::max(end_, front_);
  PruneTsMarks();
  CompactFront();
  MergeFront();
}

void ByteStream::ConsumeTo(uint64_t pos) {
  if (pos > front_) Consume(pos - front_);
}

ByteStream::Stamp ByteStream::StampAt(uint64_t pos) const {
  if (pos < front_) return {};
  if (ranges_.empty()) {  // lent bytes and the inline gap after them: one syscall's
    return pos < end_ ? Stamp{lent_ts_ns_, lent_tid_} : Stamp{};
  }
  const auto first = ts_marks_.begin() + static_cast<std::ptrdiff_t>(ts_head_);
  auto it = std::upper_bound(first, ts_marks_.end(), pos,
                             [](uint64_t p, const TsMark& mark) { return p < mark.start; });
  if (it == first) return {};
  --it;
  if (pos >= it->end) return {};
  return {it->ts_ns, it->tid};
}

// Appends to the previous data range when contiguous, else starts a range before `next`.
void ByteStream::PlaceData(uint64_t pos, std::string_view data, const Stamp& stamp,
                           RangeMap::iterator next) {
  auto prev = next == ranges_.begin() ? ranges_.end() : std::prev(next);
  if (prev != ranges_.end() && !prev->second.is_gap && prev->second.end == pos) {
    prev->second.bytes.append(data);
    prev->second.end += data.size();
  } else {
    Range& range = NewRange(pos, next)->second;
    range.is_gap = false;
    range.base = pos;
    range.end = pos + data.size();
    range.bytes.assign(data);
  }
  buffered_ += data.size();
  stats_->bytes_added += data.size();
  AddTsMark(pos, pos + data.size(), stamp);
}

// Makes [start, stop) a gap merged with adjacent gaps; returns the resulting gap range.
ByteStream::RangeMap::iterator ByteStream::PlaceGap(uint64_t start, uint64_t stop,
                                                    RangeMap::iterator next, bool skipped) {
  auto gap = next == ranges_.begin() ? ranges_.end() : std::prev(next);
  if (gap != ranges_.end() && gap->second.is_gap && gap->second.end == start) {
    gap->second.end = stop;
    gap->second.skipped = gap->second.skipped && skipped;
  } else {
    gap = NewRange(start, next);
    Range& range = gap->second;
    range.is_gap = true;
    range.skipped = skipped;
    range.base = start;
    range.end = stop;
    range.bytes.clear();
  }
  if (next != ranges_.end() && next->second.is_gap && next->first == stop) {
    gap->second.end = next->second.end;
    gap->second.skipped = gap->second.skipped && next->second.skipped;
    Release(next);
  }
  return gap;
}

void ByteStream::FreeIdle() {
  if (!ranges_.empty() || front_ < end_) return;
  std::vector<RangeMap::node_type>().swap(spare_);
  std::vector<TsMark>().swap(ts_marks_);
  ts_head_ = 0;
}

size_t ByteStream::reserved_bytes() const {
  size_t n = ts_marks_.capacity() * sizeof(TsMark) + spare_.capacity() * sizeof(spare_[0]);
  for (const RangeMap::node_type& node : spare_) {
    n += sizeof(RangeMap::value_type) + node.mapped().bytes.capacity();
  }
  return n;
}

// Inserts a range node at `start`, reusing a released node (and its buffer) when one exists.
ByteStream::RangeMap::iterator ByteStream::NewRange(uint64_t start, RangeMap::iterator hint) {
  if (spare_.empty()) return ranges_.emplace_hint(hint, start, Range{});
  RangeMap::node_type node = std::move(spare_.back());
  spare_.pop_back();
  node.key() = start;
  return ranges_.insert(hint, std::move(node));
}

// Removes a range, keeping its node for reuse; returns the following range.
ByteStream::RangeMap::iterator ByteStream::Release(RangeMap::iterator it) {
  auto next = std::next(it);
  RangeMap::node_type node = ranges_.extract(it);
  if (spare_.size() < kMaxSpareNodes) {
    std::string& bytes = node.mapped().bytes;
    if (bytes.capacity() > kMaxSpareCapacity) std::string().swap(bytes);
    spare_.push_back(std::move(node));
  }
  return next;
}

// Moves a range's start without copying its bytes.
ByteStream::RangeMap::iterator ByteStream::Rekey(RangeMap::iterator it, uint64_t start) {
  auto hint = std::next(it);
  RangeMap::node_type node = ranges_.extract(it);
  node.key() = start;
  return ranges_.insert(hint, std::move(node));
}

// Keeps Peek() whole: data ranges that became contiguous with front data join it.
void ByteStream::MergeFront() {
  if (ranges_.empty()) return;
  auto front = ranges_.begin();
  if (front->first > front_ || front->second.is_gap) return;
  Range& head = front->second;
  for (auto it = std::next(front);
       it != ranges_.end() && !it->second.is_gap && it->first == head.end;) {
    const Range& tail = it->second;
    head.bytes.append(tail.bytes, it->first - tail.base, tail.end - it->first);
    head.end = tail.end;
    it = Release(it);
  }
}

// Drops the consumed prefix of the front buffer once it outweighs the live bytes (amortised).
void ByteStream::CompactFront() {
  if (ranges_.empty()) return;
  auto front = ranges_.begin();
  Range& range = front->second;
  if (range.is_gap || front->first > front_) return;
  const uint64_t dead = front_ - range.base;
  if (dead < kCompactMinBytes || dead < range.end - front_) return;
  range.bytes.erase(0, dead);
  range.base = front_;
}

void ByteStream::EnforceCap() {
  while (ranges_.size() > kMaxRanges) DropFrontTo(std::next(ranges_.begin())->second.end);
  if (buffered_ <= byte_cap_) return;
  // Oldest data goes first; holes and gaps before it are swallowed into the same gap.
  uint64_t excess = buffered_ - byte_cap_;
  uint64_t cut = front_;
  for (auto it = ranges_.begin(); excess > 0 && it != ranges_.end(); ++it) {
    if (it->second.is_gap) continue;
    const uint64_t live_start = std::max(it->first, front_);
    const uint64_t live = it->second.end - live_start;
    if (live <= excess) {
      excess -= live;
      cut = it->second.end;
    } else {
      cut = live_start + excess;
      excess = 0;
    }
  }
  DropFrontTo(cut);
}

// Turns [front_, cut) into one gap, counting the captured bytes it discards.
void ByteStream::DropFrontTo(uint64_t cut) {
  auto it = ranges_.begin();
  while (it != ranges_.end() && it->first < cut) {
    Range& range = it->second;
    if (!range.is_gap) {
      const uint64_t dropped = std::min(range.end, cut) - std::max(it->first, front_);
      buffered_ -= dropped;
      stats_->bytes_dropped_cap += dropped;
    }
    if (range.end > cut) break;
    it = Release(it);
  }
  if (it != ranges_.end() && it->first < cut) {
    Range& range = it->second;
    if (!range.is_gap && cut - range.base >= kCompactMinBytes &&
        cut - range.base >= range.end - cut) {
      range.bytes.erase(0, cut - range.base);
      range.base = cut;
    }
    it = Rekey(it, cut);
  }
  PlaceGap(front_, cut, it);
}

// Hot path. Marks never overlap because only newly placed positions get one.
void ByteStream::AddTsMark(uint64_t start, uint64_t end, const Stamp& stamp) {
  const size_t live = ts_marks_.size() - ts_head_;
  const TsMark mark{start, end, stamp.ts_ns, stamp.tid};
  if (live == 0) {
    ts_marks_.push_back(mark);
    return;
  }
  TsMark& last = ts_marks_.back();
  if (start >= last.end) {
    const bool same = stamp.ts_ns == last.ts_ns && stamp.tid == last.tid;
    if (start == last.end && (same || live >= kMaxTsMarks)) {
      last.end = end;  // when full, the newest syscall wins: it is what ends a span
      last.ts_ns = stamp.ts_ns;
      last.tid = stamp.tid;
    } else if (live < kMaxTsMarks) {
      ts_marks_.push_back(mark);
    }
    return;
  }
  if (live >= kMaxTsMarks) return;  // full: a late chunk's time is forgotten
  const auto first = ts_marks_.begin() + static_cast<std::ptrdiff_t>(ts_head_);
  auto at = std::upper_bound(first, ts_marks_.end(), start,
                             [](uint64_t p, const TsMark& mark) { return p < mark.start; });
  ts_marks_.insert(at, mark);
}

// Forgets marks wholly behind the front; compacts the vector in amortised O(1).
void ByteStream::PruneTsMarks() {
  while (ts_head_ < ts_marks_.size() && ts_marks_[ts_head_].end <= front_) ++ts_head_;
  if (ts_head_ == ts_marks_.size()) {
    ts_marks_.clear();
    if (ts_marks_.capacity() > kMaxIdleTsMarks) ts_marks_.shrink_to_fit();
    ts_head_ = 0;
  } else if (ts_head_ >= 64 && size_t{ts_head_} * 2 >= ts_marks_.size()) {
    ts_marks_.erase(ts_marks_.begin(), ts_marks_.begin() + static_cast<std::ptrdiff_t>(ts_head_));
    ts_head_ = 0;
  }
}

}  // namespace zerotrace::conn
