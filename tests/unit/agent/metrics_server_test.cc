// MetricsServer: address parsing, responses, and a real scrape over loopback.
#include "agent/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

namespace zerotrace::agent {
namespace {

TEST(ParseListenAddress, AcceptsHostPortForms) {
  struct Case {
    const char* in;
    const char* host;
    uint16_t port;
  } cases[] = {
      {"127.0.0.1:9464", "127.0.0.1", 9464},
      {"[::1]:9464", "::1", 9464},
      {"localhost:0", "localhost", 0},
      {":9464", "", 9464},
  };
  for (const auto& c : cases) {
    auto a = ParseListenAddress(c.in);
    ASSERT_TRUE(a.ok()) << c.in << ": " << a.status().message();
    EXPECT_EQ(a->host, c.host) << c.in;
    EXPECT_EQ(a->port, c.port) << c.in;
  }
}

TEST(ParseListenAddress, RefusesWhatIsNotHostPort) {
  for (const char* in : {"", "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536",
                         "127.0.0.1:-1", "::1:9464", "127.0.0.1:123456"}) {
    auto a = ParseListenAddress(in);
    ASSERT_FALSE(a.ok()) << in;
    EXPECT_NE(a.status().message().find("--metrics-addr"), std::string::npos) << in;
  }
}

TEST(MetricsResponse, AnswersByMethodAndPath) {
  int calls = 0;
  auto body = [&calls] {
    calls++;
    return std::string("m 1\n");
  };
  struct Case {
    const char* head;
    const char* status_line;
    bool has_body;
  } cases[] = {
      {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n", true},
      {"GET /metrics?x=1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\n", true},
      {"HEAD /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n", false},
      {"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n", false},
      {"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n", false},
      {"hello\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", false},
  };
  for (const auto& c : cases) {
    const std::string r = MetricsResponse(c.head, body);
    EXPECT_EQ(r.rfind(c.status_line, 0), 0u) << c.head << "\n" << r;
    EXPECT_EQ(r.size() >= 4 && r.substr(r.size() - 4) == "m 1\n", c.has_body) << c.head;
  }
  EXPECT_EQ(calls, 3);  // only for /metrics with GET or HEAD
  const std::string ok = MetricsResponse("GET /metrics HTTP/1.1\r\n\r\n", body);
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_NE(ok.find("Content-Length: 4\r\n"), std::string::npos);
}

// Sends `request` to 127.0.0.1:port and reads the whole answer.
std::string Fetch(uint16_t port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return "connect failed";
  }
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

TEST(MetricsServer, ServesScrapesOnItsOwnThread) {
  auto listening = MetricsServer::Listen("127.0.0.1:0");
  ASSERT_TRUE(listening.ok()) << listening.status().message();
  auto server = std::move(listening.value());
  ASSERT_GT(server->port(), 0);
  EXPECT_EQ(server->url(), "http://127.0.0.1:" + std::to_string(server->port()) + "/metrics");
  std::atomic<int> scrapes{0};
  server->Start(
      [&scrapes] { return "zerotrace_scrapes_total " + std::to_string(++scrapes) + "\n"; });
  // The request may arrive in pieces.
  const std::string first = Fetch(server->port(), "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_NE(first.find("\r\n\r\nzerotrace_scrapes_total 1\n"), std::string::npos) << first;
  const std::string second = Fetch(server->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_NE(second.find("zerotrace_scrapes_total 2\n"), std::string::npos) << second;
  // A client that connects and says nothing is cut off; the next one is still served.
  const int idle = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(server->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const std::string third = Fetch(server->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_NE(third.find("zerotrace_scrapes_total 3\n"), std::string::npos) << third;
  close(idle);
  server->Stop();
  EXPECT_EQ(Fetch(server->port(), "GET /metrics HTTP/1.1\r\n\r\n").find("200 OK"),
            std::string::npos);
}

TEST(MetricsServer, PortInUseIsAnError) {
  auto first = MetricsServer::Listen("127.0.0.1:0");
  ASSERT_TRUE(first.ok());
  const std::string addr = "127.0.0.1:" + std::to_string(first.value()->port());
  auto second = MetricsServer::Listen(addr);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use"), std::string::npos)
      << second.status().message();
}

TEST(MetricsServer, UnresolvableHostIsAnError) {
  auto s = MetricsServer::Listen("no-such-host.invalid:9464");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("no-such-host.invalid"), std::string::npos);
}

}  // namespace
}  // namespace zerotrace::agent
