/* fd -> struct file -> TCP sock through CO-RE reads, and the tuple of a sock. */
#ifndef ZT_SOCK_LOOKUP_BPF_H
#define ZT_SOCK_LOOKUP_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include <zerotrace/events.h>

#define ZT_S_IFMT 00170000
#define ZT_S_IFSOCK 0140000
#define ZT_SOCK_STREAM 1

/* The struct file that fd names in the current task, or NULL. Called on every data syscall of
 * every traced process: the pointer walk is direct loads through the task's BTF type (no
 * helper call per field); only the indexed slot needs a helper. */
static __always_inline struct file *zt_fd_to_file(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file **fds;
	struct file *file = NULL;

	if (!fdt || fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return file;
}

/* The TCP (IPv4/IPv6) sock behind a file, or NULL for anything else (files, UDP, unix). */
static __always_inline struct sock *zt_file_to_tcp_sock(struct file *file)
{
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if ((mode & ZT_S_IFMT) != ZT_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	if (BPF_CORE_READ(sk, sk_type) != ZT_SOCK_STREAM ||
	    BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != ZT_AF_INET && family != ZT_AF_INET6)
		return NULL;
	return sk;
}

/* Fills family, ports and addresses of an open event from the kernel socket. */
static __always_inline void zt_fill_tuple(struct zt_conn_open *ev, struct sock *sk)
{
	struct sock_common *skc = &sk->__sk_common;

	ev->family = BPF_CORE_READ(skc, skc_family);
	ev->local_port = BPF_CORE_READ(skc, skc_num);
	ev->remote_port = __builtin_bswap16(BPF_CORE_READ(skc, skc_dport));
	if (ev->family == ZT_AF_INET) {
		bpf_core_read(ev->local_addr, 4, &skc->skc_rcv_saddr);
		bpf_core_read(ev->remote_addr, 4, &skc->skc_daddr);
	} else {
		bpf_core_read(ev->local_addr, 16, &skc->skc_v6_rcv_saddr);
		bpf_core_read(ev->remote_addr, 16, &skc->skc_v6_daddr);
	}
	/* Loopback tuples repeat in every namespace: the linker needs this to tell them apart. */
	ev->netns = BPF_CORE_READ(skc, skc_net.net, ns.inum);
}

#endif /* ZT_SOCK_LOOKUP_BPF_H */
