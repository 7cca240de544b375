// Selectors: include kinds and-ed, entries of a kind or-ed, exclude wins, unknown stays
// undecided.
#include "conn/selectors.h"

#include <gtest/gtest.h>
#include <zerotrace/events.h>

// Cases name only the lists they use.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace zerotrace::conn {
namespace {

using V = Selectors::Verdict;

ProcessInfo Nginx() {
  ProcessInfo p;
  p.pid = 42;
  p.comm = "nginx";
  p.exe_path = "/usr/sbin/nginx";
  p.cgroup.path = "/system.slice/nginx.service";
  p.netns = 4026531840;
  return p;
}

Tuple Served(uint16_t local, uint16_t remote) {
  Tuple t;
  t.local_port = local;
  t.remote_port = remote;
  return t;
}

TEST(Selectors, TableOfCases) {
  struct Case {
    const char* name;
    SelectorList include, exclude;
    ProcessInfo process;
    uint16_t local_port, remote_port;
    uint8_t role;
    V want;
  };
  const ProcessInfo nginx = Nginx();
  ProcessInfo partial = nginx;
  partial.exe_path.clear();
  partial.cgroup.path.clear();
  partial.partial = true;
  const Case cases[] = {
      {"empty selects all", {}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"exe glob", {.exe = {"/usr/sbin/*"}}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"exe glob crosses /", {.exe = {"/usr/*"}}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"exe file name", {.exe = {"ngin?"}}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"exe other", {.exe = {"/usr/bin/*"}}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kSkip},
      {"comm", {.comm = {"curl", "nginx"}}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"comm longer than 15 is cut",
       {.comm = {"nginx"}},
       {},
       [] {
         ProcessInfo p = Nginx();
         p.comm = "abcdefghijklmno";
         return p;
       }(),
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kSkip},
      {"pid", {.pid = {41, 42}}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"listening port", {.port = {80}}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"peer port of a client",
       {.port = {5432}},
       {},
       nginx,
       40000,
       5432,
       ZT_ROLE_CLIENT,
       V::kTrace},
      {"a server's peer's ephemeral port is no listening port",
       {.port = {5000}},
       {},
       nginx,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kSkip},
      {"a client's own ephemeral port is not its peer's",
       {.port = {40000}},
       {},
       nginx,
       40000,
       5432,
       ZT_ROLE_CLIENT,
       V::kSkip},
      {"cgroup prefix",
       {.cgroup = {"/system.slice"}},
       {},
       nginx,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kTrace},
      {"cgroup prefix with a slash",
       {.cgroup = {"/system.slice/"}},
       {},
       nginx,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kTrace},
      {"cgroup by whole components",
       {.cgroup = {"/system.sl"}},
       {},
       nginx,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kSkip},
      {"netns", {.netns = {4026531840}}, {}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"kinds are and-ed",
       {.comm = {"nginx"}, .port = {443}},
       {},
       nginx,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kSkip},
      {"exclude wins",
       {.comm = {"nginx"}},
       {.port = {80}},
       nginx,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kSkip},
      {"exclude any kind",
       {},
       {.comm = {"prometheus"}, .cgroup = {"/system.slice"}},
       nginx,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kSkip},
      {"exclude others", {}, {.comm = {"prometheus"}}, nginx, 80, 5000, ZT_ROLE_SERVER, V::kTrace},
      {"unknown exe is undecided",
       {.exe = {"/usr/sbin/*"}},
       {},
       partial,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kUndecided},
      {"unknown cgroup in an exclude is undecided",
       {},
       {.cgroup = {"/x"}},
       partial,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kUndecided},
      {"a certain no wins over an unknown",
       {.exe = {"/x"}, .comm = {"curl"}},
       {},
       partial,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kSkip},
      {"comm is known without /proc",
       {},
       {.comm = {"nginx"}},
       partial,
       80,
       5000,
       ZT_ROLE_SERVER,
       V::kSkip},
  };
  for (const Case& c : cases) {
    Selectors s;
    s.include = c.include;
    s.exclude = c.exclude;
    EXPECT_EQ(s.ForConnection(c.process, Served(c.local_port, c.remote_port), c.role), c.want)
        << c.name;
  }
}

TEST(Selectors, TupleNetnsWinsOverTheProcesses) {
  Selectors s;
  s.include.netns = {7};
  Tuple t = Served(80, 5000);
  t.netns = 7;
  EXPECT_EQ(s.ForConnection(Nginx(), t, ZT_ROLE_SERVER), V::kTrace);
  t.netns = 8;
  EXPECT_EQ(s.ForConnection(Nginx(), t, ZT_ROLE_SERVER), V::kSkip);
}

}  // namespace
}  // namespace zerotrace::conn
