// The human-readable form of received spans: one line per span.
#pragma once

#include <string>

#include "otlp_json_codec.h"

namespace zerotrace::otlp_sink {

// Appends one line per span:
//   <service.name> <KIND> "<name>" status=<UNSET|OK|ERROR> trace=<hex> span=<hex>
//   parent=<hex|-> duration=<ms with ns precision>ms [<key>=<value>]...
// (one line, single spaces). Attribute values: strings JSON-quoted, integers and doubles as
// numbers, bools true/false, bytes as hex, arrays [a,b], kvlists {k=v,...}. service.name is "-"
// when the resource has none.
void AppendReadableSpans(const ExportRequest& request, std::string* out);

}  // namespace zerotrace::otlp_sink
