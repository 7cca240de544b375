/* The maps of --propagate-context that socket_trace.bpf.c (which sets a thread's context at
 * its server reads) and ctx_propagate.bpf.c (which inserts it) share: the agent loads
 * ctx_propagate with socket_trace's maps (bpf_map__reuse_fd). */
#ifndef ZT_CTX_MAPS_BPF_H
#define ZT_CTX_MAPS_BPF_H

#include <zerotrace/ctx_propagate.h>

/* The request each thread serves, by tid (see struct zt_thread_ctx). LRU: a thread that died
 * before answering leaves an entry no one deletes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct zt_thread_ctx);
} thread_ctx SEC(".maps");

/* Outcomes, indexed by enum zt_ctx_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_CTX_CNT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} ctx_counters SEC(".maps");

static __always_inline void zt_ctx_count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&ctx_counters, &which);

	if (v)
		*v += 1;
}

#endif /* ZT_CTX_MAPS_BPF_H */
