// A kernel side for tests of the protocol stage: records which connections userspace muted, and
// whether each mute was of TLS plaintext, instead of writing BPF maps.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "conn/conn_table.h"

namespace zerotrace::testing {

struct MuteLog : conn::KernelConnState {
  std::vector<uint64_t> muted;  // conn ids, in the order they were muted
  std::vector<bool> plaintext;  // per mute: its TLS plaintext, not its socket bytes
  void Forget(uint32_t, uint32_t) override {}
  void MutePayload(uint32_t, uint32_t, uint64_t conn_id, bool tls_plaintext) override {
    muted.push_back(conn_id);
    plaintext.push_back(tls_plaintext);
  }
  std::vector<std::pair<uint64_t, uint32_t>> caps;  // (conn id, head cap) in order asked
  std::vector<bool> cap_plaintext;                  // per cap: of its TLS plaintext
  std::vector<bool> cap_egress;                     // per cap: of its sends
  void CapPayload(uint32_t, uint32_t, uint64_t conn_id, uint32_t cap, bool tls_plaintext,
                  bool egress) override {
    caps.emplace_back(conn_id, cap);
    cap_plaintext.push_back(tls_plaintext);
    cap_egress.push_back(egress);
  }
};

}  // namespace zerotrace::testing
