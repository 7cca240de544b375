// Flags and the OTEL_* variables: bad values are clear errors (exit 2) or clear warnings.
#include "agent/options.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

namespace zerotrace::agent {
namespace {

using KV = std::vector<std::pair<std::string, std::string>>;

StatusOr<Options> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "zerotrace");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  bool exit_now = false;
  return ParseOptions(static_cast<int>(args.size()), argv.data(), &exit_now);
}

// A process id that exists no more: a child that has been reaped.
pid_t GonePid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child;
}

TEST(ParseOptions, BadValuesAreErrorsThatSayWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string want;  // in the message
  } cases[] = {
      {{"--duration", "abc"}, "'abc' is not a number of seconds"},
      {{"--duration", "-1"}, "'-1' is out of range: from 0 to 31622400 seconds"},
      {{"--duration", "1e400"}, "'1e400' is not a number of seconds"},
      {{"--duration", "nan"}, "'nan' is not a number of seconds"},
      {{"--stats-interval", "x"}, "'x' is not a number of seconds"},
      {{"--ringbuf-bytes", "1000"}, "'1000' must be a power of two from"},
      {{"--ringbuf-bytes", "3000000"}, "must be a power of two"},
      {{"--ringbuf-bytes", "4294967296"}, "must be a power of two"},
      {{"--ringbuf-bytes", "-4096"}, "must be a power of two"},
      {{"--otlp-endpoint", ""}, "--otlp-endpoint: empty"},
      {{"--otlp-endpoint", "  "}, "--otlp-endpoint: empty"},
      {{"--pid", std::to_string(GonePid())}, ": no such process"},
      {{"--pid", "0"}, "--pid 0: no such process"},
      {{"--netns", "zt-no-such-netns"}, "cannot open /run/netns/zt-no-such-netns"},
      {{"--netns", "/proc/self/ns/mnt"}, "/proc/self/ns/mnt is not a network namespace"},
      {{"--netns", "/etc/hostname"}, "/etc/hostname is not a network namespace"},
  };
  for (const auto& c : cases) {
    const auto o = Parse(c.args);
    ASSERT_FALSE(o.ok()) << c.args[0] << " " << c.args[1];
    const std::string& m = o.status().message();
    EXPECT_NE(m.find(c.want), std::string::npos) << m;
    EXPECT_LT(m.size(), 200u) << "no 300-digit bounds: " << m;
  }
}

TEST(ParseOptions, GoodValuesParse) {
  auto o = Parse({"--duration", "1.5", "--ringbuf-bytes", "4096", "--pid", std::to_string(getpid()),
                  "--stats-interval", "0"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->duration_s, 1.5);
  EXPECT_EQ(o->ringbuf_bytes, 4096u);
  EXPECT_EQ(o->pids, std::vector<uint32_t>{static_cast<uint32_t>(getpid())});
  EXPECT_EQ(o->stats_interval_s, 0);
  EXPECT_TRUE(Parse({}).ok());
}

// --netns takes a path to any network namespace file (names resolve under /run/netns).
TEST(ParseOptions, NetnsPathResolvesToTheNamespaceInode) {
  struct stat st {};
  ASSERT_EQ(stat("/proc/self/ns/net", &st), 0);
  auto o = Parse({"--netns", "/proc/self/ns/net"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->netns_inode, st.st_ino);
  EXPECT_EQ(o->netns, "/proc/self/ns/net");
  EXPECT_TRUE(o->selectors.include.netns.empty()) << "the agent adds it, not the parser";
  EXPECT_EQ(Parse({})->netns_inode, 0u);
  EXPECT_EQ(Parse({"--netns", ""})->netns_inode, 0u);  // --print-config's "no --netns"
}

TEST(ResourceAttributes, ParsesPairsAndPercentDecodes) {
  auto a = ParseResourceAttributes("k8s.node.name=node-1, team = pay%2Cments,,x=");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(*a, (KV{{"k8s.node.name", "node-1"}, {"team", "pay,ments"}, {"x", ""}}));
  a = ParseResourceAttributes("");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->empty());
}

TEST(ResourceAttributes, AnyMalformedEntryRejectsTheWholeVariable) {
  const std::pair<const char*, const char*> cases[] = {
      {"a=1,bad", "entry 2 is not key=value"},
      {"a=1,=x", "entry 2 has an empty key"},
      {"a=%zz", "entry 1 has a '%' not followed by two hex digits"},
      {"a=1,b=50%", "entry 2 has a '%' not followed by two hex digits"},
  };
  for (const auto& [in, want] : cases) {
    const auto a = ParseResourceAttributes(in);
    ASSERT_FALSE(a.ok()) << in;
    EXPECT_EQ(a.status().message(), want) << in;
  }
}

// OTEL_* variables from a table.
OtelEnv Read(const std::map<std::string, std::string>& vars) {
  return ReadOtelEnv([&vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string Warnings(const OtelEnv& env) {
  std::string all;
  for (const auto& w : env.warnings) all += w + "\n";
  return all;
}

TEST(OtelEnv, UnsetMeansDefaultsAndNoWarning) {
  const OtelEnv env = Read({});
  EXPECT_FALSE(env.traces_exporter_set);
  EXPECT_FALSE(env.sdk_disabled);
  EXPECT_TRUE(env.warnings.empty()) << Warnings(env);
}

TEST(OtelEnv, TracesExporterNamesWhatRunsAndWarnsAboutWhatZerotraceLacks) {
  OtelEnv env = Read({{"OTEL_TRACES_EXPORTER", "zipkin"}});
  EXPECT_FALSE(env.traces_exporter_set) << "nothing known named: the default";
  EXPECT_NE(Warnings(env).find("'zipkin' is not an exporter zerotrace has"), std::string::npos)
      << Warnings(env);
  env = Read({{"OTEL_TRACES_EXPORTER", " OTLP , zipkin,console"}});
  EXPECT_TRUE(env.traces_exporter_set);
  EXPECT_TRUE(env.otlp);
  EXPECT_TRUE(env.console);
  EXPECT_EQ(env.warnings.size(), 1u) << Warnings(env);
  env = Read({{"OTEL_TRACES_EXPORTER", "none"}});
  EXPECT_TRUE(env.traces_exporter_set);
  EXPECT_FALSE(env.otlp || env.console);
  env = Read({{"OTEL_TRACES_EXPORTER", "console"}, {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}});
  EXPECT_NE(Warnings(env).find("does not name otlp: no OTLP export"), std::string::npos)
      << Warnings(env);
}

TEST(OtelEnv, SdkDisabledIsABooleanPerTheSpecification) {
  OtelEnv env = Read({{"OTEL_SDK_DISABLED", "TRUE"}});
  EXPECT_TRUE(env.sdk_disabled);
  EXPECT_NE(Warnings(env).find("OTEL_SDK_DISABLED=true: the OTEL_* variables turn no span "
                               "exporter on"),
            std::string::npos)
      << Warnings(env);
  env = Read({{"OTEL_SDK_DISABLED", "yes"}});
  EXPECT_FALSE(env.sdk_disabled);
  EXPECT_NE(Warnings(env).find("'yes' is neither true nor false; taken as false"),
            std::string::npos)
      << Warnings(env);
  env = Read({{"OTEL_SDK_DISABLED", "false"}});
  EXPECT_FALSE(env.sdk_disabled);
  EXPECT_TRUE(env.warnings.empty());
}

TEST(OtelEnv, MalformedResourceAttributesAreWarnedAboutAndIgnored) {
  OtelEnv env = Read({{"OTEL_RESOURCE_ATTRIBUTES", "team=pay,oops"}});
  EXPECT_TRUE(env.resource_attributes.empty());
  EXPECT_NE(Warnings(env).find("OTEL_RESOURCE_ATTRIBUTES: entry 2 is not key=value; the whole "
                               "variable is ignored"),
            std::string::npos)
      << Warnings(env);
  env = Read({{"OTEL_RESOURCE_ATTRIBUTES", "team=pay"}});
  EXPECT_EQ(env.resource_attributes, (KV{{"team", "pay"}}));
  EXPECT_TRUE(env.warnings.empty());
}

TEST(ChooseExporters, FlagsWinAndTheVariablesSelectTheRest) {
  using S = exporter::OtlpEnvSelection;
  Options plain, console_flag;
  console_flag.console = true;
  struct Case {
    const char* what;
    std::map<std::string, std::string> vars;
    const Options* options;
    S otlp;
    bool console, console_if_alone;
  } cases[] = {
      {"defaults", {}, &plain, S::kIfEndpointSet, false, true},
      {"otlp", {{"OTEL_TRACES_EXPORTER", "otlp"}}, &plain, S::kOn, false, false},
      {"console", {{"OTEL_TRACES_EXPORTER", "console"}}, &plain, S::kOff, true, false},
      {"none", {{"OTEL_TRACES_EXPORTER", "none"}}, &plain, S::kOff, false, false},
      {"none and --console",
       {{"OTEL_TRACES_EXPORTER", "none"}},
       &console_flag,
       S::kOff,
       true,
       false},
      {"unknown only",
       {{"OTEL_TRACES_EXPORTER", "zipkin"}},
       &plain,
       S::kIfEndpointSet,
       false,
       true},
      {"sdk disabled", {{"OTEL_SDK_DISABLED", "true"}}, &plain, S::kOff, false, false},
      {"sdk disabled beats otlp",
       {{"OTEL_SDK_DISABLED", "true"}, {"OTEL_TRACES_EXPORTER", "otlp,console"}},
       &plain,
       S::kOff,
       false,
       false},
      {"sdk disabled and --console",
       {{"OTEL_SDK_DISABLED", "true"}},
       &console_flag,
       S::kOff,
       true,
       false},
  };
  for (const auto& c : cases) {
    const ExporterChoice choice = ChooseExporters(*c.options, Read(c.vars));
    EXPECT_EQ(choice.otlp, c.otlp) << c.what;
    EXPECT_EQ(choice.console, c.console) << c.what;
    EXPECT_EQ(choice.console_if_alone, c.console_if_alone) << c.what;
  }
}

}  // namespace
}  // namespace zerotrace::agent
