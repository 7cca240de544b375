// OTLP metrics: snapshot -> protobuf request (cumulative or delta) -> gRPC or HTTP.
#include "export/otlp_metrics_exporter.h"

#include <curl/curl.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "export/otlp_grpc_exporter.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"

#ifndef ZT_VERSION
#define ZT_VERSION "0.0.0"
#endif

namespace zerotrace::exporter {
namespace {

namespace pb = opentelemetry::proto;
constexpr char kExportMethod[] = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
constexpr size_t kMaxResponseBody = 64 << 10;

void SetValue(const trace::AttributeValue& v, pb::common::v1::AnyValue* out) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    out->set_string_value(*s);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out->set_int_value(*i);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out->set_bool_value(*b);
  } else {
    out->set_double_value(std::get<double>(v));
  }
}

void AddAttribute(const std::string& key, const trace::AttributeValue& v,
                  google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>* out) {
  pb::common::v1::KeyValue* kv = out->Add();
  kv->set_key(key);
  SetValue(v, kv->mutable_value());
}

size_t OnBody(char*, size_t size, size_t n, void*) { return size * n; }

int AbortWhenCancelled(void* cancelled, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(cancelled)->load() ? 1 : 0;
}

}  // namespace

size_t MetricsRequestEncoder::Encode(const metrics::MetricsSnapshot& snapshot,
                                     pb::collector::metrics::v1::ExportMetricsServiceRequest* out) {
  const auto temporality = options_.delta ? pb::metrics::v1::AGGREGATION_TEMPORALITY_DELTA
                                          : pb::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE;
  size_t points = 0;
  encoded_.clear();
  for (const metrics::ResourceMetrics& r : snapshot.resources) {
    pb::metrics::v1::ResourceMetrics* rm = out->add_resource_metrics();
    auto* attrs = rm->mutable_resource()->mutable_attributes();
    // The service graph is the node's: the agent's own resource.
    AddAttribute("service.name", r.service_name.empty() ? "zerotrace" : r.service_name, attrs);
    if (!options_.host_name.empty()) AddAttribute("host.name", options_.host_name, attrs);
    for (const auto& a : options_.resource_extra) {
      if (a.key != "service.name") AddAttribute(a.key, a.value, attrs);
    }
    pb::metrics::v1::ScopeMetrics* sm = rm->add_scope_metrics();
    sm->mutable_scope()->set_name("zerotrace");
    sm->mutable_scope()->set_version(ZT_VERSION);
    for (const metrics::MetricFamily& f : r.families) {
      pb::metrics::v1::Metric* m = sm->add_metrics();
      m->set_name(f.name);
      m->set_description(f.description);
      m->set_unit(f.unit);
      const bool histogram = f.kind == metrics::MetricFamily::Kind::kHistogram;
      if (histogram) {
        m->mutable_histogram()->set_aggregation_temporality(temporality);
      } else {
        m->mutable_sum()->set_aggregation_temporality(temporality);
        m->mutable_sum()->set_is_monotonic(true);
      }
      for (const metrics::Point& p : f.points) {
        std::string key = f.name + "#" + std::to_string(p.id);
        static const Previous kNone;
        const auto found = previous_.find(key);
        const Previous& prev = found == previous_.end() ? kNone : found->second;
        Previous now;
        // Delta: since the previous export (or the series' start, for a new series).
        const uint64_t start = options_.delta && prev.histogram.count + prev.value > 0
                                   ? previous_time_ns_
                                   : p.start_unix_ns;
        points++;
        if (histogram) {
          pb::metrics::v1::HistogramDataPoint* d = m->mutable_histogram()->add_data_points();
          for (const auto& a : p.attributes) AddAttribute(a.key, a.value, d->mutable_attributes());
          d->set_start_time_unix_nano(start);
          d->set_time_unix_nano(snapshot.time_unix_ns);
          const metrics::HistogramData& h = p.histogram;
          const bool delta = options_.delta;
          d->set_count(delta ? h.count - prev.histogram.count : h.count);
          d->set_sum(delta ? h.sum - prev.histogram.sum : h.sum);
          for (size_t i = 0; i <= f.bounds.size(); i++) {
            d->add_bucket_counts(delta ? h.buckets[i] - prev.histogram.buckets[i] : h.buckets[i]);
          }
          for (double b : f.bounds) d->add_explicit_bounds(b);
          if (!delta && h.count > 0) {  // delta min/max cannot be told from totals
            d->set_min(h.min);
            d->set_max(h.max);
          }
          now.histogram = h;
        } else {
          pb::metrics::v1::NumberDataPoint* d = m->mutable_sum()->add_data_points();
          for (const auto& a : p.attributes) AddAttribute(a.key, a.value, d->mutable_attributes());
          d->set_start_time_unix_nano(start);
          d->set_time_unix_nano(snapshot.time_unix_ns);
          d->set_as_int(static_cast<int64_t>(options_.delta ? p.value - prev.value : p.value));
          now.value = p.value;
        }
        if (options_.delta) encoded_.emplace_back(std::move(key), now);
      }
    }
  }
  encoded_time_ns_ = snapshot.time_unix_ns;
  return points;
}

void MetricsRequestEncoder::Commit() {
  for (auto& [key, now] : encoded_) previous_[key] = now;
  encoded_.clear();
  previous_time_ns_ = encoded_time_ns_;
}

StatusOr<std::unique_ptr<OtlpMetricsExporter>> OtlpMetricsExporter::Create(
    const OtlpConfig& config, OtlpMetricsOptions options) {
  std::unique_ptr<OtlpMetricsExporter> e(new OtlpMetricsExporter(config, std::move(options)));
  if (config.protocol == OtlpConfig::Protocol::kGrpc) {
    auto channel = MakeOtlpGrpcChannel(config, 5000);
    if (!channel.ok()) return channel.status();
    e->channel_ = std::move(channel.value());
    e->stub_ = std::make_unique<grpc::GenericStub>(e->channel_);
    return e;
  }
  auto url = ParseEndpointUrl(config.endpoint, /*allow_no_scheme=*/false);
  if (!url.ok()) return url.status();
  curl_global_init(CURL_GLOBAL_DEFAULT);  // reference-counted; the span exporter may have too
  e->curl_ = curl_easy_init();
  if (e->curl_ == nullptr) return Status::Error("libcurl: curl_easy_init failed");
  const bool json = config.protocol == OtlpConfig::Protocol::kHttpJson;
  e->headers_ = curl_slist_append(
      nullptr, json ? "Content-Type: application/json" : "Content-Type: application/x-protobuf");
  e->headers_ = curl_slist_append(e->headers_, "Expect:");
  for (const auto& [key, value] : config.headers) {
    e->headers_ = curl_slist_append(e->headers_, (key + ": " + value).c_str());
  }
  CURL* c = e->curl_;
  curl_easy_setopt(c, CURLOPT_URL, config.endpoint.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers_);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "zerotrace/" ZT_VERSION);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, e->curl_error_);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &AbortWhenCancelled);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &e->cancelled_);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(config.timeout.count()));
  if (!config.certificate.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, config.certificate.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  }
  if (!config.client_certificate.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, config.client_certificate.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, config.client_key.c_str());
  }
  return e;
}

OtlpMetricsExporter::OtlpMetricsExporter(const OtlpConfig& config, OtlpMetricsOptions options)
    : config_(config), encoder_(std::move(options)) {}

OtlpMetricsExporter::~OtlpMetricsExporter() {
  if (curl_) curl_easy_cleanup(curl_);
  if (headers_) curl_slist_free_all(headers_);
}

Status OtlpMetricsExporter::Export(const metrics::MetricsSnapshot& snapshot) {
  pb::collector::metrics::v1::ExportMetricsServiceRequest request;
  const size_t points = encoder_.Encode(snapshot, &request);
  if (cancelled_.load()) return Status::Error("the agent is stopping");
  std::string body;
  if (config_.protocol == OtlpConfig::Protocol::kHttpJson) {
    google::protobuf::util::JsonPrintOptions json;
    json.always_print_enums_as_ints = true;  // OTLP/JSON: enums are integers
    (void)google::protobuf::util::MessageToJsonString(request, &body, json);
  } else {
    request.SerializeToString(&body);
  }
  const Status s = stub_ ? SendGrpc(body) : SendHttp(body);
  if (s.ok()) {
    encoder_.Commit();
    counters_.exports_ok.fetch_add(1, std::memory_order_relaxed);
    counters_.points_sent.fetch_add(points, std::memory_order_relaxed);
  } else {
    counters_.exports_failed.fetch_add(1, std::memory_order_relaxed);
  }
  return s;
}

Status OtlpMetricsExporter::SendGrpc(const std::string& body) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + config_.timeout);
  if (config_.gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  for (const auto& [key, value] : config_.headers) context.AddMetadata(key, value);
  {
    std::lock_guard lock(cancel_mu_);
    if (cancelled_.load()) return Status::Error("the agent is stopping");
    active_ = &context;
  }
  grpc::Slice slice(body.data(), body.size(), grpc::Slice::STATIC_SLICE);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::CompletionQueue cq;
  auto call = stub_->PrepareUnaryCall(&context, kExportMethod, request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, this);
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  {
    std::lock_guard lock(cancel_mu_);
    active_ = nullptr;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (status.ok()) return Status::Ok();
  return Status::Error("gRPC " + std::to_string(status.error_code()) + ": " +
                       status.error_message());
}

Status OtlpMetricsExporter::SendHttp(const std::string& body) {
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_error_[0] = '\0';
  const CURLcode rc = curl_easy_perform(curl_);
  if (rc != CURLE_OK) {
    return Status::Error(std::string(curl_easy_strerror(rc)) + " " + curl_error_);
  }
  long status = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return Status::Ok();
  return Status::Error("HTTP " + std::to_string(status));
}

void OtlpMetricsExporter::Cancel() {
  std::lock_guard lock(cancel_mu_);
  cancelled_.store(true);
  if (active_ != nullptr) active_->TryCancel();
}

PeriodicMetricsExport::PeriodicMetricsExport(OtlpMetricsExporter* exporter, SnapshotFn snapshot,
                                             std::chrono::milliseconds interval)
    : exporter_(exporter), snapshot_(std::move(snapshot)), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

void PeriodicMetricsExport::Loop() {
  std::unique_lock lock(mu_);
  auto next = std::chrono::steady_clock::now() + interval_;
  while (!stopping_) {
    if (cv_.wait_until(lock, next, [this] { return stopping_; })) break;
    lock.unlock();
    last_failed_ = !exporter_->Export(snapshot_()).ok();
    lock.lock();
    next = std::chrono::steady_clock::now() + interval_;
  }
  lock.unlock();
  // The final one, unless the collector just failed us: a stop does not wait for it.
  if (!last_failed_) (void)exporter_->Export(snapshot_());
  lock.lock();
  stopped_ = true;
  cv_.notify_all();
}

void PeriodicMetricsExport::Stop(std::chrono::milliseconds timeout) {
  if (!thread_.joinable()) return;
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    // At most 2 s: the final export runs beside the span flush, which does not wait for a
    // collector that does not answer either.
    const auto bound = std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(2));
    if (!cv_.wait_for(lock, bound, [this] { return stopped_; })) {
      lock.unlock();
      exporter_->Cancel();  // a collector that does not answer is not waited for
    }
  }
  thread_.join();
}

}  // namespace zerotrace::exporter
