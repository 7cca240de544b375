// OTLP configuration: the specification's precedence and defaults, flags, and start-up errors.
#include "export/otlp_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "subprocess.h"
#include "test_pki.h"

namespace zerotrace::exporter {
namespace {

using Env = std::map<std::string, std::string>;
using Protocol = OtlpConfig::Protocol;
using zerotrace::testing::MakeTestPki;
using zerotrace::testing::TestPki;

StatusOr<std::optional<OtlpConfig>> From(const Env& env, const std::string& flag_endpoint = "",
                                         const std::string& flag_protocol = "") {
  return OtlpConfigFrom(
      [&env](const char* name) -> const char* {
        const auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      flag_endpoint, flag_protocol);
}

struct EndpointCase {
  const char* what;
  Env env;
  std::string flag_endpoint;
  std::string flag_protocol;
  std::string endpoint;  // expected
  Protocol protocol;
  bool insecure;
};

TEST(OtlpConfigTest, EndpointAndProtocolFollowTheSpecification) {
  const EndpointCase cases[] = {
      {"base endpoint gets v1/traces for HTTP",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"}},
       "",
       "",
       "http://collector:4318/v1/traces",
       Protocol::kHttpProtobuf,
       true},
      {"base endpoint with a trailing slash",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/"}},
       "",
       "",
       "https://collector:4318/v1/traces",
       Protocol::kHttpProtobuf,
       false},
      {"base endpoint with a path prefix",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://vendor.example/otlp"}},
       "",
       "",
       "https://vendor.example/otlp/v1/traces",
       Protocol::kHttpProtobuf,
       false},
      {"signal endpoint is used as is",
       {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom/path"}},
       "",
       "",
       "http://collector:4318/custom/path",
       Protocol::kHttpProtobuf,
       true},
      {"signal endpoint without a path gets /",
       {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318"}},
       "",
       "",
       "http://collector:4318/",
       Protocol::kHttpProtobuf,
       true},
      {"signal endpoint wins over base",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/v1/traces"}},
       "",
       "",
       "http://traces:4318/v1/traces",
       Protocol::kHttpProtobuf,
       true},
      {"an empty signal endpoint counts as unset",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""}},
       "",
       "",
       "http://base:4318/v1/traces",
       Protocol::kHttpProtobuf,
       true},
      {"IPv6 host and query kept",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1]:4318/p?tenant=a"}},
       "",
       "",
       "http://[::1]:4318/p/v1/traces?tenant=a",
       Protocol::kHttpProtobuf,
       true},
      {"http/json",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}},
       "",
       "",
       "http://c:4318/v1/traces",
       Protocol::kHttpJson,
       true},
      {"signal protocol wins",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
        {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"}},
       "",
       "",
       "http://c:4317",
       Protocol::kGrpc,
       true},
      {"grpc keeps the base endpoint as is",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
       "",
       "",
       "https://c:4317",
       Protocol::kGrpc,
       false},
      {"grpc host:port is TLS by default",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
       "",
       "",
       "c:4317",
       Protocol::kGrpc,
       false},
      {"grpc host:port with INSECURE=true is plaintext",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
        {"OTEL_EXPORTER_OTLP_INSECURE", "TRUE"}},
       "",
       "",
       "c:4317",
       Protocol::kGrpc,
       true},
      {"the https scheme wins over INSECURE",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
        {"OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true"}},
       "",
       "",
       "https://c:4317",
       Protocol::kGrpc,
       false},
      {"the flags win over the environment",
       {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:4318/v1/traces"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}},
       "http://flag:4317",
       "grpc",
       "http://flag:4317",
       Protocol::kGrpc,
       true},
      {"the endpoint flag is a base URL for HTTP",
       {},
       "http://flag:4318",
       "",
       "http://flag:4318/v1/traces",
       Protocol::kHttpProtobuf,
       true},
      {"the endpoint flag keeps a full traces URL",
       {},
       "https://flag/otlp/v1/traces",
       "",
       "https://flag/otlp/v1/traces",
       Protocol::kHttpProtobuf,
       false},
      {"the protocol flag alone uses the default gRPC endpoint",
       {},
       "",
       "grpc",
       "http://localhost:4317",
       Protocol::kGrpc,
       true},
      {"the protocol flag alone uses the default HTTP endpoint",
       {},
       "",
       "http/protobuf",
       "http://localhost:4318/v1/traces",
       Protocol::kHttpProtobuf,
       true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto config = From(c.env, c.flag_endpoint, c.flag_protocol);
    ASSERT_TRUE(config.ok()) << config.status().message();
    ASSERT_TRUE(config.value().has_value());
    EXPECT_EQ(config.value()->endpoint, c.endpoint);
    EXPECT_EQ(config.value()->protocol, c.protocol);
    EXPECT_EQ(config.value()->insecure, c.insecure);
  }
}

TEST(OtlpConfigTest, NoEndpointAnywhereMeansNoOtlpExport) {
  for (const Env& env :
       {Env{}, Env{{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
        Env{{"OTEL_EXPORTER_OTLP_ENDPOINT", ""}}, Env{{"OTEL_EXPORTER_OTLP_ENDPOINT", "  "}}}) {
    auto config = From(env);
    ASSERT_TRUE(config.ok()) << config.status().message();
    EXPECT_FALSE(config.value().has_value());
  }
}

TEST(OtlpConfigTest, DefaultsFollowTheSpecification) {
  auto config = From({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}});
  ASSERT_TRUE(config.ok());
  const OtlpConfig& c = **config;
  EXPECT_EQ(c.protocol, Protocol::kHttpProtobuf);
  EXPECT_EQ(c.timeout, std::chrono::milliseconds(10000));
  EXPECT_FALSE(c.gzip);
  EXPECT_TRUE(c.headers.empty());
  EXPECT_TRUE(c.certificate.empty());
}

TEST(OtlpConfigTest, HeadersCompressionTimeoutWithSignalPrecedence) {
  auto config = From({
      {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
      {"OTEL_EXPORTER_OTLP_HEADERS", "x-ignored=1"},
      {"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
       " Authorization = Bearer%20abc%3D ,x-tenant=a%2Cb,, empty= "},
      {"OTEL_EXPORTER_OTLP_COMPRESSION", "none"},
      {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"},
      {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
  });
  ASSERT_TRUE(config.ok()) << config.status().message();
  const OtlpConfig& c = **config;
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"authorization", "Bearer abc="}, {"x-tenant", "a,b"}, {"empty", ""}};
  EXPECT_EQ(c.headers, headers);
  EXPECT_TRUE(c.gzip);
  EXPECT_EQ(c.timeout, std::chrono::milliseconds(2500));
}

TEST(OtlpConfigTest, CertificatesAreCheckedOnlyForTls) {
  zerotrace::testing::TempDir dir;
  TestPki pki;
  ASSERT_TRUE(MakeTestPki(dir.path(), "ca", &pki));
  auto tls = From({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318"},
                   {"OTEL_EXPORTER_OTLP_CERTIFICATE", pki.ca_cert},
                   {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", pki.client_key},
                   {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki.client_cert}});
  ASSERT_TRUE(tls.ok()) << tls.status().message();
  EXPECT_EQ(tls.value()->certificate, pki.ca_cert);
  EXPECT_EQ(tls.value()->client_key, pki.client_key);
  EXPECT_EQ(tls.value()->client_certificate, pki.client_cert);
  auto plain = From({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                     {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"}});
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_TRUE(plain.value()->certificate.empty());
}

// Files that exist but cannot work: start-up errors, not every export failing later.
TEST(OtlpConfigTest, UnusablePemFilesAreStartUpErrors) {
  zerotrace::testing::TempDir dir;
  TestPki pki, other;
  ASSERT_TRUE(MakeTestPki(dir.path(), "ca", &pki));
  ASSERT_TRUE(MakeTestPki(dir.path(), "other", &other));
  const std::string junk = dir.path() + "/junk.pem";
  std::ofstream(junk) << "not PEM\n";
  const std::string tls = "https://c:4317";
  struct Case {
    const char* what;
    Env env;
    std::string message;  // expected, verbatim
  } cases[] = {
      {"CA file without a certificate",
       {{"OTEL_EXPORTER_OTLP_CERTIFICATE", junk}},
       "OTEL_EXPORTER_OTLP_CERTIFICATE: '" + junk + "' holds no PEM certificate"},
      {"a key as the CA file",
       {{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", pki.client_key}},
       "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: '" + pki.client_key + "' holds no PEM certificate"},
      {"client certificate file without a certificate",
       {{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", junk},
        {"OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.client_key}},
       "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: '" + junk + "' holds no PEM certificate"},
      {"client key file without a key",
       {{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki.client_cert},
        {"OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.client_cert}},
       "OTEL_EXPORTER_OTLP_CLIENT_KEY: '" + pki.client_cert +
           "' holds no unencrypted PEM private key"},
      {"client key of another certificate",
       {{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", pki.client_cert},
        {"OTEL_EXPORTER_OTLP_CLIENT_KEY", other.client_key}},
       "OTEL_EXPORTER_OTLP_CLIENT_KEY: '" + other.client_key +
           "' is not the private key of the certificate in "
           "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE ('" +
           pki.client_cert + "')"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    for (const char* protocol : {"grpc", "http/protobuf"}) {
      Env env = c.env;
      env["OTEL_EXPORTER_OTLP_ENDPOINT"] = tls;
      env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol;
      auto config = From(env);
      ASSERT_FALSE(config.ok()) << protocol;
      EXPECT_EQ(config.status().message(), c.message) << protocol;
    }
  }
}

struct ErrorCase {
  const char* what;
  Env env;
  std::string flag_endpoint;
  std::string flag_protocol;
  std::string message;  // expected, verbatim
};

TEST(OtlpConfigTest, BadValuesAreClearStartUpErrors) {
  const ErrorCase cases[] = {
      {"unknown protocol",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol 'http/xml' (expected grpc, http/protobuf or "
       "http/json)"},
      {"unknown protocol flag",
       {},
       "http://c",
       "thrift",
       "--otlp-protocol: unknown protocol "
       "'thrift' (expected grpc, http/protobuf or http/json)"},
      {"HTTP needs a scheme",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' is not a valid endpoint: it must start with "
       "http:// or https://"},
      {"bad scheme",
       {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c/v1/traces"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://c/v1/traces' is not a valid endpoint: the "
       "scheme must be http:// or https://"},
      {"no host",
       {},
       "http:///v1/traces",
       "",
       "--otlp-endpoint: 'http:///v1/traces' is not a valid endpoint: the host is empty"},
      {"bad port",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:99999"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:99999' is not a valid endpoint: the port must be a "
       "number from 1 to 65535"},
      {"empty port",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:/"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:/' is not a valid endpoint: the port must be a "
       "number from 1 to 65535"},
      {"space in URL",
       {},
       "http://c c",
       "",
       "--otlp-endpoint: 'http://c c' is not a valid endpoint: it contains a space or a non-ASCII "
       "character"},
      {"credentials in URL",
       {},
       "https://user:pw@c",
       "",
       "--otlp-endpoint: 'https://REDACTED@c' is not a valid endpoint: credentials in the URL "
       "are not supported; use OTEL_EXPORTER_OTLP_HEADERS"},
      {"grpc target with a path",
       {},
       "c:4317/x",
       "grpc",
       "--otlp-endpoint: 'c:4317/x' is not a valid endpoint: a path needs a scheme (http:// or "
       "https://)"},
      {"unknown compression",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"},
        {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: unknown compression 'zstd' (expected gzip or none)"},
      {"non-numeric timeout",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}, {"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_TIMEOUT: '10s' is not a positive whole number of milliseconds"},
      {"zero timeout",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}, {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '0' is not a positive whole number of milliseconds"},
      {"header without =",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}, {"OTEL_EXPORTER_OTLP_HEADERS", "a=1,token"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value (expected k1=v1,k2=v2; text not "
       "shown)"},
      {"header name with a space (a ':' meant as '=')",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"},
        {"OTEL_EXPORTER_OTLP_HEADERS", "Authorization: Bearer s3cret=x"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_HEADERS: entry 1: the header name has a character not allowed in "
       "header names at position 14 (expected k1=v1,k2=v2; text not shown)"},
      {"header value with a newline",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"},
        {"OTEL_EXPORTER_OTLP_HEADERS", "a=1%0d%0aX-Evil: 1"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_HEADERS: the value of header 'a' has a control character"},
      {"missing CA file",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c"},
        {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read '/nonexistent/ca.pem': No such file or "
       "directory"},
      {"client key without certificate",
       {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c"}, {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem"}},
       "",
       "",
       "OTEL_EXPORTER_OTLP_CLIENT_KEY is set but OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is not: "
       "mTLS needs both"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto config = From(c.env, c.flag_endpoint, c.flag_protocol);
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().message(), c.message);
  }
}

TEST(OtlpConfigTest, EndpointForLogsHidesCredentialsAndQuery) {
  const std::pair<const char*, const char*> cases[] = {
      {"http://c:4318/v1/traces", "http://c:4318/v1/traces"},
      {"https://bob:hunter2@c:4318/v1/traces", "https://REDACTED@c:4318/v1/traces"},
      {"https://c/v1/traces?token=s3cret&x=1", "https://c/v1/traces?REDACTED"},
      {"http://u:p@c?k=v#frag", "http://REDACTED@c?REDACTED"},
      {"c:4317", "c:4317"},
      {"user:pw@c:4317", "REDACTED@c:4317"},
      {"ftp://a:b@c/x?y", "ftp://REDACTED@c/x?REDACTED"},  // does not parse; still hidden
      {"", ""},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(EndpointForLogs(in), want) << in;
}

TEST(OtlpConfigTest, RejectedEndpointsNeverEchoTheirSecrets) {
  for (const char* bad : {"http://bob:hunter2@c:4318", "ftp://c/?token=hunter2",
                          "http://c:99999/?token=hunter2", "http:// c/?token=hunter2"}) {
    auto config = From({}, bad, "");
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_EQ(config.status().message().find("hunter2"), std::string::npos)
        << config.status().message();
  }
}

TEST(OtlpConfigTest, SelectionDecidesWhetherTheEnvironmentTurnsOtlpOn) {
  const std::map<std::string, std::string> env = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}};
  auto get = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  using S = OtlpEnvSelection;
  auto config = OtlpConfigFrom(get, "", "", S::kIfEndpointSet);
  ASSERT_TRUE(config.ok());
  ASSERT_TRUE(config->has_value());
  EXPECT_EQ((*config)->endpoint, "http://c/v1/traces");
  config = OtlpConfigFrom(get, "", "", S::kOff);
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->has_value()) << "OTEL_TRACES_EXPORTER=console or none: no OTLP";
  config = OtlpConfigFrom(get, "http://flag:4318", "", S::kOff);
  ASSERT_TRUE(config.ok());
  ASSERT_TRUE(config->has_value()) << "the flag always asks for OTLP";
  EXPECT_EQ((*config)->endpoint, "http://flag:4318/v1/traces");
  config = OtlpConfigFrom([](const char*) -> const char* { return nullptr; }, "", "", S::kOn);
  ASSERT_TRUE(config.ok());
  ASSERT_TRUE(config->has_value()) << "OTEL_TRACES_EXPORTER=otlp with no endpoint";
  EXPECT_EQ((*config)->endpoint, "http://localhost:4318/v1/traces");
}

TEST(OtlpConfigTest, GrpcTargetDefaultsThePortFromTheScheme) {
  const std::pair<const char*, const char*> cases[] = {
      {"http://c:4317", "c:4317"},
      {"https://c", "c:443"},
      {"http://c", "c:80"},
      {"c:4317", "c:4317"},
      {"c", "c:443"},
      {"[::1]:4317", "[::1]:4317"},
      {"https://[fe80::1]/", "[fe80::1]:443"},
  };
  for (const auto& [url, target] : cases) {
    auto parsed = ParseEndpointUrl(url, /*allow_no_scheme=*/true);
    ASSERT_TRUE(parsed.ok()) << url << ": " << parsed.status().message();
    EXPECT_EQ(GrpcTarget(*parsed), target) << url;
  }
}

}  // namespace
}  // namespace zerotrace::exporter
