// Cost of metrics per span: the same stream of linked HTTP client/server span pairs handed to
// nothing (baseline) and to MetricsStage::OnSpan. Registered A B B A so drift shows up; then C,
// as B without top but after a thread was started (as in the agent).
// Items are spans; ns per span = the difference of the two.
#include <benchmark/benchmark.h>

#include <cstring>
#include <thread>
#include <vector>

#include "metrics/metrics_stage.h"
#include "metrics_testing.h"

namespace zerotrace::metrics {
namespace {

using testing::HttpSpan;
using trace::SpanKind;

// 16 routes x 2 statuses on 4 services: 64 server series, a realistic steady state.
std::vector<trace::Span> Spans() {
  std::vector<trace::Span> out;
  for (int i = 0; i < 64; i++) {
    const std::string route = "/api/v1/orders/" + std::to_string(i % 16) + "/{id}";
    const int64_t status = i % 8 == 0 ? 500 : 200;
    out.push_back(HttpSpan("frontend-" + std::to_string(i % 4), SpanKind::kClient, status,
                           1 + i % 20, 0, 0, route, "orders.internal", 8080));
    out.push_back(HttpSpan("orders-" + std::to_string(i % 4), SpanKind::kServer, status,
                           0.5 + i % 20, 0, 0, route));
  }
  return out;
}

// Fresh ids for each pair, as the linker gives them: client id n, server parent n.
void Relabel(std::vector<trace::Span>& spans, size_t pair, uint64_t n) {
  std::memcpy(spans[2 * pair].span_id.bytes.data(), &n, sizeof(n));
  std::memcpy(spans[2 * pair + 1].parent_span_id.bytes.data(), &n, sizeof(n));
  const uint64_t server = n | (1ULL << 63);
  std::memcpy(spans[2 * pair + 1].span_id.bytes.data(), &server, sizeof(server));
}

template <bool kMetrics, bool kTop = true, bool kThreaded = false>
void BM_Spans(benchmark::State& state) {
  // The agent has several threads, so shared_ptr counts are atomic there; in a process that
  // never started a thread, libstdc++ updates them plainly. There is no way back: last.
  if constexpr (kThreaded) std::thread([] {}).join();
  std::vector<trace::Span> spans = Spans();
  MetricsStage::Options options;
  options.summaries = kTop;  // the agent keeps the top view's sketches only with --top
  MetricsStage stage(options);
  uint64_t n = 1, now = 0, sink = 0;
  for (auto _ : state) {
    const size_t pair = n % (spans.size() / 2);
    Relabel(spans, pair, n++);
    now += 50'000;  // 20 k pairs a second
    for (size_t side = 0; side < 2; side++) {
      const trace::Span& s = spans[2 * pair + side];
      if constexpr (kMetrics) {
        stage.OnSpan(s, now);
      } else {
        sink += s.span_id.bytes[0];
        benchmark::DoNotOptimize(sink);
      }
    }
    if constexpr (kMetrics) {
      if (n % 1024 == 0) stage.Tick(now);  // the consumer loop's tick
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2);
}

BENCHMARK_TEMPLATE(BM_Spans, false)->Name("A_without_metrics");
BENCHMARK_TEMPLATE(BM_Spans, true)->Name("B_with_metrics");
BENCHMARK_TEMPLATE(BM_Spans, true)->Name("B_with_metrics_again");
BENCHMARK_TEMPLATE(BM_Spans, true, false)->Name("B_with_metrics_no_top");
BENCHMARK_TEMPLATE(BM_Spans, false)->Name("A_without_metrics_again");
BENCHMARK_TEMPLATE(BM_Spans, true, false, true)->Name("C_with_metrics_no_top_threaded");

}  // namespace
}  // namespace zerotrace::metrics
