// SpanLinker: the linking rules on synthetic requests, each test one rule or one race.
#include "trace/span_linker.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "linker_fixture.h"

namespace zerotrace::trace {
namespace {

constexpr uint64_t kMs = 1'000'000;

// Builds requests on connections between "processes" and collects what the linker releases.
class SpanLinkerTest : public LinkerFixture {
 protected:
  // A connection from 127.0.0.1:client_port to 127.0.0.1:server_port in netns 1.
  static ConnEnds Loopback(uint16_t client_port, uint16_t server_port, uint64_t netns = 1) {
    ConnEnds c;
    c.known = c.from_start = true;
    c.client_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    c.server_addr = c.client_addr;
    c.client_port = client_port;
    c.server_port = server_port;
    c.netns = netns;
    return c;
  }
  static RequestStart Req(bool server, uint32_t tgid, uint32_t tid, uint64_t start_ns,
                          ConnEnds conn, std::string_view target = "/x") {
    RequestStart r;
    r.server = server;
    r.tgid = tgid;
    r.tid = tid;
    r.start_ns = start_ns;
    r.conn = conn;
    r.operation = target;  // opaque to the linker: one request's "GET /x" alike
    return r;
  }
  bool Released(const std::string& name) const {
    for (const Span& s : out) {
      if (s.name == name) return true;
    }
    return false;
  }
  // Expects `child` to be `parent`'s child in the same trace.
  void ExpectChild(const std::string& parent, const std::string& child) {
    const Span &p = Get(parent), &c = Get(child);
    EXPECT_EQ(c.parent_span_id, p.span_id) << child << " under " << parent;
    EXPECT_EQ(c.trace_id, p.trace_id) << child << " in the trace of " << parent;
  }
  void ExpectRoot(const std::string& name) {
    const Span& s = Get(name);
    EXPECT_FALSE(s.parent_span_id.valid()) << name;
    EXPECT_TRUE(s.trace_id.valid()) << name;
    EXPECT_TRUE(s.span_id.valid()) << name;
  }
};

TEST_F(SpanLinkerTest, ServerJoinsValidTraceparentAndKeepsTracestate) {
  RequestStart r = Req(true, 20, 20, 100, ConnEnds{});
  r.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  r.tracestate = "vendor=1";
  End(linker.Start(r), "server", 200);
  const Span& s = Get("server");
  EXPECT_EQ(s.trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.parent_span_id.Hex(), "00f067aa0ba902b7");
  EXPECT_EQ(s.trace_state, "vendor=1");
  EXPECT_EQ(linker.stats().link_traceparent, 1u);
}

// A freed record's slot serves the next request with its string storage kept: nothing of the
// request before (operation, request id, trace state, trace) may remain as evidence or ids.
TEST_F(SpanLinkerTest, ReusedRecordCarriesNothingOfTheRequestBefore) {
  const std::string long_target = "/a/target/longer/than/a/string/keeps/inline?id=1";
  RequestStart a = Req(true, 100, 1, 100, ConnEnds{}, long_target);
  a.correlation = "req-aaaaaaaaaa";
  a.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  a.tracestate = "vendor=1";
  End(linker.Start(a), "a", 200, 1);  // answered by its thread: freed now
  ASSERT_EQ(linker.records(), 0u);
  const uint64_t hb = linker.Start(Req(true, 100, 1, 300, ConnEnds{}, ""));  // a's slot
  const uint64_t hc = linker.Start(Req(true, 100, 1, 301, ConnEnds{}, "/c"));
  RequestStart call = Req(false, 100, 1, 310, ConnEnds{}, long_target);
  call.correlation = "req-aaaaaaaaaa";
  End(linker.Start(call), "call", 320);
  End(hb, "b", 330, 1);
  End(hc, "c", 331, 1);
  EXPECT_EQ(linker.stats().link_ambiguous, 1u);
  ExpectRoot("call");
  ExpectRoot("b");
  EXPECT_EQ(Get("b").trace_state, "");
  EXPECT_NE(Get("b").trace_id, Get("a").trace_id);
  EXPECT_NE(Get("b").span_id, Get("a").span_id);
}

// A request in flight keeps its place in its thread's list while the index grows (a thousand
// other threads) and the sweep drops the lists others emptied: calls on its thread still find
// it, and once its thread answered it, it is gone from the list.
TEST_F(SpanLinkerTest, RequestStaysInItsThreadsListAcrossIndexGrowthAndSweeps) {
  const uint64_t x = linker.Start(Req(true, 100, 1, 100, ConnEnds{}));
  uint64_t ts = 200;
  for (uint32_t i = 0; i < 1000; i++) {
    const uint64_t h = linker.Start(Req(true, 200 + i % 7, 10 + i, ts, ConnEnds{}));
    End(h, "other", ts + 1, 10 + i);
    ts += 2;
  }
  linker.Tick(5 * kMs);  // sweeps: the emptied lists go
  End(linker.Start(Req(false, 100, 1, 6 * kMs, ConnEnds{})), "call-1", 6 * kMs + 1);
  End(x, "x", 7 * kMs, 1);
  linker.Tick(7 * kMs + 1);
  End(linker.Start(Req(false, 100, 1, 8 * kMs, ConnEnds{})), "call-2", 8 * kMs + 1);
  ExpectChild("x", "call-1");
  ExpectRoot("call-2");
  EXPECT_EQ(linker.stats().link_thread, 1u);
  EXPECT_EQ(linker.stats().client_roots, 1u);
}

TEST_F(SpanLinkerTest, InvalidTraceparentIsIgnored) {
  RequestStart r = Req(true, 20, 20, 100, ConnEnds{});
  r.traceparent = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
  End(linker.Start(r), "server", 200);
  ExpectRoot("server");
  EXPECT_EQ(linker.stats().link_traceparent, 0u);
}

TEST_F(SpanLinkerTest, SameNodeServerIsChildOfItsCallerWhicheverArrivesFirst) {
  for (bool server_first : {false, true}) {
    SCOPED_TRACE(server_first ? "server first" : "client first");
    out.clear();
    const ConnEnds conn = Loopback(server_first ? 40001 : 40002, 8080);
    RequestStart call = Req(false, 10, 10, 100, conn), served = Req(true, 20, 21, 105, conn);
    call.stream_pos = served.stream_pos = 77;
    uint64_t c, s;
    if (server_first) {
      s = linker.Start(served);
      c = linker.Start(call);
    } else {
      c = linker.Start(call);
      s = linker.Start(served);
    }
    End(s, "server", 150, 21);
    End(c, "client", 160);
    ExpectRoot("client");
    ExpectChild("client", "server");
  }
  EXPECT_EQ(linker.stats().link_peer, 2u);
}

TEST_F(SpanLinkerTest, PeerNeedsTheSameStreamPositionAndNetworkNamespace) {
  const ConnEnds a = Loopback(40003, 8080, 1), b = Loopback(40003, 8080, 2);
  RequestStart call = Req(false, 10, 10, 100, a), other_ns = Req(true, 20, 20, 105, b),
               other_pos = Req(true, 30, 30, 105, a);
  other_pos.stream_pos = 1;  // a later request on the connection, not this one
  End(linker.Start(call), "client", 200);
  End(linker.Start(other_ns), "server-ns2", 190, 20);
  End(linker.Start(other_pos), "server-pos1", 190, 30);
  EXPECT_FALSE(Released("server-ns2")) << "waits for its caller";
  linker.Tick(105 + 2'000 * kMs);
  ExpectRoot("server-ns2");
  ExpectRoot("server-pos1");
  EXPECT_EQ(linker.stats().link_peer, 0u);
  EXPECT_EQ(linker.stats().server_roots, 2u);
}

TEST_F(SpanLinkerTest, NonLoopbackPeersLinkAcrossNamespaces) {
  ConnEnds a = Loopback(40004, 80, 1);
  a.client_addr[12] = 10, a.client_addr[15] = 1;  // 10.0.0.1 -> 10.0.0.2 over a veth pair
  a.server_addr[12] = 10, a.server_addr[15] = 2;
  ConnEnds b = a;
  b.netns = 2;
  End(linker.Start(Req(true, 20, 20, 105, b)), "server", 150, 20);
  End(linker.Start(Req(false, 10, 10, 100, a)), "client", 160);
  ExpectChild("client", "server");
}

TEST_F(SpanLinkerTest, CallOnTheServingThreadIsChildOfThatRequest) {
  const uint64_t s = linker.Start(Req(true, 20, 21, 100, ConnEnds{}));
  const uint64_t same = linker.Start(Req(false, 20, 21, 110, ConnEnds{}));
  const uint64_t other = linker.Start(Req(false, 20, 22, 111, ConnEnds{}));
  End(same, "call-same-thread", 120);
  End(other, "call-other-thread", 121);
  End(s, "served", 130, 21);
  ExpectChild("served", "call-same-thread");
  ExpectRoot("call-other-thread");
  // Served and answered: a later call on that thread has no parent.
  End(linker.Start(Req(false, 20, 21, 140, ConnEnds{})), "call-after", 150);
  ExpectRoot("call-after");
  EXPECT_EQ(linker.stats().link_thread, 1u);
  EXPECT_EQ(linker.stats().client_roots, 2u);
}

TEST_F(SpanLinkerTest, ThreadProvesNothingOnceTheProcessAnswersFromAnotherThread) {
  // A response written by another thread than the request's reader: requests move between
  // threads in this process (a work-stealing runtime).
  End(linker.Start(Req(true, 30, 1, 100, ConnEnds{})), "moved", 110, 2);
  const uint64_t a = linker.Start(Req(true, 30, 1, 120, ConnEnds{}));
  const uint64_t b = linker.Start(Req(true, 30, 2, 121, ConnEnds{}));
  End(linker.Start(Req(false, 30, 1, 130, ConnEnds{})), "call", 140);
  End(a, "a", 150, 1);
  End(b, "b", 151, 2);
  ExpectRoot("call");
  EXPECT_EQ(linker.stats().link_ambiguous, 1u);
}

TEST_F(SpanLinkerTest, GoProcessLinksOnlyWhenOneRequestIsInFlightInTheWholeProcess) {
  RequestStart s1 = Req(true, 40, 1, 100, ConnEnds{}), call = Req(false, 40, 2, 110, ConnEnds{});
  s1.threads_migrate = call.threads_migrate = true;
  const uint64_t h1 = linker.Start(s1);
  End(linker.Start(call), "call-one-in-flight", 120);  // another thread: still the one request
  End(h1, "s1", 130, 3);
  ExpectChild("s1", "call-one-in-flight");

  RequestStart s2 = Req(true, 40, 1, 200, ConnEnds{}), s3 = Req(true, 40, 2, 201, ConnEnds{});
  RequestStart call2 = Req(false, 40, 1, 210, ConnEnds{});
  s2.threads_migrate = s3.threads_migrate = call2.threads_migrate = true;
  const uint64_t h2 = linker.Start(s2), h3 = linker.Start(s3);
  End(linker.Start(call2), "call-two-in-flight", 220);
  End(h2, "s2", 230, 1);
  End(h3, "s3", 231, 2);
  ExpectRoot("call-two-in-flight");
}

// Goroutine evidence (Go): the call names the server connection its goroutine serves. With
// three requests in flight on three connections, the process-wide rule links nothing; the
// evidence links each call to the one request in flight on its connection, and nothing when
// the named connection has no single request in flight at the time.
TEST_F(SpanLinkerTest, GoroutineEvidenceLinksEachCallToTheRequestOnItsConnection) {
  struct Case {
    const char* name;
    uint64_t served_conn;  // the evidence: 0 none
    uint64_t since_ns;     // a child goroutine's start; 0: the call's
    uint64_t call_ns;
    const char* parent;  // nullptr: a root
  };
  // Requests: "a" on conn 11 over [100, 500], "b" on conn 12 over [120, 500], "c" on conn 13
  // over [140, 200] and "d" on conn 13 over [300, 500] (keep-alive: one after the other).
  const Case cases[] = {
      {"handler-on-a", 11, 0, 150, "a"},
      {"handler-on-b", 12, 0, 160, "b"},
      {"handler-on-c", 13, 0, 170, "c"},
      {"handler-on-d", 13, 0, 310, "d"},
      {"child-of-c-while-c", 13, 150, 190, "c"},
      {"child-of-c-after-c-ended", 13, 150, 320, nullptr},  // d is in flight, but c started it
      {"child-of-a", 11, 130, 400, "a"},
      {"no-request-on-conn", 99, 0, 150, nullptr},
      {"before-any-request", 11, 0, 90, nullptr},
      {"no-evidence", 0, 0, 150, nullptr},  // three in flight: the process-wide rule cannot tell
  };
  auto server = [&](uint64_t conn_id, uint64_t start) {
    RequestStart r = Req(true, 50, 1, start, ConnEnds{});
    r.threads_migrate = true;
    r.conn_id = conn_id;
    return linker.Start(r);
  };
  const uint64_t a = server(11, 100), b = server(12, 120), c = server(13, 140);
  std::map<uint64_t, std::vector<const Case*>> calls_at;  // by time, to start them in order
  for (const Case& k : cases) calls_at[k.call_ns].push_back(&k);
  uint64_t d = 0;
  bool c_ended = false;
  for (const auto& [at, ks] : calls_at) {
    if (at > 200 && !c_ended) {
      End(c, "c", 200, 1);
      d = server(13, 300);
      c_ended = true;
    }
    for (const Case* k : ks) {
      RequestStart call = Req(false, 50, 2, k->call_ns, ConnEnds{}, k->name);
      call.threads_migrate = true;
      call.served_conn_id = k->served_conn;
      call.served_since_ns = k->since_ns;
      End(linker.Start(call), k->name, k->call_ns + 5);
    }
  }
  End(a, "a", 500, 1);
  End(b, "b", 500, 1);
  End(d, "d", 500, 1);
  for (const Case& k : cases) {
    if (k.parent) {
      ExpectChild(k.parent, k.name);
    } else {
      ExpectRoot(k.name);
    }
  }
  EXPECT_EQ(linker.stats().link_goroutine, 6u);
  EXPECT_EQ(linker.stats().link_goroutine_unserved, 3u);
  EXPECT_EQ(linker.stats().link_thread + linker.stats().link_forwarded, 0u);
}

// Two requests in flight on one connection (a pipelining client): the evidence cannot tell.
TEST_F(SpanLinkerTest, GoroutineEvidenceWithTwoRequestsOnItsConnectionLinksNothing) {
  RequestStart s1 = Req(true, 50, 1, 100, ConnEnds{}), s2 = Req(true, 50, 1, 110, ConnEnds{});
  s1.conn_id = s2.conn_id = 7;
  const uint64_t h1 = linker.Start(s1), h2 = linker.Start(s2);
  RequestStart call = Req(false, 50, 2, 120, ConnEnds{});
  call.served_conn_id = 7;
  End(linker.Start(call), "call", 130);
  End(h1, "s1", 140, 1);
  End(h2, "s2", 150, 1);
  ExpectRoot("call");
  EXPECT_EQ(linker.stats().link_goroutine_unserved, 1u);
}

// HTTP/2: the thread that read a stream's request (a poller) need not be the one serving it,
// so a request on a multiplexed connection makes its process judged process-wide: with two
// requests in flight, a call on the reader's thread has no parent (it would have had one by
// thread alone).
TEST_F(SpanLinkerTest, MultiplexedRequestsAreNeverLinkedByThread) {
  RequestStart s1 = Req(true, 50, 21, 100, ConnEnds{});
  s1.multiplexed = true;
  const uint64_t h1 = linker.Start(s1);
  const uint64_t h2 = linker.Start(Req(true, 50, 22, 101, ConnEnds{}));
  End(linker.Start(Req(false, 50, 21, 110, ConnEnds{})), "call-on-reader-thread", 120);
  End(h1, "s1", 130, 23);
  End(h2, "s2", 131, 22);
  ExpectRoot("call-on-reader-thread");
  EXPECT_EQ(linker.stats().link_thread, 0u);
}

TEST_F(SpanLinkerTest, ChildIsReleasedBeforeItsParentEndsAndNamesIt) {
  const uint64_t s = linker.Start(Req(true, 20, 21, 100, ConnEnds{}));
  End(linker.Start(Req(false, 20, 21, 110, ConnEnds{})), "call", 120);
  ASSERT_TRUE(Released("call"));
  EXPECT_FALSE(Released("served"));
  End(s, "served", 130, 21);
  ExpectChild("served", "call");
}

// Two requests in flight on one thread (or in a multiplexing process): a call is linked only
// to the one its evidence names (operation, request id, the trace id of a W3C context passed
// on), and only when no evidence contradicts it.
TEST_F(SpanLinkerTest, EventLoopLinksOnlyOnEvidence) {
  constexpr const char* kTraceA = "4bf92f3577b34da6a3ce929d0e0e4736";
  constexpr const char* kTraceB = "0af7651916cd43dd8448eb211c80319c";
  struct Case {
    const char* name;
    std::string call_target, call_request_id;
    const char* want_parent;      // nullptr: unparented and counted ambiguous
    std::string call_trace = "";  // the trace id of the call's traceparent (none if empty)
    std::string b_trace = kTraceB;
    uint64_t SpanLinkerStats::*counter = nullptr;
  };
  using S = SpanLinkerStats;
  const std::vector<Case> cases = {
      {"forwarded", "/b?id=2", "", "b", "", kTraceB, &S::link_forwarded},
      {"request id", "/other", "req-aaaaaaaaaa", "a", "", kTraceB, &S::link_correlation},
      {"both agree", "/a?id=1", "req-aaaaaaaaaa", "a", "", kTraceB, &S::link_correlation},
      {"both disagree", "/b?id=2", "req-aaaaaaaaaa", nullptr},
      {"no evidence", "/other", "", nullptr},
      {"short request id", "/other", "id-1", nullptr},
      {"trace id", "/other", "", "b", kTraceB, kTraceB, &S::link_propagated},
      {"trace id and request id agree", "/other", "req-aaaaaaaaaa", "a", kTraceA, kTraceB,
       &S::link_propagated},
      {"trace id and request id disagree", "/other", "req-aaaaaaaaaa", nullptr, kTraceB},
      {"trace id and operation disagree", "/a?id=1", "", nullptr, kTraceB},
      {"trace id both carried, request id picks", "/other", "req-aaaaaaaaaa", "a", kTraceA, kTraceA,
       &S::link_correlation},
      {"trace id both carried", "/other", "", nullptr, kTraceA, kTraceA},
      {"trace id neither carried", "/other", "", nullptr, "11111111111111111111111111111111"},
  };
  uint32_t tgid = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    out.clear();
    tgid++;
    RequestStart a = Req(true, tgid, 1, 100, ConnEnds{}, "/a?id=1"),
                 b = Req(true, tgid, 1, 101, ConnEnds{}, "/b?id=2");
    a.correlation = "req-aaaaaaaaaa";
    b.correlation = "req-bbbbbbbbbb";
    // The call passes the context on under a span of its process's own: only the trace id is
    // the same.
    const std::string tp_a = std::string("00-") + kTraceA + "-00f067aa0ba902b7-01",
                      tp_b = "00-" + c.b_trace + "-00f067aa0ba902b8-01",
                      tp_call = "00-" + c.call_trace + "-1234567890abcdef-01";
    a.traceparent = tp_a;
    b.traceparent = tp_b;
    const uint64_t ha = linker.Start(a), hb = linker.Start(b);
    RequestStart call = Req(false, tgid, 1, 110, ConnEnds{}, c.call_target);
    call.correlation = c.call_request_id;
    if (!c.call_trace.empty()) call.traceparent = tp_call;
    const SpanLinkerStats before = linker.stats();
    End(linker.Start(call), "call", 120);
    End(ha, "a", 130, 1);
    End(hb, "b", 131, 1);
    if (c.want_parent) {
      ExpectChild(c.want_parent, "call");
      EXPECT_EQ(linker.stats().*c.counter, before.*c.counter + 1);
    } else {
      EXPECT_NE(Get("call").parent_span_id, Get("a").span_id);
      EXPECT_NE(Get("call").parent_span_id, Get("b").span_id);
      EXPECT_EQ(linker.stats().link_ambiguous, before.link_ambiguous + 1);
      if (c.call_trace.empty()) ExpectRoot("call");
    }
  }
}

TEST(PrefixRewrite, Table) {
  struct Case {
    const char *request, *call, *rewrite;
  };
  const Case cases[] = {
      {"GET /api/orders/7", "GET /orders/7", "-/api"},  // proxy_pass http://up/ strips "/api"
      {"GET /orders/7", "GET /internal/orders/7", "+/internal"},  // a prefix added on the way
      {"GET /api/v1/a?id=3", "GET /a?id=3", "-/api/v1"},  // a query makes one segment enough
      {"GET /api/health", "GET /health", ""},             // one segment: too common to tell
      {"GET /api/orders/7", "POST /orders/7", ""},        // another method
      {"GET /apiorders/7", "GET /orders/7", ""},          // not at a segment boundary
      {"GET /x/orders/7", "GET /x/orders/7", ""},         // the same (the exact rule's case)
      {"GET /a/b/c", "GET /b", ""},
      {"/api/orders/7", "/orders/7", ""},  // no method: not this rule's form
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PrefixRewrite(c.request, c.call), c.rewrite) << c.request << " -> " << c.call;
  }
}

// The hot-path prefilter never rejects a correlation header, in any case, and rejects the
// common names before anything lowercases them.
TEST(CorrelationHeader, PrefilterPassesEveryCorrelationHeaderInAnyCase) {
  for (std::string_view h : kCorrelationHeaders) {
    EXPECT_TRUE(IsCorrelationHeader(h)) << h;
    std::string upper(h), mixed(h);
    for (size_t i = 0; i < upper.size(); i++) {
      upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
      if (i % 2 == 0) mixed[i] = upper[i];
    }
    EXPECT_TRUE(MayBeCorrelationHeader(h)) << h;
    EXPECT_TRUE(MayBeCorrelationHeader(upper)) << upper;
    EXPECT_TRUE(MayBeCorrelationHeader(mixed)) << mixed;
  }
  for (std::string_view name : {"Host", "User-Agent", "Accept", "Content-Length", "Connection",
                                "Accept-Encoding", "Content-Type", "", "x-request-ix"}) {
    EXPECT_FALSE(MayBeCorrelationHeader(name)) << name;
    EXPECT_FALSE(IsCorrelationHeader(name)) << name;
  }
}

// A proxy's event loop serving two requests at once, forwarding each with a prefix rewrite:
// each call names its own request; identical targets leave both calls unparented.
TEST_F(SpanLinkerTest, ProxyRewritingAPrefixLinksEachCallToItsRequest) {
  // Unlearned, the rewrite is no evidence.
  RequestStart u1 = Req(true, 300, 1, 10, ConnEnds{}, "GET /api/orders/8"),
               u2 = Req(true, 300, 1, 11, ConnEnds{}, "GET /api/orders/9");
  const uint64_t hu1 = linker.Start(u1), hu2 = linker.Start(u2);
  End(linker.Start(Req(false, 300, 1, 12, ConnEnds{}, "GET /orders/9")), "call-9", 20);
  End(hu1, "u1", 30, 1);
  End(hu2, "u2", 31, 1);
  ExpectRoot("call-9");
  EXPECT_EQ(linker.stats().link_forwarded_rewritten, 0u);
  // One request alone in flight teaches the process's rewrite ("-/api")...
  const uint64_t lone = linker.Start(Req(true, 300, 1, 40, ConnEnds{}, "GET /api/orders/3"));
  End(linker.Start(Req(false, 300, 1, 41, ConnEnds{}, "GET /orders/3")), "call-3", 42);
  End(lone, "lone", 43, 1);
  EXPECT_EQ(linker.stats().rewrites_learned, 1u);

  // ...which then tells concurrent requests apart.
  RequestStart a = Req(true, 300, 1, 100, ConnEnds{}, "GET /api/orders/1"),
               b = Req(true, 300, 1, 101, ConnEnds{}, "GET /api/orders/2");
  const uint64_t ha = linker.Start(a), hb = linker.Start(b);
  End(linker.Start(Req(false, 300, 1, 110, ConnEnds{}, "GET /orders/2")), "call-b", 120);
  End(linker.Start(Req(false, 300, 1, 111, ConnEnds{}, "GET /orders/1")), "call-a", 121);
  End(ha, "a", 130, 1);
  End(hb, "b", 131, 1);
  ExpectChild("a", "call-a");
  ExpectChild("b", "call-b");
  EXPECT_EQ(linker.stats().link_forwarded_rewritten, 2u);

  out.clear();
  RequestStart c = Req(true, 301, 1, 200, ConnEnds{}, "GET /api/orders/5"),
               d = Req(true, 301, 1, 201, ConnEnds{}, "GET /api/orders/5");
  const uint64_t hc = linker.Start(c), hd = linker.Start(d);
  End(linker.Start(Req(false, 301, 1, 210, ConnEnds{}, "GET /orders/5")), "call", 220);
  End(hc, "c", 230, 1);
  End(hd, "d", 231, 1);
  ExpectRoot("call");

  // Another process has learned nothing.
  out.clear();
  RequestStart e = Req(true, 302, 1, 300, ConnEnds{}, "GET /api/orders/1"),
               f = Req(true, 302, 1, 301, ConnEnds{}, "GET /api/orders/2");
  const uint64_t he = linker.Start(e), hf = linker.Start(f);
  End(linker.Start(Req(false, 302, 1, 310, ConnEnds{}, "GET /orders/2")), "call-f", 320);
  End(he, "e", 330, 1);
  End(hf, "f", 331, 1);
  ExpectRoot("call-f");
}

TEST_F(SpanLinkerTest, TraceIdFlowsDownAChainResolvedOutOfOrder) {
  // curl -> proxy (server, then its own call) -> backend. The proxy's server span learns its
  // caller only after the proxy's call and the backend have started.
  const ConnEnds front = Loopback(40010, 80), back = Loopback(40011, 9000);
  RequestStart curl = Req(false, 1, 1, 100, front), proxy_in = Req(true, 2, 2, 101, front),
               proxy_out = Req(false, 2, 2, 102, back), backend = Req(true, 3, 3, 103, back);
  const uint64_t hs = linker.Start(proxy_in);
  const uint64_t hp = linker.Start(proxy_out);
  const uint64_t hb = linker.Start(backend);
  End(hb, "backend", 104, 3);
  End(hp, "proxy-out", 105);
  EXPECT_FALSE(Released("backend")) << "its trace is not known yet";
  const uint64_t hc = linker.Start(curl);
  End(hs, "proxy-in", 106, 2);
  End(hc, "curl", 107);
  ExpectRoot("curl");
  ExpectChild("curl", "proxy-in");
  ExpectChild("proxy-in", "proxy-out");
  ExpectChild("proxy-out", "backend");
  EXPECT_EQ(linker.records(), 0u) << "everything released is freed";
}

TEST_F(SpanLinkerTest, ServerWithoutCallerWaitsThenBecomesARoot) {
  End(linker.Start(Req(true, 2, 2, 100, Loopback(40020, 80))), "server", 110, 2);
  EXPECT_TRUE(out.empty());
  linker.Tick(100 + 2'000 * kMs - 1);
  EXPECT_TRUE(out.empty());
  linker.Tick(100 + 2'000 * kMs);
  ExpectRoot("server");
  EXPECT_EQ(linker.records(), 0u);
}

TEST_F(SpanLinkerTest, FlushReleasesEveryFinishedSpanAndCountsTheUnfinished) {
  End(linker.Start(Req(true, 2, 2, 100, Loopback(40030, 80))), "waiting", 110, 2);
  linker.Start(Req(true, 3, 3, 100, ConnEnds{}));  // never finishes
  linker.Flush();
  ExpectRoot("waiting");
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(linker.stats().abandoned, 1u);
  EXPECT_EQ(linker.records(), 0u);
}

TEST_F(SpanLinkerTest, AbandonedRequestStopsBeingACandidate) {
  const uint64_t s = linker.Start(Req(true, 2, 7, 100, ConnEnds{}));
  linker.Abandon(s);
  End(linker.Start(Req(false, 2, 7, 110, ConnEnds{})), "call", 120);
  ExpectRoot("call");
  EXPECT_EQ(linker.records(), 0u);
}

TEST_F(SpanLinkerTest, UnfinishedRequestsAreGivenUpByAgeAndRecordsStayBounded) {
  SpanLinker::Options o;
  o.max_records = 100;
  SpanLinker small([this](Span&& s) { out.push_back(std::move(s)); }, o);
  for (uint32_t i = 0; i < 1000; i++) small.Start(Req(true, 2, i, 100 + i, ConnEnds{}));
  EXPECT_LE(small.records(), 100u);
  small.Tick(2000 + o.max_age_ns);
  EXPECT_EQ(small.records(), 0u);
  EXPECT_EQ(small.stats().abandoned, 1000u);
}

// Records live in chunks of slots: a thousand requests in flight span several chunks, and
// each request must still find its own record (here: its own caller's trace id).
TEST_F(SpanLinkerTest, ThousandRequestsInFlightEachKeepTheirOwnRecord) {
  constexpr uint32_t kRequests = 1000;
  std::vector<uint64_t> handles;
  std::vector<std::string> trace_ids;
  for (uint32_t i = 0; i < kRequests; i++) {
    char trace_id[33];
    std::snprintf(trace_id, sizeof(trace_id), "%032x", i + 1);
    trace_ids.push_back(trace_id);
    const std::string traceparent = "00-" + trace_ids.back() + "-00f067aa0ba902b7-01";
    RequestStart r = Req(true, 2, 1000 + i, 100 + i, ConnEnds{});
    r.traceparent = traceparent;
    handles.push_back(linker.Start(r));
  }
  EXPECT_EQ(linker.records(), kRequests);
  for (uint32_t i = kRequests; i-- > 0;) End(handles[i], "s" + std::to_string(i), 5000 + i);
  linker.Flush();
  ASSERT_EQ(out.size(), kRequests);
  for (uint32_t i = 0; i < kRequests; i++) {
    EXPECT_EQ(Get("s" + std::to_string(i)).trace_id.Hex(), trace_ids[i]) << i;
  }
  EXPECT_EQ(linker.records(), 0u);
  // A freed record's handle finds nothing, even once its slot holds a new request.
  const uint64_t reused = linker.Start(Req(true, 2, 7, 9000, ConnEnds{}));
  EXPECT_NE(reused, handles.back());
  End(handles.back(), "stale", 9100);
  EXPECT_EQ(linker.stats().unstarted, 1u);
  EXPECT_EQ(linker.records(), 1u);
}

TEST_F(SpanLinkerTest, IdsAreNeverZeroAndSpanIdsDiffer) {
  std::map<std::string, int> seen;
  for (int i = 0; i < 1000; i++) {
    Span s;
    linker.FinishUnstarted(std::move(s));
  }
  for (const Span& s : out) {
    ASSERT_TRUE(s.trace_id.valid());
    ASSERT_TRUE(s.span_id.valid());
    seen[s.span_id.Hex()]++;
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace zerotrace::trace

namespace zerotrace::trace {
namespace {

// FinishInSlot with a sink that, like the agent's (encode, then keep nothing), leaves the span
// where it is: a span that leaves at once leaves its storage in the slot; one that must wait
// is kept whole in its record, the slot gets other storage, and it is released intact later.
TEST(SpanLinkerSlot, LeavingSpanKeepsItsStorageInTheSlotAndAWaitingOneLeavesWhole) {
  std::vector<Span> out;
  SpanLinker linker([&out](Span&& s) { out.push_back(s); }, SpanLinker::Options{});
  auto fill = [](Span* s, const std::string& name) {
    s->name = name;
    s->attributes.clear();
    s->attributes.push_back({"url.path", std::string("/a/path/longer/than/inline/storage")});
    s->attributes.push_back({"http.response.status_code", int64_t{200}});
  };
  Span slot;

  // A call from a thread serving nothing: a root, resolved at its start, so it leaves at once.
  RequestStart call;
  call.tgid = call.tid = 5;
  call.start_ns = 100;
  const uint64_t c = linker.Start(call);
  fill(&slot, "call");
  const Attribute* storage = slot.attributes.data();
  linker.FinishInSlot(c, &slot, 110, 5);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "call");
  EXPECT_TRUE(out[0].trace_id.valid());
  EXPECT_EQ(out[0].attributes.size(), 2u);
  EXPECT_EQ(slot.attributes.data(), storage) << "the slot keeps the span's storage";

  // A same-node server whose caller is unknown: it waits for its peer, held in its record.
  RequestStart served;
  served.server = true;
  served.tgid = served.tid = 6;
  served.start_ns = 200;
  served.conn.known = served.conn.from_start = true;
  served.conn.client_addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  served.conn.server_addr = served.conn.client_addr;
  served.conn.client_port = 40100;
  served.conn.server_port = 80;
  served.conn.netns = 1;
  const uint64_t s = linker.Start(served);
  fill(&slot, "served");
  linker.FinishInSlot(s, &slot, 210, 6);
  EXPECT_EQ(out.size(), 1u) << "released before its caller's wait ended";
  EXPECT_NE(slot.name, "served") << "the waiting span left the slot for its record";
  fill(&slot, "next");  // the slot is reused at once; the held span must not change
  linker.Tick(200 + 2'000'000'000ull);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].name, "served");
  ASSERT_EQ(out[1].attributes.size(), 2u);
  EXPECT_EQ(out[1].attributes[0].value,
            AttributeValue(std::string("/a/path/longer/than/inline/storage")));
  EXPECT_TRUE(out[1].trace_id.valid());
  EXPECT_FALSE(out[1].parent_span_id.valid());
}

}  // namespace
}  // namespace zerotrace::trace
