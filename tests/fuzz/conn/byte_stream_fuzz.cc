// libFuzzer target: ByteStream driven by op sequences and checked against a per-position model.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "conn/byte_stream.h"

namespace {

using zerotrace::conn::ByteStream;
using zerotrace::conn::ByteStreamStats;

#define ZT_CHECK(cond)                                                            \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "invariant failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

// Positions the model tracks; ops that would reach past it are skipped.
constexpr uint64_t kSpace = 1 << 15;
// Below ByteStream's mark limit, so every timestamp must be exact.
constexpr uint64_t kMaxTimedOps = 4000;
constexpr size_t kCaps[] = {0, 1, 7, 64, 300, 1000, 4096, 1 << 20};

enum class Kind : uint8_t { kUnknown, kGap, kData };

// The stream as it should be: what each position holds and when it was first written.
struct Model {
  std::vector<Kind> kind = std::vector<Kind>(kSpace + 1, Kind::kUnknown);
  std::vector<uint8_t> value = std::vector<uint8_t>(kSpace + 1, 0);
  std::vector<uint64_t> ts = std::vector<uint64_t>(kSpace + 1, 0);
  uint64_t front = 0;
  uint64_t end = 0;
  uint64_t buffered = 0;
  uint64_t added = 0, duplicate = 0, stale = 0, dropped = 0, gap_bytes = 0;

  // Clears only the positions an input touched; allocating per input dominated the run time.
  void Reset() {
    const uint64_t touched = std::min(std::max(front, end) + 1, kSpace + 1);
    std::fill_n(kind.begin(), touched, Kind::kUnknown);
    std::fill_n(value.begin(), touched, 0);
    std::fill_n(ts.begin(), touched, 0);
    front = end = buffered = 0;
    added = duplicate = stale = dropped = gap_bytes = 0;
  }
};

// Reads the fuzz input as little integers; zeros once exhausted.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  uint8_t U8() { return at_ < size_ ? data_[at_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// The "true" byte at a position; writes with a non-zero variant disagree with it.
uint8_t TrueByte(uint64_t pos) { return static_cast<uint8_t>(pos * 131 + (pos >> 8) * 7 + 1); }

// A position near the front: a little behind it (stale), at it, or ahead (out of order).
uint64_t NearFront(Input& in, const Model& m) {
  int64_t pos = static_cast<int64_t>(m.front) + in.U16() % 1536 - 64;
  return pos < 0 ? 0 : static_cast<uint64_t>(pos);
}

// The cap (or the range bound) turned the front into a gap: mirror it in the model.
void MirrorDrops(const ByteStream& s, Model& m) {
  if (s.stats().bytes_dropped_cap == m.dropped) return;
  ByteStream::Front front = s.Peek();
  ZT_CHECK(front.gap > 0);
  ZT_CHECK(front.pos + front.gap <= m.end);
  for (uint64_t p = front.pos; p < front.pos + front.gap; ++p) {
    if (m.kind[p] == Kind::kData) {
      --m.buffered;
      ++m.dropped;
    }
    m.kind[p] = Kind::kGap;
  }
  ZT_CHECK(s.stats().bytes_dropped_cap == m.dropped);
}

void Consume(ByteStream& s, Model& m, uint64_t n);
void CheckInvariants(const ByteStream& s, const Model& m, size_t cap, bool timed);

void AddGap(ByteStream& s, Model& m, uint64_t pos, uint64_t len, uint64_t ts);

// `lent`: through AddDataLent, as the connection table does; `lent_consume` bytes are then
// consumed and the invariants checked while the bytes are still the caller's, before Settle().
// `lent_gap`: the rest of the lent bytes' syscall is a gap of that many bytes (a body the
// kernel skipped, ZT_DATA_REST_GAP), added right after them with their time.
void AddData(ByteStream& s, Model& m, uint64_t pos, uint64_t len, uint8_t variant, uint64_t ts,
             bool lent = false, uint64_t lent_consume = 0, size_t cap = 0, uint64_t lent_gap = 0) {
  if (pos + len >= kSpace) return;
  std::string bytes(len, '\0');
  for (uint64_t i = 0; i < len; ++i) bytes[i] = static_cast<char>(TrueByte(pos + i) ^ variant);
  if (!lent) {
    s.AddData(pos, bytes, ts);
  } else {
    s.AddDataLent(pos, bytes, ts);
  }
  for (uint64_t p = pos; p < pos + len; ++p) {
    if (p < m.front) {
      ++m.stale;
    } else if (m.kind[p] != Kind::kUnknown) {
      ++m.duplicate;
    } else {
      m.kind[p] = Kind::kData;
      m.value[p] = static_cast<uint8_t>(bytes[p - pos]);
      m.ts[p] = ts;
      ++m.buffered;
      ++m.added;
    }
  }
  if (len > 0 && pos + len > m.end) m.end = pos + len;
  MirrorDrops(s, m);
  if (lent) {
    if (lent_gap > 0) AddGap(s, m, pos + len, lent_gap, ts);
    CheckInvariants(s, m, cap, ts < kMaxTimedOps);
    Consume(s, m, std::min(lent_consume, m.end - m.front));
    CheckInvariants(s, m, cap, ts < kMaxTimedOps);
    s.Settle();
    std::fill(bytes.begin(), bytes.end(), '\xee');  // the ring buffer's slot is reused
  }
}

void AddGap(ByteStream& s, Model& m, uint64_t pos, uint64_t len, uint64_t ts) {
  if (pos + len >= kSpace) return;
  s.AddGap(pos, len, ts);
  for (uint64_t p = std::max(pos, m.front); p < pos + len; ++p) {
    if (m.kind[p] != Kind::kUnknown) continue;
    m.kind[p] = Kind::kGap;
    m.ts[p] = ts;
  }
  if (len > 0 && pos + len > m.end) m.end = pos + len;
  MirrorDrops(s, m);
}

void Consume(ByteStream& s, Model& m, uint64_t n) {
  if (m.front + n >= kSpace) return;
  s.Consume(n);
  for (uint64_t p = m.front; p < m.front + n; ++p) {
    if (m.kind[p] == Kind::kData) --m.buffered;
    if (m.kind[p] == Kind::kGap) ++m.gap_bytes;
  }
  m.front += n;
  if (m.front > m.end) m.end = m.front;
}

void Declare(ByteStream& s, Model& m) {
  s.DeclareHolesAsGaps();
  for (uint64_t p = m.front; p < m.end; ++p) {
    if (m.kind[p] == Kind::kUnknown) m.kind[p] = Kind::kGap;
  }
  MirrorDrops(s, m);
}

void CheckInvariants(const ByteStream& s, const Model& m, size_t cap, bool timed) {
  ByteStream::Front front = s.Peek();
  ZT_CHECK(front.pos == s.front_pos());
  ZT_CHECK(front.pos == m.front);
  ZT_CHECK(s.end_pos() == m.end);
  ZT_CHECK(s.buffered_bytes() <= cap);
  ZT_CHECK(s.buffered_bytes() == m.buffered);
  ZT_CHECK(s.stats().bytes_added == m.added);
  ZT_CHECK(s.stats().bytes_duplicate == m.duplicate);
  ZT_CHECK(s.stats().bytes_stale == m.stale);
  ZT_CHECK(s.stats().gap_bytes == m.gap_bytes);

  if (!front.data.empty()) {
    ZT_CHECK(front.gap == 0);
    for (size_t i = 0; i < front.data.size(); ++i) {
      ZT_CHECK(m.kind[m.front + i] == Kind::kData);
      ZT_CHECK(m.value[m.front + i] == static_cast<uint8_t>(front.data[i]));
    }
    ZT_CHECK(m.kind[m.front + front.data.size()] != Kind::kData);  // all contiguous bytes
    ZT_CHECK(s.GapAfterFrontData() == (m.kind[m.front + front.data.size()] == Kind::kGap));
  } else if (front.gap > 0) {
    ZT_CHECK(!s.GapAfterFrontData());
    for (uint64_t p = m.front; p < m.front + front.gap; ++p) ZT_CHECK(m.kind[p] == Kind::kGap);
    ZT_CHECK(m.kind[m.front + front.gap] != Kind::kGap);  // adjacent gaps are one
  } else {
    ZT_CHECK(m.kind[m.front] == Kind::kUnknown);  // a hole, or nothing yet
  }

  bool any_known = false;
  for (uint64_t p = m.front; p < m.end && !any_known; ++p) any_known = m.kind[p] != Kind::kUnknown;
  ZT_CHECK(s.empty() == !any_known);

  if (!timed) return;
  if (m.front > 0) ZT_CHECK(s.TimestampAt(m.front - 1) == 0);
  for (uint64_t p = m.front; p < m.end && p < m.front + 64; ++p) {
    ZT_CHECK(s.TimestampAt(p) == m.ts[p]);
  }
  if (m.end > m.front) ZT_CHECK(s.TimestampAt(m.end - 1) == m.ts[m.end - 1]);
  ZT_CHECK(s.TimestampAt(m.end) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const size_t cap = kCaps[in.U8() % std::size(kCaps)];
  ByteStreamStats counters;  // this stream's alone: the model predicts them
  ByteStream stream(cap, &counters);
  static Model model;
  model.Reset();
  uint64_t ts = 0;
  while (!in.done()) {
    ++ts;
    switch (in.U8() % 8) {
      case 0: {  // data that agrees with every other write of its positions
        uint64_t pos = NearFront(in, model);
        AddData(stream, model, pos, in.U8(), 0, ts);
        break;
      }
      case 1: {  // the same, lent (read in place where the stream is drained), then settled
        uint64_t pos = in.U8() % 4 == 0 ? NearFront(in, model) : model.front;
        uint64_t len = in.U8();
        const uint64_t consume = in.U8();
        const uint64_t gap = in.U8() % 2 == 0 ? 0 : in.U16() % 2048;
        AddData(stream, model, pos, len, 0, ts, true, consume, cap, gap);
        break;
      }
      case 2: {  // data that disagrees: the first writer must win
        uint64_t pos = NearFront(in, model);
        uint64_t len = in.U8();
        AddData(stream, model, pos, len, static_cast<uint8_t>(in.U8() | 1), ts);
        break;
      }
      case 3: {  // a capture-limit chunk: some bytes, then the rest as a gap
        uint64_t pos = NearFront(in, model);
        uint64_t captured = in.U8() % 64;
        uint64_t total = captured + in.U16() % 2048;
        AddData(stream, model, pos, captured, 0, ts);
        AddGap(stream, model, pos + captured, total - captured, ts);
        break;
      }
      case 4:
        Consume(stream, model, in.U16() % 1024);
        break;
      case 5:
        Declare(stream, model);
        break;
      case 6: {  // a parser: take what the front offers
        ByteStream::Front front = stream.Peek();
        Consume(stream, model, front.gap > 0 ? front.gap : front.data.size());
        break;
      }
      case 7: {
        uint64_t to = NearFront(in, model);
        if (to > model.front) Consume(stream, model, to - model.front);
        break;
      }
    }
    CheckInvariants(stream, model, cap, ts < kMaxTimedOps);
  }
  return 0;
}
