/* HTTP/2 capture policy: on a connection direction that opens with the client preface or a
 * SETTINGS frame, walk the 9-byte frame headers and always capture frame headers and whole
 * non-DATA frames (HPACK state does not survive a lost HEADERS/CONTINUATION byte), DATA
 * bodies only within the syscall's capture budget (their sizes stay exact).
 * Included by socket_emit.bpf.h; only objects that define ZT_H2_CAPTURE get the walk. */
#ifndef ZT_H2_CAPTURE_BPF_H
#define ZT_H2_CAPTURE_BPF_H

#ifdef ZT_H2_CAPTURE

#define ZT_H2_PREFACE_LEN 24
#define ZT_H2_FRAME_HDR 9
#define ZT_H2_DATA 0
#define ZT_H2_SETTINGS 4
#define ZT_H2_F_PADDED 0x8
/* Walk steps per user buffer (a frame takes up to three): more frames than that is lost. */
#define ZT_H2_STEPS 96

/* Where a direction's walk stands. */
enum zt_h2_walk_state {
	ZT_H2_OFF = 0,  /* not known to be HTTP/2: plain capture */
	ZT_H2_WALK = 1, /* frame boundaries known */
	ZT_H2_LOST = 2, /* boundaries lost (header split over buffers, too many frames): plain */
};

/* One direction's frame walk, in stream positions. */
struct h2_dir {
	__u64 next_hdr;   /* the next frame header */
	__u64 must_until; /* bytes before it belong to a non-DATA frame (or a pad length): captured */
	__u64 data_until; /* bytes before it (from must_until) are a DATA body: within budget */
	__u64 walked;     /* the walk has seen the stream up to here */
	__u64 acc;        /* the first 5 bytes of a header split over buffers, big-endian */
	__u64 start, end; /* the user buffer being walked */
	__u64 cur;        /* the walk's position in it */
	__u64 run, run_end; /* bytes to keep not yet written, a contiguous run */
	__u32 have;       /* bytes of the header at next_hdr seen so far (< 9) */
	__u32 state;      /* enum zt_h2_walk_state */
	__u32 budget;     /* DATA body bytes the current syscall may still capture */
	__u32 pad;
	__u64 done_run, done_end; /* zt_h2_step returned ZT_H2_STEP_FLUSH: the run it ended */
};

struct h2_walk {
	__u64 conn_id;        /* the connection the walk belongs to (fds are reused) */
	struct h2_dir dir[2]; /* by enum zt_direction */
};

/* Frame walks of HTTP/2 connections, keyed like conns (the event fd). LRU: a walk that
 * is evicted only makes its connection's capture plain again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct conn_key);
	__type(value, struct h2_walk);
} h2_walks SEC(".maps");

static const struct h2_walk zt_h2_empty;

/* Walks of socket bytes and of TLS plaintext are counted apart. */
static __always_inline void zt_h2_count(struct emit_state *s, bool lost)
{
	if (s->source == ZT_SRC_TLS)
		zt_count(lost ? ZT_CNT_H2_TLS_WALK_LOST : ZT_CNT_H2_TLS_WALKS);
	else
		zt_count(lost ? ZT_CNT_H2_WALK_LOST : ZT_CNT_H2_WALKS);
}

/* Copies [run, run_end) of the buffer that starts at stream position start. */
static __always_inline void zt_h2_flush(struct emit_state *s, __u64 ubuf, __u64 start, __u64 run,
					__u64 run_end)
{
	if (run_end <= run)
		return;
	s->pos = run;
	s->budget = run_end - run;
	zt_emit_buf(s, ubuf + (run - start), run_end - run);
}

/* Reads the header bytes [d->have, d->have + n) at ubuf into d->acc (only the first five
 * matter: length, type, flags); false if the user memory could not be read. */
static __always_inline bool zt_h2_read_hdr(struct h2_dir *d, __u64 ubuf, __u64 n)
{
	__u8 b[5];

	if (d->have == 0 && n == ZT_H2_FRAME_HDR) { /* the whole header in this buffer */
		if (bpf_probe_read_user(b, sizeof(b), (void *)ubuf))
			return false;
		d->acc = (__u64)b[0] << 32 | (__u64)b[1] << 24 | (__u64)b[2] << 16 |
			 (__u64)b[3] << 8 | b[4];
		return true;
	}
	for (__u32 j = 0; j < 5; j++) { /* split over buffers: byte by byte */
		__u8 c;

		if (j < d->have)
			continue;
		if (j >= d->have + n)
			break;
		if (bpf_probe_read_user(&c, 1, (void *)(ubuf + (j - d->have))))
			return false;
		d->acc |= (__u64)c << (8 * (4 - j));
	}
	return true;
}

/* zt_h2_step's results besides 0 (go on). */
#define ZT_H2_STEP_DONE 1  /* the buffer is done, or the walk lost */
#define ZT_H2_STEP_FLUSH 2 /* go on once [d->done_run, d->done_end) is written */

/* Hot path: one step of the walk over the buffer at ubuf (stream positions [d->start, d->end)):
 * the bytes at d->cur up to the next boundary, kept or skipped. Global, and its state in *d,
 * so the verifier checks it once, not once per step with every range it could have. It
 * writes nothing itself: the caller does (ZT_H2_STEP_FLUSH), so that zt_emit_buf is not one
 * call deeper on a chain at the stack's 512-byte limit. */
__noinline int zt_h2_step(struct emit_state *s, struct h2_dir *d, __u64 ubuf)
{
	__u64 cur, end, take, keep, flen, body;
	int ret = 0;

	if (!s || !d)
		return ZT_H2_STEP_DONE;
	cur = d->cur;
	end = d->end;
	if (cur >= end || d->state != ZT_H2_WALK)
		return ZT_H2_STEP_DONE;
	if (cur < d->must_until) {
		take = (d->must_until < end ? d->must_until : end) - cur;
		if (take > ZT_MAX_CAPTURE)
			take = ZT_MAX_CAPTURE;
		keep = take;
	} else if (cur < d->data_until) {
		take = (d->data_until < end ? d->data_until : end) - cur;
		keep = take < d->budget ? take : d->budget;
		d->budget -= keep;
	} else if (cur == d->next_hdr + d->have && d->have < ZT_H2_FRAME_HDR) {
		take = ZT_H2_FRAME_HDR - d->have;
		if (take > end - cur)
			take = end - cur;
		keep = take; /* frame headers are always captured */
		if (!zt_h2_read_hdr(d, ubuf + (cur - d->start), take)) {
			zt_count(ZT_CNT_READ_USER_FAILED);
			d->state = ZT_H2_LOST;
			return ZT_H2_STEP_DONE;
		}
		d->have += take;
		if (d->have >= ZT_H2_FRAME_HDR) {
			flen = d->acc >> 16;
			body = d->next_hdr + ZT_H2_FRAME_HDR;
			d->next_hdr = body + flen;
			d->data_until = d->next_hdr;
			d->must_until = d->next_hdr;
			if (((d->acc >> 8) & 0xff) == ZT_H2_DATA) /* the pad length, if any */
				d->must_until = body + ((d->acc & ZT_H2_F_PADDED) && flen ? 1 : 0);
			d->have = 0;
			d->acc = 0;
		}
	} else { /* the walk and the stream disagree */
		d->state = ZT_H2_LOST;
		return ZT_H2_STEP_DONE;
	}
	if (keep) {
		/* one record per contiguous run, each at most what zt_emit_buf copies */
		if (d->run_end != cur || d->run_end - d->run + keep > ZT_MAX_CAPTURE) {
			d->done_run = d->run;
			d->done_end = d->run_end;
			ret = ZT_H2_STEP_FLUSH;
			d->run = cur;
		}
		d->run_end = cur + keep;
	}
	d->cur = cur + take;
	return ret;
}

/* Hot path: emits what the walk d keeps of one user buffer of len bytes at s->pos. Global. */
__noinline int zt_h2_buf(struct emit_state *s, struct h2_dir *d, __u64 ubuf, __u32 len)
{
	bool walking;

	if (!s || !d)
		return 0;
	walking = d->state == ZT_H2_WALK;
	d->start = s->pos;
	d->end = s->pos + len;
	d->cur = d->start;
	d->run = 0;
	d->run_end = 0;
	for (int i = 0; i < ZT_H2_STEPS; i++) {
		int step = zt_h2_step(s, d, ubuf);

		if (step == ZT_H2_STEP_FLUSH)
			zt_h2_flush(s, ubuf, d->start, d->done_run, d->done_end);
		else if (step)
			break;
	}
	if (d->cur < d->end && d->state == ZT_H2_WALK) /* more frames than steps */
		d->state = ZT_H2_LOST;
	if (walking && d->state == ZT_H2_LOST)
		zt_h2_count(s, true);
	zt_h2_flush(s, ubuf, d->start, d->run, d->run_end);
	d->walked = d->end;
	s->pos = d->end;
	return 0;
}

/* Hot path: the first `bytes` bytes over an iovec array, walked in order. Global. */
__noinline int zt_h2_iovecs(struct emit_state *s, struct h2_dir *d, __u64 iov_ptr, __u32 iovlen,
			    __u32 bytes)
{
	struct iovec iov;

	if (!s || !d)
		return 0;
	for (int i = 0; i < ZT_MAX_IOV; i++) {
		__u32 n;

		if (i >= iovlen || bytes == 0)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iov_ptr + i * sizeof(iov))))
			break;
		n = iov.iov_len < bytes ? iov.iov_len : bytes;
		zt_h2_buf(s, d, (__u64)iov.iov_base, n);
		bytes -= n;
	}
	if (bytes) { /* iovecs past ZT_MAX_IOV: a gap, and the boundaries in it unknown */
		zt_count(ZT_CNT_IOV_OVERFLOW);
		if (d->state == ZT_H2_WALK)
			zt_h2_count(s, true);
		d->state = ZT_H2_LOST;
		s->pos += bytes;
	}
	return 0;
}

/* msg_iov and msg_iovlen of a user msghdr (not the whole struct: the stack is short). */
static __always_inline long zt_h2_read_msghdr(__u64 msg, __u64 *iov_ptr, __u64 *iovlen)
{
	if (bpf_probe_read_user(iov_ptr, sizeof(*iov_ptr),
				(void *)(msg + __builtin_offsetof(struct user_msghdr, msg_iov))))
		return -1;
	return bpf_probe_read_user(iovlen, sizeof(*iovlen),
				   (void *)(msg + __builtin_offsetof(struct user_msghdr, msg_iovlen)));
}

/* The first user buffer of a data syscall and its length. */
static __always_inline __u64 zt_h2_first_buf(struct syscall_args *a, __u64 *len)
{
	struct iovec iov;
	__u64 iov_ptr = a->buf, iovlen = 0;

	switch (a->sys) {
	case ZT_SYS_READ:
	case ZT_SYS_WRITE:
	case ZT_SYS_SENDTO:
	case ZT_SYS_RECVFROM:
		return a->buf;
	case ZT_SYS_SENDMSG:
	case ZT_SYS_RECVMSG:
		if (zt_h2_read_msghdr(a->buf, &iov_ptr, &iovlen) || iovlen == 0)
			return 0;
		/* fall through */
	case ZT_SYS_READV:
	case ZT_SYS_WRITEV:
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)iov_ptr))
			return 0;
		if (iov.iov_len < *len)
			*len = iov.iov_len;
		return (__u64)iov.iov_base;
	default:
		return 0;
	}
}

/* A direction's first bytes, len of them at ubuf: the client preface (frames follow it) or a
 * SETTINGS frame (the server's first frame, or the client's after the preface). Returns where
 * frames start, or -1 when the bytes are not HTTP/2. */
static __always_inline long zt_h2_opening(__u64 ubuf, __u64 len)
{
	static const char preface[ZT_H2_PREFACE_LEN] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	char b[ZT_H2_PREFACE_LEN] = {};
	__u32 flen;

	if (!ubuf || len < ZT_H2_FRAME_HDR)
		return -1;
	if (bpf_probe_read_user(b, len < sizeof(b) ? ZT_H2_FRAME_HDR : sizeof(b), (void *)ubuf))
		return -1;
	if (len >= sizeof(b)) {
		bool same = true;

		for (int i = 0; i < ZT_H2_PREFACE_LEN; i++)
			same &= b[i] == preface[i];
		if (same)
			return ZT_H2_PREFACE_LEN;
	}
	flen = (__u32)(__u8)b[0] << 16 | (__u32)(__u8)b[1] << 8 | (__u8)b[2];
	if (b[3] == ZT_H2_SETTINGS && b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 0 &&
	    b[8] == 0 && flen % 6 == 0 && flen <= 6 * 32)
		return 0;
	return -1;
}

/* The walk of s's direction if it takes these bytes: the walk that follows them, or a new one
 * when they open the direction with HTTP/2. a: the syscall, or NULL for TLS plaintext at
 * tls_buf (one buffer, s->byte_count bytes). NULL: plain capture. */
static __always_inline struct h2_dir *zt_h2_follow(struct conn_key *key, struct conn_state *st,
						   struct syscall_args *a, __u64 tls_buf,
						   struct emit_state *s)
{
	bool unfollowed = a && (a->sys == ZT_SYS_SENDMMSG || a->sys == ZT_SYS_RECVMMSG);
	__u64 ubuf = tls_buf, len = s->byte_count;
	struct h2_walk *w;
	struct h2_dir *d;
	long first;

	/* Most calls: no walk and none can start here, so no map lookup (it can only find none). */
	if (!st->h2_walked && (s->syscall_pos != 0 || s->budget == 0 || unfollowed))
		return NULL;
	w = bpf_map_lookup_elem(&h2_walks, key);
	if (w && w->conn_id != st->conn_id)
		w = NULL; /* an earlier connection's walk on a reused fd */
	if (!w || w->dir[s->direction & 1].state == ZT_H2_OFF) {
		if (s->syscall_pos != 0 || s->budget == 0 || unfollowed)
			return NULL;
		if (a)
			ubuf = zt_h2_first_buf(a, &len);
		first = zt_h2_opening(ubuf, len);
		if (first < 0)
			return NULL;
		st->h2_walked = 1; /* before the entry exists: a reader never misses it */
		if (!w) {
			/* from a zero value in .rodata: the stack is short */
			if (bpf_map_update_elem(&h2_walks, key, &zt_h2_empty, BPF_ANY))
				return NULL;
			w = bpf_map_lookup_elem(&h2_walks, key);
			if (!w)
				return NULL;
			w->conn_id = st->conn_id;
		}
		d = &w->dir[s->direction & 1];
		d->next_hdr = first;
		d->must_until = first; /* the preface is kept whole */
		d->data_until = first;
		d->walked = 0;
		d->run = 0;
		d->run_end = 0;
		d->have = 0;
		d->acc = 0;
		d->state = ZT_H2_WALK;
		zt_h2_count(s, false);
	}
	d = &w->dir[s->direction & 1];
	if (d->state != ZT_H2_WALK)
		return NULL;
	if (s->budget == 0 || unfollowed || s->syscall_pos != d->walked) {
		/* muted, or a call the walk does not follow: the boundaries are lost */
		d->state = ZT_H2_LOST;
		zt_h2_count(s, true);
		return NULL;
	}
	d->budget = s->budget;
	return d;
}

/* Hot path, from zt_emit_syscall once s is set up: 1 when the syscall's bytes were emitted
 * by the frame walk (the caller adds only the trailer). Global: its branches would multiply
 * the paths the verifier walks through the caller. */
__noinline int zt_h2_emit(struct conn_key *key, struct conn_state *st, struct syscall_args *a,
			  struct emit_state *s)
{
	__u64 iov_ptr, iovlen;
	struct h2_dir *d;

	if (!key || !st || !a || !s)
		return 0;
	d = zt_h2_follow(key, st, a, 0, s);
	if (!d)
		return false;
	switch (a->sys) {
	case ZT_SYS_READ:
	case ZT_SYS_WRITE:
	case ZT_SYS_SENDTO:
	case ZT_SYS_RECVFROM:
		zt_h2_buf(s, d, a->buf, s->byte_count);
		return true;
	case ZT_SYS_READV:
	case ZT_SYS_WRITEV:
		zt_h2_iovecs(s, d, a->buf, a->vlen, s->byte_count);
		return true;
	case ZT_SYS_SENDMSG:
	case ZT_SYS_RECVMSG:
		if (zt_h2_read_msghdr(a->buf, &iov_ptr, &iovlen) == 0)
			zt_h2_iovecs(s, d, iov_ptr, iovlen, s->byte_count);
		else {
			d->state = ZT_H2_LOST;
			zt_h2_count(s, true);
		}
		return true;
	default:
		return false;
	}
}

/* Hot path, from the TLS uretprobe once s is set up: 1 when the plaintext at ubuf (one
 * buffer, s->byte_count bytes, its own stream positions) was emitted by the frame walk. A TLS
 * read returns at most one record, so a walk of one buffer has steps enough. Global. */
__noinline int zt_h2_emit_tls(struct conn_key *key, struct conn_state *st, __u64 ubuf,
			      struct emit_state *s)
{
	struct h2_dir *d;

	if (!key || !st || !s)
		return 0;
	d = zt_h2_follow(key, st, NULL, ubuf, s);
	if (!d)
		return false;
	zt_h2_buf(s, d, ubuf, s->byte_count);
	return true;
}

#else /* !ZT_H2_CAPTURE: the TLS objects capture plaintext their own way */

static __always_inline int zt_h2_emit(struct conn_key *key, struct conn_state *st,
				      struct syscall_args *a, struct emit_state *s)
{
	return 0;
}

#endif /* ZT_H2_CAPTURE */
#endif /* ZT_H2_CAPTURE_BPF_H */
