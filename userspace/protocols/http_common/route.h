// URL handling for spans: request-target splitting, route templates, privacy redaction.
#pragma once

#include <string>
#include <string_view>

namespace zerotrace::protocols::http_common {

// The parts of a request-target (RFC 9112 section 3.2), as views into it.
struct TargetParts {
  std::string_view scheme;     // absolute-form only ("http")
  std::string_view authority;  // absolute-form host[:port], or the whole authority-form target
  std::string_view path;       // "/a/b"; "*" for asterisk-form; empty for authority-form
  std::string_view query;      // after '?', without it; empty if none
};
// Splits origin-form ("/p?q"), absolute-form ("http://h/p?q"), authority-form ("h:443") and
// asterisk-form ("*"). A fragment, which clients should not send, is dropped.
TargetParts SplitTarget(std::string_view target);

// A low-cardinality route template for a path: segments that are all digits become "{id}",
// UUIDs (8-4-4-4-12 hex) "{uuid}", and 16 or more hex digits "{hex}". Others are kept.
// "/users/42/orders/9f86d081884c7d65" -> "/users/{id}/orders/{hex}". Empty path -> "/".
std::string InferRoute(std::string_view path);

// Every query value replaced by "REDACTED", keys kept: "a=1&b=x" -> "a=REDACTED&b=REDACTED".
// A key without '=' has no value and is kept as it is.
std::string RedactQuery(std::string_view query);

// True for headers whose values must not leave the node. The rule, case-insensitive:
// the name is Authorization, Proxy-Authorization, Cookie, Set-Cookie, or contains one of
// "auth", "cookie", "token", "secret", "password", "passwd", "apikey", "api-key", "api_key",
// "session", "credential", "signature". (So X-Api-Key, X-Auth-Token, X-Amz-Security-Token,
// X-Csrf-Token and X-Hub-Signature are sensitive; User-Agent and Content-Type are not.)
bool IsSensitiveHeader(std::string_view name);

}  // namespace zerotrace::protocols::http_common
