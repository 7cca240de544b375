// The real otlp-sink as a bad collector (fail, retry hints, delay, partial) and its lifecycle.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "otlp_json_codec.h"
#include "sink_harness.h"

namespace zerotrace::otlp_sink {
namespace {

using nlohmann::json;
using otlp_sink::testing::DecodeRpcStatus;
using otlp_sink::testing::GrpcExport;
using otlp_sink::testing::GrpcResult;
using otlp_sink::testing::HttpConnection;
using otlp_sink::testing::HttpPost;
using otlp_sink::testing::kTimeout;
using otlp_sink::testing::MakeRequest;
using otlp_sink::testing::PostRequest;
using otlp_sink::testing::SinkBinary;
using otlp_sink::testing::SinkProcess;
using std::chrono::milliseconds;
using zerotrace::testing::Subprocess;

// Waits until process `pid` has n threads named `name`.
bool AwaitThreads(pid_t pid, const std::string& name, int n) {
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  do {
    int named = 0;
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
      std::ifstream comm(task.path() / "comm");
      std::string line;
      if (std::getline(comm, line) && line == name) named++;
    }
    if (named >= n) return true;
    std::this_thread::sleep_for(milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

TEST(OtlpSinkFaultTest, GrpcUnavailableWithRetryInfoThenAccepts) {
  SinkProcess sink({"--fail", "2", "--retry-after-ms", "1500"});
  for (int i = 0; i < 2; i++) {
    const auto r = GrpcExport(sink.grpc_port(), MakeRequest(1, i));
    ASSERT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << i;
    const auto [code, delay_ms] = DecodeRpcStatus(r.status.error_details());
    EXPECT_EQ(code, 14);
    EXPECT_EQ(delay_ms, 1500);
  }
  ASSERT_TRUE(GrpcExport(sink.grpc_port(), MakeRequest(1, 2)).status.ok());
  const auto lines = sink.SpanLines();
  ASSERT_EQ(lines.size(), 1u);  // refused requests are not written
  EXPECT_EQ(lines[0], EncodeOtlpJson(MakeRequest(1, 2)));
  const auto requests = sink.Requests();
  ASSERT_EQ(requests.size(), 3u);
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(requests[i]["result"], "failed");
    EXPECT_EQ(requests[i]["status"], 14);
    EXPECT_EQ(requests[i]["spans"], 1);
  }
  EXPECT_EQ(requests[2]["result"], "ok");
}

TEST(OtlpSinkFaultTest, Http503WithRetryAfterThenAccepts) {
  SinkProcess sink({"--fail", "2", "--retry-after-ms", "1500"});
  const std::string proto = MakeRequest(1).SerializeAsString();
  const auto refused = HttpPost(sink.http_port(), proto, "application/x-protobuf");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->Header("retry-after"), "2");  // seconds, rounded up
  EXPECT_EQ(DecodeRpcStatus(refused->body), std::make_pair(14, int64_t{1500}));
  const auto refused_json =
      HttpPost(sink.http_port(), EncodeOtlpJson(MakeRequest(1)), "application/json");
  ASSERT_TRUE(refused_json);
  EXPECT_EQ(refused_json->status, 503);
  const json status = json::parse(refused_json->body);
  EXPECT_EQ(status["code"], 14);
  EXPECT_EQ(status["details"][0]["retryDelay"], "1.500s");
  EXPECT_EQ(HttpPost(sink.http_port(), proto, "application/x-protobuf")->status, 200);
  EXPECT_EQ(sink.SpanLines().size(), 1u);
  const auto requests = sink.Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0]["result"], "failed");
  EXPECT_EQ(requests[0]["status"], 503);
}

TEST(OtlpSinkFaultTest, FailStatusChoosesTheCodeOnBothTransports) {
  {
    SinkProcess sink({"--fail", "2", "--fail-status", "INVALID_ARGUMENT"});
    const auto r = GrpcExport(sink.grpc_port(), MakeRequest(1));
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(r.status.error_details().empty());  // no --retry-after-ms: no RetryInfo
    const auto reply =
        HttpPost(sink.http_port(), MakeRequest(1).SerializeAsString(), "application/x-protobuf");
    EXPECT_EQ(reply->status, 400);
    EXPECT_EQ(reply->headers.count("retry-after"), 0u);
    EXPECT_EQ(DecodeRpcStatus(reply->body).first, 3);
  }
  {
    SinkProcess sink({"--fail", "1", "--fail-status", "8", "--fail-http-status", "502"});
    EXPECT_EQ(
        HttpPost(sink.http_port(), MakeRequest(1).SerializeAsString(), "application/x-protobuf")
            ->status,
        502);
    EXPECT_EQ(GrpcExport(sink.grpc_port(), MakeRequest(1)).status.error_code(),
              grpc::StatusCode::OK);
  }
}

TEST(OtlpSinkFaultTest, DelayHoldsEveryAnswer) {
  SinkProcess sink({"--delay-ms", "400"});
  const auto r = GrpcExport(sink.grpc_port(), MakeRequest(1));
  ASSERT_TRUE(r.status.ok());
  EXPECT_GE(r.elapsed, milliseconds(400));
  const auto reply =
      HttpPost(sink.http_port(), MakeRequest(1).SerializeAsString(), "application/x-protobuf");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_GE(reply->elapsed, milliseconds(400));
}

TEST(OtlpSinkFaultTest, ClientThatGaveUpDuringTheDelayIsLoggedCancelledAndNotWritten) {
  SinkProcess sink({"--delay-ms", "1000"});
  const auto r = GrpcExport(sink.grpc_port(), MakeRequest(1), false, {}, milliseconds(100));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  {
    HttpConnection conn(sink.http_port());
    conn.Send(PostRequest(MakeRequest(1).SerializeAsString(), "application/x-protobuf"));
  }  // closed before the answer
  const auto requests = sink.AwaitRequests(2);
  ASSERT_EQ(requests.size(), 2u);
  for (const auto& logged : requests) EXPECT_EQ(logged["result"], "cancelled") << logged.dump();
  EXPECT_TRUE(sink.SpanLines().empty());
}

TEST(OtlpSinkFaultTest, PartialRejectAnswersPartialSuccess) {
  SinkProcess sink({"--partial-reject", "3"});
  const auto r = GrpcExport(sink.grpc_port(), MakeRequest(5));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.response.partial_success().rejected_spans(), 3);
  EXPECT_FALSE(r.response.partial_success().error_message().empty());
  const auto proto_reply =
      HttpPost(sink.http_port(), MakeRequest(5).SerializeAsString(), "application/x-protobuf");
  ExportResponse response;
  ASSERT_TRUE(response.ParseFromString(proto_reply->body));
  EXPECT_EQ(response.partial_success().rejected_spans(), 3);
  const auto json_reply =
      HttpPost(sink.http_port(), EncodeOtlpJson(MakeRequest(5)), "application/json");
  EXPECT_EQ(json::parse(json_reply->body)["partialSuccess"]["rejectedSpans"], "3");
  const auto requests = sink.Requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& logged : requests) {
    EXPECT_EQ(logged["result"], "partial");
    EXPECT_EQ(logged["rejected"], 3);
  }
  EXPECT_EQ(sink.SpanLines().size(), 3u);
}

TEST(OtlpSinkLifecycleTest, SigtermAnswersHeldRequestsAndExitsZero) {
  SinkProcess sink({"--delay-ms", "600000"});
  HttpConnection conn(sink.http_port());
  const std::string body = MakeRequest(2).SerializeAsString();
  const std::string request =
      PostRequest(body, "application/x-protobuf", "Expect: 100-continue\r\n");
  conn.Send(request.substr(0, request.size() - body.size()));
  // 100 Continue: the sink is serving this connection, so the body sent next is its to answer.
  ASSERT_EQ(conn.Read()->status, 100);
  conn.Send(body);
  kill(sink.proc().pid(), SIGTERM);
  const auto reply = conn.Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_TRUE(conn.ClosedByPeer());
  EXPECT_EQ(sink.proc().Wait(kTimeout), 0);
  EXPECT_EQ(sink.proc().ReadLine(kTimeout),
            "otlp-sink: stopped requests=1 accepted=1 failed=0 invalid=0 cancelled=0 spans=2");
}

TEST(OtlpSinkLifecycleTest, SigtermAnswersHeldGrpcRequestsAndExitsZero) {
  SinkProcess sink({"--delay-ms", "600000"});
  std::vector<std::future<GrpcResult>> held;
  for (int i = 0; i < 2; i++) {
    held.push_back(std::async(std::launch::async, [&sink, i] {
      return GrpcExport(sink.grpc_port(), MakeRequest(2, i));
    }));
  }
  // Both are the sink's to answer once each waits on a thread of its own.
  ASSERT_TRUE(AwaitThreads(sink.proc().pid(), "otlp-sink-delay", 2));
  kill(sink.proc().pid(), SIGTERM);
  for (auto& result : held) {
    const GrpcResult r = result.get();
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  }
  EXPECT_EQ(sink.proc().Wait(kTimeout), 0);
  EXPECT_EQ(sink.proc().ReadLine(kTimeout),
            "otlp-sink: stopped requests=2 accepted=2 failed=0 invalid=0 cancelled=0 spans=4");
  EXPECT_EQ(sink.SpanLines().size(), 2u);
}

TEST(OtlpSinkLifecycleTest, BadFlagsAndBusyPortsFailAtStart) {
  const struct {
    std::vector<std::string> argv;
    int exit;
  } cases[] = {
      {{"--fail-status", "NOPE"}, 2},
      {{"--fail-status", "OK"}, 2},
      {{"--http", "nonsense"}, 2},
      {{"--grpc", "127.0.0.1:99999"}, 2},
      {{"--fail-http-status", "42"}, 105},  // CLI11's ValidationError
      {{"--jsonl", "/nonexistent/dir/x.jsonl"}, 1},
  };
  for (const auto& c : cases) {
    // A flag given twice takes the last value, so these override the defaults before them.
    std::vector<std::string> argv = {SinkBinary(), "--grpc", "127.0.0.1:0", "--http",
                                     "127.0.0.1:0"};
    argv.insert(argv.end(), c.argv.begin(), c.argv.end());
    Subprocess proc(argv);
    EXPECT_EQ(proc.Wait(kTimeout), c.exit) << c.argv[0] << " " << c.argv[1];
  }
  SinkProcess first({});
  for (const auto& busy :
       {std::vector<std::string>{"--grpc", "127.0.0.1:" + std::to_string(first.grpc_port()),
                                 "--http", "127.0.0.1:0"},
        std::vector<std::string>{"--grpc", "127.0.0.1:0", "--http",
                                 "127.0.0.1:" + std::to_string(first.http_port())}}) {
    std::vector<std::string> argv = {SinkBinary()};
    argv.insert(argv.end(), busy.begin(), busy.end());
    Subprocess proc(argv);
    EXPECT_EQ(proc.Wait(kTimeout), 1) << busy[1] << " " << busy[3];
  }
}

TEST(OtlpSinkLifecycleTest, HelpDocumentsEveryFlag) {
  Subprocess proc({SinkBinary(), "--help"});
  std::string help;
  while (auto line = proc.ReadLine(kTimeout)) help += *line + "\n";
  EXPECT_EQ(proc.Wait(kTimeout), 0);
  for (const char* flag : {"--grpc", "--http", "--jsonl", "--requests-log", "--quiet", "--fail ",
                           "--fail-status", "--fail-http-status", "--retry-after-ms", "--delay-ms",
                           "--partial-reject", "listening on", "otlp-sink: stopped"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace zerotrace::otlp_sink
