// The interface every span sink implements: console, JSON lines, OTLP.
#pragma once

#include <cstdint>
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

// Called only from the export thread (ExportWorker), never from the ring-buffer consumer, so
// an implementation may block on I/O; it must bound that I/O by its own timeout.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  // One batch of finished spans; the vector is only valid during the call.
  virtual void Export(const std::vector<trace::Span>& spans) = 0;
  // Pushes out anything buffered; called at least once a second and at shutdown.
  virtual void Flush() {}
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
