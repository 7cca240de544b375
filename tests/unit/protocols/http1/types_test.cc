// EqualsLowerLiteral (folded 8 bytes at a time) against EqualsIgnoreCase (a byte at a time).
#include "protocols/http1/types.h"

#include <gtest/gtest.h>

#include <string>

namespace zerotrace::protocols::http1 {
namespace {

TEST(EqualsLowerLiteral, AgreesWithEqualsIgnoreCaseForEveryByteAtEveryPosition) {
  // Every length around the word boundaries, every byte value at every position: letters of
  // both cases, the bytes next to 'A'..'Z' and 'a'..'z', and bytes above 0x7f.
  for (size_t n = 1; n <= 26; n++) {
    std::string lower;
    for (size_t i = 0; i < n; i++) lower += static_cast<char>('a' + (i * 7) % 26);
    for (size_t at = 0; at < n; at++) {
      for (int b = 0; b < 256; b++) {
        std::string a = lower;
        a[at] = static_cast<char>(b);
        EXPECT_EQ(EqualsLowerLiteral(a, lower), EqualsIgnoreCase(a, lower))
            << "length " << n << ", byte " << b << " at " << at;
      }
    }
  }
}

TEST(EqualsLowerLiteral, FoldsWholeNamesAndRejectsOtherLengths) {
  EXPECT_TRUE(EqualsLowerLiteral("Content-Length", "content-length"));
  EXPECT_TRUE(EqualsLowerLiteral("TRANSFER-ENCODING", "transfer-encoding"));
  EXPECT_TRUE(EqualsLowerLiteral("Host", "host"));
  EXPECT_FALSE(EqualsLowerLiteral("Content-Lengths", "content-length"));
  EXPECT_FALSE(EqualsLowerLiteral("Content-Lengtj", "content-length"));
  EXPECT_FALSE(EqualsLowerLiteral("Content\xc5Length", "content-length"));
  EXPECT_FALSE(EqualsLowerLiteral("User-Agent", "tracestate"));
  EXPECT_TRUE(EqualsLowerLiteral("", ""));
}

}  // namespace
}  // namespace zerotrace::protocols::http1
