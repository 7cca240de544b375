// conn_load: connection load for the bounded-memory and fault e2e tests, driven over stdin so
// that the test can start it (and name its pids to the agent) before any connection exists.
// It is two processes: the client, which reads the commands, and a server it forks, which
// answers on a loopback listener (each process then holds one end of each connection, within
// RLIMIT_NOFILE's hard limit). Its first line is "pids CLIENT SERVER".
//
// Commands, one per line; each answers with one line on stdout once it is done:
//   open N        N connections to its server, one HTTP/1.1 exchange on each, left open and
//                 idle                                              -> "opened N"
//   hold PORT N   N connections to 127.0.0.1:PORT that send nothing   -> "held N"
//   close         closes every open or held connection              -> "closed N"
//   churn N K     N short-lived connections in a row, each one exchange and then closed;
//                 every Kth speaks HTTP/1.1, the others a line of text -> "churned N"
//   http PORT C SECONDS PATH=SIZE...
//                 C keep-alive connections to 127.0.0.1:PORT request the paths in turn for
//                 SECONDS; a 200 whose body is not SIZE bytes is a mismatch
//                 -> "http requests R mismatches M errors E reconnects C"
//   exit
// Any failure prints "error ..." and exits 1. Both processes raise RLIMIT_NOFILE's soft limit.
// The server answers a request head ("GET ... \r\n\r\n") with a 3-byte 200 and any other line
// with "pong\n"; it closes its end when the client closes (clients close with RST: no
// TIME_WAIT socket is left behind, however many connections churn).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::printf("error %s: %s\n", what.c_str(), std::strerror(errno));
  std::fflush(stdout);
  std::exit(1);
}

void WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die("write");
    done += static_cast<size_t>(n);
  }
}

// Reads until `in` holds a complete HTTP message head plus Content-Length body bytes
// (responses), or just a head (requests). Returns false at EOF or on an error.
bool ReadHttpMessage(int fd, std::string* in, size_t* head_len, size_t* body_len) {
  char buf[16384];
  for (;;) {
    const size_t end = in->find("\r\n\r\n");
    if (end != std::string::npos) {
      *head_len = end + 4;
      *body_len = 0;
      const size_t cl = in->find("Content-Length: ");
      if (cl != std::string::npos && cl < end)
        *body_len = std::strtoul(in->c_str() + cl + 16, nullptr, 10);
      if (in->size() >= *head_len + *body_len) return true;
    }
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    in->append(buf, static_cast<size_t>(n));
  }
}

void ReadExactly(int fd, size_t len) {
  char buf[256];
  while (len > 0) {
    const ssize_t n = read(fd, buf, std::min(len, sizeof(buf)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die("read");
    len -= static_cast<size_t>(n);
  }
}

sockaddr_in Loopback(int port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  const sockaddr_in a = Loopback(port);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) Die("connect");
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Closes with RST: a short-lived connection leaves no TIME_WAIT socket behind.
void CloseAbortively(int fd) {
  const linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) Die("socket");
    sockaddr_in a = Loopback(0);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Die("bind");
    if (listen(fd_, 4096) != 0) Die("listen");
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  int port() const { return port_; }
  int fd() const { return fd_; }
  void Close() { close(fd_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// One connection to the server and one exchange on it: an HTTP/1.1 request for `path`, or a
// line of text. Returns the connection.
int Exchange(int port, bool http, const std::string& path) {
  const int fd = Connect(port);
  if (!http) {
    WriteAll(fd, "ping\n");
    ReadExactly(fd, 5);
    return fd;
  }
  WriteAll(fd, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::string in;
  size_t head = 0, body = 0;
  if (!ReadHttpMessage(fd, &in, &head, &body) || body != 3) Die("reading the response");
  return fd;
}

// The server process: answers every connection until the client process exits.
[[noreturn]] void Serve(int listener) {
  fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK);  // accept until EAGAIN
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) Die("epoll_create1");
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) Die("epoll_ctl");
  std::vector<std::string> pending;  // by fd: bytes of an unanswered request
  epoll_event ready[256];
  char buf[4096];
  for (;;) {
    const int n = epoll_wait(ep, ready, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Die("epoll_wait");
    for (int i = 0; i < n; i++) {
      const int fd = ready[i].data.fd;
      if (fd == listener) {
        for (;;) {
          const int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0 && (errno == EAGAIN || errno == EINTR)) break;
          if (c < 0) Die("accept4");
          epoll_event cev = {};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) Die("epoll_ctl");
          if (pending.size() <= static_cast<size_t>(c)) pending.resize(c + 1);
        }
        continue;
      }
      const ssize_t got = read(fd, buf, sizeof(buf));
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      std::string& in = pending[fd];
      if (got <= 0) {  // closed or reset by the client
        in.clear();
        close(fd);
        continue;
      }
      in.append(buf, static_cast<size_t>(got));
      for (;;) {
        if (in.rfind("GET ", 0) == 0) {
          const size_t end = in.find("\r\n\r\n");
          if (end == std::string::npos) break;
          in.erase(0, end + 4);
          WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
        } else {
          const size_t nl = in.find('\n');
          if (nl == std::string::npos) break;
          in.erase(0, nl + 1);
          WriteAll(fd, "pong\n");
        }
      }
    }
  }
}

// The soft limit up to the hard one; `want` more is an error (the test asked for too much).
void RaiseFdLimit(rlim_t want) {
  rlimit r = {};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &r) != 0) Die("setrlimit(RLIMIT_NOFILE)");
  if (r.rlim_max < want) {
    errno = EMFILE;
    Die("RLIMIT_NOFILE's hard limit is " + std::to_string(r.rlim_max));
  }
}

// `http` command: C keep-alive connections, one request in flight on each.
std::string HttpLoad(int port, int conns, double seconds,
                     const std::vector<std::pair<std::string, size_t>>& paths) {
  std::vector<int> fds;
  for (int i = 0; i < conns; i++) fds.push_back(Connect(port));
  std::vector<size_t> next(fds.size());
  for (size_t i = 0; i < next.size(); i++) next[i] = i % paths.size();
  uint64_t requests = 0, mismatches = 0, errors = 0, reconnects = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::string> ins(fds.size());
  while (std::chrono::steady_clock::now() < deadline) {
    for (size_t i = 0; i < fds.size(); i++) {
      WriteAll(fds[i], "GET " + paths[next[i]].first + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    }
    for (size_t i = 0; i < fds.size(); i++) {
      std::string& in = ins[i];
      size_t head = 0, body = 0;
      if (!ReadHttpMessage(fds[i], &in, &head, &body)) {
        // Closed before the response began: the server ends keep-alive connections after so
        // many requests (nginx: 1000). Closed inside a response: an error.
        (in.empty() ? reconnects : errors)++;
        close(fds[i]);
        fds[i] = Connect(port);
        in.clear();
        continue;
      }
      requests++;
      if (in.compare(0, 12, "HTTP/1.1 200") != 0 || body != paths[next[i]].second) mismatches++;
      in.erase(0, head + body);
      next[i] = (next[i] + 1) % paths.size();
    }
  }
  for (int fd : fds) close(fd);
  std::ostringstream out;
  out << "http requests " << requests << " mismatches " << mismatches << " errors " << errors
      << " reconnects " << reconnects;
  return out.str();
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  RaiseFdLimit(0);
  Listener listener;
  const pid_t client = getpid();
  const pid_t server = fork();
  if (server < 0) Die("fork");
  if (server == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != client) _exit(0);
    Serve(listener.fd());
  }
  listener.Close();
  std::printf("pids %d %d\n", client, server);
  std::vector<int> open;
  for (std::string line; std::getline(std::cin, line);) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "open") {
      size_t n = 0;
      in >> n;
      RaiseFdLimit(open.size() + n + 64);
      for (size_t i = 0; i < n; i++) {
        open.push_back(Exchange(listener.port(), true, "/idle/" + std::to_string(i)));
      }
      std::printf("opened %zu\n", n);
    } else if (cmd == "hold") {
      int port = 0;
      size_t n = 0;
      in >> port >> n;
      RaiseFdLimit(open.size() + n + 64);
      for (size_t i = 0; i < n; i++) open.push_back(Connect(port));
      std::printf("held %zu\n", n);
    } else if (cmd == "close") {
      for (int fd : open) CloseAbortively(fd);
      std::printf("closed %zu\n", open.size());
      open.clear();
    } else if (cmd == "churn") {
      size_t n = 0, every = 1;
      in >> n >> every;
      for (size_t i = 0; i < n; i++) {
        const bool http = every > 0 && i % every == 0;
        CloseAbortively(Exchange(listener.port(), http, "/churn/" + std::to_string(i)));
      }
      std::printf("churned %zu\n", n);
    } else if (cmd == "http") {
      int port = 0, conns = 0;
      double seconds = 0;
      in >> port >> conns >> seconds;
      std::vector<std::pair<std::string, size_t>> paths;
      for (std::string p; in >> p;) {
        const size_t eq = p.find('=');
        if (eq == std::string::npos) continue;
        paths.emplace_back(p.substr(0, eq), std::strtoul(p.c_str() + eq + 1, nullptr, 10));
      }
      if (paths.empty() || conns <= 0) {
        std::printf("error http: no paths or no connections\n");
        return 1;
      }
      std::printf("%s\n", HttpLoad(port, conns, seconds, paths).c_str());
    } else if (cmd == "exit") {
      return 0;
    } else if (!cmd.empty()) {
      std::printf("error unknown command %s\n", cmd.c_str());
      return 1;
    }
  }
  return 0;
}
