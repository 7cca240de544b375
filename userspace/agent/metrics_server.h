// --metrics-addr: a minimal HTTP/1.x server on its own thread that answers GET /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

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

// Serves one connection at a time, each closed after its response; a client that stalls is cut
// off after a timeout. It shares nothing with the ring-buffer consumer but what `body` reads.
class MetricsServer {
 public:
  using BodyFn = std::function<std::string()>;

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
  MetricsServer() = default;
  void Run();
  void Serve(int fd);

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the poll
  std::string host_;
  uint16_t port_ = 0;
  BodyFn body_;
  std::thread thread_;
};

}  // namespace zerotrace::agent
