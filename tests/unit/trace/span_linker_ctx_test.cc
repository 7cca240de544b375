// --propagate-context in the linker: hashed root trace ids (the kernel computes the same), and
// the kernel's span id taken by a call if and only if the linker agrees on its trace.
#include <gtest/gtest.h>
#include <zerotrace/ctx_hash.h>

#include <string>
#include <vector>

#include "linker_fixture.h"
#include "trace/span_linker.h"

namespace zerotrace::trace {
namespace {

// Pinned values: the BPF side compiles the same header; a change here changes the ids both
// sides compute, so it must be deliberate (agents of different versions would disagree).
TEST(CtxHashTest, PinnedValues) {
  struct Row {
    uint64_t salt;
    uint32_t cip;
    uint16_t cport;
    uint32_t sip;
    uint16_t sport;
    uint64_t pos;
    const char* hex;
  };
  const Row rows[] = {
      {0, 0, 0, 0, 0, 0, "3a4ca1b40c2bf81117e91c39f92a8601"},
      {1, 0x0a4d0001, 40000, 0x0a4d0002, 8080, 0, "07e0b2d73800bd407e31a49dc33d7b3f"},
      {1, 0x0a4d0001, 40000, 0x0a4d0002, 8080, 77, "ab76c39621b0171d1a9e56773648f18f"},
  };
  for (const Row& r : rows) {
    TraceId id;
    zt_ctx_trace_id(r.salt, r.cip, r.cport, r.sip, r.sport, r.pos, id.bytes.data());
    EXPECT_EQ(id.Hex(), r.hex) << r.salt << " " << r.pos;
    EXPECT_TRUE(id.valid());
  }
}

TEST(CtxHashTest, EveryInputChangesTheId) {
  auto h = [](uint64_t salt, uint32_t cip, uint16_t cport, uint32_t sip, uint16_t sport,
              uint64_t pos) {
    TraceId id;
    zt_ctx_trace_id(salt, cip, cport, sip, sport, pos, id.bytes.data());
    return id.Hex();
  };
  const std::string base = h(5, 1, 2, 3, 4, 6);
  EXPECT_NE(h(6, 1, 2, 3, 4, 6), base);
  EXPECT_NE(h(5, 9, 2, 3, 4, 6), base);
  EXPECT_NE(h(5, 1, 9, 3, 4, 6), base);
  EXPECT_NE(h(5, 1, 2, 9, 4, 6), base);
  EXPECT_NE(h(5, 1, 2, 3, 9, 6), base);
  EXPECT_NE(h(5, 1, 2, 3, 4, 9), base);
  EXPECT_NE(h(5, 3, 4, 1, 2, 6), base) << "client and server are not interchangeable";
}

constexpr uint64_t kSalt = 0x1234;

class SpanLinkerCtxTest : public LinkerFixture {
 protected:
  SpanLinkerCtxTest() : LinkerFixture(Opts(true)) {}
  static SpanLinker::Options Opts(bool hashed) {
    SpanLinker::Options o;
    o.hashed_roots = hashed;
    o.root_salt = kSalt;
    return o;
  }

  // 10.77.0.1:cport -> 10.77.0.2:sport.
  static ConnEnds V4Conn(uint16_t cport, uint16_t sport, bool from_start = true) {
    ConnEnds c;
    c.known = true;
    c.from_start = from_start;
    c.client_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 0, 1};
    c.server_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 0, 2};
    c.client_port = cport;
    c.server_port = sport;
    c.netns = 1;
    return c;
  }
  static RequestStart Req(bool server, uint32_t tid, uint64_t start_ns, ConnEnds conn,
                          uint64_t pos = 0) {
    RequestStart r;
    r.server = server;
    r.tgid = 50;
    r.tid = tid;
    r.start_ns = start_ns;
    r.conn = conn;
    r.stream_pos = pos;
    r.operation = "GET /x";
    return r;
  }
  static std::string Hashed(uint16_t cport, uint16_t sport, uint64_t pos) {
    TraceId id;
    zt_ctx_trace_id(kSalt, 0x0a4d0001, cport, 0x0a4d0002, sport, pos, id.bytes.data());
    return id.Hex();
  }
};

TEST_F(SpanLinkerCtxTest, RootsFromTheConnectionStartGetTheHashedTraceId) {
  End(linker.Start(Req(false, 1, 100, V4Conn(40000, 80), 77)), "client-root", 200, 1);
  linker.Flush();
  EXPECT_EQ(Get("client-root").trace_id.Hex(), Hashed(40000, 80, 77));

  // A server whose caller is not on this node: the same id the kernel computed at its read.
  End(linker.Start(Req(true, 2, 300, V4Conn(40001, 80), 5)), "server-root", 400, 2);
  linker.Tick(300 + 3'000'000'000ULL);
  EXPECT_EQ(Get("server-root").trace_id.Hex(), Hashed(40001, 80, 5));
}

TEST_F(SpanLinkerCtxTest, MidStreamIpv6AndFlagOffRootsKeepRandomIds) {
  End(linker.Start(Req(false, 1, 100, V4Conn(40000, 80, false), 77)), "mid-stream", 200, 1);
  ConnEnds v6 = V4Conn(40000, 80);
  v6.client_addr[0] = 0x20;  // not v4-mapped
  End(linker.Start(Req(false, 1, 210, v6, 77)), "ipv6", 300, 1);
  SpanLinker off([this](Span&& s) { out.push_back(std::move(s)); }, Opts(false));
  Span s;
  s.name = "flag-off";
  off.Finish(off.Start(Req(false, 1, 100, V4Conn(40000, 80), 77)), std::move(s), 200, 1);
  linker.Flush();
  off.Flush();
  for (const char* name : {"mid-stream", "ipv6", "flag-off"}) {
    EXPECT_NE(Get(name).trace_id.Hex(), Hashed(40000, 80, 77)) << name;
    EXPECT_TRUE(Get(name).trace_id.valid()) << name;
  }
}

TEST_F(SpanLinkerCtxTest, CallTakesTheKernelSpanIdOnlyInTheKernelsTrace) {
  // A request from a caller on another node (a root here), and the call its thread makes.
  const uint64_t served = linker.Start(Req(true, 7, 100, V4Conn(40000, 80), 0));
  RequestStart agree = Req(false, 7, 110, V4Conn(41000, 90));
  agree.kernel_ctx = true;
  TraceId hashed;
  zt_ctx_trace_id(kSalt, 0x0a4d0001, 40000, 0x0a4d0002, 80, 0, hashed.bytes.data());
  agree.kernel_trace_id = hashed;
  agree.kernel_span_id.bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  End(linker.Start(agree), "call-agree", 120, 7);

  // A call the kernel attributes to a trace this linker did not put it in.
  RequestStart disagree = Req(false, 7, 130, V4Conn(41001, 90));
  disagree.kernel_ctx = true;
  disagree.kernel_trace_id.bytes[0] = 0xee;
  disagree.kernel_span_id.bytes = {9, 9, 9, 9, 9, 9, 9, 9};
  End(linker.Start(disagree), "call-disagree", 140, 7);
  End(served, "served", 150, 7);
  linker.Tick(100 + 3'000'000'000ULL);  // the server stops waiting for a same-node caller
  linker.Flush();

  const Span &s = Get("served"), &a = Get("call-agree"), &d = Get("call-disagree");
  EXPECT_EQ(s.trace_id.Hex(), hashed.Hex());
  EXPECT_EQ(a.trace_id, s.trace_id);
  EXPECT_EQ(a.parent_span_id, s.span_id);
  EXPECT_EQ(a.span_id.Hex(), "0102030405060708");
  EXPECT_NE(d.span_id.Hex(), "0909090909090909");
  EXPECT_TRUE(d.span_id.valid());
  EXPECT_EQ(linker.stats().ctx_adopted, 1u);
  EXPECT_EQ(linker.stats().ctx_disagree, 1u);
}

TEST_F(SpanLinkerCtxTest, ChildLinkedBeforeTheCallResolvedSeesTheKernelSpanId) {
  // The call's parent waits for its same-node caller, so the call is unresolved when a
  // same-node callee (allowed in tests) links to it: the callee must name the adopted id.
  const uint64_t served = linker.Start(Req(true, 7, 100, V4Conn(40000, 80), 0));
  RequestStart call = Req(false, 7, 110, V4Conn(41000, 90));
  call.kernel_ctx = true;
  zt_ctx_trace_id(kSalt, 0x0a4d0001, 40000, 0x0a4d0002, 80, 0, call.kernel_trace_id.bytes.data());
  call.kernel_span_id.bytes = {1, 1, 1, 1, 2, 2, 2, 2};
  const uint64_t c = linker.Start(call);
  RequestStart callee = Req(true, 9, 115, V4Conn(41000, 90));
  callee.tgid = 60;
  End(linker.Start(callee), "callee", 118, 9);
  End(c, "call", 120, 7);
  End(served, "served", 150, 7);
  linker.Tick(100 + 3'000'000'000ULL);
  linker.Flush();
  EXPECT_EQ(Get("call").span_id.Hex(), "0101010102020202");
  EXPECT_EQ(Get("callee").parent_span_id, Get("call").span_id);
  EXPECT_EQ(Get("callee").trace_id, Get("served").trace_id);
}

}  // namespace
}  // namespace zerotrace::trace
