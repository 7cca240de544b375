// Specification of HTTP/2 detection, and of HTTP/2 in the protocol stage with every registered
// protocol: prior knowledge, an h2c upgrade after HTTP/1, and a connection found mid-life.
#include "protocols/http2/protocol.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "h2_test_util.h"
#include "mute_log.h"
#include "protocols/registry.h"
#include "protocols/stage.h"

namespace zerotrace::protocols::http2 {
namespace {

using testing::Attr;
using testing::Fields;
using testing::FrameHead;
using testing::FrameWriter;
using testing::Request;
using testing::Status;

const std::string kPreface(kClientPreface);

TEST(Http2Detection, DetectStart) {
  struct Case {
    std::string name;
    uint8_t role;
    std::string sent, received;
    Verdict verdict;
    uint8_t detected_role;
  };
  const std::string settings = FrameWriter::Settings();
  const std::vector<Case> cases = {
      {"client preface", ZT_ROLE_CLIENT, kPreface + settings, "", Verdict::kYes, ZT_ROLE_CLIENT},
      {"server reads the preface", ZT_ROLE_SERVER, settings, kPreface, Verdict::kYes,
       ZT_ROLE_SERVER},
      {"preface still arriving", ZT_ROLE_CLIENT, kPreface.substr(0, 10), "", Verdict::kMaybe,
       ZT_ROLE_CLIENT},
      {"HTTP/1 request", ZT_ROLE_CLIENT, "GET / HTTP/1.1\r\n", "", Verdict::kNo, ZT_ROLE_CLIENT},
      {"server's SETTINGS first", ZT_ROLE_CLIENT, "", settings, Verdict::kMaybe, ZT_ROLE_CLIENT},
      {"server speaks first, not SETTINGS", ZT_ROLE_CLIENT, "", "220 smtp ready\r\n", Verdict::kNo,
       ZT_ROLE_CLIENT},
      {"websocket frame after an upgrade", ZT_ROLE_CLIENT, "", "\x81\x05hello", Verdict::kNo,
       ZT_ROLE_CLIENT},
      {"nothing yet", ZT_ROLE_SERVER, "", "", Verdict::kMaybe, ZT_ROLE_SERVER},
      {"role unknown, preface sent", ZT_ROLE_UNKNOWN, kPreface, "", Verdict::kYes, ZT_ROLE_CLIENT},
      {"role unknown, preface received", ZT_ROLE_UNKNOWN, "", kPreface, Verdict::kYes,
       ZT_ROLE_SERVER},
      {"role unknown, neither", ZT_ROLE_UNKNOWN, "xyz", "abc", Verdict::kNo, ZT_ROLE_UNKNOWN},
  };
  Http2Protocol p({});
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.name);
    const Detection d = p.DetectStart({tc.sent, tc.received, tc.role, false});
    EXPECT_EQ(d.verdict, tc.verdict);
    if (d.verdict == Verdict::kYes) {
      EXPECT_EQ(d.role, tc.detected_role);
    }
  }
}

TEST(Http2Detection, DetectResyncNeedsPlausibleFrames) {
  FrameWriter w;
  const std::string headers = w.Headers(5, Request("GET", "/"), true);
  struct Case {
    std::string name;
    std::string bytes;
    Verdict verdict;
  };
  const std::vector<Case> cases = {
      {"headers then data", headers + FrameWriter::Data(5, "x", true), Verdict::kYes},
      {"exactly one frame", FrameWriter::Ping(), Verdict::kYes},
      {"one frame, more to come", FrameWriter::Data(5, std::string(100, 'x'), false).substr(0, 50),
       Verdict::kMaybe},
      {"short", "\0\0", Verdict::kMaybe},
      {"HTTP/1", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", Verdict::kNo},
      {"TLS record", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), Verdict::kNo},
      {"postgres query", std::string("Q\0\0\0\x0dselect 1\0", 14), Verdict::kNo},
      {"SETTINGS on a stream", FrameHead(0, kSettings, 0, 1) + "", Verdict::kNo},
      {"RST_STREAM of 5 bytes", FrameHead(5, kRstStream, 0, 1) + "12345", Verdict::kNo},
      {"unknown flags on DATA", FrameHead(1, kData, 0x40, 1) + "x", Verdict::kNo},
      {"second frame implausible", FrameWriter::Ping() + FrameHead(4, 0x42, 0, 0) + "abcd",
       Verdict::kNo},
  };
  Http2Protocol p({});
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.name);
    EXPECT_EQ(p.DetectResync({tc.bytes, ZT_DIR_EGRESS, ZT_ROLE_CLIENT}).verdict, tc.verdict);
  }
}

// --- the stage, with every registered protocol -------------------------------------------

struct Collect {
  std::vector<trace::Span> released;
  trace::SpanLinker linker{[this](trace::Span&& s) { released.push_back(std::move(s)); }};
  const std::vector<trace::Span>& spans() {
    linker.Tick(60'000'000'000ULL);
    return released;
  }
};

// Feeds a ConnTable the way the kernel would, for one connection.
class Conn {
 public:
  Conn(conn::ConnTable* t, uint64_t id, uint8_t role, uint8_t flags = 0) : t_(t), id_(id) {
    zt_conn_open o{};
    o.hdr.type = ZT_EV_CONN_OPEN;
    o.hdr.conn_id = id;
    o.hdr.tgid = 4242;
    o.role = role;
    o.flags = flags;
    o.family = ZT_AF_INET;
    const uint8_t lo[4] = {127, 0, 0, 1};
    std::memcpy(o.local_addr, lo, 4);
    std::memcpy(o.remote_addr, lo, 4);
    o.local_port = role == ZT_ROLE_SERVER ? 8080 : 50000;
    o.remote_port = role == ZT_ROLE_SERVER ? 50000 : 8080;
    probes::EventView v;
    v.type = o.hdr.type;
    v.header = &o.hdr;
    v.open = &o;
    t_->OnEvent(v);
  }
  // `captured`: how many of the bytes the kernel copied (the rest is a gap, as its trailer
  // record says); all of them by default.
  void Send(uint8_t dir, const std::string& bytes, bool tls = false,
            size_t captured = std::string::npos) {
    zt_data_event d{};
    d.hdr.type = ZT_EV_DATA;
    d.hdr.conn_id = id_;
    d.hdr.tgid = 4242;
    d.hdr.ts_ns = ++ts_;
    d.direction = dir;
    d.source = tls ? ZT_SRC_TLS : ZT_SRC_SYSCALL;
    uint64_t& pos = dir == ZT_DIR_EGRESS ? sent_ : received_;
    d.syscall_pos = d.stream_pos = pos;
    d.byte_count = static_cast<uint32_t>(bytes.size());
    d.captured = static_cast<uint32_t>(std::min(captured, bytes.size()));
    probes::EventView v;
    v.type = d.hdr.type;
    v.header = &d.hdr;
    v.data = &d;
    v.payload = std::string_view(bytes).substr(0, d.captured);
    t_->OnEvent(v);
    if (d.captured < d.byte_count) {  // the trailer: the rest of the call is a gap
      d.stream_pos = pos + bytes.size();
      d.captured = 0;
      v.payload = {};
      t_->OnEvent(v);
    }
    pos += bytes.size();
  }

 private:
  conn::ConnTable* t_;
  uint64_t id_;
  uint64_t sent_ = 0, received_ = 0, ts_ = 0;
};

class Http2StageTest : public ::testing::Test {
 protected:
  const Http2Stats& h2() {
    for (const auto& p : stage.protocols()) {
      if (p->name() == "http2") return static_cast<const Http2Protocol&>(*p).stats();
    }
    static Http2Stats none;
    return none;
  }
  Collect sink;
  WallClock clock;
  zerotrace::testing::MuteLog kernel;
  ProtocolStage stage{MakeRegisteredProtocols({}), &sink.linker, &clock, {}, &kernel};
  conn::ConnTable table{{}, &stage, nullptr, nullptr};
};

TEST_F(Http2StageTest, PriorKnowledgeClientAndServerSpans) {
  FrameWriter client, server;
  Conn c(&table, 1, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_EGRESS, kPreface + FrameWriter::Settings() +
                            client.Headers(1, Request("GET", "/x/7", "127.0.0.1:8080"), true));
  c.Send(ZT_DIR_INGRESS, FrameWriter::Settings() + server.Headers(1, Status(200), false) +
                             FrameWriter::Data(1, "seven", true));
  Conn s(&table, 2, ZT_ROLE_SERVER);
  FrameWriter client2, server2;
  s.Send(ZT_DIR_INGRESS, kPreface + FrameWriter::Settings() +
                             client2.Headers(1, Request("GET", "/x/7", "127.0.0.1:8080"), true));
  s.Send(ZT_DIR_EGRESS, FrameWriter::Settings() + server2.Headers(1, Status(200), false) +
                            FrameWriter::Data(1, "seven", true));
  const auto& spans = sink.spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_TRUE(kernel.muted.empty());
  for (const auto& sp : spans) {
    EXPECT_EQ(sp.name, "GET /x/{id}");
    EXPECT_EQ(Attr(sp, "network.protocol.version"), "2");
    EXPECT_EQ(Attr(sp, "http.response.body.size"), "5");
  }
  // Same connection seen from both ends, same request position: the server span is the child.
  const trace::Span& cs = spans[0].kind == trace::SpanKind::kClient ? spans[0] : spans[1];
  const trace::Span& ss = spans[0].kind == trace::SpanKind::kClient ? spans[1] : spans[0];
  EXPECT_EQ(ss.parent_span_id, cs.span_id);
  EXPECT_EQ(ss.trace_id, cs.trace_id);
}

// `Upgrade: h2c`: HTTP/1 reports the upgrade request (status 101), HTTP/2 takes over after it;
// stream 1 (the upgrade request's answer) is counted, not reported twice.
TEST_F(Http2StageTest, H2cUpgradeHandsTheConnectionToHttp2) {
  FrameWriter client, server;
  Conn c(&table, 3, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_EGRESS,
         "GET /first HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
         "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n");
  c.Send(ZT_DIR_INGRESS,
         "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" +
             FrameWriter::Settings() + server.Headers(1, Status(404), false) +
             FrameWriter::Data(1, "nope", true));
  c.Send(ZT_DIR_EGRESS, kPreface + FrameWriter::Settings() +
                            client.Headers(3, Request("GET", "/second", "h"), true));
  c.Send(ZT_DIR_INGRESS, server.Headers(3, Status(200), true));
  const auto& spans = sink.spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(Attr(spans[0], "url.path"), "/first");
  EXPECT_EQ(Attr(spans[0], "http.response.status_code"), "101");
  EXPECT_EQ(Attr(spans[0], "network.protocol.version"), "1.1");
  EXPECT_EQ(Attr(spans[1], "url.path"), "/second");
  EXPECT_EQ(Attr(spans[1], "network.protocol.version"), "2");
  EXPECT_EQ(stage.stats().protocol_left, 1u);
  EXPECT_EQ(h2().upgrade_streams, 1u);
  EXPECT_EQ(h2().unpaired_responses, 0u);
}

// TLS plaintext streams: the same detection; url.scheme is https.
TEST_F(Http2StageTest, TlsPlaintextIsHttps) {
  FrameWriter client, server;
  Conn c(&table, 4, ZT_ROLE_CLIENT);
  Fields f = Request("GET", "/s", "h");
  f[1].second = "https";
  c.Send(ZT_DIR_EGRESS, kPreface + FrameWriter::Settings() + client.Headers(1, f, true), true);
  c.Send(ZT_DIR_INGRESS, server.Headers(1, Status(200), true), true);
  const auto& spans = sink.spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(Attr(spans[0], "url.scheme"), "https");
  // As for HTTP/1: an authority without a port names the server socket's port (8080 here).
  EXPECT_EQ(Attr(spans[0], "url.full"), "https://h:8080/s");
}

// TLS plaintext that lost bytes of a HEADERS block (the kernel walk lost its boundaries):
// header decoding stops on that connection and is counted; no later request is decoded
// against a table that missed the lost block's updates.
TEST_F(Http2StageTest, TlsPlaintextLostHeaderBlockStopsDecoding) {
  FrameWriter client, server;
  Conn c(&table, 6, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_EGRESS,
         kPreface + FrameWriter::Settings() + client.Headers(1, Request("GET", "/one"), true),
         true);
  c.Send(ZT_DIR_INGRESS, FrameWriter::Settings() + server.Headers(1, Status(200), true), true);
  const std::string cut = client.Headers(3, Request("GET", "/two", "other.host"), true);
  c.Send(ZT_DIR_EGRESS, cut, true, 12);  // its frame header and 3 bytes of the block
  c.Send(ZT_DIR_EGRESS, client.Headers(5, Request("GET", "/three", "other.host"), true), true);
  c.Send(ZT_DIR_INGRESS,
         server.Headers(3, Status(200), true) + server.Headers(5, Status(200), true), true);
  const auto& spans = sink.spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(Attr(spans[0], "url.path"), "/one");
  EXPECT_EQ(h2().hpack_lost + h2().frames_lost, 1u);
}

// Found mid-life: claimed at a frame, counted, never shown.
TEST_F(Http2StageTest, MidLifeConnectionIsCountedNotShown) {
  FrameWriter w, r;
  Conn c(&table, 5, ZT_ROLE_CLIENT, ZT_CONN_F_PREEXISTING);
  c.Send(ZT_DIR_EGRESS, w.Headers(11, Request("GET", "/a"), true));
  c.Send(ZT_DIR_INGRESS, r.Headers(11, Status(200), true));
  c.Send(ZT_DIR_EGRESS, w.Headers(13, Request("GET", "/b"), true));
  EXPECT_TRUE(sink.spans().empty());
  EXPECT_EQ(h2().conns_table_unknown, 1u);
  EXPECT_EQ(h2().streams_table_unknown, 2u);
  EXPECT_EQ(stage.stats().conns_resynced, 1u);
  EXPECT_TRUE(kernel.muted.empty());
}

}  // namespace
}  // namespace zerotrace::protocols::http2
