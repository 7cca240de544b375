// PEM checks with OpenSSL's PEM readers; passphrases are never asked for.
#include "export/pem_files.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

namespace zerotrace::exporter {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// An encrypted key fails to load instead of prompting on the terminal.
int NoPassphrase(char*, int, int, void*) { return -1; }

std::string Quoted(const PemSetting& s) { return s.source + ": '" + s.path + "'"; }

// The first certificate in the file, or null.
X509Ptr FirstCertificate(const PemSetting& s) {
  BioPtr bio(BIO_new_file(s.path.c_str(), "r"));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  ERR_clear_error();
  return cert;
}

}  // namespace

Status CheckPemCertificates(const PemSetting& certs) {
  if (!FirstCertificate(certs)) {
    return Status::Error(Quoted(certs) + " holds no PEM certificate");
  }
  return Status::Ok();
}

Status CheckPemKeyPair(const PemSetting& key, const PemSetting& cert) {
  BioPtr bio(BIO_new_file(key.path.c_str(), "r"));
  PkeyPtr pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  ERR_clear_error();
  if (!pkey) return Status::Error(Quoted(key) + " holds no unencrypted PEM private key");
  X509Ptr x509 = FirstCertificate(cert);
  if (!x509) return Status::Error(Quoted(cert) + " holds no PEM certificate");
  const bool match = X509_check_private_key(x509.get(), pkey.get()) == 1;
  ERR_clear_error();
  if (!match) {
    return Status::Error(Quoted(key) + " is not the private key of the certificate in " +
                         cert.source + " ('" + cert.path + "')");
  }
  return Status::Ok();
}

}  // namespace zerotrace::exporter
