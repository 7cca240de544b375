// The agent's span path across its two threads: span building on this thread (the ring-buffer
// consumer's role), the bounded queue and the OTLP request bytes on the export thread. As in the
// agent's OTLP protobuf exporters, each span is encoded on this thread when pushed and freed
// here; the request is assembled from the bytes (BM_*), or, for comparison, the spans are queued
// and encoded on the export thread (BM_*SpanPath, the path of console and JSON exporters).
// Reports process CPU, this thread's CPU, and heap allocations per span (operator new, both
// threads).
#include <benchmark/benchmark.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "conn/byte_stream.h"
#include "conn/conn_table.h"
#include "export/otlp_proto.h"
#include "export/span_queue.h"
#include "protocols/http1/span_builder.h"
#include "protocols/http1/stitcher.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// Counts every C++ heap allocation of the process (both threads). GCC sees the inlined
// delete's free() pair with the builtin operator new, not this malloc(): a false alarm.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace zerotrace::exporter {
namespace {

namespace http1 = protocols::http1;

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Makes each batch's request bytes as the OTLP protobuf exporters do, then drops them. With
// `pre_encoded`, spans come encoded by the pusher (EncodeOtlpSpan), as in the agent.
class EncodingExporter : public SpanExporter {
 public:
  explicit EncodingExporter(bool pre_encoded) : pre_encoded_(pre_encoded) {}
  SpanEncoder span_encoder() const override { return pre_encoded_ ? &EncodeOtlpSpan : nullptr; }
  ExportResult Export(const std::vector<trace::Span>& spans) override {
    bytes_.clear();
    AppendOtlpProto(spans, &bytes_);
    benchmark::DoNotOptimize(bytes_.data());
    return ExportResult::Delivered(spans.size());
  }
  ExportResult ExportEncoded(const std::vector<EncodedSpan>& spans) override {
    AssignOtlpProto(std::span<const EncodedSpan>(spans), &bytes_);
    benchmark::DoNotOptimize(bytes_.data());
    return ExportResult::Delivered(spans.size());
  }
  const char* name() const override { return "encode"; }

 private:
  const bool pre_encoded_;
  std::string bytes_;
};

// What the overhead benchmark's client sends nginx, and nginx's answer.
const std::string kRequest =
    "GET /f/7.html HTTP/1.1\r\nHost: 127.0.0.1:8089\r\nUser-Agent: zt-rate-client\r\n\r\n";
const std::string kResponse =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 14 May 2024 10:00:00 GMT\r\n"
    "Content-Type: text/html\r\nContent-Length: 612\r\nConnection: keep-alive\r\n\r\n" +
    std::string(612, 'x');

http1::HttpExchange TypicalExchange() {
  conn::ByteStream requests, responses;
  http1::Http1Stats stats;
  http1::Http1Stitcher stitcher(&stats);
  std::vector<http1::HttpExchange> out;
  requests.AddData(0, kRequest, 1);
  stitcher.Advance(requests, responses, 1, &out);
  responses.AddData(0, kResponse, 2);
  stitcher.Advance(requests, responses, 2, &out);
  return std::move(out.at(0));
}

// The connection as each side sees it: [0] the server (nginx), [1] the client.
struct TypicalEnds {
  trace::ConnEndpoints ends[2] = {{true, true, "127.0.0.1", "127.0.0.1", 8089, 51234},
                                  {true, false, "127.0.0.1", "127.0.0.1", 51234, 8089}};
};

// What the protocol stage does per exchange: the HTTP half, then the neutral half.
trace::Span BuildSpan(const http1::HttpExchange& x, const trace::ConnEndpoints& e,
                      const WallClock& clock, const http1::SpanOptions& options,
                      std::shared_ptr<const trace::Resource> resource, uint64_t finished_ns) {
  protocols::ExchangeDone done;
  const protocols::SessionContext ctx{e.server ? uint8_t{ZT_ROLE_SERVER} : uint8_t{ZT_ROLE_CLIENT},
                                      false, &e};
  http1::BuildExchange(x, ctx, options, finished_ns, &done);
  trace::FrameSpan(done.start_ns, done.end_ns, e, clock, std::move(resource), &done.span);
  return std::move(done.span);
}

std::shared_ptr<const trace::Resource> TypicalResource() {
  auto r = std::make_shared<trace::Resource>();
  r->service_name = "nginx";
  r->pid = 4242;
  r->executable_name = "nginx";
  r->executable_path = "/usr/sbin/nginx";
  r->host_name = "node-1";
  return r;
}

std::unique_ptr<ExportWorker> EncodingWorker(bool pre_encoded) {
  std::vector<std::unique_ptr<SpanExporter>> exporters;
  exporters.push_back(std::make_unique<EncodingExporter>(pre_encoded));
  ExportWorkerOptions worker_options;
  worker_options.queue.max_batch_delay = std::chrono::milliseconds(20);
  return std::make_unique<ExportWorker>(worker_options, std::move(exporters));
}

void SetCounters(benchmark::State& state, uint64_t spans, double cpu, double pusher_cpu,
                 uint64_t allocations) {
  state.SetItemsProcessed(static_cast<int64_t>(spans));
  state.counters["cpu_ns_per_span"] = cpu * 1e9 / static_cast<double>(spans);
  // This thread (the consumer's role: build, encode, push, free) and the rest (export thread).
  state.counters["pusher_ns_per_span"] = pusher_cpu * 1e9 / static_cast<double>(spans);
  state.counters["allocs_per_span"] = static_cast<double>(allocations) / static_cast<double>(spans);
}

// EncodeOtlpSpan alone, as the consumer thread runs it: typical spans, client and server in
// turn, each into one of a ring of reused buffers (the queue hands back exported encodings).
void BM_EncodeOtlpSpan(benchmark::State& state) {
  const http1::HttpExchange x = TypicalExchange();
  const TypicalEnds c;
  const WallClock clock;
  const http1::SpanOptions options;
  const auto resource = TypicalResource();
  std::vector<trace::Span> spans;
  for (int i = 0; i < 64; i++) {
    spans.push_back(BuildSpan(x, c.ends[i & 1], clock, options, resource, 3));
    spans.back().trace_id = trace::NewTraceId();
    spans.back().span_id = trace::NewSpanId();
  }
  std::vector<std::string> buffers(1024);
  size_t i = 0, bytes = 0;
  const uint64_t allocations0 = g_allocations.load();
  for (auto _ : state) {
    std::string& out = buffers[i % buffers.size()];
    EncodeOtlpSpan(spans[i % spans.size()], &out);
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
    i++;
  }
  state.SetItemsProcessed(static_cast<int64_t>(i));
  state.counters["bytes_per_span"] = static_cast<double>(bytes) / static_cast<double>(i);
  state.counters["allocs_per_span"] =
      static_cast<double>(g_allocations.load() - allocations0) / static_cast<double>(i);
  size_t capacity = 0;  // what a queued span's buffer holds, as the queue's memory
  for (const std::string& b : buffers) capacity += b.capacity();
  state.counters["buffer_capacity"] =
      static_cast<double>(capacity) / static_cast<double>(buffers.size());
}
BENCHMARK(BM_EncodeOtlpSpan)->MinTime(1.0);

// The export thread's request from 2048 encoded spans (a full batch) into the exporter's
// reused body: /0 cleared and appended to (main before AssignOtlpProto: the ~1 MB is zero-filled
// first), /1 assigned in place.
void BM_AssembleEncoded(benchmark::State& state) {
  const http1::HttpExchange x = TypicalExchange();
  const TypicalEnds c;
  const WallClock clock;
  const http1::SpanOptions options;
  const auto resource = TypicalResource();
  std::vector<EncodedSpan> encoded(2048);
  for (size_t i = 0; i < encoded.size(); i++) {
    trace::Span span = BuildSpan(x, c.ends[i & 1], clock, options, resource, 3);
    span.trace_id = trace::NewTraceId();
    span.span_id = trace::NewSpanId();
    EncodeOtlpSpan(span, &encoded[i].bytes);
    encoded[i].resource = resource;
  }
  std::string body;
  for (auto _ : state) {
    if (state.range(0) == 0) {
      body.clear();
      AppendOtlpProto(std::span<const EncodedSpan>(encoded), &body);
    } else {
      AssignOtlpProto(std::span<const EncodedSpan>(encoded), &body);
    }
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["ns_per_span"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(encoded.size()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_AssembleEncoded)->Arg(0)->Arg(1)->Arg(0)->Arg(1)->Arg(1)->Arg(0)->Arg(1)->Arg(0);

// Spans per ring-buffer poll round, for the pushes that the agent batches per round.
constexpr uint64_t kRoundSpans = 32;

// Hot path, both threads: items/s = spans/s; cpu_ns_per_span counts both threads. `batched`:
// as the agent pushes (TryPushBatched, one commit per round); otherwise one TryPush per span.
void SpanPipeline(benchmark::State& state, bool pre_encoded, bool batched = true) {
  const http1::HttpExchange x = TypicalExchange();
  const TypicalEnds c;
  const WallClock clock;
  const http1::SpanOptions options;
  const auto resource = TypicalResource();
  auto worker = EncodingWorker(pre_encoded);
  int side = 0;
  uint64_t spans = 0;
  const uint64_t allocations0 = g_allocations.load();
  const double cpu0 = ProcessCpuSeconds();
  const double pusher0 = ThreadCpuSeconds();
  for (auto _ : state) {
    trace::Span span = BuildSpan(x, c.ends[side], clock, options, resource, 3);
    span.trace_id = trace::NewTraceId();
    span.span_id = trace::NewSpanId();
    // As the agent's consumer: batched, committed at the end of a poll round (here every
    // kRoundSpans spans). Queue full: wait.
    if (batched) {
      while (!worker->TryPushBatched(std::move(span))) std::this_thread::yield();
    } else {
      while (!worker->TryPush(std::move(span))) std::this_thread::yield();
    }
    side ^= 1;
    if (++spans % kRoundSpans == 0) worker->CommitBatch();
  }
  const double pusher = ThreadCpuSeconds() - pusher0;
  worker->Stop(std::chrono::seconds(30));
  worker.reset();
  SetCounters(state, spans, ProcessCpuSeconds() - cpu0, pusher,
              g_allocations.load() - allocations0);
}
void BM_SpanPipeline(benchmark::State& state) { SpanPipeline(state, true); }
void BM_SpanPipelineSpanPath(benchmark::State& state) { SpanPipeline(state, false); }
// The hand-off before batching, for comparison in one binary.
void BM_SpanPipelineOneByOne(benchmark::State& state) { SpanPipeline(state, true, false); }
BENCHMARK(BM_SpanPipeline)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_SpanPipelineOneByOne)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_SpanPipelineSpanPath)->UseRealTime()->MinTime(2.0);

// The hand-off alone: a span of one short name, encoded as its name, to an exporter that drops
// the batch. Arg 0: one TryPush per span (its lock each time); 1: TryPushBatched, a commit per
// kRoundSpans. pusher_ns_per_span is the consumer's side of the hand-off.
void EncodeNameOnly(const trace::Span& span, std::string* out) { out->assign(span.name); }
class DroppingExporter : public SpanExporter {
 public:
  SpanEncoder span_encoder() const override { return &EncodeNameOnly; }
  ExportResult Export(const std::vector<trace::Span>& spans) override {
    return ExportResult::Delivered(spans.size());
  }
  ExportResult ExportEncoded(const std::vector<EncodedSpan>& spans) override {
    return ExportResult::Delivered(spans.size());
  }
  const char* name() const override { return "drop"; }
};
void BM_HandOff(benchmark::State& state) {
  const bool batched = state.range(0) == 1;
  std::vector<std::unique_ptr<SpanExporter>> exporters;
  exporters.push_back(std::make_unique<DroppingExporter>());
  ExportWorker worker(ExportWorkerOptions{}, std::move(exporters));
  trace::Span span;
  uint64_t spans = 0;
  const uint64_t allocations0 = g_allocations.load();
  const double cpu0 = ProcessCpuSeconds();
  const double pusher0 = ThreadCpuSeconds();
  for (auto _ : state) {
    span.name = "GET /f/7.txt";
    if (batched) {
      while (!worker.TryPushBatched(std::move(span))) std::this_thread::yield();
    } else {
      while (!worker.TryPush(std::move(span))) std::this_thread::yield();
    }
    if (++spans % kRoundSpans == 0) worker.CommitBatch();
  }
  const double pusher = ThreadCpuSeconds() - pusher0;
  worker.Stop(std::chrono::seconds(30));
  SetCounters(state, spans, ProcessCpuSeconds() - cpu0, pusher,
              g_allocations.load() - allocations0);
}
BENCHMARK(BM_HandOff)->Arg(0)->Arg(1)->UseRealTime()->MinTime(1.0);

// The same from bytes: the request and response reassembled, parsed and stitched first.
void BytesToExport(benchmark::State& state, bool pre_encoded) {
  const TypicalEnds c;
  const WallClock clock;
  const http1::SpanOptions options;
  const auto resource = TypicalResource();
  auto worker = EncodingWorker(pre_encoded);
  conn::ByteStream requests, responses;
  http1::Http1Stats stats;
  http1::Http1Stitcher stitcher(&stats);
  std::vector<http1::HttpExchange> out;
  uint64_t req_pos = 0, resp_pos = 0, ts = 1, spans = 0;
  int side = 0;
  const uint64_t allocations0 = g_allocations.load();
  const double cpu0 = ProcessCpuSeconds();
  const double pusher0 = ThreadCpuSeconds();
  for (auto _ : state) {
    requests.AddData(req_pos, kRequest, ++ts);
    req_pos += kRequest.size();
    stitcher.Advance(requests, responses, ts, &out);
    responses.AddData(resp_pos, kResponse, ++ts);
    resp_pos += kResponse.size();
    stitcher.Advance(requests, responses, ts, &out);
    for (const http1::HttpExchange& x : out) {
      trace::Span span = BuildSpan(x, c.ends[side], clock, options, resource, ts);
      span.trace_id = trace::NewTraceId();
      span.span_id = trace::NewSpanId();
      while (!worker->TryPushBatched(std::move(span))) std::this_thread::yield();
      side ^= 1;
      if (++spans % kRoundSpans == 0) worker->CommitBatch();
    }
    out.clear();
  }
  const double pusher = ThreadCpuSeconds() - pusher0;
  worker->Stop(std::chrono::seconds(30));
  worker.reset();
  SetCounters(state, spans, ProcessCpuSeconds() - cpu0, pusher,
              g_allocations.load() - allocations0);
}
void BM_BytesToExport(benchmark::State& state) { BytesToExport(state, true); }
void BM_BytesToExportSpanPath(benchmark::State& state) { BytesToExport(state, false); }
BENCHMARK(BM_BytesToExport)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_BytesToExportSpanPath)->UseRealTime()->MinTime(2.0);

}  // namespace
}  // namespace zerotrace::exporter
