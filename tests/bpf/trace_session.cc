// TraceSession: preflight + SocketTracer::Start, then a poller thread copying records.
#include "trace_session.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "probes/event_decode.h"
#include "probes/preflight.h"

namespace zerotrace::testing {

conn::Tuple Record::Tuple() const {
  conn::Tuple t;
  t.family = open.family;
  t.local_port = open.local_port;
  t.remote_port = open.remote_port;
  std::memcpy(t.local_addr.data(), open.local_addr, 16);
  std::memcpy(t.remote_addr.data(), open.remote_addr, 16);
  return t;
}

TraceSession::TraceSession(probes::TracerConfig config) {
  probes::PreflightReport report;
  const Status pre = probes::Preflight(&report);
  if (!pre.ok()) {
    ADD_FAILURE() << "BPF preflight failed (BPF tests never skip): " << pre.message();
    return;
  }
  config.self_tgid = static_cast<uint32_t>(getpid());
  std::vector<std::string> notes;
  auto t = probes::SocketTracer::Start(config, report.tracefs, this, &notes);
  if (!t.ok()) {
    ADD_FAILURE() << "loading the tracer failed (BPF tests never skip): " << t.status().message();
    return;
  }
  tracer_ = std::move(t.value());
  poller_ = std::thread([this] {
    while (!stop_.load()) tracer_->Poll(20);
  });
}

TraceSession::~TraceSession() {
  stop_.store(true);
  if (poller_.joinable()) poller_.join();
}

void TraceSession::OnRecord(const void* data, size_t size) {
  probes::EventView ev;
  if (probes::DecodeEvent(data, size, &ev) != probes::DecodeError::kNone) {
    ADD_FAILURE() << "undecodable record of " << size << " bytes";
    return;
  }
  Record r;
  r.hdr = *ev.header;
  if (ev.open) r.open = *ev.open;
  if (ev.close) r.close = *ev.close;
  if (ev.data) r.data = *ev.data;
  if (ev.proc) r.proc = *ev.proc;
  r.payload.assign(ev.payload);
  std::lock_guard<std::mutex> lock(mu_);
  records_.push_back(std::move(r));
}

std::vector<Record> TraceSession::Select(const std::function<bool(const Record&)>& match) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Record> out;
  for (const auto& r : records_) {
    if (match(r)) out.push_back(r);
  }
  return out;
}

bool TraceSession::WaitUntil(const std::function<bool(const std::vector<Record>&)>& ready,
                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<Record> snapshot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      snapshot = records_;
    }
    // Called without the lock so `ready` may use Select() and friends.
    if (ready(snapshot)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<Record> TraceSession::OpensOf(pid_t pid) {
  return Select([&](const Record& r) {
    return r.hdr.type == ZT_EV_CONN_OPEN && r.hdr.tgid == static_cast<uint32_t>(pid);
  });
}

std::vector<Record> TraceSession::DataOf(pid_t pid, uint64_t conn_id, uint8_t direction) {
  return Select([&](const Record& r) {
    return r.hdr.type == ZT_EV_DATA && r.hdr.tgid == static_cast<uint32_t>(pid) &&
           r.hdr.conn_id == conn_id && r.data.direction == direction;
  });
}

std::string TraceSession::Reassemble(const std::vector<Record>& data, uint64_t* gap_bytes) {
  conn::ByteStream s(64 << 20);
  uint64_t covered = 0, syscall = UINT64_MAX;
  for (const auto& r : data) {
    if (r.data.syscall_pos != syscall) {
      syscall = r.data.syscall_pos;
      covered = syscall;
    }
    if (r.data.captured) {
      if (r.data.stream_pos > covered) s.AddGap(covered, r.data.stream_pos - covered, 0);
      s.AddData(r.data.stream_pos, r.payload, 0);
      covered = r.data.stream_pos + r.data.captured;
    } else {
      const uint64_t end = r.data.syscall_pos + r.data.byte_count;
      if (end > covered) s.AddGap(covered, end - covered, 0);
      covered = end;
    }
  }
  std::string out;
  uint64_t gaps = 0;
  for (;;) {
    auto f = s.Peek();
    if (!f.data.empty()) {
      out.append(f.data);
      s.Consume(f.data.size());
    } else if (f.gap) {
      gaps += f.gap;
      s.Consume(f.gap);
    } else {
      break;
    }
  }
  if (gap_bytes) *gap_bytes = gaps;
  return out;
}

}  // namespace zerotrace::testing
