/* State both BPF objects share: load-time configuration, connection and TLS-call maps, the
 * ring buffer and counters. socket_trace.bpf.c creates the maps; the loader hands them to
 * tls_trace.bpf.c (bpf_map__reuse_fd), so both see one connection table and one stream. */
#ifndef ZT_TRACE_MAPS_BPF_H
#define ZT_TRACE_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include <zerotrace/events.h>
#include <zerotrace/maps.h>

/* Load-time configuration, set by the loader before load (per object, to the same values). */
const volatile __u32 self_tgid = 0;      /* the agent: never traced */
const volatile __u8 filter_pids = 0;     /* 1: trace only tgids in pid_filter */
const volatile __u8 filter_skip = 0;     /* 1: selectors in use: consult proc_skip */
const volatile __u32 filter_netns = 0;   /* --netns: trace only tasks in this netns (inode) */
const volatile __u32 capture_bytes = ZT_DEFAULT_CAPTURE; /* per syscall, <= ZT_MAX_CAPTURE */
/* Pending bytes above which a record wakes the consumer; below, it finds them on its next
 * timed poll. Batching wakeups saves a context switch per record. */
const volatile __u64 wakeup_bytes = 1 << 20;


/* What the kernel remembers about one tracked connection. */
struct conn_state {
	__u64 conn_id;  /* generation: unique for this (tgid, fd) lifetime */
	__u64 file;     /* struct file * the fd named when tracked: detects fd reuse */
	__u64 send_pos; /* egress stream length so far (socket bytes) */
	__u64 recv_pos; /* ingress stream length so far (socket bytes) */
	__u64 tls_send_pos; /* egress plaintext stream length (TLS writes) */
	__u64 tls_recv_pos; /* ingress plaintext stream length (TLS reads) */
	__u8 role;      /* enum zt_role */
	__u8 close_flags; /* ZT_CLOSE_F_* to report at close */
	__u8 tls;       /* 1: a TLS library uses this socket: its bytes are ciphertext, not sent */
	__u8 shared;    /* enum zt_share: fds that dup() made name one socket, so share one state */
	__u32 event_fd; /* ZT_SHARE_STATE: the fd its records carry (the one its open event had) */
	__u64 refs;     /* ZT_SHARE_STATE: the fds (alias entries) that name it */
	__u32 muted_seen; /* its muted_epochs slot when the muted map was last consulted for it */
	__u8 muted;       /* 1: userspace muted its socket bytes (sticky: mutes are never undone) */
	__u8 h2_walked;   /* 1: an HTTP/2 walk was set up for it (else h2_walks holds none) */
	__u16 muted_sec;  /* muted: second (ktime >> 30, top bit set) of its last record */
	__u16 head_cap;   /* syscalls in the capped direction copy at most this many bytes (0: no
			   * cap; see ZT_MUTED_CAP) */
	__u8 head_cap_egress; /* 1: the cap is of sends (a server's responses), 0: of receives */
	__u8 pad2[5];
};

/* How a connection-table entry takes part in dup() sharing (conn_track.bpf.h). */
enum zt_share {
	ZT_SHARE_NONE = 0,  /* the entry is the connection's state */
	ZT_SHARE_ALIAS = 1, /* per-fd entry: the state is under zt_shared_key(tgid, conn_id) */
	ZT_SHARE_STATE = 2, /* the state of a connection several fds name */
};

/* Table key of the state a dup'd socket's fds share: never a real fd (those are < 2^31). */
#define ZT_SHARED_FD 0x80000000u

/* Syscall arguments saved at sys_enter until sys_exit, per thread. */
struct syscall_args {
	__u64 buf;  /* buffer, iovec array, msghdr or mmsghdr array (user pointer) */
	__u32 fd;
	__u32 vlen; /* iovec/message count for vectored calls */
	__u8 sys;   /* enum zt_syscall, or ZT_SYS_COUNT for connect */
	__u8 active; /* set at sys_enter, cleared when its sys_exit took the arguments */
	__u8 verify; /* 1: the fd's file was not compared with its entry's at enter: do it at exit */
	__u8 pad[5];
	__u64 enter_ns; /* sys_enter time: sent bytes are stamped when the send began */
};

/* One TLS read or write in progress on a thread, from the uprobe to its uretprobe. The
 * socket syscalls made inside it tell which connection the plaintext belongs to. */
struct tls_call {
	__u64 ssl;      /* SSL* or gnutls_session_t: remembers its socket across calls */
	__u64 buf;      /* plaintext buffer (user pointer) */
	__u64 out_len;  /* SSL_*_ex: size_t* that receives the byte count; else 0 */
	__u64 enter_ns; /* uprobe time: sent plaintext is stamped when the write began */
	__u64 conn_id;  /* connection of the first nested socket syscall; 0: none yet */
	__u64 sp;       /* stack pointer at entry: a call nested in this one has a lower one */
	__u32 fd;       /* its fd */
	__u8 op;        /* ZT_SYS_TLS_READ, ZT_SYS_TLS_WRITE or ZT_TLS_OP_HANDSHAKE */
	__u8 ret_kind;  /* enum tls_ret_kind: how to read the byte count at return */
	__u8 conflict;  /* 1: nested syscalls used more than one tracked socket */
	__u8 depth;     /* TLS calls nested inside this one (their returns are skipped) */
	__u8 active;    /* 1 from the uprobe to its uretprobe: the slot holds a call */
	__u8 pad[3];
};

/* The TCP socket a thread last received bytes on. A TLS library over memory buffers (node,
 * python's SSLObject) makes no syscall of its own: the ciphertext it is fed was read just
 * before, on the same thread, so this tells a session its socket (tls_trace.bpf.c). */
struct thread_read {
	__u64 conn_id;     /* connection generation of the read */
	__u64 ts_ns;       /* sys_exit of the read */
	__u64 claimed_ssl; /* the TLS session already bound to it by this read; 0: none */
	__u32 fd;
	__u8 tls_record; /* 1: the bytes began with a TLS record header */
	__u8 pad[3];
};

/* tls_call.op of a handshake: it moves no plaintext, only tells the session's socket. */
#define ZT_TLS_OP_HANDSHAKE 0xff

/* How a TLS function reports the bytes it moved. */
enum tls_ret_kind {
	ZT_TLS_RET_INT = 0,   /* SSL_read/SSL_write: int, > 0 is the byte count */
	ZT_TLS_RET_SSIZE = 1, /* gnutls_record_recv/send: ssize_t, > 0 is the byte count */
	ZT_TLS_RET_EX = 2,    /* SSL_read_ex/SSL_write_ex: 1 on success, count in *out_len */
};

/* Tracked TCP connections. LRU so a lost close can never fill the table. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ZT_MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} conns SEC(".maps");

/* The TLS call in progress on each thread (task-local storage: a pointer walk per data
 * syscall instead of a hash lookup, and freed with the thread, even one killed inside
 * SSL_read). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* Each thread's last socket read (task-local storage: written on every receive); written by
 * socket_trace, read by tls_trace. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_read);
} thread_reads SEC(".maps");

static __always_inline struct conn_key zt_shared_key(__u32 tgid, __u64 conn_id)
{
	struct conn_key k = {.tgid = tgid, .fd = ZT_SHARED_FD | (__u32)(conn_id & 0x7fffffff)};

	return k;
}

/* The state behind a connection-table entry: the shared one for an fd that dup() made (or
 * whose socket was dup'd), else the entry itself. NULL if st is, or the state is gone. */
static __always_inline struct conn_state *zt_conn_state(__u32 tgid, struct conn_state *st)
{
	struct conn_key k;

	if (!st || st->shared != ZT_SHARE_ALIAS)
		return st;
	k = zt_shared_key(tgid, st->conn_id);
	return bpf_map_lookup_elem(&conns, &k);
}

/* The fd that the records of st's connection carry (userspace knows it by that one). */
static __always_inline __u32 zt_event_fd(struct conn_state *st, __u32 fd)
{
	return st->shared == ZT_SHARE_STATE ? st->event_fd : fd;
}

/* This thread's TLS call in progress, or NULL. */
static __always_inline struct tls_call *zt_current_tls_call(void)
{
	struct tls_call *call = bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0, 0);

	return call && call->active ? call : NULL;
}

/* Connections userspace found to carry no protocol it parses: only sizes are sent for them.
 * The value is the conn_id, so a later connection on the same fd is not muted; with
 * ZT_MUTED_TLS set it mutes the connection's TLS plaintext instead of its socket bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ZT_MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, __u64);
} muted SEC(".maps");

/* Bumped by userspace after each entry it puts in muted, in the slot of the entry's connection
 * (conn_id % ZT_MUTED_EPOCHS): a connection consults the muted map only when its slot moved
 * since it last did, not on every data syscall, nor after every mute or cap on the node. */
__u32 muted_epochs[ZT_MUTED_EPOCHS] = {};

/* tgids to trace when filter_pids is set (--pid). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

/* tgids the selectors leave out (--exclude-pid, and processes userspace judged from /proc:
 * exe, comm, cgroup, netns), consulted when filter_skip is set. An exec removes the entry
 * (the process is judged again); so does the process's exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} proc_skip SEC(".maps");

/* Self-metrics, indexed by enum zt_kernel_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_CNT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* All records to userspace. Size set by the loader (--ringbuf-bytes). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Whether the process may be traced at all (the agent never; --pid): its exits still count
 * when the selectors skip it, so userspace frees what it held. */
static __always_inline bool zt_traced_base(__u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &tgid))
		return false;
	return true;
}

/* The current task's network namespace (inode number). */
static __always_inline __u32 zt_task_netns(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

/* Whether the current process is traced. */
static __always_inline bool zt_traced(__u32 tgid)
{
	if (!zt_traced_base(tgid))
		return false;
	if (filter_skip && bpf_map_lookup_elem(&proc_skip, &tgid))
		return false;
	if (filter_netns && zt_task_netns() != filter_netns)
		return false;
	return true;
}

#endif /* ZT_TRACE_MAPS_BPF_H */
