/* Muted connections (userspace parses none of their bytes): a data syscall only advances the
 * stream positions, which the close event reports. At most one sizes-only record per
 * connection and second (2^30 ns) keeps userspace's idle clock running; the other syscalls
 * send nothing and are counted. Included by socket_emit.bpf.h after zt_count. */
#ifndef ZT_MUTED_EMIT_BPF_H
#define ZT_MUTED_EMIT_BPF_H

/* Muted socket bytes: the muted map is consulted only when userspace muted or capped a
 * connection of this one's epoch slot since it last looked (muted_epochs), not on every data
 * syscall. An entry for the connection with ZT_MUTED_CAP sets its head cap instead
 * (st->head_cap). */
static __always_inline bool zt_socket_muted(struct conn_key *key, struct conn_state *st)
{
	__u32 epoch = *(volatile __u32 *)&muted_epochs[st->conn_id & (ZT_MUTED_EPOCHS - 1)];
	__u64 *muted_id, v;

	if (st->muted || st->muted_seen == epoch)
		return st->muted;
	muted_id = bpf_map_lookup_elem(&muted, key);
	if (muted_id) {
		v = *muted_id;
		if (v == st->conn_id)
			st->muted = 1;
		else if ((v & (ZT_MUTED_CAP | ZT_MUTED_TLS)) == ZT_MUTED_CAP &&
			 (v & ((1ULL << ZT_MUTED_ID_BITS) - 1)) == st->conn_id) {
			st->head_cap = (__u16)(v >> ZT_MUTED_CAP_SHIFT);
			st->head_cap_egress = (v & ZT_MUTED_CAP_EGRESS) != 0;
		}
	}
	st->muted_seen = epoch;
	return st->muted;
}

/* TLS plaintext of one call of `bytes` on a connection: the muted map (looked up per call, as
 * TLS calls are few) sets s->budget to 0 when userspace muted the plaintext, to its head cap
 * for a larger call in the capped direction (ZT_MUTED_TLS | ZT_MUTED_CAP; the record that spends
 * it then says ZT_DATA_REST_GAP), else to capture_bytes. Needs s->direction. */
static __always_inline void zt_tls_budget(struct conn_key *key, struct conn_state *st,
					  struct emit_state *s, __u64 bytes)
{
	__u64 *muted_id = bpf_map_lookup_elem(&muted, key);
	__u64 v = muted_id ? *muted_id : 0, cap;

	s->budget = capture_bytes;
	if (v == (st->conn_id | ZT_MUTED_TLS)) {
		s->budget = 0; /* sizes only, as userspace asked: no truncation */
		return;
	}
	cap = (v >> ZT_MUTED_CAP_SHIFT) & 0xffff;
	if ((v & (ZT_MUTED_CAP | ZT_MUTED_TLS)) == (ZT_MUTED_CAP | ZT_MUTED_TLS) &&
	    (v & ((1ULL << ZT_MUTED_ID_BITS) - 1)) == st->conn_id && cap &&
	    (s->direction == ZT_DIR_EGRESS) == ((v & ZT_MUTED_CAP_EGRESS) != 0) && bytes > cap &&
	    cap < s->budget) {
		s->budget = cap;
		s->iov_flags = ZT_IOV_CAPPED;
		return;
	}
	if (bytes > s->budget)
		zt_count(ZT_CNT_CAPTURE_TRUNCATED);
}

/* Whether a muted syscall at ts_ns is its connection's first in this second: it sends the
 * record. The top bit is always set, so the first muted syscall (muted_sec still 0) always
 * sends; the 15-bit second wraps every 9 hours. A race between CPUs costs one more record. */
static __always_inline bool zt_muted_record_due(struct conn_state *st, __u64 ts_ns)
{
	__u16 sec = (ts_ns >> 30) | 0x8000;

	if (st->muted_sec == sec) {
		zt_count(ZT_CNT_MUTED_RECORDS_SKIPPED);
		return false;
	}
	st->muted_sec = sec;
	return true;
}

#endif /* ZT_MUTED_EMIT_BPF_H */
