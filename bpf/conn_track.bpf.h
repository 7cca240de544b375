/* The kernel's connection table: tracking a socket (connect, accept, first use), forgetting it
 * (close, fd reuse), and the fds dup() makes of it. Included by socket_trace.bpf.c after
 * socket_emit.bpf.h. */
#ifndef ZT_CONN_TRACK_BPF_H
#define ZT_CONN_TRACK_BPF_H

/* Close records that found the ring buffer full, by conn_id. SocketTracer::Poll drains them
 * once the ring buffer is empty: one lost record must not leave userspace holding a connection
 * that is gone (and reporting its pending request as unanswered when the process exits). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct zt_conn_close);
} lost_closes SEC(".maps");

/* Entries put in lost_closes so far: userspace reads it (mmapped) and drains only when it grew. */
__u64 lost_closes_added = 0;

static __noinline void zt_emit_close(struct conn_key *key, struct conn_state *st, __u8 reason)
{
	struct zt_conn_close c = {}, *ev;

	zt_fill_header(&c.hdr, ZT_EV_CONN_CLOSE, key->fd, st->conn_id);
	c.sent_bytes = st->tls ? st->tls_send_pos : st->send_pos;
	c.received_bytes = st->tls ? st->tls_recv_pos : st->recv_pos;
	c.reason = reason;
	c.flags = st->close_flags | (st->tls ? ZT_CLOSE_F_TLS : 0);
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		if (bpf_map_update_elem(&lost_closes, &c.hdr.conn_id, &c, BPF_NOEXIST) == 0) {
			__sync_fetch_and_add(&lost_closes_added, 1);
			zt_count(ZT_CNT_CONN_CLOSED);
		}
		return;
	}
	*ev = c;
	bpf_ringbuf_submit(ev, zt_wakeup_flag());
	zt_count(ZT_CNT_CONN_CLOSED);
}

/* fd no longer names the socket of its entry st (close, or the fd now names another file):
 * forget the entry. The connection ends with it, unless other fds dup() made still name it. */
static __noinline void zt_release(struct conn_key *key, struct conn_state *st, __u8 reason)
{
	struct conn_key skey, ekey = {.tgid = key->tgid};
	struct conn_state *ss;

	if (st->shared != ZT_SHARE_ALIAS) {
		zt_emit_close(key, st, reason);
		bpf_map_delete_elem(&conns, key);
		return;
	}
	skey = zt_shared_key(key->tgid, st->conn_id);
	bpf_map_delete_elem(&conns, key);
	ss = bpf_map_lookup_elem(&conns, &skey);
	if (!ss || __sync_fetch_and_add(&ss->refs, -1) != 1)
		return;
	ekey.fd = ss->event_fd;
	zt_emit_close(&ekey, ss, reason);
	bpf_map_delete_elem(&conns, &skey);
}

/* Starts tracking fd as a connection with the given role; emits the open event. */
static __noinline struct conn_state *zt_track(struct conn_key *key, struct file *file,
					     struct sock *sk, __u8 role, __u8 flags)
{
	struct conn_state st = {};
	struct zt_conn_open *ev;

	st.conn_id = __sync_fetch_and_add(&next_conn_id, 1);
	st.file = (__u64)file;
	st.role = role;
	if (bpf_map_update_elem(&conns, key, &st, BPF_ANY))
		return NULL;
	zt_count(ZT_CNT_CONN_OPENED);
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (ev) {
		__builtin_memset(ev, 0, sizeof(*ev));
		zt_fill_header(&ev->hdr, ZT_EV_CONN_OPEN, key->fd, st.conn_id);
		ev->role = role;
		ev->flags = flags;
		zt_fill_tuple(ev, sk);
		bpf_get_current_comm(ev->comm, sizeof(ev->comm));
		bpf_ringbuf_submit(ev, zt_wakeup_flag());
	} else {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
	}
	return bpf_map_lookup_elem(&conns, key);
}

/* The state of the tracked connection fd names now (file: the one it names); discovers sockets
 * opened before the agent. For an fd dup() made, the state it shares with the other fds of its
 * socket. */
static __always_inline struct conn_state *zt_conn_for_file(struct conn_key *key,
							    struct file *file)
{
	struct conn_state *st, *state;
	struct sock *sk;

	st = bpf_map_lookup_elem(&conns, key);
	if (st) {
		if (st->file != (__u64)file) {
			zt_release(key, st, ZT_CLOSE_FD_REUSE);
		} else {
			state = zt_conn_state(key->tgid, st);
			if (state)
				return state;
			bpf_map_delete_elem(&conns, key); /* its shared state was evicted */
		}
	}
	sk = zt_file_to_tcp_sock(file);
	if (!sk)
		return NULL;
	return zt_track(key, file, sk, ZT_ROLE_UNKNOWN, ZT_CONN_F_PREEXISTING);
}

/* zt_conn_for_file for the file fd names now (NULL when it names none). */
static __always_inline struct conn_state *zt_conn_for_fd(struct conn_key *key)
{
	struct file *file = zt_fd_to_file(key->fd);

	return file ? zt_conn_for_file(key, file) : NULL;
}

/* Open event for one of the agent's own connections; nothing is tracked for it. */
static __always_inline void zt_announce_agent_conn(struct conn_key *key)
{
	struct file *file = zt_fd_to_file(key->fd);
	struct zt_conn_open *ev;
	struct sock *sk;

	if (!file || !(sk = zt_file_to_tcp_sock(file)))
		return;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		zt_count(ZT_CNT_RINGBUF_RESERVE_FAILED);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	zt_fill_header(&ev->hdr, ZT_EV_CONN_OPEN, key->fd, 0);
	ev->role = ZT_ROLE_CLIENT;
	ev->flags = ZT_CONN_F_AGENT;
	zt_fill_tuple(ev, sk);
	bpf_ringbuf_submit(ev, zt_wakeup_flag());
}

/* connect/accept made fd a new connection: whatever the fd named before is gone. */
static __always_inline void zt_track_new(struct conn_key *key, __u8 role)
{
	struct file *file = zt_fd_to_file(key->fd);
	struct conn_state *old;
	struct sock *sk;

	if (!file || !(sk = zt_file_to_tcp_sock(file)))
		return;
	old = bpf_map_lookup_elem(&conns, key);
	if (old)
		zt_release(key, old, ZT_CLOSE_FD_REUSE);
	zt_track(key, file, sk, role, 0);
}

/* dup() made nkey's fd name the socket of okey's entry ost: from now on both fds (and any
 * later dup) share one state under zt_shared_key, so the stream positions stay exact whichever
 * fd moves the bytes, and the connection keeps its id, role and open event. A syscall of
 * another thread that is moving bytes on okey at this very moment may add them to the entry
 * being replaced; that window is a few instructions wide. */
static __noinline void zt_share(struct conn_key *okey, struct conn_state *ost, struct conn_key *nkey)
{
	struct conn_state alias = {}, moved;
	struct conn_key skey = zt_shared_key(okey->tgid, ost->conn_id);
	struct conn_state *ss;

	alias.conn_id = ost->conn_id;
	alias.file = ost->file;
	alias.role = ost->role;
	alias.shared = ZT_SHARE_ALIAS;
	if (ost->shared != ZT_SHARE_ALIAS) { /* the first dup: the state moves to skey */
		moved = *ost;
		moved.shared = ZT_SHARE_STATE;
		moved.refs = 1;
		moved.event_fd = okey->fd;
		if (bpf_map_update_elem(&conns, &skey, &moved, BPF_NOEXIST))
			return;
		if (bpf_map_update_elem(&conns, okey, &alias, BPF_EXIST)) {
			bpf_map_delete_elem(&conns, &skey);
			return;
		}
	}
	ss = bpf_map_lookup_elem(&conns, &skey);
	if (!ss || bpf_map_update_elem(&conns, nkey, &alias, BPF_ANY))
		return;
	__sync_fetch_and_add(&ss->refs, 1);
	zt_count(ZT_CNT_DUP_SHARED);
}

/* A dup that returned newfd for oldfd: if oldfd is a tracked socket, newfd shares it. */
static __always_inline void zt_dup_done(__u32 tgid, __u32 oldfd, long newfd)
{
	struct conn_key okey = {.tgid = tgid, .fd = oldfd}, nkey = {.tgid = tgid, .fd = newfd};
	struct conn_state *ost, *nst;

	if (newfd < 0 || (__u32)newfd == oldfd)
		return;
	ost = bpf_map_lookup_elem(&conns, &okey);
	if (!ost || ost->file != (__u64)zt_fd_to_file(newfd))
		return;
	nst = bpf_map_lookup_elem(&conns, &nkey);
	if (nst) {
		if (nst->shared == ZT_SHARE_ALIAS && nst->conn_id == ost->conn_id)
			return; /* already one of its fds */
		zt_release(&nkey, nst, ZT_CLOSE_FD_REUSE); /* dup2 closed what newfd named */
	}
	zt_share(&okey, ost, &nkey);
}

#endif /* ZT_CONN_TRACK_BPF_H */
