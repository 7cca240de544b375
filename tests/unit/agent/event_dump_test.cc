// --dump-events: control bytes are visible, output is bounded, secrets are redacted.
#include "agent/event_dump.h"

#include <gtest/gtest.h>
#include <zerotrace/ctx_propagate.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace zerotrace::agent {
namespace {

TEST(EscapeBytes, Table) {
  struct Case {
    std::string in;
    size_t max;
    std::string want;
  } cases[] = {
      {"GET / HTTP/1.1\r\n", 64, "GET / HTTP/1.1\\r\\n"},
      {std::string("a\0b", 3), 64, "a\\x00b"},
      {"tab\there \"q\" \\", 64, "tab\\there \\\"q\\\" \\\\"},
      {"abcdef", 3, "abc..."},
      {"\xff\x80", 64, "\\xff\\x80"},
  };
  for (const auto& c : cases) EXPECT_EQ(EscapeBytes(c.in, c.max), c.want) << c.in;
}

TEST(RedactPayload, QueryValuesUserinfoAndCredentialHeadersGo) {
  const std::pair<std::string, std::string> cases[] = {
      {"GET /login?user=bob&token=s3cret HTTP/1.1\r\nHost: a\r\n\r\n",
       "GET /login?user=REDACTED&token=REDACTED HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"GET /a HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nCookie: sid=s3cret\r\nAccept: */*\r\n",
       "GET /a HTTP/1.1\r\nAuthorization: REDACTED\r\nCookie: REDACTED\r\nAccept: */*\r\n"},
      {"HTTP/1.1 200 OK\r\nSet-Cookie: sid=s3cret; HttpOnly\r\n\r\nbody",
       "HTTP/1.1 200 OK\r\nSet-Cookie: REDACTED\r\n\r\nbody"},
      {"GET http://bob:s3cret@host/p?k=v HTTP/1.1\r\n",
       "GET http://REDACTED:REDACTED@host/p?k=REDACTED HTTP/1.1\r\n"},
      // The capture ended inside the request line: what is there is still a query.
      {"GET /search?q=s3cret-and-mo", "GET /search?q=REDACTED"},
      // Pipelined: every request line is redacted, not only the first.
      {"GET /a?x=1 HTTP/1.1\r\n\r\nGET /b?y=s3cret HTTP/1.1\r\n\r\n",
       "GET /a?x=REDACTED HTTP/1.1\r\n\r\nGET /b?y=REDACTED HTTP/1.1\r\n\r\n"},
      {"no secrets here\r\n", "no secrets here\r\n"},
      {std::string("\x16\x03\x01\x02\x00", 5), std::string("\x16\x03\x01\x02\x00", 5)},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(RedactPayload(in), want) << in;
}

// A data record as the kernel side writes it.
std::vector<char> DataRecord(const std::string& payload) {
  std::vector<char> rec(sizeof(zt_data_event) + payload.size());
  zt_data_event ev{};
  ev.hdr.type = ZT_EV_DATA;
  ev.hdr.tgid = 42;
  ev.hdr.tid = 42;
  ev.hdr.fd = 7;
  ev.hdr.conn_id = 9;
  ev.byte_count = static_cast<uint32_t>(payload.size());
  ev.captured = static_cast<uint32_t>(payload.size());
  ev.direction = ZT_DIR_EGRESS;
  std::memcpy(rec.data(), &ev, sizeof(ev));
  std::memcpy(rec.data() + sizeof(ev), payload.data(), payload.size());
  return rec;
}

TEST(EventDumper, DataLinesShowNoQuerySecretOrCredential) {
  char* buf = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&buf, &size);
  ASSERT_NE(out, nullptr);
  WallClock clock;
  EventDumper dumper(out, &clock);
  const std::vector<std::string> payloads = {
      "GET /q?token=s3cret1 HTTP/1.1\r\n", "POST /x HTTP/1.1\r\nAuthorization: Basic s3cret2\r\n",
      "GET /" + std::string(5000, 'a') + "?k=s3cret3 HTTP/1.1\r\n"};
  for (const std::string& payload : payloads) {
    const auto rec = DataRecord(payload);
    dumper.OnRecord(rec.data(), rec.size());
  }
  ASSERT_TRUE(dumper.Flush());
  const std::string text(buf, size);
  std::fclose(out);
  std::free(buf);
  EXPECT_NE(text.find("GET /q?token=REDACTED HTTP/1.1\\r\\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Authorization: REDACTED"), std::string::npos) << text;
  EXPECT_NE(text.find("aaa..."), std::string::npos) << "a long line is still cut: " << text;
  for (const char* secret : {"s3cret1", "s3cret2", "s3cret3"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in:\n" << text;
  }
  EXPECT_EQ(dumper.decode_errors(), 0u);
}

TEST(EventDumper, InsertedContextShowsTheSocketAndTheTraceparent) {
  char* buf = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&buf, &size);
  ASSERT_NE(out, nullptr);
  WallClock clock;
  EventDumper dumper(out, &clock);
  zt_ctx_event ev{};
  ev.hdr.type = ZT_EV_CTX;
  ev.hdr.tgid = ev.hdr.tid = 42;
  ev.local_ip = 0x0a4d0001;
  ev.remote_ip = 0x0a4d0002;
  ev.local_port = 40000;
  ev.remote_port = 8080;
  for (int i = 0; i < 16; i++) ev.trace_id[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 8; i++) ev.span_id[i] = static_cast<uint8_t>(0xf0 + i);
  dumper.OnRecord(&ev, sizeof(ev));
  ASSERT_TRUE(dumper.Flush());
  const std::string text(buf, size);
  std::fclose(out);
  std::free(buf);
  EXPECT_NE(text.find("CTX_INSERTED 10.77.0.1:40000 -> 10.77.0.2:8080 traceparent=00-"
                      "000102030405060708090a0b0c0d0e0f-f0f1f2f3f4f5f6f7-01"),
            std::string::npos)
      << text;
  EXPECT_EQ(dumper.decode_errors(), 0u);
}

}  // namespace
}  // namespace zerotrace::agent
