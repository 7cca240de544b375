// Cost per span of ToOtlpJson and the console exporter, on batches of typical HTTP spans.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "export/console_exporter.h"
#include "export/otlp_json.h"
#include "export/span_queue.h"

namespace zerotrace::exporter {
namespace {

using trace::Span;

constexpr int kBatch = 512;

// A server span as the HTTP/1.x stitcher makes it: 15 attributes, 4 processes per batch.
std::vector<Span> TypicalBatch() {
  std::vector<std::shared_ptr<const trace::Resource>> resources;
  for (int i = 0; i < 4; i++) {
    auto r = std::make_shared<trace::Resource>();
    r->service_name = "service-" + std::to_string(i);
    r->pid = 1000 + i;
    r->executable_name = "python3";
    r->executable_path = "/usr/bin/python3.11";
    r->host_name = "node-1.example.internal";
    r->container_id = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00998877665544332211";
    r->extra = {{"k8s.node.name", std::string("node-1")}};
    resources.push_back(r);
  }
  std::vector<Span> spans;
  for (int i = 0; i < kBatch; i++) {
    Span s;
    s.trace_id = trace::NewTraceId();
    s.span_id = trace::NewSpanId();
    if (i % 2) s.parent_span_id = trace::NewSpanId();
    s.name = "GET /api/v1/orders/{id}";
    s.kind = i % 2 ? trace::SpanKind::kClient : trace::SpanKind::kServer;
    s.start_unix_ns = 1704127234000000000ull + i * 1000003ull;
    s.end_unix_ns = s.start_unix_ns + 12345678;
    s.attributes = {
        {"http.request.method", std::string("GET")},
        {"url.path", "/api/v1/orders/" + std::to_string(100000 + i)},
        {"url.query", std::string("page=REDACTED&limit=REDACTED")},
        {"url.scheme", std::string("http")},
        {"server.address", std::string("orders.default.svc.cluster.local")},
        {"server.port", int64_t{8080}},
        {"client.address", std::string("10.244.1.17")},
        {"network.peer.address", std::string("10.244.1.17")},
        {"network.peer.port", int64_t{51234 + i}},
        {"network.protocol.version", std::string("1.1")},
        {"user_agent.original", std::string("Mozilla/5.0 (X11; Linux x86_64) curl/7.88.1")},
        {"http.response.status_code", int64_t{200}},
        {"http.request.body.size", int64_t{0}},
        {"http.response.body.size", int64_t{1024}},
        {"http.route", std::string("/api/v1/orders/{id}")},
    };
    s.resource = resources[i % 4];
    spans.push_back(std::move(s));
  }
  return spans;
}

void SetRates(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["ns_per_span"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kBatch,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_ToOtlpJson(benchmark::State& state) {
  const std::vector<Span> spans = TypicalBatch();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string out = ToOtlpJson(spans);
    bytes = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  SetRates(state);
  state.counters["bytes_per_span"] = static_cast<double>(bytes) / kBatch;
}
BENCHMARK(BM_ToOtlpJson);

// The JSON lines exporter's path: one buffer reused across batches.
void BM_AppendOtlpJsonReusedBuffer(benchmark::State& state) {
  const std::vector<Span> spans = TypicalBatch();
  std::string out;
  for (auto _ : state) {
    out.clear();
    AppendOtlpJson(spans, &out);
    benchmark::DoNotOptimize(out.data());
  }
  SetRates(state);
}
BENCHMARK(BM_AppendOtlpJsonReusedBuffer);

void BM_ConsoleToDevNull(benchmark::State& state) {
  const std::vector<Span> spans = TypicalBatch();
  FILE* devnull = std::fopen("/dev/null", "w");
  if (devnull == nullptr) {
    state.SkipWithError("cannot open /dev/null");
    return;
  }
  ConsoleExporter console(devnull);
  for (auto _ : state) (void)console.Export(spans);
  SetRates(state);
  std::fclose(devnull);
}
BENCHMARK(BM_ConsoleToDevNull);

// Producer cost of the queue (the ring-buffer consumer's side) with the worker draining.
class NullExporter : public SpanExporter {
 public:
  ExportResult Export(const std::vector<Span>& spans) override {
    return ExportResult::Delivered(spans.size());
  }
  const char* name() const override { return "null"; }
};

void BM_QueueTryPush(benchmark::State& state) {
  const std::vector<Span> spans = TypicalBatch();
  std::vector<std::unique_ptr<SpanExporter>> exporters;
  exporters.push_back(std::make_unique<NullExporter>());
  ExportWorker worker(ExportWorkerOptions{}, std::move(exporters));
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Span> copies = spans;
    state.ResumeTiming();
    for (Span& s : copies) benchmark::DoNotOptimize(worker.TryPush(std::move(s)));
  }
  (void)worker.Stop(std::chrono::seconds(5));
  SetRates(state);
  state.counters["dropped_full"] = static_cast<double>(worker.counters().dropped_full.load());
}
BENCHMARK(BM_QueueTryPush);

}  // namespace
}  // namespace zerotrace::exporter
