// URL handling for spans: request-target splitting, route templates, privacy redaction.
#pragma once

#include <string>
#include <string_view>

namespace zerotrace::protocols::http_common {

// The parts of a request-target (RFC 9112 section 3.2), as views into it.
struct TargetParts {
  std::string_view scheme;     // absolute-form only ("http")
  std::string_view authority;  // host[:port] of an absolute-form target (user info removed), or
                               // the whole authority-form target
  bool userinfo = false;       // the absolute-form target carried "user:password@" (never kept)
  std::string_view path;       // "/a/b"; "*" for asterisk-form; empty for authority-form
  std::string_view query;      // after '?', without it; empty if none
};
// Splits origin-form ("/p?q"), absolute-form ("http://h/p?q"), authority-form ("h:443") and
// asterisk-form ("*"). A fragment, which clients should not send, is dropped.
TargetParts SplitTarget(std::string_view target);

// A low-cardinality route template for a path: segments that are all digits become "{id}",
// UUIDs (8-4-4-4-12 hex) "{uuid}", 16 or more hex digits "{hex}", tokens (IsTokenSegment)
// "{token}". Path parameters (";jsessionid=...") are left out. Others are kept.
// "/users/42/orders/9f86d081884c7d65" -> "/users/{id}/orders/{hex}". Empty path -> "/".
std::string InferRoute(std::string_view path);
// InferRoute appended to *out (the span's name: no string of its own).
void AppendRoute(std::string_view path, std::string* out);

// A path segment that is a credential or an opaque id rather than a word: a JWT (three
// base64url parts joined by '.'), or 32 or more base64/base64url characters mixing upper and
// lower case letters and digits (so long lower-case slugs stay words).
bool IsTokenSegment(std::string_view segment);

// The path as it may leave the agent (url.path, url.full): path parameter values and token
// segments become "REDACTED" ("/a;jsessionid=S/eyJ.x.y" -> "/a;jsessionid=REDACTED/REDACTED").
// Returns false (and leaves *out alone) when nothing needs redacting, the common case.
bool RedactPath(std::string_view path, std::string* out);

// Every query value replaced by "REDACTED", keys kept: "a=1&b=x" -> "a=REDACTED&b=REDACTED".
// A key without a value may itself be the secret ("?a=1&TOKEN"): it becomes "REDACTED" too.
std::string RedactQuery(std::string_view query);
// RedactQuery appended to *out (an attribute's string, reused: no string of its own).
void AppendRedactedQuery(std::string_view query, std::string* out);

// True for headers whose values must not leave the node. The rule, case-insensitive:
// the name is Authorization, Proxy-Authorization, Cookie, Set-Cookie, or contains one of
// "auth", "cookie", "token", "secret", "password", "passwd", "apikey", "api-key", "api_key",
// "session", "credential", "signature". (So X-Api-Key, X-Auth-Token, X-Amz-Security-Token,
// X-Csrf-Token and X-Hub-Signature are sensitive; User-Agent and Content-Type are not.)
bool IsSensitiveHeader(std::string_view name);

}  // namespace zerotrace::protocols::http_common
