// OTLP/JSON encoding of spans (ExportTraceServiceRequest) and the UTF-8-safe JSON string writer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trace/span.h"

namespace zerotrace::exporter {

// One line (no trailing newline) of OTLP/JSON ExportTraceServiceRequest: spans grouped into
// one ResourceSpans per distinct Resource (same pointer or equal content), in order of first
// appearance, each with one ScopeSpans for scope "zerotrace". Ids are lowercase hex, enums are
// integers, 64-bit integers are decimal strings. Every span has a "status" object; it is {} when
// the status is unset. Resource attributes: service.name (default "unknown_service:<exe>"),
// process.pid, process.executable.name/.path, host.name, os.type, container.id, then
// Resource::extra minus keys already present.
std::string ToOtlpJson(const std::vector<trace::Span>& spans);
// Same, appended to *out (reuse one buffer across batches to avoid reallocation).
void AppendOtlpJson(const std::vector<trace::Span>& spans, std::string* out);

// Appends s as a quoted JSON string. Escapes '"', '\\' and control characters (U+0000..U+001F);
// valid UTF-8 passes through; each maximal ill-formed UTF-8 subpart becomes U+FFFD, as the
// Unicode standard recommends, because span attributes come from untrusted traffic.
void AppendJsonString(std::string_view s, std::string* out);

// One step of strict UTF-8 decoding (no overlongs, surrogates or code points past U+10FFFF).
struct Utf8Step {
  uint32_t code_point;  // U+FFFD when !valid
  uint32_t length;      // bytes consumed, >= 1: the sequence or the maximal ill-formed subpart
  bool valid;
};
// Precondition: !s.empty().
Utf8Step DecodeUtf8(std::string_view s);

}  // namespace zerotrace::exporter
