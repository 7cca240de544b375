// ConsoleTreeExporter: per-trace buffering, quiet-time release, tree layout.
#include "export/console_tree_exporter.h"

#include <algorithm>
#include <ctime>
#include <unordered_map>

namespace zerotrace::exporter {
namespace {

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t IdKey(const trace::SpanId& id) {
  uint64_t k = 0;
  for (uint8_t b : id.bytes) k = (k << 8) | b;
  return k;
}

}  // namespace

ConsoleTreeExporter::ConsoleTreeExporter(FILE* out, uint64_t quiet_ns, NowFn now)
    : quiet_ns_(quiet_ns), now_(now ? std::move(now) : NowFn(MonotonicNs)), writer_(out) {}

ConsoleTreeExporter::~ConsoleTreeExporter() { (void)PrintAll(); }

ExportResult ConsoleTreeExporter::Export(const std::vector<trace::Span>& spans) {
  if (writer_.closed()) return ExportResult::Failed(spans.size());
  const uint64_t now = now_();
  for (const trace::Span& s : spans) {
    Pending& p = traces_[s.trace_id.bytes];
    p.spans.push_back(s);
    p.last_ns = now;
    buffered_++;
  }
  while (buffered_ > kMaxBufferedSpans && !traces_.empty()) {
    auto quietest = std::min_element(traces_.begin(), traces_.end(), [](auto& a, auto& b) {
      return a.second.last_ns < b.second.last_ns;
    });
    Print(quietest->second);
    traces_.erase(quietest);
  }
  return WritePrinted();
}

ExportResult ConsoleTreeExporter::Flush() {
  const uint64_t now = now_();
  for (auto it = traces_.begin(); it != traces_.end();) {
    if (now - it->second.last_ns >= quiet_ns_) {
      Print(it->second);
      it = traces_.erase(it);
    } else {
      ++it;
    }
  }
  ExportResult r = WritePrinted();
  r += writer_.CheckOutput();
  return r;
}

ExportResult ConsoleTreeExporter::PrintAll() {
  for (auto& [key, trace] : traces_) Print(trace);
  traces_.clear();
  return WritePrinted();
}

ExportResult ConsoleTreeExporter::WritePrinted() {
  if (printed_ == 0) return {};
  const ExportResult r = writer_.Write(buf_, printed_);
  buf_.clear();
  printed_ = 0;
  return r;
}

void ConsoleTreeExporter::Print(Pending& trace) {
  std::vector<trace::Span>& spans = trace.spans;
  buffered_ -= spans.size();
  printed_ += spans.size();
  std::stable_sort(spans.begin(), spans.end(), [](const trace::Span& a, const trace::Span& b) {
    return a.start_unix_ns < b.start_unix_ns;
  });
  std::unordered_map<uint64_t, size_t> by_id;
  for (size_t i = 0; i < spans.size(); i++) by_id.emplace(IdKey(spans[i].span_id), i);
  std::vector<std::vector<size_t>> children(spans.size());
  std::vector<size_t> roots;
  for (size_t i = 0; i < spans.size(); i++) {
    auto parent =
        spans[i].parent_span_id.valid() ? by_id.find(IdKey(spans[i].parent_span_id)) : by_id.end();
    if (parent == by_id.end() || parent->second == i) {
      roots.push_back(i);
    } else {
      children[parent->second].push_back(i);
    }
  }
  uint64_t first = UINT64_MAX, last = 0;
  for (const auto& s : spans) {
    first = std::min(first, s.start_unix_ns);
    last = std::max(last, s.end_unix_ns);
  }
  const uint64_t us = last > first ? (last - first + 500) / 1000 : 0;
  char head[128];
  const int n =
      std::snprintf(head, sizeof(head), " · %zu span%s · %llu.%03llums\n", spans.size(),
                    spans.size() == 1 ? "" : "s", static_cast<unsigned long long>(us / 1000),
                    static_cast<unsigned long long>(us % 1000));
  lines_.AppendNewServices(spans, &buf_);
  buf_.append("trace ").append(spans.front().trace_id.Hex()).append(head, n);
  visited_.assign(spans.size(), false);
  for (size_t r : roots) AppendSubtree(spans, children, r, "", true, true, &buf_);
  // Spans in a parent loop have no root above them: still printed, each as its own root.
  for (size_t i = 0; i < spans.size(); i++) {
    if (!visited_[i]) AppendSubtree(spans, children, i, "", true, true, &buf_);
  }
}

void ConsoleTreeExporter::AppendSubtree(const std::vector<trace::Span>& spans,
                                        const std::vector<std::vector<size_t>>& children, size_t i,
                                        const std::string& indent, bool root, bool last,
                                        std::string* out) {
  if (visited_[i]) return;  // each span once, even in a (malformed) parent loop
  visited_[i] = true;
  const std::string branch = root ? "" : indent + (last ? "└─ " : "├─ ");
  lines_.AppendLine(spans[i], out, branch);
  const std::string below = root ? "" : indent + (last ? "   " : "│  ");
  const auto& kids = children[i];
  for (size_t k = 0; k < kids.size(); k++) {
    AppendSubtree(spans, children, kids[k], below, false, k + 1 == kids.size(), out);
  }
}

}  // namespace zerotrace::exporter
