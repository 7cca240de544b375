// Server-side TLS for both listeners: the PEM files checked once, OpenSSL for HTTP, gRPC's own.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace zerotrace::otlp_sink {

struct TlsFiles {
  std::string cert;       // PEM: the server's certificate, then any intermediates
  std::string key;        // PEM: its private key
  std::string client_ca;  // PEM: CAs for client certificates; empty: none are asked for
};

class TlsServerContext {
 public:
  // Reads and checks the files (the key must match the certificate). Errors name the flag
  // (--tls-cert, --tls-key, --tls-client-ca), the file and what is wrong with it.
  static std::variant<std::unique_ptr<TlsServerContext>, std::string> Load(const TlsFiles& files);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // The same certificate, key and client policy for grpc::ServerBuilder.
  std::shared_ptr<grpc::ServerCredentials> GrpcCredentials() const;
  bool requires_client_cert() const { return !client_ca_pem_.empty(); }
  SSL_CTX* ssl_ctx() const { return ctx_; }

 private:
  TlsServerContext() = default;

  SSL_CTX* ctx_ = nullptr;
  std::string cert_pem_, key_pem_, client_ca_pem_;
};

// The server side of one TLS connection over a connected, blocking socket it does not own.
class TlsConnection {
 public:
  // Runs the handshake; why it failed otherwise (e.g. the client sent no certificate).
  static std::variant<std::unique_ptr<TlsConnection>, std::string> Accept(
      const TlsServerContext& context, int fd);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  // Plaintext bytes read into buf (at most n); 0 at the end of the stream or on an error.
  size_t Read(char* buf, size_t n);
  // False when the connection failed before everything was written.
  bool WriteAll(std::string_view data);
  // Sends close_notify (without waiting for the peer's).
  void Close();

 private:
  explicit TlsConnection(SSL* ssl) : ssl_(ssl) {}

  SSL* ssl_;
};

}  // namespace zerotrace::otlp_sink
