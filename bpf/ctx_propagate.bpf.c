// SPDX-License-Identifier: GPL-2.0
/* Cross-node context propagation (--propagate-context), the wire half: a `traceparent` header
 * inserted into HTTP/1 requests that leave a client socket of the scoped network namespace,
 * when the sending thread has a context and the request carries none.
 *
 * sock_ops adds each actively opened IPv4 TCP socket of the namespace (not to itself or to
 * loopback, unless allow_local) to ctx_socks; the sk_msg program runs on every sendmsg of those
 * sockets. The context of a thread is in thread_ctx (set by socket_trace at the thread's read
 * of a server-side request, ctx_propagate.bpf.h); without a valid one, or for anything but a
 * whole HTTP/1 request head at the start of the message, the bytes pass untouched. Each
 * insertion is reported to the agent (ZT_EV_CTX) with the span id chosen here. */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ctx_maps.bpf.h"

const volatile __u32 filter_netns = 0; /* only sockets of this netns (inode); 0: any */
const volatile __u8 allow_local = 0;   /* 1: also loopback and same-address peers (tests) */

/* Client sockets whose requests may carry a context, keyed by socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} ctx_socks SEC(".maps");

/* ZT_EV_CTX records; the agent shares socket_trace's ring buffer, so a record comes before the
 * data record of the request it names. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

SEC("sockops")
int zt_ctx_sockops(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk;
	struct tcp_sock *tp;
	__u64 cookie;

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || skops->family != 2 /* AF_INET */)
		return 1;
	if (!allow_local && (skops->remote_ip4 == skops->local_ip4 ||
			     (skops->remote_ip4 & 0xff) == 127))
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 1;
	if (filter_netns &&
	    tp->inet_conn.icsk_inet.sk.__sk_common.skc_net.net->ns.inum != filter_netns)
		return 1;
	cookie = bpf_get_socket_cookie(skops);
	if (bpf_sock_hash_update(skops, &ctx_socks, &cookie, BPF_ANY))
		zt_ctx_count(ZT_CTX_CNT_SOCKHASH_FULL);
	return 1;
}

static __always_inline char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The head being scanned, copied out of the message (bpf_loop callbacks take no packet
 * pointers), and the scanner's state. */
struct head_buf {
	char data[ZT_CTX_HEAD_SCAN];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct head_buf);
} head_bufs SEC(".maps");

struct head_scan {
	__u32 n;        /* bytes in the buffer */
	__u32 method;   /* letters of the method so far; ZT_CTX_HEAD_SCAN once it ended */
	__u32 line_end; /* index after the request line's "\r\n"; 0 before */
	__u32 result;   /* the insertion point, once found; 0: do not insert */
	__u64 last;     /* the last 8 bytes, the newest lowest */
	int k;          /* bytes of "traceparent:" matched since the line began; -1: not this line */
	__u32 pad;
};

/* One byte of the head; 1 stops the scan (s->result is then the answer). */
static long scan_byte(__u32 i, void *ctx)
{
	const char tp[] = "traceparent:";
	struct head_scan *s = ctx;
	__u32 key = 0;
	struct head_buf *b = bpf_map_lookup_elem(&head_bufs, &key);
	char c;

	if (!b || i >= s->n || i >= ZT_CTX_HEAD_SCAN)
		return 1; /* the head goes on past what was scanned: not certain */
	asm volatile("" : "+r"(i)); /* keep the mask: the verifier needs it, clang thinks not */
	c = b->data[i & (ZT_CTX_HEAD_SCAN - 1)];
	s->last = (s->last << 8) | (__u8)c;
	if (s->method < ZT_CTX_HEAD_SCAN) { /* in the method: "GET", "POST", ... */
		if (c == ' ') {
			if (s->method == 0 || s->method > 10)
				return 1;
			s->method = ZT_CTX_HEAD_SCAN;
			return 0;
		}
		if (c < 'A' || c > 'Z')
			return 1;
		s->method++;
		return 0;
	}
	if (c == '\n') {
		if (!s->line_end) {
			/* "...HTTP/1.x\r\n": the last 8 bytes are "TP/1.x\r\n" */
			if ((s->last & 0xffffffffff00ffffULL) != 0x54502f312e000d0aULL)
				return 1;
			s->line_end = i + 1;
		} else if ((s->last & 0xffffff) == 0x0a0d0a) {
			s->result = s->line_end; /* "\n\r\n": the head ends */
			return 1;
		}
		s->k = 0;
		return 0;
	}
	if (s->k >= 0 && s->k < (int)sizeof(tp) - 1) {
		if (lower(c) != tp[s->k])
			s->k = -1;
		else if (++s->k == (int)sizeof(tp) - 1)
			return 1; /* the caller propagates its own context */
	}
	return 0;
}

/* Where the request line of an HTTP/1 request head at the message's start ends (the index
 * after its "\r\n"), if the whole head (up to "\r\n\r\n") is within the first n bytes and
 * has no traceparent header; 0 otherwise. */
static __always_inline __u32 insertion_point(const char *data, const char *end, __u32 n)
{
	struct head_scan s = {.n = n, .k = -1};
	__u32 key = 0, i;
	struct head_buf *b = bpf_map_lookup_elem(&head_bufs, &key);

	if (!b)
		return 0;
	for (i = 0; i < ZT_CTX_HEAD_SCAN; i++) {
		if (data + i + 1 > end)
			break;
		b->data[i] = data[i];
	}
	if (i < n)
		s.n = i;
	bpf_loop(ZT_CTX_HEAD_SCAN, scan_byte, &s, 0);
	return s.result;
}

static __always_inline char hex(__u8 v)
{
	return v < 10 ? '0' + v : 'a' + v - 10;
}

/* A span id (never all-zero) for the CLIENT span of the request being sent. */
static __always_inline void new_span_id(__u8 out[8])
{
	__u64 v = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
	int i;

	if (!v)
		v = 1;
	for (i = 0; i < 8; i++)
		out[i] = (__u8)(v >> (56 - 8 * i));
}

SEC("sk_msg")
int zt_ctx_msg(struct sk_msg_md *msg)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct zt_thread_ctx *c = bpf_map_lookup_elem(&thread_ctx, &tid);
	struct zt_ctx_event *ev;
	__u32 n, at, i;
	char *data, *end;
	__u64 now;

	if (!c)
		return SK_PASS;
	if (c->state != ZT_CTX_VALID) {
		zt_ctx_count(ZT_CTX_CNT_AMBIGUOUS);
		return SK_PASS;
	}
	now = bpf_ktime_get_ns();
	if (now - c->read_ns > ZT_CTX_MAX_AGE_NS) {
		zt_ctx_count(ZT_CTX_CNT_STALE);
		return SK_PASS;
	}
	n = msg->size < ZT_CTX_HEAD_SCAN ? msg->size : ZT_CTX_HEAD_SCAN;
	if (n < 16 || bpf_msg_pull_data(msg, 0, n, 0))
		return SK_PASS;
	data = msg->data;
	end = msg->data_end;
	at = insertion_point(data, end, n);
	if (!at) {
		zt_ctx_count(ZT_CTX_CNT_NOT_INSERTED);
		return SK_PASS;
	}
	/* The record first: an insertion the agent cannot hear of would name a span it lacks. */
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		zt_ctx_count(ZT_CTX_CNT_RECORD_LOST);
		return SK_PASS;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->hdr.type = ZT_EV_CTX;
	ev->hdr.tgid = id >> 32;
	ev->hdr.tid = tid;
	ev->hdr.ts_ns = now;
	ev->local_ip = bpf_ntohl(msg->local_ip4);
	ev->remote_ip = bpf_ntohl(msg->remote_ip4);
	ev->local_port = msg->local_port;
	ev->remote_port = bpf_ntohs((__u16)(msg->remote_port >> 16)); /* sk_msg: the upper half */
	__builtin_memcpy(ev->trace_id, c->trace_id, 16);
	new_span_id(ev->span_id);
	if (at > ZT_CTX_HEAD_SCAN || bpf_msg_push_data(msg, at, ZT_CTX_HEADER_LEN, 0) ||
	    bpf_msg_pull_data(msg, at, at + ZT_CTX_HEADER_LEN, 0)) {
		bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);
		zt_ctx_count(ZT_CTX_CNT_PUSH_FAILED);
		return SK_PASS;
	}
	data = msg->data;
	end = msg->data_end;
	if (data + ZT_CTX_HEADER_LEN > end) {
		bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);
		zt_ctx_count(ZT_CTX_CNT_PUSH_FAILED);
		return SK_PASS;
	}
	/* "traceparent: 00-<32 hex>-<16 hex>-01\r\n" */
	__builtin_memcpy(data, "traceparent: 00-", 16);
	for (i = 0; i < 16; i++) {
		data[16 + 2 * i] = hex(ev->trace_id[i] >> 4);
		data[17 + 2 * i] = hex(ev->trace_id[i] & 15);
	}
	data[48] = '-';
	for (i = 0; i < 8; i++) {
		data[49 + 2 * i] = hex(ev->span_id[i] >> 4);
		data[50 + 2 * i] = hex(ev->span_id[i] & 15);
	}
	__builtin_memcpy(data + 65, "-01\r\n", 5);
	bpf_ringbuf_submit(ev, 0);
	zt_ctx_count(ZT_CTX_CNT_INSERTED);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
