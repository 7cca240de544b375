// SinkProcess: the ports come from the sink's "listening on" lines.
#include "otlp_sink_process.h"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <thread>

#ifndef ZT_OTLP_SINK
#error "ZT_OTLP_SINK must name the otlp-sink binary"
#endif

namespace zerotrace::e2e {

using Clock = std::chrono::steady_clock;

SinkProcess::SinkProcess(const std::string& dir, std::vector<std::string> flags, int grpc_port,
                         int http_port, const std::string& name)
    : spans_path_(dir + "/" + name + "-spans.jsonl"),
      requests_path_(dir + "/" + name + "-requests.jsonl") {
  std::vector<std::string> argv = {ZT_OTLP_SINK,
                                   "--grpc",
                                   "127.0.0.1:" + std::to_string(grpc_port),
                                   "--http",
                                   "127.0.0.1:" + std::to_string(http_port),
                                   "--jsonl",
                                   spans_path_,
                                   "--requests-log",
                                   requests_path_};
  argv.insert(argv.end(), flags.begin(), flags.end());
  proc_ = std::make_unique<zerotrace::testing::Subprocess>(argv);
  for (int i = 0; i < 2; i++) {
    auto line = proc_->WaitForLine("listening on", zerotrace::testing::kServerStartDeadline);
    if (!line) break;
    const int port = std::stoi(line->substr(line->rfind(':') + 1));
    (line->find("grpc") != std::string::npos ? grpc_port_ : http_port_) = port;
  }
}

SinkProcess::~SinkProcess() {
  kill(proc_->pid(), SIGTERM);
  proc_->Wait(std::chrono::seconds(5));
}

std::vector<nlohmann::json> SinkProcess::Requests() const {
  std::vector<nlohmann::json> out;
  std::ifstream in(requests_path_);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line, nullptr, false));
  }
  return out;
}

std::vector<Span> AwaitSinkSpans(const std::string& path, pid_t pid, size_t n,
                                 std::chrono::milliseconds timeout) {
  SpanLog log(path);
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    log.Poll();
    if (log.CountForPid(pid) >= n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return log.ForPid(pid);
}

::testing::AssertionResult SameSpans(std::vector<Span> a, std::vector<Span> b) {
  auto by_id = [](const Span& x, const Span& y) { return x.span_id < y.span_id; };
  std::sort(a.begin(), a.end(), by_id);
  std::sort(b.begin(), b.end(), by_id);
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << a.size() << " spans vs " << b.size();
  for (size_t i = 0; i < a.size(); i++) {
    const Span &x = a[i], &y = b[i];
    if (x.span_id != y.span_id || x.trace_id != y.trace_id ||
        x.parent_span_id != y.parent_span_id || x.name != y.name || x.kind != y.kind ||
        x.start_ns != y.start_ns || x.end_ns != y.end_ns || x.status_code != y.status_code ||
        x.service_name != y.service_name || x.pid != y.pid || x.attributes != y.attributes) {
      return ::testing::AssertionFailure()
             << "differs:\n  " << x.Describe() << "\n  " << y.Describe();
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace zerotrace::e2e
