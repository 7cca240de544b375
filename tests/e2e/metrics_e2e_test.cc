// --metrics-addr end to end: the real agent traces real HTTP traffic while curl scrapes its
// /metrics, which must parse line by line as Prometheus text and show the counters moving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "e2e_fixture.h"
#include "subprocess.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::Subprocess;

bool ValidName(const std::string& s, bool label) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); i++) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool ok = alpha || (!label && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidValue(const std::string& v) {
  if (v == "NaN" || v == "+Inf" || v == "-Inf") return true;
  char* end = nullptr;
  std::strtod(v.c_str(), &end);
  return !v.empty() && end == v.c_str() + v.size();
}

// Parses `text` as Prometheus text format 0.0.4, line by line. Samples are keyed by
// name{labels} as written; every line that breaks the format is reported.
struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family -> counter | gauge | ...
  std::vector<std::string> errors;

  explicit Exposition(const std::string& text) {
    if (text.empty() || text.back() != '\n') errors.push_back("does not end with a newline");
    std::istringstream in(text);
    std::map<std::string, bool> helped;
    std::string family;  // announced by the last # TYPE
    size_t n = 0;
    for (std::string line; std::getline(in, line);) {
      n++;
      const std::string where = "line " + std::to_string(n) + ": " + line;
      if (line.empty()) continue;
      if (line[0] == '#') {
        std::istringstream words(line);
        std::string hash, kind, name, rest;
        words >> hash >> kind >> name;
        if (kind != "HELP" && kind != "TYPE") continue;  // other comments are allowed
        if (!ValidName(name, false)) errors.push_back("bad name: " + where);
        if (kind == "HELP") {
          if (helped[name]) errors.push_back("second HELP: " + where);
          helped[name] = true;
          continue;
        }
        words >> rest;
        if (types.count(name)) errors.push_back("second TYPE: " + where);
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" &&
            rest != "untyped") {
          errors.push_back("bad type: " + where);
        }
        if (rest == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total")) {
          errors.push_back("counter not named *_total: " + where);
        }
        types[name] = rest;
        family = name;
        continue;
      }
      ParseSample(line, where, family);
    }
  }

  void ParseSample(const std::string& line, const std::string& where, const std::string& family) {
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') i++;
    const std::string name = line.substr(0, i);
    if (!ValidName(name, false)) errors.push_back("bad metric name: " + where);
    // A histogram's samples are its family name with _bucket, _sum or _count.
    const bool histogram_part =
        types[family] == "histogram" &&
        (name == family + "_bucket" || name == family + "_sum" || name == family + "_count");
    if (name != family && !histogram_part) {
      errors.push_back("sample outside its family's TYPE block: " + where);
    }
    if (i < line.size() && line[i] == '{') {
      i++;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          errors.push_back("bad label: " + where);
          return;
        }
        if (!ValidName(line.substr(i, eq - i), true)) errors.push_back("bad label name: " + where);
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; j++) {
          if (line[j] == '\\') {
            if (j + 1 >= line.size() || std::string("\\\"n").find(line[j + 1]) == std::string::npos)
              errors.push_back("bad escape: " + where);
            j++;
          }
        }
        if (j >= line.size()) {
          errors.push_back("unterminated label value: " + where);
          return;
        }
        i = j + 1;
        if (i < line.size() && line[i] == ',') i++;
      }
      if (i >= line.size()) {
        errors.push_back("unterminated labels: " + where);
        return;
      }
      i++;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      errors.push_back("no value: " + where);
      return;
    }
    std::istringstream rest(line.substr(i + 1));
    std::string value, timestamp, extra;
    rest >> value >> timestamp >> extra;
    if (!ValidValue(value) || !extra.empty()) errors.push_back("bad value: " + where);
    if (samples.count(line.substr(0, i))) errors.push_back("duplicate sample: " + where);
    samples[line.substr(0, i)] = std::strtod(value.c_str(), nullptr);
  }

  double Get(const std::string& key) const {
    auto it = samples.find(key);
    return it == samples.end() ? -1 : it->second;
  }
};

class MetricsEndpointTest : public AgentTest {
 protected:
  std::vector<std::string> AgentFlags() const override { return {"--metrics-addr", "127.0.0.1:0"}; }

  // The URL the agent printed at start-up.
  std::string MetricsUrl() const {
    for (const auto& line : AgentOutput()) {
      const size_t at = line.find("zerotrace: metrics at ");
      if (at != std::string::npos) return line.substr(at + 22);
    }
    return "";
  }

  struct Scrape {
    pid_t pid = -1;  // the curl that scraped
    int exit_code = -1;
    std::string status_and_type;  // "200 text/plain; version=0.0.4; charset=utf-8"
    std::string body;
  };
  Scrape ScrapeOnce(const std::string& url) {
    const std::string body_path = dir() + "/metrics-" + std::to_string(scrapes_++) + ".txt";
    auto run = Run({"curl", "-sS", "--max-time", "10", "-o", body_path, "-w",
                    "%{http_code} %{content_type}\\n", url});
    Scrape s;
    s.pid = run.pid;
    s.exit_code = run.exit_code;
    if (!run.lines.empty()) s.status_and_type = run.lines[0];
    std::ifstream in(body_path);
    std::stringstream ss;
    ss << in.rdbuf();
    s.body = ss.str();
    return s;
  }

  int scrapes_ = 0;
};

TEST_F(MetricsEndpointTest, CountersMoveWithTrafficAndParseAsPrometheusText) {
  const std::string url = MetricsUrl();
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << "no \"metrics at\" line";

  const Scrape before = ScrapeOnce(url);
  ASSERT_EQ(before.exit_code, 0);
  EXPECT_EQ(before.status_and_type, "200 text/plain; version=0.0.4; charset=utf-8");
  const Exposition first(before.body);
  EXPECT_TRUE(first.errors.empty()) << ::testing::PrintToString(first.errors);

  auto& srv = StartPythonServer();
  const auto curl = Curl({Url(srv.port, "/hello"), Url(srv.port, "/items/7")});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_TRUE(WaitForSpans({{srv.pid(), 2}, {curl.pid, 2}}));

  const Scrape after = ScrapeOnce(url);
  ASSERT_EQ(after.exit_code, 0);
  const Exposition second(after.body);
  EXPECT_TRUE(second.errors.empty()) << ::testing::PrintToString(second.errors);

  // Every counter of the stats line is there, with HELP and TYPE.
  for (const char* name : {"zerotrace_kernel_data_events_total",
                           "zerotrace_kernel_conns_opened_total",
                           "zerotrace_kernel_conns_closed_total",
                           "zerotrace_kernel_ringbuf_reserve_failed_total",
                           "zerotrace_kernel_capture_truncated_total",
                           "zerotrace_kernel_read_user_failed_total",
                           "zerotrace_kernel_iov_overflow_total",
                           "zerotrace_decode_errors_total",
                           "zerotrace_http_conns_total",
                           "zerotrace_http_exchanges_total",
                           "zerotrace_http_parse_errors_total",
                           "zerotrace_http_resyncs_total",
                           "zerotrace_spans_total",
                           "zerotrace_link_traceparent_total",
                           "zerotrace_link_peer_total",
                           "zerotrace_link_thread_total",
                           "zerotrace_link_forwarded_total",
                           "zerotrace_link_correlation_total",
                           "zerotrace_link_ambiguous_total",
                           "zerotrace_link_client_roots_total",
                           "zerotrace_link_server_roots_total",
                           "zerotrace_link_cycles_refused_total",
                           "zerotrace_link_abandoned_total",
                           "zerotrace_spans_exported_total",
                           "zerotrace_spans_dropped_full_total",
                           "zerotrace_spans_dropped_stopping_total",
                           "zerotrace_spans_export_failed_total",
                           "zerotrace_jsonl_write_failed_total"}) {
    EXPECT_EQ(second.types.count(name) ? second.types.at(name) : "", "counter") << name;
    EXPECT_GE(second.Get(name), 0) << name;
  }
  for (const char* name : {"zerotrace_tracked_connections", "zerotrace_export_queue_depth",
                           "zerotrace_linker_pending_requests", "process_resident_memory_bytes"}) {
    EXPECT_EQ(second.types.count(name) ? second.types.at(name) : "", "gauge") << name;
  }

  // The two exchanges moved the counters (other processes on this node may add more).
  for (const char* name : {"zerotrace_spans_total", "zerotrace_http_exchanges_total"}) {
    EXPECT_GE(second.Get(name), first.Get(name) + 4) << name;  // client + server, twice
  }
  EXPECT_GE(second.Get("zerotrace_spans_total"), 4);
  EXPECT_GT(second.Get("zerotrace_kernel_data_events_total"),
            first.Get("zerotrace_kernel_data_events_total"));
  EXPECT_GE(second.Get("zerotrace_stage_items_total{stage=\"trace\"}"), 4);
  EXPECT_GE(second.Get("zerotrace_stage_items_total{stage=\"ringbuf\"}"),
            second.Get("zerotrace_stage_items_total{stage=\"conn\"}"));
  // Counters never go back.
  for (const auto& [key, value] : first.samples) {
    const std::string family = key.substr(0, key.find('{'));
    if (first.types.count(family) && first.types.at(family) == "counter") {
      EXPECT_GE(second.Get(key), value) << key;
    }
  }
  const double rss = second.Get("process_resident_memory_bytes");
  EXPECT_GT(rss, 1 << 20);
  EXPECT_LT(rss, 1024.0 * (1 << 20));

  // The agent never traces its own side of a scrape; the scraper's side is an ordinary
  // client and yields one span per scrape, which feeds nothing back: no loop.
  ASSERT_TRUE(AwaitSpans({{after.pid, 1}}));  // stops the agent
  EXPECT_EQ(SpansOf(before.pid).size(), 1u) << Describe(before.pid);
  ASSERT_EQ(SpansOf(after.pid).size(), 1u) << Describe(after.pid);
  EXPECT_EQ(SpansOf(after.pid)[0].name, "GET /metrics");
  EXPECT_EQ(SpansOf(after.pid)[0].kind, kClient);
  for (const auto& line : AgentOutput()) {
    const size_t at = line.find("(pid ");
    if (line.find("tracing every process") == std::string::npos || at == std::string::npos)
      continue;
    const pid_t agent = std::stoi(line.substr(at + 5));
    EXPECT_TRUE(SpansOf(agent).empty()) << Describe(agent);
  }
}

// A bad --metrics-addr, or a port another process listens on, stops the agent at start-up.
TEST(MetricsAddrErrors, BadAddressOrPortInUseExitsNonZero) {
  const int busy = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(busy, 1), 0);
  socklen_t len = sizeof(a);
  getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string busy_addr = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  struct Case {
    std::string addr, want;
  } cases[] = {
      {"9464", "no port"},
      {"127.0.0.1:99999", "above 65535"},
      {"127.0.0.1:x", "not a number"},
      {"no-such-host.invalid:9464", "cannot resolve"},
      {"192.0.2.1:9464", "cannot listen"},  // not an address of this machine
      {busy_addr, "in use"},
  };
  for (const auto& c : cases) {
    const std::string cmd = std::string("exec ") + ZT_AGENT + " --metrics-addr '" + c.addr + "'";
    Subprocess p({"/bin/sh", "-c", cmd + " 2>&1"});
    std::string out;
    while (auto line = p.ReadLine(std::chrono::seconds(20))) out += *line + "\n";
    EXPECT_EQ(p.Wait(std::chrono::seconds(20)), 2) << cmd << "\n" << out;
    EXPECT_NE(out.find(c.want), std::string::npos) << cmd << "\n" << out;
    EXPECT_EQ(out.find("tracing every process"), std::string::npos) << cmd << "\n" << out;
  }
  close(busy);
}

}  // namespace
}  // namespace zerotrace::e2e
