// HpackDecoder: the inflater's life and its table limit.
#include "protocols/http2/hpack.h"

namespace zerotrace::protocols::http2 {

HpackDecoder::~HpackDecoder() {
  if (inflater_ != nullptr) nghttp2_hd_inflate_del(inflater_);
}

bool HpackDecoder::Init() {
  if (nghttp2_hd_inflate_new(&inflater_) != 0) {
    inflater_ = nullptr;
    return Fail();
  }
  // Raises only what a table size update may ask for: the table itself stays at the 4096 bytes
  // both ends start with until the encoder says otherwise (nghttp2 changes the live size only
  // when the new limit is below it).
  if (nghttp2_hd_inflate_change_table_size(inflater_, kMaxHpackTable) != 0) return Fail();
  return true;
}

size_t HpackDecoder::table_size() const {
  return inflater_ != nullptr ? nghttp2_hd_inflate_get_dynamic_table_size(inflater_) : 0;
}

}  // namespace zerotrace::protocols::http2
