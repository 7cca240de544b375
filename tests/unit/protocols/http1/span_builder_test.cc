// BuildExchange: every attribute of an HTTP/1.x span, in order, for a table of exchanges, into
// a fresh span and into a recycled one (the agent's case: a span handed back by the export
// queue, whose attributes' strings and types differ from the new span's).
#include "protocols/http1/span_builder.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "http1_test_util.h"
#include "trace/conn_endpoints.h"

namespace zerotrace::protocols::http1 {
namespace {

// "key=value" per attribute, in the span's order; ints and bools printed bare.
std::vector<std::string> Dump(const trace::Span& s) {
  std::vector<std::string> out;
  for (const trace::Attribute& a : s.attributes) {
    std::string v;
    if (const auto* str = std::get_if<std::string>(&a.value)) {
      v = *str;
    } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
      v = std::to_string(*i);
    } else if (const auto* b = std::get_if<bool>(&a.value)) {
      v = *b ? "true" : "false";
    } else {
      v = std::to_string(std::get<double>(a.value));
    }
    out.push_back(std::string(a.key) + "=" + v);
  }
  out.push_back("name=" + s.name);
  out.push_back("status=" + std::to_string(static_cast<int>(s.status)) + " " + s.status_message);
  return out;
}

HttpExchange Exchange(std::string_view request, std::string_view response) {
  testing::FakeConn c;
  c.Request(request);
  if (!response.empty()) {
    c.Response(response);
  } else {
    c.Close(CloseReason::kReset);
  }
  EXPECT_EQ(c.out().size(), 1u);
  return std::move(c.out().at(0));
}

// A span as the export queue hands it back: other keys, other value types, long strings.
trace::Span Recycled() {
  trace::Span s;
  s.name = "an old span's name, longer than any inline buffer";
  s.status = trace::StatusCode::kError;
  s.status_message = "old message";
  for (int i = 0; i < 20; i++) {
    if (i % 3 == 0) {
      s.attributes.push_back({"old.int", int64_t{i}});
    } else {
      s.attributes.push_back({"old.str", std::string(40 + i, 'o')});
    }
  }
  return s;
}

struct Case {
  const char* what;
  bool server;
  std::string request;
  std::string response;  // empty: reset with no response
  std::vector<std::string> want;
};

const trace::ConnEndpoints kServerEnds{true, true, "10.0.0.2", "10.0.0.1", 8080, 40000};
const trace::ConnEndpoints kClientEnds{true, false, "10.0.0.1", "10.0.0.2", 40000, 8080};

TEST(Http1SpanBuilder, AttributesInOrderIntoFreshAndRecycledSpans) {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  const std::vector<Case> cases = {
      {"client, host with port, no query",
       false,
       "GET /f/7.txt HTTP/1.1\r\nHost: 127.0.0.1:8089\r\nUser-Agent: zt-rate-client\r\n\r\n",
       ok,
       {"http.request.method=GET", "url.path=/f/7.txt", "url.scheme=http",
        "server.address=127.0.0.1", "server.port=8089", "url.full=http://127.0.0.1:8089/f/7.txt",
        "network.protocol.version=1.1", "user_agent.original=zt-rate-client",
        "http.request.body.size=0", "http.response.status_code=200", "http.response.body.size=3",
        "name=GET /f/7.txt", "status=0 "}},
      {"server, redacted query, route template",
       true,
       "POST /api/v1/users/12345/orders?token=abc&page=2&flag HTTP/1.0\r\nhost: "
       "orders.example.com\r\nContent-Length: 2\r\n\r\nhi",
       "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
       {"http.request.method=POST", "url.path=/api/v1/users/12345/orders",
        "url.query=token=REDACTED&page=REDACTED&REDACTED", "url.scheme=http",
        "server.address=orders.example.com", "server.port=8080", "client.address=10.0.0.1",
        "network.protocol.version=1.0", "http.request.body.size=2", "http.response.status_code=503",
        "http.response.body.size=0", "error.type=503", "name=POST /api/v1/users/{id}/orders",
        "status=2 "}},
      {"client, absolute form with user info, path token, query",
       false,
       "PURGE http://user:secret@cache.example.com:80/a;jsessionid=S1/"
       "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl?q=x#frag HTTP/1.1\r\nHost: "
       "ignored.example.com:9999\r\n\r\n",
       "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
       {"http.request.method=_OTHER", "http.request.method_original=PURGE",
        "url.path=/a;jsessionid=REDACTED/REDACTED", "url.query=q=REDACTED", "url.scheme=http",
        "server.address=cache.example.com", "server.port=80",
        "url.full=http://REDACTED:REDACTED@cache.example.com/a;jsessionid=REDACTED/"
        "REDACTED?q=REDACTED",
        "network.protocol.version=1.1", "http.request.body.size=0", "http.response.status_code=404",
        "http.response.body.size=0", "error.type=404", "name=HTTP /a/{token}", "status=2 "}},
      {"client, no host, reset before the response",
       false,
       "DELETE /items/9f86d081884c7d659a2feaa0c55ad015 HTTP/1.1\r\n\r\n",
       "",
       {"http.request.method=DELETE", "url.path=/items/9f86d081884c7d659a2feaa0c55ad015",
        "url.scheme=http", "server.address=10.0.0.2", "server.port=8080",
        "url.full=http://10.0.0.2:8080/items/9f86d081884c7d659a2feaa0c55ad015",
        "network.protocol.version=1.1", "http.request.body.size=0", "error.type=connection_reset",
        "name=DELETE /items/{hex}", "status=2 connection_reset"}},
      {"server, framing conflict",
       true,
       "POST /up HTTP/1.1\r\nHost: [::1]:8443\r\nContent-Length: 5\r\nTransfer-Encoding: "
       "chunked\r\nUser-Agent: curl/8.0\r\n\r\n0\r\n\r\n",
       ok,
       {"http.request.method=POST", "url.path=/up", "url.scheme=http", "server.address=::1",
        "server.port=8443", "client.address=10.0.0.1", "network.protocol.version=1.1",
        "user_agent.original=curl/8.0", "http.request.body.size=0", "http.response.status_code=200",
        "http.response.body.size=3", "error.type=http_framing_conflict", "name=POST /up",
        "status=2 request has both Content-Length and Transfer-Encoding"}},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.what);
    const HttpExchange x = Exchange(tc.request, tc.response);
    const SessionContext ctx{tc.server ? uint8_t{ZT_ROLE_SERVER} : uint8_t{ZT_ROLE_CLIENT}, false,
                             tc.server ? &kServerEnds : &kClientEnds};
    ExchangeDone fresh;
    BuildExchange(x, ctx, SpanOptions{}, 0, &fresh);
    EXPECT_EQ(Dump(fresh.span), tc.want);
    ExchangeDone recycled;
    recycled.span = Recycled();
    BuildExchange(x, ctx, SpanOptions{}, 0, &recycled);
    EXPECT_EQ(Dump(recycled.span), tc.want);
    // Built again into its own last span (the same shape): still the same.
    BuildExchange(x, ctx, SpanOptions{}, 0, &recycled);
    EXPECT_EQ(Dump(recycled.span), tc.want);
  }
  // The fields reused from span to span, as a protocol reuses them: nothing of one exchange
  // shows in the next, in either order.
  http_common::HttpSpanFields reused;
  for (size_t i = 0; i < 2 * cases.size(); i++) {
    const Case& tc = cases[i < cases.size() ? i : 2 * cases.size() - 1 - i];
    SCOPED_TRACE(::testing::Message() << tc.what << ", fields reused");
    const HttpExchange x = Exchange(tc.request, tc.response);
    const SessionContext ctx{tc.server ? uint8_t{ZT_ROLE_SERVER} : uint8_t{ZT_ROLE_CLIENT}, false,
                             tc.server ? &kServerEnds : &kClientEnds};
    ExchangeDone done;
    BuildExchange(x, ctx, SpanOptions{}, 0, &done, &reused);
    EXPECT_EQ(Dump(done.span), tc.want);
  }
}

TEST(Http1SpanBuilder, WithoutRouteInferenceTheNameIsTheMethod) {
  const HttpExchange x = Exchange("GET /users/42?a=1 HTTP/1.1\r\nHost: h\r\n\r\n",
                                  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  const SessionContext ctx{ZT_ROLE_CLIENT, true, &kClientEnds};
  ExchangeDone done;
  done.span = Recycled();
  BuildExchange(x, ctx, SpanOptions{false}, 0, &done);
  EXPECT_EQ(Dump(done.span),
            (std::vector<std::string>{
                "http.request.method=GET", "url.path=/users/42", "url.query=a=REDACTED",
                "url.scheme=https", "server.address=h", "server.port=8080",
                "url.full=https://h:8080/users/42?a=REDACTED", "network.protocol.version=1.1",
                "http.request.body.size=0", "http.response.status_code=200",
                "http.response.body.size=0", "name=GET", "status=0 "}));
}

}  // namespace
}  // namespace zerotrace::protocols::http1
