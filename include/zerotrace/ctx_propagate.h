/* Cross-node context propagation: what bpf/ctx_propagate.bpf.c and userspace share. */
#ifndef ZEROTRACE_CTX_PROPAGATE_H
#define ZEROTRACE_CTX_PROPAGATE_H

#include <zerotrace/events.h>

/* Bytes of a request the sk_msg program scans for a whole HTTP/1 head. */
#define ZT_CTX_HEAD_SCAN 512
/* "traceparent: 00-<32 hex>-<16 hex>-01\r\n" */
#define ZT_CTX_HEADER_LEN 70

/* zt_thread_ctx.state */
enum zt_ctx_state {
	ZT_CTX_VALID = 1,     /* the thread serves exactly the request trace_id names */
	ZT_CTX_AMBIGUOUS = 2, /* it read another request before answering one: an event loop */
};

/* What request a thread serves, set at its read of a server-side HTTP/1 request head: the
 * value of thread_ctx. Outgoing requests of a VALID thread carry trace_id. */
struct zt_thread_ctx {
	__u8 trace_id[16]; /* the request's traceparent trace id, or zt_ctx_trace_id() */
	__u64 conn_id;     /* the server connection the request came on */
	__u64 read_ns;     /* when it was read: a context older than ZT_CTX_MAX_AGE_NS is stale */
	__u32 open;        /* requests read and not yet answered (responses started) */
	__u8 state;        /* enum zt_ctx_state */
	__u8 pad[3];
};
ZT_STATIC_ASSERT(sizeof(struct zt_thread_ctx) == 40, "zt_thread_ctx ABI");

/* A thread that read a request and never answered it must not lend that request's context to
 * calls it makes much later (a pool thread whose handler failed): past this, nothing is sent. */
#define ZT_CTX_MAX_AGE_NS 10000000000ULL

/* ZT_EV_CTX: sk_msg inserted `traceparent: 00-<trace_id>-<span_id>-01` into a request the
 * thread hdr.tid of hdr.tgid sent on this IPv4 socket (hdr.fd and hdr.conn_id are 0). */
struct zt_ctx_event {
	struct zt_event_header hdr;
	__u32 local_ip;    /* first address byte most significant */
	__u32 remote_ip;   /* same */
	__u16 local_port;  /* host byte order */
	__u16 remote_port; /* host byte order */
	__u32 pad;         /* zero */
	__u8 trace_id[16];
	__u8 span_id[8];
};
ZT_STATIC_ASSERT(sizeof(struct zt_ctx_event) == 32 + 16 + 24, "zt_ctx_event ABI");

/* Counters of ctx_counters (per CPU). */
enum zt_ctx_counter {
	ZT_CTX_CNT_INSERTED = 0,      /* requests that left with an inserted traceparent */
	ZT_CTX_CNT_NOT_INSERTED = 1,  /* messages of a thread with a context that were not a whole
				       * HTTP/1 head without traceparent within ZT_CTX_HEAD_SCAN */
	ZT_CTX_CNT_PUSH_FAILED = 2,   /* bpf_msg_push_data/pull_data refused: sent unchanged */
	ZT_CTX_CNT_SOCKHASH_FULL = 3, /* client sockets not added to ctx_socks */
	ZT_CTX_CNT_AMBIGUOUS = 4,     /* messages of a thread whose context is ambiguous: unchanged */
	ZT_CTX_CNT_RECORD_LOST = 5,   /* inserted, but the ZT_EV_CTX record found no ring space */
	ZT_CTX_CNT_SET = 6,           /* server reads that gave their thread a context */
	ZT_CTX_CNT_FROM_TRACEPARENT = 7, /* ...whose trace id came from the request's traceparent */
	ZT_CTX_CNT_EVENT_LOOP = 8,    /* reads that made their thread's context ambiguous */
	ZT_CTX_CNT_UNCERTAIN = 9,     /* request reads not understood (split head, pipelined, ...):
				       * the thread's context became ambiguous */
	ZT_CTX_CNT_CLEARED = 10,      /* contexts cleared by the thread's responses */
	ZT_CTX_CNT_STALE = 11,        /* messages of a thread whose context was too old: unchanged */
	ZT_CTX_CNT_COUNT = 12,
};

#endif /* ZEROTRACE_CTX_PROPAGATE_H */
