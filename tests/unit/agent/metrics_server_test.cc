// MetricsServer: address parsing, responses, and a real scrape over loopback.
#include "agent/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

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

// Sends `request` to 127.0.0.1:port and reads the whole answer, waiting at most `timeout` for
// each read (a stuck server gives a short answer, not a stuck test).
std::string Fetch(uint16_t port, const std::string& request,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv = {static_cast<time_t>(timeout.count() / 1000),
                static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
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

// A client that sends its request head one byte at a time, `every` apart, from its own
// thread, until the head is out, the server hangs up, or the test ends.
class Trickler {
 public:
  Trickler(uint16_t port, std::chrono::milliseconds every) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    thread_ = std::thread([this, every] { Run(every); });
  }
  ~Trickler() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    close(fd_);
  }
  bool connected() const { return connected_; }
  // Waits until `n` bytes went out (or the trickle ended).
  size_t WaitSent(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return sent_ >= n || done_; });
    return sent_;
  }
  // Waits until the server closed the connection; false if it had not within `timeout`.
  bool WaitClosedByServer(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return closed_by_server_; });
  }
  size_t sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }
  static constexpr std::string_view kHead = "GET /metrics HTTP/1.1\r\nHost: trickle\r\n\r\n";

 private:
  void Run(std::chrono::milliseconds every) {
    std::unique_lock lock(mu_);
    while (!stop_ && sent_ < kHead.size() && connected_) {
      // Has the server hung up? (A readable socket with nothing to read.)
      pollfd p = {fd_, POLLIN, 0};
      char c;
      if (poll(&p, 1, 0) == 1 && recv(fd_, &c, 1, MSG_DONTWAIT) <= 0) {
        closed_by_server_ = true;
        break;
      }
      if (send(fd_, kHead.data() + sent_, 1, MSG_NOSIGNAL) != 1) {
        closed_by_server_ = true;
        break;
      }
      sent_++;
      cv_.notify_all();
      cv_.wait_for(lock, every, [this] { return stop_; });  // the trickle's pace
    }
    done_ = true;
    cv_.notify_all();
  }
  int fd_ = -1;
  bool connected_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t sent_ = 0;
  bool stop_ = false, done_ = false, closed_by_server_ = false;
  std::thread thread_;
};

std::unique_ptr<MetricsServer> StartedServer() {
  auto listening = MetricsServer::Listen("127.0.0.1:0");
  if (!listening.ok()) return nullptr;
  auto server = std::move(listening.value());
  server->Start([] { return std::string("zerotrace_up 1\n"); });
  return server;
}

TEST(MetricsServer, ClientTricklingAByteASecondDoesNotBlockAScrape) {
  auto server = StartedServer();
  ASSERT_NE(server, nullptr);
  Trickler slow(server->port(), std::chrono::seconds(1));
  ASSERT_TRUE(slow.connected());
  ASSERT_GE(slow.WaitSent(2, std::chrono::seconds(10)), 2u);  // the server is reading it
  const std::string scrape =
      Fetch(server->port(), "GET /metrics HTTP/1.1\r\n\r\n", std::chrono::seconds(5));
  EXPECT_NE(scrape.find("200 OK"), std::string::npos) << "scrape got: '" << scrape << "'";
  EXPECT_NE(scrape.find("zerotrace_up 1\n"), std::string::npos);
  EXPECT_LT(slow.sent(), Trickler::kHead.size()) << "the scrape waited for the trickler";
}

TEST(MetricsServer, WholeRequestDeadlineCutsOffATrickler) {
  auto server = StartedServer();
  ASSERT_NE(server, nullptr);
  // Fast enough to reset any per-read timeout, far too slow to finish its head (20 s).
  Trickler slow(server->port(), std::chrono::milliseconds(500));
  ASSERT_TRUE(slow.connected());
  EXPECT_TRUE(slow.WaitClosedByServer(std::chrono::seconds(10)))
      << "still connected after " << slow.sent() << " bytes";
  EXPECT_LT(slow.sent(), Trickler::kHead.size());
}

TEST(MetricsServer, MoreSlowClientsThanSlotsStillLetAScrapeThrough) {
  auto server = StartedServer();
  ASSERT_NE(server, nullptr);
  // Clients that connect and say nothing, more than the server serves at once.
  std::vector<int> idle;
  for (size_t i = 0; i < MetricsServer::kMaxConnections + 20; i++) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(server->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));  // EINPROGRESS is fine
    idle.push_back(fd);
  }
  // Each holds a slot for the head deadline at most; the scrape gets one within a few.
  const std::string scrape =
      Fetch(server->port(), "GET /metrics HTTP/1.1\r\n\r\n", std::chrono::seconds(15));
  EXPECT_NE(scrape.find("200 OK"), std::string::npos) << "scrape got: '" << scrape << "'";
  for (int fd : idle) close(fd);
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
