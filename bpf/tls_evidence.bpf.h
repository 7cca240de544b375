/* Socket syscalls as evidence for tls_trace.bpf.c: a syscall made inside a TLS call names the
 * call's socket, and a thread's last receive names the socket of a TLS session over memory
 * buffers. Included by socket_trace.bpf.c after conn_track.bpf.h. */
#ifndef ZT_TLS_EVIDENCE_BPF_H
#define ZT_TLS_EVIDENCE_BPF_H

/* 0 with --no-tls: no TLS call can be in progress and nothing reads thread_reads, so data
 * syscalls skip both task-storage lookups. */
const volatile __u8 tls_evidence = 1;

/* A socket syscall inside a TLS read/write on this thread: the plaintext belongs to this
 * connection, and its own bytes are ciphertext from now on (no longer sent to userspace). */
static __always_inline void zt_note_tls_socket(struct conn_key *key, struct conn_state *st)
{
	struct tls_call *call;

	if (!tls_evidence)
		return;
	call = zt_current_tls_call();
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
 * a->enter_ns carries the receive's time; head, the first bytes if the emit captured them
 * (emit_state.head), else 0: then they are read from user memory. */
static __noinline void zt_note_read(struct conn_key *key, __u64 conn_id, struct syscall_args *a,
				    __u64 ret, __u32 head)
{
	struct thread_read r = {.conn_id = conn_id, .fd = key->fd, .ts_ns = a->enter_ns}, *slot;
	__u64 buf = a->buf, sys = a->sys;
	struct user_msghdr msg;
	struct iovec iov;
	__u64 first;
	__u8 h[3];

	/* Fresh copies: branching on the caller's own registers would refine them and split the
	 * caller's emit path into more states for the verifier. */
	if (!tls_evidence)
		return;
	asm volatile("%0 &= 0xff" : "+r"(sys));
	asm volatile("%0 |= 0" : "+r"(buf));
	asm volatile("%0 |= 0" : "+r"(ret));
	if (sys != ZT_SYS_READ && sys != ZT_SYS_READV && sys != ZT_SYS_RECVFROM &&
	    sys != ZT_SYS_RECVMSG)
		return;
	if (head & ZT_HEAD_CAPTURED) {
		h[0] = head;
		h[1] = head >> 8;
		h[2] = head >> 16;
		if ((long)ret >= 5)
			r.tls_record = h[0] >= 0x14 && h[0] <= 0x17 && h[1] == 3 && h[2] <= 4;
		goto store;
	}
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
store:
	slot = bpf_task_storage_get(&thread_reads, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (slot)
		*slot = r;
}

#endif /* ZT_TLS_EVIDENCE_BPF_H */
