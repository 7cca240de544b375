// The bounded span queue between the ring-buffer consumer and the export thread, and that thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "export/exporter.h"
#include "trace/span.h"

namespace zerotrace::exporter {

// Self-metrics of the export pipeline; read them with .load() from any thread.
struct ExportCounters {
  std::atomic<uint64_t> queued{0};            // spans accepted by TryPush
  std::atomic<uint64_t> dropped_full{0};      // spans refused because the queue was at capacity
  std::atomic<uint64_t> dropped_stopping{0};  // pushed after Stop, or still queued at its deadline
  // What the exporters reported (ExportResult), summed over them: a span given to two
  // exporters counts once for each.
  std::atomic<uint64_t> exported{0};       // spans that reached their destination
  std::atomic<uint64_t> export_failed{0};  // spans that never will (an exporter that threw
                                           // failed its whole batch)
};

struct SpanQueueOptions {
  // Most spans held by the pipeline at once: queued plus popped-but-not-released.
  size_t capacity = 8192;
  // 2048 rather than the OTel SDKs' 512: each OTLP request costs a fixed amount of CPU besides
  // its bytes (a quarter of the export thread's CPU at 512); the exporter caps request bytes.
  size_t max_batch_size = 2048;
  // A queued span waits at most this long for its batch to fill up.
  std::chrono::milliseconds max_batch_delay{200};
  // Encoded spans (EncodedSpan) only: most bytes of encoding held at once, queued plus popped
  // but not released; a push past it is dropped as when full. A typical HTTP span is ~0.4 KiB
  // encoded (8192 of them: ~3.5 MiB); this bounds a queue of spans with huge attributes.
  size_t max_bytes = 16 << 20;
};

// Bounded multi-producer queue that hands out items (trace::Span, or EncodedSpan when the
// exporters take spans encoded on the consumer thread) in batches of at most max_batch_size.
// Spans are stored in per-batch chunks, so the lock is held O(1) per push and per pop, and chunk
// storage is recycled: no allocation per span in steady state beyond the span's own.
// Exported spans are not destroyed by the export thread: they stay in the recycled storage and
// a later push swaps each one out to the pushing thread, which frees it. A span's memory is then
// freed by the thread that allocated it, where glibc's per-thread caches serve it again; freed
// on the export thread, it went back through the allocating arena's lock and bins.
template <typename T>
class BatchQueue {
 public:
  using Clock = std::chrono::steady_clock;
  enum class PopResult { kBatch, kTimeout, kClosedAndEmpty };

  explicit BatchQueue(SpanQueueOptions options = {});
  BatchQueue(const BatchQueue&) = delete;
  BatchQueue& operator=(const BatchQueue&) = delete;

  // Hot path: never waits for the consumer beyond a short critical section. When full (or
  // closed) the span is dropped, counted, and false is returned. On success `span` is left
  // holding an exported span (or empty): destroying it is the caller's, on the caller's thread.
  bool TryPush(T&& span);
  // The queue's room as of a locked moment: what TryPush would then accept.
  struct Room {
    size_t spans = 0;  // more spans it takes (0 when closed)
    size_t bytes = 0;  // encoded bytes held
    bool closed = false;
  };
  // Hot path: pushes items[0, n) in one locked operation, each judged and counted as TryPush
  // judges it, in order. An accepted item's slot is left holding an exported item (or an empty
  // one), a refused item stays in its slot. Returns how many were accepted; *room (if not null)
  // gets the room left afterwards.
  size_t TryPushBatch(std::span<T> items, Room* room);
  // For a pusher that must prepare its item first (encode a span): true when the queue is
  // closed or full, the push then counted as refused as TryPush counts it. Lock-free while the
  // queue has room; false does not promise that TryPush will succeed.
  bool RefuseIfFull();

  // Waits until a batch is ready (full, or its oldest span is max_batch_delay old; after
  // Close(), any queued span) or until `until`. On kBatch, *batch holds the spans; hand the
  // vector back with Release() once exported so its capacity is freed and its storage reused.
  PopResult PopReady(std::vector<T>* batch, Clock::time_point until);
  // The batch's spans are kept (not destroyed on this thread) for TryPush to hand back.
  void Release(std::vector<T>&& batch);

  // The storage kept for reuse goes, with the exported spans it still holds. The export
  // thread calls it when a whole flush interval brought nothing to export, so that a burst's
  // dead spans (up to ~8 MB) do not stay resident while the agent idles; they are freed on
  // the calling thread, which only costs when it happens often (it does not under load).
  void DropSpareStorage();
  // Chunks of storage kept for reuse (tests).
  size_t spare_chunks() const;

  // Refuses further pushes and wakes the consumer, which then drains without waiting.
  void Close();
  // Drops everything still queued, counted in dropped_stopping; returns how many.
  size_t DropAll();

  size_t size() const;
  // Encoded bytes held: queued plus popped and not released (0 for trace::Span items).
  size_t bytes() const;
  const SpanQueueOptions& options() const { return options_; }
  ExportCounters& counters() { return counters_; }
  const ExportCounters& counters() const { return counters_; }

 private:
  struct Chunk {
    // spans[0, count) are queued; the rest are exported spans of recycled storage, swapped out
    // by TryPush.
    std::vector<T> spans;
    size_t count = 0;
    Clock::time_point first_push;
  };

  const SpanQueueOptions options_;
  ExportCounters counters_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Chunk> chunks_;                  // every chunk but the last is full
  std::vector<std::vector<T>> free_storage_;  // exported spans inside: see above
  size_t queued_ = 0;                         // spans in chunks_
  size_t in_flight_ = 0;                      // spans popped and not yet released
  size_t bytes_ = 0;                          // ItemBytes of those, queued and in flight
  bool closed_ = false;
  // closed_, or at capacity or max_bytes: RefuseIfFull takes the lock only then.
  std::atomic<bool> refusing_{false};
  void UpdateRefusing();  // with mu_ held
};

using SpanQueue = BatchQueue<trace::Span>;
using EncodedSpanQueue = BatchQueue<EncodedSpan>;

struct ExportWorkerOptions {
  SpanQueueOptions queue;
  // Every exporter's Flush() runs at least this often, even when idle.
  std::chrono::milliseconds flush_interval{1000};
  // Called once, on the export thread, when an exporter's destination is gone for good
  // (ExportResult::output_closed); the agent stops. Null: nothing happens.
  std::function<void(const char* exporter)> on_output_closed;
};

// Owns the export thread: pops batches from its queue and hands each to every exporter.
// When every exporter names the same span_encoder() (OTLP protobuf over gRPC or HTTP), TryPush
// encodes each span on the calling thread (the ring-buffer consumer, where the span's strings
// are still in cache) and queues only its bytes; the span is freed there too, by the caller,
// on the thread that allocated it. The export thread then just assembles requests from the
// bytes. Any other exporter (console, JSON lines, OTLP/JSON) in the group: spans are queued.
class ExportWorker {
 public:
  // Starts the thread.
  ExportWorker(ExportWorkerOptions options, std::vector<std::unique_ptr<SpanExporter>> exporters);
  // Stops with a 5 s drain deadline if Stop() was not called.
  ~ExportWorker();
  ExportWorker(const ExportWorker&) = delete;
  ExportWorker& operator=(const ExportWorker&) = delete;

  // Hot path, called by the ring-buffer consumer: never waits on export or I/O. `span` may be
  // left holding an exported span, for the caller's thread to free (see SpanQueue).
  bool TryPush(trace::Span&& span) {
    return encoder_ == nullptr ? queue_.TryPush(std::move(span)) : PushEncoded(std::move(span));
  }
  // Hot path, for one thread at a time (the ring-buffer consumer): as TryPush, but an encoded
  // span waits in a local batch that CommitBatch() (or the batch filling up) hands to the queue
  // in one locked operation. Bounds and drop counters are TryPush's: the local batch counts
  // against them as if it were queued, and a span the queue cannot take is refused (and
  // counted) before it is encoded. Without encoding, spans go to the queue one by one.
  bool TryPushBatched(trace::Span&& span);
  // Hands the local batch to the queue. The batching thread calls it at the end of each
  // ring-buffer poll round and before Stop(); Stop() calls it too (the batching thread must be
  // done by then).
  void CommitBatch();
  // True when TryPush encodes (see above).
  bool encodes() const { return encoder_ != nullptr; }

  // Refuses new spans, exports what is queued until `timeout` has passed (the rest is dropped
  // and counted), flushes every exporter and joins. An Export call already running when the
  // deadline passes is waited for. Returns true when nothing was dropped. Call from one thread;
  // later calls return the first result.
  bool Stop(std::chrono::milliseconds timeout);

  const ExportCounters& counters() const {
    return encoder_ == nullptr ? queue_.counters() : encoded_.counters();
  }
  // Every exporter's StatsLine(), concatenated; safe from any thread.
  std::string ExporterStats() const {
    std::string out;
    for (const auto& e : exporters_) out += e->StatsLine();
    return out;
  }
  // Every exporter's Counters(), in exporter order; safe from any thread.
  std::vector<ExporterCounter> ExporterCounters() const {
    std::vector<ExporterCounter> out;
    for (const auto& e : exporters_) {
      for (const ExporterCounter& c : e->Counters()) out.push_back(c);
    }
    return out;
  }
  // Spans waiting in the queue now (counters().queued is the running total).
  size_t queue_depth() const { return encoder_ == nullptr ? queue_.size() : encoded_.size(); }

 private:
  static SpanEncoder CommonEncoder(const std::vector<std::unique_ptr<SpanExporter>>& exporters);
  bool PushEncoded(trace::Span&& span);
  // TryPushBatched's state, of the batching thread: items[0, count) wait for CommitBatch; the
  // rest are buffers to encode into (exported encodings that the queue handed back).
  struct LocalBatch {
    std::vector<EncodedSpan> items;
    size_t count = 0;
    size_t room = 0;   // spans the queue takes as of the last commit, less the batch
    size_t bytes = 0;  // the queue's bytes as of the last commit, plus the batch
    bool closed = false;
  };
  // Pushes items[0, count) and learns the queue's room; the items then hold buffers to reuse.
  void PushLocal();
  // RefuseIfFull on the local view: the queue, as last seen, plus the batch.
  bool LocalRefuses() const {
    return local_.closed || local_.room == 0 || local_.bytes >= encoded_.options().max_bytes;
  }
  template <typename T>
  void Run(BatchQueue<T>& queue);
  void ExportBatch(const std::vector<trace::Span>& batch);
  void ExportBatch(const std::vector<EncodedSpan>& batch);
  // Hands the batch to every exporter through export_batch, counting what each returns (or
  // throws) for it.
  template <typename Batch, typename Export>
  void ExportToEach(const Batch& batch, Export&& export_batch);
  // Every exporter's Flush(), or Finish() once the queue is drained for good.
  void FlushAll(bool finish);
  void Count(const SpanExporter& exporter, const ExportResult& result);
  void LogFailure(const char* exporter, const char* what, const char* why);

  const ExportWorkerOptions options_;
  std::vector<std::unique_ptr<SpanExporter>> exporters_;
  const SpanEncoder encoder_;  // null: spans are queued as they are
  SpanQueue queue_;            // used when encoder_ is null
  EncodedSpanQueue encoded_;   // used otherwise
  LocalBatch local_;
  std::atomic<int64_t> stop_deadline_ns_{0};  // steady clock, set before Close()
  bool drained_ = true;                       // written by the thread, read after join
  bool stopped_ = false;
  SpanQueue::Clock::time_point next_log_{};  // export thread only
  uint64_t suppressed_logs_ = 0;
  bool output_closed_ = false;  // export thread only
  std::thread thread_;
};

}  // namespace zerotrace::exporter
