// Where the fields on the way from a *tls.Conn to its socket fd lie in one Go binary: read
// from its DWARF when it has any, else from a table of the Go releases checked by hand.
#pragma once

#include <libelf.h>
#include <zerotrace/go_tls.h>

#include <optional>
#include <string>

#include "base/status.h"
#include "probes/go_binary.h"

namespace zerotrace::probes {

// The offsets of a Go release, for binaries without DWARF (stripped). nullopt for releases
// the table does not cover; docs name the covered ones (GoOffsetTableReleases()).
std::optional<zt_go_offsets> GoOffsetsForVersion(const GoVersion& v);
// "go1.19" style list of what the table covers, for messages.
std::string GoOffsetTableReleases();

// The offsets from the binary's DWARF (libdw); an error when it has none or lacks a field.
// runtime.g.goid and the net/http fields are optional (0 when absent: no goroutine causality).
StatusOr<zt_go_offsets> GoOffsetsFromDwarf(Elf* elf);

}  // namespace zerotrace::probes
