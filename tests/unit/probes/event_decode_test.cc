// DecodeEvent: each record type decodes; short, unknown and inconsistent records are refused.
#include "probes/event_decode.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace zerotrace::probes {
namespace {

std::vector<uint8_t> DataRecord(uint64_t syscall_pos, uint64_t stream_pos, uint32_t byte_count,
                                const std::string& payload) {
  std::vector<uint8_t> buf(sizeof(zt_data_event) + payload.size());
  zt_data_event ev{};
  ev.hdr.type = ZT_EV_DATA;
  ev.hdr.conn_id = 7;
  ev.syscall_pos = syscall_pos;
  ev.stream_pos = stream_pos;
  ev.byte_count = byte_count;
  ev.captured = payload.size();
  std::memcpy(buf.data(), &ev, sizeof(ev));
  std::memcpy(buf.data() + sizeof(ev), payload.data(), payload.size());
  return buf;
}

TEST(EventDecode, DataRecordExposesPayload) {
  auto buf = DataRecord(100, 100, 5, "hello");
  EventView v;
  ASSERT_EQ(DecodeEvent(buf.data(), buf.size(), &v), DecodeError::kNone);
  ASSERT_NE(v.data, nullptr);
  EXPECT_EQ(v.payload, "hello");
  EXPECT_EQ(v.header->conn_id, 7u);
}

TEST(EventDecode, TrailerWithNoPayloadIsValid) {
  auto buf = DataRecord(0, 70000, 70000, "");
  EventView v;
  EXPECT_EQ(DecodeEvent(buf.data(), buf.size(), &v), DecodeError::kNone);
  EXPECT_TRUE(v.payload.empty());
}

struct BadCase {
  const char* name;
  uint64_t syscall_pos, stream_pos;
  uint32_t byte_count;
  std::string payload;
  size_t truncate_by;
  DecodeError want;
};

TEST(EventDecode, InconsistentDataRecordsAreRefused) {
  const BadCase cases[] = {
      {"payload beyond record", 0, 0, 10, "0123456789", 3, DecodeError::kBadLength},
      {"captured more than moved", 0, 0, 2, "abc", 0, DecodeError::kBadLength},
      {"chunk before syscall", 10, 5, 10, "abc", 0, DecodeError::kBadLength},
      {"chunk past syscall end", 0, 8, 10, "abc", 0, DecodeError::kBadLength},
  };
  for (const auto& c : cases) {
    auto buf = DataRecord(c.syscall_pos, c.stream_pos, c.byte_count, c.payload);
    buf.resize(buf.size() - c.truncate_by);
    EventView v;
    EXPECT_EQ(DecodeEvent(buf.data(), buf.size(), &v), c.want) << c.name;
  }
}

TEST(EventDecode, ShortAndUnknownRecords) {
  uint8_t tiny[8] = {ZT_EV_DATA};
  EventView v;
  EXPECT_EQ(DecodeEvent(tiny, sizeof(tiny), &v), DecodeError::kTooShort);
  zt_event_header h{};
  h.type = ZT_EV_CONN_OPEN;
  EXPECT_EQ(DecodeEvent(&h, sizeof(h), &v), DecodeError::kTooShort);
  h.type = 99;
  EXPECT_EQ(DecodeEvent(&h, sizeof(h), &v), DecodeError::kUnknownType);
}

TEST(EventDecode, OpenCloseAndProcessRecords) {
  zt_conn_open o{};
  o.hdr.type = ZT_EV_CONN_OPEN;
  o.role = ZT_ROLE_SERVER;
  EventView v;
  ASSERT_EQ(DecodeEvent(&o, sizeof(o), &v), DecodeError::kNone);
  EXPECT_EQ(v.open->role, ZT_ROLE_SERVER);
  zt_conn_close c{};
  c.hdr.type = ZT_EV_CONN_CLOSE;
  c.sent_bytes = 42;
  ASSERT_EQ(DecodeEvent(&c, sizeof(c), &v), DecodeError::kNone);
  EXPECT_EQ(v.close->sent_bytes, 42u);
  zt_proc_event p{};
  p.hdr.type = ZT_EV_PROC_EXIT;
  ASSERT_EQ(DecodeEvent(&p, sizeof(p), &v), DecodeError::kNone);
  EXPECT_NE(v.proc, nullptr);
}

TEST(EventDecode, GoCallRecordAndItsShortForm) {
  zt_go_call_event g{};
  g.hdr.type = ZT_EV_GO_CALL;
  g.send_pos = 7;
  g.served_conn_id = 9;
  EventView v;
  ASSERT_EQ(DecodeEvent(&g, sizeof(g), &v), DecodeError::kNone);
  ASSERT_NE(v.go_call, nullptr);
  EXPECT_EQ(v.go_call->send_pos, 7u);
  EXPECT_EQ(v.go_call->served_conn_id, 9u);
  EXPECT_EQ(DecodeEvent(&g, sizeof(g) - 1, &v), DecodeError::kTooShort);
}

}  // namespace
}  // namespace zerotrace::probes
