// The real otlp-sink: gRPC and HTTP in (protobuf, JSON, gzip, keep-alive); files and stdout out.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gzip.h"
#include "otlp_json_codec.h"
#include "sink_harness.h"

namespace zerotrace::otlp_sink {
namespace {

using nlohmann::json;
using otlp_sink::testing::DecodeRpcStatus;
using otlp_sink::testing::GrpcExport;
using otlp_sink::testing::HttpConnection;
using otlp_sink::testing::HttpPost;
using otlp_sink::testing::kTimeout;
using otlp_sink::testing::MakeRequest;
using otlp_sink::testing::PostRequest;
using otlp_sink::testing::SinkProcess;
using std::chrono::milliseconds;
TEST(OtlpSinkGrpcTest, ProtobufRequestIsWrittenAsOtlpJsonAndLogged) {
  SinkProcess sink({});
  const ExportRequest request = MakeRequest(2);
  const auto r = GrpcExport(sink.grpc_port(), request, /*gzip=*/false,
                            {{"x-team", "checkout"}, {"authorization", "secret"}});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_FALSE(r.response.has_partial_success());
  // Written before the answer: no polling needed.
  const auto lines = sink.SpanLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], EncodeOtlpJson(request));
  const json span = json::parse(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][1];
  EXPECT_EQ(span["traceId"], "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b01");
  EXPECT_EQ(span["parentSpanId"], "0e0e0e0e0e0e0e00");
  EXPECT_EQ(span["kind"], 3);
  EXPECT_EQ(span["startTimeUnixNano"], "1700000000000000001");
  const auto requests = sink.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0], json::parse(R"({"transport":"grpc","encoding":"protobuf","gzip":false,
      "headers":{"x-team":"checkout"},"spans":2,"seq":1,"result":"ok","status":0})"));
}

TEST(OtlpSinkGrpcTest, GzipRequestIsAcceptedAndLoggedAsGzip) {
  SinkProcess sink({});
  const ExportRequest request = MakeRequest(50);
  const auto r = GrpcExport(sink.grpc_port(), request, /*gzip=*/true, {{"x-env", "e2e"}});
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(sink.SpanLines().size(), 1u);
  EXPECT_EQ(sink.SpanLines()[0], EncodeOtlpJson(request));
  const auto requests = sink.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["gzip"], true);
  EXPECT_EQ(requests[0]["spans"], 50);
  EXPECT_EQ(requests[0]["headers"], json::parse(R"({"x-env":"e2e"})"));
}

TEST(OtlpSinkHttpTest, ProtobufJsonAndGzipBodiesAreAccepted) {
  SinkProcess sink({});
  const ExportRequest request = MakeRequest(3);
  const std::string proto = request.SerializeAsString();
  const std::string json_body = EncodeOtlpJson(request);  // hex ids, as OTLP/JSON senders write
  struct Case {
    const char* name;
    std::string body, content_type, headers, encoding;
    bool gzip;
  };
  const Case cases[] = {
      {"protobuf", proto, "application/x-protobuf", "X-Team: a\r\n", "protobuf", false},
      {"protobuf gzip", Gzip(proto), "application/x-protobuf", "Content-Encoding: gzip\r\n",
       "protobuf", true},
      {"json", json_body, "application/json; charset=utf-8", "x-team: b\r\nX-Team: c\r\n", "json",
       false},
      {"json gzip", Gzip(json_body), "application/json", "Content-Encoding: GZIP\r\n", "json",
       true},
  };
  size_t n = 0;
  for (const Case& c : cases) {
    const auto reply = HttpPost(sink.http_port(), c.body, c.content_type, c.headers);
    ASSERT_TRUE(reply) << c.name;
    EXPECT_EQ(reply->status, 200) << c.name << ": " << reply->body;
    const bool is_json = c.encoding == "json";
    EXPECT_EQ(reply->Header("content-type"),
              is_json ? "application/json" : "application/x-protobuf");
    EXPECT_EQ(reply->body, is_json ? "{}" : "") << c.name;
    const auto lines = sink.SpanLines();
    ASSERT_EQ(lines.size(), ++n) << c.name;
    EXPECT_EQ(lines.back(), EncodeOtlpJson(request)) << c.name;
    const json logged = sink.Requests().back();
    EXPECT_EQ(logged["transport"], "http") << c.name;
    EXPECT_EQ(logged["encoding"], c.encoding) << c.name;
    EXPECT_EQ(logged["gzip"], c.gzip) << c.name;
    EXPECT_EQ(logged["spans"], 3) << c.name;
    EXPECT_EQ(logged["status"], 200) << c.name;
  }
  const auto requests = sink.Requests();
  EXPECT_EQ(requests[0]["headers"], json::parse(R"({"x-team":"a"})"));
  EXPECT_EQ(requests[1]["headers"], json::object());
  EXPECT_EQ(requests[2]["headers"], json::parse(R"({"x-team":"b, c"})"));
}

TEST(OtlpSinkHttpTest, HandWrittenJsonWithHexIdsKeepsTheIds) {
  SinkProcess sink({});
  const std::string body = R"({"resourceSpans":[{"scopeSpans":[{"spans":[{
      "traceId":"0AF7651916CD43DD8448EB211C80319C","spanId":"b7ad6b7169203331","name":"x",
      "kind":3,"startTimeUnixNano":"1","endTimeUnixNano":2}]}]}]})";
  const auto reply = HttpPost(sink.http_port(), body, "application/json");
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->status, 200) << reply->body;
  ASSERT_EQ(sink.SpanLines().size(), 1u);
  EXPECT_EQ(json::parse(sink.SpanLines()[0]),
            json::parse(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{
      "traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"x",
      "kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]})"));
}

TEST(OtlpSinkHttpTest, KeepAlivePipeliningAndExpectContinue) {
  SinkProcess sink({});
  const std::string body = MakeRequest(1).SerializeAsString();
  HttpConnection conn(sink.http_port());
  // Two pipelined requests, then one that waits for 100 Continue, all on one connection.
  conn.Send(PostRequest(body, "application/x-protobuf") +
            PostRequest(body, "application/x-protobuf"));
  for (int i = 0; i < 2; i++) {
    const auto reply = conn.Read();
    ASSERT_TRUE(reply) << i;
    EXPECT_EQ(reply->status, 200);
  }
  // An empty body (an empty request) needs no 100 Continue; a non-empty one does.
  conn.Send(PostRequest("", "application/x-protobuf", "Expect: 100-continue\r\n"));
  ASSERT_EQ(conn.Read()->status, 200);
  const std::string head = PostRequest(body, "application/x-protobuf", "Expect: 100-continue\r\n");
  conn.Send(head.substr(0, head.size() - body.size()));
  const auto interim = conn.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  conn.Send(body);
  ASSERT_EQ(conn.Read()->status, 200);
  // Chunked bodies too.
  conn.Send(
      "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
      [&] {
        std::string chunked;
        for (size_t i = 0; i < body.size(); i += 7) {
          const std::string part = body.substr(i, 7);
          char size[16];
          std::snprintf(size, sizeof(size), "%zx\r\n", part.size());
          chunked += size + part + "\r\n";
        }
        return chunked + "0\r\n\r\n";
      }());
  const auto last = conn.Read();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 200);
  EXPECT_EQ(last->Header("connection"), "close");
  EXPECT_TRUE(conn.ClosedByPeer());
  EXPECT_EQ(sink.SpanLines().size(), 5u);  // the empty request is a line without spans
}

TEST(OtlpSinkHttpTest, RejectsWhatIsNotAnOtlpTraceExport) {
  SinkProcess sink({});
  const std::string proto = MakeRequest(1).SerializeAsString();
  struct Case {
    const char* name;
    std::string request;
    int status;
    bool logged;  // as "invalid" in the request log
  };
  const Case cases[] = {
      {"other path", PostRequest(proto, "application/x-protobuf", "", "/v1/logs"), 404, false},
      {"GET", "GET /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n", 405, false},
      {"content type", PostRequest(proto, "text/plain"), 415, false},
      {"content encoding", PostRequest(proto, "application/x-protobuf", "Content-Encoding: br\r\n"),
       415, false},
      {"bad protobuf", PostRequest("\xff\xff\xff", "application/x-protobuf"), 400, true},
      {"bad gzip", PostRequest(proto, "application/x-protobuf", "Content-Encoding: gzip\r\n"), 400,
       true},
      {"bad hex id",
       PostRequest(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]})",
                   "application/json"),
       400, true},
  };
  size_t invalid = 0;
  for (const Case& c : cases) {
    HttpConnection conn(sink.http_port());
    conn.Send(c.request);
    const auto reply = conn.Read();
    ASSERT_TRUE(reply) << c.name;
    EXPECT_EQ(reply->status, c.status) << c.name << ": " << reply->body;
    if (c.logged) {
      invalid++;
      const auto requests = sink.Requests();
      ASSERT_EQ(requests.size(), invalid) << c.name;
      EXPECT_EQ(requests.back()["result"], "invalid") << c.name;
      EXPECT_EQ(requests.back()["status"], 400) << c.name;
      EXPECT_FALSE(requests.back().value("error", "").empty()) << c.name;
    }
  }
  EXPECT_TRUE(sink.SpanLines().empty());
}

TEST(OtlpSinkOutputTest, ReadableLinesOnStdoutByDefault) {
  SinkProcess sink({}, /*jsonl=*/false);
  ASSERT_TRUE(GrpcExport(sink.grpc_port(), MakeRequest(2)).status.ok());
  EXPECT_EQ(sink.proc().ReadLine(kTimeout),
            "checkout SERVER \"GET /items/0\" status=UNSET trace=5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b01 "
            "span=0e0e0e0e0e0e0e00 parent=- duration=1.500000ms http.response.status_code=200 "
            "url.path=\"/items/0\"");
  EXPECT_EQ(sink.proc().ReadLine(kTimeout),
            "checkout CLIENT \"GET /items/1\" status=UNSET trace=5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b01 "
            "span=0e0e0e0e0e0e0e01 parent=0e0e0e0e0e0e0e00 duration=1.500000ms "
            "http.response.status_code=200 url.path=\"/items/1\"");
}

TEST(OtlpSinkOutputTest, QuietWritesNoSpansButCounts) {
  SinkProcess sink({"--quiet"});
  ASSERT_TRUE(GrpcExport(sink.grpc_port(), MakeRequest(4)).status.ok());
  EXPECT_TRUE(sink.SpanLines().empty());
  EXPECT_EQ(sink.Requests().at(0)["spans"], 4);
  EXPECT_EQ(sink.Terminate(), 0);
  EXPECT_EQ(sink.proc().ReadLine(kTimeout),
            "otlp-sink: stopped requests=1 accepted=1 failed=0 invalid=0 cancelled=0 spans=4");
}

// --count-only: the same answers and log, spans counted from the bytes, nothing parsed.
TEST(OtlpSinkOutputTest, CountOnlyCountsBothTransportsAndRefusesBrokenProtobuf) {
  SinkProcess sink({"--count-only"}, /*jsonl=*/false);
  ASSERT_TRUE(GrpcExport(sink.grpc_port(), MakeRequest(7)).status.ok());
  const auto reply =
      HttpPost(sink.http_port(), MakeRequest(3, 2).SerializeAsString(), "application/x-protobuf");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200) << reply->body;
  const auto bad = HttpPost(sink.http_port(), "\x0a\x05\x12", "application/x-protobuf");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  // gRPC with bytes that are not a request: a generic call, as the typed stub cannot send them.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(sink.grpc_port()),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kTimeout);
  grpc::Slice garbage(std::string("\x0a\x05\x12"));
  const grpc::ByteBuffer request(&garbage, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                 grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  const grpc::Status status = done.get_future().get();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();

  const auto requests = sink.AwaitRequests(4);
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0]["spans"], 7);
  EXPECT_EQ(requests[0]["result"], "ok");
  EXPECT_EQ(requests[1]["spans"], 3);
  EXPECT_EQ(requests[1]["transport"], "http");
  EXPECT_EQ(requests[2]["result"], "invalid");
  EXPECT_EQ(requests[3]["result"], "invalid");
  EXPECT_EQ(requests[3]["transport"], "grpc");
  EXPECT_EQ(sink.Terminate(), 0);
  EXPECT_EQ(sink.proc().ReadLine(kTimeout),
            "otlp-sink: stopped requests=4 accepted=2 failed=0 invalid=2 cancelled=0 spans=10");
}

TEST(OtlpSinkOutputTest, CountOnlyRefusesJsonl) {
  zerotrace::testing::Subprocess proc(
      {otlp_sink::testing::SinkBinary(), "--count-only", "--jsonl", "/dev/null"});
  EXPECT_EQ(proc.Wait(kTimeout), 2);
}

}  // namespace
}  // namespace zerotrace::otlp_sink
