// Entry probe sites on instructions the kernel emulates: prologue patterns, and the move of
// OpenSSL's entry probes to its internal read/write functions on the system's libssl.
#include "probes/entry_sites.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace zerotrace::probes {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

TEST(GoEntryJumpOffset, FindsTheStackCheckJump) {
  struct Case {
    const char* what;
    std::string code;
    std::optional<uint64_t> want;
  };
  const Case cases[] = {
      // crypto/tls.(*Conn).Read, Go 1.19: cmp 0x10(%r14),%rsp; jbe rel32; sub $0x68,%rsp
      {"small frame, jbe rel32",
       Bytes({0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0xc2, 0x03, 0, 0, 0x48, 0x83, 0xec, 0x68}), 4},
      {"small frame, jbe rel8", Bytes({0x49, 0x3b, 0x66, 0x10, 0x76, 0x20, 0x48}), 4},
      // crypto/tls.(*Conn).Write: lea -0x68(%rsp),%r12; cmp 0x10(%r14),%r12; jbe rel32
      {"lea disp8",
       Bytes({0x4c, 0x8d, 0x64, 0x24, 0x98, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 1, 2, 3, 4}), 9},
      // net/http.(*conn).serve: lea -0x3b8(%rsp),%r12 (disp32)
      {"lea disp32",
       Bytes({0x4c, 0x8d, 0xa4, 0x24, 0x48, 0xfc, 0xff, 0xff, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 1,
              2, 3, 4}),
       12},
      {"lea, then a cmp of %rsp (not Go's form)",
       Bytes({0x4c, 0x8d, 0x64, 0x24, 0x98, 0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 1, 2, 3, 4}),
       std::nullopt},
      {"cmp without a jbe", Bytes({0x49, 0x3b, 0x66, 0x10, 0x74, 0x20, 0x48}), std::nullopt},
      {"no stack check (nosplit)", Bytes({0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0x6c, 0x24}),
       std::nullopt},
      {"truncated", Bytes({0x49, 0x3b, 0x66, 0x10, 0x0f}), std::nullopt},
      {"empty", "", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(GoEntryJumpOffset(c.code), c.want) << c.what;
}

TEST(SslPrologue, PatternsOfPublicFunctions) {
  // SSL_write_ex at 0x35a10: sub $0x8,%rsp; call 0x355a0
  const std::string ex = Bytes({0x48, 0x83, 0xec, 0x08, 0xe8, 0x87, 0xfb, 0xff, 0xff});
  EXPECT_EQ(SubThenCallTarget(ex, 0x35a10), 0x355a0u);
  EXPECT_EQ(SubThenCallTarget(Bytes({0x48, 0x83, 0xec, 0x08, 0xe9, 0, 0, 0, 0}), 0), std::nullopt);
  EXPECT_EQ(SubThenCallTarget(ex.substr(0, 8), 0x35a10), std::nullopt);
  // SSL_write at 0x35980 calls 0x355a0 from 0x3599e (e8 fd fb ff ff).
  std::string pub(64, '\x90');
  pub.replace(0x1e, 5, Bytes({0xe8, 0xfd, 0xfb, 0xff, 0xff}));
  EXPECT_TRUE(CallsTargetEarly(pub, 0x35980, 0x355a0));
  EXPECT_FALSE(CallsTargetEarly(pub, 0x35980, 0x35290));
  EXPECT_TRUE(StartsWithRegisterPush(Bytes({0x41, 0x56})));               // push %r14
  EXPECT_TRUE(StartsWithRegisterPush(Bytes({0x53})));                     // push %rbx
  EXPECT_FALSE(StartsWithRegisterPush(Bytes({0x48, 0x83})));              // sub
  EXPECT_FALSE(StartsWithRegisterPush(Bytes({0xf3, 0x0f, 0x1e, 0xfa})));  // endbr64
  EXPECT_FALSE(StartsWithRegisterPush(""));
}

// On the system's libssl: SSL_write and SSL_read lose their probes to the internal functions
// that their _ex forms call, and those begin with a register push.
TEST(MoveSslEntriesToInternal, SystemLibssl) {
  const std::string path = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
  auto symbols = FindTlsSymbols(path);
  ASSERT_TRUE(symbols.ok()) << symbols.status().message();
  TlsSymbols s = *symbols;
  ASSERT_NE(s.Offset(TlsFunction::kSslWrite), 0u);
  ASSERT_NE(s.Offset(TlsFunction::kSslReadEx), 0u);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(MoveSslEntriesToInternal(&s, fd), 2);
  EXPECT_EQ(s.Offset(TlsFunction::kSslWrite), 0u);
  EXPECT_EQ(s.Offset(TlsFunction::kSslRead), 0u);
  for (TlsFunction f : {TlsFunction::kSslWriteEx, TlsFunction::kSslReadEx}) {
    EXPECT_NE(s.Offset(f), symbols->Offset(f));
    char b[2];
    ASSERT_EQ(pread(fd, b, 2, static_cast<off_t>(s.Offset(f))), 2);
    EXPECT_TRUE(StartsWithRegisterPush(std::string_view(b, 2)));
  }
  // The handshake is not moved.
  EXPECT_EQ(s.Offset(TlsFunction::kSslDoHandshake), symbols->Offset(TlsFunction::kSslDoHandshake));
  close(fd);
}

}  // namespace
}  // namespace zerotrace::probes
