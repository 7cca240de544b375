// HPACK (RFC 7541) decoding with libnghttp2's inflater: one decoder per direction per
// connection, fed every header block of that direction in order, so its dynamic table stays
// the one the sender's encoder has.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string_view>

namespace zerotrace::protocols::http2 {

// The dynamic table size the decoder accepts the encoder to grow to (a SETTINGS_HEADER_TABLE_SIZE
// above this, used in full, makes the block undecodable: counted, never decoded wrong).
inline constexpr size_t kMaxHpackTable = 64 * 1024;

class HpackDecoder {
 public:
  HpackDecoder() = default;
  ~HpackDecoder();
  HpackDecoder(const HpackDecoder&) = delete;
  HpackDecoder& operator=(const HpackDecoder&) = delete;

  // Hot path. Decodes one fragment of a header block (HEADERS or PUSH_PROMISE, then its
  // CONTINUATIONs); `last`: the block ends with it. Calls field(name, value) for every field
  // decoded (the views live until field returns). False when the block cannot be decoded: the
  // table is then unknown, and the decoder refuses everything after.
  template <typename Fn>
  bool Feed(std::string_view fragment, bool last, Fn&& field) {
    if (failed_ || (inflater_ == nullptr && !Init())) return false;
    const auto* in = reinterpret_cast<const uint8_t*>(fragment.data());
    size_t left = fragment.size();
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      const ssize_t used = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, last ? 1 : 0);
      if (used < 0) return Fail();
      in += used;
      left -= static_cast<size_t>(used);
      if (flags & NGHTTP2_HD_INFLATE_EMIT) {
        field(std::string_view(reinterpret_cast<const char*>(nv.name), nv.namelen),
              std::string_view(reinterpret_cast<const char*>(nv.value), nv.valuelen));
      }
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(inflater_);
        return true;
      }
      if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) return true;  // more to come
    }
  }
  bool failed() const { return failed_; }
  // Bytes the dynamic table holds (RFC 7541 section 4.1 accounting).
  size_t table_size() const;

 private:
  bool Init();
  bool Fail() {
    failed_ = true;
    return false;
  }
  nghttp2_hd_inflater* inflater_ = nullptr;  // made at the first block
  bool failed_ = false;
};

}  // namespace zerotrace::protocols::http2
