/* --propagate-context, the kernel's knowledge of which request a thread serves: at the exit of
 * a read on a server-side connection that starts an HTTP/1 request head, thread_ctx[tid] gets
 * the request's trace id (its own traceparent's, else zt_ctx_trace_id() of the connection and
 * the read's stream position, which the agent gives the same request's root). A thread that
 * reads another request before it answered the first is an event loop: its context becomes
 * ambiguous (nothing is inserted for it) until it has answered what it read. The response
 * clears the context. Included by socket_trace.bpf.c after conn_track.bpf.h. */
#ifndef ZT_CTX_PROPAGATE_BPF_H
#define ZT_CTX_PROPAGATE_BPF_H

#include <zerotrace/ctx_hash.h>

#include "ctx_maps.bpf.h"
#include "sock_lookup.bpf.h"

const volatile __u8 propagate_ctx = 0; /* --propagate-context: the hooks below run */
const volatile __u64 ctx_salt = 0;     /* the agent's salt for zt_ctx_trace_id() */

/* The head of a read, copied out of user memory for the bpf_loop scan. */
struct ctx_read_buf {
	char data[ZT_CTX_HEAD_SCAN];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ctx_read_buf);
} ctx_read_bufs SEC(".maps");

/* The request head scanner's state. */
struct ctx_req_scan {
	struct ctx_read_buf *b; /* the buffer (looked up once, not per byte) */
	__u32 n;        /* bytes in the buffer */
	__u32 method;   /* letters of the method so far; ZT_CTX_HEAD_SCAN once it ended */
	__u32 line_end; /* index after the request line; 0 before */
	__u32 head_end; /* index after the head's blank line; 0 before */
	__u64 last;     /* the last 8 bytes, the newest lowest */
	__u32 tp_at;    /* index after "traceparent:"; 0: none */
	__u32 cl;       /* Content-Length */
	int k_tp, k_cl, k_te; /* bytes of each name matched since the line began; -1: not it */
	__u8 in_cl;     /* reading Content-Length digits */
	__u8 unsure;    /* Transfer-Encoding, or a Content-Length that is not plain digits */
	__u8 bad;       /* not an HTTP/1 request line */
	__u8 pad;
};

static __always_inline char zt_ctx_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Matches one more byte of a header name (with its ':'); true when the whole name matched. */
static __always_inline bool zt_ctx_name(int *k, const char *name, int len, char c)
{
	if (*k < 0 || *k >= len)
		return false;
	if (zt_ctx_lower(c) != name[*k]) {
		*k = -1;
		return false;
	}
	if (++*k < len)
		return false;
	*k = -1;
	return true;
}

static long zt_ctx_scan_byte(__u32 i, void *ctx)
{
	const char tp[] = "traceparent:", cl[] = "content-length:", te[] = "transfer-encoding:";
	struct ctx_req_scan *s = ctx;
	struct ctx_read_buf *b = s->b;
	char c;

	if (!b || i >= s->n || i >= ZT_CTX_HEAD_SCAN)
		return 1;
	asm volatile("" : "+r"(i)); /* keep the mask for the verifier */
	c = b->data[i & (ZT_CTX_HEAD_SCAN - 1)];
	s->last = (s->last << 8) | (__u8)c;
	if (s->method < ZT_CTX_HEAD_SCAN) { /* "GET", "POST", ... then one space */
		if (c == ' ' && s->method > 0 && s->method <= 10) {
			s->method = ZT_CTX_HEAD_SCAN;
			return 0;
		}
		if (c < 'A' || c > 'Z') {
			s->bad = 1;
			return 1;
		}
		s->method++;
		return 0;
	}
	if (c == '\n') {
		if (!s->line_end) {
			if ((s->last & 0xffffffffff00ffffULL) != 0x54502f312e000d0aULL) {
				s->bad = 1; /* not "...HTTP/1.x\r\n" */
				return 1;
			}
			s->line_end = i + 1;
		} else if ((s->last & 0xffffff) == 0x0a0d0a) {
			s->head_end = i + 1;
			return 1;
		}
		s->k_tp = s->k_cl = s->k_te = 0;
		s->in_cl = 0;
		return 0;
	}
	if (!s->line_end)
		return 0;
	if (s->in_cl) {
		if (c >= '0' && c <= '9' && s->cl < (1u << 28))
			s->cl = s->cl * 10 + (c - '0');
		else if (c != ' ' && c != '\t' && c != '\r')
			s->unsure = 1;
		return 0;
	}
	if (zt_ctx_name(&s->k_tp, tp, sizeof(tp) - 1, c) && !s->tp_at)
		s->tp_at = i + 1;
	if (zt_ctx_name(&s->k_cl, cl, sizeof(cl) - 1, c))
		s->in_cl = 1;
	if (zt_ctx_name(&s->k_te, te, sizeof(te) - 1, c))
		s->unsure = 1;
	return 0;
}

static __always_inline int zt_ctx_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* b->data[i], i masked into the buffer (the barrier keeps clang from dropping the mask). */
static __always_inline char zt_ctx_at(struct ctx_read_buf *b, __u32 i)
{
	asm volatile("" : "+r"(i));
	return b->data[i & (ZT_CTX_HEAD_SCAN - 1)];
}

/* The trace id of a valid "00-<32 hex>-<16 hex>-<2 hex>" value at b[at..] (leading blanks
 * skipped) within the head; false if there is none (then the request is a root). */
static __always_inline bool zt_ctx_parse_tp(struct ctx_read_buf *b, __u32 at, __u32 head_end,
					    __u8 out[16])
{
	__u8 any = 0, span_any = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = zt_ctx_at(b, at);

		if (c == ' ' || c == '\t')
			at++;
	}
	if (at + 55 > head_end || at + 55 > ZT_CTX_HEAD_SCAN)
		return false;
	if (zt_ctx_at(b, at) != '0' || zt_ctx_at(b, at + 1) != '0' || zt_ctx_at(b, at + 2) != '-' ||
	    zt_ctx_at(b, at + 35) != '-' || zt_ctx_at(b, at + 52) != '-')
		return false;
	for (i = 0; i < 16; i++) {
		int hi = zt_ctx_hexval(zt_ctx_at(b, at + 3 + 2 * i));
		int lo = zt_ctx_hexval(zt_ctx_at(b, at + 4 + 2 * i));

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (hi << 4) | lo;
		any |= out[i];
	}
	for (i = 0; i < 16; i++) {
		int v = zt_ctx_hexval(zt_ctx_at(b, at + 36 + i));

		if (v < 0)
			return false;
		span_any |= v;
	}
	for (i = 53; i < 55; i++) {
		if (zt_ctx_hexval(zt_ctx_at(b, at + i)) < 0)
			return false;
	}
	return any && span_any;
}

/* The IPv4 tuple of the connection fd names, client first (the caller is the peer). */
static __always_inline bool zt_ctx_server_tuple(__u32 fd, __u32 *cip, __u16 *cport, __u32 *sip,
						__u16 *sport)
{
	struct file *f = zt_fd_to_file(fd);
	struct sock *sk = f ? zt_file_to_tcp_sock(f) : NULL;
	struct sock_common *skc;
	__be32 l, r;

	if (!sk)
		return false;
	skc = &sk->__sk_common;
	if (BPF_CORE_READ(skc, skc_family) != ZT_AF_INET)
		return false;
	l = BPF_CORE_READ(skc, skc_rcv_saddr);
	r = BPF_CORE_READ(skc, skc_daddr);
	*sip = __builtin_bswap32(l);
	*cip = __builtin_bswap32(r);
	*sport = BPF_CORE_READ(skc, skc_num);
	*cport = __builtin_bswap16(BPF_CORE_READ(skc, skc_dport));
	return true;
}

/* A read of ret bytes at stream position pos on server connection conn_id (fd) whose first
 * byte is an upper-case letter: sets or spoils the thread's context. */
static __always_inline void zt_ctx_on_request_read(__u32 fd, __u64 conn_id, __u64 buf, __u64 ret,
						   __u64 pos)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), key = 0;
	struct ctx_req_scan s = {.k_tp = -1, .k_cl = -1, .k_te = -1};
	struct ctx_read_buf *b = bpf_map_lookup_elem(&ctx_read_bufs, &key);
	struct zt_thread_ctx *c, next = {};
	__u32 n = ret < ZT_CTX_HEAD_SCAN ? ret : ZT_CTX_HEAD_SCAN;
	__u32 cip = 0, sip = 0;
	__u16 cport = 0, sport = 0;
	bool certain;

	if (!b || n < 16)
		return;
	if (n == ZT_CTX_HEAD_SCAN) {
		if (bpf_probe_read_user(b->data, ZT_CTX_HEAD_SCAN, (void *)buf))
			return;
	} else if (bpf_probe_read_user(b->data, n & (ZT_CTX_HEAD_SCAN - 1), (void *)buf)) {
		return;
	}
	s.n = n;
	s.b = b;
	bpf_loop(ZT_CTX_HEAD_SCAN, zt_ctx_scan_byte, &s, 0);
	if (s.bad || !s.line_end)
		return; /* not a request head (a body that starts with a capital) */
	/* One whole request and nothing of the next: the read is that request's alone. */
	certain = s.head_end && !s.unsure && ret <= (__u64)s.head_end + s.cl;
	c = bpf_map_lookup_elem(&thread_ctx, &tid);
	next.read_ns = bpf_ktime_get_ns();
	if (c && c->open && next.read_ns - c->read_ns <= ZT_CTX_MAX_AGE_NS) {
		/* it has not answered what it read: an event loop */
		c->state = ZT_CTX_AMBIGUOUS;
		c->open++;
		c->read_ns = next.read_ns; /* a busy loop's context never ages out */
		zt_ctx_count(ZT_CTX_CNT_EVENT_LOOP);
		return;
	}
	next.conn_id = conn_id; /* (a context past its age is forgotten: not an event loop) */
	next.open = 1;
	if (!certain) {
		next.state = ZT_CTX_AMBIGUOUS;
		zt_ctx_count(ZT_CTX_CNT_UNCERTAIN);
	} else if (s.tp_at && zt_ctx_parse_tp(b, s.tp_at, s.head_end, next.trace_id)) {
		next.state = ZT_CTX_VALID;
		zt_ctx_count(ZT_CTX_CNT_FROM_TRACEPARENT);
	} else if (zt_ctx_server_tuple(fd, &cip, &cport, &sip, &sport)) {
		zt_ctx_trace_id(ctx_salt, cip, cport, sip, sport, pos, next.trace_id);
		next.state = ZT_CTX_VALID;
	} else {
		next.state = ZT_CTX_AMBIGUOUS; /* IPv6: no id the agent would agree on */
		zt_ctx_count(ZT_CTX_CNT_UNCERTAIN);
	}
	if (next.state == ZT_CTX_VALID)
		zt_ctx_count(ZT_CTX_CNT_SET);
	bpf_map_update_elem(&thread_ctx, &tid, &next, BPF_ANY);
}

/* A write on a server connection: the response of the thread's request clears its context;
 * an event loop's context clears once it has started as many responses as it read requests. */
static __always_inline void zt_ctx_on_response_write(__u64 conn_id, __u32 head)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct zt_thread_ctx *c = bpf_map_lookup_elem(&thread_ctx, &tid);
	bool response_start = (head & ZT_HEAD_CAPTURED) && (head & 0xffffff) == 0x545448; /* HTT */

	if (!c)
		return;
	if (c->state == ZT_CTX_VALID && c->conn_id == conn_id) {
		bpf_map_delete_elem(&thread_ctx, &tid);
		zt_ctx_count(ZT_CTX_CNT_CLEARED);
		return;
	}
	if (!response_start)
		return;
	if (c->open > 1) {
		c->open--;
		return;
	}
	bpf_map_delete_elem(&thread_ctx, &tid);
	zt_ctx_count(ZT_CTX_CNT_CLEARED);
}

/* Hot path with --propagate-context: one data syscall of ret bytes on a tracked connection,
 * after its emit (st->recv_pos already counts it); fd_sys is fd << 8 | enum zt_syscall, head
 * as zt_emit_syscall's. A global function: the verifier checks it once, apart from the emit
 * path. */
__noinline int zt_ctx_on_syscall(struct conn_state *st, __u64 fd_sys, __u64 buf, __u64 ret,
				 __u32 head)
{
	__u32 fd = fd_sys >> 8, sys = fd_sys & 0xff;
	__u8 first = head;

	if (!st || st->role != ZT_ROLE_SERVER || st->tls)
		return 0;
	if (sys == ZT_SYS_READ || sys == ZT_SYS_RECVFROM) {
		if ((head & ZT_HEAD_CAPTURED) && first >= 'A' && first <= 'Z' && st->recv_pos >= ret)
			zt_ctx_on_request_read(fd, st->conn_id, buf, ret, st->recv_pos - ret);
	} else if (sys == ZT_SYS_WRITE || sys == ZT_SYS_SENDTO || sys == ZT_SYS_WRITEV ||
		   sys == ZT_SYS_SENDMSG) {
		zt_ctx_on_response_write(st->conn_id, head);
	}
	return 0;
}

#endif /* ZT_CTX_PROPAGATE_BPF_H */
