// Specification of route templates, target splitting, query redaction and header privacy.
#include "protocols/http_common/route.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zerotrace::protocols::http_common {
namespace {

TEST(HttpRoute, RouteInference) {
  struct Case {
    std::string path;
    std::string route;
  };
  const std::vector<Case> cases = {
      {"", "/"},
      {"/", "/"},
      {"/health", "/health"},
      {"/users/42", "/users/{id}"},
      {"/users/42/", "/users/{id}/"},
      {"/users/42/orders/7", "/users/{id}/orders/{id}"},
      {"/v1/items", "/v1/items"},
      {"/objects/123e4567-e89b-12d3-a456-426614174000", "/objects/{uuid}"},
      {"/objects/123E4567-E89B-12D3-A456-426614174000/meta", "/objects/{uuid}/meta"},
      {"/blobs/9f86d081884c7d659a2feaa0c55ad015", "/blobs/{hex}"},
      {"/commits/deadbeefdeadbee", "/commits/deadbeefdeadbee"},  // 15 hex: could be a word
      {"/cafe", "/cafe"},
      {"/a//b", "/a//b"},
      {"/files/12abc", "/files/12abc"},
      {"/123-456", "/123-456"},
      {"*", "*"},
      // Around the whole-path shortcut: a digits-only segment first, last or alone, a
      // 16-byte segment, a path parameter.
      {"/f/7.txt", "/f/7.txt"},
      {"7", "{id}"},
      {"/7/f", "/{id}/f"},
      {"/f/7", "/f/{id}"},
      {"/x/deadbeefdeadbeef", "/x/{hex}"},
      {"/x/deadbeefdeadbeeg", "/x/deadbeefdeadbeeg"},
      {"/a;v=1/b", "/a/b"},
  };
  for (const Case& tc : cases) EXPECT_EQ(InferRoute(tc.path), tc.route) << tc.path;
}

TEST(HttpRoute, SplitTarget) {
  struct Case {
    std::string target;
    std::string scheme, authority, path, query;
  };
  const std::vector<Case> cases = {
      {"/a/b?x=1&y=2", "", "", "/a/b", "x=1&y=2"},
      {"/a/b", "", "", "/a/b", ""},
      {"/a?", "", "", "/a", ""},
      {"/a#frag", "", "", "/a", ""},
      {"/a?x=1#frag", "", "", "/a", "x=1"},
      {"/a#frag?x=1", "", "", "/a", ""},
      {"/a?x=1?y=2&z", "", "", "/a", "x=1?y=2&z"},
      {"/?#", "", "", "/", ""},
      {"/", "", "", "/", ""},
      {"http://example.com:8080/p?q=1", "http", "example.com:8080", "/p", "q=1"},
      {"http://example.com", "http", "example.com", "/", ""},
      {"http://example.com?q", "http", "example.com", "/", "q"},
      {"example.com:443", "", "example.com:443", "", ""},
      {"*", "", "", "*", ""},
  };
  for (const Case& tc : cases) {
    const TargetParts p = SplitTarget(tc.target);
    EXPECT_EQ(p.scheme, tc.scheme) << tc.target;
    EXPECT_EQ(p.authority, tc.authority) << tc.target;
    EXPECT_EQ(p.path, tc.path) << tc.target;
    EXPECT_EQ(p.query, tc.query) << tc.target;
  }
}

TEST(HttpRoute, RedactQuery) {
  struct Case {
    std::string query;
    std::string redacted;
  };
  const std::vector<Case> cases = {
      {"", ""},
      {"a=1", "a=REDACTED"},
      {"a=1&b=x", "a=REDACTED&b=REDACTED"},
      {"token=s3cr3t&page=2", "token=REDACTED&page=REDACTED"},
      // A bare key may be the secret itself (issue 18, item 2).
      {"flag", "REDACTED"},
      {"flag&a=", "REDACTED&a=REDACTED"},
      {"a=1&SECRET", "a=REDACTED&REDACTED"},
      {"a=b=c", "a=REDACTED"},
      {"a=1&&b=2", "a=REDACTED&&b=REDACTED"},
      {"a=1;b=2", "a=REDACTED"},
  };
  for (const Case& tc : cases) EXPECT_EQ(RedactQuery(tc.query), tc.redacted) << tc.query;
}

// Issue 18, item 2: credentials and tokens outside query values.
TEST(HttpRoute, UserInfoIsNeverPartOfTheAuthority) {
  const TargetParts p = SplitTarget("http://bob:SECRET@127.0.0.1:8080/a?x=1");
  EXPECT_EQ(p.authority, "127.0.0.1:8080");
  EXPECT_TRUE(p.userinfo);
  EXPECT_EQ(p.path, "/a");
  EXPECT_FALSE(SplitTarget("http://host/a").userinfo);
  EXPECT_EQ(SplitTarget("http://TOKEN@host/a").authority, "host");
}

TEST(HttpRoute, TokenSegments) {
  struct Case {
    std::string segment;
    bool token;
  };
  const std::vector<Case> cases = {
      {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_"
       "XgL0n3I9PlFUP0THsR8U",
       true},                                                  // a JWT
      {"Qm9iOlNlY3JldFBhc3N3b3JkMTIzIUAjJCVeJiooKQ", true},    // base64, mixed case and digits
      {"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY", true},              // 32 characters
      {"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1x", false},              // 31
      {"how-to-configure-your-first-cluster-in-2024", false},  // a slug: no upper case
      {"ThisIsAVeryLongCamelCaseWordWithoutDigits", false},    // no digit
      {"users", false},
  };
  for (const Case& tc : cases) EXPECT_EQ(IsTokenSegment(tc.segment), tc.token) << tc.segment;
}

TEST(HttpRoute, RedactPathAndRoute) {
  struct Case {
    std::string path, redacted, route;
  };
  const std::string jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
  const std::vector<Case> cases = {
      {"/a;jsessionid=SECRET/b", "/a;jsessionid=REDACTED/b", "/a/b"},
      {"/cart;SECRET", "/cart;REDACTED", "/cart"},
      {"/reset/" + jwt, "/reset/REDACTED", "/reset/{token}"},
      {"/users/42/orders", "", "/users/{id}/orders"},  // nothing to redact: not copied
      {"/k/" + jwt + "/x", "/k/REDACTED/x", "/k/{token}/x"},
      {"/" + jwt + "/", "/REDACTED/", "/{token}/"},
      {"/a/b;", "/a/b;", "/a/b"},
      {"/" + std::string(40, 'w') + "/x", "", "/" + std::string(40, 'w') + "/x"},  // a word
      {"", "", "/"},
  };
  for (const Case& tc : cases) {
    std::string out;
    EXPECT_EQ(RedactPath(tc.path, &out), !tc.redacted.empty()) << tc.path;
    if (!tc.redacted.empty()) {
      EXPECT_EQ(out, tc.redacted) << tc.path;
    }
    EXPECT_EQ(InferRoute(tc.path), tc.route) << tc.path;
  }
}

TEST(HttpRoute, SensitiveHeaders) {
  struct Case {
    std::string name;
    bool sensitive;
  };
  const std::vector<Case> cases = {
      {"Authorization", true},
      {"proxy-authorization", true},
      {"Cookie", true},
      {"Set-Cookie", true},
      {"X-Api-Key", true},
      {"api-key", true},
      {"apikey", true},
      {"X-API_KEY", true},
      {"X-Auth-Token", true},
      {"X-Amz-Security-Token", true},
      {"X-Csrf-Token", true},
      {"X-Client-Secret", true},
      {"X-Password", true},
      {"X-Session-Id", true},
      {"X-Hub-Signature-256", true},
      {"Host", false},
      {"User-Agent", false},
      {"Content-Type", false},
      {"Traceparent", false},
      {"Accept", false},
      {"X-Request-Id", false},
  };
  for (const Case& tc : cases) EXPECT_EQ(IsSensitiveHeader(tc.name), tc.sensitive) << tc.name;
}

}  // namespace
}  // namespace zerotrace::protocols::http_common
