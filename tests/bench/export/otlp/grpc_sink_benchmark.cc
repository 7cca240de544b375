// CPU per span of OTLP/gRPC export to a real otlp-sink process: the exporting thread's, the
// whole process's (gRPC's own threads included) and the sink's, at the agent's pace or flat out.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "export/otlp_grpc_exporter.h"
#include "export/otlp_proto.h"
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

// `otlp-sink --grpc 127.0.0.1:0 --http off --quiet` as a child process, killed on destruction.
class SinkProcess {
 public:
  SinkProcess() {
    const char* path = std::getenv("ZT_OTLP_SINK");
    if (path == nullptr) path = ZT_OTLP_SINK_PATH;
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const char* argv[] = {path, "--grpc", "127.0.0.1:0", "--http", "off", "--quiet", nullptr};
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

// Args: batch size, pause between batches in ms (0: flat out; the agent at 10k spans/s and
// 512-span batches calls every ~50 ms, with the connection idle in between).
void BM_GrpcExportToSink(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const auto pause = std::chrono::milliseconds(state.range(1));
  SinkProcess sink;
  if (sink.endpoint().empty()) {
    state.SkipWithError("otlp-sink did not start (set ZT_OTLP_SINK)");
    return;
  }
  OtlpConfig config;
  config.protocol = OtlpConfig::Protocol::kGrpc;
  config.endpoint = sink.endpoint();
  config.insecure = true;
  auto made = OtlpGrpcExporter::Create(config);
  if (!made.ok()) {
    state.SkipWithError(made.status().message().c_str());
    return;
  }
  OtlpGrpcExporter& exporter = **made;
  const auto spans = testing::TypicalBatch(batch);
  for (int i = 0; i < 3; i++) (void)exporter.Export(spans);  // connect, warm up
  const uint64_t ok0 = exporter.counters().spans_ok.load();
  double thread_cpu = 0, process_cpu = 0;
  const double sink0 = sink.CpuSeconds();
  for (auto _ : state) {
    const double t0 = ThreadCpuSeconds(), p0 = ProcessCpuSeconds();
    (void)exporter.Export(spans);
    thread_cpu += ThreadCpuSeconds() - t0;
    process_cpu += ProcessCpuSeconds() - p0;
    if (pause.count() > 0) {
      state.PauseTiming();
      std::this_thread::sleep_for(pause);
      state.ResumeTiming();
    }
  }
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

// The encoder alone at the same pace: what of the above is encoding, with caches as cold.
void BM_AppendOtlpProtoPaced(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const auto pause = std::chrono::milliseconds(state.range(1));
  const auto spans = testing::TypicalBatch(batch);
  std::string body;
  double thread_cpu = 0;
  for (auto _ : state) {
    const double t0 = ThreadCpuSeconds();
    body.clear();
    AppendOtlpProto(spans, &body);
    benchmark::DoNotOptimize(body.data());
    thread_cpu += ThreadCpuSeconds() - t0;
    if (pause.count() > 0) {
      state.PauseTiming();
      std::this_thread::sleep_for(pause);
      state.ResumeTiming();
    }
  }
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
