// What the SpanLinker tests share: a linker whose released spans land in `out`, finishing a
// request as a named span, and finding a released span by its name.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "trace/span_linker.h"

namespace zerotrace::trace {

class LinkerFixture : public ::testing::Test {
 protected:
  explicit LinkerFixture(SpanLinker::Options options = {})
      : linker([this](Span&& s) { out.push_back(std::move(s)); }, options) {}

  // Finishes `h` as a span named `name` at end_ns (response written by `tid`).
  void End(uint64_t h, const std::string& name, uint64_t end_ns, uint32_t tid = 0) {
    Span s;
    s.name = name;
    linker.Finish(h, std::move(s), end_ns, tid);
  }
  // The released span named `name` (a failure, and an empty span, if there is none).
  const Span& Get(const std::string& name) {
    for (const Span& s : out) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no span " << name;
    static const Span kNone;
    return kNone;
  }

  std::vector<Span> out;  // before the linker: its sink writes here until it is destroyed
  SpanLinker linker;
};

}  // namespace zerotrace::trace
