/* Receives (read, readv, recvfrom, recvmsg, recvmmsg) run no sys_enter program: their sys_exit
 * reads the arguments from the task's saved user registers, which the syscall leaves as the
 * caller set them. Event loops read until EAGAIN (nginx: two of three recvfrom per request move
 * nothing), and such a receive then costs the exit program's first checks only. Included by
 * socket_trace.bpf.c after trace_maps.bpf.h and socket_emit.bpf.h. */
#ifndef ZT_RECV_ARGS_BPF_H
#define ZT_RECV_ARGS_BPF_H

#define ZT_MSG_PEEK 2

/* Syscall numbers (trace_event_raw_sys_exit.id, the saved orig_ax/syscallno) of the receives
 * and of the sends that send_stamp.bpf.h stamps. Compat (32-bit) syscalls fire no syscall
 * tracepoint. */
#if defined(__TARGET_ARCH_x86)
#define ZT_NR_READ 0
#define ZT_NR_WRITE 1
#define ZT_NR_READV 19
#define ZT_NR_WRITEV 20
#define ZT_NR_SENDTO 44
#define ZT_NR_RECVFROM 45
#define ZT_NR_SENDMSG 46
#define ZT_NR_RECVMSG 47
#define ZT_NR_RECVMMSG 299
#define ZT_NR_SENDMMSG 307
#elif defined(__TARGET_ARCH_arm64)
#define ZT_NR_READ 63
#define ZT_NR_WRITE 64
#define ZT_NR_READV 65
#define ZT_NR_WRITEV 66
#define ZT_NR_SENDTO 206
#define ZT_NR_RECVFROM 207
#define ZT_NR_SENDMSG 211
#define ZT_NR_RECVMSG 212
#define ZT_NR_RECVMMSG 243
#define ZT_NR_SENDMMSG 269
#else
#error "receive and send syscall numbers are not known for this architecture"
#endif

/* The receive or send (ZT_SYS_READ .. ZT_SYS_RECVMMSG; zt_sends tells which) a syscall number
 * is, or ZT_SYS_COUNT for any other syscall. */
static __always_inline __u8 zt_data_sys(long nr)
{
	switch (nr) {
	case ZT_NR_READ:
		return ZT_SYS_READ;
	case ZT_NR_WRITE:
		return ZT_SYS_WRITE;
	case ZT_NR_READV:
		return ZT_SYS_READV;
	case ZT_NR_WRITEV:
		return ZT_SYS_WRITEV;
	case ZT_NR_SENDTO:
		return ZT_SYS_SENDTO;
	case ZT_NR_RECVFROM:
		return ZT_SYS_RECVFROM;
	case ZT_NR_SENDMSG:
		return ZT_SYS_SENDMSG;
	case ZT_NR_RECVMSG:
		return ZT_SYS_RECVMSG;
	case ZT_NR_RECVMMSG:
		return ZT_SYS_RECVMMSG;
	case ZT_NR_SENDMMSG:
		return ZT_SYS_SENDMMSG;
	default:
		return ZT_SYS_COUNT;
	}
}

/* The number of the syscall the current task is in (its saved orig_ax/syscallno). */
static __always_inline long zt_current_syscall_nr(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

#if defined(__TARGET_ARCH_x86)
	return regs->orig_ax;
#else
	return BPF_CORE_READ(regs, syscallno);
#endif
}

/* The first four arguments of the current task's syscall, at its sys_exit. */
static __always_inline void zt_syscall_args4(__u64 arg[4])
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

#if defined(__TARGET_ARCH_x86)
	/* Direct loads through the BTF pointer: no helper call per register. */
	arg[0] = regs->di;
	arg[1] = regs->si;
	arg[2] = regs->dx;
	arg[3] = regs->r10;
#else
	arg[0] = PT_REGS_PARM1_CORE_SYSCALL(regs); /* arm64: orig_x0, x0 holds the result now */
	arg[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
	arg[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
	arg[3] = PT_REGS_PARM4_CORE_SYSCALL(regs);
#endif
}

/* The arguments of receive sys into a (as a sys_enter would have stashed them); returns the
 * receive's flags (read and readv have none). */
static __always_inline __u64 zt_recv_args(struct syscall_args *a, __u8 sys)
{
	__u64 arg[4];

	zt_syscall_args4(arg);
	a->fd = arg[0];
	a->buf = arg[1];
	a->sys = sys;
	switch (sys) {
	case ZT_SYS_READV: /* readv(fd, iov, iovcnt) */
		a->vlen = arg[2];
		return 0;
	case ZT_SYS_RECVFROM: /* recvfrom(fd, buf, len, flags, addr, addrlen) */
		return arg[3];
	case ZT_SYS_RECVMSG: /* recvmsg(fd, msg, flags) */
		return arg[2];
	case ZT_SYS_RECVMMSG: /* recvmmsg(fd, msgvec, vlen, flags, timeout) */
		a->vlen = arg[2];
		return arg[3];
	default: /* read(fd, buf, count) */
		return 0;
	}
}

/* A receive's exit that moved bytes (or failed with a reset): its arguments from the saved
 * registers into *a, as zt_enter would have stashed them. False when the process is not traced,
 * or for a MSG_PEEK: a peek copies bytes that stay queued, and the receive that later takes
 * them is the one that moves the stream (a peek on a tracked connection is counted). */
static __always_inline bool zt_recv_exit_args(struct syscall_args *a, __u8 sys, __u32 tgid)
{
	struct conn_key key = {.tgid = tgid};

	if (!zt_traced(tgid))
		return false;
	if (!(zt_recv_args(a, sys) & ZT_MSG_PEEK)) {
		a->verify = 1; /* nothing looked at the fd yet: zt_conn_for_fd does */
		return true;
	}
	key.fd = a->fd;
	if (bpf_map_lookup_elem(&conns, &key))
		zt_count(ZT_CNT_PEEK_SKIPPED);
	return false;
}

#endif /* ZT_RECV_ARGS_BPF_H */
