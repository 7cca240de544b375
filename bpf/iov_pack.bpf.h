/* One record for a vectored syscall's iovecs (zt_pack_iovecs). Included by socket_emit.bpf.h
 * after its emit_state and record helpers. */
#ifndef ZT_IOV_PACK_BPF_H
#define ZT_IOV_PACK_BPF_H

/* Vectored syscalls whose bytes all fit in one record of these sizes (and their capture
 * budget) write one record, not one per iovec: nginx's writev of a response head and a small
 * body was two. The record reserves twice its class, so the verifier can bound each iovec's
 * offset and length separately (offset < class, length <= class). */
#define ZT_PACK_IOV 8

static __always_inline int zt_pack_iovecs(struct emit_state *s, __u64 iov_ptr, __u32 iovlen,
					  __u32 bytes, const __u64 cls)
{
	struct zt_data_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + 2 * cls, 0);
	struct iovec iov;
	__u64 off = 0;

	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		return 0;
	}
	for (int i = 0; i < ZT_PACK_IOV; i++) {
		__u64 n = bytes - off, at = off;

		if (i >= iovlen || off >= bytes)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iov_ptr + i * sizeof(iov))))
			break;
		if (iov.iov_len < n)
			n = iov.iov_len;
		if (n == 0)
			continue;
		asm volatile("" : "+r"(n));
		asm volatile("" : "+r"(at));
		if (n > cls || at >= cls) /* never: off < bytes <= cls; tells the verifier */
			break;
		if (bpf_probe_read_user((__u8 *)(ev + 1) + at, n, (void *)iov.iov_base)) {
			zt_count(ZT_CNT_READ_USER_FAILED);
			break;
		}
		off += n;
	}
	if (off == 0) {
		bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);
		return 0;
	}
	if (off >= 3 && s->pos == s->syscall_pos) {
		__u8 *d = (__u8 *)(ev + 1);

		s->head = d[0] | (d[1] << 8) | (d[2] << 16) | ZT_HEAD_CAPTURED;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	zt_fill_header_at(&ev->hdr, ZT_EV_DATA, s->fd, s->conn_id, s->ts_ns);
	ev->syscall_pos = s->syscall_pos;
	ev->stream_pos = s->pos;
	ev->byte_count = s->byte_count;
	ev->captured = off;
	ev->direction = s->direction;
	ev->source = s->source;
	ev->syscall = s->sys;
	bpf_ringbuf_submit(ev, zt_wakeup_flag());
	zt_count(ZT_CNT_DATA_EVENTS);
	s->emitted++;
	s->captured += off;
	s->budget -= off;
	return 0;
}

#endif /* ZT_IOV_PACK_BPF_H */
