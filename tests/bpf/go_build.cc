// BuildGo: runs the go tool with a clean environment of its own, output kept for messages.
#include "go_build.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

namespace zerotrace::testing {
namespace {

// Runs argv with env; returns the exit status and stdout+stderr.
int RunGo(const std::vector<std::string>& argv, const std::string& dir, std::string* output) {
  const std::string log = dir + "/go-build.log";
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    // GOPATH: Debian's golang-*-dev packages (grpc-go) are source in /usr/share/gocode.
    std::vector<std::string> env = {"GO111MODULE=off",
                                    "GOFLAGS=",
                                    "CGO_ENABLED=0",
#ifdef ZT_GO_CACHE  // the build tree's: each test process rebuilds from cached packages
                                    std::string("GOCACHE=") + ZT_GO_CACHE,
#else
                                    "GOCACHE=" + dir + "/gocache",
#endif
                                    "GOPATH=" + dir + "/gopath:/usr/share/gocode",
                                    "GOPROXY=off",
                                    "HOME=" + dir,
                                    "PATH=/usr/local/bin:/usr/bin:/bin"};
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    execve("/usr/bin/go", args.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  *output = ss.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int RunGoTool(const std::vector<std::string>& args, const std::string& dir, std::string* output) {
  std::vector<std::string> argv = {"go"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunGo(argv, dir, output);
}

GoBuild BuildGo(const std::string& source, const std::string& dir, const std::string& name,
                const std::string& ldflags) {
  GoBuild out;
  std::vector<std::string> argv = {"go", "build", "-o", dir + "/" + name};
  if (!ldflags.empty()) argv.push_back("-ldflags=" + ldflags);
  argv.push_back(source);
  std::string output;
  if (RunGo(argv, dir, &output) != 0) {
    out.error = "go build " + source + " failed: " + output;
    return out;
  }
  out.binary = dir + "/" + name;
  return out;
}

std::string GoToolchainVersion() {
  char tmpl[] = "/tmp/zt-goenv-XXXXXX";
  if (!mkdtemp(tmpl)) return "";
  std::string output;
  const int rc = RunGo({"go", "env", "GOVERSION"}, tmpl, &output);
  unlink((std::string(tmpl) + "/go-build.log").c_str());
  rmdir(tmpl);
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  return rc == 0 ? output : "";
}

SuiteGoBuild::SuiteGoBuild(const std::vector<GoProgram>& programs) {
  for (const GoProgram& p : programs) {
    GoBuild b = BuildGo(p.source, dir.path(), p.name, p.ldflags);
    binaries.push_back(std::move(b.binary));
    error += b.error;
  }
}

bool SuiteGoBuild::ok() const {
  for (const std::string& b : binaries) {
    if (b.empty()) return false;
  }
  return true;
}

}  // namespace zerotrace::testing
