// Human-readable output: one aligned line per finished span.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "export/exporter.h"
#include "trace/span.h"

namespace zerotrace::exporter {

// True when `out` is a pipe or socket whose reader has gone (a write would fail with EPIPE).
bool ReaderGone(FILE* out);

// Writes the console exporters' text to a FILE they do not own, and tells what became of it.
class ConsoleWriter {
 public:
  explicit ConsoleWriter(FILE* out) : out_(out) {}
  // Writes and flushes `text`, which holds `spans` spans: delivered if that succeeded, else
  // failed; output_closed on EPIPE (the first failure of a run is logged on stderr).
  ExportResult Write(std::string_view text, uint64_t spans);
  // output_closed when the FILE is a pipe or socket whose reader has gone: `zerotrace | head`
  // must end even when no span comes after head exits.
  ExportResult CheckOutput();
  bool closed() const { return closed_; }

 private:
  ExportResult Fail(int error, uint64_t spans);
  FILE* out_;
  bool failing_ = false;  // logs once per run of failures
  bool closed_ = false;
};

// Line layout (columns padded; long values widen their column, overlong ones are cut with "..."):
//   HH:MM:SS.mmm SERVICE KIND METHOD PATH STATUS DURATION trace=xxxxxxxx span=xxxxxxxx [parent=..]
// Time is the local time of the span's end. STATUS is http.response.status_code, else
// error.type, else "ERR"/"-". Without http.request.method and url.path the span name fills the
// METHOD+PATH columns. Bytes that could drive a terminal (control characters, ill-formed UTF-8)
// are written as \xNN, since they come from untrusted traffic.
class ConsoleExporter final : public SpanExporter {
 public:
  explicit ConsoleExporter(FILE* out) : out_(out) {}  // out is not owned

  // Writes the batch with one fwrite and one fflush; the spans are delivered when both succeed.
  ExportResult Export(const std::vector<trace::Span>& spans) override;
  // Notices a pipe whose reader has gone even when there is nothing to write.
  ExportResult Flush() override;
  const char* name() const override { return "console"; }

  // Appends span's line, with its '\n', to *out. `tree` (tree-drawing text) goes between the
  // time and the service columns.
  void AppendLine(const trace::Span& span, std::string* out, std::string_view tree = {});

  // Before a process's first span, one line on who it is (its resource), e.g.
  //   service orders · pid 4242 · cpython · python3 -B /srv/order.py · container 3f4e5d6c7b8a
  // Appended for each resource of `spans` with a pid that was not described yet (remembered by
  // pid, service name and instance id; the memory is cleared past kMaxDescribed).
  void AppendNewServices(const std::vector<trace::Span>& spans, std::string* out);
  static constexpr size_t kMaxDescribed = 4096;

 private:
  FILE* out_;
  ConsoleWriter writer_{out_};
  std::string buf_;
  std::unordered_set<std::string> described_;
  int64_t cached_second_ = -1;  // local HH:MM:SS of this unix second is in cached_hms_
  char cached_hms_[8] = {};     // "HH:MM:SS", not NUL-terminated
};

}  // namespace zerotrace::exporter
