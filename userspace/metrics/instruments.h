// The RED instruments: which finished spans each measures, and with which attributes. This
// table is the seam where protocols plug into the metrics stage (docs/METRICS.md).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

#include "trace/span.h"

namespace zerotrace::metrics {

// Bucket bounds in seconds: the OpenTelemetry HTTP and RPC conventions' advice, and the
// database conventions' advice.
inline constexpr std::array<double, 14> kDurationBounds = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};
inline constexpr std::array<double, 9> kDbDurationBounds = {0.001, 0.005, 0.01, 0.05, 0.1,
                                                            0.5,   1,     5,    10};

inline constexpr size_t kMaxInstrumentKeys = 8;
// The route is read from the span name ("GET /users/{id}") when no attribute carries it.
inline constexpr std::string_view kRouteKey = "http.route";
// Appended to client instruments when the service graph knows the server's service.
inline constexpr std::string_view kPeerServiceKey = "peer.service";

struct InstrumentSpec {
  std::string_view name;  // the conventions' metric name
  std::string_view description;
  std::span<const double> bounds;
  bool client;  // measures calls this process made (gets peer.service)
  // Whether a finished span is this instrument's. One small function per protocol family.
  bool (*measures)(const trace::Span& span);
  // The attributes kept, in this order; empty entries end the list. Others never become
  // series (cardinality): url.path, ids, user agents.
  std::array<std::string_view, kMaxInstrumentKeys> keys;
};

// Whether two attribute names are equal; most names that differ differ in length or in their
// first or last byte, and are told apart without a call to memcmp. Hot path.
inline bool SameKey(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         (a.empty() || (a.front() == b.front() && a.back() == b.back() && a == b));
}

// Every instrument, in the order InstrumentOf tries them (the first that measures a span wins).
std::span<const InstrumentSpec> Instruments();
inline constexpr size_t kMaxInstruments = 8;

// The index in Instruments() of the instrument measuring `span`, or -1 (no instrument: an
// internal span, or a protocol without one). Hot path.
int InstrumentOf(const trace::Span& span);

}  // namespace zerotrace::metrics
