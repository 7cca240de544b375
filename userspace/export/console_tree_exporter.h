// Human-readable traces: each trace printed once as an indented tree when it has gone quiet.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "export/console_exporter.h"
#include "export/exporter.h"
#include "trace/span.h"

namespace zerotrace::exporter {

// Buffers spans per trace and prints a trace when no span of it arrived for `quiet` (checked
// on every Flush, which the export worker calls at least once a second):
//
//   trace 4bf92f3577b34da6a3ce929d0e0e4736 · 4 spans · 8.312ms
//   19:53:02.131 curl              CLIENT GET  /checkout  200    8.312ms trace=.. span=..
//   19:53:02.130 ├─ nginx          SERVER GET  /checkout  200    8.001ms ...
//   19:53:02.130 │  └─ frontend    CLIENT POST /orders    201    6.904ms ...
//
// Children are ordered by start time. A span whose parent is not among the printed spans (it
// is on another node, or the trace was printed in parts) starts a tree of its own and shows
// its parent id. Remaining traces are printed when the exporter is destroyed.
class ConsoleTreeExporter final : public SpanExporter {
 public:
  using NowFn = std::function<uint64_t()>;  // monotonic ns
  // `out` is not owned. `now` defaults to the monotonic clock (tests pass their own).
  ConsoleTreeExporter(FILE* out, uint64_t quiet_ns = 2'500'000'000, NowFn now = nullptr);
  ~ConsoleTreeExporter() override;

  // Spans wait here for their trace to go quiet: they are counted when printed, by this or a
  // later call. Once stdout is gone they fail at once.
  ExportResult Export(const std::vector<trace::Span>& spans) override;
  ExportResult Flush() override;
  ExportResult Finish() override { return PrintAll(); }
  const char* name() const override { return "console"; }

  // Prints every buffered trace now.
  ExportResult PrintAll();
  size_t buffered_spans() const { return buffered_; }

  // Bounds memory: beyond this many buffered spans, the quietest traces print early.
  static constexpr size_t kMaxBufferedSpans = 20000;

 private:
  struct Pending {
    std::vector<trace::Span> spans;
    uint64_t last_ns = 0;
  };
  using Key = std::array<uint8_t, 16>;
  // Formats the trace into buf_ (its spans counted in printed_).
  void Print(Pending& trace);
  // Writes buf_ out; the result covers the spans printed into it.
  ExportResult WritePrinted();
  // Appends spans[i]'s line and its subtree; `indent` is what the lines above pass down.
  void AppendSubtree(const std::vector<trace::Span>& spans,
                     const std::vector<std::vector<size_t>>& children, size_t i,
                     const std::string& indent, bool root, bool last, std::string* out);

  uint64_t quiet_ns_;
  NowFn now_;
  ConsoleExporter lines_{nullptr};  // formats each span's line
  std::map<Key, Pending> traces_;
  size_t buffered_ = 0;
  ConsoleWriter writer_;
  std::string buf_;
  uint64_t printed_ = 0;       // spans formatted into buf_
  std::vector<bool> visited_;  // per span of the trace being printed
};

}  // namespace zerotrace::exporter
