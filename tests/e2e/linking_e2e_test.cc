// Distributed traces with zero instrumentation: real processes in several runtimes, one trace
// per request, checked edge by edge against the tree the request really took.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "e2e_fixture.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::Subprocess;

const std::string kDemo = std::string(ZT_SOURCE_DIR) + "/tools/demo/services";

// Right / wrong / missing edges of one kind of hop.
struct EdgeCount {
  int right = 0, wrong = 0, missing = 0;
};

class LinkingE2eTest : public AgentTest {
 protected:
  std::vector<std::string> AgentFlags() const override { return {"--stats-interval", "1"}; }

  // A service that prints "ready" once it listens.
  pid_t StartService(std::vector<std::string> argv) {
    Subprocess& p = Spawn(std::move(argv));
    EXPECT_TRUE(p.WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
        << "a service did not start: " << zerotrace::testing::DescribeProcess(p.pid());
    return p.pid();
  }

  // The demo chain: nginx -> node frontend -> python order -> node goods, python payment,
  // python user-centre.
  struct Chain {
    int port = 0;  // nginx
    pid_t nginx = 0, frontend = 0, order = 0, goods = 0, payment = 0, user = 0;
  };
  Chain StartChain() {
    Chain c;
    const int goods = FreePort(), payment = FreePort(), user = FreePort(), order = FreePort(),
              frontend = FreePort();
    auto url = [](int port) { return "http://127.0.0.1:" + std::to_string(port); };
    c.goods = StartService({"node", kDemo + "/goods.js", "--port", std::to_string(goods)});
    c.payment = StartService(
        {"/usr/bin/python3", "-B", kDemo + "/payment.py", "--port", std::to_string(payment)});
    c.user = StartService(
        {"/usr/bin/python3", "-B", kDemo + "/user.py", "--port", std::to_string(user)});
    c.order = StartService({"/usr/bin/python3", "-B", kDemo + "/order.py", "--port",
                            std::to_string(order), "--goods-url", url(goods), "--payment-url",
                            url(payment), "--user-url", url(user)});
    c.frontend = StartService({"node", kDemo + "/frontend.js", "--port", std::to_string(frontend),
                               "--order-url", url(order)});
    c.port = FreePort();
    c.nginx = StartNginxFromTemplate(c.port, frontend);
    return c;
  }

  pid_t StartNginxFromTemplate(int port, int frontend_port) {
    namespace fs = std::filesystem;
    const std::string prefix = dir() + "/nginx-proxy";
    fs::create_directories(prefix);
    std::ifstream in(kDemo + "/nginx.conf.in");
    std::stringstream text;
    text << in.rdbuf();
    std::string conf = text.str();
    auto replace = [&conf](const std::string& from, const std::string& to) {
      for (size_t at; (at = conf.find(from)) != std::string::npos;)
        conf.replace(at, from.size(), to);
    };
    replace("@PREFIX@", prefix);
    replace("@PORT@", std::to_string(port));
    replace("@FRONTEND_PORT@", std::to_string(frontend_port));
    std::ofstream(prefix + "/nginx.conf") << conf;
    Subprocess& p =
        Spawn({"nginx", "-p", prefix, "-e", prefix + "/error.log", "-c", prefix + "/nginx.conf"});
    EXPECT_TRUE(zerotrace::testing::WaitForListen(port, zerotrace::testing::kServerStartDeadline))
        << "nginx did not start: " << zerotrace::testing::DescribeProcess(p.pid());
    return p.pid();
  }

  // What curl reported for one URL.
  struct Fetch {
    std::string url;
    int local_port = 0;
  };
  // curl fetching every URL (in parallel when `parallel`), in the order the fetches finished.
  std::vector<Fetch> CurlAll(const std::vector<std::string>& urls, bool parallel, pid_t* curl_pid,
                             const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "20"};
    if (parallel) argv.insert(argv.end(), {"--parallel", "--parallel-max", "50"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    for (const auto& u : urls) {
      argv.insert(argv.end(),
                  {"-o", "/dev/null", "-w", "%{url_effective} %{local_port} %{http_code}\\n", u});
    }
    ClientRun run = Run(argv, 60s);
    *curl_pid = run.pid;
    EXPECT_EQ(run.exit_code, 0);
    std::vector<Fetch> fetches;
    for (const auto& l : run.lines) {
      std::istringstream line(l);
      Fetch f;
      int code = 0;
      if (line >> f.url >> f.local_port >> code) {
        EXPECT_EQ(code, 200) << f.url;
        fetches.push_back(f);
      }
    }
    EXPECT_EQ(fetches.size(), urls.size()) << "curl did not report every transfer";
    return fetches;
  }

  // What must hold for one order: the chain from curl's span down to the three leaf services.
  struct Verdict {
    bool exact = true;
    std::string why;
  };

  // Checks the trees of `orders` orders sent through `chain`, and counts edges by hop kind:
  // "peer" (a client span in one process, the server span in another), "event-loop" (nginx and
  // node: a call under the request being served) and "thread" (python's handler thread).
  void CheckOrders(const Chain& chain, pid_t curl, const std::vector<Fetch>& fetches,
                   int first_order, int orders, std::map<std::string, EdgeCount>* edges,
                   int* exact_traces) {
    std::map<std::string, const Span*> by_id;
    std::map<std::string, std::vector<const Span*>> children;
    for (const Span& s : AllSpans()) by_id[s.span_id] = &s;
    for (const Span& s : AllSpans()) {
      if (!s.parent_span_id.empty()) children[s.parent_span_id].push_back(&s);
    }
    std::set<std::string> right_edges;  // child span ids whose parent edge is right
    const std::set<pid_t> chain_pids = {curl,        chain.nginx,   chain.frontend, chain.order,
                                        chain.goods, chain.payment, chain.user};
    auto kind_of = [&](pid_t parent, pid_t child) -> std::string {
      if (parent != child) return "peer";
      return child == chain.order ? "thread" : "event-loop";
    };
    // The one child of `parent` that is (pid, kind, method, path); nullptr when not exactly one.
    auto child = [&](const Span* parent, pid_t pid, int kind, const std::string& method,
                     const std::string& path, Verdict* v) -> const Span* {
      if (parent == nullptr) return nullptr;
      std::vector<const Span*> match;
      for (const Span* c : children[parent->span_id]) {
        if (c->pid == pid && c->kind == kind && c->Str("http.request.method") == method &&
            c->Str("url.path") == path && c->trace_id == parent->trace_id) {
          match.push_back(c);
        }
      }
      if (match.size() != 1) {
        v->exact = false;
        v->why += " want one " + method + " " + path + " under " + parent->name + " (pid " +
                  std::to_string(parent->pid) + "), got " + std::to_string(match.size()) + ";";
        (*edges)[kind_of(static_cast<pid_t>(parent->pid), pid)].missing++;
        return nullptr;
      }
      (*edges)[kind_of(static_cast<pid_t>(parent->pid), pid)].right++;
      right_edges.insert(match[0]->span_id);
      return match[0];
    };
    std::map<int, std::vector<const Span*>> nginx_by_port;  // by curl's port, in start order
    for (const Span& s : AllSpans()) {
      if (s.pid == chain.nginx && s.kind == kServer) {
        nginx_by_port[static_cast<int>(s.Int("network.peer.port").value_or(0))].push_back(&s);
      }
    }
    for (auto& [port, spans] : nginx_by_port) {
      std::sort(spans.begin(), spans.end(),
                [](const Span* a, const Span* b) { return a->start_ns < b->start_ns; });
    }
    std::map<std::string, const Span*> proxy_in_of;
    std::map<int, size_t> taken;
    for (const Fetch& f : fetches) {
      const auto& spans = nginx_by_port[f.local_port];
      const size_t k = taken[f.local_port]++;
      if (k < spans.size()) proxy_in_of[f.url] = spans[k];
    }
    for (int n = first_order; n < first_order + orders; n++) {
      const std::string url =
          Url(chain.port, "/checkout?order=" + std::to_string(n) + "&user=u" + std::to_string(n));
      Verdict v;
      // nginx's server span for this order: on curl's connection for the URL; a connection
      // curl reused carries its URLs in the order curl finished them.
      const Span* proxy_in = nullptr;
      if (auto it = proxy_in_of.find(url); it != proxy_in_of.end()) proxy_in = it->second;
      const Span* root = proxy_in ? by_id[proxy_in->parent_span_id] : nullptr;
      if (proxy_in == nullptr) {
        v.exact = false;
        v.why += " no nginx server span;";
        (*edges)["peer"].missing++;
      } else if (root == nullptr || root->pid != curl || root->kind != kClient ||
                 !root->parent_span_id.empty() || root->trace_id != proxy_in->trace_id) {
        v.exact = false;
        v.why += " nginx's span is not under a curl root;";
        (*edges)["peer"].missing++;
      } else {
        (*edges)["peer"].right++;
        right_edges.insert(proxy_in->span_id);
      }
      const std::string goods = "/goods/" + std::to_string(n),
                        user = "/users/u" + std::to_string(n);
      const Span* proxy_out = child(proxy_in, chain.nginx, kClient, "GET", "/checkout", &v);
      const Span* front_in = child(proxy_out, chain.frontend, kServer, "GET", "/checkout", &v);
      const Span* front_out = child(front_in, chain.frontend, kClient, "POST", "/orders", &v);
      const Span* order_in = child(front_out, chain.order, kServer, "POST", "/orders", &v);
      const Span* c1 = child(order_in, chain.order, kClient, "GET", goods, &v);
      const Span* c2 = child(order_in, chain.order, kClient, "POST", "/pay", &v);
      const Span* c3 = child(order_in, chain.order, kClient, "GET", user, &v);
      child(c1, chain.goods, kServer, "GET", goods, &v);
      child(c2, chain.payment, kServer, "POST", "/pay", &v);
      child(c3, chain.user, kServer, "GET", user, &v);
      for (const Span* s : {proxy_in, proxy_out, front_in, front_out, order_in}) {
        if (s && children[s->span_id].size() != (s == order_in ? 3u : 1u)) {
          v.exact = false;
          v.why +=
              " " + s->name + " has " + std::to_string(children[s->span_id].size()) + " children;";
        }
      }
      if (v.exact) (*exact_traces)++;
      EXPECT_TRUE(v.exact) << "order " << n << ":" << v.why;
    }
    // Every parent edge among the chain's spans that is not a right one is wrong.
    for (const Span& s : AllSpans()) {
      if (!chain_pids.count(static_cast<pid_t>(s.pid)) || s.parent_span_id.empty()) continue;
      if (right_edges.count(s.span_id)) continue;
      const Span* p = by_id[s.parent_span_id];
      const pid_t parent_pid = p ? static_cast<pid_t>(p->pid) : static_cast<pid_t>(s.pid);
      (*edges)[kind_of(parent_pid, static_cast<pid_t>(s.pid))].wrong++;
      ADD_FAILURE() << "wrong parent: " << s.Describe()
                    << "\n  under: " << (p ? p->Describe() : "(parent not exported)");
    }
  }

  static std::string Report(const std::map<std::string, EdgeCount>& edges) {
    std::string out;
    for (const auto& [kind, e] : edges) {
      out += " " + kind + ": right=" + std::to_string(e.right) +
             " wrong=" + std::to_string(e.wrong) + " missing=" + std::to_string(e.missing) + ";";
    }
    return out;
  }

  void RunChain(int orders, bool parallel) {
    const Chain chain = StartChain();
    std::vector<std::string> urls;
    for (int n = 1; n <= orders; n++) {
      urls.push_back(
          Url(chain.port, "/checkout?order=" + std::to_string(n) + "&user=u" + std::to_string(n)));
    }
    pid_t curl = 0;
    const auto fetches = CurlAll(urls, parallel, &curl);
    const size_t k = static_cast<size_t>(orders);
    ASSERT_TRUE(AwaitSpans({{curl, k},
                            {chain.nginx, 2 * k},
                            {chain.frontend, 2 * k},
                            {chain.order, 4 * k},
                            {chain.goods, k},
                            {chain.payment, k},
                            {chain.user, k}},
                           60s));
    std::map<std::string, EdgeCount> edges;
    int exact = 0;
    CheckOrders(chain, curl, fetches, 1, orders, &edges, &exact);
    std::cout << "linking " << (parallel ? "concurrent" : "sequential") << ": " << exact << " of "
              << orders << " traces exact;" << Report(edges) << "\n";
    RecordProperty("edges", Report(edges));
    for (const auto& [kind, e] : edges) EXPECT_EQ(e.wrong, 0) << kind;
    EXPECT_EQ(exact, orders);
  }
};

TEST_F(LinkingE2eTest, SequentialOrdersThroughFourRuntimesAreExactTraces) { RunChain(3, false); }

TEST_F(LinkingE2eTest, FiftyConcurrentOrdersAreFiftyExactTraces) { RunChain(50, true); }

TEST_F(LinkingE2eTest, ServerJoinsTheTraceparentItsClientSent) {
  Server& server = StartPythonServer();
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736", parent = "00f067aa0ba902b7";
  pid_t curl = 0;
  CurlAll({Url(server.port, "/hello")}, false, &curl,
          {"-H", "traceparent: 00-" + trace + "-" + parent + "-01", "-H", "tracestate: k=v"});
  ASSERT_TRUE(AwaitSpans({{server.pid(), 1}, {curl, 1}}));
  const Span s = SpansOf(server.pid()).at(0);
  EXPECT_EQ(s.trace_id, trace);
  EXPECT_EQ(s.parent_span_id, parent);
  // The caller's own span is in the same trace (its header names the trace it belongs to).
  EXPECT_EQ(SpansOf(curl).at(0).trace_id, trace);
}

TEST_F(LinkingE2eTest, InvalidTraceparentIsIgnoredAndTheSameNodeCallerLinks) {
  Server& server = StartPythonServer();
  pid_t curl = 0;
  CurlAll({Url(server.port, "/hello")}, false, &curl,
          {"-H", "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01"});
  ASSERT_TRUE(AwaitSpans({{server.pid(), 1}, {curl, 1}}));
  const Span s = SpansOf(server.pid()).at(0), c = SpansOf(curl).at(0);
  EXPECT_EQ(s.parent_span_id, c.span_id);
  EXPECT_EQ(s.trace_id, c.trace_id);
}

TEST_F(LinkingE2eTest, CallerAndServerOverIpv6Loopback) {
  const int port = FreePort();
  Subprocess& server =
      Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/http_server.py",
             std::to_string(port), "::1"});
  ASSERT_TRUE(server.WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
      << zerotrace::testing::DescribeProcess(server.pid());
  pid_t curl = 0;
  CurlAll({"http://[::1]:" + std::to_string(port) + "/hello"}, false, &curl, {"-g"});
  ASSERT_TRUE(AwaitSpans({{server.pid(), 1}, {curl, 1}}));
  const Span s = SpansOf(server.pid()).at(0), c = SpansOf(curl).at(0);
  EXPECT_EQ(s.Str("network.peer.address"), "::1");
  EXPECT_EQ(s.parent_span_id, c.span_id);
  EXPECT_EQ(s.trace_id, c.trace_id);
}

// Two network namespaces joined by a veth pair, no NAT: the caller in one, the server in the
// other; their spans link like on loopback.
TEST_F(LinkingE2eTest, ServicesInTwoNetworkNamespacesOnAVethPairLink) {
  const std::string tag = std::to_string(getpid() % 100000);
  const std::string ns_a = "zt-a-" + tag, ns_b = "zt-b-" + tag;
  const std::string veth_a = "zta" + tag, veth_b = "ztb" + tag;
  auto sh = [this](const std::string& cmd) { return Run({"/bin/sh", "-c", cmd}, 20s).exit_code; };
  struct Cleanup {
    std::function<void()> fn;
    ~Cleanup() { fn(); }
  } cleanup{[&] {
    sh("ip netns del " + ns_a + " 2>/dev/null; ip netns del " + ns_b + " 2>/dev/null; true");
  }};
  ASSERT_EQ(sh("ip netns add " + ns_a + " && ip netns add " + ns_b + " && ip link add " + veth_a +
               " type veth peer name " + veth_b + " && ip link set " + veth_a + " netns " + ns_a +
               " && ip link set " + veth_b + " netns " + ns_b + " && ip -n " + ns_a +
               " addr add 10.203.0.1/24 dev " + veth_a + " && ip -n " + ns_b +
               " addr add 10.203.0.2/24 dev " + veth_b + " && ip -n " + ns_a + " link set " +
               veth_a + " up && ip -n " + ns_b + " link set " + veth_b + " up && ip -n " + ns_a +
               " link set lo up && ip -n " + ns_b + " link set lo up"),
            0);
  const int port = 18000 + static_cast<int>(getpid() % 1000);
  Subprocess& server = Spawn({"ip", "netns", "exec", ns_b, "/usr/bin/python3", "-B",
                              std::string(ZT_E2E_DIR) + "/servers/http_server.py",
                              std::to_string(port), "10.203.0.2"});
  ASSERT_TRUE(server.WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
      << zerotrace::testing::DescribeProcess(server.pid());
  ClientRun client = Run({"ip", "netns", "exec", ns_a, "curl", "-sS", "--max-time", "10", "-o",
                          "/dev/null", "http://10.203.0.2:" + std::to_string(port) + "/hello"});
  ASSERT_EQ(client.exit_code, 0);
  // `ip netns exec` execs the program: the pids are the server's and curl's.
  ASSERT_TRUE(AwaitSpans({{server.pid(), 1}, {client.pid, 1}}));
  const Span s = SpansOf(server.pid()).at(0), c = SpansOf(client.pid).at(0);
  EXPECT_EQ(s.Str("network.peer.address"), "10.203.0.1");
  EXPECT_EQ(s.parent_span_id, c.span_id);
  EXPECT_EQ(s.trace_id, c.trace_id);
}

// node interleaves many /work requests, each making one call that nothing ties to it: the
// agent must not guess. A call is linked only when its request was the only one in flight
// (and then correctly); the rest are unparented and counted as ambiguous.
TEST_F(LinkingE2eTest, EventLoopWithoutEvidenceLeavesCallsUnparentedAndCountsThem) {
  Server& downstream = StartPythonServer();
  const int port = FreePort();
  const pid_t fanout = StartService({"node", std::string(ZT_E2E_DIR) + "/servers/fanout_server.js",
                                     std::to_string(port), std::to_string(downstream.port)});
  const int kRequests = 40;
  std::vector<std::string> argv = {"curl",           "-sS", "--max-time", "20", "--parallel",
                                   "--parallel-max", "40"};
  for (int n = 0; n < kRequests; n++) {
    argv.insert(argv.end(), {"-o", dir() + "/work-" + std::to_string(n) + ".json",
                             Url(port, "/work/" + std::to_string(n))});
  }
  ClientRun run = Run(argv, 60s);
  ASSERT_EQ(run.exit_code, 0);
  // Each body says which lookup its request made: the truth the agent cannot see.
  std::map<std::string, std::string> lookup_of;  // "/lookup/<hex>" -> "/work/N"
  for (int n = 0; n < kRequests; n++) {
    std::ifstream in(dir() + "/work-" + std::to_string(n) + ".json");
    const auto body = nlohmann::json::parse(in, nullptr, false);
    if (body.is_object() && body.contains("lookup")) {
      lookup_of[body["lookup"].get<std::string>()] = "/work/" + body["id"].get<std::string>();
    }
  }
  ASSERT_EQ(lookup_of.size(), static_cast<size_t>(kRequests));
  ASSERT_TRUE(WaitForSpans({{fanout, 2 * kRequests}}, 30s));
  const size_t lines_before = AgentOutput().size();
  const auto ambiguous = StatsCounter("link_ambiguous", lines_before);
  StopAgent();
  std::map<std::string, const Span*> by_id;
  for (const Span& s : AllSpans()) by_id[s.span_id] = &s;
  int linked = 0, unparented = 0;
  for (const Span& s : SpansOf(fanout)) {
    if (s.kind != kClient) continue;
    const std::string path = s.Str("url.path").value_or("");
    if (s.parent_span_id.empty()) {
      unparented++;
      continue;
    }
    const Span* p = by_id[s.parent_span_id];
    ASSERT_NE(p, nullptr) << s.Describe();
    EXPECT_EQ(p->Str("url.path"), lookup_of[path]) << "wrong parent for " << path;
    linked++;
  }
  std::cout << "event loop without evidence: " << linked << " linked (single request in flight), "
            << unparented << " unparented; link_ambiguous=" << ambiguous.value_or(0) << "\n";
  EXPECT_EQ(linked + unparented, kRequests);
  EXPECT_GT(unparented, 0) << "the requests did not interleave: the test proves nothing";
  ASSERT_TRUE(ambiguous.has_value()) << "no stats line";
  EXPECT_GE(*ambiguous, static_cast<uint64_t>(unparented));
}

}  // namespace
}  // namespace zerotrace::e2e
