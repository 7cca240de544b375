// tools/otlp-sink as a child process for e2e tests, and the checks on what it received.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "span_log.h"
#include "subprocess.h"

namespace zerotrace::e2e {

// A running otlp-sink with both listeners on 127.0.0.1, recording into the test's directory;
// SIGTERMed when destroyed.
class SinkProcess {
 public:
  // `flags` come after the listener and file flags. `grpc_port`/`http_port` 0: the kernel
  // picks. The ports stay 0 when the sink did not start.
  SinkProcess(const std::string& dir, std::vector<std::string> flags, int grpc_port = 0,
              int http_port = 0, const std::string& name = "sink");
  ~SinkProcess();
  SinkProcess(const SinkProcess&) = delete;
  SinkProcess& operator=(const SinkProcess&) = delete;

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  pid_t pid() const { return proc_->pid(); }
  const std::string& spans_path() const { return spans_path_; }
  // One JSON object per request the sink answered.
  std::vector<nlohmann::json> Requests() const;

 private:
  std::string spans_path_, requests_path_;
  std::unique_ptr<zerotrace::testing::Subprocess> proc_;
  int grpc_port_ = 0, http_port_ = 0;
};

// Polls the sink's span file until `pid` has at least n spans there; returns them.
std::vector<Span> AwaitSinkSpans(const std::string& path, pid_t pid, size_t n,
                                 std::chrono::milliseconds timeout);

// The two lists hold the same spans (by span id), equal in every field.
::testing::AssertionResult SameSpans(std::vector<Span> a, std::vector<Span> b);

}  // namespace zerotrace::e2e
