// Where to put an entry uprobe so that the kernel emulates the probed instruction instead of
// single-stepping a copy of it: on this VM a single-stepped probe costs ≈ 15 µs more than an
// emulated one (x86 uprobes emulate calls, jumps, conditional jumps and register pushes).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "probes/tls_files.h"

namespace zerotrace::probes {

// OpenSSL 1.1.1/3: SSL_write_ex is `sub $n,%rsp; call ssl_write_internal` with its arguments
// (ssl, buf, num, written) passed on untouched, and SSL_write calls the same function with
// (ssl, buf, num, &written); likewise for reads. When the internal function starts with a
// pushed register, its entry (and the uretprobe there) replace the public functions' probes:
// the cookie becomes the _ex one (returns 1 and stores the count), and the public SSL_write's
// offset is cleared when it calls the internal function (so no call is probed twice). `read_at`
// reads `len` bytes at a file offset of the library; false when it cannot.
using ReadAt = bool (*)(void* ctx, uint64_t offset, void* buf, size_t len);
// Returns how many of the two (write, read) were moved.
int MoveSslEntriesToInternal(TlsSymbols* symbols, ReadAt read_at, void* ctx);
// The same on an open file descriptor.
int MoveSslEntriesToInternal(TlsSymbols* symbols, int fd);

// The bytes of a function starting with `sub $imm8,%rsp; call rel32`: the call's target, as an
// offset in the same address space as `at` (the function's own offset).
std::optional<uint64_t> SubThenCallTarget(std::string_view code, uint64_t at);
// Whether a `call rel32` to `target` is among the first bytes of `code` (starting at `at`).
bool CallsTargetEarly(std::string_view code, uint64_t at, uint64_t target);
// Whether code starts with a push of a general-purpose register (emulated by uprobes).
bool StartsWithRegisterPush(std::string_view code);

// A Go (amd64) function's stack-bound check ends in a conditional jump (`jbe` to morestack),
// which uprobes emulate; the argument registers and g are unchanged up to it. Returns the
// jump's offset in `code`, or nullopt when the prologue is not one of Go's usual forms.
std::optional<uint64_t> GoEntryJumpOffset(std::string_view code);

}  // namespace zerotrace::probes
