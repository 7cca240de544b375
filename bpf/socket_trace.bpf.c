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
#define ZT_F_DUPFD 0
#define ZT_F_DUPFD_CLOEXEC 1030
/* syscall_args.sys of a dup, dup2, dup3 or fcntl(F_DUPFD*) on a tracked socket. */
#define ZT_SYS_DUP 0xfe

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

#define ZT_H2_CAPTURE 1 /* socket_emit.bpf.h walks HTTP/2 frames (h2_capture.bpf.h) */
#include "socket_emit.bpf.h"

#include "conn_track.bpf.h"

#include "tls_evidence.bpf.h"

#include "ctx_propagate.bpf.h"

#include "recv_args.bpf.h"

#include "send_stamp.bpf.h"

/* sys_enter_* of sends (and sendfile, splice): remember the arguments until sys_exit, but only
 * for fds that are tracked TCP connections (files and other sockets cost no map writes).
 * Returns 1 if it did. Receives have no sys_enter program (recv_args.bpf.h), nor sends where
 * the kernel has the tcp_sendmsg_locked tracepoint (send_stamp.bpf.h). */
static __always_inline int zt_enter(__u32 fd, __u64 buf, __u32 vlen, __u8 sys)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct syscall_args args = {.buf = buf, .fd = fd, .vlen = vlen, .sys = sys};
	struct conn_key key = {.tgid = id >> 32, .fd = fd};
	struct conn_state *st;

	if (!zt_traced(key.tgid))
		return 0;
	/* A tracked fd defers the fd -> file walk (fd reuse check) to exit, where only a syscall
	 * that moved bytes pays it: event loops read until EAGAIN. */
	st = zt_conn_state(key.tgid, bpf_map_lookup_elem(&conns, &key));
	if (st)
		args.verify = 1;
	else if (!(st = zt_conn_for_fd(&key)))
		return 0;
	zt_note_tls_socket(&key, st);
	/* A loopback send runs the receiver's softirq inline: its bytes are stamped before the
	 * peer can answer. (splice from a socket is stamped at exit, as receives.) */
	if (zt_sends(sys))
		args.enter_ns = bpf_ktime_get_ns();
	zt_stash(&args);
	return 1;
}

/* The tracked connection fd names, for a receive or send the socket layer reported on sk's
 * socket, whose file is file: the entry's file answers without walking the fd table. A
 * mismatch (the fd was reused, or the syscall moved a kernel socket's bytes beneath another
 * file, as a network filesystem does) walks it: only the fd's own socket is tracked. Not
 * inlined: the exit's call chain is near the 512-byte stack limit. */
static __noinline struct conn_state *zt_conn_for_sock_file(struct conn_key *key,
							    struct file *file)
{
	struct conn_state *st = bpf_map_lookup_elem(&conns, key);

	if (st && st->file == (__u64)file && (st = zt_conn_state(key->tgid, st)))
		return st;
	if (zt_fd_to_file(key->fd) != file)
		return NULL;
	return zt_conn_for_file(key, file);
}

/* The end of a receive or send (nr: the syscall's number), at its sys_exit (sock_file NULL)
 * or where the socket layer reports on a user socket whose file is sock_file (zt_sock_recv,
 * zt_sock_send): emit the bytes moved on a tracked connection. */
static __always_inline int zt_exit_data(long nr, long ret, struct file *sock_file)
{
	__u8 sys = zt_data_sys(nr), recv = ZT_SYS_COUNT, send = ZT_SYS_COUNT;
	struct send_stamp stamp = {};
	struct syscall_args a = {};
	struct conn_key key, ekey;
	struct conn_state *st;
	__u64 ts_ns, conn_id, id;
	struct file *file;
	__u32 head = 0;

	if (sys != ZT_SYS_COUNT && !zt_sends(sys)) {
		recv = sys;
	} else if (sys != ZT_SYS_COUNT && send_stamps) {
		send = sys;
		/* first: a stamp lives for one syscall (send_stamp.bpf.h) */
		if (sock_file) /* the socket is known: only the stamp's time is kept */
			a.enter_ns = zt_take_send_stamp_of((__u64)sock_file);
		else
			zt_take_send_stamp(&stamp);
	}
	/* A receive or send that moved nothing (EAGAIN: event loops read until it; EOF; failures)
	 * returns before any lookup. A reset still flags its connection below. */
	if ((recv != ZT_SYS_COUNT || send != ZT_SYS_COUNT) && ret <= 0 && ret != -ZT_ECONNRESET &&
	    ret != -ZT_EPIPE)
		return 0;
	id = bpf_get_current_pid_tgid();
	if (recv != ZT_SYS_COUNT) { /* a receive: no sys_enter program ran */
		if (!zt_recv_exit_args(&a, recv, id >> 32))
			return 0;
	} else if (send != ZT_SYS_COUNT) { /* a send: nor here */
		if (!zt_send_exit_args(&a, send, id >> 32))
			return 0;
	} else if (!zt_unstash(&a) || a.sys >= ZT_SYS_COUNT) {
		return 0;
	}
	key.tgid = id >> 32;
	key.fd = a.fd;
	if (ret == -ZT_ECONNRESET || ret == -ZT_EPIPE) {
		/* The peer reset: the close event will say so (pending requests failed). */
		st = zt_conn_state(key.tgid, bpf_map_lookup_elem(&conns, &key));
		if (st)
			st->close_flags |= ZT_CLOSE_F_RESET;
		return 0;
	}
	if (ret <= 0) /* other failures, EAGAIN and EOF move no bytes */
		return 0;
	file = sock_file;
	if (file) { /* the socket layer named the socket: no fd table walk */
		st = zt_conn_for_sock_file(&key, file);
	} else if (a.verify) { /* the fd may name another file than its entry's: released, rediscovered */
		file = zt_fd_to_file(key.fd);
		st = file ? zt_conn_for_file(&key, file) : NULL;
	} else {
		st = zt_conn_state(key.tgid, bpf_map_lookup_elem(&conns, &key));
	}
	if (!st)
		return 0;
	/* A receive or send inside a TLS call: ciphertext from now on, before anything is
	 * emitted. */
	if (recv != ZT_SYS_COUNT || send != ZT_SYS_COUNT)
		zt_note_tls_socket(&key, st);
	if (send != ZT_SYS_COUNT) { /* stamped in tcp_sendmsg_locked, before its bytes left */
		if (!sock_file && stamp.ts_ns && stamp.file == (__u64)file)
			a.enter_ns = stamp.ts_ns;
		if (!a.enter_ns)
			zt_count(ZT_CNT_SEND_STAMPED_AT_EXIT);
	}
	ts_ns = a.enter_ns ? a.enter_ns : bpf_ktime_get_ns(); /* sends: stamped at entry */
	a.enter_ns = ts_ns; /* what zt_note_read stamps a receive with */
	conn_id = st->conn_id;
	if (a.sys == ZT_SYS_SPLICE_READ || a.sys == ZT_SYS_SPLICE_WRITE)
		zt_count(ZT_CNT_SPLICE);
	ekey.tgid = key.tgid;
	ekey.fd = zt_event_fd(st, key.fd);
	zt_emit_syscall(&ekey, st, &a, ret, ts_ns, &head);
	/* After the emit: the first bytes it captured spare zt_note_read a user-memory read. */
	zt_note_read(&key, conn_id, &a, ret, head);
	if (propagate_ctx) /* --propagate-context: which request the thread serves */
		zt_ctx_on_syscall(st, (__u64)key.fd << 8 | a.sys, a.buf, ret, head);
	return 0;
}

#define ZT_ENTER_BUF(name, sys)                                                  \
	SEC("tracepoint/syscalls/sys_enter_" #name)                              \
	int zt_enter_##name(struct trace_event_raw_sys_enter *ctx)               \
	{                                                                        \
		return zt_enter(ctx->args[0], ctx->args[1], ctx->args[2], sys);  \
	}

ZT_ENTER_BUF(write, ZT_SYS_WRITE)
ZT_ENTER_BUF(writev, ZT_SYS_WRITEV)
ZT_ENTER_BUF(sendto, ZT_SYS_SENDTO)
ZT_ENTER_BUF(sendmsg, ZT_SYS_SENDMSG)
ZT_ENTER_BUF(sendmmsg, ZT_SYS_SENDMMSG)

/* sendfile(out_fd, in_fd, offset, count): only the byte count reaches the stream. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int zt_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	return zt_enter(ctx->args[0], 0, 0, ZT_SYS_SENDFILE);
}

/* splice(fd_in, off_in, fd_out, off_out, len, flags): one end is a pipe; when the other is a
 * tracked socket, only the byte count reaches its stream (as sendfile). tee() joins two pipes
 * and copy_file_range() two regular files: neither can touch a socket. */
SEC("tracepoint/syscalls/sys_enter_splice")
int zt_enter_splice(struct trace_event_raw_sys_enter *ctx)
{
	if (!zt_enter(ctx->args[0], 0, 0, ZT_SYS_SPLICE_READ))
		zt_enter(ctx->args[2], 0, 0, ZT_SYS_SPLICE_WRITE);
	return 0;
}

/* One program for every data syscall's sys_exit: the syscall number (receives) or the stash
 * (the rest) says which syscall it was, so the verifier checks the emit path once. The loader
 * attaches it to the other sys_exit_* tracepoints of ZT_SYS_* (sys_exit_write, sys_exit_readv,
 * ...). */
SEC("tracepoint/syscalls/sys_exit_recvmmsg")
int zt_exit_data_syscall(struct trace_event_raw_sys_exit *ctx)
{
	return zt_exit_data(ctx->id, ctx->ret, NULL);
}

/* Task flags (include/linux/sched.h): io_uring's workers and kernel threads make no syscalls,
 * and their saved registers (zeroed) would read as a read() of fd 0. */
#define ZT_PF_IO_WORKER 0x00000010
#define ZT_PF_KTHREAD 0x00200000

/* Linux 6.3+, unless --no-socket-tracepoints: receives and sends other than recvmmsg and
 * sendmmsg end in zt_sock_recv and zt_sock_send, at the socket layer's tracepoints
 * sock_recv_length and sock_send_length, and the loader leaves their sys_exit tracepoints
 * unhooked. Then a read or write of a file, pipe or terminal runs no program at all, a BTF
 * tracepoint is dispatched without the perf record a syscall tracepoint builds, and the
 * socket comes with the call instead of from the fd table. recvmmsg and sendmmsg report each
 * message there, but their streams move at the syscall's exit, as before.
 *
 * One receive (send false) or send that sock_recvmsg or sock_sendmsg finished on sk (ret:
 * bytes, or an error), inside whatever syscall the thread is in: only the ones that end no
 * longer sees, on TCP sockets, go on. */
static __always_inline int zt_sock_data(struct sock *sk, int ret, bool send)
{
	struct task_struct *task;
	struct socket *sock;
	struct file *file;
	__u8 sys;
	long nr;

	/* An empty receive (EAGAIN: event loops read until it; EOF) returns first. A send must
	 * reach zt_exit_data whatever it returned, which clears its stamp. */
	if (!send && ret <= 0 && ret != -ZT_ECONNRESET)
		return 0;
	task = bpf_get_current_task_btf();
	nr = zt_current_syscall_nr();
	sys = zt_data_sys(nr);
	if (sys == ZT_SYS_COUNT || sys == ZT_SYS_RECVMMSG || sys == ZT_SYS_SENDMMSG ||
	    zt_sends(sys) != send || (task->flags & (ZT_PF_IO_WORKER | ZT_PF_KTHREAD)))
		return 0;
	sock = sk->sk_socket;
	file = sock ? sock->file : NULL;
	/* Neither UDP, unix or MPTCP sockets (never tracked) nor a kernel socket (a network
	 * filesystem's, inside a write: not the fd's) go on. */
	if (sk->sk_protocol != IPPROTO_TCP || !file) {
		if (send) /* a stamp lives for one send (an MPTCP subflow's, say) */
			zt_take_send_stamp_of(0);
		return 0;
	}
	return zt_exit_data(nr, ret, file);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(zt_sock_recv, struct sock *sk, int ret, int flags)
{
	return zt_sock_data(sk, ret, false);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(zt_sock_send, struct sock *sk, int ret, int flags)
{
	return zt_sock_data(sk, ret, true);
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

	if (st)
		zt_release(&key, st, ZT_CLOSE_SYSCALL);
	return 0;
}

/* dup(oldfd), dup2(oldfd, newfd), dup3(oldfd, newfd, flags), fcntl(oldfd, F_DUPFD*, min):
 * a new fd for a tracked socket shares its connection (zt_dup_done). */
static __always_inline int zt_enter_dup(__u32 oldfd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct syscall_args args = {.fd = oldfd, .sys = ZT_SYS_DUP};
	struct conn_key key = {.tgid = id >> 32, .fd = oldfd};

	if (zt_traced(key.tgid) && bpf_map_lookup_elem(&conns, &key))
		zt_stash(&args);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_dup")
int zt_enter_dup_(struct trace_event_raw_sys_enter *ctx)
{
	return zt_enter_dup(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_dup2")
int zt_enter_dup2(struct trace_event_raw_sys_enter *ctx)
{
	return zt_enter_dup(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_dup3")
int zt_enter_dup3(struct trace_event_raw_sys_enter *ctx)
{
	return zt_enter_dup(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_fcntl")
int zt_enter_fcntl(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[1] != ZT_F_DUPFD && ctx->args[1] != ZT_F_DUPFD_CLOEXEC)
		return 0;
	return zt_enter_dup(ctx->args[0]);
}

/* The exit of dup; the loader attaches it to the exits of dup2, dup3 and fcntl too. */
SEC("tracepoint/syscalls/sys_exit_dup")
int zt_exit_dup(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct syscall_args a;

	if (zt_unstash(&a) && a.sys == ZT_SYS_DUP)
		zt_dup_done(id >> 32, a.fd, ctx->ret);
	return 0;
}

/* REQ_F_FIXED_FILE: the request's fd indexes the ring's registered files (uapi bit 0). */
#define ZT_REQ_F_FIXED_FILE 1

/* io_uring opcodes (uapi, stable) that read or write a file's bytes. */
static __always_inline bool zt_io_uring_moves_bytes(__u8 op)
{
	switch (op) {
	case 1: case 2: case 4: case 5:   /* READV, WRITEV, READ_FIXED, WRITE_FIXED */
	case 9: case 10: case 22: case 23: /* SENDMSG, RECVMSG, READ, WRITE */
	case 26: case 27: case 30:        /* SEND, RECV, SPLICE */
	case 47: case 48: case 49:        /* SEND_ZC, SENDMSG_ZC, READ_MULTISHOT */
	case 58: case 60: case 61:        /* RECV_ZC, READV_FIXED, WRITEV_FIXED */
		return true;
	default:
		return false;
	}
}

/* io_uring moves bytes without socket syscalls: a request that reads or writes a tracked
 * socket leaves its streams short of those bytes. Counted; the connection is not followed
 * further (README: io_uring). Requests on registered (fixed) files name no fd: not seen. */
SEC("tracepoint/io_uring/io_uring_submit_req")
int zt_io_uring_submit(struct trace_event_raw_io_uring_submit_req *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct io_kiocb *req = ctx->req;
	struct conn_key key = {.tgid = id >> 32};
	__u8 op = ctx->opcode;

	if (!zt_io_uring_moves_bytes(op) || !zt_traced(key.tgid))
		return 0;
	if (!bpf_core_field_exists(req->cqe.fd) ||
	    (BPF_CORE_READ(req, flags) & ZT_REQ_F_FIXED_FILE))
		return 0;
	key.fd = BPF_CORE_READ(req, cqe.fd);
	if (zt_conn_for_fd(&key))
		zt_count(ZT_CNT_IO_URING);
	return 0;
}

/* BTF raw tracepoints, not trace events: those take ~40 ms each to detach (a kernel-wide
 * synchronisation, serialised across events); these detach at once. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(zt_proc_exec, struct task_struct *p)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (filter_skip) /* a new program: the selectors judge it again */
		bpf_map_delete_elem(&proc_skip, &tgid);
	if (!zt_traced(tgid))
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
	__u32 tgid = id >> 32;

	if (!zt_traced_base(tgid) || p->signal->live.counter != 0)
		return 0;
	if (filter_skip)
		bpf_map_delete_elem(&proc_skip, &tgid);
	zt_emit_proc(ZT_EV_PROC_EXIT, 0);
	return 0;
}
