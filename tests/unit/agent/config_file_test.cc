// The config file: every key a flag, one-line errors naming the key, flags > file > environment,
// and --print-config as a file that reads back to the same configuration.
#include "agent/config_file.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "subprocess.h"

namespace zerotrace::agent {
namespace {

StatusOr<Options> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "zerotrace");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  bool exit_now = false;
  return ParseOptions(static_cast<int>(args.size()), argv.data(), &exit_now);
}

class ConfigFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& yaml) {
    const std::string path = dir_.path() + "/config" + std::to_string(n_++) + ".yaml";
    std::ofstream(path) << yaml;
    return path;
  }
  testing::TempDir dir_;
  int n_ = 0;
};

TEST_F(ConfigFileTest, BadFilesAreOneLineErrorsNamingTheFileAndTheKey) {
  const struct {
    std::string yaml;
    std::string want;  // after "PATH: "
  } cases[] = {
      {"capturebytes: 1\n", "capturebytes: unknown key"},
      {"capture-bytes: 100000\n", "capture-bytes: Value 100000 not in range"},
      {"capture-bytes: [1, 2]\n", "capture-bytes:"},
      {"capture-bytes: 1\ncapture-bytes: 2\n", "capture-bytes: given twice (line 2)"},
      {"duration: abc\n", "duration: 'abc' is not a number of seconds"},
      {"ringbuf-bytes: 1000\n", "ringbuf-bytes: '1000' must be a power of two"},
      {"verbose: maybe\n", "Could not convert: verbose = maybe"},
      {"console-format: fancy\n", "console-format"},
      {"jsonl:\n", "jsonl: no value"},
      {"console: {a: 1}\n", "console: a map where a value or a list belongs"},
      {"include: {foo: [1]}\n", "include.foo: unknown selector"},
      {"include: [1]\n", "include: must be a map"},
      {"include: {port: [0]}\n", "include.port: Value 0 not in range 1 to 65535"},
      {"exclude: {port: [http]}\n", "exclude.port"},
      {"exclude: {cgroup: [system.slice]}\n", "exclude.cgroup: 'system.slice' must start with '/'"},
      {"exclude: {netns: [/nonexistent]}\n", "exclude.netns /nonexistent: not a network namespace"},
      {"include: {pid: [0]}\n", "pid 0: no such process"},
      {"env: {OTEL_FOO: 1}\n", "env.OTEL_FOO: not a variable zerotrace reads"},
      {"env: {OTEL_EXPORTER_OTLP_HEADERS: [a]}\n",
       "env.OTEL_EXPORTER_OTLP_HEADERS: must be a plain"},
      {"config: other.yaml\n", "config: not allowed in a configuration file"},
      {"otlp-endpoint: \" \"\n", "otlp-endpoint: empty"},
      {"[1, 2\n", "not valid YAML: line 2"},
      {"- a\n- b\n", "the file must be a map"},
  };
  for (const auto& c : cases) {
    const std::string path = Write(c.yaml);
    auto o = Parse({"--config", path});
    ASSERT_FALSE(o.ok()) << c.yaml;
    const std::string& m = o.status().message();
    EXPECT_EQ(m.rfind(path + ": " + c.want, 0), 0u) << c.yaml << " -> " << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_LT(m.size(), 200u) << m;
  }
  const auto missing = Parse({"--config", dir_.path() + "/none.yaml"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("File does not exist"), std::string::npos);
}

TEST_F(ConfigFileTest, EveryKindOfValueIsRead) {
  const std::string path = Write(R"(# comments are fine
capture-bytes: 4096
duration: 2.5
verbose: yes
no-tls: true
console-format: spans
metrics-addr: 127.0.0.1:0
service-name-map: ["exe:python3=py", "port:8080=web"]
netns: /proc/self/ns/net
include:
  exe: /usr/sbin/*
  port: [80, 443]
  netns: [/proc/self/ns/net]
exclude:
  comm: [prometheus, otelcol]
  cgroup: [/system.slice/prometheus.service]
env:
  OTEL_EXPORTER_OTLP_TIMEOUT: 2500
)");
  auto o = Parse({"--config", path});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->capture_bytes, 4096u);
  EXPECT_EQ(o->duration_s, 2.5);
  EXPECT_TRUE(o->verbose);
  EXPECT_FALSE(o->tls);
  EXPECT_EQ(o->console_format, "spans");
  EXPECT_EQ(o->metrics_addr, "127.0.0.1:0");
  EXPECT_EQ(o->service_name_map.rules().size(), 2u);
  EXPECT_EQ(o->selectors.include.exe, std::vector<std::string>{"/usr/sbin/*"});
  EXPECT_EQ(o->selectors.include.port, (std::vector<uint16_t>{80, 443}));
  ASSERT_EQ(o->selectors.include.netns.size(), 1u);
  EXPECT_GT(o->selectors.include.netns[0], 0u);
  EXPECT_EQ(o->netns_inode, o->selectors.include.netns[0]);  // --netns as a key
  EXPECT_EQ(o->selectors.exclude.comm, (std::vector<std::string>{"prometheus", "otelcol"}));
  EXPECT_EQ(o->selectors.exclude.cgroup,
            std::vector<std::string>{"/system.slice/prometheus.service"});
  EXPECT_EQ(o->config_path, path);
  ASSERT_EQ(o->file_env.size(), 1u);
  EXPECT_EQ(o->file_env[0].second, "2500");
  // An empty file sets nothing.
  auto empty = Parse({"--config", Write("# nothing yet\n")});
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_EQ(empty->capture_bytes, Options().capture_bytes);
}

TEST_F(ConfigFileTest, FlagsWinOverTheFileAndTheFileOverTheEnvironment) {
  const std::string path = Write(
      "capture-bytes: 4096\ninclude: {port: [80]}\n"
      "env: {OTEL_EXPORTER_OTLP_TIMEOUT: '2500', OTEL_EXPORTER_OTLP_COMPRESSION: ''}\n");
  auto o = Parse({"--capture-bytes", "100", "--config", path, "--include-port", "8080"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->capture_bytes, 100u);
  EXPECT_EQ(o->selectors.include.port, std::vector<uint16_t>{8080});  // replaced, not added to
  setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "9000", 1);
  setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
  setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
  const exporter::GetEnvFn env = EnvWithFile(*o);
  EXPECT_STREQ(env("OTEL_EXPORTER_OTLP_TIMEOUT"), "2500");
  EXPECT_STREQ(env("OTEL_EXPORTER_OTLP_COMPRESSION"), "");   // the file unsets it
  EXPECT_STREQ(env("OTEL_EXPORTER_OTLP_PROTOCOL"), "grpc");  // not in the file
  auto cfg = exporter::OtlpConfigFrom(env, "http://127.0.0.1:24001", "");
  ASSERT_TRUE(cfg.ok() && cfg->has_value());
  EXPECT_EQ((*cfg)->timeout, std::chrono::milliseconds(2500));
  EXPECT_FALSE((*cfg)->gzip);
  EXPECT_EQ((*cfg)->protocol, exporter::OtlpConfig::Protocol::kGrpc);
  unsetenv("OTEL_EXPORTER_OTLP_TIMEOUT");
  unsetenv("OTEL_EXPORTER_OTLP_COMPRESSION");
  unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
}

TEST_F(ConfigFileTest, PrintedConfigReadsBackToTheSameAndRedactsSecrets) {
  const std::string path = Write(R"(capture-bytes: 4096
duration: 30
stats-interval: 5
verbose: true
jsonl: /tmp/spans.jsonl
otlp-endpoint: http://127.0.0.1:24002
otlp-protocol: grpc
metrics-addr: 127.0.0.1:24003
console: true
console-format: spans
no-route-inference: true
no-tls: true
tls-per-function-probes: true
dump-events: true
ringbuf-bytes: 65536
service-name-map: ["exe:python3=py"]
include: {exe: ["/usr/*"], comm: [nginx], port: [80], cgroup: [/system.slice], netns: [4026531840]}
exclude: {exe: ["*/prom*"], comm: [otelcol], pid: [1], port: [9090], cgroup: [/user.slice], netns: [1]}
env:
  OTEL_EXPORTER_OTLP_HEADERS: "api-key=s3cret,x-team=a"
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://user:pw@collector:4318/v1/traces?token=t"
  OTEL_RESOURCE_ATTRIBUTES: "k8s.node.name=n1"
)");
  auto o = Parse({"--config", path});
  ASSERT_TRUE(o.ok()) << o.status().message();
  const std::string printed = EffectiveConfigYaml(*o, EnvWithFile(*o));
  EXPECT_EQ(printed.find("s3cret"), std::string::npos) << printed;
  EXPECT_EQ(printed.find("pw"), std::string::npos) << printed;
  EXPECT_EQ(printed.find("token=t"), std::string::npos) << printed;
  EXPECT_NE(printed.find("api-key=REDACTED"), std::string::npos) << printed;
  EXPECT_NE(printed.find("k8s.node.name=n1  # from the file"), std::string::npos) << printed;
  auto again = Parse({"--config", Write(printed)});
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << printed;
  EXPECT_EQ(EffectiveConfigYaml(*again, EnvWithFile(*again)), printed);
  EXPECT_EQ(again->capture_bytes, 4096u);
  EXPECT_FALSE(again->tls);
  EXPECT_FALSE(again->infer_routes);
  EXPECT_EQ(again->selectors.exclude.pid, std::vector<uint32_t>{1});
}

// Every flag of --help is a key that --print-config shows (a new flag cannot be forgotten).
TEST_F(ConfigFileTest, EveryFlagIsAKeyOfThePrintedConfig) {
  const std::string help_path = dir_.path() + "/help.txt";
  fflush(stdout);
  const int saved = dup(1);
  FILE* f = fopen(help_path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  dup2(fileno(f), 1);
  (void)Parse({"--help"});
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  fclose(f);
  std::ifstream in(help_path);
  const std::string help((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto o = Parse({});
  ASSERT_TRUE(o.ok());
  const std::string printed = "\n" + EffectiveConfigYaml(*o, EnvWithFile(*o));
  const std::set<std::string> not_keys = {"help", "version", "config", "print-config", "pid"};
  std::regex flag("--([a-z][a-z-]+)");
  int flags = 0;
  for (std::sregex_iterator it(help.begin(), help.end(), flag), end; it != end; ++it) {
    std::string name = (*it)[1];
    if (not_keys.count(name)) continue;
    flags++;
    std::string key = name + ":";
    for (const char* which : {"include-", "exclude-"}) {
      if (name.rfind(which, 0) == 0) key = "  " + name.substr(8) + ":";
    }
    EXPECT_NE(printed.find("\n" + key), std::string::npos) << name << "\n" << printed;
  }
  EXPECT_GT(flags, 25);
}

}  // namespace
}  // namespace zerotrace::agent
