// SPDX-License-Identifier: GPL-2.0
/* Socket syscall tracepoints: track TCP connections per (tgid, fd, generation) and copy the
 * bytes each process sends and receives into the ring buffer. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include <zerotrace/events.h>

#include "sock_lookup.bpf.h"
#include "trace_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define ZT_EAGAIN 11
#define ZT_EINPROGRESS 115
#define ZT_EPIPE 32
#define ZT_ECONNRESET 104

/* Source of conn ids; starts at 1 so 0 means "no connection". */
__u64 next_conn_id = 1;

/* Arguments of the syscall in flight on each thread, from sys_enter to sys_exit: task-local
 * storage (freed with the thread) is a pointer walk away, where a hash map keyed by pid_tgid
 * cost an insert and a delete per syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syscall_args);
} inflight SEC(".maps");

/* Stashes args for this thread's sys_exit. */
static __always_inline void zt_stash(struct syscall_args *args)
{
	struct syscall_args *slot = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0,
							 BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!slot)
		return;
	*slot = *args;
	slot->active = 1;
}

/* Takes what this thread's sys_enter stashed; false if nothing is. */
static __always_inline bool zt_unstash(struct syscall_args *out)
{
	struct syscall_args *slot =
		bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);

	if (!slot || !slot->active)
		return false;
	*out = *slot;
	slot->active = 0;
	return true;
}

#include "socket_emit.bpf.h"

/* Close records that found the ring buffer full, by conn_id. SocketTracer::Poll drains them
 * once the ring buffer is empty: one lost record must not leave userspace holding a connection
 * that is gone (and reporting its pending request as unanswered when the process exits). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct zt_conn_close);
} lost_closes SEC(".maps");

/* Entries put in lost_closes so far: userspace reads it (mmapped) and drains only when it grew. */
__u64 lost_closes_added = 0;

static __noinline void zt_emit_close(struct conn_key *key, struct conn_state *st, __u8 reason)
{
	struct zt_conn_close c = {}, *ev;

	zt_fill_header(&c.hdr, ZT_EV_CONN_CLOSE, key->fd, st->conn_id);
	c.sent_bytes = st->tls ? st->tls_send_pos : st->send_pos;
	c.received_bytes = st->tls ? st->tls_recv_pos : st->recv_pos;
	c.reason = reason;
	c.flags = st->close_flags | (st->tls ? ZT_CLOSE_F_TLS : 0);
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		if (bpf_map_update_elem(&lost_closes, &c.hdr.conn_id, &c, BPF_NOEXIST) == 0) {
			__sync_fetch_and_add(&lost_closes_added, 1);
			zt_count(ZT_CNT_CONN_CLOSED);
		}
		return;
	}
	*ev = c;
	bpf_ringbuf_submit(ev, zt_wakeup_flag());
	zt_count(ZT_CNT_CONN_CLOSED);
}


/* Starts tracking fd as a connection with the given role; emits the open event. */
static __noinline struct conn_state *zt_track(struct conn_key *key, struct file *file,
					     struct sock *sk, __u8 role, __u8 flags)
{
	struct conn_state st = {};
	struct zt_conn_open *ev;

	st.conn_id = __sync_fetch_and_add(&next_conn_id, 1);
	st.file = (__u64)file;
	st.role = role;
	if (bpf_map_update_elem(&conns, key, &st, BPF_ANY))
		return NULL;
	zt_count(ZT_CNT_CONN_OPENED);
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (ev) {
		__builtin_memset(ev, 0, sizeof(*ev));
		zt_fill_header(&ev->hdr, ZT_EV_CONN_OPEN, key->fd, st.conn_id);
		ev->role = role;
		ev->flags = flags;
		zt_fill_tuple(ev, sk);
		bpf_get_current_comm(ev->comm, sizeof(ev->comm));
		bpf_ringbuf_submit(ev, zt_wakeup_flag());
	} else {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
	}
	return bpf_map_lookup_elem(&conns, key);
}

/* The tracked connection fd names now; discovers sockets opened before the agent. */
static __always_inline struct conn_state *zt_conn_for_fd(struct conn_key *key)
{
	struct file *file = zt_fd_to_file(key->fd);
	struct conn_state *st;
	struct sock *sk;

	if (!file)
		return NULL;
	st = bpf_map_lookup_elem(&conns, key);
	if (st) {
		if (st->file == (__u64)file)
			return st;
		zt_emit_close(key, st, ZT_CLOSE_FD_REUSE);
		bpf_map_delete_elem(&conns, key);
	}
	sk = zt_file_to_tcp_sock(file);
	if (!sk)
		return NULL;
	return zt_track(key, file, sk, ZT_ROLE_UNKNOWN, ZT_CONN_F_PREEXISTING);
}

/* Open event for one of the agent's own connections; nothing is tracked for it. */
static __always_inline void zt_announce_agent_conn(struct conn_key *key)
{
	struct file *file = zt_fd_to_file(key->fd);
	struct zt_conn_open *ev;
	struct sock *sk;

	if (!file || !(sk = zt_file_to_tcp_sock(file)))
		return;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	zt_fill_header(&ev->hdr, ZT_EV_CONN_OPEN, key->fd, 0);
	ev->role = ZT_ROLE_CLIENT;
	ev->flags = ZT_CONN_F_AGENT;
	zt_fill_tuple(ev, sk);
	bpf_ringbuf_submit(ev, zt_wakeup_flag());
}

/* connect/accept made fd a new connection: whatever the fd named before is gone. */
static __always_inline void zt_track_new(struct conn_key *key, __u8 role)
{
	struct file *file = zt_fd_to_file(key->fd);
	struct conn_state *old;
	struct sock *sk;

	if (!file || !(sk = zt_file_to_tcp_sock(file)))
		return;
	old = bpf_map_lookup_elem(&conns, key);
	if (old) {
		zt_emit_close(key, old, ZT_CLOSE_FD_REUSE);
		bpf_map_delete_elem(&conns, key);
	}
	zt_track(key, file, sk, role, 0);
}

/* A socket syscall inside a TLS read/write on this thread: the plaintext belongs to this
 * connection, and its own bytes are ciphertext from now on (no longer sent to userspace). */
static __always_inline void zt_note_tls_socket(struct conn_key *key, struct conn_state *st)
{
	struct tls_call *call = zt_current_tls_call();

	if (!call)
		return;
	if (call->conn_id == 0) {
		call->conn_id = st->conn_id;
		call->fd = key->fd;
	} else if (call->conn_id != st->conn_id) {
		call->conflict = 1;
		return;
	}
	st->tls = 1;
}

/* A receive on a tracked connection (other syscalls return at once): the thread's last
 * read, for tls_trace.bpf.c to bind a TLS session over memory buffers (node) to it. Notes
 * whether the bytes began with a TLS record header: content type 20..23, version 3.x.
 * a->enter_ns carries the receive's time. */
static __noinline void zt_note_read(struct conn_key *key, __u64 conn_id, struct syscall_args *a,
				    __u64 ret)
{
	struct thread_read r = {.conn_id = conn_id, .fd = key->fd, .ts_ns = a->enter_ns}, *slot;
	__u64 buf = a->buf, sys = a->sys;
	struct user_msghdr msg;
	struct iovec iov;
	__u64 first;
	__u8 h[3];

	/* Fresh copies: branching on the caller's own registers would refine them and split the
	 * caller's emit path into more states for the verifier. */
	asm volatile("%0 &= 0xff" : "+r"(sys));
	asm volatile("%0 |= 0" : "+r"(buf));
	asm volatile("%0 |= 0" : "+r"(ret));
	if (sys != ZT_SYS_READ && sys != ZT_SYS_READV && sys != ZT_SYS_RECVFROM &&
	    sys != ZT_SYS_RECVMSG)
		return;
	first = buf; /* read, recvfrom: the buffer itself */
	if (sys == ZT_SYS_RECVMSG) {
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf))
			first = 0;
		else
			first = (__u64)msg.msg_iov;
	}
	if (first && (sys == ZT_SYS_READV || sys == ZT_SYS_RECVMSG)) {
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)first) || iov.iov_len < sizeof(h))
			first = 0;
		else
			first = (__u64)iov.iov_base;
	}
	if ((long)ret >= 5 && first && !bpf_probe_read_user(h, sizeof(h), (void *)first))
		r.tls_record = h[0] >= 0x14 && h[0] <= 0x17 && h[1] == 3 && h[2] <= 4;
	slot = bpf_task_storage_get(&thread_reads, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (slot)
		*slot = r;
}

/* sys_enter_* of data syscalls: remember the arguments until sys_exit, but only for fds
 * that are tracked TCP connections (files and other sockets cost no map writes). */
static __always_inline int zt_enter(__u32 fd, __u64 buf, __u32 vlen, __u8 sys)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct syscall_args args = {.buf = buf, .fd = fd, .vlen = vlen, .sys = sys};
	struct conn_key key = {.tgid = id >> 32, .fd = fd};
	struct conn_state *st;

	if (!zt_traced(key.tgid) || !(st = zt_conn_for_fd(&key)))
		return 0;
	zt_note_tls_socket(&key, st);
	/* Clock reads cost tens of ns on a VM: receives are stamped at exit instead. */
	if (zt_sends(sys))
		args.enter_ns = bpf_ktime_get_ns();
	zt_stash(&args);
	return 0;
}

/* sys_exit_* of data syscalls: emit the bytes moved on a tracked connection. */
static __always_inline int zt_exit_data(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct syscall_args a;
	struct conn_key key;
	struct conn_state *st;
	__u64 ts_ns;

	if (!zt_unstash(&a))
		return 0;
	key.tgid = id >> 32;
	key.fd = a.fd;
	if (ret == -ZT_ECONNRESET || ret == -ZT_EPIPE) {
		/* The peer reset: the close event will say so (pending requests failed). */
		st = bpf_map_lookup_elem(&conns, &key);
		if (st)
			st->close_flags |= ZT_CLOSE_F_RESET;
		return 0;
	}
	if (ret <= 0) /* other failures, EAGAIN and EOF move no bytes */
		return 0;
	st = bpf_map_lookup_elem(&conns, &key);
	if (!st)
		return 0;
	ts_ns = a.enter_ns ? a.enter_ns : bpf_ktime_get_ns(); /* sends: stamped at entry */
	a.enter_ns = ts_ns; /* what zt_note_read stamps a receive with */
	zt_note_read(&key, st->conn_id, &a, ret);
	return zt_emit_syscall(&key, st, &a, ret, ts_ns);
}

#define ZT_ENTER_BUF(name, sys)                                                  \
	SEC("tracepoint/syscalls/sys_enter_" #name)                              \
	int zt_enter_##name(struct trace_event_raw_sys_enter *ctx)               \
	{                                                                        \
		return zt_enter(ctx->args[0], ctx->args[1], ctx->args[2], sys);  \
	}

ZT_ENTER_BUF(read, ZT_SYS_READ)
ZT_ENTER_BUF(write, ZT_SYS_WRITE)
ZT_ENTER_BUF(readv, ZT_SYS_READV)
ZT_ENTER_BUF(writev, ZT_SYS_WRITEV)
ZT_ENTER_BUF(sendto, ZT_SYS_SENDTO)
ZT_ENTER_BUF(recvfrom, ZT_SYS_RECVFROM)
ZT_ENTER_BUF(sendmsg, ZT_SYS_SENDMSG)
ZT_ENTER_BUF(recvmsg, ZT_SYS_RECVMSG)
ZT_ENTER_BUF(sendmmsg, ZT_SYS_SENDMMSG)
ZT_ENTER_BUF(recvmmsg, ZT_SYS_RECVMMSG)

/* sendfile(out_fd, in_fd, offset, count): only the byte count reaches the stream. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int zt_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	return zt_enter(ctx->args[0], 0, 0, ZT_SYS_SENDFILE);
}

/* One program for every data syscall's sys_exit: the stash says which syscall it was, so
 * the verifier checks the emit path once. The loader attaches it to the other sys_exit_*
 * tracepoints of ZT_SYS_* (sys_exit_write, sys_exit_readv, ...). */
SEC("tracepoint/syscalls/sys_exit_read")
int zt_exit_data_syscall(struct trace_event_raw_sys_exit *ctx)
{
	return zt_exit_data(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int zt_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct syscall_args args = {.fd = ctx->args[0], .sys = ZT_SYS_COUNT};

	/* The agent's own connects are stashed too: their tuple tells userspace which
	 * connections in other processes (a local collector) carry the agent's exports. */
	if (zt_traced(id >> 32) || (id >> 32) == self_tgid)
		zt_stash(&args);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int zt_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = {.tgid = id >> 32};
	struct syscall_args args;
	long ret = ctx->ret;

	if (!zt_unstash(&args))
		return 0;
	key.fd = args.fd;
	if (args.sys != ZT_SYS_COUNT)
		return 0;
	if (ret != 0 && ret != -ZT_EINPROGRESS)
		return 0;
	if (key.tgid == self_tgid) {
		zt_announce_agent_conn(&key);
		return 0;
	}
	zt_track_new(&key, ZT_ROLE_CLIENT);
	return 0;
}

/* accept/accept4 return the new fd; no arguments are needed. */
static __always_inline int zt_exit_accept(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = {.tgid = id >> 32, .fd = ret};

	if (ret < 0 || !zt_traced(key.tgid))
		return 0;
	zt_track_new(&key, ZT_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int zt_exit_accept_(struct trace_event_raw_sys_exit *ctx)
{
	return zt_exit_accept(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int zt_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return zt_exit_accept(ctx->ret);
}

/* close(fd): the fd is still valid at enter; emit the final positions and forget it. */
SEC("tracepoint/syscalls/sys_enter_close")
int zt_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = {.tgid = id >> 32, .fd = ctx->args[0]};
	struct conn_state *st = bpf_map_lookup_elem(&conns, &key);

	if (!st)
		return 0;
	zt_emit_close(&key, st, ZT_CLOSE_SYSCALL);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* BTF raw tracepoints, not trace events: those take ~40 ms each to detach (a kernel-wide
 * synchronisation, serialised across events); these detach at once. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(zt_proc_exec, struct task_struct *p)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!zt_traced(id >> 32))
		return 0;
	zt_emit_proc(ZT_EV_PROC_EXEC, p->real_parent->tgid);
	return 0;
}

/* Fires per thread; the process is gone when the last thread leaves (signal->live == 0). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(zt_proc_exit, struct task_struct *p)
{
	__u64 id = bpf_get_current_pid_tgid();

	/* Per-thread state (inflight, tls_calls, thread_reads) goes with the task. */
	if (!zt_traced(id >> 32) || p->signal->live.counter != 0)
		return 0;
	zt_emit_proc(ZT_EV_PROC_EXIT, 0);
	return 0;
}
