// CPU per span of OTLP/gRPC export to a real otlp-sink process: the exporting thread's, the
// whole process's (gRPC's own threads included) and the sink's, at the agent's pace or flat out.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "export/otlp_grpc_exporter.h"
#include "export/otlp_proto.h"
#include "export/span_queue.h"
#include "otlp_test_support.h"

extern char** environ;

namespace zerotrace::exporter {
namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double ClockSeconds(clockid_t clock) {
  timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double ProcessCpuSeconds() { return ClockSeconds(CLOCK_PROCESS_CPUTIME_ID); }

// Runs body once per iteration with `pause` of sleep (untimed) after each, as the export
// thread's calls come; the CPU seconds body took: the calling thread's and the process's.
struct PacedCpu {
  double thread = 0, process = 0;
};
template <typename Body>
PacedCpu RunPaced(benchmark::State& state, std::chrono::milliseconds pause, Body body) {
  PacedCpu cpu;
  for (auto _ : state) {
    const double t0 = ThreadCpuSeconds(), p0 = ProcessCpuSeconds();
    body();
    cpu.thread += ThreadCpuSeconds() - t0;
    cpu.process += ProcessCpuSeconds() - p0;
    if (pause.count() > 0) {
      state.PauseTiming();
      std::this_thread::sleep_for(pause);
      state.ResumeTiming();
    }
  }
  return cpu;
}

// `otlp-sink --grpc 127.0.0.1:0 --http off --quiet` (or `--count-only`, as
// tests/bench/overhead/run starts it) as a child process, killed on destruction.
class SinkProcess {
 public:
  explicit SinkProcess(bool count_only = false) {
    const char* path = std::getenv("ZT_OTLP_SINK");
    if (path == nullptr) path = ZT_OTLP_SINK_PATH;
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const char* argv[] = {path,     "--grpc", "127.0.0.1:0",
                          "--http", "off",    count_only ? "--count-only" : "--quiet",
                          nullptr};
    if (posix_spawn(&pid_, path, &actions, nullptr, const_cast<char* const*>(argv), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    out_ = fdopen(out[0], "r");
    char line[256];
    while (pid_ > 0 && out_ != nullptr && std::fgets(line, sizeof(line), out_) != nullptr) {
      const std::string text(line);
      const size_t at = text.find("grpc listening on ");
      if (at == std::string::npos) continue;
      std::string address = text.substr(at + 18);
      while (!address.empty() && (address.back() == '\n' || address.back() == ' ')) {
        address.pop_back();
      }
      endpoint_ = "http://" + address;
      break;
    }
  }
  ~SinkProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ != nullptr) std::fclose(out_);
  }
  const std::string& endpoint() const { return endpoint_; }
  // The sink's CPU time (all its threads), to the nanosecond unlike /proc's utime + stime.
  double CpuSeconds() const {
    clockid_t clock;
    if (pid_ <= 0 || clock_getcpuclockid(pid_, &clock) != 0) return 0;
    return ClockSeconds(clock);
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string endpoint_;
};

// The OTLP/gRPC config for `sink`, or nullopt (the benchmark skipped) when it did not start.
std::optional<OtlpConfig> ConfigFor(benchmark::State& state, const SinkProcess& sink) {
  if (sink.endpoint().empty()) {
    state.SkipWithError("otlp-sink did not start (set ZT_OTLP_SINK)");
    return std::nullopt;
  }
  OtlpConfig config;
  config.protocol = OtlpConfig::Protocol::kGrpc;
  config.endpoint = sink.endpoint();
  config.insecure = true;
  return config;
}

// An exporter to `sink`, or nullptr (the benchmark skipped).
std::unique_ptr<OtlpGrpcExporter> ExporterFor(benchmark::State& state, const SinkProcess& sink) {
  const auto config = ConfigFor(state, sink);
  if (!config) return nullptr;
  auto made = OtlpGrpcExporter::Create(*config);
  if (!made.ok()) {
    state.SkipWithError(made.status().message().c_str());
    return nullptr;
  }
  return std::move(*made);
}

// Args: batch size, pause between batches in ms (0: flat out; the agent at 10k spans/s and
// 512-span batches calls every ~50 ms, with the connection idle in between).
void BM_GrpcExportToSink(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const auto pause = std::chrono::milliseconds(state.range(1));
  SinkProcess sink;
  const auto made = ExporterFor(state, sink);
  if (!made) return;
  OtlpGrpcExporter& exporter = *made;
  const auto spans = testing::TypicalBatch(batch);
  for (int i = 0; i < 3; i++) (void)exporter.Export(spans);  // connect, warm up
  const uint64_t ok0 = exporter.counters().spans_ok.load();
  const double sink0 = sink.CpuSeconds();
  const PacedCpu cpu = RunPaced(state, pause, [&] { (void)exporter.Export(spans); });
  const double thread_cpu = cpu.thread, process_cpu = cpu.process;
  // Each Export returns after the sink answered it: all but the last request's cleanup counts.
  const double sink_cpu = sink.CpuSeconds() - sink0;
  const double n = static_cast<double>(state.iterations()) * batch;
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["thread_us_per_span"] = thread_cpu * 1e6 / n;
  state.counters["process_us_per_span"] = process_cpu * 1e6 / n;
  state.counters["sink_us_per_span"] = sink_cpu * 1e6 / n;
  if (exporter.counters().spans_ok.load() - ok0 != static_cast<uint64_t>(n)) {
    state.SkipWithError("not every span was accepted");
  }
}
BENCHMARK(BM_GrpcExportToSink)
    ->ArgNames({"batch", "pause_ms"})
    ->Args({512, 0})
    ->Args({2048, 0})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
// Paced: a fixed number of batches, as the pauses do not count towards the benchmark's time.
BENCHMARK(BM_GrpcExportToSink)
    ->ArgNames({"batch", "pause_ms"})
    ->Args({512, 20})
    ->Args({1024, 20})
    ->Args({2048, 20})
    ->Iterations(150)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The agent's path: spans encoded beforehand (on the consumer thread, EncodeOtlpSpan), the
// exporting thread only assembling each request from their bytes (ExportEncoded) and sending it,
// to `otlp-sink --count-only` as in tests/bench/overhead/run. Args: batch size, pause between
// batches in ms (the agent at 10k requests/s, 20k spans/s, sends a 2048-span batch every
// ~100 ms). CPU per span of the exporting thread and of the whole process.
void BM_GrpcExportEncodedToSink(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const auto pause = std::chrono::milliseconds(state.range(1));
  SinkProcess sink(/*count_only=*/true);
  const auto made = ExporterFor(state, sink);
  if (!made) return;
  OtlpGrpcExporter& exporter = *made;
  std::vector<EncodedSpan> encoded(static_cast<size_t>(batch));
  {
    const auto spans = testing::TypicalBatch(batch);
    for (size_t i = 0; i < spans.size(); i++) {
      EncodeOtlpSpan(spans[i], &encoded[i].bytes);
      encoded[i].resource = spans[i].resource;
    }
  }
  for (int i = 0; i < 3; i++) (void)exporter.ExportEncoded(encoded);  // connect, warm up
  const uint64_t ok0 = exporter.counters().spans_ok.load();
  rusage ru0;
  getrusage(RUSAGE_THREAD, &ru0);
  const PacedCpu cpu = RunPaced(state, pause, [&] { (void)exporter.ExportEncoded(encoded); });
  const double thread_cpu = cpu.thread, process_cpu = cpu.process;
  const double n = static_cast<double>(state.iterations()) * batch;
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["thread_ns_per_span"] = thread_cpu * 1e9 / n;
  state.counters["process_ns_per_span"] = process_cpu * 1e9 / n;
  rusage ru1;
  getrusage(RUSAGE_THREAD, &ru1);
  const auto us = [](const timeval& a, const timeval& b) {
    return static_cast<double>(b.tv_sec - a.tv_sec) * 1e6 +
           static_cast<double>(b.tv_usec - a.tv_usec);
  };
  state.counters["thread_sys_share"] =
      us(ru0.ru_stime, ru1.ru_stime) /
      (us(ru0.ru_stime, ru1.ru_stime) + us(ru0.ru_utime, ru1.ru_utime));
  if (exporter.counters().spans_ok.load() - ok0 != static_cast<uint64_t>(n)) {
    state.SkipWithError("not every span was accepted");
  }
}
BENCHMARK(BM_GrpcExportEncodedToSink)
    ->ArgNames({"batch", "pause_ms"})
    ->Args({2048, 0})
    ->Iterations(300)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GrpcExportEncodedToSink)
    ->ArgNames({"batch", "pause_ms"})
    ->Args({2048, 20})
    ->Args({2048, 100})
    ->Args({1, 100})
    ->Args({1, 0})
    ->Iterations(100)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The CPU time of this process's thread named `name` (the export thread), from its schedstat.
double NamedThreadCpuSeconds(const char* name) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  double seconds = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const std::string task = std::string("/proc/self/task/") + e->d_name;
    std::ifstream comm(task + "/comm");
    std::string line;
    if (!std::getline(comm, line) || line != name) continue;
    std::ifstream stat(task + "/schedstat");
    uint64_t ns = 0;
    if (stat >> ns) seconds = static_cast<double>(ns) * 1e-9;
  }
  closedir(dir);
  return seconds;
}

// The agent's whole export path at its pace: this thread pushes spans as the ring-buffer
// consumer does (ExportWorker::TryPushBatched, which encodes them here, and CommitBatch after
// each poll round), 200 every 10 ms (10k requests/s, two spans each), for 4 s; the worker's
// export thread batches them (SpanQueueOptions as the agent leaves them) and sends them over
// gRPC to `otlp-sink --count-only`. CPU per span of the export thread (wakeups, assembly,
// calls) and of this one.
void BM_PacedWorkerToSink(benchmark::State& state) {
  constexpr int kPerRound = 200;
  constexpr auto kRound = std::chrono::milliseconds(10);
  constexpr int kRounds = 400;
  SinkProcess sink(/*count_only=*/true);
  const auto config = ConfigFor(state, sink);
  if (!config) return;
  const auto spans = testing::TypicalBatch(kPerRound);
  double export_cpu = 0, pusher_cpu = 0;
  uint64_t pushed = 0, exported = 0, batches = 0;
  for (auto _ : state) {
    auto made = OtlpGrpcExporter::Create(*config);
    if (!made.ok()) {
      state.SkipWithError(made.status().message().c_str());
      return;
    }
    const OtlpGrpcExporter* exporter = made->get();
    std::vector<std::unique_ptr<SpanExporter>> exporters;
    exporters.push_back(std::move(*made));
    ExportWorker worker({}, std::move(exporters));
    const double e0 = NamedThreadCpuSeconds("zt-export");
    double p = 0;
    auto next = std::chrono::steady_clock::now();
    for (int round = 0; round < kRounds; round++) {
      const double t0 = ThreadCpuSeconds();
      for (const trace::Span& span : spans) {
        trace::Span copy = span;
        pushed += worker.TryPushBatched(std::move(copy)) ? 1 : 0;
      }
      worker.CommitBatch();
      p += ThreadCpuSeconds() - t0;
      next += kRound;
      std::this_thread::sleep_until(next);
    }
    // The last partial batch waits out its delay, as in the agent; then the thread ends.
    std::this_thread::sleep_for(SpanQueueOptions{}.max_batch_delay + std::chrono::milliseconds(50));
    export_cpu += NamedThreadCpuSeconds("zt-export") - e0;
    pusher_cpu += p;
    batches += exporter->counters().batches_ok.load();
    (void)worker.Stop(std::chrono::seconds(5));
    exported += worker.counters().exported.load();
  }
  const double n = static_cast<double>(pushed);
  state.counters["export_thread_ns_per_span"] = export_cpu * 1e9 / n;
  state.counters["pusher_ns_per_span"] = pusher_cpu * 1e9 / n;
  state.counters["spans_per_call"] = batches > 0 ? n / static_cast<double>(batches) : 0;
  if (exported != pushed ||
      pushed != uint64_t{kPerRound} * kRounds * static_cast<uint64_t>(state.iterations())) {
    state.SkipWithError("not every span was exported");
  }
}
BENCHMARK(BM_PacedWorkerToSink)
    ->Iterations(1)
    ->Repetitions(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The request assembly alone (AssignOtlpProto, what ExportEncoded does before the call) at the
// same pace: the encoded spans and the request buffer as cold as on the export thread.
void BM_AssignOtlpProtoPaced(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const auto pause = std::chrono::milliseconds(state.range(1));
  std::vector<EncodedSpan> encoded(static_cast<size_t>(batch));
  {
    const auto spans = testing::TypicalBatch(batch);
    for (size_t i = 0; i < spans.size(); i++) {
      EncodeOtlpSpan(spans[i], &encoded[i].bytes);
      encoded[i].resource = spans[i].resource;
    }
  }
  std::string body;
  const double thread_cpu = RunPaced(state, pause, [&] {
                              AssignOtlpProto(encoded, &body);
                              benchmark::DoNotOptimize(body.data());
                            }).thread;
  const double n = static_cast<double>(state.iterations()) * batch;
  state.counters["thread_ns_per_span"] = thread_cpu * 1e9 / n;
}
BENCHMARK(BM_AssignOtlpProtoPaced)
    ->ArgNames({"batch", "pause_ms"})
    ->Args({2048, 0})
    ->Args({2048, 100})
    ->Iterations(100)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The encoder alone at the same pace: what of the above is encoding, with caches as cold.
void BM_AppendOtlpProtoPaced(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const auto pause = std::chrono::milliseconds(state.range(1));
  const auto spans = testing::TypicalBatch(batch);
  std::string body;
  const double thread_cpu = RunPaced(state, pause, [&] {
                              body.clear();
                              AppendOtlpProto(spans, &body);
                              benchmark::DoNotOptimize(body.data());
                            }).thread;
  const double n = static_cast<double>(state.iterations()) * batch;
  state.counters["thread_us_per_span"] = thread_cpu * 1e6 / n;
}
BENCHMARK(BM_AppendOtlpProtoPaced)
    ->ArgNames({"batch", "pause_ms"})
    ->Args({512, 0})
    ->Args({512, 20})
    ->Args({1024, 20})
    ->Iterations(150)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace zerotrace::exporter
