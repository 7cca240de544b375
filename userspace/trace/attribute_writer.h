// Writes a span's attributes over those already in its vector, in order, reusing their
// strings: a span built into a recycled one costs no allocation once its strings are large
// enough.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/text.h"
#include "trace/span.h"

namespace zerotrace::trace {

class AttributeWriter {
 public:
  // Continues after the first `kept` attributes already in *v (0: starts over).
  explicit AttributeWriter(std::vector<Attribute>* v, size_t kept = 0) : v_(*v), n_(kept) {}
  void Add(std::string_view key, std::string_view value) {
    Attribute& a = Next(key);
    if (auto* s = std::get_if<std::string>(&a.value)) {
      AssignIfDifferent(s, value);  // a recycled span mostly holds this very value
    } else {
      a.value.emplace<std::string>(value);
    }
  }
  void Add(std::string_view key, const char* value) { Add(key, std::string_view(value)); }
  // A string attribute to write in place: its string, empty, with the capacity it had (a
  // value built piecewise needs no string of its own). Valid until the next Add.
  std::string& AddString(std::string_view key) {
    Attribute& a = Next(key);
    if (auto* s = std::get_if<std::string>(&a.value)) {
      s->clear();
      return *s;
    }
    return a.value.emplace<std::string>();
  }
  void Add(std::string_view key, int64_t value) { Next(key).value = value; }
  void Add(std::string_view key, bool value) { Next(key).value = value; }
  void Add(std::string_view key, double value) { Next(key).value = value; }
  bool Has(std::string_view key) const {
    for (size_t i = 0; i < n_; i++) {
      if (v_[i].key == key) return true;
    }
    return false;
  }
  size_t size() const { return n_; }
  // Drops what is left of the old attributes.
  void Done() { v_.resize(n_); }

 private:
  // Measured hot path: a new slot is made in place (an empty string value), not moved from a
  // temporary Attribute, whose piecewise-written key the move reread as one 16-byte load (a
  // store-forwarding stall on every attribute of a span built into fresh storage).
  Attribute& Next(std::string_view key) {
    Attribute& a = n_ == v_.size() ? v_.emplace_back() : v_[n_];
    n_++;
    a.key = key;
    return a;
  }
  std::vector<Attribute>& v_;
  size_t n_ = 0;
};

}  // namespace zerotrace::trace
