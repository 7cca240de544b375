// Reading Go executables without trusting them: the toolchain version from .go.buildinfo and
// function bounds from .gopclntab. Both sections survive `-ldflags=-s -w` and strip(1), so
// stripped binaries are read the same way.
#pragma once

#include <libelf.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace zerotrace::probes {

struct GoVersion {
  int major = 0, minor = 0, patch = 0;
  auto operator<=>(const GoVersion&) const = default;
};
// "go1.19.8", "go1.21rc2", "go1.22.0 X:boringcrypto", "devel go1.23-abc" -> {1, 19, 8}, ...;
// nullopt when the text names no Go release.
std::optional<GoVersion> ParseGoVersion(std::string_view text);

// Reads `len` bytes of the image at a virtual address; empty when they are not in the file.
using GoAddrReader = std::function<std::string_view(uint64_t addr, uint64_t len)>;
// The version string in a .go.buildinfo section: inline (Go >= 1.18) or through the pointer
// the header holds (Go 1.13-1.17), which `read` resolves.
StatusOr<std::string> ParseGoBuildInfo(std::string_view section, const GoAddrReader& read);

// The function table of .gopclntab (layouts of Go 1.16-1.17, 1.18-1.19 and 1.20+).
class GoPclntab {
 public:
  // `text_start`: the .text section's address, where Go 1.16/1.17 tables have no base. The
  // view must outlive the table.
  static StatusOr<GoPclntab> Parse(std::string_view data, uint64_t text_start);

  struct Function {
    uint64_t entry = 0;  // virtual address of the first instruction
    uint64_t end = 0;    // the next function's entry: the code is [entry, end)
  };
  // The function with exactly this name ("crypto/tls.(*Conn).Write"); a linear scan.
  std::optional<Function> Find(std::string_view name) const;
  size_t functions() const { return nfunc_; }

 private:
  GoPclntab() = default;
  // Entry address of functab row i (0 <= i <= nfunc); nullopt when out of bounds.
  std::optional<uint64_t> Entry(uint64_t i) const;
  std::optional<std::string_view> Name(uint64_t i) const;

  std::string_view data_;
  bool legacy_ = false;  // Go 1.16/1.17: pointer-sized functab rows, absolute entries
  uint32_t ptr_size_ = 8;
  uint64_t nfunc_ = 0;
  uint64_t text_start_ = 0;
  uint64_t funcname_off_ = 0, functab_off_ = 0;
};

// An ELF image read through libelf: named sections, and virtual addresses mapped to file
// offsets (what a uprobe attaches to) and to bytes.
class ElfImage {
 public:
  explicit ElfImage(Elf* elf) : elf_(elf) {}
  // The contents of the first section with this name (empty if absent, compressed or NOBITS),
  // and its address.
  std::string_view Section(std::string_view name, uint64_t* addr = nullptr) const;
  // Bytes [addr, addr + len) of an allocated section, or empty.
  std::string_view Read(uint64_t addr, uint64_t len) const;
  // The file offset of a virtual address in an allocated section.
  std::optional<uint64_t> FileOffset(uint64_t addr) const;
  Elf* elf() const { return elf_; }

 private:
  Elf* elf_;
};

// What the Go TLS probes need from one executable.
struct GoExecutable {
  std::string version;  // from .go.buildinfo, e.g. "go1.19.8"
  std::optional<GoVersion> parsed;
  struct Code {
    std::string name;
    uint64_t entry = 0;        // virtual address
    uint64_t file_offset = 0;  // where a uprobe on the entry attaches
    std::string_view bytes;    // the function's machine code [entry, end), in the image
  };
  std::vector<Code> functions;  // those of `wanted` the binary defines, in that order
};
// nullopt: not a Go executable (no .gopclntab). `wanted`: function names to look up.
StatusOr<std::optional<GoExecutable>> ReadGoExecutable(const ElfImage& image,
                                                       const std::vector<std::string>& wanted);

}  // namespace zerotrace::probes
