// FindReturnOffsets: capstone (Debian's libcapstone) decodes; we only look at the opcodes.
#include "probes/go_ret_finder.h"

#include <capstone/capstone.h>

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

}  // namespace zerotrace::probes
