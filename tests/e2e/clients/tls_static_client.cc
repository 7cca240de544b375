// An HTTPS client with OpenSSL linked in statically: SSL_write/SSL_read live in this executable
// (its symbol table), not in libssl.so. Sends GET /items/0..N-1 on one keep-alive connection.
//
// Usage: tls_static_client PORT CAFILE N [--wait-go]
// Prints "local_port P" once connected (and, with --wait-go, waits for a line on stdin before
// the first request), then "STATUS BODY_BYTES" per response, then "done". Exits 1 on error.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace {

int Fail(const char* what) {
  std::fprintf(stderr, "tls_static_client: %s\n", what);
  ERR_print_errors_fp(stderr);
  return 1;
}

// Reads one response (head + Content-Length body); returns false on error.
bool ReadResponse(SSL* ssl, std::string* buffer, int* status, size_t* body) {
  size_t head_end;
  char chunk[16384];
  while ((head_end = buffer->find("\r\n\r\n")) == std::string::npos) {
    const int n = SSL_read(ssl, chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer->append(chunk, n);
  }
  *status = std::atoi(buffer->c_str() + 9);  // "HTTP/1.1 200"
  const size_t cl = buffer->find("Content-Length: ");
  if (cl == std::string::npos || cl > head_end) return false;
  *body = std::strtoul(buffer->c_str() + cl + 16, nullptr, 10);
  const size_t total = head_end + 4 + *body;
  while (buffer->size() < total) {
    const int n = SSL_read(ssl, chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer->append(chunk, n);
  }
  buffer->erase(0, total);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return Fail("usage: tls_static_client PORT CAFILE N [--wait-go]");
  const int port = std::atoi(argv[1]);
  const int n = std::atoi(argv[3]);
  const bool wait_go = argc > 4 && std::strcmp(argv[4], "--wait-go") == 0;

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[2], nullptr) != 1)
    return Fail("loading the CA file failed");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);

  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return Fail("connect failed");
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set1_host(ssl, "127.0.0.1");
  if (SSL_connect(ssl) != 1) return Fail("handshake failed");
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("local_port %d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  if (wait_go) {
    std::string line;
    std::getline(std::cin, line);
  }

  std::string buffer;
  for (int i = 0; i < n; i++) {
    const std::string req = "GET /items/" + std::to_string(i) +
                            " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                            "\r\nUser-Agent: zt-static-tls/1.0\r\n\r\n";
    if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) != static_cast<int>(req.size()))
      return Fail("SSL_write failed");
    int status = 0;
    size_t body = 0;
    if (!ReadResponse(ssl, &buffer, &status, &body)) return Fail("bad response");
    std::printf("%d %zu\n", status, body);
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  std::printf("done\n");
  return 0;
}
