// FindReturnOffsets: capstone (Debian's libcapstone) decodes; we only look at the opcodes.
#include "probes/go_ret_finder.h"

#include <capstone/capstone.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace zerotrace::probes {

StatusOr<std::vector<uint64_t>> FindReturnOffsets(std::string_view code, uint64_t address) {
  csh handle;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
    return Status::Error("capstone cannot disassemble x86-64");
  cs_insn* insn = cs_malloc(handle);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(code.data());
  size_t left = code.size();
  uint64_t at = address;
  std::vector<uint64_t> rets;
  bool ok = true;
  while (left > 0) {
    if (!cs_disasm_iter(handle, &p, &left, &at, insn)) {
      ok = false;
      break;
    }
    if (insn->id == X86_INS_RET) rets.push_back(insn->address - address);
  }
  cs_free(insn, 1);
  cs_close(&handle);
  if (!ok) {
    char where[64];
    std::snprintf(where, sizeof(where), "%#llx", static_cast<unsigned long long>(at));
    return Status::Error(std::string("an instruction at ") + where + " does not decode");
  }
  return rets;
}

bool SpillsFirstTwoArgs(std::string_view code, uint64_t address) {
  csh handle;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) return false;
  cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insn = cs_malloc(handle);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(code.data());
  size_t left = std::min<size_t>(code.size(), 256);  // the prologue is near the entry
  uint64_t at = address;
  int64_t frame = -1;
  bool rax = false, rbx = false;
  while (left > 0 && cs_disasm_iter(handle, &p, &left, &at, insn)) {
    if (insn->id == X86_INS_CALL || insn->id == X86_INS_RET) break;
    const cs_x86& x = insn->detail->x86;
    if (insn->id == X86_INS_SUB && x.op_count == 2 && x.operands[0].type == X86_OP_REG &&
        x.operands[0].reg == X86_REG_RSP && x.operands[1].type == X86_OP_IMM) {
      if (frame >= 0) break;  // a second adjustment: not the plain prologue we know
      frame = x.operands[1].imm;
      continue;
    }
    // mov qword ptr [rsp + frame + 8 (rax) or + 16 (rbx)], reg
    if (frame < 0 || insn->id != X86_INS_MOV || x.op_count != 2 ||
        x.operands[0].type != X86_OP_MEM || x.operands[0].size != 8 ||
        x.operands[0].mem.base != X86_REG_RSP || x.operands[0].mem.index != X86_REG_INVALID ||
        x.operands[1].type != X86_OP_REG)
      continue;
    const int64_t disp = x.operands[0].mem.disp;
    if (x.operands[1].reg == X86_REG_RAX && disp == frame + 8) rax = true;
    if (x.operands[1].reg == X86_REG_RBX && disp == frame + 16) rbx = true;
  }
  cs_free(insn, 1);
  cs_close(&handle);
  return rax && rbx;
}

std::optional<uint64_t> FindRunqputCallAfterNewproc1(std::string_view code, uint64_t address,
                                                     uint64_t newproc1, uint64_t runqput) {
  csh handle;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) return std::nullopt;
  cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insn = cs_malloc(handle);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(code.data());
  size_t left = std::min<size_t>(code.size(), 512);
  uint64_t at = address;
  // 0: before newproc1's call; 1: after it; 2: RAX moved to RBX, RBX untouched since.
  int state = 0;
  std::optional<uint64_t> found;
  while (!found && left > 0 && cs_disasm_iter(handle, &p, &left, &at, insn)) {
    const cs_x86& x = insn->detail->x86;
    const bool call =
        insn->id == X86_INS_CALL && x.op_count == 1 && x.operands[0].type == X86_OP_IMM;
    if (call && static_cast<uint64_t>(x.operands[0].imm) == newproc1) {
      state = 1;
      continue;
    }
    if (state == 0) continue;
    if (call && static_cast<uint64_t>(x.operands[0].imm) == runqput) {
      if (state == 2) found = insn->address - address;
      break;
    }
    if (insn->id == X86_INS_CALL || insn->id == X86_INS_RET || insn->id == X86_INS_JMP) break;
    const bool mov_rax_rbx = insn->id == X86_INS_MOV && x.op_count == 2 &&
                             x.operands[0].type == X86_OP_REG && x.operands[0].reg == X86_REG_RBX &&
                             x.operands[1].type == X86_OP_REG && x.operands[1].reg == X86_REG_RAX;
    if (mov_rax_rbx) {
      state = 2;
      continue;
    }
    // Any other write of RBX/EBX/BX/BL: the new g is no longer there.
    cs_regs read, written;
    uint8_t nread = 0, nwritten = 0;
    if (cs_regs_access(handle, insn, read, &nread, written, &nwritten) != CS_ERR_OK) break;
    for (uint8_t i = 0; i < nwritten; i++) {
      const auto r = written[i];
      if (r == X86_REG_RBX || r == X86_REG_EBX || r == X86_REG_BX || r == X86_REG_BL ||
          r == X86_REG_BH)
        state = 1;
    }
  }
  cs_free(insn, 1);
  cs_close(&handle);
  return found;
}

}  // namespace zerotrace::probes
