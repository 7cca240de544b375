// --jsonl PATH: one OTLP/JSON ExportTraceServiceRequest per line, appended to a file.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "export/exporter.h"
#include "trace/span.h"

namespace zerotrace::exporter {

class JsonlExporter final : public SpanExporter {
 public:
  // Opens (creates or appends to) path; the error names the path and the reason.
  static StatusOr<std::unique_ptr<JsonlExporter>> Open(const std::string& path);
  // Flushes and closes the file.
  ~JsonlExporter() override;
  JsonlExporter(const JsonlExporter&) = delete;
  JsonlExporter& operator=(const JsonlExporter&) = delete;

  // Buffers one line per non-empty batch; the file sees it on Flush() or when the buffer fills.
  void Export(const std::vector<trace::Span>& spans) override;
  void Flush() override;
  const char* name() const override { return "jsonl"; }

  // Lines whose write or flush failed (disk full, file system gone); readable from any thread.
  uint64_t write_failed() const { return write_failed_.load(std::memory_order_relaxed); }
  std::vector<ExporterCounter> Counters() const override {
    return {{"jsonl_write_failed", "span lines whose write or flush failed", write_failed()}};
  }
  const std::string& path() const { return path_; }

 private:
  JsonlExporter(FILE* file, std::string path);
  void Fail(const char* what);

  FILE* file_;
  std::string path_;
  std::string line_;  // reused across batches
  std::atomic<uint64_t> write_failed_{0};
  uint64_t unflushed_lines_ = 0;  // counted as failed if the flush fails
  bool failing_ = false;          // logs once per run of failures, not once per line
};

}  // namespace zerotrace::exporter
