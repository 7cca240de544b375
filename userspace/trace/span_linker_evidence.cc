// What a call repeats of the request it serves, as the linker's evidence: a path prefix
// rewrite (proxies) and the request-id headers.
#include <algorithm>
#include <string>
#include <string_view>

#include "trace/span_linker.h"

namespace zerotrace::trace {
namespace {

// Whether `tail` is a path a proxy may have forwarded: it starts at a segment and names at least
// two segments, or has a query ("/items/7", "/a?id=7"; not "/health").
bool SpecificTail(std::string_view tail) {
  if (tail.empty() || tail.front() != '/') return false;
  const size_t query = tail.find('?');
  const std::string_view path = tail.substr(0, query);
  return query != std::string_view::npos || std::count(path.begin(), path.end(), '/') >= 2;
}

}  // namespace

// "METHOD target" operations (HTTP's form; others never match) of a request and of a call it may
// have forwarded through a prefix rewrite: the same method, and one target is the other with
// whole leading segments removed, the rest specific enough (SpecificTail) to be evidence. The
// rewrite is named by the removed prefix, with '-' when the call lost it ("/api/a/1" -> "/a/1"
// is "-/api") and '+' when the call gained it; empty when the two are not such a pair.
std::string PrefixRewrite(std::string_view request_op, std::string_view call_op) {
  const size_t a = request_op.find(' '), b = call_op.find(' ');
  if (a == std::string_view::npos || b == std::string_view::npos ||
      request_op.substr(0, a) != call_op.substr(0, b)) {
    return {};
  }
  std::string_view longer = request_op.substr(a + 1), shorter = call_op.substr(b + 1);
  const bool call_lost = longer.size() > shorter.size();
  if (!call_lost) std::swap(longer, shorter);
  if (longer.size() == shorter.size() || !longer.ends_with(shorter) || !SpecificTail(shorter)) {
    return {};
  }
  const std::string_view prefix = longer.substr(0, longer.size() - shorter.size());
  if (prefix.front() != '/' || prefix.back() == '/' || prefix.find('?') != std::string_view::npos) {
    return {};
  }
  std::string rewrite(1, call_lost ? '-' : '+');
  rewrite.append(prefix);
  return rewrite;
}

bool IsCorrelationHeader(std::string_view n) {
  for (std::string_view h : kCorrelationHeaders) {
    if (n == h) return true;
  }
  return false;
}

}  // namespace zerotrace::trace
