/* The Go probes' kernel<->userspace ABI: where a binary's fields lie, and what each uprobe's
 * attach cookie says. Plaintext travels as ordinary ZT_SRC_TLS data events, goroutine
 * causality as zt_go_call_event records (events.h). */
#ifndef ZEROTRACE_GO_TLS_H
#define ZEROTRACE_GO_TLS_H

#ifdef __BPF__
/* vmlinux.h already provides the __u* types. */
#else
#include <linux/types.h>
#endif

#include "events.h"

/* Go binaries probed at once (slots of the go_binaries map). */
#define ZT_GO_MAX_BINARIES 1024

/* What one uprobe in a Go binary is: the low 8 bits of its attach cookie. The cookie's upper
 * bits are the binary's slot in go_binaries. */
enum zt_go_probe {
	ZT_GO_WRITE_ENTRY = 0,     /* crypto/tls.(*Conn).Write, entry (or its stack check's jbe) */
	ZT_GO_WRITE_RET = 1,       /* one of Write's RET instructions */
	ZT_GO_READ_ENTRY = 2,      /* crypto/tls.(*Conn).Read, entry (or its stack check's jbe) */
	ZT_GO_READ_RET = 3,        /* one of Read's RET instructions */
	ZT_GO_HANDSHAKE_ENTRY = 4, /* crypto/tls.(*Conn).handshakeContext: marks its socket TLS */
	ZT_GO_SERVE_ENTRY = 5,     /* net/http.(*conn).serve: its goroutine serves that socket */
	ZT_GO_ROUNDTRIP_ENTRY = 6, /* net/http.(*persistConn).roundTrip, on the caller's goroutine */
	ZT_GO_NEWPROC_RET = 7,     /* a RET of runtime.newproc1: a goroutine and its parent */
	ZT_GO_RUNQPUT_CALL = 8,    /* runtime.newproc.func1's call of runqput: the same, new g in RBX */
	ZT_GO_PROBE_COUNT = 9,
};

#define ZT_GO_COOKIE(slot, probe) (((__u64)(slot) << 8) | (__u64)(probe))

/* zt_go_offsets.flags: Read (Write) stores its receiver and buffer pointer (RAX, RBX) to their
 * spill slots before any call, so at its RETs they are at 8(SP) and 16(SP). A call already
 * running when the probes were attached (an idle connection's Read) is then still attributed
 * at its RET. Go 1.19's Read does; its Write keeps the receiver elsewhere. */
#define ZT_GO_F_READ_SPILLED 0x1
#define ZT_GO_F_WRITE_SPILLED 0x2

/* Byte offsets, in one binary, of the fields on the way from a *tls.Conn to its socket's fd:
 * tls.Conn.conn (a net.Conn interface: itab, data) -> *net.TCPConn -> net.conn.fd (*netFD)
 * -> netFD.pfd (poll.FD) -> Sysfd. family and sotype check that the netFD is a TCP socket. */
struct zt_go_offsets {
	__u32 conn_iface;   /* tls.Conn.conn */
	__u32 tcpconn_fd;   /* net.TCPConn's embedded net.conn.fd */
	__u32 netfd_pfd;    /* netFD.pfd */
	__u32 pfd_sysfd;    /* poll.FD.Sysfd */
	__u32 netfd_family; /* netFD.family: must be AF_INET or AF_INET6 */
	__u32 netfd_sotype; /* netFD.sotype: must be SOCK_STREAM */
	__u32 g_goid;       /* runtime.g.goid, for goroutine-aware causality; 0: unknown */
	__u32 flags;        /* ZT_GO_F_* */
	/* Goroutine causality (0 with g_goid 0: those probes are not attached). Both name a net.Conn
	 * interface holding a *net.TCPConn, or a *tls.Conn over one. */
	__u32 http_conn_rwc;    /* net/http.conn.rwc: a server connection */
	__u32 persistconn_conn; /* net/http.persistConn.conn: a client connection */
	/* runtime.g.m and runtime.m.curg: newproc1 runs on the system stack (g is the thread's
	 * g0), and g0.m.curg is the goroutine whose `go` statement it carries out. */
	__u32 g_m;
	__u32 m_curg;
};
ZT_STATIC_ASSERT(sizeof(struct zt_go_offsets) == 48, "zt_go_offsets ABI");

#endif /* ZEROTRACE_GO_TLS_H */
