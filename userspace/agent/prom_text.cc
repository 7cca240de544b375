// PromTextWriter: validation, escaping and grouping for the 0.0.4 text format.
#include "agent/prom_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace zerotrace::agent {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// HELP text escapes backslash and newline; label values also escape the double quote.
std::string Escape(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

const char* TypeName(PromType t) { return t == PromType::kCounter ? "counter" : "gauge"; }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !(IsAlpha(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!IsAlpha(c) && !IsDigit(c) && c != ':') return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsAlpha(name[0]) || name.substr(0, 2) == "__") return false;
  for (char c : name) {
    if (!IsAlpha(c) && !IsDigit(c)) return false;
  }
  return true;
}

std::string FormatPromValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%.0f", value);
    return buf;
  }
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof(buf), value);  // shortest exact form
  return std::string(buf, r.ptr);
}

Status PromTextWriter::Add(std::string_view name, std::string_view help, PromType type,
                           double value, const PromLabels& labels) {
  return AddLine(name, help, type, labels, FormatPromValue(value));
}

Status PromTextWriter::Add(std::string_view name, std::string_view help, PromType type,
                           uint64_t value, const PromLabels& labels) {
  return AddLine(name, help, type, labels, std::to_string(value));
}

Status PromTextWriter::AddLine(std::string_view name, std::string_view help, PromType type,
                               const PromLabels& labels, const std::string& value) {
  if (!IsValidMetricName(name)) return Status::Error("bad metric name: " + std::string(name));
  if (type == PromType::kCounter && !EndsWith(name, "_total")) {
    return Status::Error("counter not named *_total: " + std::string(name));
  }
  std::string line(name);
  if (!labels.empty()) {
    line += '{';
    for (size_t i = 0; i < labels.size(); i++) {
      if (!IsValidLabelName(labels[i].first)) {
        return Status::Error("bad label name: " + labels[i].first);
      }
      if (i > 0) line += ',';
      line += labels[i].first + "=\"" + Escape(labels[i].second, true) + '"';
    }
    line += '}';
  }
  line += ' ';
  line += value;
  for (Family& f : families_) {
    if (f.name != name) continue;
    if (f.type != type) return Status::Error("metric added with two types: " + f.name);
    f.samples.push_back(std::move(line));
    return Status::Ok();
  }
  families_.push_back({std::string(name), std::string(help), type, {std::move(line)}});
  return Status::Ok();
}

std::string PromTextWriter::Render() const {
  std::string out;
  for (const Family& f : families_) {
    out += "# HELP " + f.name + ' ' + Escape(f.help, false) + '\n';
    out += "# TYPE " + f.name + ' ' + TypeName(f.type) + '\n';
    for (const std::string& s : f.samples) {
      out += s;
      out += '\n';
    }
  }
  return out;
}

}  // namespace zerotrace::agent
