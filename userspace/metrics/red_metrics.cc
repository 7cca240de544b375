// RED series: attribute extraction by instrument, the key encoding, and the series store.
#include "metrics/red_metrics.h"

#include <chrono>
#include <cstring>

namespace zerotrace::metrics {
namespace {

// Longest attribute value kept in a series (longer ones are cut): a Host header or an inferred
// route may be long, and every series holds its values twice (key and attributes).
constexpr size_t kMaxValueBytes = 256;
// Ends a key where attribute values would start: no value encoding begins with it.
constexpr char kOverflowMarker = 0x7f;

// Older convention names, read as the current ones.
std::string_view Canonical(std::string_view key) {
  if (key == "db.system") return "db.system.name";
  if (key == "db.operation") return "db.operation.name";
  if (key == "db.name") return "db.namespace";
  if (key == "db.sql.table") return "db.collection.name";
  return key;
}

enum : char { kAbsent = 0, kString = 1, kInt = 2, kBool = 3, kDouble = 4 };

void PutString(std::string_view s, std::string* out) {
  s = s.substr(0, kMaxValueBytes);
  out->push_back(kString);
  const uint16_t n = static_cast<uint16_t>(s.size());
  out->append(reinterpret_cast<const char*>(&n), sizeof(n));
  out->append(s);
}

void PutValue(const trace::AttributeValue& v, std::string* out) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    PutString(*s, out);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out->push_back(kInt);
    out->append(reinterpret_cast<const char*>(i), sizeof(*i));
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out->push_back(kBool);
    out->push_back(*b ? 1 : 0);
  } else {
    const double d = std::get<double>(v);
    out->push_back(kDouble);
    out->append(reinterpret_cast<const char*>(&d), sizeof(d));
  }
}

// Reads one encoded value at *pos; false for an absent one.
bool GetValue(std::string_view key, size_t* pos, trace::AttributeValue* out) {
  const char type = key[(*pos)++];
  switch (type) {
    case kString: {
      uint16_t n;
      std::memcpy(&n, key.data() + *pos, sizeof(n));
      *pos += sizeof(n);
      *out = std::string(key.substr(*pos, n));
      *pos += n;
      return true;
    }
    case kInt: {
      int64_t i;
      std::memcpy(&i, key.data() + *pos, sizeof(i));
      *pos += sizeof(i);
      *out = i;
      return true;
    }
    case kBool:
      *out = key[(*pos)++] != 0;
      return true;
    case kDouble: {
      double d;
      std::memcpy(&d, key.data() + *pos, sizeof(d));
      *pos += sizeof(d);
      *out = d;
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

uint64_t WallNowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void RedMetrics::KeyOf(int instrument, const trace::Span& span, std::string_view service,
                       SeriesKey* key) {
  const InstrumentSpec& spec = Instruments()[static_cast<size_t>(instrument)];
  std::array<const trace::AttributeValue*, kMaxInstrumentKeys> found{};
  for (const trace::Attribute& a : span.attributes) {
    const std::string_view name = Canonical(a.key);
    for (size_t k = 0; k < kMaxInstrumentKeys && !spec.keys[k].empty(); k++) {
      if (spec.keys[k] == name) {
        if (found[k] == nullptr) found[k] = &a.value;
        break;
      }
    }
  }
  std::string& out = key->bytes;
  out.clear();
  key->instrument = instrument;
  out.push_back(static_cast<char>(instrument));
  PutString(service, &out);
  for (size_t k = 0; k < kMaxInstrumentKeys && !spec.keys[k].empty(); k++) {
    if (found[k] != nullptr) {
      PutValue(*found[k], &out);
    } else if (spec.keys[k] == kRouteKey && span.name.find(' ') != std::string::npos) {
      // "GET /users/{id}": the route template follows the method. Without route inference
      // the name is the method alone, and there is no route (never the raw path).
      PutString(std::string_view(span.name).substr(span.name.find(' ') + 1), &out);
    } else {
      out.push_back(kAbsent);
    }
  }
}

void RedMetrics::Record(const SeriesKey& key, std::string_view peer_service, double seconds) {
  if (key.instrument < 0) return;
  const InstrumentSpec& spec = Instruments()[static_cast<size_t>(key.instrument)];
  std::string_view full = key.bytes;
  if (spec.client) {
    scratch_.assign(key.bytes);
    if (peer_service.empty()) {
      scratch_.push_back(kAbsent);
    } else {
      PutString(peer_service, &scratch_);
    }
    full = scratch_;
  }
  std::lock_guard lock(mu_);
  auto it = index_.find(full);
  Series* s = it != index_.end() ? it->second : Create(full, key, peer_service);
  s->data.Record(seconds, spec.bounds);
}

// Under mu_: a new series for `full_key`, or the service's overflow series past the limit.
RedMetrics::Series* RedMetrics::Create(std::string_view full_key, const SeriesKey& key,
                                       std::string_view peer_service) {
  const size_t inst = static_cast<size_t>(key.instrument);
  const InstrumentSpec& spec = Instruments()[inst];
  size_t pos = 1;
  trace::AttributeValue service;
  GetValue(full_key, &pos, &service);
  auto series = std::make_unique<Series>();
  series->id = series_.size() + 1;
  series->instrument = key.instrument;
  series->service = std::get<std::string>(service);
  series->start_unix_ns = WallNowNs();
  std::string_view stored = full_key;
  if (per_instrument_[inst] >= options_.max_series_per_instrument) {
    // The service's overflow series: the instrument, the service and the marker.
    overflow_.fetch_add(1, std::memory_order_relaxed);
    overflow_key_.assign(full_key.substr(0, pos));
    overflow_key_.push_back(kOverflowMarker);
    if (auto it = index_.find(overflow_key_); it != index_.end()) return it->second;
    stored = overflow_key_;
    series->attributes.push_back({kOverflowAttribute, true});
  } else {
    per_instrument_[inst]++;
    for (size_t k = 0; k < kMaxInstrumentKeys && !spec.keys[k].empty(); k++) {
      trace::AttributeValue v;
      if (GetValue(full_key, &pos, &v)) {
        series->attributes.push_back({std::string(spec.keys[k]), std::move(v)});
      }
    }
    if (spec.client && !peer_service.empty()) {
      series->attributes.push_back({std::string(kPeerServiceKey), std::string(peer_service)});
    }
  }
  Series* raw = series.get();
  series_.push_back(std::move(series));
  index_.emplace(std::string(stored), raw);
  series_count_.store(series_.size(), std::memory_order_relaxed);
  return raw;
}

void RedMetrics::AppendSnapshot(std::vector<ResourceMetrics>* out) const {
  // Under the lock only the numbers are copied; a series' other fields never change.
  std::vector<std::pair<const Series*, HistogramData>> copy;
  {
    std::lock_guard lock(mu_);
    copy.reserve(series_.size());
    for (const auto& s : series_) copy.emplace_back(s.get(), s->data);
  }
  std::unordered_map<std::string, size_t> by_service;
  for (size_t i = 0; i < out->size(); i++) by_service.emplace((*out)[i].service_name, i);
  for (const auto& [s, data] : copy) {
    auto [at, added] = by_service.emplace(s->service, out->size());
    if (added) out->emplace_back().service_name = s->service;
    ResourceMetrics& r = (*out)[at->second];
    const InstrumentSpec& spec = Instruments()[static_cast<size_t>(s->instrument)];
    MetricFamily* family = nullptr;
    for (MetricFamily& f : r.families) {
      if (f.name == spec.name) family = &f;
    }
    if (family == nullptr) {
      MetricFamily& f = r.families.emplace_back();
      f.name = spec.name;
      f.description = spec.description;
      f.unit = "s";
      f.kind = MetricFamily::Kind::kHistogram;
      f.bounds.assign(spec.bounds.begin(), spec.bounds.end());
      family = &f;
    }
    Point& p = family->points.emplace_back();
    p.id = s->id;
    p.attributes = s->attributes;
    p.start_unix_ns = s->start_unix_ns;
    p.histogram = data;
  }
}

}  // namespace zerotrace::metrics
