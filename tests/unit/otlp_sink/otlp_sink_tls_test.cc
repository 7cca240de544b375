// otlp-sink over TLS: both listeners serve the given certificate, --tls-client-ca requires a
// client certificate from that CA, and every bad TLS file is a clear start-up error.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "sink_harness.h"
#include "subprocess.h"
#include "test_pki.h"

namespace zerotrace::otlp_sink {
namespace {

using opentelemetry::proto::collector::trace::v1::TraceService;
using otlp_sink::testing::kTimeout;
using otlp_sink::testing::MakeRequest;
using otlp_sink::testing::SinkBinary;
using otlp_sink::testing::SinkProcess;
using zerotrace::testing::MakeTestPki;
using zerotrace::testing::Subprocess;
using zerotrace::testing::TempDir;
using zerotrace::testing::TestPki;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The status of one Export over TLS to 127.0.0.1:port, trusting `ca`, presenting the client
// certificate when one is given.
grpc::Status TlsExport(int port, const std::string& ca, const std::string& client_cert = "",
                       const std::string& client_key = "") {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadAll(ca);
  if (!client_cert.empty()) {
    ssl.pem_cert_chain = ReadAll(client_cert);
    ssl.pem_private_key = ReadAll(client_key);
  }
  auto stub = TraceService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(ssl)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ExportResponse response;
  return stub->Export(&context, MakeRequest(1), &response);
}

class OtlpSinkTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeTestPki(dir_.path(), "ca", &pki_));
    ASSERT_TRUE(MakeTestPki(dir_.path(), "other", &other_));
    body_ = dir_.path() + "/request.pb";
    std::ofstream(body_, std::ios::binary) << MakeRequest(1).SerializeAsString();
  }

  // curl's exit code and the HTTP status (0 without one) of a POST to https://HOST:port.
  std::pair<int, int> CurlPost(const std::string& host, int port, std::vector<std::string> tls) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "-o", "/dev/null"};
    argv.insert(argv.end(), {"-w", "%{http_code}\\n", "--data-binary", "@" + body_});
    argv.insert(argv.end(), {"-H", "Content-Type: application/x-protobuf"});
    argv.insert(argv.end(), tls.begin(), tls.end());
    argv.push_back("https://" + host + ":" + std::to_string(port) + "/v1/traces");
    Subprocess curl(argv);
    const auto code = curl.ReadLine(kTimeout);
    const int rc = curl.Wait(kTimeout);
    return {rc, code ? std::atoi(code->c_str()) : 0};
  }

  TempDir dir_;
  TestPki pki_, other_;
  std::string body_;
};

TEST_F(OtlpSinkTlsTest, BothListenersServeTheCertificateToClientsTrustingItsCa) {
  SinkProcess sink({"--tls-cert", pki_.server_cert, "--tls-key", pki_.server_key});
  ASSERT_GT(sink.grpc_port(), 0);
  const grpc::Status ok = TlsExport(sink.grpc_port(), pki_.ca_cert);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(CurlPost("127.0.0.1", sink.http_port(), {"--cacert", pki_.ca_cert}),
            std::make_pair(0, 200));
  EXPECT_EQ(CurlPost("localhost", sink.http_port(), {"--cacert", pki_.ca_cert}),
            std::make_pair(0, 200));
  // A client that trusts another CA refuses the sink's certificate.
  EXPECT_EQ(TlsExport(sink.grpc_port(), other_.ca_cert).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CurlPost("127.0.0.1", sink.http_port(), {"--cacert", other_.ca_cert}).first,
            60);  // CURLE_PEER_FAILED_VERIFICATION
  EXPECT_EQ(sink.AwaitRequests(3).size(), 3u);
  EXPECT_EQ(sink.Requests().size(), 3u);
}

TEST_F(OtlpSinkTlsTest, ClientCaRequiresAClientCertificateFromIt) {
  SinkProcess sink({"--tls-cert", pki_.server_cert, "--tls-key", pki_.server_key, "--tls-client-ca",
                    pki_.ca_cert});
  ASSERT_GT(sink.grpc_port(), 0);
  const grpc::Status ok =
      TlsExport(sink.grpc_port(), pki_.ca_cert, pki_.client_cert, pki_.client_key);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(
      CurlPost("127.0.0.1", sink.http_port(),
               {"--cacert", pki_.ca_cert, "--cert", pki_.client_cert, "--key", pki_.client_key}),
      std::make_pair(0, 200));
  // No client certificate, or one from another CA: no request gets through.
  EXPECT_FALSE(TlsExport(sink.grpc_port(), pki_.ca_cert).ok());
  EXPECT_FALSE(
      TlsExport(sink.grpc_port(), pki_.ca_cert, other_.client_cert, other_.client_key).ok());
  EXPECT_NE(CurlPost("127.0.0.1", sink.http_port(), {"--cacert", pki_.ca_cert}).first, 0);
  EXPECT_NE(
      CurlPost("127.0.0.1", sink.http_port(),
               {"--cacert", pki_.ca_cert, "--cert", other_.client_cert, "--key", other_.client_key})
          .first,
      0);
  EXPECT_EQ(sink.AwaitRequests(2).size(), 2u);
  EXPECT_EQ(sink.Terminate(), 0);
  EXPECT_EQ(sink.Requests().size(), 2u);
}

TEST_F(OtlpSinkTlsTest, BadTlsFlagsAndFilesAreStartUpErrors) {
  const std::string junk = dir_.path() + "/junk.pem";
  std::ofstream(junk) << "not a certificate\n";
  const std::string missing = dir_.path() + "/missing.pem";
  const std::string& cert = pki_.server_cert;
  const std::string& key = pki_.server_key;
  struct Case {
    std::vector<std::string> flags;
    int exit_code;
    std::string message;
  } cases[] = {
      {{"--tls-cert", cert}, 2, "--tls-cert and --tls-key go together"},
      {{"--tls-key", key}, 2, "--tls-cert and --tls-key go together"},
      {{"--tls-client-ca", pki_.ca_cert}, 2, "--tls-client-ca needs --tls-cert and --tls-key"},
      {{"--tls-cert", missing, "--tls-key", key},
       1,
       "--tls-cert " + missing + ": cannot read it: No such file or directory"},
      {{"--tls-cert", junk, "--tls-key", key},
       1,
       "--tls-cert " + junk + ": not a usable PEM certificate: no start line"},
      {{"--tls-cert", cert, "--tls-key", junk},
       1,
       "--tls-key " + junk + ": not a usable PEM private key"},
      {{"--tls-cert", cert, "--tls-key", pki_.client_key},
       1,
       "--tls-key " + pki_.client_key + " does not match the certificate in --tls-cert " + cert},
      {{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", junk},
       1,
       "--tls-client-ca " + junk + ": not a usable PEM CA certificate"},
      {{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", missing},
       1,
       "--tls-client-ca " + missing + ": cannot read it: No such file or directory"},
  };
  for (const auto& c : cases) {
    std::string cmd = "exec '" + SinkBinary() + "' --grpc 127.0.0.1:0 --http 127.0.0.1:0";
    for (const auto& f : c.flags) cmd += " '" + f + "'";
    Subprocess p({"/bin/sh", "-c", cmd + " 2>&1"});
    std::string out;
    while (auto line = p.ReadLine(kTimeout)) out += *line + "\n";
    EXPECT_EQ(p.Wait(kTimeout), c.exit_code) << cmd << "\n" << out;
    EXPECT_EQ(out.rfind("otlp-sink: " + c.message, 0), 0u) << cmd << "\n" << out;
    EXPECT_EQ(out.find("listening"), std::string::npos) << cmd << "\n" << out;
  }
}

}  // namespace
}  // namespace zerotrace::otlp_sink
