// Which files hold a TLS library: executable mappings from /proc/PID/maps, and the TLS
// functions an ELF file defines with the file offsets uprobes attach to.
#pragma once

#include <sys/types.h>
#include <zerotrace/events.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace zerotrace::probes {

// The functions whose plaintext the TLS probes capture.
enum class TlsFunction : uint8_t {
  kSslWrite = ZT_TLS_FN_SSL_WRITE,
  kSslRead = ZT_TLS_FN_SSL_READ,
  kSslWriteEx = ZT_TLS_FN_SSL_WRITE_EX,
  kSslReadEx = ZT_TLS_FN_SSL_READ_EX,
  kGnutlsRecordSend = ZT_TLS_FN_GNUTLS_RECORD_SEND,
  kGnutlsRecordRecv = ZT_TLS_FN_GNUTLS_RECORD_RECV,
  // Handshakes move no plaintext; their socket syscalls tell the session's connection early.
  kSslDoHandshake = ZT_TLS_FN_SSL_DO_HANDSHAKE,
  kGnutlsHandshake = ZT_TLS_FN_GNUTLS_HANDSHAKE,
};
inline constexpr size_t kTlsFunctionCount = ZT_TLS_FN_COUNT;
// "SSL_write", ..., "gnutls_record_recv".
const char* TlsFunctionName(TlsFunction f);

// File offsets of the TLS functions a file defines (0: not defined there).
struct TlsSymbols {
  std::array<uint64_t, kTlsFunctionCount> offset{};
  // Whether the file defines a function that moves plaintext (a handshake alone is no use).
  bool Any() const;
  uint64_t Offset(TlsFunction f) const { return offset[static_cast<size_t>(f)]; }
};

// Reads the ELF symbol tables (.dynsym and .symtab) of `path`. A file that imports SSL_write
// (undefined symbol) does not count: only the library or executable that defines it.
StatusOr<TlsSymbols> FindTlsSymbols(const std::string& path);

// One file mapped executable by a process.
struct MappedFile {
  std::string path;  // as the process sees it (relative to its root directory)
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;
  // The device in the kernel's internal encoding, as BPF reads it from a superblock.
  uint32_t KernelDev() const { return (dev_major << 20) | dev_minor; }
};

// Parses one /proc/PID/maps line; true only for an executable mapping of a file.
bool ParseExecMapping(std::string_view line, MappedFile* out);
// The distinct files pid maps executable (empty when the process is gone).
std::vector<MappedFile> ExecutableMappings(pid_t pid);
// Whether a library file name is one the agent probes in the host's library directories at
// start: libssl.so*, libgnutls.so* (not libgnutls-dane, libgnutlsxx, ...).
bool IsTlsLibraryName(std::string_view file_name);

}  // namespace zerotrace::probes
