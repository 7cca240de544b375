// The interface every span sink implements: console, JSON lines, OTLP.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trace/span.h"

namespace zerotrace::exporter {

// One self-metric counter of an exporter, as it is at the time of the call.
struct ExporterCounter {
  const char* key;   // stats-line key and metric name stem, e.g. "otlp_spans_ok"
  const char* help;  // one line: what it counts
  uint64_t value;
};

// What became of spans an exporter was given, as far as it knows when the call returns. A span
// given to Export() is, sooner or later, in exactly one of `delivered` and `failed` of one
// result; spans an exporter still holds (the console tree waits for a trace to be complete)
// come out in the result of a later Flush() or Finish().
struct [[nodiscard]] ExportResult {
  uint64_t delivered = 0;  // reached the destination: the collector accepted them, the file
                           // or stdout took their bytes
  uint64_t failed = 0;     // never will: a write error, the collector refused, retries gave
                           // up; the exporter's own counters and log say why
  // The destination is gone for good (stdout or a pipe whose reader has exited): the agent
  // stops, as any command-line tool does on EPIPE.
  bool output_closed = false;

  static ExportResult Delivered(uint64_t n) { return {n, 0, false}; }
  static ExportResult Failed(uint64_t n) { return {0, n, false}; }
  ExportResult& operator+=(const ExportResult& o) {
    delivered += o.delivered;
    failed += o.failed;
    output_closed = output_closed || o.output_closed;
    return *this;
  }
};

// A span already in its exporter's wire format (OTLP protobuf: the Span message, without the
// ScopeSpans.spans tag and length that the request puts before it), encoded on the ring-buffer
// consumer's thread right when the span was finished, with the resource that requests group it by.
// The span itself is freed there.
struct EncodedSpan {
  std::string bytes;
  std::shared_ptr<const trace::Resource> resource;
};

// Replaces *out with one span's encoding; a pure function, safe from any thread.
using SpanEncoder = void (*)(const trace::Span& span, std::string* out);

// Called only from the export thread (ExportWorker), never from the ring-buffer consumer, so
// an implementation may block on I/O; it must bound that I/O by its own timeout.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  // One batch of finished spans; the vector is only valid during the call.
  virtual ExportResult Export(const std::vector<trace::Span>& spans) = 0;
  // Pushes out anything buffered; called at least once a second.
  virtual ExportResult Flush() { return {}; }
  // Called once when the agent stops, after the last Export: everything still held goes out
  // now (or fails), so that the final counters add up.
  virtual ExportResult Finish() { return Flush(); }
  // Non-null: this exporter can take its batches as spans that this function encoded, on the
  // ring-buffer consumer's thread, through ExportEncoded(). The export worker does so when every
  // exporter of its group names the same encoder (ExportWorker).
  virtual SpanEncoder span_encoder() const { return nullptr; }
  // One batch of spans encoded by span_encoder(); the same guarantees as Export().
  virtual ExportResult ExportEncoded(const std::vector<EncodedSpan>& spans) {
    return ExportResult::Failed(spans.size());
  }
  // Short, stable name for logs and self-metrics ("console", "jsonl", ...).
  virtual const char* name() const = 0;
  // Self-metric counters; safe from any thread.
  virtual std::vector<ExporterCounter> Counters() const { return {}; }
  // Counters() as " key=value" pairs for the agent's stats line; safe from any thread.
  std::string StatsLine() const {
    std::string out;
    for (const ExporterCounter& c : Counters()) {
      out += ' ';
      out += c.key;
      out += '=';
      out += std::to_string(c.value);
    }
    return out;
  }
};

}  // namespace zerotrace::exporter
