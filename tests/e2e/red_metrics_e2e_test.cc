// RED metrics, the service graph and zerotrace top end to end: a real node server and a real
// curl client, each with its own OTEL_SERVICE_NAME, traced by the real agent; the metrics are
// scraped from /metrics (checked by promtool and by a real Prometheus), received by otlp-sink
// over OTLP/HTTP, and shown by the top view on a pipe.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "e2e_fixture.h"
#include "otlp_sink_process.h"
#include "subprocess.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::Subprocess;
using Clock = std::chrono::steady_clock;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of the sample `prefix ... } V` whose line starts with prefix and contains every
// label in `labels`; -1 if there is none.
double Sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& labels) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) != 0) continue;
    bool all = true;
    for (const auto& l : labels) all = all && line.find(l) != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

// curl fetching `targets` on one connection, named `service` by its environment (set before
// exec, as a deployment sets it). Returns its pid, or -1 when it did not exit 0.
pid_t NamedCurl(const std::string& service, int port, const std::vector<std::string>& targets) {
  std::vector<std::string> argv = {"curl", "-s", "-o", "/dev/null"};
  for (size_t i = 0; i < targets.size(); i++) {
    if (i > 0) argv.insert(argv.end(), {"-o", "/dev/null"});
    argv.push_back("http://127.0.0.1:" + std::to_string(port) + targets[i]);
  }
  Subprocess curl(argv, {"OTEL_SERVICE_NAME=" + service});
  const pid_t pid = curl.pid();
  return curl.Wait(30s) == 0 ? pid : -1;
}

class RedMetricsTest : public AgentTest {
 protected:
  void SetUp() override {
    sink_ = std::make_unique<SinkProcess>(
        dir(), std::vector<std::string>{"--metrics-jsonl", metrics_path()});
    ASSERT_NE(sink_->http_port(), 0) << "otlp-sink did not start";
    AgentTest::SetUp();
  }
  std::vector<std::string> AgentFlags() const override {
    return {"--metrics-addr",     "127.0.0.1:0",
            "--otlp-endpoint",    "http://127.0.0.1:" + std::to_string(sink_->http_port()),
            "--service-name-map", "exe:curl=zt-red-cli"};
  }
  std::vector<std::string> AgentEnv() const override { return {"OTEL_METRIC_EXPORT_INTERVAL=500"}; }
  std::string metrics_path() const { return dir() + "/metrics.jsonl"; }
  std::string MetricsUrl() const {
    for (const auto& line : AgentOutput()) {
      const size_t at = line.find("zerotrace: metrics at ");
      if (at != std::string::npos) return line.substr(at + 22);
    }
    return "";
  }
  std::string Scrape(const std::string& url) {
    const std::string path = dir() + "/scrape.txt";
    Run({"curl", "-sS", "--max-time", "10", "-o", path, url});
    return Slurp(path);
  }

  std::unique_ptr<SinkProcess> sink_;
};

TEST_F(RedMetricsTest, HistogramsAndEdgesReachPrometheusAndOtlpWithExactCounts) {
  const std::string suffix = std::to_string(getpid());
  // The client is named by the name map (which wins over the OTEL_SERVICE_NAME in its
  // environment), the server by OTEL_SERVICE_NAME in its environment.
  const std::string srv_name = "zt-red-srv-" + suffix, cli_name = "zt-red-cli";
  auto& srv = StartNodeServer({"OTEL_SERVICE_NAME=" + srv_name});
  // 6 requests: 3 /hello, 2 /items/5 (route /items/{id}), 1 /missing (404: a client error).
  const pid_t client = NamedCurl(
      cli_name, srv.port, {"/hello", "/hello", "/hello", "/items/5", "/items/5", "/missing"});
  ASSERT_GT(client, 0);
  ASSERT_TRUE(WaitForSpans({{srv.pid(), 6}, {client, 6}}));

  const std::string url = MetricsUrl();
  ASSERT_FALSE(url.empty());
  const std::string srv_label = "service_name=\"" + srv_name + "\"";
  const std::string edge = "client=\"" + cli_name + "\",server=\"" + srv_name + "\"";
  std::string text;
  const auto deadline = Clock::now() + 20s;
  do {  // the edge is made once both spans of each request are released
    text = Scrape(url);
    if (Sample(text, "traces_service_graph_request_total", {edge}) == 6) break;
    std::this_thread::sleep_for(100ms);
  } while (Clock::now() < deadline);
  EXPECT_EQ(Sample(text, "http_server_request_duration_seconds_count",
                   {srv_label, "http_route=\"/hello\"", "http_response_status_code=\"200\"",
                    "http_request_method=\"GET\""}),
            3)
      << text;
  EXPECT_EQ(Sample(text, "http_server_request_duration_seconds_count",
                   {srv_label, "http_route=\"/items/{id}\""}),
            2);
  EXPECT_EQ(Sample(text, "http_server_request_duration_seconds_bucket",
                   {srv_label, "http_route=\"/hello\"", "le=\"+Inf\""}),
            3);
  EXPECT_EQ(text.find("http_route=\"/items/5\""), std::string::npos) << "a raw path";
  EXPECT_EQ(Sample(text, "http_client_request_duration_seconds_count",
                   {"service_name=\"" + cli_name + "\"", "peer_service=\"" + srv_name + "\"",
                    "http_response_status_code=\"404\"", "error_type=\"404\""}),
            1);
  EXPECT_EQ(Sample(text, "traces_service_graph_request_total", {edge}), 6);
  EXPECT_EQ(Sample(text, "traces_service_graph_request_failed_total", {edge}), 1);
  EXPECT_EQ(Sample(text, "traces_service_graph_request_server_seconds_count", {edge}), 6);
  EXPECT_EQ(Sample(text, "traces_service_graph_request_client_seconds_count", {edge}), 6);

  // promtool lints the whole exposition (self-metrics included).
  {
    std::ofstream(dir() + "/exposition.txt") << text;
    const auto lint = Run({"sh", "-c", "promtool check metrics < " + dir() + "/exposition.txt"});
    EXPECT_EQ(lint.exit_code, 0) << ::testing::PrintToString(lint.lines);
  }

  // A real Prometheus scrapes the agent; its query API gives the exact counts.
  {
    const std::string target = url.substr(7, url.find('/', 7) - 7);  // host:port
    const int port = zerotrace::testing::FreePort();
    std::ofstream(dir() + "/prometheus.yml")
        << "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: zerotrace\n"
        << "    static_configs: [{targets: ['" << target << "']}]\n";
    Spawn({"prometheus", "--config.file=" + dir() + "/prometheus.yml",
           "--storage.tsdb.path=" + dir() + "/tsdb",
           "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"});
    const std::string query = "http://127.0.0.1:" + std::to_string(port) + "/api/v1/query";
    auto ask = [&](const std::string& promql) {
      // -w: a newline after the body, which Run() reads by lines.
      const auto r = Run({"curl", "-s", "--max-time", "5", "-w", "\\n", "--data-urlencode",
                          "query=" + promql, query});
      std::string body;
      for (const auto& l : r.lines) body += l;
      const auto doc = nlohmann::json::parse(body, nullptr, false);
      if (!doc.is_object() || doc.value("status", "") != "success") return std::string();
      const auto& result = doc["data"]["result"];
      return result.empty() ? std::string() : result[0]["value"][1].get<std::string>();
    };
    const std::string hist =
        "sum(http_server_request_duration_seconds_count{service_name=\"" + srv_name + "\"})";
    const std::string total = "traces_service_graph_request_total{client=\"" + cli_name +
                              "\",server=\"" + srv_name + "\"}";
    const std::string failed = "traces_service_graph_request_failed_total{client=\"" + cli_name +
                               "\",server=\"" + srv_name + "\"}";
    std::string h, t, f;
    const auto until = Clock::now() + 30s;
    while (Clock::now() < until) {
      h = ask(hist), t = ask(total), f = ask(failed);
      if (h == "6" && t == "6" && f == "1") break;
      std::this_thread::sleep_for(250ms);
    }
    const auto targets = Run({"curl", "-s", "--max-time", "5", "-w", "\\n",
                              "http://127.0.0.1:" + std::to_string(port) + "/api/v1/targets"});
    EXPECT_EQ(h, "6") << ::testing::PrintToString(targets.lines);
    EXPECT_EQ(t, "6");
    EXPECT_EQ(f, "1");
  }

  // OTLP: otlp-sink decoded the requests; the newest one holds the same totals.
  nlohmann::json found;
  const auto until = Clock::now() + 20s;
  while (Clock::now() < until && found.is_null()) {
    std::istringstream lines(Slurp(metrics_path()));
    for (std::string line; std::getline(lines, line);) {
      const auto doc = nlohmann::json::parse(line, nullptr, false);
      if (!doc.is_object()) continue;
      for (const auto& rm : doc.value("resourceMetrics", nlohmann::json::array())) {
        bool ours = false;
        for (const auto& a : rm["resource"].value("attributes", nlohmann::json::array())) {
          ours = ours || (a["key"] == "service.name" && a["value"]["stringValue"] == srv_name);
        }
        if (!ours) continue;
        for (const auto& m : rm["scopeMetrics"][0]["metrics"]) {
          if (m["name"] != "http.server.request.duration") continue;
          for (const auto& p : m["histogram"]["dataPoints"]) {
            for (const auto& a : p["attributes"]) {
              if (a["key"] == "http.route" && a["value"]["stringValue"] == "/hello" &&
                  p["count"] == "3") {
                found = m;
              }
            }
          }
        }
      }
    }
    if (found.is_null()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_FALSE(found.is_null()) << Slurp(metrics_path()).substr(0, 4000);
  EXPECT_EQ(found["unit"], "s");
  EXPECT_EQ(found["histogram"]["aggregationTemporality"], 2);  // cumulative
  const auto& point = found["histogram"]["dataPoints"][0];
  EXPECT_EQ(point["explicitBounds"], nlohmann::json({0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                                     0.5, 0.75, 1, 2.5, 5, 7.5, 10}));
}

class RedOverflowTest : public AgentTest {
 protected:
  std::vector<std::string> AgentFlags() const override {
    return {"--metrics-addr", "127.0.0.1:0", "--metrics-cardinality-limit", "3"};
  }
};

TEST_F(RedOverflowTest, SeriesPastTheLimitFoldIntoOneOverflowSeriesAndAreCounted) {
  const std::string srv_name = "zt-ovf-srv-" + std::to_string(getpid());
  auto& srv = StartNodeServer({"OTEL_SERVICE_NAME=" + srv_name});
  std::vector<std::string> argv = {"curl", "-s"};
  for (const char* route : {"/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h"}) {
    argv.push_back(Url(srv.port, route));  // 8 routes, 8 series
  }
  const auto client = Run(argv);
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_TRUE(WaitForSpans({{srv.pid(), 8}}));
  std::string url;
  for (const auto& line : AgentOutput()) {
    if (line.find("zerotrace: metrics at ") != std::string::npos)
      url = line.substr(line.find("http"));
  }
  const std::string path = dir() + "/scrape.txt";
  Run({"curl", "-sS", "--max-time", "10", "-o", path, url});
  const std::string text = Slurp(path);
  const std::string srv_label = "service_name=\"" + srv_name + "\"";
  // However many series other traffic took first, our 8 requests are all there, and at least
  // 5 of them in our service's overflow series.
  double total = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("http_server_request_duration_seconds_count{" + srv_label, 0) == 0) {
      total += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  EXPECT_EQ(total, 8) << text;
  EXPECT_GE(Sample(text, "http_server_request_duration_seconds_count",
                   {srv_label, "otel_metric_overflow=\"true\""}),
            5);
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(text, m, std::regex("zerotrace_metrics_series_overflow_total (\\d+)")));
  EXPECT_GE(std::stoi(m[1]), 5);
}

class TopTest : public AgentTest {
 protected:
  std::vector<std::string> AgentFlags() const override {
    return {"--top", "--top-interval", "0.5", "--service-name-map", "exe:curl=zt-top-cli"};
  }
};

// On a pipe the view prints plain frames; at exit a last one covers the whole run.
TEST_F(TopTest, PrintsPerServiceAndPerEdgeFiguresOnAPipe) {
  const std::string suffix = std::to_string(getpid());
  const std::string srv_name = "zt-top-srv-" + suffix, cli_name = "zt-top-cli";
  auto& srv = StartNodeServer({"OTEL_SERVICE_NAME=" + srv_name});
  const auto client =
      Run({"env", "OTEL_SERVICE_NAME=" + cli_name, "curl", "-s", Url(srv.port, "/hello"),
           Url(srv.port, "/hello"), Url(srv.port, "/hello"), Url(srv.port, "/missing")});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_TRUE(WaitForSpans({{srv.pid(), 4}, {client.pid, 4}}));
  // A periodic frame printed after the spans arrived, then the exit frame.
  auto frame_count = [this] {
    size_t n = 0;
    for (const auto& l : AgentOutput()) n += l.rfind("zerotrace top - ", 0) == 0;
    return n;
  };
  const size_t before = frame_count();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (frame_count() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_GT(frame_count(), before) << "no periodic frame within 20 s";
  ASSERT_TRUE(AwaitSpans({{srv.pid(), 4}, {client.pid, 4}}));  // stops the agent
  const auto out = AgentOutput();
  size_t last_header = 0, frames = 0;
  for (size_t i = 0; i < out.size(); i++) {
    if (out[i].rfind("zerotrace top - ", 0) == 0) {
      last_header = i;
      frames++;
    }
  }
  ASSERT_GE(frames, 2u) << ::testing::PrintToString(out);
  EXPECT_EQ(out[last_header + 1].substr(0, 7), "SERVICE");
  std::string service_row, edge_row;
  for (size_t i = last_header; i < out.size(); i++) {
    if (out[i].rfind(srv_name + " ", 0) == 0) service_row = out[i];
    if (out[i].rfind(cli_name + " -> " + srv_name, 0) == 0) edge_row = out[i];
  }
  // Columns: name, req/s, err%, p50, p95, p99, requests.
  const std::regex row("^\\S+( -> \\S+)? +[0-9.]+ +([0-9.]+)% +\\S+ +\\S+ +\\S+ +(\\d+)$");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(service_row, m, row)) << ::testing::PrintToString(out);
  EXPECT_EQ(m[2], "0.0");  // a 404 is no server error
  EXPECT_EQ(m[3], "4");
  ASSERT_TRUE(std::regex_match(edge_row, m, row)) << ::testing::PrintToString(out);
  EXPECT_EQ(m[2], "25.0");  // the client's 404
  EXPECT_EQ(m[3], "4");
}

// The terminal mode, driven as a person would under tmux: the view shows the service and its
// slowest traces, 1 opens the slowest as a tree, s changes the sort, q quits the agent.
class TopTerminalTest : public ::testing::Test {
 protected:
  void TearDown() override {
    Subprocess kill({"tmux", "-L", socket_, "kill-server"});
    kill.Wait(10s);
  }
  // Runs tmux on this test's own server; its stdout lines.
  std::vector<std::string> Tmux(std::vector<std::string> args, int* status = nullptr) {
    args.insert(args.begin(), {"tmux", "-L", socket_});
    Subprocess p(std::move(args));
    std::vector<std::string> lines;
    while (auto line = p.ReadLine(10s)) lines.push_back(*line);
    const int rc = p.Wait(10s);
    if (status) *status = rc;
    return lines;
  }
  std::string Screen() {
    std::string all;
    for (const auto& l : Tmux({"capture-pane", "-p", "-t", session_})) all += l + "\n";
    return all;
  }
  // Polls the screen until `re` matches it.
  bool AwaitScreen(const std::regex& re, std::chrono::seconds timeout, std::string* last) {
    const auto deadline = Clock::now() + timeout;
    do {
      *last = Screen();
      if (std::regex_search(*last, re)) return true;
      std::this_thread::sleep_for(100ms);
    } while (Clock::now() < deadline);
    return false;
  }
  const std::string socket_ = "zt-top-" + std::to_string(getpid());
  const std::string session_ = "top";
};

TEST_F(TopTerminalTest, KeysOpenASlowTraceChangeTheSortAndQuit) {
  zerotrace::testing::TempDir dir;
  const std::string srv_name = "zt-tmux-srv-" + std::to_string(getpid());
  const int port = zerotrace::testing::FreePort();
  Subprocess srv(
      {"node", std::string(ZT_E2E_DIR) + "/servers/http_server.js", std::to_string(port)},
      {"OTEL_SERVICE_NAME=" + srv_name});
  ASSERT_TRUE(srv.WaitForLine("ready", zerotrace::testing::kServerStartDeadline));
  const std::string err = dir.path() + "/agent.err";
  int status = 0;
  Tmux({"new-session", "-d", "-s", session_, "-x", "200", "-y", "60",
        std::string("exec ") + ZT_AGENT + " --top --top-interval 0.5 2>" + err},
       &status);
  ASSERT_EQ(status, 0) << "tmux could not start the agent";
  std::string screen;
  ASSERT_TRUE(AwaitScreen(std::regex("zerotrace top - "), 60s, &screen)) << screen;
  const auto attached = Clock::now() + 30s;  // its first frame may come before it attached
  bool tracing = false;
  while (!tracing && Clock::now() < attached) {
    std::ifstream in(err);
    std::stringstream text;
    text << in.rdbuf();
    tracing = text.str().find("zerotrace: tracing ") != std::string::npos;
    if (!tracing) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(tracing) << "the agent did not attach";
  Subprocess curl(
      {"curl", "-s", "-o", "/dev/null", "http://127.0.0.1:" + std::to_string(port) + "/hello"});
  ASSERT_EQ(curl.Wait(30s), 0);
  const std::regex listed("\\n1 +[0-9.]+ms +\\S+ +GET /hello +[0-9]+");
  ASSERT_TRUE(AwaitScreen(std::regex(srv_name), 30s, &screen)) << screen;
  ASSERT_TRUE(AwaitScreen(listed, 30s, &screen)) << screen;
  EXPECT_EQ(screen.find("TRACE "), std::string::npos) << screen;

  Tmux({"send-keys", "-t", session_, "1"});
  const std::regex tree("\\nTRACE [0-9a-f]{32}\\n(.*\\n)*\\s*SERVER +[0-9.]+ms " + srv_name +
                        ": GET /hello");
  EXPECT_TRUE(AwaitScreen(tree, 30s, &screen)) << screen;
  Tmux({"send-keys", "-t", session_, "s"});
  EXPECT_TRUE(AwaitScreen(std::regex("sort: rate"), 30s, &screen)) << screen;
  Tmux({"send-keys", "-t", session_, "q"});
  const auto deadline = Clock::now() + 20s;
  int alive = 0;
  do {
    Tmux({"has-session", "-t", session_}, &alive);
    if (alive != 0) break;
    std::this_thread::sleep_for(100ms);
  } while (Clock::now() < deadline);
  EXPECT_NE(alive, 0) << "the agent did not quit on q";
}

}  // namespace
}  // namespace zerotrace::e2e
