// Entry probe sites on emulated instructions: byte patterns of compiler prologues (exact
// matches only; anything else keeps the function's first instruction).
#include "probes/entry_sites.h"

#include <unistd.h>

#include <cstring>

namespace zerotrace::probes {
namespace {

uint8_t Byte(std::string_view code, size_t i) { return static_cast<uint8_t>(code[i]); }

int32_t Rel32(std::string_view code, size_t i) {
  int32_t v;
  std::memcpy(&v, code.data() + i, sizeof(v));
  return v;
}

// Where SSL_write (or SSL_read) may call the internal function: within its first bytes.
constexpr size_t kPublicScan = 64;

bool PreadAt(void* ctx, uint64_t offset, void* buf, size_t len) {
  const int fd = *static_cast<int*>(ctx);
  return pread(fd, buf, len, static_cast<off_t>(offset)) == static_cast<ssize_t>(len);
}

// Moves one (public, _ex) pair: returns whether it did.
bool MovePair(TlsSymbols* s, TlsFunction pub, TlsFunction ex, ReadAt read_at, void* ctx) {
  const uint64_t ex_at = s->Offset(ex), pub_at = s->Offset(pub);
  char buf[kPublicScan];
  if (ex_at == 0 || !read_at(ctx, ex_at, buf, 9)) return false;
  const auto target = SubThenCallTarget(std::string_view(buf, 9), ex_at);
  if (!target || !read_at(ctx, *target, buf, 2) ||
      !StartsWithRegisterPush(std::string_view(buf, 2)))
    return false;
  if (pub_at != 0) {
    // SSL_write must reach the internal function through an early call; otherwise it keeps
    // its own probe (were it to call the function later, the nesting rule counts it once).
    if (read_at(ctx, pub_at, buf, sizeof(buf)) &&
        CallsTargetEarly(std::string_view(buf, sizeof(buf)), pub_at, *target))
      s->offset[static_cast<size_t>(pub)] = 0;
  }
  s->offset[static_cast<size_t>(ex)] = *target;
  return true;
}

}  // namespace

std::optional<uint64_t> SubThenCallTarget(std::string_view code, uint64_t at) {
  // 48 83 ec ib: sub $imm8,%rsp; e8 rel32: call.
  if (code.size() < 9 || Byte(code, 0) != 0x48 || Byte(code, 1) != 0x83 || Byte(code, 2) != 0xec ||
      Byte(code, 4) != 0xe8)
    return std::nullopt;
  return at + 9 + static_cast<int64_t>(Rel32(code, 5));
}

bool CallsTargetEarly(std::string_view code, uint64_t at, uint64_t target) {
  for (size_t i = 0; i + 5 <= code.size(); i++) {
    if (Byte(code, i) == 0xe8 && at + i + 5 + static_cast<int64_t>(Rel32(code, i + 1)) == target)
      return true;
  }
  return false;
}

bool StartsWithRegisterPush(std::string_view code) {
  if (code.empty()) return false;
  const uint8_t b0 = Byte(code, 0);
  if (b0 >= 0x50 && b0 <= 0x57) return true;  // push %rax..%rdi
  return code.size() >= 2 && b0 == 0x41 && Byte(code, 1) >= 0x50 && Byte(code, 1) <= 0x57;
}

int MoveSslEntriesToInternal(TlsSymbols* symbols, ReadAt read_at, void* ctx) {
  return MovePair(symbols, TlsFunction::kSslWrite, TlsFunction::kSslWriteEx, read_at, ctx) +
         MovePair(symbols, TlsFunction::kSslRead, TlsFunction::kSslReadEx, read_at, ctx);
}

int MoveSslEntriesToInternal(TlsSymbols* symbols, int fd) {
  return MoveSslEntriesToInternal(symbols, PreadAt, &fd);
}

std::optional<uint64_t> GoEntryJumpOffset(std::string_view code) {
  size_t at = 0;
  // Large frames first compute the frame's bottom: lea -n(%rsp),%r12 (disp8 or disp32).
  if (code.size() >= 5 && code.substr(0, 4) == std::string_view("\x4c\x8d\x64\x24", 4))
    at = 5;
  else if (code.size() >= 8 && code.substr(0, 4) == std::string_view("\x4c\x8d\xa4\x24", 4))
    at = 8;
  // cmp 0x10(%r14),%rsp (49 3b 66 10) or cmp 0x10(%r14),%r12 (4d 3b 66 10).
  const std::string_view cmp =
      at == 0 ? std::string_view("\x49\x3b\x66\x10", 4) : std::string_view("\x4d\x3b\x66\x10", 4);
  if (code.size() < at + 6 || code.substr(at, 4) != cmp) return std::nullopt;
  at += 4;
  if (Byte(code, at) == 0x76 || (Byte(code, at) == 0x0f && Byte(code, at + 1) == 0x86)) return at;
  return std::nullopt;
}

}  // namespace zerotrace::probes
