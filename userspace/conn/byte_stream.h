// One direction of a connection: bytes placed by stream position, with gaps where bytes
// were not captured (capture limit, lost events) so parsers can skip and resynchronise.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace zerotrace::conn {

// Counters a stream keeps about what it could not hold.
// Counters of byte streams. A connection table's streams share one (its self-metrics), so
// that a tracked connection does not carry its own.
struct ByteStreamStats {
  uint64_t bytes_added = 0;        // captured bytes accepted
  uint64_t bytes_duplicate = 0;    // captured bytes already present (overlap)
  uint64_t bytes_dropped_cap = 0;  // captured bytes turned into a gap by the byte cap
  uint64_t bytes_stale = 0;        // bytes offered behind the consumed front
  uint64_t gaps = 0;               // gap ranges that reached the front (bytes lost or not captured)
  uint64_t gap_bytes = 0;          // bytes skipped as gaps at the front
  uint64_t skips = 0;              // GapKind::kSkipped ranges that reached the front
  uint64_t skipped_bytes = 0;      // their bytes, passed over at the front
};

// Why bytes that moved are not in a stream.
enum class GapKind : uint8_t {
  kLost,     // not captured: capture cap, ring-buffer loss, truncation, unknown
  kSkipped,  // deliberately not copied by the kernel (an HTTP/1 body after a complete head)
};

// A byte stream with holes. Positions are absolute offsets since the stream began.
//
// Three kinds of ranges exist past the front: data (captured bytes), known gaps (bytes the
// kernel reported moving but did not capture), and unknown holes (nothing said yet; a late
// event may still fill them). Parsers read Front(): data and known gaps only. A hole becomes
// a gap when the owner calls DeclareHolesAsGaps() (idle timeout, close) or when the buffered
// data past it exceeds the cap.
class ByteStream {
 public:
  // `stats` (not owned) receives this stream's counters; without it they go to a per-thread
  // counter set that nothing reads (and that stats() then returns: pass one to read them).
  // `byte_cap` is clamped to 4 GiB - 1.
  explicit ByteStream(size_t byte_cap = 1 << 20, ByteStreamStats* stats = nullptr)
      : byte_cap_(static_cast<uint32_t>(std::min<size_t>(byte_cap, UINT32_MAX))),
        stats_(stats ? stats : &unattributed_stats_) {}
  // Move-only: it owns buffers and recycled map nodes.
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;
  ByteStream(ByteStream&&) noexcept = default;
  ByteStream& operator=(ByteStream&&) noexcept = default;

  // Hot path. Places `data` at `pos`, moved at monotonic time `ts_ns`. Overlaps with
  // buffered or consumed bytes are trimmed. Adjacent data ranges are merged so that Peek()
  // returns every contiguous captured byte at the front.
  // `tid` is the thread that made the syscall (0 if unknown).
  void AddData(uint64_t pos, std::string_view data, uint64_t ts_ns, uint32_t tid = 0);
  // Hot path. AddData without the copy when the stream is drained and `data` starts at its
  // front (a whole message in one record, the common case): Peek() then reads `data` where it
  // lies. `data` must stay valid until Settle(), which copies what was not consumed. Its
  // syscall's time and thread are kept inline (no time mark, so no allocation) until then.
  void AddDataLent(uint64_t pos, std::string_view data, uint64_t ts_ns, uint32_t tid = 0);
  // Copies lent bytes that are still unconsumed into the stream's own buffer (and makes a
  // gap that followed them, not yet consumed, a range).
  void Settle() {
    if (end_ > front_ && (lent_data_ != nullptr || ranges_.empty())) KeepLent();
    lent_data_ = nullptr;
  }
  // Hot path. Marks [pos, pos+len) as bytes that exist but were not captured. A gap that
  // directly follows lent bytes and has their syscall's time and thread (the rest of a call
  // whose body the kernel skipped) is kept inline until Settle(), as the lent bytes are.
  // Adjacent gaps merge; a merged gap is kSkipped only if every part of it was.
  void AddGap(uint64_t pos, uint64_t len, uint64_t ts_ns, uint32_t tid = 0,
              GapKind kind = GapKind::kLost);
  // Every hole before the furthest known position becomes a gap.
  void DeclareHolesAsGaps();

  // What the parser sees at the front of the stream.
  struct Front {
    uint64_t pos = 0;       // position of the front
    std::string_view data;  // contiguous captured bytes at pos (empty if a gap is first)
    uint64_t gap = 0;       // >0: a gap of this many bytes starts at pos
  };
  Front Peek() const;
  // True if the front is data and a known gap directly follows it: a partial message there
  // can never complete, so the parser should resynchronise instead of waiting.
  bool GapAfterFrontData() const;

  // Consumes n bytes from the front: data bytes and/or gap bytes. n may span several
  // ranges; consuming into an unknown hole is allowed (the hole becomes consumed).
  void Consume(uint64_t n);
  // Consumes everything up to `pos` (no-op if pos <= front).
  void ConsumeTo(uint64_t pos);

  // Monotonic time of the syscall that moved the byte at `pos` (data or gap, not consumed);
  // 0 if unknown. Used for span start (first request byte) and end (last response byte).
  uint64_t TimestampAt(uint64_t pos) const { return StampAt(pos).ts_ns; }
  // The syscall that moved the byte at `pos`: its time and thread (zeros if unknown). The
  // thread tells which request a server thread was serving when it made a client call.
  struct Stamp {
    uint64_t ts_ns = 0;
    uint32_t tid = 0;
  };
  Stamp StampAt(uint64_t pos) const;

  // Frees what the stream keeps for reuse (released range buffers, time marks) once every
  // known byte is consumed: for connections that rest between messages. No-op otherwise.
  void ReleaseIdle() {
    if (spare_.capacity() != 0 || ts_marks_.capacity() != 0) FreeIdle();
  }

  uint64_t front_pos() const { return front_; }
  // One past the furthest byte known to exist (data or gap).
  uint64_t end_pos() const { return end_; }
  // Captured bytes currently buffered.
  size_t buffered_bytes() const { return buffered_; }
  // Heap bytes the stream holds besides buffered data: time marks and spare range nodes.
  size_t reserved_bytes() const;
  bool empty() const { return ranges_.empty() && lent_size_ == 0 && end_ <= front_; }
  const ByteStreamStats& stats() const { return *stats_; }

 private:
  // One range past the front. For data, bytes[i] is the byte at position base + i; the
  // prefix before the range's live start is dead (consumed or dropped) until compacted.
  struct Range {
    uint64_t end = 0;   // one past the last position
    uint64_t base = 0;  // position of bytes[0] (data only)
    std::string bytes;  // empty for a gap
    bool is_gap = false;
    bool skipped = false;  // a gap whose every byte is GapKind::kSkipped
  };
  using RangeMap = std::map<uint64_t, Range>;  // start position -> range; never overlapping
  // The syscall time of [start, end); marks are sorted and never overlap.
  struct TsMark {
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t ts_ns = 0;
    uint32_t tid = 0;
  };

  void KeepLent();
  void FreeIdle();
  void PlaceData(uint64_t pos, std::string_view data, const Stamp& stamp, RangeMap::iterator next);
  RangeMap::iterator PlaceGap(uint64_t start, uint64_t stop, RangeMap::iterator next,
                              bool skipped = false);
  void CountGap(bool skipped, bool reached, uint64_t bytes) {
    if (skipped) {
      stats_->skips += reached;
      stats_->skipped_bytes += bytes;
    } else {
      stats_->gaps += reached;
      stats_->gap_bytes += bytes;
    }
  }
  RangeMap::iterator NewRange(uint64_t start, RangeMap::iterator hint);
  RangeMap::iterator Release(RangeMap::iterator it);
  RangeMap::iterator Rekey(RangeMap::iterator it, uint64_t start);
  void MergeFront();
  void CompactFront();
  void EnforceCap();
  void DropFrontTo(uint64_t cut);
  void AddTsMark(uint64_t start, uint64_t end, const Stamp& stamp);
  void PruneTsMarks();

  std::string_view lent() const { return {lent_data_, lent_size_}; }

  // Sized to keep a ByteStream at 160 bytes (10 k idle connections hold two each).
  uint32_t byte_cap_;
  uint32_t ts_head_ : 31 = 0;  // live marks are ts_marks_[ts_head_, size()): a few thousand at most
  // The inline gap after lent bytes (see lent_data_) is GapKind::kSkipped in every byte.
  uint32_t lent_gap_skipped_ : 1 = 0;
  // Bytes at front_ still in the caller's buffer (AddDataLent); while set, ranges_ is empty,
  // and the syscall that moved them is lent_ts_ns_ / lent_tid_ (they have no time mark).
  // With ranges_ empty, [front_ + lent_size_, end_) is a known gap of that syscall, kept
  // inline (no range, no mark): end_ > front_ happens only so. lent_data_ stays set (at the
  // lent bytes' end once they are consumed) until that gap's first byte is consumed, so that
  // the gap is counted once when it reaches the front.
  const char* lent_data_ = nullptr;
  uint32_t lent_size_ = 0;
  uint32_t lent_tid_ = 0;
  uint64_t lent_ts_ns_ = 0;
  uint64_t front_ = 0;
  uint64_t end_ = 0;
  size_t buffered_ = 0;
  RangeMap ranges_;
  std::vector<RangeMap::node_type> spare_;  // released nodes: steady state allocates nothing
  std::vector<TsMark> ts_marks_;            // live marks are [ts_head_, size())
  ByteStreamStats* stats_;
  static thread_local ByteStreamStats unattributed_stats_;
};

}  // namespace zerotrace::conn
