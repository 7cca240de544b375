// What the Go probes attach to in one executable: crypto/tls.(*Conn).Write and Read (entries
// and RET instructions), handshakeContext, the goroutine causality probes (net/http's
// conn.serve and persistConn.roundTrip, runtime.newproc1 and its RETs), and the field offsets.
#pragma once

#include <libelf.h>
#include <zerotrace/go_tls.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace zerotrace::probes {

struct GoTlsProbe {
  uint64_t file_offset = 0;  // where the uprobe attaches
  zt_go_probe kind = ZT_GO_WRITE_ENTRY;
};

struct GoTlsTarget {
  std::string version;         // "go1.19.8"; empty when the binary does not say
  std::string offsets_source;  // "DWARF" or "table"
  zt_go_offsets offsets{};
  std::vector<GoTlsProbe> probes;
  // The goroutine causality probes are among them (Go >= 1.18, net/http linked in, the
  // offsets of runtime.g.goid, net/http.conn.rwc and persistConn.conn known).
  bool goroutines = false;
};

// nullopt: not a Go executable, or one without crypto/tls. An error: Go with crypto/tls that
// cannot be probed (before Go 1.17's register ABI, no DWARF and a release the offset table
// does not cover, not amd64, code that does not disassemble); the message says which.
StatusOr<std::optional<GoTlsTarget>> InspectGoTls(Elf* elf);
StatusOr<std::optional<GoTlsTarget>> InspectGoTlsFile(const std::string& path);
// Leaves only the crypto/tls probes (for comparisons without goroutine causality).
void DropGoroutineProbes(GoTlsTarget* target);

}  // namespace zerotrace::probes
