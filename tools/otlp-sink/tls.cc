// TLS with OpenSSL: one SSL_CTX for HTTP connections, the same PEM files handed to gRPC.
#include "tls.h"

#include <grpcpp/security/server_credentials.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

namespace zerotrace::otlp_sink {
namespace {

// The reasons in OpenSSL's error queue of this thread, root cause first ("no start line; PEM
// lib"); the queue is cleared so the next call starts afresh.
std::string OpenSslReason() {
  std::string out;
  while (const unsigned long err = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(err);
    char buf[256];
    if (reason == nullptr) {
      ERR_error_string_n(err, buf, sizeof(buf));
      reason = buf;
    }
    if (out.find(reason) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// The whole file into *out; false when it cannot be read (errno says why).
bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

// Why a handshake or read on `ssl` failed, after it returned `rc`.
std::string ConnectionError(SSL* ssl, int rc) {
  const int err = SSL_get_error(ssl, rc);
  if (err == SSL_ERROR_SSL) {
    const long verify = SSL_get_verify_result(ssl);
    std::string why = OpenSslReason();
    if (verify != X509_V_OK) why += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
    return why;
  }
  if (err == SSL_ERROR_SYSCALL) {
    ERR_clear_error();
    return errno != 0 ? std::strerror(errno) : "the client closed the connection";
  }
  if (err == SSL_ERROR_ZERO_RETURN) return "the client closed the connection";
  ERR_clear_error();
  return "SSL error " + std::to_string(err);
}

}  // namespace

std::variant<std::unique_ptr<TlsServerContext>, std::string> TlsServerContext::Load(
    const TlsFiles& files) {
  std::unique_ptr<TlsServerContext> c(new TlsServerContext());
  const struct {
    const char* flag;
    const std::string* path;
    std::string* pem;
  } inputs[] = {
      {"--tls-cert", &files.cert, &c->cert_pem_},
      {"--tls-key", &files.key, &c->key_pem_},
      {"--tls-client-ca", &files.client_ca, &c->client_ca_pem_},
  };
  for (const auto& in : inputs) {
    if (in.path->empty()) continue;
    if (!ReadFile(*in.path, in.pem)) {
      return std::string(in.flag) + " " + *in.path + ": cannot read it: " + std::strerror(errno);
    }
  }

  ERR_clear_error();
  c->ctx_ = SSL_CTX_new(TLS_server_method());
  if (c->ctx_ == nullptr) return "cannot create a TLS context: " + OpenSslReason();
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(c->ctx_, files.cert.c_str()) != 1) {
    return "--tls-cert " + files.cert + ": not a usable PEM certificate: " + OpenSslReason();
  }
  if (SSL_CTX_use_PrivateKey_file(c->ctx_, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return "--tls-key " + files.key + " does not match the certificate in --tls-cert " +
             files.cert;
    }
    return "--tls-key " + files.key + ": not a usable PEM private key: " + OpenSslReason();
  }
  if (SSL_CTX_check_private_key(c->ctx_) != 1) {
    return "--tls-key " + files.key + " does not match the certificate in --tls-cert " +
           files.cert + ": " + OpenSslReason();
  }
  if (!files.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(c->ctx_, files.client_ca.c_str(), nullptr) != 1) {
      return "--tls-client-ca " + files.client_ca +
             ": not a usable PEM CA certificate: " + OpenSslReason();
    }
    // Tells clients which CAs their certificate must come from.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca.c_str());
    if (names == nullptr) {
      return "--tls-client-ca " + files.client_ca + ": no CA certificate in it: " + OpenSslReason();
    }
    SSL_CTX_set_client_CA_list(c->ctx_, names);
    SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return c;
}

TlsServerContext::~TlsServerContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<grpc::ServerCredentials> TlsServerContext::GrpcCredentials() const {
  grpc::SslServerCredentialsOptions options(
      requires_client_cert() ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_root_certs = client_ca_pem_;
  options.pem_key_cert_pairs.push_back({key_pem_, cert_pem_});
  return grpc::SslServerCredentials(options);
}

std::variant<std::unique_ptr<TlsConnection>, std::string> TlsConnection::Accept(
    const TlsServerContext& context, int fd) {
  ERR_clear_error();
  SSL* ssl = SSL_new(context.ssl_ctx());
  if (ssl == nullptr) return "SSL_new: " + OpenSslReason();
  std::unique_ptr<TlsConnection> conn(new TlsConnection(ssl));
  if (SSL_set_fd(ssl, fd) != 1) return "SSL_set_fd: " + OpenSslReason();
  errno = 0;
  const int rc = SSL_accept(ssl);
  if (rc != 1) return ConnectionError(ssl, rc);
  return conn;
}

TlsConnection::~TlsConnection() { SSL_free(ssl_); }

size_t TlsConnection::Read(char* buf, size_t n) {
  for (;;) {
    errno = 0;
    const int rc = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
    if (rc > 0) return static_cast<size_t>(rc);
    const int err = SSL_get_error(ssl_, rc);
    ERR_clear_error();
    if (err == SSL_ERROR_SYSCALL && errno == EINTR) continue;
    return 0;
  }
}

bool TlsConnection::WriteAll(std::string_view data) {
  while (!data.empty()) {
    errno = 0;
    const int rc =
        SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), INT_MAX)));
    if (rc > 0) {
      data.remove_prefix(static_cast<size_t>(rc));
      continue;
    }
    const int err = SSL_get_error(ssl_, rc);
    ERR_clear_error();
    if (err == SSL_ERROR_SYSCALL && errno == EINTR) continue;
    return false;
  }
  return true;
}

void TlsConnection::Close() {
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

}  // namespace zerotrace::otlp_sink
