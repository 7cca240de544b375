// RED series: attribute extraction by instrument, the key encoding, and the series store.
#include "metrics/red_metrics.h"

#include <chrono>
#include <cstring>
#include <type_traits>

namespace zerotrace::metrics {
namespace {

constexpr size_t kMaxValueBytes = kMaxSeriesValueBytes;
// Ends a key where attribute values would start: no value encoding begins with it.
constexpr char kOverflowMarker = 0x7f;

// Older convention names, read as the current ones.
std::string_view Canonical(std::string_view key) {
  if (!key.starts_with("db.")) return key;
  if (key == "db.system") return "db.system.name";
  if (key == "db.operation") return "db.operation.name";
  if (key == "db.name") return "db.namespace";
  if (key == "db.sql.table") return "db.collection.name";
  return key;
}

enum : char { kAbsent = 0, kString = 1, kInt = 2, kBool = 3, kDouble = 4 };

// The key's encoding, written to one of three sinks: a string (the key), a hash, or a
// comparison with a key already written.
struct Writer {
  std::string* out;
  void Byte(char c) { out->push_back(c); }
  void Bytes(const void* p, size_t n) { out->append(static_cast<const char*>(p), n); }
};
// A cache's index, not an identity (the cache compares the key): strings are hashed by their
// length and their first and last 8 bytes only.
struct Hasher {
  static constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  uint64_t h = 0;
  static uint64_t Load(const char* p, size_t n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    return w;
  }
  void Mix(uint64_t w) {
    h = (h ^ w) * kMul;
    h ^= h >> 32;  // a product's high half depends on every input bit: fold it down
  }
  void Byte(char c) { h = (h + static_cast<uint8_t>(c) + 1) * kMul; }
  void Bytes(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    if (n == 8) return Mix(Load(c, 8));
    for (size_t i = 0; i < n; i++) Byte(c[i]);
  }
  void String(std::string_view s) {
    const size_t n = s.size();
    const char* p = s.data();
    if (n >= 8) {
      Mix(Load(p, 8) ^ n);
      Mix(Load(p + n - 8, 8));
    } else if (n >= 4) {
      Mix(Load(p, 4) | Load(p + n - 4, 4) << 32 | uint64_t{n} << 61);
    } else {
      Mix(n == 0 ? 0 : Load(p, 1) | Load(p + n / 2, 1) << 8 | Load(p + n - 1, 1) << 16 | n << 24);
    }
  }
};
struct Matcher {
  std::string_view key;
  size_t pos = 0;
  bool same = true;
  void Byte(char c) {
    same = same && pos < key.size() && key[pos] == c;
    pos++;
  }
  void Bytes(const void* p, size_t n) {
    same = same && pos + n <= key.size() && std::memcmp(key.data() + pos, p, n) == 0;
    pos += n;
  }
};

template <class Sink>
void PutString(std::string_view s, Sink* out) {
  s = s.substr(0, kMaxValueBytes);
  if constexpr (std::is_same_v<Sink, Hasher>) return out->String(s);
  out->Byte(kString);
  const uint16_t n = static_cast<uint16_t>(s.size());
  out->Bytes(&n, sizeof(n));
  out->Bytes(s.data(), s.size());
}
void PutString(std::string_view s, std::string* out) {
  Writer w{out};
  PutString(s, &w);
}

template <class Sink>
void PutValue(const trace::AttributeValue& v, Sink* out) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    PutString(*s, out);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out->Byte(kInt);
    out->Bytes(i, sizeof(*i));
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out->Byte(kBool);
    out->Byte(*b ? 1 : 0);
  } else {
    const double d = std::get<double>(v);
    out->Byte(kDouble);
    out->Bytes(&d, sizeof(d));
  }
}

// "GET /users/{id}": the route template follows the method. Without route inference the name
// is the method alone, and there is no route (never the raw path).
bool RouteOfName(const trace::Span& span, std::string_view* route) {
  const size_t space = span.name.find(' ');
  if (space == std::string::npos) return false;
  *route = std::string_view(span.name).substr(space + 1);
  return true;
}

template <class Sink>
void Encode(int instrument, const trace::Span& span, std::string_view service,
            const RedMetrics::Found& found, Sink* out) {
  const InstrumentSpec& spec = Instruments()[static_cast<size_t>(instrument)];
  out->Byte(static_cast<char>(instrument));
  PutString(service, out);
  std::string_view route;
  for (size_t k = 0; k < kMaxInstrumentKeys && !spec.keys[k].empty(); k++) {
    if (found[k] != nullptr) {
      PutValue(*found[k], out);
    } else if (spec.keys[k] == kRouteKey && RouteOfName(span, &route)) {
      PutString(route, out);
    } else {
      out->Byte(kAbsent);
    }
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

bool RedMetrics::Extract(int instrument, const trace::Span& span, Found* found) {
  const InstrumentSpec& spec = Instruments()[static_cast<size_t>(instrument)];
  found->fill(nullptr);
  bool whole = true;
  for (const trace::Attribute& a : span.attributes) {
    const std::string_view name = Canonical(a.key);
    for (size_t k = 0; k < kMaxInstrumentKeys && !spec.keys[k].empty(); k++) {
      if (SameKey(spec.keys[k], name)) {
        if ((*found)[k] == nullptr) {
          (*found)[k] = &a.value;
          const auto* s = std::get_if<std::string>(&a.value);
          whole = whole && (s == nullptr || s->size() <= kMaxValueBytes);
        }
        break;
      }
    }
  }
  return whole && span.name.size() <= kMaxValueBytes;
}

uint64_t RedMetrics::HashOf(int instrument, const trace::Span& span, std::string_view service,
                            const Found& found) {
  Hasher h;
  Encode(instrument, span, service, found, &h);
  return h.h;
}

bool RedMetrics::Matches(int instrument, const trace::Span& span, std::string_view service,
                         const Found& found, std::string_view key) {
  Matcher m{key};
  Encode(instrument, span, service, found, &m);
  return m.same && m.pos == key.size();
}

void RedMetrics::KeyOf(int instrument, const trace::Span& span, std::string_view service,
                       const Found& found, SeriesKey* key) {
  key->bytes.clear();
  key->instrument = instrument;
  Writer w{&key->bytes};
  Encode(instrument, span, service, found, &w);
}

void RedMetrics::PositionsOf(const SeriesKey& key, ValuePositions* at) {
  const InstrumentSpec& spec = Instruments()[static_cast<size_t>(key.instrument)];
  size_t pos = 1;
  trace::AttributeValue v;
  GetValue(key.bytes, &pos, &v);  // the service
  for (size_t k = 0; k < kMaxInstrumentKeys && !spec.keys[k].empty(); k++) {
    (*at)[k] = static_cast<uint16_t>(pos);
    GetValue(key.bytes, &pos, &v);
  }
}

bool RedMetrics::ValueAt(std::string_view key, size_t pos, const trace::AttributeValue& value) {
  // Each read stays within the encoding the type byte at `pos` announces.
  const char* p = key.data() + pos;
  if (const auto* s = std::get_if<std::string>(&value)) {
    uint16_t n;
    if (*p != kString) return false;
    std::memcpy(&n, p + 1, sizeof(n));
    return n == s->size() && std::memcmp(p + 1 + sizeof(n), s->data(), n) == 0;
  }
  if (const auto* i = std::get_if<int64_t>(&value)) {
    return *p == kInt && std::memcmp(p + 1, i, sizeof(*i)) == 0;
  }
  if (const auto* b = std::get_if<bool>(&value)) return *p == kBool && p[1] == (*b ? 1 : 0);
  const double d = std::get<double>(value);
  return *p == kDouble && std::memcmp(p + 1, &d, sizeof(d)) == 0;
}

void RedMetrics::KeyOf(int instrument, const trace::Span& span, std::string_view service,
                       SeriesKey* key) {
  Found found;
  Extract(instrument, span, &found);
  KeyOf(instrument, span, service, found, key);
}

void RedMetrics::Record(const SeriesKey& key, std::string_view peer_service, double seconds) {
  if (key.instrument < 0) return;
  RecordTo(Resolve(key, peer_service), seconds);
}

RedMetrics::Series* RedMetrics::Resolve(const SeriesKey& key, std::string_view peer_service) {
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
  return it != index_.end() ? it->second : Create(full, key, peer_service);
}

void RedMetrics::RecordTo(Series* s, double seconds) {
  std::lock_guard lock(mu_);
  RecordToLocked(s, seconds);
}

void RedMetrics::RecordToLocked(Series* s, double seconds) {
  const InstrumentSpec& spec = Instruments()[static_cast<size_t>(s->instrument)];
  if (s->overflow) overflow_.fetch_add(1, std::memory_order_relaxed);
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
  series->overflow = false;
  series->service = std::get<std::string>(service);
  series->start_unix_ns = WallNowNs();
  std::string_view stored = full_key;
  if (per_instrument_[inst] >= options_.max_series_per_instrument) {
    // The service's overflow series: the instrument, the service and the marker.
    overflow_key_.assign(full_key.substr(0, pos));
    overflow_key_.push_back(kOverflowMarker);
    if (auto it = index_.find(overflow_key_); it != index_.end()) return it->second;
    stored = overflow_key_;
    series->overflow = true;
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
