// Where a Go function returns: the RET instructions of its machine code (amd64), found by
// disassembling it with capstone. Uprobes there replace uretprobes, which rewrite the return
// address on the stack and so break Go's stack copying.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace zerotrace::probes {

// Offsets from the start of `code` of every RET instruction in it. Go puts no data between
// instructions on amd64, so a linear sweep from the entry decodes every instruction; bytes
// that do not decode are an error (a probe must never land inside an instruction).
StatusOr<std::vector<uint64_t>> FindReturnOffsets(std::string_view code, uint64_t address);

// Whether the function's prologue (before its first call) stores its first two register
// arguments (RAX, RBX) to their spill slots in the caller's frame: then, at each RET, the
// receiver and the buffer pointer are at 8(SP) and 16(SP), so a call that was already running
// when the probes were attached can still be attributed. Go's compiler does this for
// functions that call others; the check makes sure of it for each binary.
bool SpillsFirstTwoArgs(std::string_view code, uint64_t address);

// runtime.newproc.func1 (the closure `go` statements run on the system stack) calls
// newproc1, moves its result (the new g) from RAX to RBX, and calls runqput(pp, newg, true).
// The offset in `code` of that runqput call: a uprobe there is emulated (a call), unlike one
// on newproc1's RETs, and sees the new g, its goid set, in RBX. nullopt: not that shape.
std::optional<uint64_t> FindRunqputCallAfterNewproc1(std::string_view code, uint64_t address,
                                                     uint64_t newproc1, uint64_t runqput);

}  // namespace zerotrace::probes
