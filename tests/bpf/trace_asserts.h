// Helpers the BPF tests share: run a zt_sockops mode, wait for a process's records, compare
// the chunks of a stream. ZT_SOCKOPS (the helper's path) is defined by each test target.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "subprocess.h"
#include "trace_session.h"

namespace zerotrace::testing {

// "client_pid=12 server_pid=34" -> {client_pid: 12, server_pid: 34}
inline std::map<std::string, long> ParseKv(const std::string& line) {
  std::map<std::string, long> kv;
  std::istringstream words(line);
  std::string word;
  while (words >> word) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    char* end = nullptr;
    const long v = std::strtol(word.c_str() + eq + 1, &end, 10);
    if (end != word.c_str() + eq + 1 && *end == '\0') kv[word.substr(0, eq)] = v;
  }
  return kv;
}

// Runs one zt_sockops mode to completion and returns its key=value output.
inline std::map<std::string, long> RunSockops(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ZT_SOCKOPS};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p(argv);
  std::map<std::string, long> kv;
  while (auto line = p.ReadLine(std::chrono::seconds(20))) {
    for (const auto& [k, v] : ParseKv(*line)) kv.emplace(k, v);
  }
  EXPECT_EQ(p.Wait(std::chrono::seconds(10)), 0) << "zt_sockops " << args[0] << " failed";
  return kv;
}

// Reads a running zt_sockops mode's key=value lines until it says it has connected.
inline std::map<std::string, long> ReadUntilConnected(Subprocess& p) {
  std::map<std::string, long> kv;
  while (auto line = p.ReadLine(std::chrono::seconds(10))) {
    for (const auto& [k, v] : ParseKv(*line)) kv.emplace(k, v);
    if (line->find("connected") != std::string::npos) break;
  }
  return kv;
}

// The single open event of `pid` with `role`, waiting for it.
inline Record OneOpen(TraceSession& s, long pid, uint8_t role) {
  std::vector<Record> opens;
  s.WaitUntil([&](const std::vector<Record>&) {
    opens.clear();
    for (const auto& r : s.OpensOf(pid)) {
      if (r.open.role == role) opens.push_back(r);
    }
    return !opens.empty();
  });
  EXPECT_EQ(opens.size(), 1u) << "pid " << pid << " role " << int(role);
  return opens.empty() ? Record{} : opens[0];
}

// Data records of a connection and direction once their total reaches `bytes`.
inline std::vector<Record> WaitData(TraceSession& s, long pid, uint64_t conn, uint8_t dir,
                                    uint64_t bytes) {
  std::vector<Record> out;
  s.WaitUntil([&](const std::vector<Record>&) {
    out = s.DataOf(pid, conn, dir);
    uint64_t end = 0;
    for (const auto& r : out) end = std::max<uint64_t>(end, r.data.syscall_pos + r.data.byte_count);
    return end >= bytes;
  });
  return out;
}

struct Chunk {
  uint64_t pos;
  std::string bytes;
  bool operator==(const Chunk&) const = default;
};

inline std::vector<Chunk> Chunks(const std::vector<Record>& data) {
  std::vector<Chunk> out;
  for (const auto& r : data) {
    if (r.data.captured) out.push_back({r.data.stream_pos, r.payload});
  }
  return out;
}

inline void PrintTo(const Chunk& c, std::ostream* os) {
  *os << "{" << c.pos << ", \"" << c.bytes << "\"}";
}

}  // namespace zerotrace::testing
