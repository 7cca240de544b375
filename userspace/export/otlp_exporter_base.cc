// The OTLP retry loop: one encode per batch, attempts bounded by timeout, policy and shutdown.
#include "export/otlp_exporter_base.h"

#include <algorithm>
#include <cstdio>

#include "export/otlp_proto.h"

namespace zerotrace::exporter {
namespace {

using std::chrono::milliseconds;
constexpr auto kRelaxed = std::memory_order_relaxed;

int64_t ToNs(RetryClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string Describe(const AttemptResult& r) {
  return r.message.empty() ? r.reason : r.reason + ": " + r.message;
}

// Half of gRPC's (and so the collectors') default 4 MiB limit on a received message.
constexpr size_t kDefaultMaxRequestBytes = 2 << 20;

OtlpExporterOptions WithDefaults(OtlpExporterOptions o) {
  if (o.max_request_bytes == 0) o.max_request_bytes = kDefaultMaxRequestBytes;
  return o;
}

std::string Seconds(milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g s", static_cast<double>(ms.count()) / 1000);
  return buf;
}

}  // namespace

OtlpExporterBase::OtlpExporterBase(OtlpConfig config, OtlpExporterOptions options)
    : config_(std::move(config)),
      options_(WithDefaults(std::move(options))),
      policy_(options_.retry, options_.retry_seed),
      sleeper_(options_.sleeper ? options_.sleeper : std::make_shared<RealSleeper>()),
      endpoint_for_logs_(EndpointForLogs(config_.endpoint)) {}

void OtlpExporterBase::BeginShutdown(RetryClock::time_point deadline) {
  shutdown_ns_.store(std::min(ToNs(deadline), shutdown_ns_.load()));
  if (collector_unreachable_.load()) {
    // Waiting for a collector that does not answer only delays the exit: give up now.
    sleeper_->Limit(sleeper_->Now());
    CancelAttempt();
  } else {
    sleeper_->Limit(deadline);
  }
}

std::vector<ExporterCounter> OtlpExporterBase::Counters() const {
  const OtlpExporterCounters& c = counters_;
  return {
      {"otlp_batches_ok", "OTLP requests the collector accepted (maybe partially)",
       c.batches_ok.load(kRelaxed)},
      {"otlp_spans_ok", "spans the collector accepted", c.spans_ok.load(kRelaxed)},
      {"otlp_retries", "OTLP attempts after a batch's first", c.retries.load(kRelaxed)},
      {"otlp_attempts_retryable_failed", "OTLP attempts that failed with a retryable error",
       c.attempts_retryable_failed.load(kRelaxed)},
      {"otlp_spans_dropped_retry_exhausted", "spans dropped after retryable errors ran out of time",
       c.spans_dropped_retry_exhausted.load(kRelaxed)},
      {"otlp_spans_dropped_non_retryable", "spans dropped on a non-retryable collector error",
       c.spans_dropped_non_retryable.load(kRelaxed)},
      {"otlp_spans_rejected_partial", "spans the collector rejected in a partial success",
       c.spans_rejected_partial.load(kRelaxed)},
      {"otlp_spans_dropped_shutdown", "spans whose retries the agent's shutdown cut off",
       c.spans_dropped_shutdown.load(kRelaxed)},
      {"otlp_bytes_sent", "OTLP request body bytes sent", c.bytes_sent.load(kRelaxed)},
  };
}

ExportResult OtlpExporterBase::Export(const std::vector<trace::Span>& spans) {
  if (spans.empty()) return {};
  const size_t bytes = Encode(spans);
  if (bytes > options_.max_request_bytes && spans.size() > 1) {
    // Rare (spans with very long attributes): each half encoded anew, as its own request.
    const auto middle = spans.begin() + static_cast<std::ptrdiff_t>(spans.size() / 2);
    ExportResult r = Export(std::vector<trace::Span>(spans.begin(), middle));
    r += Export(std::vector<trace::Span>(middle, spans.end()));
    return r;
  }
  return SendWithRetries(spans.size());
}

SpanEncoder OtlpExporterBase::span_encoder() const {
  return TakesProto() ? &EncodeOtlpSpan : nullptr;
}

ExportResult OtlpExporterBase::ExportEncoded(const std::vector<EncodedSpan>& spans) {
  return ExportAssembled(spans);
}

ExportResult OtlpExporterBase::ExportAssembled(std::span<const EncodedSpan> spans) {
  if (spans.empty()) return {};
  const size_t bytes = Assemble(spans);
  if (bytes > options_.max_request_bytes && spans.size() > 1) {
    const size_t middle = spans.size() / 2;  // as Export() splits
    ExportResult r = ExportAssembled(spans.first(middle));
    r += ExportAssembled(spans.subspan(middle));
    return r;
  }
  return SendWithRetries(spans.size());
}

ExportResult OtlpExporterBase::SendWithRetries(size_t spans) {
  const RetryClock::time_point start = sleeper_->Now();
  const RetryClock::time_point give_up = start + policy_.options().max_elapsed;
  for (int retry = 0;; retry++) {
    const RetryClock::time_point now = sleeper_->Now();
    const int64_t shutdown_ns = shutdown_ns_.load();
    const RetryClock::time_point shutdown{std::chrono::nanoseconds(shutdown_ns)};
    const bool stopping = shutdown_ns != INT64_MAX;
    if (now >= shutdown || (stopping && collector_unreachable_.load())) {
      return Drop(&counters_.spans_dropped_shutdown, spans, "shutdown",
                  "the agent is stopping and the collector has not taken the batch");
    }
    // One request never runs past the batch's or the shutdown's deadline.
    const auto budget = std::chrono::ceil<milliseconds>(std::min(give_up, shutdown) - now);
    const AttemptResult result = Send(std::clamp(budget, milliseconds(1), config_.timeout));
    collector_unreachable_.store(result.kind == AttemptResult::Kind::kRetryable &&
                                 result.unreachable);
    if (result.kind == AttemptResult::Kind::kPermanent) {
      return Drop(&counters_.spans_dropped_non_retryable, spans, "error:" + result.reason,
                  "export failed, not retryable: " + Describe(result));
    }
    if (result.kind == AttemptResult::Kind::kOk) return Accepted(result, spans);
    counters_.attempts_retryable_failed.fetch_add(1, kRelaxed);
    if (result.unreachable && shutdown_ns_.load() != INT64_MAX) {
      // The agent is stopping (maybe since this attempt began) and the collector is not there.
      return Drop(&counters_.spans_dropped_shutdown, spans, "shutdown",
                  "the agent is stopping and the collector does not answer: " + Describe(result));
    }
    const auto elapsed = std::chrono::duration_cast<milliseconds>(sleeper_->Now() - start);
    const auto delay = policy_.NextDelay(retry + 1, result.server_delay, elapsed);
    if (!delay) {
      return Drop(&counters_.spans_dropped_retry_exhausted, spans, "exhausted:" + result.reason,
                  "export failed (" + Describe(result) + ") and retrying would pass the " +
                      Seconds(policy_.options().max_elapsed) + " retry deadline");
    }
    Log("retry:" + result.reason, "export failed (" + Describe(result) + "); retrying in " +
                                      Seconds(*delay) +
                                      (result.server_delay ? " as the collector asked" : ""));
    const RetryClock::time_point wake = sleeper_->Now() + *delay;
    const RetryClock::time_point stop{std::chrono::nanoseconds(shutdown_ns_.load())};
    if (wake >= stop) {
      return Drop(&counters_.spans_dropped_shutdown, spans, "shutdown",
                  "the agent is stopping; last export attempt failed: " + Describe(result));
    }
    if (!sleeper_->SleepUntil(wake)) {
      return Drop(&counters_.spans_dropped_shutdown, spans, "shutdown",
                  "the agent is stopping; last export attempt failed: " + Describe(result));
    }
    counters_.retries.fetch_add(1, kRelaxed);
  }
}

ExportResult OtlpExporterBase::Accepted(const AttemptResult& result, size_t spans) {
  const auto rejected =
      static_cast<size_t>(std::clamp<int64_t>(result.rejected_spans, 0, int64_t(spans)));
  counters_.batches_ok.fetch_add(1, kRelaxed);
  counters_.spans_ok.fetch_add(spans - rejected, kRelaxed);
  if (rejected > 0) {
    counters_.spans_rejected_partial.fetch_add(rejected, kRelaxed);
    Log("partial", "the collector rejected " + std::to_string(rejected) + " of " +
                       std::to_string(spans) + " spans: " +
                       (result.partial_message.empty() ? "(no message)" : result.partial_message));
  } else if (!result.partial_message.empty()) {
    Log("partial-warning",
        "the collector accepted the batch with a warning: " + result.partial_message);
  }
  return {spans - rejected, rejected, false};
}

ExportResult OtlpExporterBase::Drop(std::atomic<uint64_t>* counter, size_t spans,
                                    const std::string& reason, const std::string& line) {
  counter->fetch_add(spans, kRelaxed);
  Log(reason, "dropped " + std::to_string(spans) + " spans: " + line);
  return ExportResult::Failed(spans);
}

ExportResult OtlpExporterBase::Finish() {
  const OtlpExporterCounters& c = counters_;
  const uint64_t exhausted = c.spans_dropped_retry_exhausted.load(kRelaxed);
  const uint64_t refused = c.spans_dropped_non_retryable.load(kRelaxed);
  const uint64_t shutdown = c.spans_dropped_shutdown.load(kRelaxed);
  const uint64_t rejected = c.spans_rejected_partial.load(kRelaxed);
  const uint64_t dropped = exhausted + refused + shutdown + rejected;
  if (dropped > 0) {
    Emit("in total " + std::to_string(c.spans_ok.load(kRelaxed)) + " spans delivered and " +
         std::to_string(dropped) + " dropped (" + std::to_string(exhausted) +
         " after retries ran out, " + std::to_string(refused) + " on errors not worth a retry, " +
         std::to_string(shutdown) + " at shutdown, " + std::to_string(rejected) +
         " rejected by the collector)");
  }
  return {};
}

void OtlpExporterBase::Log(const std::string& reason, const std::string& line) {
  const RetryClock::time_point now = sleeper_->Now();
  uint64_t suppressed;
  {
    std::lock_guard lock(log_mu_);
    LogState& state = log_state_[reason];
    if (now < state.next) {
      state.suppressed++;
      return;
    }
    suppressed = state.suppressed;
    state.suppressed = 0;
    state.next = now + options_.log_interval;
  }
  if (suppressed > 0) {
    Emit(line + " (and " + std::to_string(suppressed) + " more like it since the last report)");
  } else {
    Emit(line);
  }
}

void OtlpExporterBase::Emit(const std::string& line) {
  const std::string full =
      std::string("exporter ") + name() + " (" + endpoint_for_logs_ + "): " + line;
  if (options_.log) {
    options_.log(full);
  } else {
    std::fprintf(stderr, "zerotrace: %s\n", full.c_str());
  }
}

}  // namespace zerotrace::exporter
