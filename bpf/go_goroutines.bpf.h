/* Goroutine causality in Go binaries: which server connection each goroutine serves (the
 * net/http conn.serve goroutine its own, and every goroutine started from a serving one, from
 * newproc.func1's call of runqput, or runtime.newproc1's RETs), and, when a serving goroutine starts an HTTP/1 call
 * (persistConn.roundTrip, on the caller's goroutine even though the Transport's writeLoop
 * writes the bytes), a zt_go_call_event naming the call's connection and its first byte.
 * Included by go_tls.bpf.c after socket_emit.bpf.h. */
#ifndef ZT_GO_GOROUTINES_BPF_H
#define ZT_GO_GOROUTINES_BPF_H

/* A goroutine by id: ids are never reused in a process (g structs are). */
struct go_goid_key {
	__u32 tgid;
	__u32 pad;
	__u64 goid;
};

/* What a goroutine serves. */
struct go_serving {
	__u64 conn_id;  /* the server connection (conns' conn_id) */
	__u64 since_ns; /* a started goroutine's start: the request in flight then; 0: the current */
};

/* Serving goroutines. LRU: goroutines end without a probe; an evicted entry only loses
 * evidence (the call then falls back to the other linking rules). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_goid_key);
	__type(value, struct go_serving);
} go_serving SEC(".maps");

/* The socket fd of a net.Conn interface's data: a *net.TCPConn, else a *tls.Conn over one. A
 * *tls.Conn read as a TCPConn leads to an itab, whose word at a netFD's family offset is a
 * method's address, never AF_INET(6): the first reading fails and the second is taken. */
static __always_inline int zt_go_netconn_fd(const struct zt_go_offsets *o, __u64 iface_at)
{
	__u64 iface[2]; /* itab, data */
	int fd;

	if (bpf_probe_read_user(iface, sizeof(iface), (void *)iface_at) || !iface[0] || !iface[1])
		return -1;
	fd = zt_go_tcpconn_fd(o, iface[1]);
	return fd >= 0 ? fd : zt_go_conn_fd(o, iface[1]);
}

static __always_inline struct conn_state *zt_go_tracked(__u32 tgid, int fd)
{
	struct conn_key key = {.tgid = tgid, .fd = fd};

	return fd < 0 ? NULL : bpf_map_lookup_elem(&conns, &key);
}

/* net/http.(*conn).serve(c, ctx): this goroutine serves c.rwc's socket from now on. */
static __always_inline int zt_go_serve(struct pt_regs *ctx, const struct zt_go_offsets *o,
				       __u32 tgid)
{
	struct go_goid_key key = {.tgid = tgid, .goid = zt_go_goid(o, ZT_GO_G(ctx))};
	struct go_serving v = {};
	struct conn_state *st;

	if (!key.goid || !ZT_GO_ARG0(ctx))
		return 0;
	st = zt_go_tracked(tgid, zt_go_netconn_fd(o, ZT_GO_ARG0(ctx) + o->http_conn_rwc));
	if (!st)
		return 0;
	v.conn_id = st->conn_id;
	bpf_map_update_elem(&go_serving, &key, &v, BPF_ANY);
	return 0;
}

/* net/http.(*persistConn).roundTrip(pc, req) on the caller's goroutine: the next request
 * written on pc.conn's socket is a call made for what that goroutine serves (maybe nothing). */
static __always_inline int zt_go_round_trip(struct pt_regs *ctx, const struct zt_go_offsets *o,
					    __u32 tgid)
{
	struct go_goid_key key = {.tgid = tgid, .goid = zt_go_goid(o, ZT_GO_G(ctx))};
	struct zt_go_call_event *ev;
	struct go_serving *serving;
	struct conn_state *st;
	int fd;

	if (!key.goid || !ZT_GO_ARG0(ctx))
		return 0;
	/* Not serving: still reported, so that no earlier call's evidence (a roundTrip that
	 * returned before writing) is taken for this one. */
	serving = bpf_map_lookup_elem(&go_serving, &key);
	fd = zt_go_netconn_fd(o, ZT_GO_ARG0(ctx) + o->persistconn_conn);
	st = zt_go_tracked(tgid, fd);
	if (!st) {
		zt_count(ZT_CNT_GO_CALL_NO_CONN);
		return 0;
	}
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		return 0;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	zt_fill_header(&ev->hdr, ZT_EV_GO_CALL, fd, st->conn_id);
	/* The previous request on this connection is written: the position is the call's. */
	ev->send_pos = st->tls ? st->tls_send_pos : st->send_pos;
	if (serving) {
		ev->served_conn_id = serving->conn_id;
		ev->served_since_ns = serving->since_ns;
	}
	ev->goid = key.goid;
	bpf_ringbuf_submit(ev, zt_wakeup_flag());
	zt_count(ZT_CNT_GO_CALLS);
	return 0;
}

/* A RET of runtime.newproc1, on the system stack: RAX is the new g (its goid set), and the
 * goroutine whose `go` statement made it is g0.m.curg. The child serves what its parent
 * does: the request in flight now, if the parent serves its connection's current one. One
 * probe per goroutine started (newproc1's entry would be a second). Or, cheaper (a call is
 * emulated, a RET single-stepped), newproc.func1's call of runqput(pp, newg): newg in RBX. */
static __always_inline int zt_go_newproc_ret(struct pt_regs *ctx, const struct zt_go_offsets *o,
					     __u32 tgid, __u64 child_g)
{
	struct go_goid_key key = {.tgid = tgid};
	__u64 m = 0, parent_g = 0;
	struct go_serving *parent, v;

	if (!o->g_m || !o->m_curg ||
	    bpf_probe_read_user(&m, sizeof(m), (void *)(ZT_GO_G(ctx) + o->g_m)) || !m ||
	    bpf_probe_read_user(&parent_g, sizeof(parent_g), (void *)(m + o->m_curg)))
		return 0;
	key.goid = zt_go_goid(o, parent_g);
	parent = key.goid ? bpf_map_lookup_elem(&go_serving, &key) : NULL;
	if (!parent)
		return 0;
	v = *parent;
	if (!v.since_ns)
		v.since_ns = bpf_ktime_get_ns();
	key.goid = zt_go_goid(o, child_g);
	if (key.goid)
		bpf_map_update_elem(&go_serving, &key, &v, BPF_ANY);
	return 0;
}

/* The goroutine probes, by the cookie's probe kind. */
static __noinline int zt_go_goroutine_probe(struct pt_regs *ctx, __u32 slot, __u32 kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct zt_go_offsets *o;

	if (!ctx || !zt_traced(tgid))
		return 0;
	o = bpf_map_lookup_elem(&go_binaries, &slot);
	if (!o || !o->g_goid)
		return 0;
	switch (kind) {
	case ZT_GO_SERVE_ENTRY:
		return zt_go_serve(ctx, o, tgid);
	case ZT_GO_ROUNDTRIP_ENTRY:
		return zt_go_round_trip(ctx, o, tgid);
	case ZT_GO_NEWPROC_RET:
		return zt_go_newproc_ret(ctx, o, tgid, ZT_GO_RET0(ctx));
	case ZT_GO_RUNQPUT_CALL:
		return zt_go_newproc_ret(ctx, o, tgid, ZT_GO_ARG1(ctx));
	default:
		return 0;
	}
}

#endif /* ZT_GO_GOROUTINES_BPF_H */
