// Builds a Go program from source for a test, with Debian's golang-go, offline: GOPATH mode
// (GO111MODULE=off), standard library and Debian's Go packages (/usr/share/gocode) only,
// caches in the given directory.
#pragma once

#include <string>
#include <vector>

#include "subprocess.h"

namespace zerotrace::testing {

struct GoBuild {
  std::string binary;  // the executable; empty when the build failed
  std::string error;   // the go tool's output when it failed
};

// `go build -o DIR/NAME [ldflags] SOURCE`; `ldflags` e.g. "-s -w" for a stripped binary.
GoBuild BuildGo(const std::string& source, const std::string& dir, const std::string& name,
                const std::string& ldflags = "");
// Runs `go ARGS...` (argv without "go") in that environment; returns its exit status and its
// stdout and stderr in *output.
int RunGoTool(const std::vector<std::string>& args, const std::string& dir, std::string* output);
// `go env GOVERSION` of the toolchain BuildGo uses ("go1.19.8"), or empty.
std::string GoToolchainVersion();

// Go programs built once for a whole test suite into a temp dir of their own: a fixture makes
// one in SetUpTestSuite and deletes it in TearDownTestSuite.
struct GoProgram {
  std::string source, name, ldflags;
};
struct SuiteGoBuild {
  explicit SuiteGoBuild(const std::vector<GoProgram>& programs);
  bool ok() const;
  TempDir dir;
  std::vector<std::string> binaries;  // in the order given; empty when that build failed
  std::string error;                  // the go tool's output of the builds that failed
};

}  // namespace zerotrace::testing
