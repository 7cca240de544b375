// --metrics-addr: a minimal HTTP/1.x server on its own thread that answers GET /metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"

namespace zerotrace::agent {

struct ListenAddress {
  std::string host;  // as given, without brackets; empty: every interface
  uint16_t port = 0;
};

// "127.0.0.1:9464", "[::1]:9464", "localhost:0", ":9464" (every interface).
StatusOr<ListenAddress> ParseListenAddress(std::string_view address);

// The response to one request head ("GET /metrics HTTP/1.1\r\n..."), complete with headers.
// `body` makes the /metrics body and is only called for GET or HEAD /metrics.
std::string MetricsResponse(std::string_view request_head,
                            const std::function<std::string()>& body);

// Serves many connections at once on one thread (poll, non-blocking sockets), each closed after
// its response. Deadlines are per connection and whole, not per byte: the request head must
// be in within kHeadDeadline of the accept, the response out within kResponseDeadline. So a
// client trickling a byte a second, or a hundred of them, holds a slot for two seconds and
// never a scrape. It shares nothing with the ring-buffer consumer but what `body` reads.
class MetricsServer {
 public:
  using BodyFn = std::function<std::string()>;
  static constexpr size_t kMaxConnections = 64;  // more wait in the listen backlog
  static constexpr std::chrono::milliseconds kHeadDeadline{2000};
  static constexpr std::chrono::milliseconds kResponseDeadline{10000};

  // Binds and listens now, so a bad address or a port in use is a start-up error.
  static StatusOr<std::unique_ptr<MetricsServer>> Listen(std::string_view address);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Starts the serving thread.
  void Start(BodyFn body);
  // Stops the thread (waits for a request being answered) and closes the listening socket.
  void Stop();

  uint16_t port() const { return port_; }
  // "http://HOST:PORT/metrics" with the bound port.
  std::string url() const;

 private:
  using Clock = std::chrono::steady_clock;
  // One client connection, owned by the serving thread.
  struct Conn {
    int fd = -1;
    std::string head;      // the request head as read so far
    std::string response;  // set once the head is complete
    size_t sent = 0;
    bool draining = false;  // response sent and write side shut: reading until the peer closes
    Clock::time_point deadline;
  };

  MetricsServer() = default;
  void Run();
  void AcceptAll();
  // Reads or writes what the socket allows; false when the connection is done with.
  bool OnReady(Conn& c, short revents);
  bool WriteResponse(Conn& c);

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the poll
  std::string host_;
  uint16_t port_ = 0;
  BodyFn body_;
  std::vector<Conn> conns_;  // serving thread only
  std::thread thread_;
};

}  // namespace zerotrace::agent
