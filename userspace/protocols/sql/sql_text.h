// SQL text as the agent exports it: literals replaced by `?` (nothing from a value leaves the
// agent), comments dropped, whitespace collapsed; and the operation and target that name a span
// ("SELECT orders"). Shared by every SQL protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zerotrace::protocols::sql {

// Where the dialects differ in what is a literal.
enum class Dialect : uint8_t {
  kPostgres = 0,  // "x" is an identifier; $tag$...$tag$ is a string; E'..' takes backslashes
  kMySql = 1,     // "x" is a string; `x` an identifier; '..' takes backslashes; # comments
};

// The most bytes of sanitised text kept; longer text ends in "..." (at a token boundary).
inline constexpr size_t kMaxSanitizedBytes = 2048;

struct SqlSummary {
  std::string text;         // sanitised: every literal is `?`, no comments
  std::string operation;    // upper case: "SELECT", "CREATE TABLE", "BATCH", "BATCH INSERT"; or ""
  std::string target;       // the first table (or procedure, or database for USE) named; or ""
  uint32_t statements = 0;  // statements in the text (multi-statement queries: more than 1)
  bool truncated = false;   // text was cut at kMaxSanitizedBytes
};

// Hot path (once per query text). Sanitises `query` and finds its operation and target.
// `out`'s strings are reused (assigned, not reallocated, once large enough).
void SummarizeSql(std::string_view query, Dialect dialect, SqlSummary* out);
// The same, saying whether a backslash escapes a quote in '..' strings: the dialect's default
// is true for MySQL (false under its NO_BACKSLASH_ESCAPES mode), false for PostgreSQL (true
// when the server reports standard_conforming_strings=off). Reading a string with the wrong
// rule could end it early and show what follows, so sessions pass what their server says.
void SummarizeSql(std::string_view query, Dialect dialect, bool backslash_escapes, SqlSummary* out);

// The span name: "OPERATION target", "OPERATION", or `fallback` when there is no operation.
void SpanNameOf(const SqlSummary& s, std::string_view fallback, std::string* name);

}  // namespace zerotrace::protocols::sql
