/* Keys and values of the BPF maps that userspace reads or writes: one definition for both sides. */
#ifndef ZEROTRACE_MAPS_H
#define ZEROTRACE_MAPS_H

#ifdef __BPF__
/* vmlinux.h already provides the __u* types. */
#else
#include <linux/types.h>
#endif

/* A socket of a process: the key of the conns and muted maps (per-fd entries; an fd that dup()
 * made points at a shared entry keyed by ZT_SHARED_FD | conn id bits, see trace_maps.bpf.h). */
struct conn_key {
	__u32 tgid; /* process */
	__u32 fd;   /* its file descriptor */
};

#endif /* ZEROTRACE_MAPS_H */
