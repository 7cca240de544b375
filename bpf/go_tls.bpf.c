// SPDX-License-Identifier: GPL-2.0
/* Go crypto/tls uprobes: the plaintext of (*tls.Conn).Write and Read in Go binaries (register
 * ABI, Go >= 1.17), emitted as ZT_SRC_TLS data events on the connection whose fd the
 * tls.Conn's own net.Conn holds (a Write's at its entry, a Read's at its return). Returns are
 * caught by uprobes on the functions' RET instructions (uretprobes would corrupt Go's movable
 * stacks), and a call is matched to its return by goroutine (the g pointer), not by thread: a
 * goroutine may block in Read on one thread and return on another. Goroutine causality:
 * go_goroutines.bpf.h. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include <zerotrace/events.h>
#include <zerotrace/go_tls.h>

#include "trace_maps.bpf.h"
#include "go_tls.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Field offsets of each probed Go binary, by slot (the attach cookie's upper bits). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ZT_GO_MAX_BINARIES);
	__type(key, __u32);
	__type(value, struct zt_go_offsets);
} go_binaries SEC(".maps");

/* A Write entry this soon after an entry of the same goroutine and length that has not
 * returned is that call restarted after stack growth. */
#define ZT_GO_RESTART_NS 1000000

/* A goroutine: its g pointer is unique among the live goroutines of a process. */
struct go_call_key {
	__u32 tgid;
	__u32 pad;
	__u64 g;
};

/* One Write or Read in progress on a goroutine, from its entry to one of its RETs. */
struct go_call {
	__u64 buf;      /* the []byte's data pointer */
	__u64 enter_ns; /* entry time: sent plaintext is stamped when the write began */
	__u64 conn_id;  /* the connection tracked under fd at entry; 0: not tracked yet */
	__u64 goid;     /* goroutine id (0: unknown), for goroutine-aware causality later */
	__u64 len;      /* Write: the []byte's length (its plaintext is emitted at entry) */
	__s32 fd;       /* the tls.Conn's socket; -1: its net.Conn is no TCP netFD */
	__u8 op;        /* ZT_SYS_TLS_WRITE or ZT_SYS_TLS_READ */
	__u8 flags;     /* ZT_GO_CALL_PENDING */
	__u8 pad[2];
};

/* Calls in progress. LRU: a goroutine that never returns (panic through Write) cannot fill
 * it; a restarted call (stack growth re-enters the function) overwrites its own entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_call_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* A Write whose connection was not tracked at its entry (opened before the agent: its own write
 * syscall discovers it) has its plaintext emitted at its RET, or at a Read RET on the same
 * connection if one comes first. Otherwise a goroutine descheduled between its write syscall
 * and its RET lets the answer's record overtake the request's, and the stitcher, seeing a
 * response before any request on a connection it joined mid-stream, pairs every later request
 * with the next one's answer. Whoever deletes the entry emits the Write. */
struct go_pending_key {
	__u32 tgid;
	__s32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct go_pending_key);
	__type(value, struct go_call);
} go_pending_writes SEC(".maps");

/* go_call.flags: the call is in go_pending_writes. */
#define ZT_GO_CALL_PENDING 1

#include "socket_emit.bpf.h"
#include "go_goroutines.bpf.h"

/* The connection fd names, if it is tracked and TLS from now on (its bytes are ciphertext). */
static __always_inline struct conn_state *zt_go_mark_tls(__u32 tgid, __s32 fd)
{
	struct conn_key key = {.tgid = tgid, .fd = fd};
	struct conn_state *st;

	if (fd < 0)
		return NULL;
	st = bpf_map_lookup_elem(&conns, &key);
	if (st)
		st->tls = 1;
	return st;
}

/* Hot path: the plaintext of one call (a Write at its entry, a Read at its RET), placed in the
 * connection's TLS stream. */
static __noinline int zt_go_emit(struct conn_key *key, struct conn_state *st, struct go_call *call,
				 __u64 bytes)
{
	struct emit_state s = {};

	s.source = ZT_SRC_TLS;
	s.sys = call->op;
	s.direction = call->op == ZT_SYS_TLS_WRITE ? ZT_DIR_EGRESS : ZT_DIR_INGRESS;
	s.ts_ns = s.direction == ZT_DIR_EGRESS ? call->enter_ns : bpf_ktime_get_ns();
	s.conn_id = st->conn_id;
	s.fd = key->fd;
	s.byte_count = bytes;
	zt_tls_budget(key, st, &s, bytes);
	if (s.direction == ZT_DIR_EGRESS)
		s.syscall_pos = __sync_fetch_and_add(&st->tls_send_pos, bytes);
	else
		s.syscall_pos = __sync_fetch_and_add(&st->tls_recv_pos, bytes);
	s.pos = s.syscall_pos;
	zt_emit_buf(&s, call->buf, bytes);
	zt_emit_trailer(&s);
	zt_count(ZT_CNT_TLS_CALLS);
	return 0;
}

static __always_inline int zt_go_enter(struct pt_regs *ctx, __u32 slot, __u8 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct go_call_key key = {.tgid = id >> 32, .g = ZT_GO_G(ctx)};
	struct conn_key ckey = {.tgid = id >> 32};
	struct go_call call = {}, *prev;
	struct zt_go_offsets *o;
	struct conn_state *st;

	if (!zt_traced(key.tgid))
		return 0;
	o = bpf_map_lookup_elem(&go_binaries, &slot);
	if (!o)
		return 0;
	call.fd = zt_go_conn_fd(o, ZT_GO_ARG0(ctx));
	st = zt_go_mark_tls(key.tgid, call.fd);
	if (op == ZT_TLS_OP_HANDSHAKE) /* nothing to return: it only marks the socket */
		return 0;
	call.buf = ZT_GO_ARG1(ctx);
	call.enter_ns = bpf_ktime_get_ns();
	call.conn_id = st ? st->conn_id : 0;
	call.goid = zt_go_goid(o, key.g);
	call.op = op;
	if (op != ZT_SYS_TLS_WRITE) {
		bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY);
		return 0;
	}
	/* A Write's plaintext goes out at its entry, where its buffer and length are known (Go's
	 * Write sends all of b or fails): the goroutine may be descheduled between its write
	 * syscall and its RET, and if the process exits meanwhile (a client right after its last
	 * call) the RET never runs. A restart of the same call (stack growth runs the prologue
	 * again, on a moved stack: b may have moved with it) finds its own entry, of the same
	 * length and moments old, and emits nothing more; a new Write follows its predecessor's
	 * RET, which removed that entry. */
	call.len = ZT_GO_ARG2(ctx);
	prev = bpf_map_lookup_elem(&go_calls, &key);
	if (prev && prev->op == ZT_SYS_TLS_WRITE && prev->len == call.len &&
	    call.enter_ns - prev->enter_ns < ZT_GO_RESTART_NS)
		return 0;
	if (!st && call.len > 0 && call.fd >= 0) {
		struct go_pending_key pkey = {.tgid = key.tgid, .fd = call.fd};

		if (!bpf_map_update_elem(&go_pending_writes, &pkey, &call, BPF_NOEXIST))
			call.flags = ZT_GO_CALL_PENDING;
	}
	bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY);
	if (!st || call.len == 0)
		return 0;
	ckey.fd = call.fd;
	return zt_go_emit(&ckey, st, &call, call.len > 0xffffffffULL ? 0xffffffffULL : call.len);
}

/* A RET of Write or Read: RAX holds the int result, the bytes the call moved. */
/* Rebuilds the call of a RET whose entry was not seen, from the spill slots at 8(SP) (the
 * *tls.Conn) and 16(SP) (the buffer); false (counted) when the binary does not spill them. */
static __always_inline bool zt_go_call_from_stack(struct pt_regs *ctx, __u32 slot, __u8 op,
						  struct go_call *call)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sp = PT_REGS_SP(ctx), spill[2];
	struct zt_go_offsets *o;

	if (!zt_traced(id >> 32))
		return false;
	o = bpf_map_lookup_elem(&go_binaries, &slot);
	if (!o || !(o->flags & (op == ZT_SYS_TLS_READ ? ZT_GO_F_READ_SPILLED : ZT_GO_F_WRITE_SPILLED)) ||
	    bpf_probe_read_user(spill, sizeof(spill), (void *)(sp + 8))) {
		zt_count(ZT_CNT_STASH_MISSING);
		return false;
	}
	__builtin_memset(call, 0, sizeof(*call));
	call->fd = zt_go_conn_fd(o, spill[0]);
	call->buf = spill[1];
	call->enter_ns = bpf_ktime_get_ns(); /* the entry time is unknown: now */
	call->op = op;
	return true;
}

static __always_inline int zt_go_return(struct pt_regs *ctx, __u32 slot, __u8 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct go_call_key gkey = {.tgid = id >> 32, .g = ZT_GO_G(ctx)};
	struct conn_key key = {.tgid = id >> 32};
	__s64 n = (__s64)ZT_GO_RET0(ctx);
	struct conn_state *st;
	struct go_call *stashed;
	struct go_call call = {};

	stashed = bpf_map_lookup_elem(&go_calls, &gkey);
	if (stashed) {
		call = *stashed;
		bpf_map_delete_elem(&go_calls, &gkey);
		if (call.op != op) { /* the entry belonged to a call that never returned */
			zt_count(ZT_CNT_STASH_MISSING);
			return 0;
		}
		if (op == ZT_SYS_TLS_WRITE && call.conn_id) /* emitted at its entry */
			return 0;
		if (op == ZT_SYS_TLS_WRITE && call.flags == ZT_GO_CALL_PENDING) {
			struct go_pending_key pkey = {.tgid = gkey.tgid, .fd = call.fd};

			if (bpf_map_delete_elem(&go_pending_writes, &pkey))
				return 0; /* a Read RET on its connection emitted it */
		}
	}
	if (n <= 0)
		return 0;
	/* No entry seen: the call began before the probes were attached (an idle keep-alive
	 * connection's Read). Its receiver and buffer are in their spill slots, if the binary
	 * spills them; otherwise its bytes are lost (counted). */
	if (!stashed && !zt_go_call_from_stack(ctx, slot, op, &call))
		return 0;
	if (n > 0xffffffffLL) /* byte_count is 32 bits */
		n = 0xffffffffLL;
	if (call.fd < 0) {
		zt_count(ZT_CNT_TLS_NO_FD);
		return 0;
	}
	key.fd = call.fd;
	st = bpf_map_lookup_elem(&conns, &key);
	/* Tracked at entry: it must still be that connection. Not tracked at entry (opened before
	 * the agent): the call's own socket syscall has just found it. */
	if (!st || (call.conn_id && st->conn_id != call.conn_id)) {
		zt_count(ZT_CNT_TLS_CONN_GONE);
		return 0;
	}
	st->tls = 1;
	if (op == ZT_SYS_TLS_READ) {
		struct go_pending_key pkey = {.tgid = key.tgid, .fd = key.fd};
		struct go_call *pending = bpf_map_lookup_elem(&go_pending_writes, &pkey);

		if (pending) {
			struct go_call w = *pending;

			if (!bpf_map_delete_elem(&go_pending_writes, &pkey))
				zt_go_emit(&key, st, &w,
					   w.len > 0xffffffffULL ? 0xffffffffULL : w.len);
		}
	}
	return zt_go_emit(&key, st, &call, n);
}

/* Every Go uprobe: the attach cookie says which binary and which probe. */
SEC("uprobe")
int zt_go_tls(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 slot = cookie >> 8;

	switch (cookie & 0xff) {
	case ZT_GO_WRITE_ENTRY:
		return zt_go_enter(ctx, slot, ZT_SYS_TLS_WRITE);
	case ZT_GO_READ_ENTRY:
		return zt_go_enter(ctx, slot, ZT_SYS_TLS_READ);
	case ZT_GO_HANDSHAKE_ENTRY:
		return zt_go_enter(ctx, slot, ZT_TLS_OP_HANDSHAKE);
	case ZT_GO_WRITE_RET:
		return zt_go_return(ctx, slot, ZT_SYS_TLS_WRITE);
	case ZT_GO_READ_RET:
		return zt_go_return(ctx, slot, ZT_SYS_TLS_READ);
	case ZT_GO_SERVE_ENTRY:
	case ZT_GO_ROUNDTRIP_ENTRY:
	case ZT_GO_NEWPROC_RET:
	case ZT_GO_RUNQPUT_CALL:
		return zt_go_goroutine_probe(ctx, slot, cookie & 0xff);
	default:
		return 0;
	}
}
