// JSON lines file exporter: one write() per line on an O_APPEND descriptor.
#include "export/jsonl_exporter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "export/otlp_json.h"

namespace zerotrace::exporter {
namespace {

// True when `path`, a regular file of `size` bytes, does not end with a newline.
bool EndsInsideALine(const std::string& path, off_t size) {
  if (size <= 0) return false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // write-only for us: nothing to check with
  char last = '\n';
  const bool read = ::pread(fd, &last, 1, size - 1) == 1;
  ::close(fd);
  return read && last != '\n';
}

}  // namespace

StatusOr<std::unique_ptr<JsonlExporter>> JsonlExporter::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    return Status::Error("cannot open --jsonl file " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  const bool line_open =
      ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && EndsInsideALine(path, st.st_size);
  return std::unique_ptr<JsonlExporter>(new JsonlExporter(fd, path, line_open));
}

JsonlExporter::JsonlExporter(int fd, std::string path, bool line_open)
    : fd_(fd), path_(std::move(path)), line_open_(line_open) {}

JsonlExporter::~JsonlExporter() { ::close(fd_); }

ExportResult JsonlExporter::Export(const std::vector<trace::Span>& spans) {
  if (spans.empty()) return {};
  line_.clear();
  if (line_open_) line_.push_back('\n');  // end the cut-off line; ours starts fresh
  AppendOtlpJson(spans, &line_);
  line_.push_back('\n');
  if (WriteLine()) {
    line_open_ = false;
    failing_ = false;
    return ExportResult::Delivered(spans.size());
  }
  const int error = errno;
  write_failed_.fetch_add(1, std::memory_order_relaxed);
  if (!failing_) {
    std::fprintf(stderr, "zerotrace: --jsonl %s: write failed: %s; counting lost lines\n",
                 path_.c_str(), std::strerror(error));
  }
  failing_ = true;
  ExportResult r = ExportResult::Failed(spans.size());
  r.output_closed = error == EPIPE;  // a pipe whose reader has gone
  return r;
}

bool JsonlExporter::WriteLine() {
  size_t done = 0;
  while (done < line_.size()) {
    const ssize_t n = ::write(fd_, line_.data() + done, line_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      if (done > 0) line_open_ = line_[done - 1] != '\n';  // part of the line is in the file
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace zerotrace::exporter
