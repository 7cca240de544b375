// gzip with zlib: inflate with a size bound, deflate in one call.
#include "gzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace zerotrace::otlp_sink {
namespace {

constexpr int kGzipWindowBits = 16 + MAX_WBITS;  // 16+: gzip header and trailer, not zlib
constexpr size_t kChunk = 64 * 1024;

}  // namespace

std::optional<std::string> Gunzip(std::string_view data, size_t max_size) {
  std::string out;
  size_t consumed = 0;
  // Each loop is one gzip member; a valid stream ends exactly at the end of a member.
  while (consumed < data.size()) {
    z_stream zs = {};
    if (inflateInit2(&zs, kGzipWindowBits) != Z_OK) return std::nullopt;
    const std::string_view rest = data.substr(consumed);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(rest.data()));
    zs.avail_in =
        static_cast<uInt>(std::min<size_t>(rest.size(), std::numeric_limits<uInt>::max()));
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      if (out.size() >= max_size) {
        inflateEnd(&zs);
        return std::nullopt;
      }
      const size_t before = out.size();
      const size_t room = std::min(kChunk, max_size - before);
      out.resize(before + room);
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + before);
      zs.avail_out = static_cast<uInt>(room);
      rc = inflate(&zs, Z_NO_FLUSH);
      out.resize(before + room - zs.avail_out);
      if (rc == Z_STREAM_END) break;
      // Z_BUF_ERROR with input left means no progress was possible: truncated or corrupt.
      if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs.avail_out == 0)) {
        inflateEnd(&zs);
        return std::nullopt;
      }
      if (zs.avail_in == 0 && zs.avail_out != 0) {  // input ended inside the member
        inflateEnd(&zs);
        return std::nullopt;
      }
    }
    consumed += rest.size() - zs.avail_in;
    inflateEnd(&zs);
  }
  if (data.empty()) return std::nullopt;
  return out;
}

std::string Gzip(std::string_view data) {
  z_stream zs = {};
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);  // deflateBound guarantees one call finishes
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace zerotrace::otlp_sink
