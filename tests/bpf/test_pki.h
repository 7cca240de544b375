// Certificates for TLS tests, made with the openssl CLI in the test's own directory.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace zerotrace::testing {

// PEM files: a CA, a server certificate for 127.0.0.1 and localhost (subjectAltName
// IP:127.0.0.1, DNS:localhost) and a client certificate, both issued by that CA. EC P-256
// keys, unencrypted; valid for two days.
struct TestPki {
  std::string ca_cert, ca_key;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
};

// Makes a new CA and its certificates under dir/name/ (created). Two calls make two unrelated
// CAs. Fails with openssl's output.
::testing::AssertionResult MakeTestPki(const std::string& dir, const std::string& name,
                                       TestPki* out);

}  // namespace zerotrace::testing
