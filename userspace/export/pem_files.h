// The PEM files of the OTLP TLS settings, checked with OpenSSL when the agent starts.
#pragma once

#include <string>

#include "base/status.h"

namespace zerotrace::exporter {

// A setting naming a PEM file: `source` is the variable it came from, for error messages.
struct PemSetting {
  std::string source;
  std::string path;
};

// The file holds at least one PEM certificate (a CA bundle or a certificate chain).
Status CheckPemCertificates(const PemSetting& certs);

// `key` holds an unencrypted PEM private key, and it is the key of the first certificate in
// `cert`: a client certificate and key that belong together.
Status CheckPemKeyPair(const PemSetting& key, const PemSetting& cert);

}  // namespace zerotrace::exporter
