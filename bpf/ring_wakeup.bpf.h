/* When a record wakes the ring buffer's consumer. Included by socket_emit.bpf.h. */
#ifndef ZT_RING_WAKEUP_BPF_H
#define ZT_RING_WAKEUP_BPF_H

/* At most one forced wakeup per this many ns: a wakeup is an irq_work (a self-IPI, a VM exit
 * under KVM) and, while the ring holds more than wakeup_bytes, every record asked for one. A
 * wakeup is never lost (epoll keeps the ring ready until it is read), so one per gap suffices;
 * the ring's room past wakeup_bytes holds what 1 ms brings at any rate a host reaches. */
#define ZT_WAKE_GAP_NS 1000000

/* CLOCK_MONOTONIC of the last forced wakeup (per object; racy updates only wake twice). */
__u64 last_wake_ns = 0;

/* Hot path: wake the consumer only when enough is pending (see wakeup_bytes), and not again
 * within ZT_WAKE_GAP_NS. */
static __always_inline __u64 zt_wakeup_flag(void)
{
	__u64 now;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	now = bpf_ktime_get_ns();
	if (now - *(volatile __u64 *)&last_wake_ns < ZT_WAKE_GAP_NS)
		return BPF_RB_NO_WAKEUP;
	last_wake_ns = now;
	return BPF_RB_FORCE_WAKEUP;
}

#endif /* ZT_RING_WAKEUP_BPF_H */
