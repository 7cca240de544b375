// SPDX-License-Identifier: GPL-2.0
/* TLS library uprobes: the plaintext of SSL_read/SSL_write(_ex) (OpenSSL 1.1 and 3) and
 * gnutls_record_recv/send, attributed to the connection whose socket the nested syscall used
 * (socket_trace.bpf.c notes it in tls_calls) or, for a library over memory buffers (node),
 * the socket its thread read a TLS record from just before (thread_reads); emitted as
 * ZT_SRC_TLS data events with their own stream positions. Also reports files newly mapped
 * executable, so userspace can probe them. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h> /* BPF_KPROBE/BPF_KRETPROBE serve uprobes too (libbpf 1.1) */

#include <zerotrace/events.h>

#include "sock_lookup.bpf.h"
#include "trace_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define ZT_PROT_EXEC 0x4

struct ssl_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl; /* SSL* or gnutls_session_t in tgid */
};

/* The socket a TLS session was last seen using: a read served from the library's buffer
 * makes no syscall, so its connection comes from an earlier call of the same session. */
struct ssl_socket {
	__u64 conn_id; /* the connection generation: a reused fd does not match */
	__u32 fd;
	__u32 h2;      /* 1: an HTTP/2 frame walk follows its plaintext (h2_capture.bpf.h) */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ZT_MAX_CONNS);
	__type(key, struct ssl_key);
	__type(value, struct ssl_socket);
} ssl_sockets SEC(".maps");

/* The session bound to a connection: the reverse of ssl_sockets. A socket carries one TLS
 * session, so a read on a socket another session owns never binds a second one. */
struct conn_session {
	__u64 conn_id; /* the connection generation it was bound to */
	__u64 ssl;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ZT_MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, struct conn_session);
} conn_sessions SEC(".maps");

/* How long after a read its thread's TLS call may still take its socket. node and asyncio
 * decrypt in the same callback that read, microseconds later; the margin is for preemption. */
#define ZT_BIND_READ_MAX_AGE_NS (200ULL * 1000 * 1000)

struct exec_file_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* Files already reported as mapped executable; userspace deletes the ones it forgets, so
 * the next process that maps one is reported again. LRU: old entries are merely re-reported. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct exec_file_key);
	__type(value, __u8);
} exec_files SEC(".maps");

#define ZT_H2_CAPTURE 1 /* HTTP/2 plaintext is frame-walked too (h2_capture.bpf.h) */
#include "socket_emit.bpf.h"

/* uprobe: a TLS read or write starts on this thread. */
static __always_inline int zt_tls_enter(struct pt_regs *ctx, __u64 ssl, __u64 buf,
					__u64 out_len, __u8 op, __u8 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sp = PT_REGS_SP(ctx);
	struct tls_call call = {};
	struct tls_call *outer;

	if (!zt_traced(id >> 32))
		return 0;
	outer = zt_current_tls_call();
	/* Nested (a wrapper calling the real library) only if deeper in the stack; otherwise the
	 * outer call never returned through its uretprobe (longjmp) and is stale. */
	if (outer && sp < outer->sp) {
		outer->depth++;
		zt_count(ZT_CNT_TLS_NESTED);
		return 0;
	}
	call.sp = sp;
	call.ssl = ssl;
	call.buf = buf;
	call.out_len = out_len;
	call.enter_ns = bpf_ktime_get_ns();
	call.op = op;
	call.ret_kind = kind;
	call.active = 1;
	outer = bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0,
				     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (outer)
		*outer = call;
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(zt_ssl_write, void *ssl, const void *buf, int num)
{
	return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, 0, ZT_SYS_TLS_WRITE, ZT_TLS_RET_INT);
}

SEC("uprobe")
int BPF_KPROBE(zt_ssl_read, void *ssl, void *buf, int num)
{
	return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, 0, ZT_SYS_TLS_READ, ZT_TLS_RET_INT);
}

SEC("uprobe")
int BPF_KPROBE(zt_ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, (__u64)written, ZT_SYS_TLS_WRITE,
			    ZT_TLS_RET_EX);
}

SEC("uprobe")
int BPF_KPROBE(zt_ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, (__u64)readbytes, ZT_SYS_TLS_READ,
			    ZT_TLS_RET_EX);
}

SEC("uprobe")
int BPF_KPROBE(zt_gnutls_send, void *session, const void *buf, __u64 size)
{
	return zt_tls_enter(ctx, (__u64)session, (__u64)buf, 0, ZT_SYS_TLS_WRITE,
			    ZT_TLS_RET_SSIZE);
}

SEC("uprobe")
int BPF_KPROBE(zt_gnutls_recv, void *session, void *buf, __u64 size)
{
	return zt_tls_enter(ctx, (__u64)session, (__u64)buf, 0, ZT_SYS_TLS_READ,
			    ZT_TLS_RET_SSIZE);
}

/* SSL_do_handshake (SSL_connect/SSL_accept call it) and gnutls_handshake: the socket they
 * use is the session's, so a first read served from the library's buffer finds it. */
SEC("uprobe")
int BPF_KPROBE(zt_tls_handshake, void *ssl)
{
	return zt_tls_enter(ctx, (__u64)ssl, 0, 0, ZT_TLS_OP_HANDSHAKE, ZT_TLS_RET_INT);
}

/* Bytes the call moved, from its return value (and *out_len for the _ex forms); 0 if none. */
static __always_inline __u64 zt_tls_bytes(struct tls_call *call, long rc)
{
	__u64 n = 0;

	switch (call->ret_kind) {
	case ZT_TLS_RET_INT:
		return (int)rc > 0 ? (__u64)(int)rc : 0;
	case ZT_TLS_RET_SSIZE:
		return rc > 0 ? (__u64)rc : 0;
	default:
		if ((int)rc != 1 || !call->out_len)
			return 0;
		if (bpf_probe_read_user(&n, sizeof(n), (void *)call->out_len))
			return 0;
		return n;
	}
}

/* Hot path: plaintext of one finished TLS call, placed in the connection's TLS stream.
 * h2: the session's plaintext may be frame-walked (known to be, or not known yet); the walk
 * is looked for only then and at a direction's first bytes, so other TLS pays no lookup.
 * Returns 1 when a frame walk took the bytes. */
static __noinline int zt_tls_emit(struct conn_key *key, struct conn_state *st,
				  struct tls_call *call, __u64 bytes, int h2)
{
	int walked = 0;
	struct emit_state s = {};

	if (bytes > 0xffffffffULL) /* byte_count is 32 bits; no TLS record API moves this much */
		bytes = 0xffffffffULL;
	s.source = ZT_SRC_TLS;
	s.sys = call->op;
	s.direction = call->op == ZT_SYS_TLS_WRITE ? ZT_DIR_EGRESS : ZT_DIR_INGRESS;
	s.ts_ns = s.direction == ZT_DIR_EGRESS ? call->enter_ns : bpf_ktime_get_ns();
	s.conn_id = st->conn_id;
	s.fd = key->fd;
	s.byte_count = bytes;
	zt_tls_budget(key, st, &s, bytes);
	if (s.direction == ZT_DIR_EGRESS)
		s.syscall_pos = __sync_fetch_and_add(&st->tls_send_pos, bytes);
	else
		s.syscall_pos = __sync_fetch_and_add(&st->tls_recv_pos, bytes);
	s.pos = s.syscall_pos;
	if (h2 || s.syscall_pos == 0) /* HTTP/2: frame-aware capture */
		walked = zt_h2_emit_tls(key, st, call->buf, &s);
	if (!walked)
		zt_emit_buf(&s, call->buf, bytes);
	zt_emit_trailer(&s);
	zt_count(ZT_CNT_TLS_CALLS);
	return walked;
}

/* A TLS call that made no socket syscall, of a session with no known socket (memory BIOs):
 * the session takes the socket this thread read from just before the call, if that read
 * began with a TLS record, is recent, and no other session owns the socket or the read. */
static __always_inline bool zt_bind_by_read(__u64 id, struct ssl_key *skey, struct tls_call *call)
{
	struct thread_read *r = bpf_task_storage_get(&thread_reads, bpf_get_current_task_btf(), 0, 0);
	struct conn_key key = {.tgid = id >> 32};
	struct conn_session *owner;
	struct conn_state *st;

	if (!r || !r->tls_record || r->ts_ns > call->enter_ns ||
	    call->enter_ns - r->ts_ns > ZT_BIND_READ_MAX_AGE_NS)
		return false;
	if (r->claimed_ssl != 0 && r->claimed_ssl != skey->ssl)
		return false;
	key.fd = r->fd;
	st = zt_conn_state(key.tgid, bpf_map_lookup_elem(&conns, &key));
	if (!st || st->conn_id != r->conn_id)
		return false;
	owner = bpf_map_lookup_elem(&conn_sessions, &key);
	if (owner && owner->conn_id == r->conn_id && owner->ssl != skey->ssl)
		return false;
	r->claimed_ssl = skey->ssl;
	call->conn_id = r->conn_id;
	call->fd = r->fd;
	st->tls = 1; /* from now on its socket bytes are ciphertext */
	zt_count(ZT_CNT_TLS_BOUND_BY_READ);
	return true;
}

/* The return of every probed TLS function: find the socket, then emit the plaintext. */
static __always_inline int zt_tls_finish(long rc)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *stashed = zt_current_tls_call();
	struct ssl_key skey = {.tgid = id >> 32};
	struct conn_key key = {.tgid = id >> 32};
	struct ssl_socket *known;
	struct conn_state *st;
	struct tls_call call;
	__u64 bytes;
	int flagged = 0; /* ssl_sockets says a frame walk follows the session */
	int h2 = 1;      /* a walk may follow it: flagged, or the entry (re)learned now */

	if (!stashed)
		return 0;
	if (stashed->depth > 0) {
		stashed->depth--;
		return 0;
	}
	call = *stashed;
	stashed->active = 0;
	skey.ssl = call.ssl;
	if (call.conflict) {
		zt_count(ZT_CNT_TLS_FD_CONFLICT);
		return 0;
	}
	bytes = call.op == ZT_TLS_OP_HANDSHAKE ? 0 : zt_tls_bytes(&call, rc);
	known = bpf_map_lookup_elem(&ssl_sockets, &skey);
	if (call.conn_id == 0) {
		if (known) {
			key.fd = known->fd;
			st = zt_conn_state(key.tgid, bpf_map_lookup_elem(&conns, &key));
			if (st && st->conn_id == known->conn_id) {
				call.conn_id = known->conn_id;
				call.fd = known->fd;
			}
		}
		/* Calls that moved nothing (handshake progress) bind too: a client's session then
		 * knows its socket before its first SSL_write. */
		if (call.conn_id == 0 && !zt_bind_by_read(id, &skey, &call)) {
			if (bytes)
				zt_count(known ? ZT_CNT_TLS_CONN_GONE : ZT_CNT_TLS_NO_FD);
			return 0;
		}
	}
	if (known && known->conn_id == call.conn_id) {
		flagged = known->h2;
		h2 = flagged;
	} else { /* learned now: remember it */
		struct ssl_socket sock = {.conn_id = call.conn_id, .fd = call.fd};
		struct conn_session owner = {.conn_id = call.conn_id, .ssl = call.ssl};

		bpf_map_update_elem(&ssl_sockets, &skey, &sock, BPF_ANY);
		key.fd = call.fd;
		bpf_map_update_elem(&conn_sessions, &key, &owner, BPF_ANY);
	}
	if (bytes == 0)
		return 0;
	key.fd = call.fd;
	st = zt_conn_state(key.tgid, bpf_map_lookup_elem(&conns, &key));
	if (!st || st->conn_id != call.conn_id) {
		zt_count(ZT_CNT_TLS_CONN_GONE);
		return 0;
	}
	st->tls = 1;
	key.fd = zt_event_fd(st, key.fd);
	if (zt_tls_emit(&key, st, &call, bytes, h2) && !flagged) { /* walked from now on */
		known = bpf_map_lookup_elem(&ssl_sockets, &skey);
		if (known && known->conn_id == call.conn_id)
			known->h2 = 1;
	}
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(zt_tls_return, long rc)
{
	return zt_tls_finish(rc);
}

/* One multi-uprobe link per file (Linux 6.6+): the attach cookie says which function it is.
 * Attaching and detaching a whole file then costs one kernel synchronisation, not one per
 * function (each is tens of milliseconds on a busy machine). */
SEC("uprobe")
int BPF_KPROBE(zt_tls_entry_multi, void *ssl, void *buf, __u64 len, void *out_len)
{
	switch (bpf_get_attach_cookie(ctx)) {
	case ZT_TLS_FN_SSL_WRITE:
		return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, 0, ZT_SYS_TLS_WRITE,
				    ZT_TLS_RET_INT);
	case ZT_TLS_FN_SSL_READ:
		return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, 0, ZT_SYS_TLS_READ, ZT_TLS_RET_INT);
	case ZT_TLS_FN_SSL_WRITE_EX:
		return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, (__u64)out_len, ZT_SYS_TLS_WRITE,
				    ZT_TLS_RET_EX);
	case ZT_TLS_FN_SSL_READ_EX:
		return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, (__u64)out_len, ZT_SYS_TLS_READ,
				    ZT_TLS_RET_EX);
	case ZT_TLS_FN_GNUTLS_RECORD_SEND:
		return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, 0, ZT_SYS_TLS_WRITE,
				    ZT_TLS_RET_SSIZE);
	case ZT_TLS_FN_GNUTLS_RECORD_RECV:
		return zt_tls_enter(ctx, (__u64)ssl, (__u64)buf, 0, ZT_SYS_TLS_READ,
				    ZT_TLS_RET_SSIZE);
	default: /* the handshakes */
		return zt_tls_enter(ctx, (__u64)ssl, 0, 0, ZT_TLS_OP_HANDSHAKE, ZT_TLS_RET_INT);
	}
}

SEC("uretprobe")
int BPF_KRETPROBE(zt_tls_return_multi, long rc)
{
	return zt_tls_finish(rc);
}

/* mmap(..., PROT_EXEC, ..., fd, ...): report each file once, so userspace can look for TLS
 * libraries a process loads after exec (dlopen), outside the directories probed at start. */
SEC("tracepoint/syscalls/sys_enter_mmap")
int zt_enter_mmap(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct exec_file_key fkey = {};
	struct zt_exec_map_event *ev;
	struct file *file;
	struct inode *inode;
	__u8 one = 1;
	long fd = ctx->args[4];

	if (!(ctx->args[2] & ZT_PROT_EXEC) || fd < 0 || !zt_traced(id >> 32))
		return 0;
	file = zt_fd_to_file(fd);
	if (!file)
		return 0;
	inode = BPF_CORE_READ(file, f_inode);
	fkey.ino = BPF_CORE_READ(inode, i_ino);
	fkey.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	if (bpf_map_lookup_elem(&exec_files, &fkey))
		return 0;
	bpf_map_update_elem(&exec_files, &fkey, &one, BPF_ANY);
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		return 0;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	zt_fill_header(&ev->hdr, ZT_EV_EXEC_MAP, 0, 0);
	ev->ino = fkey.ino;
	ev->dev = fkey.dev;
	bpf_ringbuf_submit(ev, BPF_RB_FORCE_WAKEUP); /* the process may use the library soon */
	return 0;
}
