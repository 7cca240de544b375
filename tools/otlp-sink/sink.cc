// Sink: one lock around decisions and output, so files hold whole lines in answer order.
#include "sink.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "span_printer.h"

namespace zerotrace::otlp_sink {
namespace {

constexpr const char* kGrpcCodeNames[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
constexpr int kGrpcCodeCount = sizeof(kGrpcCodeNames) / sizeof(kGrpcCodeNames[0]);

std::FILE* OpenForWrite(const std::string& path, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) *error = "cannot open " + path + " for writing: " + std::strerror(errno);
  return f;
}

void WriteAndFlush(std::FILE* f, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), f);
  std::fflush(f);
}

}  // namespace

int64_t CountSpans(const ExportRequest& request) {
  int64_t n = 0;
  for (const auto& rs : request.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
  }
  return n;
}

google::protobuf::ArenaOptions RequestArenaOptions() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 64 * 1024;
  options.max_block_size = 1024 * 1024;
  return options;
}

std::optional<int> ParseGrpcCode(const std::string& text) {
  for (int code = 0; code < kGrpcCodeCount; code++) {
    if (text == kGrpcCodeNames[code] || text == std::to_string(code)) return code;
  }
  return std::nullopt;
}

int HttpStatusForGrpcCode(int code) {
  switch (code) {
    case 0:
      return 200;
    case 1:  // CANCELLED
      return 499;
    case 3:   // INVALID_ARGUMENT
    case 9:   // FAILED_PRECONDITION
    case 11:  // OUT_OF_RANGE
      return 400;
    case 16:  // UNAUTHENTICATED
      return 401;
    case 7:  // PERMISSION_DENIED
      return 403;
    case 5:  // NOT_FOUND
      return 404;
    case 6:   // ALREADY_EXISTS
    case 10:  // ABORTED
      return 409;
    case 8:  // RESOURCE_EXHAUSTED
      return 429;
    case 12:  // UNIMPLEMENTED
      return 501;
    case 14:  // UNAVAILABLE
      return 503;
    case 4:  // DEADLINE_EXCEEDED
      return 504;
    default:
      return 500;
  }
}

std::variant<std::unique_ptr<Sink>, std::string> Sink::Open(SinkOptions options) {
  std::unique_ptr<Sink> sink(new Sink(std::move(options)));
  std::string error;
  if (!sink->options_.jsonl_path.empty()) {
    sink->jsonl_ = OpenForWrite(sink->options_.jsonl_path, &error);
    if (sink->jsonl_ == nullptr) return error;
  }
  if (!sink->options_.requests_log_path.empty()) {
    sink->requests_log_ = OpenForWrite(sink->options_.requests_log_path, &error);
    if (sink->requests_log_ == nullptr) return error;
  }
  return sink;
}

Sink::~Sink() {
  if (jsonl_ != nullptr) std::fclose(jsonl_);
  if (requests_log_ != nullptr) std::fclose(requests_log_);
}

Answer Sink::Handle(const ExportRequest& request, const RequestMeta& meta,
                    const std::function<bool()>& cancelled) {
  return Decide(&request, CountSpans(request), meta, cancelled);
}

Answer Sink::HandleCounted(int64_t spans, const RequestMeta& meta,
                           const std::function<bool()>& cancelled) {
  return Decide(nullptr, spans, meta, cancelled);
}

Answer Sink::Decide(const ExportRequest* request, int64_t spans, const RequestMeta& meta,
                    const std::function<bool()>& cancelled) {
  std::unique_lock lock(mu_);
  if (options_.delay.count() > 0) {
    stop_cv_.wait_for(lock, options_.delay, [this] { return stopping_; });
  }
  Answer answer;
  const bool http = meta.transport == Transport::kHttp;
  if (cancelled && cancelled()) {
    answer.kind = Answer::Kind::kCancelled;
    answer.grpc_code = 1;  // CANCELLED
    answer.http_status = 499;
    answer.message = "client gave up before the answer";
    totals_.cancelled++;
    LogRequest(meta, "cancelled", http ? answer.http_status : answer.grpc_code, spans, &answer,
               nullptr);
    return answer;
  }
  if (decided_++ < static_cast<uint64_t>(options_.fail_count)) {
    answer.kind = Answer::Kind::kFailed;
    answer.grpc_code = options_.fail_grpc_code;
    answer.http_status = options_.fail_http_status;
    answer.message = "otlp-sink: refusing request " + std::to_string(decided_) + " of the first " +
                     std::to_string(options_.fail_count) + " (--fail)";
    answer.retry_after = options_.retry_after;
    totals_.failed++;
    LogRequest(meta, "failed", http ? answer.http_status : answer.grpc_code, spans, &answer,
               nullptr);
    return answer;
  }
  if (options_.partial_reject > 0) {
    answer.rejected_spans = options_.partial_reject;
    answer.error_message = "otlp-sink: rejected " + std::to_string(options_.partial_reject) +
                           " spans (--partial-reject)";
  }
  totals_.accepted++;
  totals_.spans += spans;
  if (!options_.quiet && request != nullptr) {
    std::string text;
    if (jsonl_ != nullptr) {
      text = EncodeOtlpJson(*request);
      text += '\n';
      WriteAndFlush(jsonl_, text);
    } else {
      AppendReadableSpans(*request, &text);
      WriteAndFlush(stdout, text);
    }
  }
  LogRequest(meta, answer.rejected_spans > 0 ? "partial" : "ok", http ? 200 : 0, spans, &answer,
             nullptr);
  return answer;
}

void Sink::RecordInvalid(const RequestMeta& meta, int status, const std::string& error) {
  std::lock_guard lock(mu_);
  totals_.invalid++;
  LogRequest(meta, "invalid", status, 0, nullptr, &error);
}

void Sink::Stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  stop_cv_.notify_all();
}

SinkTotals Sink::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

// Called with mu_ held.
void Sink::LogRequest(const RequestMeta& meta, const char* result, int status, int64_t spans,
                      const Answer* answer, const std::string* error) {
  totals_.requests++;
  if (requests_log_ == nullptr) return;
  nlohmann::ordered_json line;
  line["transport"] = meta.transport == Transport::kGrpc ? "grpc" : "http";
  line["encoding"] = meta.encoding == Encoding::kProtobuf ? "protobuf" : "json";
  line["gzip"] = meta.gzip;
  line["headers"] = nlohmann::ordered_json::object();
  for (const auto& [name, value] : meta.headers) line["headers"][name] = value;
  line["spans"] = spans;
  line["seq"] = totals_.requests;
  line["result"] = result;
  line["status"] = status;
  if (answer != nullptr && answer->rejected_spans > 0) line["rejected"] = answer->rejected_spans;
  if (error != nullptr) line["error"] = *error;
  WriteAndFlush(requests_log_,
                line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
}

}  // namespace zerotrace::otlp_sink
