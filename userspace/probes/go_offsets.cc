// Go field offsets: a table checked against the DWARF of binaries built by each release, and
// a reader of DWARF struct members (libdw) for everything else.
#include "probes/go_offsets.h"

#include <dwarf.h>
#include <elfutils/libdw.h>

#include <array>
#include <cstring>
#include <string_view>

namespace zerotrace::probes {
namespace {

struct TableRow {
  int minor;  // Go 1.<minor>, every patch release
  zt_go_offsets offsets;
};

// Checked against the DWARF of a binary built by each release (GoOffsetsTest compares the row
// of the installed toolchain with the DWARF of a binary it builds).
// Go 1.19: poll.FD is fdMutex (16) Sysfd (8) pd (8) iovecs (8) csema, isBlocking (8) and
// three bools: 56 bytes, so netFD.family is at 56 and sotype at 64; runtime.g.goid at 152.
// net/http.conn is server, cancelCtx, rwc (16); persistConn is alt (16), t, cacheKey (56:
// three strings and a bool), conn (80). runtime.g.m is at 48, runtime.m.curg at 192.
constexpr TableRow kTable[] = {
    {19,
     {.conn_iface = 0,
      .tcpconn_fd = 0,
      .netfd_pfd = 0,
      .pfd_sysfd = 16,
      .netfd_family = 56,
      .netfd_sotype = 64,
      .g_goid = 152,
      .flags = 0,
      .http_conn_rwc = 16,
      .persistconn_conn = 80,
      .g_m = 48,
      .m_curg = 192}},
};

// One struct member wanted from DWARF.
struct Want {
  std::string_view type, member;
  uint64_t value = 0;
  bool found = false;
};

enum : size_t {
  kConn,
  kTcpConn,
  kNetConnFd,
  kPfd,
  kFamily,
  kSotype,
  kSysfd,
  kGoid,  // the rest are optional: without them, no goroutine causality
  kHttpConnRwc,
  kPersistConnConn,
  kGM,
  kMCurg,
  kWants
};

std::optional<uint64_t> MemberOffset(Dwarf_Die* member) {
  Dwarf_Attribute attr;
  Dwarf_Word v = 0;
  if (!dwarf_attr(member, DW_AT_data_member_location, &attr) || dwarf_formudata(&attr, &v) != 0)
    return std::nullopt;
  return v;
}

// Fills the wants whose struct `die` is.
void TakeMembers(Dwarf_Die* die, std::array<Want, kWants>* wants) {
  const char* name = dwarf_diename(die);
  if (!name) return;
  bool any = false;
  for (const Want& w : *wants) any |= w.type == name;
  if (!any) return;
  Dwarf_Die member;
  if (dwarf_child(die, &member) != 0) return;
  do {
    if (dwarf_tag(&member) != DW_TAG_member) continue;
    const char* m = dwarf_diename(&member);
    if (!m) continue;
    for (Want& w : *wants) {
      if (w.found || w.type != name || w.member != m) continue;
      if (const auto off = MemberOffset(&member)) {
        w.value = *off;
        w.found = true;
      }
    }
  } while (dwarf_siblingof(&member, &member) == 0);
}

}  // namespace

std::optional<zt_go_offsets> GoOffsetsForVersion(const GoVersion& v) {
  if (v.major != 1) return std::nullopt;
  for (const TableRow& r : kTable) {
    if (r.minor == v.minor) return r.offsets;
  }
  return std::nullopt;
}

std::string GoOffsetTableReleases() {
  std::string out;
  for (const TableRow& r : kTable)
    out += (out.empty() ? "go1." : ", go1.") + std::to_string(r.minor);
  return out;
}

StatusOr<zt_go_offsets> GoOffsetsFromDwarf(Elf* elf) {
  Dwarf* dw = dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
  if (!dw) return Status::Error("no DWARF");
  std::array<Want, kWants> wants{{{"crypto/tls.Conn", "conn"},
                                  {"net.TCPConn", "conn"},
                                  {"net.conn", "fd"},
                                  {"net.netFD", "pfd"},
                                  {"net.netFD", "family"},
                                  {"net.netFD", "sotype"},
                                  {"internal/poll.FD", "Sysfd"},
                                  {"runtime.g", "goid"},
                                  {"net/http.conn", "rwc"},
                                  {"net/http.persistConn", "conn"},
                                  {"runtime.g", "m"},
                                  {"runtime.m", "curg"}}};
  Dwarf_Off off = 0, next = 0;
  size_t header_size = 0;
  while (dwarf_nextcu(dw, off, &next, &header_size, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu, die;
    if (dwarf_offdie(dw, off + header_size, &cu) && dwarf_child(&cu, &die) == 0) {
      do {
        if (dwarf_tag(&die) == DW_TAG_structure_type) TakeMembers(&die, &wants);
      } while (dwarf_siblingof(&die, &die) == 0);
    }
    off = next;
  }
  dwarf_end(dw);
  for (size_t i = 0; i < kWants; i++) {
    if (i < kGoid && !wants[i].found) {
      return Status::Error("DWARF has no " + std::string(wants[i].type) + "." +
                           std::string(wants[i].member));
    }
    if (wants[i].value > 0xffff) return Status::Error("implausible DWARF member offset");
  }
  zt_go_offsets o{};
  o.conn_iface = wants[kConn].value;
  o.tcpconn_fd = wants[kTcpConn].value + wants[kNetConnFd].value;
  o.netfd_pfd = wants[kPfd].value;
  o.pfd_sysfd = wants[kSysfd].value;
  o.netfd_family = wants[kFamily].value;
  o.netfd_sotype = wants[kSotype].value;
  o.g_goid = wants[kGoid].found ? wants[kGoid].value : 0;
  if (wants[kHttpConnRwc].found && wants[kPersistConnConn].found) {
    o.http_conn_rwc = wants[kHttpConnRwc].value;
    o.persistconn_conn = wants[kPersistConnConn].value;
  }
  if (wants[kGM].found && wants[kMCurg].found) {
    o.g_m = wants[kGM].value;
    o.m_curg = wants[kMCurg].value;
  }
  return o;
}

}  // namespace zerotrace::probes
