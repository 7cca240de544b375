/* Sends (write, writev, sendto, sendmsg, sendmmsg) without a sys_enter program: the BTF
 * tracepoint tcp_sendmsg_locked stamps the send's time in the thread's task storage, and the
 * send's sys_exit takes its arguments from the saved registers (as receives do,
 * recv_args.bpf.h). Hot path, measured (docs/PERFORMANCE.md, eighth session): the sending
 * thread's CPU is lower per file write (11 of 12 ABBA pairs, 18-153 ns) and per TCP send (10
 * of 12, within the noise); BPF run time per request is unchanged. Included by
 * socket_trace.bpf.c after recv_args.bpf.h. */
#ifndef ZT_SEND_STAMP_BPF_H
#define ZT_SEND_STAMP_BPF_H

/* 1: the loader found the tcp_sendmsg_locked tracepoint and loads zt_send_stamp instead of the
 * five zt_enter_* programs of sends; 0: sends are stashed and stamped at sys_enter. */
const volatile __u8 send_stamps = 0;

/* When a thread's send syscall first reached tcp_sendmsg_locked, and for which socket. */
struct send_stamp {
	__u64 ts_ns; /* 0: no stamp since the thread's last send exit */
	__u64 file;  /* struct file * of the socket it fired for (NULL for kernel sockets) */
};

/* One stamp per thread, from the first tcp_sendmsg_locked of a send syscall to that syscall's
 * sys_exit, which always clears it. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct send_stamp);
} send_stamp_slots SEC(".maps");

/* Why a stamp found at a send's exit is that send's own, never a stale one:
 * - it is written only while the thread is inside write/writev/sendto/sendmsg/sendmmsg (the
 *   saved syscall number), so io_uring, sendfile, splice and kernel workers (kTLS) write none;
 * - where such a send ends, the slot is cleared before any other test, whatever the send
 *   returned: at the syscall's exit (zt_exit_data_syscall), or, with the socket layer's
 *   tracepoints (socket_trace.bpf.c, zt_sock_data), where sock_sendmsg returns, which every
 *   tcp_sendmsg_locked of a user's send is inside (a kernel socket's send inside the syscall
 *   drops the stamp there);
 * - the loader attaches zt_send_stamp after those programs, so no send is in flight with a
 *   stamp and without its end hooked;
 * so a full slot at a send's exit was filled by the first tcp_sendmsg_locked of that very
 * syscall. The exit uses it only if it is for the fd's own socket (file pointer): a write to a
 * file on a network filesystem can fire for a kernel socket. */
SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(zt_send_stamp, const struct sock *sk, const struct msghdr *msg,
	     const struct sk_buff *skb, int size_goal)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u8 sys = zt_data_sys(zt_current_syscall_nr());
	struct send_stamp *s;
	struct socket *sock;

	if (sys == ZT_SYS_COUNT || !zt_sends(sys) ||
	    !zt_traced_base(bpf_get_current_pid_tgid() >> 32))
		return 0;
	s = bpf_task_storage_get(&send_stamp_slots, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	/* Later fires of the same syscall (more segments, after waiting for memory) keep the
	 * first: it precedes every byte the syscall pushes to the peer. */
	if (!s || s->ts_ns)
		return 0;
	s->ts_ns = bpf_ktime_get_ns();
	sock = sk->sk_socket;
	s->file = sock ? (__u64)sock->file : 0;
	return 0;
}

/* At a send's sys_exit: takes the thread's stamp into *out (ts_ns 0: none) and clears it. */
static __always_inline void zt_take_send_stamp(struct send_stamp *out)
{
	struct send_stamp *s =
		bpf_task_storage_get(&send_stamp_slots, bpf_get_current_task_btf(), 0, 0);

	if (!s || !s->ts_ns)
		return;
	*out = *s;
	s->ts_ns = 0;
}

/* At the socket layer's end of a send on the socket whose file is file (0: a kernel socket):
 * the thread's stamp if it is for that socket, else 0; clears it in any case. */
static __always_inline __u64 zt_take_send_stamp_of(__u64 file)
{
	struct send_stamp *s =
		bpf_task_storage_get(&send_stamp_slots, bpf_get_current_task_btf(), 0, 0);
	__u64 ts_ns;

	if (!s)
		return 0;
	ts_ns = s->file == file ? s->ts_ns : 0;
	s->ts_ns = 0;
	return file ? ts_ns : 0;
}

/* The arguments of send sys from the saved registers into *a (as zt_enter stashed them); false
 * if the process is not traced. */
static __always_inline bool zt_send_exit_args(struct syscall_args *a, __u8 sys, __u32 tgid)
{
	__u64 arg[4];

	if (!zt_traced(tgid))
		return false;
	zt_syscall_args4(arg);
	a->fd = arg[0];
	a->buf = arg[1];
	a->vlen = arg[2]; /* writev's iovcnt, sendmmsg's vlen */
	a->sys = sys;
	a->verify = 1; /* nothing looked at the fd yet: the exit walks it */
	return true;
}

#endif /* ZT_SEND_STAMP_BPF_H */
