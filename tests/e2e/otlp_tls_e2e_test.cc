// OTLP export over TLS end to end: the real agent, configured only by the standard
// OTEL_EXPORTER_OTLP_* variables, exports to the real otlp-sink serving TLS or mTLS. What
// arrives must equal the agent's own JSON lines; a connection the agent must not trust (or
// that does not trust the agent) loses the batch visibly: logged and counted, the agent
// running on and exiting 0 on SIGTERM.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e_fixture.h"
#include "otlp_sink_process.h"
#include "span_log.h"
#include "subprocess.h"
#include "test_pki.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::MakeTestPki;
using zerotrace::testing::Subprocess;
using zerotrace::testing::TestPki;
using Clock = std::chrono::steady_clock;

// What the agent finds in the system's trust store, /etc/ssl/certs.
enum class SystemRoots {
  kMachine,  // the machine's own
  kTestCa,   // only the test CA (bind-mounted over it in the agent's own mount namespace)
};

struct TlsCase {
  const char* name;
  const char* protocol;  // OTEL_EXPORTER_OTLP_PROTOCOL
  const char* endpoint;  // OTEL_EXPORTER_OTLP_ENDPOINT; $PORT is the sink's port
  bool mtls;             // the sink requires a client certificate from the test CA
  // More OTEL_EXPORTER_OTLP_ variables, "NAME=value" without the prefix. $CA, $CLIENT_CERT and
  // $CLIENT_KEY are the test CA's files; $OTHER_CA, $OTHER_CLIENT_CERT and $OTHER_CLIENT_KEY
  // those of an unrelated CA.
  std::vector<std::string> env;
  SystemRoots roots = SystemRoots::kMachine;
  const char* why = "";  // OtlpTlsExportFails: the failure line names this cause
};

void PrintTo(const TlsCase& c, std::ostream* os) { *os << c.name; }

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// The sink with the test CA's server certificate first, then the agent exporting to it.
class OtlpTlsTest : public AgentTest, public ::testing::WithParamInterface<TlsCase> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeTestPki(dir(), "ca", &pki_));
    ASSERT_TRUE(MakeTestPki(dir(), "other", &other_));
    if (GetParam().roots == SystemRoots::kTestCa) {
      ASSERT_TRUE(MakeTrustStore(pki_.ca_cert));
    }
    std::vector<std::string> flags = {"--tls-cert", pki_.server_cert, "--tls-key", pki_.server_key};
    if (GetParam().mtls) flags.insert(flags.end(), {"--tls-client-ca", pki_.ca_cert});
    sink_ = std::make_unique<SinkProcess>(dir(), flags);
    ASSERT_GT(sink_->grpc_port(), 0) << "the sink did not start";
    AgentTest::SetUp();
  }
  void TearDown() override {
    AgentTest::TearDown();
    sink_.reset();
  }

  bool grpc() const { return std::string(GetParam().protocol) == "grpc"; }

  std::vector<std::string> AgentEnv() const override {
    const int port = grpc() ? sink_->grpc_port() : sink_->http_port();
    std::vector<std::string> env = {
        std::string("OTEL_EXPORTER_OTLP_PROTOCOL=") + GetParam().protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT=" +
            Replace(GetParam().endpoint, "$PORT", std::to_string(port))};
    const std::pair<const char*, const std::string*> files[] = {
        {"$OTHER_CLIENT_CERT", &other_.client_cert},
        {"$OTHER_CLIENT_KEY", &other_.client_key},
        {"$OTHER_CA", &other_.ca_cert},
        {"$CLIENT_CERT", &pki_.client_cert},
        {"$CLIENT_KEY", &pki_.client_key},
        {"$CA", &pki_.ca_cert},
    };
    for (std::string e : GetParam().env) {
      for (const auto& [token, path] : files) e = Replace(e, token, *path);
      env.push_back("OTEL_EXPORTER_OTLP_" + e);
    }
    return env;
  }

  // With SystemRoots::kTestCa: unshare(1) gives the agent a mount namespace of its own, in
  // which the test's trust store is mounted over /etc/ssl/certs; nothing else sees it.
  std::vector<std::string> AgentLauncher() const override {
    if (GetParam().roots != SystemRoots::kTestCa) return {};
    return {"unshare",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            "mount --bind \"$0\" /etc/ssl/certs && exec \"$@\"",
            trust_store_};
  }

  // A directory laid out like /etc/ssl/certs holding one CA: the bundle file libcurl and gRPC
  // read, and the hashed name OpenSSL looks certificates up by.
  ::testing::AssertionResult MakeTrustStore(const std::string& ca) {
    trust_store_ = dir() + "/trust-store";
    std::filesystem::create_directories(trust_store_);
    Subprocess p({"/bin/sh", "-c",
                  "exec 2>&1; set -e; cd '" + trust_store_ + "'; cp '" + ca +
                      "' ca-certificates.crt; "
                      "ln -s ca-certificates.crt \"$(openssl x509 -hash -noout -in "
                      "ca-certificates.crt).0\""});
    std::string out;
    while (auto line = p.ReadLine(std::chrono::seconds(10))) out += *line + "\n";
    if (p.Wait(std::chrono::seconds(10)) != 0) {
      return ::testing::AssertionFailure() << "making the trust store failed:\n" << out;
    }
    return ::testing::AssertionSuccess();
  }

  // The first line of the agent's output containing `needle`, polled until the deadline;
  // empty when none came.
  std::string AwaitAgentLine(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      for (const auto& line : AgentOutput()) {
        if (line.find(needle) != std::string::npos) return line;
      }
      if (Clock::now() >= deadline) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // The key=value counters of the agent's last stats line (the final one once it stopped).
  std::map<std::string, uint64_t> LastStats(std::string* line) const {
    for (const auto& l : AgentOutput()) {
      if (l.find("zerotrace: stats") != std::string::npos) *line = l;
    }
    std::map<std::string, uint64_t> kv;
    std::istringstream words(*line);
    for (std::string w; words >> w;) {
      const size_t eq = w.find('=');
      if (eq != std::string::npos) kv[w.substr(0, eq)] = std::stoull(w.substr(eq + 1));
    }
    return kv;
  }

  TestPki pki_, other_;
  std::string trust_store_;
  std::unique_ptr<SinkProcess> sink_;
};

class OtlpTlsExportArrives : public OtlpTlsTest {};

TEST_P(OtlpTlsExportArrives, SpansArriveEqualToTheJsonLines) {
  auto& srv = StartPythonServer();
  const auto curl = Curl({Url(srv.port, "/hello"), Url(srv.port, "/items/7?x=1")});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{srv.pid(), 2}, {curl.pid, 2}}));  // stops the agent: flushed
  for (const pid_t pid : {srv.pid(), curl.pid}) {
    const auto got = AwaitSinkSpans(sink_->spans_path(), pid, 2, std::chrono::seconds(15));
    EXPECT_TRUE(SameSpans(SpansOf(pid), got)) << "pid " << pid;
  }
  EXPECT_TRUE(SpansOf(sink_->pid()).empty()) << Describe(sink_->pid());
  const auto requests = sink_->Requests();
  ASSERT_FALSE(requests.empty());
  for (const auto& r : requests) {
    EXPECT_EQ(r.value("transport", ""), grpc() ? "grpc" : "http") << r.dump();
    EXPECT_EQ(r.value("result", ""), "ok") << r.dump();
  }
  std::string stats;
  auto kv = LastStats(&stats);
  EXPECT_GE(kv["otlp_spans_ok"], 4u) << stats;
}

// Every TLS setting the issue names, on both transports: a given CA, system roots, mTLS, the
// _TRACES_ variables over the general ones, and how a gRPC endpoint's scheme and
// OTEL_EXPORTER_OTLP_INSECURE choose TLS.
const std::vector<std::string> kTracesMtls = {"CERTIFICATE=$OTHER_CA",
                                              "TRACES_CERTIFICATE=$CA",
                                              "CLIENT_CERTIFICATE=$OTHER_CLIENT_CERT",
                                              "CLIENT_KEY=$OTHER_CLIENT_KEY",
                                              "TRACES_CLIENT_CERTIFICATE=$CLIENT_CERT",
                                              "TRACES_CLIENT_KEY=$CLIENT_KEY"};
const std::vector<std::string> kMtls = {"CERTIFICATE=$CA", "CLIENT_CERTIFICATE=$CLIENT_CERT",
                                        "CLIENT_KEY=$CLIENT_KEY"};
constexpr char kIp[] = "https://127.0.0.1:$PORT";
constexpr char kLocalhost[] = "https://localhost:$PORT";
constexpr SystemRoots kMachine = SystemRoots::kMachine, kTestCa = SystemRoots::kTestCa;

const TlsCase kArrives[] = {
    // name, protocol, endpoint, mtls, env, system roots
    {"grpc_ca", "grpc", kIp, false, {"CERTIFICATE=$CA"}},
    {"http_protobuf_ca", "http/protobuf", kIp, false, {"CERTIFICATE=$CA"}},
    {"grpc_mtls", "grpc", kLocalhost, true, kMtls},
    {"http_protobuf_mtls", "http/protobuf", kLocalhost, true, kMtls},
    {"grpc_system_roots", "grpc", kIp, false, {}, kTestCa},
    {"http_protobuf_system_roots", "http/protobuf", kIp, false, {}, kTestCa},
    {"grpc_traces_variables_win", "grpc", kLocalhost, true, kTracesMtls},
    {"http_protobuf_traces_variables_win", "http/protobuf", kLocalhost, true, kTracesMtls},
    {"grpc_target_without_scheme_is_tls",
     "grpc",
     "127.0.0.1:$PORT",
     false,
     {"CERTIFICATE=$CA", "INSECURE=false"}},
    {"grpc_https_wins_over_insecure",
     "grpc",
     kIp,
     false,
     {"CERTIFICATE=$CA", "TRACES_INSECURE=true"}},
};

INSTANTIATE_TEST_SUITE_P(Tls, OtlpTlsExportArrives, ::testing::ValuesIn(kArrives),
                         [](const auto& info) { return std::string(info.param.name); });

// Stats every second, to see failures counted while the agent runs; a short export timeout, so
// that the retries left at SIGTERM end soon.
class OtlpTlsExportFails : public OtlpTlsTest {
 protected:
  std::vector<std::string> AgentFlags() const override { return {"--stats-interval", "1"}; }
  std::vector<std::string> AgentEnv() const override {
    auto env = OtlpTlsTest::AgentEnv();
    env.push_back("OTEL_EXPORTER_OTLP_TIMEOUT=2000");
    return env;
  }
};

// Failures the exporter counted (attempts to retry, spans given up), from a stats line.
uint64_t FailedSpans(std::map<std::string, uint64_t>& kv) {
  return kv["otlp_attempts_retryable_failed"] + kv["otlp_spans_dropped_non_retryable"] +
         kv["otlp_spans_dropped_retry_exhausted"] + kv["otlp_spans_dropped_shutdown"];
}

TEST_P(OtlpTlsExportFails, NothingArrivesAndTheAgentCountsItAndRunsOn) {
  auto& srv = StartPythonServer();
  const auto curl = Curl({Url(srv.port, "/hello")});
  ASSERT_EQ(curl.exit_code, 0);
  const std::string exporter = grpc() ? "exporter otlp-grpc" : "exporter otlp-http";
  const std::string failure = AwaitAgentLine("export failed", std::chrono::seconds(20));
  ASSERT_NE(failure, "") << "no export failure was reported";
  EXPECT_NE(failure.find(exporter), std::string::npos) << failure;
  EXPECT_NE(failure.find(GetParam().why), std::string::npos) << failure;
  // The agent runs on and counts the failure in its periodic stats.
  std::string stats;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (auto kv = LastStats(&stats); FailedSpans(kv) == 0; kv = LastStats(&stats)) {
    ASSERT_LT(Clock::now(), deadline) << "no stats line counts the failure; last: " << stats;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  StopAgent();  // SIGTERM: exits 0, or the test fails
  ASSERT_TRUE(AwaitSpans({{srv.pid(), 1}, {curl.pid, 1}}, std::chrono::seconds(1)))
      << "the spans are missing from the agent's own JSON lines";
  auto kv = LastStats(&stats);
  ASSERT_NE(stats.find("otlp_spans_ok"), std::string::npos) << "no final stats line";
  EXPECT_EQ(kv["otlp_spans_ok"], 0u) << stats;
  EXPECT_EQ(kv["otlp_batches_ok"], 0u) << stats;
  EXPECT_GT(kv["otlp_spans_dropped_non_retryable"] + kv["otlp_spans_dropped_retry_exhausted"] +
                kv["otlp_spans_dropped_shutdown"],
            0u)
      << stats;
  EXPECT_TRUE(sink_->Requests().empty()) << sink_->Requests().size() << " requests arrived";
}

// The agent must not trust the sink, or the sink the agent.
const TlsCase kFails[] = {
    // name, protocol, endpoint, mtls, env, system roots, cause in the failure line
    {"grpc_unrelated_ca",
     "grpc",
     kIp,
     false,
     {"CERTIFICATE=$OTHER_CA"},
     kMachine,
     "certificate verify failed"},
    {"http_protobuf_unrelated_ca",
     "http/protobuf",
     kIp,
     false,
     {"CERTIFICATE=$OTHER_CA"},
     kMachine,
     "SSL certificate problem"},
    {"grpc_traces_certificate_wins",
     "grpc",
     kIp,
     false,
     {"CERTIFICATE=$CA", "TRACES_CERTIFICATE=$OTHER_CA"},
     kMachine,
     "certificate verify failed"},
    // A given CA replaces the system roots: it is the only one trusted.
    {"grpc_given_ca_replaces_system_roots",
     "grpc",
     kIp,
     false,
     {"CERTIFICATE=$OTHER_CA"},
     kTestCa,
     "certificate verify failed"},
    {"http_protobuf_given_ca_replaces_system_roots",
     "http/protobuf",
     kIp,
     false,
     {"CERTIFICATE=$OTHER_CA"},
     kTestCa,
     "SSL certificate problem"},
    {"grpc_no_client_certificate", "grpc", kIp, true, {"CERTIFICATE=$CA"}},
    {"http_protobuf_no_client_certificate",
     "http/protobuf",
     kIp,
     true,
     {"CERTIFICATE=$CA"},
     kMachine,
     "certificate required"},
    {"http_protobuf_client_certificate_of_another_ca",
     "http/protobuf",
     kIp,
     true,
     {"CERTIFICATE=$CA", "CLIENT_CERTIFICATE=$OTHER_CLIENT_CERT", "CLIENT_KEY=$OTHER_CLIENT_KEY"},
     kMachine,
     "unknown ca"},
    {"grpc_insecure_target_is_plaintext",
     "grpc",
     "127.0.0.1:$PORT",
     false,
     {"CERTIFICATE=$CA", "INSECURE=true"}},
};

INSTANTIATE_TEST_SUITE_P(Tls, OtlpTlsExportFails, ::testing::ValuesIn(kFails),
                         [](const auto& info) { return std::string(info.param.name); });

// A certificate or key that cannot work is a start-up error with a non-zero exit, before
// anything is traced.
TEST(OtlpTlsConfigErrors, UnusablePemFilesExitNonZero) {
  zerotrace::testing::TempDir dir;
  TestPki pki, other;
  ASSERT_TRUE(MakeTestPki(dir.path(), "ca", &pki));
  ASSERT_TRUE(MakeTestPki(dir.path(), "other", &other));
  const struct {
    std::vector<std::string> env;
    std::string want;
  } cases[] = {
      {{"OTEL_EXPORTER_OTLP_CERTIFICATE=" + pki.ca_key}, "holds no PEM certificate"},
      {{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=" + pki.client_cert,
        "OTEL_EXPORTER_OTLP_CLIENT_KEY=" + other.client_key},
       "is not the private key of the certificate"},
  };
  for (const auto& c : cases) {
    for (const char* protocol : {"grpc", "http/protobuf"}) {
      std::vector<std::string> env = c.env;
      env.push_back("OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:4317");
      env.push_back(std::string("OTEL_EXPORTER_OTLP_PROTOCOL=") + protocol);
      Subprocess p({"/bin/sh", "-c", std::string("exec ") + ZT_AGENT + " 2>&1"}, env);
      std::string out;
      while (auto line = p.ReadLine(std::chrono::seconds(20))) out += *line + "\n";
      EXPECT_EQ(p.Wait(std::chrono::seconds(20)), 2) << protocol << "\n" << out;
      EXPECT_NE(out.find(c.want), std::string::npos) << protocol << "\n" << out;
      EXPECT_EQ(out.find("tracing"), std::string::npos) << protocol << "\n" << out;
    }
  }
}

}  // namespace
}  // namespace zerotrace::e2e
