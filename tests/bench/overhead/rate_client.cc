// zt-rate-client: an open-loop HTTP/1.1 load generator at a fixed request rate on keep-alive
// connections (wrk2 is not in Debian). Latency counts from when a request was due, so a
// stalled server cannot hide its queueing (no coordinated omission).
//
//   zt-rate-client --port 8080 --rate 10000 --duration 10 --connections 32
//                  --path /f/0.txt=100 --path /f/1.txt=137
//
// Each --path PATH=SIZE is requested in turn; a 200 response whose body is not SIZE bytes
// counts as a mismatch. --tls speaks HTTPS through the system's OpenSSL (libssl.so, which
// the agent's TLS uprobes trace; the server's certificate is not verified). Prints one JSON
// object with the results on stdout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  double rate = 1000;
  double duration_s = 10;
  int connections = 32;
  bool tls = false;
  std::vector<std::pair<std::string, int64_t>> paths;  // path, expected body size (-1: any)
};

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;  // --tls
  bool busy = false;
  size_t path_index = 0;
  Clock::time_point due;  // when the request in flight was scheduled
  std::string in;         // bytes of the response so far
};

struct Results {
  uint64_t sent = 0, completed = 0, non_200 = 0, size_mismatch = 0, io_errors = 0;
  uint64_t max_backlog = 0;
  std::vector<uint32_t> latency_us;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "zt-rate-client: %s\nusage: zt-rate-client --port P [--host 127.0.0.1] "
               "[--rate N/s] [--duration S] [--connections C] [--tls] --path PATH[=SIZE]...\n",
               why);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--tls") {
      o.tls = true;
      continue;
    }
    if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
    const char* v = argv[++i];
    if (a == "--host") {
      o.host = v;
    } else if (a == "--port") {
      o.port = std::atoi(v);
    } else if (a == "--rate") {
      o.rate = std::atof(v);
    } else if (a == "--duration") {
      o.duration_s = std::atof(v);
    } else if (a == "--connections") {
      o.connections = std::atoi(v);
    } else if (a == "--path") {
      const std::string p = v;
      const size_t eq = p.find('=');
      o.paths.emplace_back(p.substr(0, eq),
                           eq == std::string::npos ? -1 : std::atoll(p.c_str() + eq + 1));
    } else {
      Usage(("unknown flag " + a).c_str());
    }
  }
  if (o.port <= 0 || o.rate <= 0 || o.duration_s <= 0 || o.connections <= 0 || o.paths.empty())
    Usage("--port, --path and positive --rate/--duration/--connections are required");
  return o;
}

int Connect(const Options& o) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::perror("zt-rate-client: connect");
    std::exit(1);
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// The TLS handshake on the still blocking socket; the caller then makes it non-blocking.
SSL* Handshake(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
    std::fprintf(stderr, "zt-rate-client: TLS handshake failed\n");
    ERR_print_errors_fp(stderr);
    std::exit(1);
  }
  return ssl;
}

ssize_t SendAll(Conn& c, const std::string& bytes) {
  if (c.ssl == nullptr) return send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  const int n = SSL_write(c.ssl, bytes.data(), static_cast<int>(bytes.size()));
  return n > 0 ? n : -1;
}

// > 0: bytes read; 0: nothing more now; < 0: the connection failed or closed.
ssize_t ReadSome(Conn& c, char* buf, size_t size) {
  if (c.ssl == nullptr) {
    const ssize_t k = recv(c.fd, buf, size, 0);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return k > 0 ? k : -1;
  }
  const int k = SSL_read(c.ssl, buf, static_cast<int>(size));
  if (k > 0) return k;
  const int err = SSL_get_error(c.ssl, k);
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

// Case-insensitive search for a header's value in a response head.
std::string_view Header(std::string_view head, std::string_view name) {
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const size_t start = pos + 2;
    const size_t end = head.find("\r\n", start);
    const std::string_view line = head.substr(start, end - start);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        std::equal(name.begin(), name.end(), line.begin(),
                   [](char x, char y) { return std::tolower(x) == std::tolower(y); })) {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return v;
    }
    pos = end;
  }
  return {};
}

// Whether c.in holds one complete response; if so, consumes it and records the outcome.
bool TakeResponse(Conn& c, const Options& o, Results& r, Clock::time_point now) {
  const size_t head_end = c.in.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  const std::string_view head(c.in.data(), head_end + 2);
  const std::string_view length = Header(head, "content-length");
  const size_t body = length.empty() ? 0 : std::strtoull(std::string(length).c_str(), nullptr, 10);
  if (c.in.size() < head_end + 4 + body) return false;
  const int status = head.size() > 12 ? std::atoi(std::string(head.substr(9, 3)).c_str()) : 0;
  if (status != 200) {
    r.non_200++;
  } else if (o.paths[c.path_index].second >= 0 &&
             static_cast<int64_t>(body) != o.paths[c.path_index].second) {
    r.size_mismatch++;
  }
  r.completed++;
  r.latency_us.push_back(static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now - c.due).count()));
  c.in.erase(0, head_end + 4 + body);
  c.busy = false;
  return true;
}

uint32_t Percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  std::vector<std::string> requests;
  for (const auto& [path, size] : o.paths) {
    requests.push_back("GET " + path + " HTTP/1.1\r\nHost: " + o.host +
                       "\r\nUser-Agent: zt-rate-client\r\nAccept: */*\r\n\r\n");
  }
  SSL_CTX* ctx = nullptr;
  if (o.tls) {
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(static_cast<size_t>(o.connections));
  for (size_t i = 0; i < conns.size(); i++) {
    conns[i].fd = Connect(o);
    if (ctx != nullptr) conns[i].ssl = Handshake(ctx, conns[i].fd);
    fcntl(conns[i].fd, F_SETFL, fcntl(conns[i].fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  Results r;
  r.latency_us.reserve(static_cast<size_t>(o.rate * o.duration_s) + 16);
  std::deque<Clock::time_point> backlog;  // due requests no connection was free for
  std::vector<size_t> idle;
  for (size_t i = conns.size(); i-- > 0;) idle.push_back(i);
  const Clock::time_point start = Clock::now();
  const auto interval = std::chrono::duration<double>(1.0 / o.rate);
  const uint64_t total = static_cast<uint64_t>(o.rate * o.duration_s);
  uint64_t scheduled = 0;
  size_t next_path = 0;
  epoll_event events[64];
  char buf[65536];
  for (;;) {
    const Clock::time_point now = Clock::now();
    while (scheduled < total) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   interval * static_cast<double>(scheduled));
      if (due > now) break;
      backlog.push_back(due);
      scheduled++;
    }
    r.max_backlog = std::max<uint64_t>(r.max_backlog, backlog.size());
    while (!backlog.empty() && !idle.empty()) {
      Conn& c = conns[idle.back()];
      idle.pop_back();
      c.busy = true;
      c.due = backlog.front();
      backlog.pop_front();
      c.path_index = next_path;
      next_path = (next_path + 1) % requests.size();
      const std::string& req = requests[c.path_index];
      if (SendAll(c, req) != static_cast<ssize_t>(req.size())) {
        r.io_errors++;  // a full socket buffer cannot happen with one request in flight
      }
      r.sent++;
    }
    if (scheduled >= total && backlog.empty() && idle.size() == conns.size()) break;
    if (now - start > std::chrono::duration<double>(o.duration_s + 10)) break;  // server stuck
    // Sleep until the next request is due (nanosecond timeout: no spinning, no batching)
    // or a response arrives.
    timespec timeout = {0, 100'000'000};
    if (scheduled < total) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   interval * static_cast<double>(scheduled));
      const int64_t ns = std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::nanoseconds>(due - now).count());
      timeout = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    }
    const int n = epoll_pwait2(ep, events, 64, &timeout, nullptr);
    const Clock::time_point got = Clock::now();
    for (int i = 0; i < n; i++) {
      Conn& c = conns[events[i].data.u64];
      for (;;) {
        const ssize_t k = ReadSome(c, buf, sizeof(buf));
        if (k > 0) {
          c.in.append(buf, static_cast<size_t>(k));
          continue;
        }
        if (k == 0) break;
        std::fprintf(stderr, "zt-rate-client: connection closed by the server\n");
        r.io_errors++;
        return 1;
      }
      if (c.busy && TakeResponse(c, o, r, got)) idle.push_back(events[i].data.u64);
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const uint32_t p50 = Percentile(r.latency_us, 0.50);
  const uint32_t p99 = Percentile(r.latency_us, 0.99);
  const uint32_t p999 = Percentile(r.latency_us, 0.999);
  std::printf(
      "{\"sent\": %llu, \"completed\": %llu, \"non_200\": %llu, \"size_mismatch\": %llu, "
      "\"io_errors\": %llu, \"elapsed_s\": %.3f, \"achieved_rate\": %.1f, \"p50_us\": %u, "
      "\"p99_us\": %u, \"p999_us\": %u, \"max_backlog\": %llu}\n",
      static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.completed),
      static_cast<unsigned long long>(r.non_200), static_cast<unsigned long long>(r.size_mismatch),
      static_cast<unsigned long long>(r.io_errors), elapsed,
      static_cast<double>(r.completed) / elapsed, p50, p99, p999,
      static_cast<unsigned long long>(r.max_backlog));
  for (auto& c : conns) {
    if (c.ssl != nullptr) SSL_free(c.ssl);
    close(c.fd);
  }
  if (ctx != nullptr) SSL_CTX_free(ctx);
  return r.completed == r.sent && r.io_errors == 0 ? 0 : 1;
}
