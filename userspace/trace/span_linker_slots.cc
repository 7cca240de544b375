// SpanLinker's records in reused slots: allocation, freeing, and emptying a record for reuse.
#include "trace/span_linker.h"

namespace zerotrace::trace {

uint64_t SpanLinker::Allocate() {
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<uint32_t>(slot_count_);
    if (slot_count_ % kSlotsPerChunk == 0) {
      slot_chunks_.push_back(std::make_unique<Slot[]>(kSlotsPerChunk));
    }
    slot_count_++;
  }
  Slot& s = slot(index);
  s.live = true;
  live_++;
  return (uint64_t{s.gen} << 32) | (uint64_t{index} + 1);
}

void SpanLinker::Free(uint64_t handle) {
  Record* r = Find(handle);
  if (r == nullptr) return;
  if (r->in_thread_index) DropFromThreadIndex(handle, *r);
  if (r->peer) {
    auto it = peers_.find(*r->peer);
    if (it != peers_.end() && it->second == handle) ErasePeer(it);
  }
  Slot& s = slot((handle & 0xffffffffULL) - 1);
  ResetRecord(s.rec, free_.size() < kKeptStorageSlots);
  s.live = false;
  s.gen++;
  free_.push_back(static_cast<uint32_t>((handle & 0xffffffffULL) - 1));
  live_--;
}

// Empties a record for its slot's next request in place, without a zero fill of the whole record
// (its span's room): short strings and the waiter list keep their storage (bounded: larger ones
// are freed), so the next request of the slot allocates nothing. Only the first
// kKeptStorageSlots free slots keep it: a burst of requests (10k idle connections) leaves many
// free slots whose storage would otherwise stay resident.
void SpanLinker::ResetRecord(Record& rec, bool keep_storage) {
  auto empty = [keep_storage](std::string& s) {
    s.clear();
    if (!keep_storage || s.capacity() > kMaxKeptBytes) s.shrink_to_fit();
  };
  empty(rec.operation);
  empty(rec.correlation);
  empty(rec.trace_state);
  rec.waiters.clear();
  if (!keep_storage || rec.waiters.capacity() > kMaxKeptBytes / sizeof(uint64_t)) {
    rec.waiters.shrink_to_fit();
  }
  rec.span.reset();
  rec.peer.reset();
  // The plain values, back to their initialisers. A member added to Record must be reset here
  // too: this size check fails until it is.
  static_assert(sizeof(Record) == 568, "a new Record member: reset it here, then update the size");
  rec.tgid = rec.tid = 0;
  rec.netns = rec.conn_id = 0;
  rec.server = rec.finished = rec.released = rec.resolved = rec.in_thread_index = false;
  rec.start_ns = rec.end_ns = 0;
  rec.span_id = rec.parent_span_id = SpanId();
  rec.trace_id = rec.carried_trace = TraceId();
  rec.parent = 0;
  rec.thread_list = rec.process_list = nullptr;
  rec.ctx = ContextEvidence();
}

}  // namespace zerotrace::trace
