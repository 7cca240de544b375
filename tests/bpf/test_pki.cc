// MakeTestPki: one shell script of openssl commands, with an extensions file of its own so the
// machine's openssl.cnf does not matter.
#include "test_pki.h"

#include <filesystem>
#include <fstream>

#include "subprocess.h"

namespace zerotrace::testing {
namespace {

constexpr char kExtensions[] = R"([req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
)";

}  // namespace

::testing::AssertionResult MakeTestPki(const std::string& dir, const std::string& name,
                                       TestPki* out) {
  const std::string d = dir + "/" + name;
  std::error_code ec;
  std::filesystem::create_directories(d, ec);
  if (ec) return ::testing::AssertionFailure() << "cannot create " << d << ": " << ec.message();
  std::ofstream(d + "/ext.cnf") << kExtensions;
  const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::string script = "set -e; cd '" + d + "'\n" + "openssl req -x509" + key +
                       " -keyout ca.key -out ca.pem -days 2" + " -subj '/CN=zerotrace test CA " +
                       name + "' -config ext.cnf -extensions ca\n";
  for (const char* leaf : {"server", "client"}) {
    const std::string l = leaf;
    script += "openssl req -new" + key + " -keyout " + l + ".key -out " + l +
              ".csr -subj '/CN=" + l + "' -config ext.cnf\n" + "openssl x509 -req -in " + l +
              ".csr -CA ca.pem -CAkey ca.key -set_serial 0x$(openssl rand -hex 8) -days 2" +
              " -extfile ext.cnf -extensions " + l + " -out " + l + ".pem\n";
  }
  Subprocess p({"/bin/sh", "-c", "exec 2>&1\n" + script});
  std::string output;
  while (auto line = p.ReadLine(std::chrono::seconds(30))) output += *line + "\n";
  const int rc = p.Wait(std::chrono::seconds(30));
  if (rc != 0) {
    return ::testing::AssertionFailure() << "openssl failed (exit " << rc << "):\n" << output;
  }
  *out = TestPki{d + "/ca.pem",     d + "/ca.key",     d + "/server.pem",
                 d + "/server.key", d + "/client.pem", d + "/client.key"};
  return ::testing::AssertionSuccess();
}

}  // namespace zerotrace::testing
