// The interface every span sink implements: console, JSON lines, OTLP.
#pragma once

#include <string>
#include <vector>

#include "trace/span.h"

namespace zerotrace::exporter {

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
  // Self-metrics as " key=value" pairs for the agent's stats line; safe from any thread.
  virtual std::string StatsLine() const { return {}; }
};

}  // namespace zerotrace::exporter
