// Ring-buffer records as the kernel side writes them, for tests and benchmarks: the bytes of
// include/zerotrace/events.h exactly, so they go through the real decoder (probes::DecodeEvent)
// and the real connection table. One generator instead of one hand-built builder per test.
#pragma once

#include <zerotrace/events.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace zerotrace::conn {
class ConnTable;
}

namespace zerotrace::testing {

using Record = std::vector<uint8_t>;
using RecordSink = std::function<void(const Record&)>;

// Feeds each record to `table` the way the agent's pipeline does: decode, then apply. A record
// that does not decode fails the calling test.
RecordSink Into(conn::ConnTable* table);

// A connection as its open record describes it. IPv4 by default: 127.0.0.1:local_port on this
// side, 10.1.2.3:remote_port on the other.
struct ConnSpec {
  uint64_t conn_id = 1;
  uint32_t tgid = 4242;
  uint32_t fd = 3;
  uint8_t role = ZT_ROLE_CLIENT;
  uint8_t flags = 0;  // ZT_CONN_F_*: PREEXISTING for a socket found mid-life
  uint16_t family = ZT_AF_INET;
  uint8_t local_addr[16] = {127, 0, 0, 1};
  uint8_t remote_addr[16] = {10, 1, 2, 3};
  uint16_t local_port = 0;   // 0: 50000 for a client, 8080 for a server
  uint16_t remote_port = 0;  // 0: the other of the two
  uint32_t netns = 0;
  std::string comm = "svc";
};

// Single records, at explicit positions (for tests of the record layer itself).
Record OpenRecord(const ConnSpec& spec, uint64_t ts_ns);
Record DataRecord(const ConnSpec& spec, uint8_t direction, uint64_t syscall_pos,
                  uint64_t stream_pos, uint32_t byte_count, std::string_view captured,
                  uint64_t ts_ns, uint8_t source = ZT_SRC_SYSCALL, uint32_t tid = 0,
                  uint8_t syscall = ZT_SYS_READ);
Record CloseRecord(const ConnSpec& spec, uint64_t sent_bytes, uint64_t received_bytes,
                   uint64_t ts_ns, uint8_t reason = ZT_CLOSE_SYSCALL, uint8_t flags = 0);
Record ProcRecord(uint8_t type, uint32_t tgid, uint64_t ts_ns, std::string_view comm = "svc");
// Goroutine evidence: the next request `spec` (a client connection) sends, from send_pos, is a
// call for the request in flight on server connection served_conn_id (at since_ns; 0: then).
Record GoCallRecord(const ConnSpec& spec, uint64_t send_pos, uint64_t served_conn_id,
                    uint64_t since_ns, uint64_t ts_ns);

// One connection's records in the order the kernel writes them, stream positions kept per
// direction (and separately for TLS plaintext, which counts from 0 of its own).
class ScriptedConnection {
 public:
  static constexpr uint32_t kCaptureAll = UINT32_MAX;

  // Writes the open record at ts_ns (unless `open` is false: its record was lost).
  ScriptedConnection(RecordSink sink, ConnSpec spec, uint64_t ts_ns = 1, bool open = true);

  // One syscall that moved `bytes` in `direction` (ZT_DIR_EGRESS: this process sent them).
  // At most `capture` bytes are captured (in chunks of ZT_MAX_CHUNK); the rest becomes the
  // trailer the kernel writes for uncaptured bytes. `tls`: plaintext from the TLS probes.
  void Syscall(uint8_t direction, std::string_view bytes, uint64_t ts_ns,
               uint32_t capture = kCaptureAll, bool tls = false, uint32_t tid = 0);
  void Send(std::string_view bytes, uint64_t ts_ns) { Syscall(ZT_DIR_EGRESS, bytes, ts_ns); }
  void Receive(std::string_view bytes, uint64_t ts_ns) { Syscall(ZT_DIR_INGRESS, bytes, ts_ns); }
  // A syscall of `len` bytes none of which were captured (only its trailer arrives).
  void Uncaptured(uint8_t direction, uint64_t len, uint64_t ts_ns, bool tls = false);
  // close(): the final positions (of the plaintext streams once TLS was seen).
  void Close(uint64_t ts_ns, uint8_t reason = ZT_CLOSE_SYSCALL, uint8_t flags = 0);

  uint64_t position(uint8_t direction, bool tls = false) const;
  const ConnSpec& spec() const { return spec_; }

 private:
  uint64_t& pos(uint8_t direction, bool tls);
  RecordSink sink_;
  ConnSpec spec_;
  uint64_t pos_[2][2] = {};  // [tls][direction]
  bool tls_seen_ = false;
};

}  // namespace zerotrace::testing
