// Event-loop proxies (issue 19, part 1): nginx, a node http proxy and a python asyncio (aiohttp)
// proxy, each rewriting a path prefix (/api/items/N becomes /items/N, as nginx's proxy_pass
// http://backend/ does) over upstream keep-alive, under concurrent clients. Each of nginx's
// upstream calls is the child of the request it forwards when the evidence allows, and never of
// another one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "e2e_fixture.h"

namespace zerotrace::e2e {
namespace {

namespace fs = std::filesystem;
using zerotrace::testing::FreePort;
using zerotrace::testing::kServerStartDeadline;

class ProxyLinkingTest : public AgentTest {
 protected:
  // nginx, one worker, proxying /api/ to `backend_port` with the prefix rewritten away.
  pid_t StartProxy(int port, int backend_port) {
    const std::string root = dir() + "/nginx-proxy";
    fs::create_directories(root);
    std::ofstream conf(root + "/nginx.conf");
    conf << "daemon off; master_process off; worker_processes 1;\n"
         << "pid " << root << "/nginx.pid; error_log " << root << "/error.log;\n"
         << "events {}\n"
         << "http {\n  access_log off;\n"
         << "  client_body_temp_path " << root << "/body; proxy_temp_path " << root << "/proxy;\n"
         << "  fastcgi_temp_path " << root << "/fastcgi; uwsgi_temp_path " << root << "/uwsgi;\n"
         << "  scgi_temp_path " << root << "/scgi;\n"
         << "  upstream backend { server 127.0.0.1:" << backend_port << "; keepalive 8; }\n"
         << "  server {\n    listen 127.0.0.1:" << port << ";\n"
         << "    location /api/ { proxy_pass http://backend/; proxy_http_version 1.1;\n"
         << "      proxy_set_header Connection \"\"; }\n  }\n}\n";
    conf.close();
    auto& p = Spawn({"nginx", "-p", root, "-e", root + "/error.log", "-c", root + "/nginx.conf"});
    EXPECT_TRUE(zerotrace::testing::WaitForListen(port, kServerStartDeadline))
        << "nginx did not start";
    return p.pid();
  }

  struct Edges {
    int right = 0, wrong = 0, missing = 0;
  };
  // nginx's upstream calls against the requests they forward (by the call's target).
  Edges CheckEdges(pid_t nginx) const {
    std::map<std::string, const Span*> by_id;
    for (const Span& s : AllSpans()) by_id[s.span_id] = &s;
    Edges e;
    for (const Span& s : SpansOf(nginx)) {
      if (s.kind != kClient) continue;
      const std::string up = s.Str("url.path").value_or("");
      const Span* p = s.parent_span_id.empty() ? nullptr : by_id[s.parent_span_id];
      if (p == nullptr) {
        e.missing++;
      } else if (p->pid == nginx && p->kind == kServer && p->Str("url.path") == "/api" + up &&
                 p->trace_id == s.trace_id) {
        e.right++;
      } else {
        e.wrong++;
        ADD_FAILURE() << "wrong parent: " << s.Describe() << "\n  under " << p->Describe();
      }
    }
    return e;
  }

  // curl, `parallel` transfers at a time, fetching each path under /api/ once.
  void Fetch(int port, const std::vector<std::string>& paths, int parallel) {
    std::vector<std::string> argv = {
        "curl", "-sS",        "--no-progress-meter", "--max-time",
        "30",   "--parallel", "--parallel-max",      std::to_string(parallel)};
    for (const auto& p : paths) {
      argv.insert(argv.end(), {"-o", "/dev/null", "-w", "%{http_code}\\n", Url(port, "/api" + p)});
    }
    const ClientRun run = Run(argv, 60s);
    ASSERT_EQ(run.exit_code, 0);
    for (const auto& l : run.lines) EXPECT_EQ(l, "200");
  }

  // A proxy listening on a port of its own, forwarding /api/<rest> to `backend_port` as /<rest>.
  pid_t StartProxyOf(const std::string& kind, int port, int backend_port) {
    if (kind == "nginx") return StartProxy(port, backend_port);
    const std::string script =
        std::string(ZT_E2E_DIR) + "/servers/" + (kind == "node" ? "proxy.js" : "aiohttp_proxy.py");
    auto& p = Spawn({kind == "node" ? "node" : "/usr/bin/python3", script, std::to_string(port),
                     std::to_string(backend_port)});
    EXPECT_TRUE(p.WaitForLine("ready", kServerStartDeadline)) << kind << " proxy did not start";
    return p.pid();
  }
};

class ProxyLinkingEachProxy : public ProxyLinkingTest,
                              public ::testing::WithParamInterface<const char*> {};

// Unique paths from 16 clients at a time, after three one at a time (the rewrite is learned from
// calls that can belong to one request only): at least 99% of the proxy's upstream calls are the
// children of the request they forward, and none is anyone else's.
TEST_P(ProxyLinkingEachProxy, UniquePathsUnderConcurrencyLinkTheirCalls) {
  Server& backend = StartPythonServer();
  const int port = FreePort();
  const pid_t proxy = StartProxyOf(GetParam(), port, backend.port);
  constexpr int kWarm = 3, kRequests = 96 + kWarm;
  Fetch(port, {"/items/1001", "/items/1002", "/items/1003"}, 1);
  std::vector<std::string> paths;
  for (int n = 0; n < kRequests - kWarm; n++) paths.push_back("/items/" + std::to_string(n));
  Fetch(port, paths, 16);
  ASSERT_TRUE(AwaitSpans({{proxy, 2 * kRequests}, {backend.pid(), kRequests}}, 60s));
  const Edges e = CheckEdges(proxy);
  std::cout << GetParam() << " prefix rewrite, unique paths: right=" << e.right
            << " wrong=" << e.wrong << " missing=" << e.missing << "\n";
  EXPECT_EQ(e.wrong, 0);
  EXPECT_GE(e.right * 100, kRequests * 99) << "missing " << e.missing;
}

// The same path from every client: nothing tells the requests apart, so a call is linked only
// when one request was in flight; none is linked wrongly.
TEST_P(ProxyLinkingEachProxy, IdenticalPathsNeverLinkWrongly) {
  Server& backend = StartPythonServer();
  const int port = FreePort();
  const pid_t proxy = StartProxyOf(GetParam(), port, backend.port);
  constexpr int kWarm = 3, kRequests = 48 + kWarm;
  Fetch(port, {"/items/1001", "/items/1002", "/items/1003"}, 1);
  Fetch(port, std::vector<std::string>(kRequests - kWarm, "/items/7"), 16);
  ASSERT_TRUE(AwaitSpans({{proxy, 2 * kRequests}, {backend.pid(), kRequests}}, 60s));
  const Edges e = CheckEdges(proxy);
  std::cout << GetParam() << " prefix rewrite, identical paths: right=" << e.right
            << " wrong=" << e.wrong << " missing=" << e.missing << "\n";
  EXPECT_EQ(e.wrong, 0);
  EXPECT_EQ(e.right + e.missing, kRequests);
}

INSTANTIATE_TEST_SUITE_P(Proxies, ProxyLinkingEachProxy,
                         ::testing::Values("nginx", "node", "aiohttp"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace zerotrace::e2e
