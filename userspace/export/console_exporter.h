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

// Line layout (columns padded; long values widen their column, overlong ones are cut with "..."):
//   HH:MM:SS.mmm SERVICE KIND METHOD PATH STATUS DURATION trace=xxxxxxxx span=xxxxxxxx [parent=..]
// Time is the local time of the span's end. STATUS is http.response.status_code, else
// error.type, else "ERR"/"-". Without http.request.method and url.path the span name fills the
// METHOD+PATH columns. Bytes that could drive a terminal (control characters, ill-formed UTF-8)
// are written as \xNN, since they come from untrusted traffic.
class ConsoleExporter final : public SpanExporter {
 public:
  explicit ConsoleExporter(FILE* out) : out_(out) {}  // out is not owned

  // Writes the batch with one fwrite and one fflush.
  void Export(const std::vector<trace::Span>& spans) override;
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
  std::string buf_;
  std::unordered_set<std::string> described_;
  int64_t cached_second_ = -1;  // local HH:MM:SS of this unix second is in cached_hms_
  char cached_hms_[8] = {};     // "HH:MM:SS", not NUL-terminated
};

}  // namespace zerotrace::exporter
