// The agent's self-metrics as a test sees them: /metrics scraped over loopback, and the
// agent's memory from /proc (its peak, which a scrape between two polls could miss).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace zerotrace::e2e {

// Samples of one scrape, keyed by name{labels} as the agent wrote them.
using MetricSamples = std::map<std::string, double>;

// The port of the agent's "zerotrace: metrics at http://127.0.0.1:PORT/metrics" line; 0 if none.
int MetricsPortFrom(const std::vector<std::string>& agent_output);
// GET /metrics from 127.0.0.1:port; nullopt when the agent did not answer 200 within 5 s.
std::optional<MetricSamples> ScrapeMetrics(int port);
// Scrapes until `done` holds for a scrape or `timeout` passes; returns the last scrape (empty
// when none succeeded). The caller checks `done` again on the result.
MetricSamples ScrapeUntil(int port, const std::function<bool(const MetricSamples&)>& done,
                          std::chrono::milliseconds timeout);
// A sample's value, or -1 when absent.
double Sample(const MetricSamples& m, const std::string& key);

// VmRSS and VmHWM (peak resident set) of a process in bytes; 0 when unreadable.
uint64_t ResidentBytes(pid_t pid);
uint64_t PeakResidentBytes(pid_t pid);

// True in sanitizer builds, where the agent's RSS is inflated by shadow memory and quarantine.
constexpr bool kSanitizedBuild =
#if defined(__SANITIZE_ADDRESS__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

}  // namespace zerotrace::e2e
