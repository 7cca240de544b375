// PgServer: initdb and postgres through setpriv (they refuse to run as root).
#include "pg_server.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "test_pki.h"

namespace zerotrace::e2e {
namespace {

using namespace std::chrono_literals;
constexpr char kBin[] = "/usr/lib/postgresql/15/bin/";

std::vector<std::string> AsPostgres(std::vector<std::string> argv) {
  std::vector<std::string> out = {"setpriv", "--reuid=postgres", "--regid=postgres",
                                  "--init-groups", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

bool Chown(const std::string& path) {
  const passwd* pw = getpwnam("postgres");
  return pw && chown(path.c_str(), pw->pw_uid, pw->pw_gid) == 0;
}

}  // namespace

PgServer::PgServer(int port, bool tls) : port_(port), tls_(tls) {
  chmod(dir_.path().c_str(), 0755);
  data_ = dir_.path() + "/data";
  mkdir(data_.c_str(), 0700);
  if (!Chown(data_) || !Chown(dir_.path())) {
    ok_ = ::testing::AssertionFailure() << "no postgres user (apt-get install postgresql-15)";
    return;
  }
  zerotrace::testing::Subprocess init(AsPostgres(
      {std::string(kBin) + "initdb", "-D", data_, "-A", "trust", "-U", "postgres", "-N"}));
  while (init.ReadLine(60s)) {
  }
  if (init.Wait(60s) != 0) {
    ok_ = ::testing::AssertionFailure() << "initdb failed";
    return;
  }
  if (tls_) {
    zerotrace::testing::TestPki pki;
    ok_ = zerotrace::testing::MakeTestPki(dir_.path(), "pki", &pki);
    if (!ok_) return;
    std::ifstream cert(pki.server_cert), key(pki.server_key);
    std::ofstream(data_ + "/server.crt") << cert.rdbuf();
    std::ofstream(data_ + "/server.key") << key.rdbuf();
    chmod((data_ + "/server.key").c_str(), 0600);
    if (!Chown(data_ + "/server.crt") || !Chown(data_ + "/server.key")) {
      ok_ = ::testing::AssertionFailure() << "chown of the certificate failed";
    }
  }
}

PgServer::~PgServer() { Stop(); }

::testing::AssertionResult PgServer::Start() {
  if (!ok_) return ok_;
  proc_ = std::make_unique<zerotrace::testing::Subprocess>(
      AsPostgres({std::string(kBin) + "postgres", "-D", data_, "-p", std::to_string(port_), "-k",
                  dir_.path(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
                  "shared_buffers=16MB", "-c", "max_connections=20", "-c",
                  std::string("ssl=") + (tls_ ? "on" : "off"), "-c", "log_min_messages=fatal"}));
  const auto deadline = std::chrono::steady_clock::now() + zerotrace::testing::kServerStartDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    zerotrace::testing::Subprocess ready(
        {std::string(kBin) + "pg_isready", "-q", "-h", "127.0.0.1", "-p", std::to_string(port_)});
    if (ready.Wait(10s) == 0) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(100ms);  // poll interval while the server starts
  }
  return ::testing::AssertionFailure() << "postgres did not accept connections on " << port_;
}

void PgServer::Stop() {
  if (!proc_) return;
  kill(proc_->pid(), SIGINT);  // fast shutdown; the Subprocess kills its group if it hangs
  proc_->Wait(20s);
  proc_.reset();
}

}  // namespace zerotrace::e2e
