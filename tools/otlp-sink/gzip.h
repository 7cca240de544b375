// gzip (RFC 1952) bodies for OTLP/HTTP: inflate what clients send, deflate for tests.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace zerotrace::otlp_sink {

// Decompresses a complete gzip stream (concatenated members allowed). nullopt when the data
// is not valid gzip or inflates past max_size (a bound, because bodies come from the network).
std::optional<std::string> Gunzip(std::string_view data, size_t max_size);

// Compresses data into one gzip member.
std::string Gzip(std::string_view data);

}  // namespace zerotrace::otlp_sink
