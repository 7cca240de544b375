// Runs the real SocketTracer in the test process on a background thread and keeps a copy of
// every record, so tests can wait for and assert exact kernel events.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conn/byte_stream.h"
#include "conn/tuple.h"
#include "probes/socket_tracer.h"

namespace zerotrace::testing {

// One record, copied out of the ring buffer.
struct Record {
  zt_event_header hdr{};
  zt_conn_open open{};    // type == ZT_EV_CONN_OPEN
  zt_conn_close close{};  // type == ZT_EV_CONN_CLOSE
  zt_data_event data{};   // type == ZT_EV_DATA
  std::string payload;
  zt_proc_event proc{};  // type == ZT_EV_PROC_*
  conn::Tuple Tuple() const;
};

class TraceSession : public probes::RecordSink {
 public:
  // Loads and attaches; fails the calling test (ASSERT) if that is impossible.
  explicit TraceSession(probes::TracerConfig config = {});
  ~TraceSession() override;

  void OnRecord(const void* data, size_t size) override;
  probes::SocketTracer& tracer() { return *tracer_; }

  // All records so far that match.
  std::vector<Record> Select(const std::function<bool(const Record&)>& match);
  // Waits until `ready` holds over the records (checked every 20 ms) or the deadline passes.
  bool WaitUntil(const std::function<bool(const std::vector<Record>&)>& ready,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Helpers over records of one process.
  std::vector<Record> OpensOf(pid_t pid);
  std::vector<Record> DataOf(pid_t pid, uint64_t conn_id, uint8_t direction);
  // Reassembles a direction of a connection from its data records (gaps from trailers).
  static std::string Reassemble(const std::vector<Record>& data, uint64_t* gap_bytes = nullptr);

 private:
  std::unique_ptr<probes::SocketTracer> tracer_;
  std::mutex mu_;
  std::vector<Record> records_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace zerotrace::testing
