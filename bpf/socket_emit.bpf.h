/* Writing records to the ring buffer: headers, close/process events, and the payload of
 * one data syscall split into chunks (plain buffers, iovecs, msghdr, mmsghdr arrays).
 * Included by socket_trace.bpf.c and tls_trace.bpf.c after trace_maps.bpf.h. */
#ifndef ZT_SOCKET_EMIT_BPF_H
#define ZT_SOCKET_EMIT_BPF_H

/* Chunks one user buffer may produce: capture_bytes <= ZT_MAX_CAPTURE bounds the rest. */
#define ZT_CHUNKS_PER_BUF (ZT_MAX_CAPTURE / ZT_MAX_CHUNK)
/* mmsghdr entries whose msg_len is summed to learn a sendmmsg/recvmmsg byte count. */
#define ZT_MMSG_SCAN 64

#include "ring_wakeup.bpf.h"

static __always_inline void zt_count(__u32 counter)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &counter);

	if (v)
		*v += 1;
}

static __always_inline void zt_count_add(__u32 counter, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &counter);

	if (v)
		*v += n;
}

static __always_inline void zt_fill_header_at(struct zt_event_header *h, __u8 type, __u32 fd,
					      __u64 conn_id, __u64 ts_ns)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->type = type;
	h->tgid = id >> 32;
	h->tid = (__u32)id;
	h->fd = fd;
	h->ts_ns = ts_ns;
	h->conn_id = conn_id;
}

static __always_inline void zt_fill_header(struct zt_event_header *h, __u8 type, __u32 fd,
					   __u64 conn_id)
{
	zt_fill_header_at(h, type, fd, conn_id, bpf_ktime_get_ns());
}

static __always_inline void zt_emit_proc(__u8 type, __u32 ppid)
{
	struct zt_proc_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	zt_fill_header(&ev->hdr, type, 0, 0);
	ev->ppid = ppid;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	/* An exec may bring a TLS library userspace must probe before the first request. */
	bpf_ringbuf_submit(ev, type == ZT_EV_PROC_EXEC ? BPF_RB_FORCE_WAKEUP : zt_wakeup_flag());
}

/* Where one syscall's emission stands. */
struct emit_state {
	__u64 conn_id;
	__u64 syscall_pos; /* stream position of the syscall's first byte */
	__u64 pos;         /* stream position of the next byte to place */
	__u32 fd;
	__u32 byte_count; /* bytes the syscall moved */
	__u32 budget;     /* capture bytes left for this syscall */
	__u32 emitted;    /* records written */
	__u32 captured;   /* payload bytes written */
	__u32 iov_bytes;  /* zt_emit_iovecs: bytes left */
	__u64 ts_ns;       /* ingress: now (bytes arrived by exit); egress: syscall entry */
	__u8 direction;
	__u8 sys;
	__u8 source; /* enum zt_source */
	__u8 iov_flags; /* ZT_IOV_* */
	__u32 head; /* the syscall's first 3 bytes in bits 0-23 and ZT_HEAD_CAPTURED, if captured */
	struct iovec next_iov; /* sends: the iovec after the one being emitted, read ahead */
};

/* emit_state.iov_flags (kept in one byte: the call chain's stack is near its 512 limit) */
#define ZT_IOV_HAVE_NEXT 1      /* next_iov holds the next iovec */
#define ZT_IOV_SKIP_NEXT 2      /* it is an HTTP/1 body: its length only, no copy */
#define ZT_IOV_REST_GAP 4       /* and it ends the syscall: the head's record says so */
#define ZT_IOV_REST_GAP_SENT 8  /* a record said ZT_DATA_REST_GAP: no trailer */
#define ZT_IOV_CAPPED 16        /* the budget is the connection's head cap: the record that
				 * spends it says ZT_DATA_REST_GAP when bytes are left */

/* emit_state.head holds the syscall's first bytes (zt_note_read checks them for TLS). */
#define ZT_HEAD_CAPTURED (1u << 24)

/* Reserves a data record whose payload holds cls bytes (a constant: bpf_ringbuf_reserve
 * needs one) and reads n <= cls bytes of user memory straight into it. NULL on failure
 * (counted). The record's slack past `captured` is not read by userspace. */
static __always_inline struct zt_data_event *zt_reserve_chunk(__u64 n, __u64 cls, __u64 src)
{
	struct zt_data_event *ev;

	asm volatile("" : "+r"(n)); /* keep the bound check below for the verifier */
	if (n == 0 || n > cls)
		return NULL;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + cls, 0);
	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		return NULL;
	}
	if (bpf_probe_read_user((void *)(ev + 1), n, (void *)src)) {
		bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);
		zt_count(ZT_CNT_READ_USER_FAILED);
		return NULL;
	}
	return ev;
}

/* Hot path: copies up to the budget of one user buffer of len bytes at s->pos, in chunks.
 * Each chunk goes straight into a ring-buffer record of the smallest size class that holds
 * it (payload 256, 512, 1 Ki, 2 Ki, 4 Ki or 16 Ki bytes: at most twice the space up to 4 Ki),
 * not through a per-CPU scratch copy and bpf_ringbuf_output's second copy.
 * A global function: the verifier checks it once, not once per call site and loop iteration
 * of its callers (which made loading take a second). */
__noinline int zt_emit_buf(struct emit_state *s, __u64 ubuf, __u32 len)
{
	__u32 off = 0;

	if (!s)
		return 0;
	for (int i = 0; i < ZT_CHUNKS_PER_BUF; i++) {
		struct zt_data_event *ev;
		__u64 n = len - off;

		if (off >= len || s->budget == 0)
			break;
		if (n > s->budget)
			n = s->budget;
		/* keep clang from folding the bound into a signed 32-bit form the verifier rejects */
		asm volatile("" : "+r"(n));
		if (n > ZT_MAX_CHUNK)
			n = ZT_MAX_CHUNK;
		asm volatile("" : "+r"(n));
		if (n == 0 || n > ZT_MAX_CHUNK)
			break;
		if (n <= 256)
			ev = zt_reserve_chunk(n, 256, ubuf + off);
		else if (n <= 512)
			ev = zt_reserve_chunk(n, 512, ubuf + off);
		else if (n <= 1024)
			ev = zt_reserve_chunk(n, 1024, ubuf + off);
		else if (n <= 2048)
			ev = zt_reserve_chunk(n, 2048, ubuf + off);
		else if (n <= 4096)
			ev = zt_reserve_chunk(n, 4096, ubuf + off);
		else
			ev = zt_reserve_chunk(n, ZT_MAX_CHUNK, ubuf + off);
		if (!ev)
			break;
		if (s->pos + off == s->syscall_pos && n >= 3) {
			__u8 *d = (__u8 *)(ev + 1);

			s->head = d[0] | (d[1] << 8) | (d[2] << 16) | ZT_HEAD_CAPTURED;
		}
		__builtin_memset(ev, 0, sizeof(*ev));
		zt_fill_header_at(&ev->hdr, ZT_EV_DATA, s->fd, s->conn_id, s->ts_ns);
		ev->syscall_pos = s->syscall_pos;
		ev->stream_pos = s->pos + off;
		ev->byte_count = s->byte_count;
		ev->captured = n;
		ev->direction = s->direction;
		ev->source = s->source;
		ev->syscall = s->sys;
		if ((s->iov_flags & ZT_IOV_REST_GAP) && off + n == len) {
			ev->flags = ZT_DATA_REST_GAP;
			s->iov_flags |= ZT_IOV_REST_GAP_SENT;
		} else if ((s->iov_flags & ZT_IOV_CAPPED) && n == s->budget &&
			   s->pos + off + n < s->syscall_pos + s->byte_count) {
			ev->flags = ZT_DATA_REST_GAP;
			s->iov_flags |= ZT_IOV_REST_GAP_SENT;
			zt_count_add(ZT_CNT_HEAD_CAP_SKIPPED,
				     s->syscall_pos + s->byte_count - (s->pos + off + n));
		}
		bpf_ringbuf_submit(ev, zt_wakeup_flag());
		zt_count(ZT_CNT_DATA_EVENTS);
		s->emitted++;
		s->captured += n;
		s->budget -= n;
		off += n;
	}
	s->pos += len;
	return 0;
}

#include "http1_body.bpf.h"

/* One iovec (number i) of zt_emit_iovecs. Sends read each iovec one ahead, so that an
 * HTTP/1 body following a whole response head is skipped: its bytes become a gap of known
 * length, not a copy. Global (verified once, so the caller's loop stays simple); nonzero
 * stops the walk. */
__noinline int zt_emit_iov(struct emit_state *s, __u64 iov_ptr, __u32 i, __u32 iovlen)
{
	__u64 base;
	__u32 n, next;

	if (!s)
		return 1;
	if (!(s->iov_flags & ZT_IOV_HAVE_NEXT) &&
	    bpf_probe_read_user(&s->next_iov, sizeof(s->next_iov),
				(void *)(iov_ptr + i * sizeof(struct iovec))))
		return 1;
	base = (__u64)s->next_iov.iov_base;
	n = s->next_iov.iov_len < s->iov_bytes ? s->next_iov.iov_len : s->iov_bytes;
	s->iov_bytes -= n;
	if (s->iov_flags & ZT_IOV_SKIP_NEXT) { /* a body: its length only */
		s->iov_flags &= ~(ZT_IOV_HAVE_NEXT | ZT_IOV_SKIP_NEXT);
		zt_count_add(ZT_CNT_BODY_BYTES_SKIPPED, n);
		s->pos += n;
		return 0;
	}
	s->iov_flags &= ~ZT_IOV_HAVE_NEXT;
	/* only when the head will be copied whole (not on muted, sizes-only connections) */
	if (s->direction == ZT_DIR_EGRESS && s->iov_bytes >= 8 && n >= 16 && n <= s->budget &&
	    i + 1 < iovlen &&
	    bpf_probe_read_user(&s->next_iov, sizeof(s->next_iov),
				(void *)(iov_ptr + (i + 1) * sizeof(struct iovec))) == 0) {
		s->iov_flags |= ZT_IOV_HAVE_NEXT;
		next = s->next_iov.iov_len < s->iov_bytes ? s->next_iov.iov_len : s->iov_bytes;
		if (next >= 8 && zt_body_follows(base, n, (__u64)s->next_iov.iov_base)) {
			s->iov_flags |= ZT_IOV_SKIP_NEXT;
			/* the syscall's (not only this message's) last bytes */
			if (s->pos + n + next == s->syscall_pos + s->byte_count)
				s->iov_flags |= ZT_IOV_REST_GAP;
		}
	}
	zt_emit_buf(s, base, n);
	s->iov_flags &= ~ZT_IOV_REST_GAP;
	return 0;
}

/* Hot path: the first `bytes` bytes spread over an iovec array, in order. Global, as
 * zt_emit_buf. */
__noinline int zt_emit_iovecs(struct emit_state *s, __u64 iov_ptr, __u32 iovlen, __u32 bytes)
{
	if (!s)
		return 0;
	s->iov_bytes = bytes;
	for (int i = 0; i < ZT_MAX_IOV; i++) {
		if (i >= iovlen || s->iov_bytes == 0)
			break;
		if (zt_emit_iov(s, iov_ptr, i, iovlen))
			break;
	}
	s->iov_flags &= ~(ZT_IOV_HAVE_NEXT | ZT_IOV_SKIP_NEXT);
	if (s->iov_bytes) { /* iovecs past ZT_MAX_IOV: their bytes become a gap */
		zt_count(ZT_CNT_IOV_OVERFLOW);
		s->pos += s->iov_bytes;
	}
	return 0;
}

/* Bytes a sendmmsg/recvmmsg moved: the sum of msg_len over the first `msgs` entries. */
static __always_inline __u64 zt_mmsg_bytes(__u64 vec, __u32 msgs)
{
	__u64 total = 0;

	for (int i = 0; i < ZT_MMSG_SCAN; i++) {
		__u32 len = 0;

		if (i >= msgs)
			break;
		bpf_probe_read_user(&len, sizeof(len),
				    (void *)(vec + i * sizeof(struct mmsghdr) +
					     __builtin_offsetof(struct mmsghdr, msg_len)));
		total += len;
	}
	if (msgs > ZT_MMSG_SCAN)
		zt_count(ZT_CNT_IOV_OVERFLOW);
	return total;
}

/* Trailer: the call's records are complete and the rest of its bytes are a gap. */
static __always_inline void zt_emit_trailer(struct emit_state *s)
{
	struct zt_data_event *ev;

	if (s->captured >= s->byte_count || (s->iov_flags & ZT_IOV_REST_GAP_SENT))
		return;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	zt_fill_header_at(&ev->hdr, ZT_EV_DATA, s->fd, s->conn_id, s->ts_ns);
	ev->syscall_pos = s->syscall_pos;
	ev->stream_pos = s->syscall_pos + s->byte_count;
	ev->byte_count = s->byte_count;
	ev->direction = s->direction;
	ev->source = s->source;
	ev->syscall = s->sys;
	bpf_ringbuf_submit(ev, zt_wakeup_flag());
	zt_count(ZT_CNT_DATA_EVENTS);
}

#include "h2_capture.bpf.h"
#include "muted_emit.bpf.h"

/* Hot path: one finished data syscall that returned ret on a tracked connection. */
/* Whether a syscall sends (its bytes are stamped at sys_enter) or receives (at sys_exit). */
static __always_inline bool zt_sends(__u8 sys)
{
	return sys == ZT_SYS_WRITE || sys == ZT_SYS_WRITEV || sys == ZT_SYS_SENDTO ||
	       sys == ZT_SYS_SENDMSG || sys == ZT_SYS_SENDMMSG || sys == ZT_SYS_SENDFILE ||
	       sys == ZT_SYS_SPLICE_WRITE;
}

/* ts_ns: when the bytes moved (sys_enter for sends, sys_exit for receives). */
/* *head: the syscall's first bytes as emit_state.head (0 when they were not captured). */
static __always_inline int zt_emit_syscall(struct conn_key *key, struct conn_state *st,
					   struct syscall_args *a, long ret, __u64 ts_ns, __u32 *head)
{
	struct emit_state s = {};
	struct user_msghdr msg;
	__u64 bytes = ret;
	bool muted;

	s.sys = a->sys;
	s.direction = zt_sends(a->sys) ? ZT_DIR_EGRESS : ZT_DIR_INGRESS;
	s.ts_ns = ts_ns;
	if (a->sys == ZT_SYS_SENDMMSG || a->sys == ZT_SYS_RECVMMSG)
		bytes = zt_mmsg_bytes(a->buf, ret);
	if (bytes == 0)
		return 0;
	if (st->tls) { /* ciphertext: the TLS uprobes deliver this connection's plaintext */
		if (s.direction == ZT_DIR_EGRESS)
			__sync_fetch_and_add(&st->send_pos, bytes);
		else
			__sync_fetch_and_add(&st->recv_pos, bytes);
		return 0;
	}
	s.conn_id = st->conn_id;
	s.fd = key->fd;
	s.byte_count = bytes;
	s.budget = capture_bytes;
	muted = zt_socket_muted(key, st);
	/* Sizes only, as userspace asked or as the syscall allows: no truncation. */
	if (muted || a->sys == ZT_SYS_SENDFILE ||
	    a->sys == ZT_SYS_SPLICE_READ || a->sys == ZT_SYS_SPLICE_WRITE) {
		s.budget = 0;
	} else if (st->head_cap && (s.direction == ZT_DIR_EGRESS) == st->head_cap_egress &&
		   bytes > st->head_cap && st->head_cap < s.budget && !st->h2_walked) {
		/* userspace's cap (HTTP/1 bodies past heads it knows fit): a gap, not a copy */
		s.budget = st->head_cap;
		s.iov_flags = ZT_IOV_CAPPED; /* the record that spends it counts what it left out */
	} else if (bytes > s.budget) {
		zt_count(ZT_CNT_CAPTURE_TRUNCATED);
	}
	if (s.direction == ZT_DIR_EGRESS)
		s.syscall_pos = __sync_fetch_and_add(&st->send_pos, bytes);
	else
		s.syscall_pos = __sync_fetch_and_add(&st->recv_pos, bytes);
	s.pos = s.syscall_pos;
	if (muted) { /* the close event has the totals: a record only now and then */
		if (zt_muted_record_due(st, ts_ns))
			zt_emit_trailer(&s);
		return 0;
	}
	if (zt_h2_emit(key, st, a, &s)) { /* HTTP/2: frame-aware capture */
		zt_emit_trailer(&s);
		return 0;
	}

	switch (a->sys) {
	case ZT_SYS_READ:
	case ZT_SYS_WRITE:
	case ZT_SYS_SENDTO:
	case ZT_SYS_RECVFROM:
		zt_emit_buf(&s, a->buf, bytes);
		break;
	case ZT_SYS_READV:
	case ZT_SYS_WRITEV:
		zt_emit_iovecs(&s, a->buf, a->vlen, bytes);
		break;
	case ZT_SYS_SENDMSG:
	case ZT_SYS_RECVMSG:
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a->buf) == 0)
			zt_emit_iovecs(&s, (__u64)msg.msg_iov, msg.msg_iovlen, bytes);
		break;
	case ZT_SYS_SENDMMSG:
	case ZT_SYS_RECVMMSG:
		for (int i = 0; i < ZT_MAX_MMSG; i++) {
			__u64 m = a->buf + i * sizeof(struct mmsghdr);
			struct mmsghdr mh;

			if (i >= ret)
				break;
			if (bpf_probe_read_user(&mh, sizeof(mh), (void *)m))
				break;
			zt_emit_iovecs(&s, (__u64)mh.msg_hdr.msg_iov, mh.msg_hdr.msg_iovlen,
				       mh.msg_len);
		}
		break;
	default: /* sendfile, splice: sizes only */
		break;
	}
	zt_emit_trailer(&s);
	*head = s.head;
	return 0;
}

#endif /* ZT_SOCKET_EMIT_BPF_H */
