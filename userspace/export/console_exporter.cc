// Console lines: fixed columns, terminal-safe text, cached local-time formatting.
#include "export/console_exporter.h"

#include <poll.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string_view>
#include <variant>

#include "export/otlp_json.h"

namespace zerotrace::exporter {
namespace {

using trace::AttributeValue;
using trace::Span;

constexpr size_t kServiceWidth = 17, kServiceMax = 32;
constexpr size_t kKindWidth = 6;
constexpr size_t kMethodWidth = 7, kMethodMax = 16;
constexpr size_t kPathWidth = 32, kPathMax = 96;
constexpr size_t kNameWidth = kMethodWidth + 1 + kPathWidth;
constexpr size_t kStatusWidth = 4, kStatusMax = 32;
constexpr size_t kDurationWidth = 11;  // "12345.678ms"
constexpr char kHexDigits[] = "0123456789abcdef";

void AppendByteEscape(unsigned char c, std::string* out) {
  const char esc[4] = {'\\', 'x', kHexDigits[c >> 4], kHexDigits[c & 15]};
  out->append(esc, sizeof(esc));
}

// Appends s using at most max_cols columns (cut with "..." beyond); returns the columns used.
// Control characters, C1 controls and ill-formed UTF-8 become \xNN per byte.
size_t AppendSafe(std::string_view s, size_t max_cols, std::string* out) {
  size_t cols = 0, cut_size = out->size(), cut_cols = 0;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out->push_back(static_cast<char>(c));
      cols++;
      i++;
    } else if (c < 0x80) {
      AppendByteEscape(c, out);
      cols += 4;
      i++;
    } else {
      const Utf8Step step = DecodeUtf8(s.substr(i));
      if (step.valid && step.code_point >= 0xA0) {
        out->append(s.data() + i, step.length);
        cols++;
      } else {
        for (uint32_t k = 0; k < step.length; k++) {
          AppendByteEscape(static_cast<unsigned char>(s[i + k]), out);
        }
        cols += 4 * step.length;
      }
      i += step.length;
    }
    if (cols + 3 <= max_cols) {
      cut_size = out->size();
      cut_cols = cols;
    }
    if (cols > max_cols) {
      out->resize(cut_size);
      out->append("...");
      return cut_cols + 3;
    }
  }
  return cols;
}

void Pad(size_t used, size_t width, std::string* out) {
  if (used < width) out->append(width - used, ' ');
}

void AppendColumn(std::string_view s, size_t width, size_t max_cols, std::string* out) {
  Pad(AppendSafe(s, max_cols, out), width, out);
}

// The attribute as text: strings as they are, numbers in decimal; empty when absent.
std::string_view AttributeText(const AttributeValue* v, char (&buf)[32]) {
  if (v == nullptr) return {};
  if (const auto* s = std::get_if<std::string>(v)) return *s;
  if (const auto* i = std::get_if<int64_t>(v)) {
    const int n = std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(*i));
    return std::string_view(buf, n);
  }
  if (const auto* b = std::get_if<bool>(v)) return *b ? "true" : "false";
  const int n = std::snprintf(buf, sizeof(buf), "%g", std::get<double>(*v));
  return std::string_view(buf, n);
}

const char* KindName(trace::SpanKind kind) {
  switch (kind) {
    case trace::SpanKind::kServer:
      return "SERVER";
    case trace::SpanKind::kClient:
      return "CLIENT";
    case trace::SpanKind::kInternal:
      return "INTERNAL";
  }
  return "?";
}

template <size_t N>
void AppendShortId(const char* label, const std::array<uint8_t, N>& bytes, std::string* out) {
  out->append(label);
  for (size_t i = 0; i < 4; i++) {
    out->push_back(kHexDigits[bytes[i] >> 4]);
    out->push_back(kHexDigits[bytes[i] & 15]);
  }
}

}  // namespace

void ConsoleExporter::AppendLine(const Span& span, std::string* out, std::string_view tree) {
  // Time of day of the span's end, local time; localtime_r only once per distinct second.
  const auto second = static_cast<int64_t>(span.end_unix_ns / 1'000'000'000);
  if (second != cached_second_) {
    const auto t = static_cast<time_t>(second);
    struct tm tm {};
    localtime_r(&t, &tm);
    const int fields[3] = {tm.tm_hour, tm.tm_min, tm.tm_sec};
    for (int k = 0; k < 3; k++) {
      cached_hms_[3 * k] = static_cast<char>('0' + fields[k] / 10 % 10);
      cached_hms_[3 * k + 1] = static_cast<char>('0' + fields[k] % 10);
      if (k < 2) cached_hms_[3 * k + 2] = ':';
    }
    cached_second_ = second;
  }
  char buf[48];
  out->append(cached_hms_, sizeof(cached_hms_));
  int n = std::snprintf(buf, sizeof(buf), ".%03u ",
                        static_cast<unsigned>(span.end_unix_ns / 1'000'000 % 1000));
  out->append(buf, n);
  out->append(tree);

  const std::string_view service =
      span.resource ? std::string_view(span.resource->service_name) : std::string_view();
  AppendColumn(service.empty() ? "-" : service, kServiceWidth, kServiceMax, out);
  out->push_back(' ');
  AppendColumn(KindName(span.kind), kKindWidth, kKindWidth + 2, out);
  out->push_back(' ');

  char method_buf[32], path_buf[32], status_buf[32];
  const std::string_view method = AttributeText(span.Find("http.request.method"), method_buf);
  const std::string_view path = AttributeText(span.Find("url.path"), path_buf);
  if (!method.empty() && !path.empty()) {
    AppendColumn(method, kMethodWidth, kMethodMax, out);
    out->push_back(' ');
    AppendColumn(path, kPathWidth, kPathMax, out);
  } else {
    AppendColumn(span.name, kNameWidth, kPathMax, out);
  }
  out->push_back(' ');

  std::string_view status = AttributeText(span.Find("http.response.status_code"), status_buf);
  if (status.empty()) status = AttributeText(span.Find("error.type"), status_buf);
  if (status.empty()) status = span.status == trace::StatusCode::kError ? "ERR" : "-";
  AppendColumn(status, kStatusWidth, kStatusMax, out);
  out->push_back(' ');

  const uint64_t us = span.end_unix_ns > span.start_unix_ns
                          ? (span.end_unix_ns - span.start_unix_ns + 500) / 1000
                          : 0;
  n = std::snprintf(buf, sizeof(buf), "%llu.%03llums", static_cast<unsigned long long>(us / 1000),
                    static_cast<unsigned long long>(us % 1000));
  Pad(n, kDurationWidth, out);
  out->append(buf, n);

  AppendShortId(" trace=", span.trace_id.bytes, out);
  AppendShortId(" span=", span.span_id.bytes, out);
  if (span.parent_span_id.valid()) AppendShortId(" parent=", span.parent_span_id.bytes, out);
  out->push_back('\n');
}

void ConsoleExporter::AppendNewServices(const std::vector<Span>& spans, std::string* out) {
  for (const Span& s : spans) {
    const trace::Resource* r = s.resource.get();
    if (r == nullptr || r->pid == 0) continue;
    std::string key = std::to_string(r->pid);
    key.append(1, '\0').append(r->service_name).append(1, '\0').append(r->service_instance_id);
    if (described_.contains(key)) continue;
    if (described_.size() >= kMaxDescribed) described_.clear();
    described_.insert(std::move(key));
    out->append("service ");
    AppendSafe(r->service_name.empty() ? "-" : r->service_name, kServiceMax, out);
    out->append(" · pid ").append(std::to_string(r->pid));
    if (!r->runtime_name.empty()) AppendSafe(" · " + r->runtime_name, kServiceMax, out);
    if (!r->command_args.empty()) {
      std::string command;
      for (const std::string& arg : r->command_args)
        command.append(command.empty() ? "" : " ").append(arg);
      out->append(" · ");
      AppendSafe(command, kPathMax, out);
    } else if (!r->executable_path.empty()) {
      out->append(" · ");
      AppendSafe(r->executable_path, kPathMax, out);
    }
    if (!r->container_id.empty())
      AppendSafe(" · container " + r->container_id.substr(0, 12), kPathMax, out);
    if (!r->k8s_pod_uid.empty()) AppendSafe(" · pod " + r->k8s_pod_uid, kPathMax, out);
    out->push_back('\n');
  }
}

ExportResult ConsoleWriter::Write(std::string_view text, uint64_t spans) {
  if (closed_) return ExportResult::Failed(spans);
  errno = 0;
  const bool written = std::fwrite(text.data(), 1, text.size(), out_) == text.size();
  if (std::fflush(out_) != 0 || !written) return Fail(errno, spans);
  failing_ = false;
  return ExportResult::Delivered(spans);
}

bool ReaderGone(FILE* out) {
  const int fd = fileno(out);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    return false;
  }
  // A pipe with no reader left polls as POLLERR (a socket: also once its peer reset it).
  pollfd p = {fd, 0, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

ExportResult ConsoleWriter::CheckOutput() {
  if (closed_ || !ReaderGone(out_)) return {};
  return Fail(EPIPE, 0);
}

ExportResult ConsoleWriter::Fail(int error, uint64_t spans) {
  std::clearerr(out_);
  ExportResult r = ExportResult::Failed(spans);
  if (error == EPIPE) {
    closed_ = true;
    r.output_closed = true;
  } else if (!failing_) {
    std::fprintf(stderr, "zerotrace: console: writing spans failed: %s; counting lost spans\n",
                 error != 0 ? std::strerror(error) : "short write");
  }
  failing_ = true;
  return r;
}

ExportResult ConsoleExporter::Export(const std::vector<Span>& spans) {
  buf_.clear();
  AppendNewServices(spans, &buf_);
  for (const Span& s : spans) AppendLine(s, &buf_);
  return writer_.Write(buf_, spans.size());
}

ExportResult ConsoleExporter::Flush() { return writer_.CheckOutput(); }

}  // namespace zerotrace::exporter
