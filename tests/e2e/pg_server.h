// A PostgreSQL 15 server of the test's own: initdb into a temp dir, run as user postgres on a
// given port, stopped (fast shutdown, then killed) when the object goes.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "subprocess.h"

namespace zerotrace::e2e {

class PgServer {
 public:
  // Makes the cluster (trust authentication, superuser "postgres"); `tls`: ssl=on with a
  // certificate of a test CA. Check ok() after.
  PgServer(int port, bool tls = false);
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Starts the server and waits until it accepts connections.
  ::testing::AssertionResult Start();
  void Stop();
  int port() const { return port_; }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  const ::testing::AssertionResult& ok() const { return ok_; }

 private:
  int port_;
  bool tls_;
  zerotrace::testing::TempDir dir_;
  std::string data_;
  std::unique_ptr<zerotrace::testing::Subprocess> proc_;
  ::testing::AssertionResult ok_ = ::testing::AssertionSuccess();
};

}  // namespace zerotrace::e2e
