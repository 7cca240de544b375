// Several export workers side by side, so that one slow exporter never holds up another.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "export/exporter.h"
#include "export/span_queue.h"

namespace zerotrace::exporter {

// Totals of every worker's ExportCounters (a span exported by two workers counts twice).
struct ExportTotals {
  uint64_t queued = 0, dropped_full = 0, dropped_stopping = 0, exported = 0, export_failed = 0;
};

// Each group of exporters gets its own queue and thread: a collector that is down or slow
// (retries, timeouts) delays only its own group, never the console or the JSON lines file.
class ExportFanout {
 public:
  ExportFanout(ExportWorkerOptions options,
               std::vector<std::vector<std::unique_ptr<SpanExporter>>> groups);

  // Hot path: a copy of the span to every group but the last, which gets the span itself.
  void TryPush(trace::Span&& span);
  // Hot path, the ring-buffer consumer's: as TryPush, through each worker's local batch
  // (ExportWorker::TryPushBatched); CommitBatches() hands the batches to the queues.
  void TryPushBatched(trace::Span&& span);
  void CommitBatches();
  // Stops every worker at once; each exports what it can within `timeout`. True when no
  // worker dropped anything.
  bool Stop(std::chrono::milliseconds timeout);

  ExportTotals Totals() const;
  std::string ExporterStats() const;
  // Every worker's exporters' Counters(), in group order; safe from any thread.
  std::vector<ExporterCounter> ExporterCounters() const;
  size_t queue_depth() const;
  size_t groups() const { return workers_.size(); }

 private:
  std::vector<std::unique_ptr<ExportWorker>> workers_;
};

}  // namespace zerotrace::exporter
