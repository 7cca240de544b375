// Spans/s per OTLP transport (encode + send + answer), encoders alone, queued span memory.
#include <benchmark/benchmark.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "export/otlp_grpc_exporter.h"
#include "export/otlp_http_exporter.h"
#include "export/otlp_json.h"
#include "export/otlp_proto.h"
#include "otlp_test_support.h"

namespace zerotrace::exporter {
namespace {

constexpr int kBatch = 512;

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// items_per_second is wall-clock throughput (the receiver runs on another core);
// cpu_ns_per_span is the exporting thread's own CPU: the "one core" figure.
void SetRates(benchmark::State& state, double cpu_seconds) {
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["cpu_ns_per_span"] =
      cpu_seconds * 1e9 / static_cast<double>(state.iterations() * kBatch);
}

void BM_ToOtlpProto(benchmark::State& state) {
  const auto spans = testing::TypicalBatch(kBatch);
  testing::ExportRequest request;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    ToOtlpProto(spans, &request);
    benchmark::DoNotOptimize(request);
  }
  SetRates(state, ThreadCpuSeconds() - cpu0);
}
BENCHMARK(BM_ToOtlpProto);

void BM_ToOtlpProtoSerialized(benchmark::State& state) {
  const auto spans = testing::TypicalBatch(kBatch);
  testing::ExportRequest request;
  std::string bytes;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    ToOtlpProto(spans, &request);
    request.SerializeToString(&bytes);
    benchmark::DoNotOptimize(bytes.data());
  }
  SetRates(state, ThreadCpuSeconds() - cpu0);
  state.counters["bytes_per_span"] = static_cast<double>(bytes.size()) / kBatch;
}
BENCHMARK(BM_ToOtlpProtoSerialized);

// The exporters' encoders: protobuf wire bytes written directly, and OTLP/JSON.
void BM_AppendOtlpProto(benchmark::State& state) {
  const auto spans = testing::TypicalBatch(kBatch);
  std::string bytes;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    bytes.clear();
    AppendOtlpProto(spans, &bytes);
    benchmark::DoNotOptimize(bytes.data());
  }
  SetRates(state, ThreadCpuSeconds() - cpu0);
  state.counters["bytes_per_span"] = static_cast<double>(bytes.size()) / kBatch;
}
BENCHMARK(BM_AppendOtlpProto);

void BM_AppendOtlpJson(benchmark::State& state) {
  const auto spans = testing::TypicalBatch(kBatch);
  std::string bytes;
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    bytes.clear();
    AppendOtlpJson(spans, &bytes);
    benchmark::DoNotOptimize(bytes.data());
  }
  SetRates(state, ThreadCpuSeconds() - cpu0);
  state.counters["bytes_per_span"] = static_cast<double>(bytes.size()) / kBatch;
}
BENCHMARK(BM_AppendOtlpJson);

template <typename Receiver>
void RunExport(benchmark::State& state, Receiver& receiver, OtlpConfig config) {
  receiver.script().set_record(false);
  config.endpoint = receiver.endpoint();
  config.insecure = true;
  auto made = config.protocol == OtlpConfig::Protocol::kGrpc ? MakeOtlpGrpcExporter(config)
                                                             : MakeOtlpHttpExporter(config);
  if (!made.ok()) {
    state.SkipWithError(made.status().message().c_str());
    return;
  }
  auto& exporter = static_cast<OtlpExporterBase&>(*made.value());
  const auto spans = testing::TypicalBatch(kBatch);
  (void)exporter.Export(spans);  // connect outside the measurement
  const uint64_t bytes0 = exporter.counters().bytes_sent.load();
  const double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) (void)exporter.Export(spans);
  SetRates(state, ThreadCpuSeconds() - cpu0);
  const auto& c = exporter.counters();
  state.counters["wire_bytes_per_span"] = static_cast<double>(c.bytes_sent.load() - bytes0) /
                                          static_cast<double>(state.iterations() * kBatch);
  if (c.spans_ok.load() != static_cast<uint64_t>(state.iterations() + 1) * kBatch) {
    state.SkipWithError("not every span was accepted");
  }
}

OtlpConfig Config(OtlpConfig::Protocol protocol, bool gzip) {
  OtlpConfig c;
  c.protocol = protocol;
  c.gzip = gzip;
  return c;
}

// To a receiver that only counts requests, like the HTTP one below.
void BM_GrpcExport(benchmark::State& state) {
  testing::RawGrpcReceiver receiver;
  RunExport(state, receiver, Config(OtlpConfig::Protocol::kGrpc, state.range(0) != 0));
}
BENCHMARK(BM_GrpcExport)->ArgName("gzip")->Arg(0)->Arg(1)->UseRealTime();

// To a receiver that parses every request into messages, as a collector does: wall-clock
// throughput is then the receiver's, on the other core.
void BM_GrpcExportParsingReceiver(benchmark::State& state) {
  testing::GrpcReceiver receiver;
  RunExport(state, receiver, Config(OtlpConfig::Protocol::kGrpc, false));
}
BENCHMARK(BM_GrpcExportParsingReceiver)->UseRealTime();

void BM_HttpProtobufExport(benchmark::State& state) {
  testing::HttpReceiver receiver;
  RunExport(state, receiver, Config(OtlpConfig::Protocol::kHttpProtobuf, state.range(0) != 0));
}
BENCHMARK(BM_HttpProtobufExport)->ArgName("gzip")->Arg(0)->Arg(1)->UseRealTime();

void BM_HttpJsonExport(benchmark::State& state) {
  testing::HttpReceiver receiver;
  RunExport(state, receiver, Config(OtlpConfig::Protocol::kHttpJson, state.range(0) != 0));
}
BENCHMARK(BM_HttpJsonExport)->ArgName("gzip")->Arg(0)->Arg(1)->UseRealTime();

// Heap bytes of one std::string: its buffer when it outgrew the inline (SSO) storage.
size_t StringHeap(const std::string& s, size_t* allocations) {
  if (s.capacity() <= 15) return 0;  // libstdc++'s inline capacity
  (*allocations)++;
  return s.capacity() + 1;
}

// Memory a typical span holds while it waits in the queue: the Span itself (the queue stores
// Spans by value in per-batch vectors), its attribute vector and out-of-line strings, plus
// glibc's 16-byte chunk overhead per allocation. Resources are shared per process: not counted.
void BM_QueuedSpanMemory(benchmark::State& state) {
  size_t heap = 0, allocations = 0;
  for (auto _ : state) {
    const auto batch = testing::TypicalBatch(kBatch);
    heap = allocations = 0;
    for (const trace::Span& s : batch) {
      heap += StringHeap(s.name, &allocations) + StringHeap(s.trace_state, &allocations) +
              StringHeap(s.status_message, &allocations);
      if (s.attributes.capacity() > 0) allocations++;
      heap += s.attributes.capacity() * sizeof(trace::Attribute);
      for (const trace::Attribute& a : s.attributes) {  // keys: static storage, not copied
        if (const auto* v = std::get_if<std::string>(&a.value))
          heap += StringHeap(*v, &allocations);
      }
    }
  }
  const double per_span = static_cast<double>(heap + 16 * allocations) / kBatch;
  state.counters["sizeof_span"] = static_cast<double>(sizeof(trace::Span));
  state.counters["heap_bytes_per_span"] = per_span;
  state.counters["queue_bytes_per_span"] = per_span + static_cast<double>(sizeof(trace::Span));
}
BENCHMARK(BM_QueuedSpanMemory)->Iterations(1);

}  // namespace
}  // namespace zerotrace::exporter
