// JSON lines file exporter: buffered stdio, flushed by the export worker at least once a second.
#include "export/jsonl_exporter.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "export/otlp_json.h"

namespace zerotrace::exporter {

namespace {
constexpr size_t kFileBufferBytes = 1 << 20;  // several batches between flushes, few syscalls
}  // namespace

StatusOr<std::unique_ptr<JsonlExporter>> JsonlExporter::Open(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "ae");  // append, O_CLOEXEC
  if (f == nullptr) {
    return Status::Error("cannot open --jsonl file " + path + ": " + std::strerror(errno));
  }
  std::setvbuf(f, nullptr, _IOFBF, kFileBufferBytes);
  return std::unique_ptr<JsonlExporter>(new JsonlExporter(f, path));
}

JsonlExporter::JsonlExporter(FILE* file, std::string path) : file_(file), path_(std::move(path)) {}

JsonlExporter::~JsonlExporter() {
  Flush();
  if (std::fclose(file_) != 0) Fail("close");
}

void JsonlExporter::Export(const std::vector<trace::Span>& spans) {
  if (spans.empty()) return;
  line_.clear();
  AppendOtlpJson(spans, &line_);
  line_.push_back('\n');
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
    write_failed_.fetch_add(1, std::memory_order_relaxed);
    Fail("write");
    std::clearerr(file_);
    return;
  }
  unflushed_lines_++;
}

void JsonlExporter::Flush() {
  if (std::fflush(file_) != 0) {
    write_failed_.fetch_add(unflushed_lines_, std::memory_order_relaxed);
    unflushed_lines_ = 0;
    Fail("flush");
    std::clearerr(file_);
    return;
  }
  unflushed_lines_ = 0;
  failing_ = false;
}

void JsonlExporter::Fail(const char* what) {
  if (failing_) return;
  failing_ = true;
  std::fprintf(stderr, "zerotrace: --jsonl %s: %s failed: %s; counting lost lines\n", path_.c_str(),
               what, std::strerror(errno));
}

}  // namespace zerotrace::exporter
