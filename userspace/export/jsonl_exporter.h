// --jsonl PATH: one OTLP/JSON ExportTraceServiceRequest per line, appended to a file.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "export/exporter.h"
#include "trace/span.h"

namespace zerotrace::exporter {

// Crash-safe by construction: each line goes out in one write() on an O_APPEND descriptor, so
// a killed agent leaves at most its last line cut short, and the next run starts on a fresh
// line when the file does not end with a newline. Nothing is buffered in the process: a span
// counts as delivered once the kernel has taken its line.
class JsonlExporter final : public SpanExporter {
 public:
  // Opens (creates or appends to) path; the error names the path and the reason.
  static StatusOr<std::unique_ptr<JsonlExporter>> Open(const std::string& path);
  ~JsonlExporter() override;
  JsonlExporter(const JsonlExporter&) = delete;
  JsonlExporter& operator=(const JsonlExporter&) = delete;

  // One line per non-empty batch, written with one write().
  ExportResult Export(const std::vector<trace::Span>& spans) override;
  const char* name() const override { return "jsonl"; }

  // Lines whose write failed (disk full, file system gone); readable from any thread.
  uint64_t write_failed() const { return write_failed_.load(std::memory_order_relaxed); }
  std::vector<ExporterCounter> Counters() const override {
    return {{"jsonl_write_failed", "span lines whose write failed", write_failed()}};
  }
  const std::string& path() const { return path_; }

 private:
  JsonlExporter(int fd, std::string path, bool line_open);
  // Writes all of line_ (a short write continues where it stopped); false with errno set.
  bool WriteLine();

  int fd_;
  std::string path_;
  std::string line_;  // reused across batches
  std::atomic<uint64_t> write_failed_{0};
  // The file ends inside a line (a crashed run, or a write that failed half-way): the next
  // line starts with a newline of its own.
  bool line_open_;
  bool failing_ = false;  // logs once per run of failures, not once per line
};

}  // namespace zerotrace::exporter
