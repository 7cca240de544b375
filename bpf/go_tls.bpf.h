/* Go's register ABI (ABIInternal, Go >= 1.17) as seen from a uprobe, and the walk from a
 * *tls.Conn to its socket's fd through struct fields (offsets per binary, from userspace). */
#ifndef ZT_GO_TLS_BPF_H
#define ZT_GO_TLS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include <zerotrace/go_tls.h>

#define ZT_GO_SOCK_STREAM 1

#if defined(__TARGET_ARCH_x86)
/* amd64: integer arguments and results in RAX, RBX, RCX, RDI, RSI, R8..R11; g in R14. */
#define ZT_GO_ARG0(ctx) (__PT_REGS_CAST(ctx)->ax)
#define ZT_GO_ARG1(ctx) (__PT_REGS_CAST(ctx)->bx)
#define ZT_GO_ARG2(ctx) (__PT_REGS_CAST(ctx)->cx)
#define ZT_GO_RET0(ctx) (__PT_REGS_CAST(ctx)->ax)
#define ZT_GO_G(ctx) (__PT_REGS_CAST(ctx)->r14)
#elif defined(__TARGET_ARCH_arm64)
/* arm64: arguments and results in R0..R15; g in R28. (RET finding is amd64 only for now.) */
#define ZT_GO_ARG0(ctx) (__PT_REGS_CAST(ctx)->regs[0])
#define ZT_GO_ARG1(ctx) (__PT_REGS_CAST(ctx)->regs[1])
#define ZT_GO_ARG2(ctx) (__PT_REGS_CAST(ctx)->regs[2])
#define ZT_GO_RET0(ctx) (__PT_REGS_CAST(ctx)->regs[0])
#define ZT_GO_G(ctx) (__PT_REGS_CAST(ctx)->regs[28])
#else
#error "Go register ABI: unsupported architecture"
#endif

/* The socket fd of a *net.TCPConn, or -1 when the path does not lead to a TCP netFD (another
 * type, a closed connection): such evidence is dropped, not guessed. */
static __always_inline int zt_go_tcpconn_fd(const struct zt_go_offsets *o, __u64 tcpconn)
{
	__u64 netfd = 0, pfd;
	__s64 sysfd = -1, family = 0, sotype = 0;

	if (!tcpconn ||
	    bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(tcpconn + o->tcpconn_fd)) || !netfd)
		return -1;
	if (bpf_probe_read_user(&family, sizeof(family), (void *)(netfd + o->netfd_family)) ||
	    (family != ZT_AF_INET && family != ZT_AF_INET6))
		return -1;
	if (bpf_probe_read_user(&sotype, sizeof(sotype), (void *)(netfd + o->netfd_sotype)) ||
	    sotype != ZT_GO_SOCK_STREAM)
		return -1;
	pfd = netfd + o->netfd_pfd;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(pfd + o->pfd_sysfd)))
		return -1;
	if (sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	return (int)sysfd;
}

/* The socket fd behind a *tls.Conn (its own net.Conn must hold a *net.TCPConn), or -1. */
static __always_inline int zt_go_conn_fd(const struct zt_go_offsets *o, __u64 tls_conn)
{
	__u64 iface[2]; /* net.Conn: itab, data (*net.TCPConn) */

	if (!tls_conn || bpf_probe_read_user(iface, sizeof(iface),
					     (void *)(tls_conn + o->conn_iface)))
		return -1;
	if (!iface[0] || !iface[1])
		return -1;
	return zt_go_tcpconn_fd(o, iface[1]);
}

/* The goroutine id of g (0 when unknown). */
static __always_inline __u64 zt_go_goid(const struct zt_go_offsets *o, __u64 g)
{
	__u64 goid = 0;

	if (!o->g_goid || !g || bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + o->g_goid)))
		return 0;
	return goid;
}

#endif /* ZT_GO_TLS_BPF_H */
