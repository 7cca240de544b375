/* Cross-node context propagation: what bpf/ctx_propagate.bpf.c and userspace share. */
#ifndef ZEROTRACE_CTX_PROPAGATE_H
#define ZEROTRACE_CTX_PROPAGATE_H

#ifdef __BPF__
/* vmlinux.h already provides the __u* types. */
#else
#include <linux/types.h>
#endif

/* Bytes of a request the sk_msg program scans for a whole HTTP/1 head. */
#define ZT_CTX_HEAD_SCAN 512
/* "traceparent: 00-<32 hex>-<16 hex>-01\r\n" */
#define ZT_CTX_HEADER_LEN 70

/* The W3C context a thread's outgoing request carries: the value of thread_ctx. */
struct zt_thread_ctx {
	__u8 trace_id[16]; /* the trace the thread's request belongs to */
	__u8 span_id[8];   /* the id the outgoing request's CLIENT span has (its callee's parent) */
};
#ifdef __cplusplus
static_assert(sizeof(struct zt_thread_ctx) == 24, "ABI");
#else
_Static_assert(sizeof(struct zt_thread_ctx) == 24, "ABI");
#endif

/* Counters of ctx_counters (per CPU). */
enum zt_ctx_counter {
	ZT_CTX_CNT_INSERTED = 0,      /* requests that left with an inserted traceparent */
	ZT_CTX_CNT_NOT_INSERTED = 1,  /* messages of a thread with a context that were not a whole
				       * HTTP/1 head without traceparent within ZT_CTX_HEAD_SCAN */
	ZT_CTX_CNT_PUSH_FAILED = 2,   /* bpf_msg_push_data/pull_data refused: sent unchanged */
	ZT_CTX_CNT_SOCKHASH_FULL = 3, /* client sockets not added to ctx_socks */
	ZT_CTX_CNT_COUNT = 4,
};

#endif /* ZEROTRACE_CTX_PROPAGATE_H */
