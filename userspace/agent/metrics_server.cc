// MetricsServer: non-blocking sockets, one poll() over the listener, an eventfd and every client.
#include "agent/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/prom_text.h"

namespace zerotrace::agent {
namespace {

constexpr size_t kMaxRequestHead = 8192;
// After the response: how long the client may take to close (reading its close avoids a
// reset that could destroy the response in flight).
constexpr std::chrono::milliseconds kLingerDeadline{1000};

std::string Response(const char* status, const char* content_type, const std::string& body,
                     bool head_only, const char* extra_headers = "") {
  std::string out = std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + content_type +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n" + extra_headers + "\r\n";
  if (!head_only) out += body;
  return out;
}

}  // namespace

StatusOr<ListenAddress> ParseListenAddress(std::string_view address) {
  const auto bad = [&](const char* why) {
    return Status::Error("--metrics-addr " + std::string(address) + ": " + why +
                         " (want HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464)");
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = address.substr(0, colon);
  const std::string_view port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos) {
    return bad("the port is not a number");
  }
  const unsigned long p = std::stoul(std::string(port));
  if (p > 65535) return bad("the port is above 65535");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != host.npos) {
    return bad("an IPv6 address needs brackets");
  }
  return ListenAddress{std::string(host), static_cast<uint16_t>(p)};
}

std::string MetricsResponse(std::string_view request_head,
                            const std::function<std::string()>& body) {
  const size_t eol = request_head.find("\r\n");
  const std::string_view line = request_head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == line.npos ? line.npos : line.find(' ', sp1 + 1);
  if (sp2 == line.npos || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
    return Response("400 Bad Request", "text/plain", "bad request\n", false);
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  if (target != "/metrics") return Response("404 Not Found", "text/plain", "try /metrics\n", false);
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    return Response("405 Method Not Allowed", "text/plain", "GET only\n", false,
                    "Allow: GET, HEAD\r\n");
  }
  return Response("200 OK", kPromContentType, body(), head);
}

StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Listen(std::string_view address) {
  auto parsed = ParseListenAddress(address);
  if (!parsed.ok()) return parsed.status();
  const ListenAddress& a = *parsed;
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(a.port);
  const int gai =
      getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0) {
    return Status::Error("--metrics-addr " + std::string(address) + ": cannot resolve \"" + a.host +
                         "\": " + gai_strerror(gai));
  }
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr && s->listen_fd_ < 0; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, static_cast<int>(kMaxConnections)) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
      last_error = std::strerror(errno);
      if (errno == EADDRINUSE) last_error += " (another process listens on this port)";
      close(fd);
      continue;
    }
    s->listen_fd_ = fd;
  }
  freeaddrinfo(found);
  if (s->listen_fd_ < 0) {
    return Status::Error("--metrics-addr " + std::string(address) +
                         ": cannot listen: " + last_error);
  }
  sockaddr_storage bound = {};
  socklen_t len = sizeof(bound);
  getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  s->host_ = a.host.empty() ? "0.0.0.0" : a.host;
  s->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd_ < 0) return Status::Error(std::string("eventfd: ") + std::strerror(errno));
  return s;
}

MetricsServer::~MetricsServer() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

std::string MetricsServer::url() const {
  const bool v6 = host_.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_) + "/metrics";
}

void MetricsServer::Start(BodyFn body) {
  body_ = std::move(body);
  thread_ = std::thread([this] { Run(); });
}

void MetricsServer::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (listen_fd_ >= 0) close(listen_fd_);  // later connections are refused, not left waiting
  listen_fd_ = -1;
}

void MetricsServer::Run() {
  std::vector<pollfd> fds;
  for (;;) {
    auto now = Clock::now();
    // Whole-connection deadlines: a client that trickles is cut off however often it sends.
    std::erase_if(conns_, [now](const Conn& c) {
      if (now < c.deadline) return false;
      close(c.fd);
      return true;
    });
    auto wake = Clock::time_point::max();
    for (const Conn& c : conns_) wake = std::min(wake, c.deadline);
    const int timeout_ms =
        wake == Clock::time_point::max()
            ? -1
            : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wake - now).count());
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    // At the connection cap the listener is not polled: the rest wait in its backlog.
    fds.push_back({conns_.size() < kMaxConnections ? listen_fd_ : -1, POLLIN, 0});
    for (const Conn& c : conns_) {
      const bool writing = !c.response.empty() && !c.draining;
      fds.push_back({c.fd, static_cast<short>(writing ? POLLOUT : POLLIN), 0});
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) break;
    // Clients first (fds[2 + i] is conns_[i]); new ones are appended after.
    size_t kept = 0;
    for (size_t i = 0; i < conns_.size(); i++) {
      Conn& c = conns_[i];
      const short revents = fds[2 + i].revents;
      if (revents != 0 && !OnReady(c, revents)) {
        close(c.fd);
        continue;
      }
      if (kept != i) conns_[kept] = std::move(c);
      kept++;
    }
    conns_.resize(kept);
    if (fds[1].revents & POLLIN) AcceptAll();
  }
  for (const Conn& c : conns_) close(c.fd);
  conns_.clear();
}

void MetricsServer::AcceptAll() {
  while (conns_.size() < kMaxConnections) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN: none left; or a client already gone
    Conn c;
    c.fd = fd;
    c.deadline = Clock::now() + kHeadDeadline;
    conns_.push_back(std::move(c));
  }
}

bool MetricsServer::OnReady(Conn& c, short revents) {
  char buf[2048];
  if (c.draining) {
    // Discards what the client still sends until it closes.
    for (;;) {
      const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) continue;
      return n < 0 && (errno == EAGAIN || errno == EINTR);
    }
  }
  if (!c.response.empty()) return WriteResponse(c);
  if (revents & (POLLERR | POLLHUP | POLLNVAL) && !(revents & POLLIN)) return false;
  for (;;) {
    const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;  // the rest of the head later
    if (n <= 0) return false;                   // closed before its head was complete
    c.head.append(buf, static_cast<size_t>(n));
    if (c.head.find("\r\n\r\n") != std::string::npos) {
      c.response = MetricsResponse(c.head, body_);
    } else if (c.head.size() > kMaxRequestHead) {
      c.response = Response("431 Request Header Fields Too Large", "text/plain", "", false);
    } else {
      continue;
    }
    c.deadline = Clock::now() + kResponseDeadline;
    return WriteResponse(c);
  }
}

bool MetricsServer::WriteResponse(Conn& c) {
  while (c.sent < c.response.size()) {
    const ssize_t n =
        send(c.fd, c.response.data() + c.sent, c.response.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;  // the socket buffer is full: more later
    if (n <= 0) return false;
    c.sent += static_cast<size_t>(n);
  }
  shutdown(c.fd, SHUT_WR);
  c.draining = true;
  c.deadline = std::min(c.deadline, Clock::now() + kLingerDeadline);
  return true;
}

}  // namespace zerotrace::agent
