// ExportFanout: one ExportWorker per group, pushed to in order, stopped in parallel.
#include "export/export_fanout.h"

#include <thread>

namespace zerotrace::exporter {

ExportFanout::ExportFanout(ExportWorkerOptions options,
                           std::vector<std::vector<std::unique_ptr<SpanExporter>>> groups) {
  for (auto& group : groups) {
    if (!group.empty())
      workers_.push_back(std::make_unique<ExportWorker>(options, std::move(group)));
  }
}

void ExportFanout::TryPush(trace::Span&& span) {
  if (workers_.empty()) return;
  for (size_t i = 0; i + 1 < workers_.size(); i++) workers_[i]->TryPush(trace::Span(span));
  workers_.back()->TryPush(std::move(span));
}

void ExportFanout::TryPushBatched(trace::Span&& span) {
  if (workers_.empty()) return;
  for (size_t i = 0; i + 1 < workers_.size(); i++) workers_[i]->TryPushBatched(trace::Span(span));
  workers_.back()->TryPushBatched(std::move(span));
}

void ExportFanout::CommitBatches() {
  for (const auto& w : workers_) w->CommitBatch();
}

bool ExportFanout::Stop(std::chrono::milliseconds timeout) {
  std::vector<std::thread> stopping;
  std::vector<char> clean(workers_.size(), 0);
  for (size_t i = 0; i < workers_.size(); i++) {
    stopping.emplace_back([this, i, timeout, &clean] { clean[i] = workers_[i]->Stop(timeout); });
  }
  bool all = true;
  for (size_t i = 0; i < stopping.size(); i++) {
    stopping[i].join();
    all = all && clean[i];
  }
  return all;
}

ExportTotals ExportFanout::Totals() const {
  ExportTotals t;
  for (const auto& w : workers_) {
    const ExportCounters& c = w->counters();
    t.queued += c.queued.load();
    t.dropped_full += c.dropped_full.load();
    t.dropped_stopping += c.dropped_stopping.load();
    t.exported += c.exported.load();
    t.export_failed += c.export_failed.load();
  }
  return t;
}

std::string ExportFanout::ExporterStats() const {
  std::string out;
  for (const auto& w : workers_) out += w->ExporterStats();
  return out;
}

std::vector<ExporterCounter> ExportFanout::ExporterCounters() const {
  std::vector<ExporterCounter> out;
  for (const auto& w : workers_) {
    for (const ExporterCounter& c : w->ExporterCounters()) out.push_back(c);
  }
  return out;
}

size_t ExportFanout::queue_depth() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->queue_depth();
  return n;
}

}  // namespace zerotrace::exporter
