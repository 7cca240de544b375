// libFuzzer target for the readers of untrusted Go executables: the first byte picks the
// input's form (a whole ELF file through libelf, a raw .gopclntab, a raw .go.buildinfo);
// then the RET finder and the prologue check run on whatever code was found.
#include <gelf.h>
#include <libelf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "probes/go_binary.h"
#include "probes/go_ret_finder.h"

using namespace zerotrace::probes;

namespace {

void WholeElf(const uint8_t* data, size_t size) {
  if (elf_version(EV_CURRENT) == EV_NONE) return;
  std::vector<char> copy(data, data + size);  // libelf may write to memory images
  ::Elf* elf = elf_memory(copy.data(), copy.size());
  if (!elf) return;
  ElfImage image(elf);
  auto exe = ReadGoExecutable(image, {"crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read"});
  if (exe.ok() && exe->has_value()) {
    for (const auto& f : (*exe)->functions) {
      (void)FindReturnOffsets(f.bytes, f.entry);
      (void)SpillsFirstTwoArgs(f.bytes, f.entry);
    }
  }
  elf_end(elf);
}

void Pclntab(std::string_view in) {
  auto t = GoPclntab::Parse(in, 0x401000);
  if (!t.ok()) return;
  (void)t->Find("crypto/tls.(*Conn).Write");
  (void)t->Find(std::string_view(in.data(), std::min<size_t>(in.size(), 8)));
}

void BuildInfo(std::string_view in) {
  // The rest of the input doubles as the memory the header may point into.
  auto read = [in](uint64_t addr, uint64_t len) -> std::string_view {
    if (addr > in.size() || in.size() - addr < len) return {};
    return in.substr(addr, len);
  };
  auto v = ParseGoBuildInfo(in, read);
  if (v.ok()) (void)ParseGoVersion(*v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      WholeElf(data + 1, size - 1);
      break;
    case 1:
      Pclntab(rest);
      break;
    case 2:
      BuildInfo(rest);
      break;
    default:
      (void)FindReturnOffsets(rest, 0x401000);
      (void)SpillsFirstTwoArgs(rest, 0x401000);
      (void)ParseGoVersion(rest);
      break;
  }
  return 0;
}
