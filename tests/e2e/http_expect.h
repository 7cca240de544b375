// What the e2e test servers answer and the spans each side should report for it (shared by
// the HTTP and HTTPS suites).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "span_log.h"

namespace zerotrace::e2e {

// Bodies of tests/e2e/servers/http_server.py (and http_server.js where they share routes).
inline constexpr int64_t kHelloBody = 13;          // "hello, world\n"
inline constexpr int64_t kErrorBody = 15;          // "internal error\n"
inline constexpr int64_t kNotFoundBody = 10;       // "not found\n"
inline int64_t ItemBody(int n) { return 10 + n; }  // /items/<n>
// The status keepalive_client.py and pipeline_client.py ask /items/<i> for.
inline int ItemStatus(int i) { return i % 10 == 3 ? 404 : i % 10 == 7 ? 503 : 200; }
inline std::string ItemTarget(int i) {
  const int s = ItemStatus(i);
  return "/items/" + std::to_string(i) + (s == 200 ? "" : "?status=" + std::to_string(s));
}

// service.name of a python process without OTEL_SERVICE_NAME is its script's name (the
// interpreter's entry point): "http_server" for python3 http_server.py.
inline std::vector<std::string> PythonService() { return {"http_server"}; }
// Short-lived python clients, named by their script ("keepalive_client" for
// keepalive_client.py). The agent reads /proc when it first needs the process, and falls back to
// the comm ("python3") when the process already exited. Known agent limitation; servers live
// long enough to be read.
inline std::vector<std::string> PythonClientService(const std::string& script) {
  return {script, "python3"};
}

// One exchange as both sides should report it.
struct Exchange {
  std::string method, target;
  int status;
  std::optional<int64_t> resp_body;
  int64_t req_body = 0;
};

// The spans one side of a connection should have produced for `exchanges`, in order;
// `scheme` is url.scheme.
inline std::vector<WantSpan> Spans(int kind, const std::vector<Exchange>& exchanges,
                                   int server_port, int client_port, const std::string& user_agent,
                                   const std::vector<std::string>& service,
                                   const std::string& scheme = "http") {
  std::vector<WantSpan> out;
  for (const auto& x : exchanges) {
    WantSpan w(kind, x.method, x.target, x.status);
    w.resp_body = x.resp_body;
    w.req_body = x.req_body;
    w.server_port = server_port;
    if (kind == kServer) w.peer_port = client_port;
    w.user_agent = user_agent;
    w.service_names = service;
    w.scheme = scheme;
    out.push_back(std::move(w));
  }
  return out;
}

// GET /items/first .. /items/first+n-1 with the statuses ItemStatus asks for.
inline std::vector<Exchange> Items(int n, int first = 0) {
  std::vector<Exchange> out;
  for (int i = first; i < first + n; ++i) {
    out.push_back({"GET", ItemTarget(i), ItemStatus(i), ItemBody(i)});
  }
  return out;
}

}  // namespace zerotrace::e2e
