// Span ids and lookups.
#include "trace/span.h"

#include <sys/random.h>

#include <cstring>
#include <random>

namespace zerotrace::trace {
namespace {

// SplitMix64, one state per thread seeded from getrandom(): ids need uniqueness, not secrecy,
// and this costs a few ns where std::mt19937_64 cost tens (it is on the per-request path).
struct IdRng {
  uint64_t state;
  uint64_t operator()() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

IdRng& Rng() {
  thread_local IdRng rng = [] {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) seed = std::random_device{}();
    return IdRng{seed};
  }();
  return rng;
}

template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& b) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(2 * N, '0');
  for (size_t i = 0; i < N; i++) {
    s[2 * i] = kDigits[b[i] >> 4];
    s[2 * i + 1] = kDigits[b[i] & 15];
  }
  return s;
}

}  // namespace

std::string TraceId::Hex() const { return ToHex(bytes); }
std::string SpanId::Hex() const { return ToHex(bytes); }

// Hot path (a span id per request): the words' bytes as they lie in memory, and zero (invalid)
// tested on the words, not byte by byte.
TraceId NewTraceId() {
  IdRng& rng = Rng();
  uint64_t a, b;
  do {
    a = rng();
    b = rng();
  } while ((a | b) == 0);
  TraceId id;
  std::memcpy(id.bytes.data(), &a, 8);
  std::memcpy(id.bytes.data() + 8, &b, 8);
  return id;
}

SpanId NewSpanId() {
  IdRng& rng = Rng();
  uint64_t a;
  do {
    a = rng();
  } while (a == 0);
  SpanId id;
  std::memcpy(id.bytes.data(), &a, 8);
  return id;
}

bool SameResource(const Resource* a, const Resource* b) {
  if (a == b) return true;
  if (a == nullptr || b == nullptr) return false;
  if (a->pid != b->pid || a->service_name != b->service_name ||
      a->service_instance_id != b->service_instance_id ||
      a->executable_name != b->executable_name || a->executable_path != b->executable_path ||
      a->command_args != b->command_args || a->runtime_name != b->runtime_name ||
      a->container_id != b->container_id || a->container_name != b->container_name ||
      a->k8s_pod_uid != b->k8s_pod_uid || a->k8s_pod_name != b->k8s_pod_name ||
      a->k8s_namespace_name != b->k8s_namespace_name ||
      a->k8s_container_name != b->k8s_container_name || a->host_name != b->host_name ||
      a->extra.size() != b->extra.size()) {
    return false;
  }
  for (size_t i = 0; i < a->extra.size(); i++) {
    if (a->extra[i].key != b->extra[i].key || a->extra[i].value != b->extra[i].value) return false;
  }
  return true;
}

const AttributeValue* Span::Find(std::string_view key) const {
  for (const auto& a : attributes) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

}  // namespace zerotrace::trace
