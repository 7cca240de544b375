// A small blocking HTTP/1.1 server: thread per connection, keep-alive, chunked, 100-continue,
// optionally over TLS.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "tls.h"

namespace zerotrace::otlp_sink {

struct HttpRequest {
  std::string method, target, version;                       // "POST", "/v1/traces", "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercase, in order
  std::string body;                                          // de-chunked, still encoded

  // The first header with this (lowercase) name, or nullptr.
  const std::string* Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is added
  std::string body;
};

// Answers one request. client_gone() says whether the peer has closed its end meanwhile.
using HttpHandler = std::function<HttpResponse(const HttpRequest& request,
                                               const std::function<bool()>& client_gone)>;

class HttpServer {
 public:
  struct Limits {
    size_t max_header_bytes = 64 * 1024;
    size_t max_body_bytes = 64 * 1024 * 1024;
  };

  // Binds host:port (port "0": the kernel picks) and listens; an error message otherwise.
  // With `tls` (not owned; it must outlive the server) every connection starts with a TLS
  // handshake; one that fails is logged on stderr and closed.
  static std::variant<std::unique_ptr<HttpServer>, std::string> Listen(
      const std::string& host, const std::string& port, HttpHandler handler, Limits limits,
      const TlsServerContext* tls = nullptr);
  static std::variant<std::unique_ptr<HttpServer>, std::string> Listen(const std::string& host,
                                                                       const std::string& port,
                                                                       HttpHandler handler) {
    return Listen(host, port, std::move(handler), Limits());
  }
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Starts the accept thread.
  void Start();
  // Stops accepting, ends every connection (a request already read is still answered, with
  // Connection: close) and joins all threads. Idempotent.
  void Stop();

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  HttpServer(int listen_fd, int port, HttpHandler handler, Limits limits,
             const TlsServerContext* tls)
      : listen_fd_(listen_fd),
        port_(port),
        handler_(std::move(handler)),
        limits_(limits),
        tls_(tls) {}
  void AcceptLoop();
  void Serve(Connection* conn);
  void ReapFinished();  // with mu_ held

  int listen_fd_;
  int port_;
  HttpHandler handler_;
  Limits limits_;
  const TlsServerContext* tls_;  // null: plaintext
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards connections_
  std::list<std::unique_ptr<Connection>> connections_;
};

}  // namespace zerotrace::otlp_sink
