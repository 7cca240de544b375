// OTLP/HTTP with libcurl: one keep-alive handle, bodies encoded once per batch and gzipped.
#include "export/otlp_http_exporter.h"

#include <curl/curl.h>
#include <zlib.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "export/otlp_json.h"
#include "export/otlp_proto.h"

#ifndef ZT_VERSION
#define ZT_VERSION "0.0.0"
#endif

namespace zerotrace::exporter {
namespace {

constexpr size_t kMaxResponseBody = 64 << 10;  // enough for any partial_success or error

// libcurl errors that retrying cannot fix: the configuration or the peer's identity is wrong.
bool IsPermanentCurlError(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return true;
    default:
      return false;
  }
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); i++) {
    const char a = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (a != prefix[i]) return false;
  }
  return true;
}

// libcurl's progress callback (called about once a second at least, connecting included):
// non-zero aborts the transfer.
int AbortWhenCancelled(void* cancelled, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(cancelled)->load() ? 1 : 0;
}

int64_t JsonInt64(const nlohmann::json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

}  // namespace

StatusOr<std::unique_ptr<OtlpHttpExporter>> OtlpHttpExporter::Create(const OtlpConfig& config,
                                                                     OtlpExporterOptions options) {
  if (config.protocol == OtlpConfig::Protocol::kGrpc) {
    return Status::Error("OtlpHttpExporter needs protocol http/protobuf or http/json");
  }
  auto url = ParseEndpointUrl(config.endpoint, /*allow_no_scheme=*/false);
  if (!url.ok()) return url.status();
  static std::once_flag curl_once;
  static CURLcode curl_init = CURLE_OK;
  std::call_once(curl_once, [] { curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (curl_init != CURLE_OK) {
    return Status::Error(std::string("libcurl failed to initialise: ") +
                         curl_easy_strerror(curl_init));
  }
  // Collectors' HTTP receivers take bodies up to 20 MiB by default (gRPC's limit is 4 MiB), and
  // OTLP/JSON is about twice the size of protobuf: no reason to split batches as small.
  if (options.max_request_bytes == 0) options.max_request_bytes = 8 << 20;
  std::unique_ptr<OtlpHttpExporter> exporter(new OtlpHttpExporter(config, std::move(options)));
  if (Status s = exporter->Init(); !s.ok()) return s;
  return exporter;
}

OtlpHttpExporter::OtlpHttpExporter(const OtlpConfig& config, OtlpExporterOptions options)
    : OtlpExporterBase(config, std::move(options)),
      json_(config.protocol == OtlpConfig::Protocol::kHttpJson) {}

OtlpHttpExporter::~OtlpHttpExporter() {
  if (curl_) curl_easy_cleanup(curl_);
  if (headers_) curl_slist_free_all(headers_);
  if (zstream_) {
    deflateEnd(zstream_);
    delete zstream_;
  }
}

Status OtlpHttpExporter::Init() {
  curl_ = curl_easy_init();
  if (curl_ == nullptr) return Status::Error("libcurl: curl_easy_init failed");
  headers_ = curl_slist_append(
      headers_, json_ ? "Content-Type: application/json" : "Content-Type: application/x-protobuf");
  if (config_.gzip) headers_ = curl_slist_append(headers_, "Content-Encoding: gzip");
  headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip
  for (const auto& [key, value] : config_.headers) {
    headers_ = curl_slist_append(headers_, (key + ": " + value).c_str());
  }
  if (headers_ == nullptr) return Status::Error("libcurl: out of memory");
  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode c) { rc = rc != CURLE_OK ? rc : c; };
  set(curl_easy_setopt(curl_, CURLOPT_URL, config_.endpoint.c_str()));
  set(curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(curl_, CURLOPT_POST, 1L));
  set(curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_));
  set(curl_easy_setopt(curl_, CURLOPT_USERAGENT, "zerotrace/" ZT_VERSION));
  set(curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L));  // we run on a worker thread
  set(curl_easy_setopt(curl_, CURLOPT_TCP_KEEPALIVE, 1L));
  set(curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, curl_error_));
  set(curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &OtlpHttpExporter::OnBody));
  set(curl_easy_setopt(curl_, CURLOPT_WRITEDATA, this));
  set(curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &OtlpHttpExporter::OnHeader));
  set(curl_easy_setopt(curl_, CURLOPT_HEADERDATA, this));
  set(curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, &AbortWhenCancelled));
  set(curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, &cancelled_));
  set(curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L));
  if (!config_.certificate.empty()) {
    // The given CAs replace the system roots, as in the gRPC exporter: libcurl would still
    // trust its default CA directory (/etc/ssl/certs) next to CAINFO.
    set(curl_easy_setopt(curl_, CURLOPT_CAINFO, config_.certificate.c_str()));
    set(curl_easy_setopt(curl_, CURLOPT_CAPATH, nullptr));
  }
  if (!config_.client_certificate.empty()) {
    set(curl_easy_setopt(curl_, CURLOPT_SSLCERT, config_.client_certificate.c_str()));
    set(curl_easy_setopt(curl_, CURLOPT_SSLKEY, config_.client_key.c_str()));
  }
  if (rc != CURLE_OK) {
    return Status::Error(std::string("libcurl: setting up the request failed: ") +
                         curl_easy_strerror(rc));
  }
  if (config_.gzip) {
    zstream_ = new z_stream{};
    // windowBits 15 + 16: a gzip wrapper; level 1: compression must keep up with the agent.
    if (deflateInit2(zstream_, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      delete zstream_;
      zstream_ = nullptr;
      return Status::Error("zlib: deflateInit2 failed");
    }
  }
  return Status::Ok();
}

size_t OtlpHttpExporter::Encode(const std::vector<trace::Span>& spans) {
  body_.clear();
  if (json_) {
    AppendOtlpJson(spans, &body_);
  } else {
    AppendOtlpProto(spans, &body_);
  }
  return Compress();
}

size_t OtlpHttpExporter::Assemble(std::span<const EncodedSpan> spans) {
  AssignOtlpProto(spans, &body_);
  return Compress();
}

size_t OtlpHttpExporter::Compress() {
  if (zstream_ == nullptr) return body_.size();
  deflateReset(zstream_);
  gzipped_.resize(deflateBound(zstream_, body_.size()));
  zstream_->next_in = reinterpret_cast<Bytef*>(body_.data());
  zstream_->avail_in = static_cast<uInt>(body_.size());
  zstream_->next_out = reinterpret_cast<Bytef*>(gzipped_.data());
  zstream_->avail_out = static_cast<uInt>(gzipped_.size());
  deflate(zstream_, Z_FINISH);  // the output fits: deflateBound
  gzipped_.resize(zstream_->total_out);
  return body_.size();
}

AttemptResult OtlpHttpExporter::Send(std::chrono::milliseconds timeout) {
  const std::string& payload = zstream_ != nullptr ? gzipped_ : body_;
  if (cancelled_.load()) {
    AttemptResult cancelled;
    cancelled.kind = AttemptResult::Kind::kRetryable;
    cancelled.reason = "cancelled";
    cancelled.message = "the agent is stopping";
    cancelled.unreachable = true;
    return cancelled;
  }
  response_body_.clear();
  retry_after_.clear();
  curl_error_[0] = '\0';
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, payload.data());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  const CURLcode rc = curl_easy_perform(curl_);
  AttemptResult result;
  if (rc != CURLE_OK) {
    result.kind = IsPermanentCurlError(rc) ? AttemptResult::Kind::kPermanent
                                           : AttemptResult::Kind::kRetryable;
    result.reason = curl_easy_strerror(rc);
    result.message = curl_error_;
    result.unreachable = true;  // no HTTP answer: refused, unreachable, reset or timed out
    return result;
  }
  counters_.bytes_sent.fetch_add(payload.size(), std::memory_order_relaxed);
  long status = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) {
    ParsePartialSuccess(&result);
    return result;
  }
  return ClassifyHttp(status, retry_after_, ErrorMessage(), std::chrono::system_clock::now());
}

void OtlpHttpExporter::ParsePartialSuccess(AttemptResult* result) const {
  if (response_body_.empty()) return;
  if (json_) {
    const auto doc = nlohmann::json::parse(response_body_, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) return;
    const auto ps = doc.find("partialSuccess");
    if (ps == doc.end() || !ps->is_object()) return;
    if (const auto r = ps->find("rejectedSpans"); r != ps->end()) {
      result->rejected_spans = JsonInt64(*r);
    }
    if (const auto m = ps->find("errorMessage"); m != ps->end() && m->is_string()) {
      result->partial_message = m->get<std::string>();
    }
    return;
  }
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
  if (!response.ParseFromString(response_body_) || !response.has_partial_success()) return;
  result->rejected_spans = response.partial_success().rejected_spans();
  result->partial_message = response.partial_success().error_message();
}

std::string OtlpHttpExporter::ErrorMessage() const {
  if (response_body_.empty()) return "";
  // The specification's error body is a google.rpc.Status in the request's encoding; other
  // servers (proxies) send text, which is shown as it is, cut short.
  if (json_ || (!response_body_.empty() && response_body_.front() == '{')) {
    const auto doc = nlohmann::json::parse(response_body_, nullptr, false);
    if (doc.is_object()) {
      if (const auto m = doc.find("message"); m != doc.end() && m->is_string()) {
        return m->get<std::string>();
      }
    }
  } else if (auto m = RpcStatusMessage(response_body_); m && !m->empty()) {
    return *m;
  }
  std::string text = response_body_.substr(0, 200);
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = ' ';
  }
  return text;
}

size_t OtlpHttpExporter::OnBody(char* data, size_t size, size_t n, void* self) {
  auto* e = static_cast<OtlpHttpExporter*>(self);
  const size_t bytes = size * n;
  const size_t room = kMaxResponseBody - std::min(kMaxResponseBody, e->response_body_.size());
  e->response_body_.append(data, std::min(bytes, room));
  return bytes;
}

size_t OtlpHttpExporter::OnHeader(char* data, size_t size, size_t n, void* self) {
  auto* e = static_cast<OtlpHttpExporter*>(self);
  const std::string_view line(data, size * n);
  if (StartsWithNoCase(line, "http/")) {
    e->retry_after_.clear();  // a new response (after a redirect or 1xx)
    e->response_body_.clear();
  } else if (StartsWithNoCase(line, "retry-after:")) {
    e->retry_after_ = std::string(line.substr(12));
  }
  return size * n;
}

StatusOr<std::unique_ptr<SpanExporter>> MakeOtlpHttpExporter(const OtlpConfig& config,
                                                             OtlpExporterOptions options) {
  auto made = OtlpHttpExporter::Create(config, std::move(options));
  if (!made.ok()) return made.status();
  return std::unique_ptr<SpanExporter>(std::move(made.value()));
}

}  // namespace zerotrace::exporter
