// Where a Go function returns: the RET instructions of its machine code (amd64), found by
// disassembling it with capstone. Uprobes there replace uretprobes, which rewrite the return
// address on the stack and so break Go's stack copying.
#pragma once

#include <cstdint>
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

}  // namespace zerotrace::probes
