// Go executables: .go.buildinfo and .gopclntab layouts as the Go linker writes them
// (cmd/link's pclntab.go and debug/buildinfo document them); every offset is bounds-checked.
#include "probes/go_binary.h"

#include <gelf.h>

#include <cstring>

namespace zerotrace::probes {
namespace {

constexpr std::string_view kBuildInfoMagic = "\xff Go buildinf:";
constexpr uint32_t kPclnGo116 = 0xfffffffa;  // Go 1.16, 1.17
constexpr uint32_t kPclnGo118 = 0xfffffff0;  // Go 1.18, 1.19
constexpr uint32_t kPclnGo120 = 0xfffffff1;  // Go 1.20 and later
constexpr uint64_t kMaxFunctionSize = 16 << 20;

// Little-endian unsigned integer of `size` bytes at `off`; nullopt when out of bounds.
std::optional<uint64_t> Uint(std::string_view d, uint64_t off, uint32_t size) {
  if (off > d.size() || d.size() - off < size) return std::nullopt;
  uint64_t v = 0;
  for (uint32_t i = 0; i < size; i++)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(d[off + i])) << (8 * i);
  return v;
}

// Go's unsigned varint (encoding/binary.Uvarint) at *off, advancing it.
std::optional<uint64_t> Uvarint(std::string_view d, uint64_t* off) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*off >= d.size()) return std::nullopt;
    const uint8_t b = static_cast<uint8_t>(d[(*off)++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  return std::nullopt;
}

// Digits at the start of s, advancing it; nullopt when none (or absurdly many).
std::optional<int> Number(std::string_view* s) {
  int v = 0;
  size_t i = 0;
  for (; i < s->size() && i < 6 && (*s)[i] >= '0' && (*s)[i] <= '9'; i++)
    v = v * 10 + ((*s)[i] - '0');
  if (i == 0 || (i < s->size() && (*s)[i] >= '0' && (*s)[i] <= '9')) return std::nullopt;
  s->remove_prefix(i);
  return v;
}

}  // namespace

std::optional<GoVersion> ParseGoVersion(std::string_view text) {
  const size_t at = text.find("go1.");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view s = text.substr(at + 4);
  GoVersion v;
  v.major = 1;
  const auto minor = Number(&s);
  if (!minor) return std::nullopt;
  v.minor = *minor;
  if (s.size() > 1 && s[0] == '.') {
    s.remove_prefix(1);
    if (const auto patch = Number(&s)) v.patch = *patch;
  }
  return v;
}

StatusOr<std::string> ParseGoBuildInfo(std::string_view section, const GoAddrReader& read) {
  if (section.size() < 32 || section.substr(0, kBuildInfoMagic.size()) != kBuildInfoMagic)
    return Status::Error("no Go build information header");
  const uint32_t ptr_size = static_cast<uint8_t>(section[14]);
  const uint8_t flags = static_cast<uint8_t>(section[15]);
  if (flags & 0x2) {  // Go >= 1.18: the strings follow the header, length-prefixed
    uint64_t off = 32;
    const auto len = Uvarint(section, &off);
    if (!len || *len > section.size() - off) return Status::Error("bad Go version string");
    return std::string(section.substr(off, *len));
  }
  if (flags & 0x1) return Status::Error("big-endian Go binaries are not supported");
  if (ptr_size != 4 && ptr_size != 8) return Status::Error("bad Go pointer size");
  // Before 1.18: a pointer to the version's string header {data, len}.
  const auto header_addr = Uint(section, 16, ptr_size);
  if (!header_addr) return Status::Error("bad Go build information header");
  const std::string_view header = read(*header_addr, 2 * ptr_size);
  const auto data = Uint(header, 0, ptr_size);
  const auto len = Uint(header, ptr_size, ptr_size);
  if (!data || !len || *len > 1024) return Status::Error("bad Go version string header");
  const std::string_view text = read(*data, *len);
  if (text.size() != *len) return Status::Error("Go version string outside the file");
  return std::string(text);
}

StatusOr<GoPclntab> GoPclntab::Parse(std::string_view data, uint64_t text_start) {
  const auto magic = Uint(data, 0, 4);
  if (!magic || data.size() < 8) return Status::Error("no .gopclntab header");
  if (*magic != kPclnGo116 && *magic != kPclnGo118 && *magic != kPclnGo120)
    return Status::Error("unsupported .gopclntab (Go before 1.16, or not Go)");
  GoPclntab t;
  t.data_ = data;
  t.legacy_ = *magic == kPclnGo116;
  t.ptr_size_ = static_cast<uint8_t>(data[7]);
  if (data[4] != 0 || data[5] != 0 || (t.ptr_size_ != 4 && t.ptr_size_ != 8))
    return Status::Error("bad .gopclntab header");
  auto word = [&](int i) {
    return Uint(data, 8 + static_cast<uint64_t>(i) * t.ptr_size_, t.ptr_size_);
  };
  const int base = t.legacy_ ? 2 : 3;  // nfunc, nfiles[, textStart], then the table offsets
  const auto nfunc = word(0), funcname = word(base), functab = word(base + 4);
  if (!nfunc || !funcname || !functab) return Status::Error("truncated .gopclntab header");
  t.nfunc_ = *nfunc;
  t.funcname_off_ = *funcname;
  t.functab_off_ = *functab;
  t.text_start_ = text_start;
  if (!t.legacy_) {
    const auto text = word(2);
    if (!text) return Status::Error("truncated .gopclntab header");
    if (*text != 0) t.text_start_ = *text;
  }
  const uint64_t row = t.legacy_ ? 2ull * t.ptr_size_ : 8;
  if (t.nfunc_ == 0 || t.nfunc_ > data.size() / row || t.functab_off_ > data.size() ||
      (data.size() - t.functab_off_) / row < t.nfunc_ || t.funcname_off_ >= data.size())
    return Status::Error("bad .gopclntab function table");
  if (!t.Entry(t.nfunc_)) return Status::Error("truncated .gopclntab function table");
  return t;
}

std::optional<uint64_t> GoPclntab::Entry(uint64_t i) const {
  if (i > nfunc_) return std::nullopt;
  if (legacy_) return Uint(data_, functab_off_ + i * 2 * ptr_size_, ptr_size_);
  const auto off = Uint(data_, functab_off_ + i * 8, 4);
  if (!off) return std::nullopt;
  return text_start_ + *off;
}

std::optional<std::string_view> GoPclntab::Name(uint64_t i) const {
  if (i >= nfunc_) return std::nullopt;
  const auto funcoff = legacy_
                           ? Uint(data_, functab_off_ + i * 2 * ptr_size_ + ptr_size_, ptr_size_)
                           : Uint(data_, functab_off_ + i * 8 + 4, 4);
  if (!funcoff || *funcoff > data_.size() - functab_off_) return std::nullopt;
  // _func starts with the entry (uintptr before 1.18, a uint32 offset since), then nameOff.
  const uint64_t func = functab_off_ + *funcoff;
  const auto name_off = Uint(data_, func + (legacy_ ? ptr_size_ : 4), 4);
  if (!name_off || *name_off >= data_.size() - funcname_off_) return std::nullopt;
  const std::string_view rest = data_.substr(funcname_off_ + *name_off);
  const size_t nul = rest.find('\0');
  if (nul == std::string_view::npos) return std::nullopt;
  return rest.substr(0, nul);
}

std::optional<GoPclntab::Function> GoPclntab::Find(std::string_view name) const {
  for (uint64_t i = 0; i < nfunc_; i++) {
    const auto n = Name(i);
    if (!n || *n != name) continue;
    const auto entry = Entry(i), end = Entry(i + 1);
    if (!entry || !end || *end <= *entry || *end - *entry > kMaxFunctionSize) return std::nullopt;
    return Function{*entry, *end};
  }
  return std::nullopt;
}

std::string_view ElfImage::Section(std::string_view name, uint64_t* addr) const {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf_, &shstrndx) != 0) return {};
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    const char* n = elf_strptr(elf_, shstrndx, shdr.sh_name);
    if (!n || name != n) continue;
    if (shdr.sh_type == SHT_NOBITS || (shdr.sh_flags & SHF_COMPRESSED)) return {};
    Elf_Data* data = elf_rawdata(scn, nullptr);
    if (!data || !data->d_buf) return {};
    if (addr) *addr = shdr.sh_addr;
    return {static_cast<const char*>(data->d_buf), data->d_size};
  }
  return {};
}

std::string_view ElfImage::Read(uint64_t addr, uint64_t len) const {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || !(shdr.sh_flags & SHF_ALLOC) || shdr.sh_type == SHT_NOBITS ||
        (shdr.sh_flags & SHF_COMPRESSED))
      continue;
    if (addr < shdr.sh_addr || addr - shdr.sh_addr >= shdr.sh_size) continue;
    Elf_Data* data = elf_rawdata(scn, nullptr);
    if (!data || !data->d_buf) return {};
    const uint64_t off = addr - shdr.sh_addr;
    if (off > data->d_size || data->d_size - off < len) return {};
    return {static_cast<const char*>(data->d_buf) + off, len};
  }
  return {};
}

std::optional<uint64_t> ElfImage::FileOffset(uint64_t addr) const {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || !(shdr.sh_flags & SHF_ALLOC) || shdr.sh_type == SHT_NOBITS)
      continue;
    if (addr >= shdr.sh_addr && addr - shdr.sh_addr < shdr.sh_size)
      return addr - shdr.sh_addr + shdr.sh_offset;
  }
  return std::nullopt;
}

StatusOr<std::optional<GoExecutable>> ReadGoExecutable(const ElfImage& image,
                                                       const std::vector<std::string>& wanted) {
  uint64_t pcln_addr = 0, text_addr = 0;
  const std::string_view pcln = image.Section(".gopclntab", &pcln_addr);
  if (pcln.empty()) return std::optional<GoExecutable>();
  image.Section(".text", &text_addr);
  GoExecutable out;
  const std::string_view info = image.Section(".go.buildinfo");
  if (!info.empty()) {
    auto version = ParseGoBuildInfo(info, [&](uint64_t a, uint64_t n) { return image.Read(a, n); });
    if (version.ok()) {
      out.version = *version;
      out.parsed = ParseGoVersion(out.version);
    }
  }
  auto table = GoPclntab::Parse(pcln, text_addr);
  if (!table.ok()) return table.status();
  for (const auto& name : wanted) {
    const auto f = table->Find(name);
    if (!f) continue;
    GoExecutable::Code code;
    code.name = name;
    code.entry = f->entry;
    const auto off = image.FileOffset(f->entry);
    code.bytes = image.Read(f->entry, f->end - f->entry);
    if (!off || code.bytes.empty())
      return Status::Error("the code of " + name + " is not in the file");
    code.file_offset = *off;
    out.functions.push_back(code);
  }
  return std::optional<GoExecutable>(std::move(out));
}

}  // namespace zerotrace::probes
