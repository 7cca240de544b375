// What the ProtocolStage tests share: a stage with the registered protocols between a
// connection table and a linker, connections scripted as the kernel writes their records.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernel_records.h"
#include "mute_log.h"
#include "protocols/registry.h"
#include "protocols/stage.h"

namespace zerotrace::protocols {

// The linker's output. Server spans wait for a same-node caller; 60 s of synthetic time
// later they have stopped waiting (and no request is old enough to be given up).
struct Collect {
  std::vector<trace::Span> released;
  trace::SpanLinker linker{[this](trace::Span&& s) { released.push_back(std::move(s)); }};
  const std::vector<trace::Span>& spans() {
    linker.Tick(60'000'000'000ULL);
    return released;
  }
};

inline std::string Str(const trace::Span& s, const std::string& key) {
  const auto* v = s.Find(key);
  if (!v) return "<absent>";
  if (auto* str = std::get_if<std::string>(v)) return *str;
  if (auto* i = std::get_if<int64_t>(v)) return std::to_string(*i);
  return "?";
}

// One connection's kernel records, fed to a ConnTable (tests/testing/kernel_records.h).
class Conn {
 public:
  // `flags`: ZT_CONN_F_* (ZT_CONN_F_PREEXISTING: found mid-life, positions from there).
  // `remote_port`: the other end's port (0: the default of testing::ConnSpec).
  Conn(conn::ConnTable* t, uint64_t id, uint8_t role, uint8_t flags = 0, uint16_t remote_port = 0)
      : script_(testing::Into(t), Spec(id, role, flags, remote_port)) {}
  // One syscall's bytes (`tls`: plaintext from the TLS probes, with its own positions).
  void Send(uint8_t dir, const std::string& bytes, uint64_t ts, bool tls = false) {
    script_.Syscall(dir, bytes, ts, testing::ScriptedConnection::kCaptureAll, tls);
  }
  // One syscall of which the kernel copied only the first `capture` bytes (a head cap).
  void SendCapped(uint8_t dir, const std::string& bytes, uint64_t ts, uint32_t capture) {
    script_.Syscall(dir, bytes, ts, capture);
  }
  // A syscall that moved `len` bytes of which none were captured (a trailer record).
  void Gap(uint8_t dir, uint64_t len, uint64_t ts) { script_.Uncaptured(dir, len, ts); }
  void Close() { script_.Close(0); }
  // Goroutine evidence for the next request this client connection sends (at `send_pos`).
  void GoCall(conn::ConnTable* t, uint64_t send_pos, uint64_t served_conn_id, uint64_t ts) {
    testing::Into(t)(testing::GoCallRecord(script_.spec(), send_pos, served_conn_id, 0, ts));
  }

 private:
  static testing::ConnSpec Spec(uint64_t id, uint8_t role, uint8_t flags, uint16_t remote_port) {
    testing::ConnSpec spec;
    spec.conn_id = id;
    spec.remote_port = remote_port;
    spec.role = role;
    spec.flags = flags;
    return spec;
  }
  testing::ScriptedConnection script_;
};

using zerotrace::testing::MuteLog;

class StageTest : public ::testing::Test {
 protected:
  Collect sink;
  WallClock clock;
  MuteLog kernel;
  ProtocolStage producer{MakeRegisteredProtocols({}),
                         &sink.linker,
                         &clock,
                         {{"k8s.node.name", std::string("node-1")}},
                         &kernel};
  conn::ConnTable table{{}, &producer, nullptr, nullptr};
};

}  // namespace zerotrace::protocols
