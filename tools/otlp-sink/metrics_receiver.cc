// otlp-sink's metrics receiver.
#include "metrics_receiver.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <optional>

#include "gzip.h"

namespace zerotrace::otlp_sink {
namespace {

namespace collector = opentelemetry::proto::collector::metrics::v1;
constexpr size_t kMaxInflatedBytes = 64 * 1024 * 1024;

HttpResponse Plain(int status, const std::string& text) {
  HttpResponse resp;
  resp.status = status;
  resp.headers.emplace_back("Content-Type", "text/plain");
  resp.body = text + "\n";
  return resp;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  if (!path.empty()) file_ = std::fopen(path.c_str(), "w");
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsLog::Write(const collector::ExportMetricsServiceRequest& r) {
  std::string line;
  if (file_ != nullptr) {
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_enums_as_ints = true;  // OTLP/JSON
    (void)google::protobuf::util::MessageToJsonString(r, &line, options);
    line.push_back('\n');
  }
  std::lock_guard lock(mu_);
  requests_++;
  if (file_ != nullptr) {
    std::fwrite(line.data(), 1, line.size(), file_);
    std::fflush(file_);
  }
}

uint64_t MetricsLog::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

grpc::ServerUnaryReactor* MetricsGrpcService::Export(
    grpc::CallbackServerContext* context, const collector::ExportMetricsServiceRequest* request,
    collector::ExportMetricsServiceResponse*) {
  log_->Write(*request);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

HttpResponse HandleOtlpHttpMetrics(MetricsLog& log, const HttpRequest& request) {
  if (request.method != "POST") return Plain(405, "otlp-sink: /v1/metrics takes POST");
  const std::string* type = request.Header("content-type");
  const std::string media = type ? Lower(type->substr(0, type->find(';'))) : "";
  const bool json = media == "application/json";
  if (!json && media != "application/x-protobuf") {
    return Plain(415, "otlp-sink: Content-Type must be application/x-protobuf or json");
  }
  const std::string* encoding = request.Header("content-encoding");
  std::optional<std::string> inflated;
  if (encoding != nullptr && Lower(*encoding) == "gzip") {
    inflated = Gunzip(request.body, kMaxInflatedBytes);
    if (!inflated) return Plain(400, "otlp-sink: the body is not valid gzip");
  }
  const std::string& body = inflated ? *inflated : request.body;
  collector::ExportMetricsServiceRequest parsed;
  const bool ok = json ? google::protobuf::util::JsonStringToMessage(body, &parsed).ok()
                       : parsed.ParseFromString(body);
  if (!ok) return Plain(400, "otlp-sink: the body is not an ExportMetricsServiceRequest");
  log.Write(parsed);
  HttpResponse resp;
  resp.headers.emplace_back("Content-Type", json ? "application/json" : "application/x-protobuf");
  resp.body = json ? "{}" : collector::ExportMetricsServiceResponse().SerializeAsString();
  return resp;
}

}  // namespace zerotrace::otlp_sink
