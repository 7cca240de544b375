/* The kernel<->userspace ABI: every record the BPF side writes to the ring buffer. */
#ifndef ZEROTRACE_EVENTS_H
#define ZEROTRACE_EVENTS_H

#ifdef __BPF__
/* vmlinux.h already provides the __u* types. */
#else
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define ZT_STATIC_ASSERT static_assert
#else
#define ZT_STATIC_ASSERT _Static_assert
#endif

/* Largest payload one data event carries; a syscall that moves more emits several chunks. */
#define ZT_MAX_CHUNK 16384
/* Default bytes captured per syscall (--capture-bytes). */
#define ZT_DEFAULT_CAPTURE 16384
/* Hard upper bound for --capture-bytes. */
#define ZT_MAX_CAPTURE (4 * ZT_MAX_CHUNK)
/* iovecs looked at per readv/writev/sendmsg/recvmsg: the kernel's own limit (UIO_MAXIOV), so
 * no valid call has more (python grpcio batches ~23 iovecs per call in one sendmsg). */
#define ZT_MAX_IOV 1024
/* messages looked at per sendmmsg/recvmmsg; later ones only count bytes. */
#define ZT_MAX_MMSG 8
/* Kernel connection-table capacity (LRU: the oldest idle entries go first). */
#define ZT_MAX_CONNS 65536
#define ZT_COMM_LEN 16

/* What a ring-buffer record is; the first byte of every record. */
enum zt_event_type {
	ZT_EV_CONN_OPEN = 1,  /* a TCP connection became tracked */
	ZT_EV_CONN_CLOSE = 2, /* close(), fd reuse, or the agent noticed it is gone */
	ZT_EV_DATA = 3,       /* bytes moved on a tracked connection */
	ZT_EV_PROC_EXEC = 4,  /* a process called execve */
	ZT_EV_PROC_EXIT = 5,  /* a whole process (thread group) exited */
	ZT_EV_EXEC_MAP = 6,   /* a process mapped a file executable for the first time */
	ZT_EV_GO_CALL = 7,    /* a Go goroutine serving a connection starts a call on another */
	ZT_EV_CTX = 8,        /* --propagate-context inserted a traceparent (ctx_propagate.h) */
};

/* Which side of the connection this process is. */
enum zt_role {
	ZT_ROLE_UNKNOWN = 0, /* socket existed before the agent saw connect/accept */
	ZT_ROLE_CLIENT = 1,  /* this process called connect() */
	ZT_ROLE_SERVER = 2,  /* this process got the socket from accept() */
};

/* Direction of a data event, from the traced process's point of view. */
enum zt_direction {
	ZT_DIR_EGRESS = 0,  /* the process sent these bytes */
	ZT_DIR_INGRESS = 1, /* the process received these bytes */
};

/* Which layer produced the bytes of a data event. */
enum zt_source {
	ZT_SRC_SYSCALL = 0, /* socket syscall */
	ZT_SRC_TLS = 1,     /* plaintext from a TLS library uprobe */
};

/* Syscall that produced a data event (for dumps and per-syscall accounting). */
enum zt_syscall {
	ZT_SYS_READ = 0,
	ZT_SYS_WRITE = 1,
	ZT_SYS_READV = 2,
	ZT_SYS_WRITEV = 3,
	ZT_SYS_SENDTO = 4,
	ZT_SYS_RECVFROM = 5,
	ZT_SYS_SENDMSG = 6,
	ZT_SYS_RECVMSG = 7,
	ZT_SYS_SENDMMSG = 8,
	ZT_SYS_RECVMMSG = 9,
	ZT_SYS_SENDFILE = 10,
	ZT_SYS_TLS_READ = 11,  /* SSL_read, SSL_read_ex, gnutls_record_recv (plaintext) */
	ZT_SYS_TLS_WRITE = 12, /* SSL_write, SSL_write_ex, gnutls_record_send (plaintext) */
	ZT_SYS_SPLICE_READ = 13,  /* splice() out of the socket: sizes only */
	ZT_SYS_SPLICE_WRITE = 14, /* splice() into the socket: sizes only */
	ZT_SYS_COUNT = 15,
};

/* Why a connection stopped being tracked. */
enum zt_close_reason {
	ZT_CLOSE_SYSCALL = 0,  /* close(fd) */
	ZT_CLOSE_FD_REUSE = 1, /* fd now names another file: the old socket is gone */
};

/* Value flag in the kernel's `muted` map: the entry mutes the TLS plaintext of the connection
 * generation in the low bits, not its socket bytes (which are ciphertext once TLS is seen). */
#define ZT_MUTED_TLS (1ULL << 63)
/* Value flag in the `muted` map: the entry does not mute, it caps what the kernel copies of
 * each receive (each send with ZT_MUTED_CAP_EGRESS) on the connection generation in the low
 * ZT_MUTED_ID_BITS bits at the byte count in the bits from ZT_MUTED_CAP_SHIFT (0: no cap); of
 * its TLS plaintext with ZT_MUTED_TLS. The rest of a capped syscall is a gap of known length
 * (ZT_DATA_REST_GAP): userspace asks for it in the direction of an HTTP/1 connection's
 * responses once it has learnt that their heads fit, so that the bodies after them are not
 * copied. */
#define ZT_MUTED_CAP (1ULL << 62)
#define ZT_MUTED_CAP_EGRESS (1ULL << 61)
#define ZT_MUTED_CAP_SHIFT 44
#define ZT_MUTED_ID_BITS 44
/* Userspace bumps muted_epochs[conn_id % ZT_MUTED_EPOCHS] after each entry it puts in the
 * muted map; a connection consults the map only when its own slot moved. A power of two. */
#define ZT_MUTED_EPOCHS 64

/* Flags of a connection-close event. */
#define ZT_CLOSE_F_RESET 0x1 /* a read or write failed with ECONNRESET/EPIPE before close */
#define ZT_CLOSE_F_TLS 0x2   /* the lengths are of the TLS plaintext streams, not socket bytes */

/* Flags of a connection-open event. */
#define ZT_CONN_F_PREEXISTING 0x1 /* discovered on first use, not at connect/accept */
#define ZT_CONN_F_AGENT 0x2 /* the agent's own connect (export): untracked; its peer is ignored */

/* Bits of zt_conn_open.family. */
#define ZT_AF_INET 2
#define ZT_AF_INET6 10

/* Fields every record starts with. */
struct zt_event_header {
	__u8 type;     /* enum zt_event_type */
	__u8 pad[3];   /* zero */
	__u32 tgid;    /* process id */
	__u32 tid;     /* thread id */
	__u32 fd;      /* socket fd in tgid; 0 for process events */
	__u64 ts_ns;   /* CLOCK_MONOTONIC (bpf_ktime_get_ns); data: sys_exit for received
		        * bytes, sys_enter for sent bytes (a send starts before its reply) */
	__u64 conn_id; /* unique per (tgid, fd, generation); 0 for process events */
};
ZT_STATIC_ASSERT(sizeof(struct zt_event_header) == 32, "zt_event_header ABI");

/* A connection became tracked: its tuple as the kernel socket knows it. */
struct zt_conn_open {
	struct zt_event_header hdr;
	__u8 role;              /* enum zt_role */
	__u8 flags;             /* ZT_CONN_F_* */
	__u16 family;           /* ZT_AF_INET or ZT_AF_INET6 of the socket */
	__u16 local_port;       /* host byte order */
	__u16 remote_port;      /* host byte order */
	__u8 local_addr[16];    /* IPv4 in the first 4 bytes, or IPv6 (maybe v4-mapped) */
	__u8 remote_addr[16];   /* same layout as local_addr */
	char comm[ZT_COMM_LEN]; /* thread name at the time */
	__u32 netns;            /* the socket's network namespace (inode number); 0 if unknown */
	__u32 pad2;             /* zero */
};
ZT_STATIC_ASSERT(sizeof(struct zt_conn_open) == 32 + 8 + 32 + 16 + 8, "zt_conn_open ABI");

/* A tracked connection ended; positions are the final stream lengths (of the plaintext when
 * ZT_CLOSE_F_TLS): bytes up to them that never arrived as data were lost on the way. */
struct zt_conn_close {
	struct zt_event_header hdr;
	__u64 sent_bytes;     /* egress stream length */
	__u64 received_bytes; /* ingress stream length */
	__u8 reason;          /* enum zt_close_reason */
	__u8 flags;           /* ZT_CLOSE_F_* */
	__u8 pad[6];          /* zero */
};
ZT_STATIC_ASSERT(sizeof(struct zt_conn_close) == 56, "zt_conn_close ABI");

/* One chunk of bytes that a process sent or received on a tracked connection.
 * A syscall yields chunks in stream order. When it moved more than was captured, its last
 * record is a trailer with captured == 0 (stream_pos = end of the syscall): every byte of
 * [syscall_pos, syscall_pos + byte_count) that no chunk delivered is a gap. */
struct zt_data_event {
	struct zt_event_header hdr;
	__u64 syscall_pos; /* stream position of the syscall's first byte */
	__u64 stream_pos;  /* stream position of data[0] */
	__u32 byte_count;  /* bytes the whole syscall moved; may exceed captured */
	__u32 captured;    /* bytes present in data[] */
	__u8 direction;    /* enum zt_direction */
	__u8 source;       /* enum zt_source */
	__u8 syscall;      /* enum zt_syscall */
	__u8 flags;        /* ZT_DATA_* */
	__u8 pad[4];       /* zero */
	/* followed by `captured` payload bytes: the record is at least sizeof(*this) + captured
	 * long (the kernel reserves payload in size classes; what follows is slack) */
};
ZT_STATIC_ASSERT(sizeof(struct zt_data_event) == 64, "zt_data_event ABI");

/* zt_data_event.flags: the syscall's bytes past this record (up to syscall_pos + byte_count)
 * were not captured and no trailer follows: they are a gap (an HTTP/1 body the kernel
 * skipped after a complete head). */
#define ZT_DATA_REST_GAP 1

/* A process exec'd or exited (userspace refreshes or frees its metadata). */
struct zt_proc_event {
	struct zt_event_header hdr;
	__u32 ppid;             /* parent tgid (exec) */
	__u32 pad;              /* zero */
	char comm[ZT_COMM_LEN]; /* name after exec / at exit */
};
ZT_STATIC_ASSERT(sizeof(struct zt_proc_event) == 56, "zt_proc_event ABI");

/* A process mapped a file with PROT_EXEC that the kernel had not reported before
 * (or not since userspace forgot it): userspace looks for TLS libraries in it. */
struct zt_exec_map_event {
	struct zt_event_header hdr;
	__u64 ino;  /* inode number of the file */
	__u32 dev;  /* its superblock's device, kernel encoding: major << 20 | minor */
	__u32 pad;  /* zero */
};
ZT_STATIC_ASSERT(sizeof(struct zt_exec_map_event) == 48, "zt_exec_map_event ABI");

/* Goroutine causality: a goroutine that serves the HTTP/1 server connection served_conn_id
 * (its conn.serve goroutine, or a goroutine it started, transitively; 0: none) starts an
 * HTTP/1 call on the client connection of the header (conn_id, fd). The call's request is the next one
 * written there: its first byte is at send_pos of that connection's stream (the plaintext's when
 * the connection is TLS). served_since_ns says which of the server connection's requests is
 * served: the one in flight then (0: the one in flight when the call starts). */
struct zt_go_call_event {
	struct zt_event_header hdr;
	__u64 send_pos;        /* the call's first byte in the client connection's egress stream */
	__u64 served_conn_id;  /* the server connection whose request the call serves; 0: none */
	__u64 served_since_ns; /* CLOCK_MONOTONIC: a child goroutine's start; 0: the call's time */
	__u64 goid;            /* the calling goroutine (for dumps) */
};
ZT_STATIC_ASSERT(sizeof(struct zt_go_call_event) == 64, "zt_go_call_event ABI");

/* The TLS library functions the uprobes attach to; a multi-uprobe link passes it to the BPF
 * program as the attach cookie. */
enum zt_tls_function {
	ZT_TLS_FN_SSL_WRITE = 0,
	ZT_TLS_FN_SSL_READ = 1,
	ZT_TLS_FN_SSL_WRITE_EX = 2,
	ZT_TLS_FN_SSL_READ_EX = 3,
	ZT_TLS_FN_GNUTLS_RECORD_SEND = 4,
	ZT_TLS_FN_GNUTLS_RECORD_RECV = 5,
	ZT_TLS_FN_SSL_DO_HANDSHAKE = 6,
	ZT_TLS_FN_GNUTLS_HANDSHAKE = 7,
	ZT_TLS_FN_COUNT = 8,
};

/* Counters the BPF side keeps in a per-CPU array, indexed by this enum. */
enum zt_kernel_counter {
	ZT_CNT_RINGBUF_RESERVE_FAILED = 0, /* a record was lost: ring buffer full */
	ZT_CNT_DATA_EVENTS = 1,            /* data events written */
	ZT_CNT_CONN_OPENED = 2,            /* connections that became tracked */
	ZT_CNT_CONN_CLOSED = 3,            /* close events written (to the ring or lost_closes) */
	ZT_CNT_CAPTURE_TRUNCATED = 4,      /* syscalls whose bytes exceeded the capture limit
					    * (muted connections, sizes only by request, excluded) */
	ZT_CNT_READ_USER_FAILED = 5,       /* bpf_probe_read_user failed: bytes became a gap */
	ZT_CNT_IOV_OVERFLOW = 6,           /* iovecs/messages past ZT_MAX_IOV/MMSG (bytes only) */
	ZT_CNT_STASH_MISSING = 7,          /* exit without enter (agent started mid-syscall) */
	ZT_CNT_TLS_CALLS = 8,              /* TLS reads/writes that moved plaintext, emitted */
	ZT_CNT_TLS_NO_FD = 9,              /* plaintext dropped: no socket known for the TLS call */
	ZT_CNT_TLS_FD_CONFLICT = 10,       /* plaintext dropped: the call touched several sockets */
	ZT_CNT_TLS_CONN_GONE = 11,         /* plaintext dropped: its connection is no longer tracked */
	ZT_CNT_TLS_NESTED = 12,            /* TLS calls made inside another one (only the outer counts) */
	ZT_CNT_TLS_BOUND_BY_READ = 13,     /* sessions bound to the socket their thread just read */
	ZT_CNT_PEEK_SKIPPED = 14,          /* MSG_PEEK receives on tracked sockets (moved nothing) */
	ZT_CNT_SPLICE = 15,                /* splice() calls that moved bytes of a tracked socket */
	ZT_CNT_IO_URING = 16,              /* io_uring data requests on a tracked socket (unseen) */
	ZT_CNT_DUP_SHARED = 17,            /* fds dup'd from a tracked socket: they share its streams */
	ZT_CNT_GO_CALLS = 18,              /* Go HTTP/1 calls reported with their goroutine's evidence */
	ZT_CNT_GO_CALL_NO_CONN = 19,       /* such calls dropped: their socket is not tracked */
	ZT_CNT_H2_WALKS = 20,              /* HTTP/2 directions whose frame headers the kernel walks */
	ZT_CNT_H2_WALK_LOST = 21,          /* such walks that lost the frame boundaries (plain capture) */
	ZT_CNT_H2_TLS_WALKS = 22,          /* HTTP/2 directions whose TLS plaintext frames are walked */
	ZT_CNT_H2_TLS_WALK_LOST = 23,      /* such walks that lost the frame boundaries (plain capture) */
	ZT_CNT_BODY_BYTES_SKIPPED = 24,    /* HTTP/1 body bytes of vectored sends not copied */
	ZT_CNT_MUTED_RECORDS_SKIPPED = 25, /* muted connections' syscalls that sent no record */
	ZT_CNT_SEND_STAMPED_AT_EXIT = 26,  /* sends without a valid tcp_sendmsg_locked stamp */
	ZT_CNT_HEAD_CAP_SKIPPED = 27,      /* bytes not copied: past their connection's head cap */
	ZT_CNT_COUNT = 28,
};

#endif /* ZEROTRACE_EVENTS_H */
