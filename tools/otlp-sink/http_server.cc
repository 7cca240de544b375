// HttpServer: blocking sockets; the connection thread owns parsing, the server owns the fds.
#include "http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace zerotrace::otlp_sink {
namespace {

constexpr int kSendTimeoutSeconds = 30;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const char* Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 499:
      return "Client Closed Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ParseSize(std::string_view s, int base, size_t* out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// One connection's bytes: the socket itself, or TLS over it.
class ConnectionIo {
 public:
  ConnectionIo(int fd, std::unique_ptr<TlsConnection> tls) : fd_(fd), tls_(std::move(tls)) {}

  // Bytes read into buf; 0 at EOF or on error.
  size_t Read(char* buf, size_t n) {
    if (tls_) return tls_->Read(buf, n);
    for (;;) {
      const ssize_t got = recv(fd_, buf, n, 0);
      if (got < 0 && errno == EINTR) continue;
      return got > 0 ? static_cast<size_t>(got) : 0;
    }
  }
  bool WriteAll(std::string_view data) { return tls_ ? tls_->WriteAll(data) : SendAll(fd_, data); }
  // No more writes: the peer sees the end of the stream now.
  void CloseWrite() {
    if (tls_) tls_->Close();
    shutdown(fd_, SHUT_WR);
  }

 private:
  int fd_;
  std::unique_ptr<TlsConnection> tls_;  // null: plaintext
};

// Buffered reads from one connection; bytes past the current request stay for the next one.
class ConnectionReader {
 public:
  explicit ConnectionReader(ConnectionIo* io) : io_(io) {}

  std::string& buffer() { return buffer_; }
  // Appends what the connection has; false at EOF or on error.
  bool ReadMore() {
    char chunk[16 * 1024];
    const size_t n = io_->Read(chunk, sizeof(chunk));
    if (n == 0) return false;
    buffer_.append(chunk, n);
    return true;
  }
  // Reads until `delim` is buffered; returns its offset, or npos at EOF or past `limit` bytes.
  size_t ReadUntil(std::string_view delim, size_t limit) {
    size_t from = 0;
    for (;;) {
      const size_t at = buffer_.find(delim, from);
      if (at != std::string::npos) return at;
      if (buffer_.size() > limit) return std::string::npos;
      from = buffer_.size() >= delim.size() ? buffer_.size() - delim.size() + 1 : 0;
      if (!ReadMore()) return std::string::npos;
    }
  }
  // Moves n bytes from the connection to *out; false at EOF.
  bool Take(size_t n, std::string* out) {
    while (buffer_.size() < n) {
      if (!ReadMore()) return false;
    }
    out->append(buffer_, 0, n);
    buffer_.erase(0, n);
    return true;
  }

 private:
  ConnectionIo* io_;
  std::string buffer_;
};

enum class BodyResult { kOk, kTooLarge, kMalformed, kEof };

// A chunked body (RFC 9112 7.1): sizes in hex, extensions and trailers ignored.
BodyResult ReadChunked(ConnectionReader& r, size_t max_body, std::string* body) {
  constexpr size_t kMaxLine = 4096;
  for (;;) {
    const size_t eol = r.ReadUntil("\r\n", kMaxLine);
    if (eol == std::string::npos) return BodyResult::kEof;
    std::string_view line(r.buffer().data(), eol);
    line = Trim(line.substr(0, line.find(';')));
    size_t size = 0;
    if (!ParseSize(line, 16, &size)) return BodyResult::kMalformed;
    r.buffer().erase(0, eol + 2);
    if (size == 0) break;
    if (size > max_body - body->size()) return BodyResult::kTooLarge;
    std::string crlf;
    if (!r.Take(size, body) || !r.Take(2, &crlf)) return BodyResult::kEof;
    if (crlf != "\r\n") return BodyResult::kMalformed;
  }
  for (;;) {  // trailer section, ended by an empty line
    const size_t eol = r.ReadUntil("\r\n", kMaxLine);
    if (eol == std::string::npos) return BodyResult::kEof;
    r.buffer().erase(0, eol + 2);
    if (eol == 0) return BodyResult::kOk;
  }
}

// Parses the request line and header fields of `head` (without the final CRLF CRLF).
bool ParseHead(std::string_view head, HttpRequest* req) {
  while (head.substr(0, 2) == "\r\n") head.remove_prefix(2);
  size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  req->method = std::string(line.substr(0, sp1));
  req->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  req->version = std::string(line.substr(sp2 + 1));
  if (req->version.rfind("HTTP/1.", 0) != 0 || req->target.empty()) return false;
  while (eol != std::string_view::npos) {
    const size_t start = eol + 2;
    eol = head.find("\r\n", start);
    const std::string_view field =
        head.substr(start, eol == std::string_view::npos ? eol : eol - start);
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    const std::string_view name = field.substr(0, colon);
    if (name.find_first_of(" \t") != std::string_view::npos) return false;
    req->headers.emplace_back(Lower(name), std::string(Trim(field.substr(colon + 1))));
  }
  return true;
}

std::string FormatResponse(const HttpResponse& resp, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + Reason(resp.status) + "\r\n";
  for (const auto& [name, value] : resp.headers) out += name + ": " + value + "\r\n";
  out += "Content-Length: " + std::to_string(resp.body.size()) + "\r\n";
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out += resp.body;
  return out;
}

HttpResponse PlainResponse(int status, std::string text) {
  HttpResponse resp;
  resp.status = status;
  resp.headers.emplace_back("Content-Type", "text/plain");
  resp.body = std::move(text) + "\n";
  return resp;
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::variant<std::unique_ptr<HttpServer>, std::string> HttpServer::Listen(
    const std::string& host, const std::string& port, HttpHandler handler, Limits limits,
    const TlsServerContext* tls) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addrs = nullptr;
  const int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &addrs);
  if (gai != 0) return "cannot resolve " + host + ":" + port + ": " + gai_strerror(gai);
  std::string error = "no address for " + host + ":" + port;
  int fd = -1;
  for (addrinfo* a = addrs; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 128) != 0) {
      error = "cannot listen on " + host + ":" + port + ": " + std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(addrs);
  if (fd < 0) return error;
  sockaddr_storage bound = {};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const int bound_port = bound.ss_family == AF_INET6
                             ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                             : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return std::unique_ptr<HttpServer>(
      new HttpServer(fd, bound_port, std::move(handler), limits, tls));
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Start() {
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  // shutdown() wakes a thread blocked in accept() (it returns EINVAL); close() would not.
  shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  close(listen_fd_);
  std::list<std::unique_ptr<Connection>> connections;
  {
    std::lock_guard lock(mu_);
    connections.swap(connections_);
  }
  // SHUT_RD wakes threads waiting for a request; one being answered still sends its response.
  for (auto& conn : connections) shutdown(conn->fd, SHUT_RD);
  for (auto& conn : connections) {
    conn->thread.join();
    close(conn->fd);
  }
}

void HttpServer::AcceptLoop() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (stopping_) {
      if (fd >= 0) close(fd);
      return;
    }
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // let connections finish
      }
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const timeval send_timeout = {kSendTimeoutSeconds, 0};  // a client that never reads
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
    std::lock_guard lock(mu_);
    ReapFinished();
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    Connection* raw = conn.get();
    connections_.push_back(std::move(conn));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void HttpServer::ReapFinished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      close((*it)->fd);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpServer::Serve(Connection* conn) {
  const int fd = conn->fd;
  std::unique_ptr<TlsConnection> tls;
  if (tls_ != nullptr) {
    auto accepted = TlsConnection::Accept(*tls_, fd);
    if (auto* error = std::get_if<std::string>(&accepted)) {
      if (!stopping_)
        std::fprintf(stderr, "otlp-sink: http: TLS handshake failed: %s\n", error->c_str());
      shutdown(fd, SHUT_WR);
      conn->done = true;
      return;
    }
    tls = std::move(std::get<std::unique_ptr<TlsConnection>>(accepted));
  }
  ConnectionIo io(fd, std::move(tls));
  ConnectionReader reader(&io);
  const std::function<bool()> client_gone = [this, fd] {
    pollfd p = {fd, POLLRDHUP, 0};
    const bool hung_up = poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    // Stop()'s own SHUT_RD also reads as a hang-up; it comes after stopping_ is set.
    return hung_up && !stopping_;
  };
  auto fail = [&](int status, std::string text) {
    io.WriteAll(FormatResponse(PlainResponse(status, std::move(text)), /*keep_alive=*/false));
  };
  while (!stopping_) {
    // Empty lines before a request line are allowed (RFC 9112 2.2).
    while (reader.buffer().rfind("\r\n", 0) == 0) reader.buffer().erase(0, 2);
    const size_t head_end = reader.ReadUntil("\r\n\r\n", limits_.max_header_bytes);
    if (head_end == std::string::npos) {
      if (reader.buffer().size() > limits_.max_header_bytes) fail(431, "header section too large");
      break;
    }
    HttpRequest req;
    const bool parsed = ParseHead(std::string_view(reader.buffer()).substr(0, head_end), &req);
    reader.buffer().erase(0, head_end + 4);
    if (!parsed) {
      fail(400, "malformed request head");
      break;
    }
    const std::string* connection = req.Header("connection");
    const std::string connection_lower = connection ? Lower(*connection) : "";
    const bool keep_alive = req.version == "HTTP/1.0"
                                ? connection_lower.find("keep-alive") != std::string::npos
                                : connection_lower.find("close") == std::string::npos;

    const std::string* te = req.Header("transfer-encoding");
    const std::string* cl = req.Header("content-length");
    const bool chunked = te != nullptr && Lower(*te).find("chunked") != std::string::npos;
    size_t length = 0;
    if (!chunked && cl != nullptr && !ParseSize(*cl, 10, &length)) {
      fail(400, "bad Content-Length");
      break;
    }
    if (!chunked && length > limits_.max_body_bytes) {
      fail(413, "body larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
      break;
    }
    const std::string* expect = req.Header("expect");
    if (expect != nullptr && Lower(*expect) == "100-continue" && (chunked || length > 0)) {
      if (!io.WriteAll("HTTP/1.1 100 Continue\r\n\r\n")) break;
    }
    BodyResult body = BodyResult::kOk;
    if (chunked) {
      body = ReadChunked(reader, limits_.max_body_bytes, &req.body);
    } else if (!reader.Take(length, &req.body)) {
      body = BodyResult::kEof;
    }
    if (body == BodyResult::kTooLarge) {
      fail(413, "body larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
      break;
    }
    if (body == BodyResult::kMalformed) {
      fail(400, "malformed chunked body");
      break;
    }
    if (body == BodyResult::kEof) break;

    const HttpResponse resp = handler_(req, client_gone);
    if (!io.WriteAll(FormatResponse(resp, keep_alive && !stopping_)) || !keep_alive) break;
  }
  io.CloseWrite();  // the peer sees the end now; the fd is closed when reaped
  conn->done = true;
}

}  // namespace zerotrace::otlp_sink
