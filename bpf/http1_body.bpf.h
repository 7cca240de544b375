/* HTTP/1 bodies in vectored sends: whether the iovec after a response head is a body that
 * need not be copied. Included by socket_emit.bpf.h. */
#ifndef ZT_HTTP1_BODY_BPF_H
#define ZT_HTTP1_BODY_BPF_H

/* "HTTP/1." and CRLF CRLF as little-endian words */
#define ZT_HTTP1_MAGIC 0x2e312f50545448ULL
#define ZT_HTTP1_MAGIC_MASK 0xffffffffffffffULL
#define ZT_CRLFCRLF 0x0a0d0a0dU

static __always_inline bool zt_hex(__u8 c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Whether the iovec after a buffer of len >= 16 bytes at ubuf is an HTTP/1 body the parser
 * only skips: the buffer must be a whole response head ("HTTP/1." ... CRLF CRLF), and the
 * next iovec (>= 8 bytes at nbuf) must neither start another response nor look like a
 * chunk-size line (hex digits, then CR, ';' or ' ': chunked framing stays captured). */
static __always_inline bool zt_body_follows(__u64 ubuf, __u32 len, __u64 nbuf)
{
	__u64 w = 0;

	if (bpf_probe_read_user(&w, sizeof(w), (void *)ubuf) ||
	    (w & ZT_HTTP1_MAGIC_MASK) != ZT_HTTP1_MAGIC)
		return false;
	if (bpf_probe_read_user(&w, 4, (void *)(ubuf + len - 4)) || (__u32)w != ZT_CRLFCRLF)
		return false;
	if (bpf_probe_read_user(&w, sizeof(w), (void *)nbuf) ||
	    (w & ZT_HTTP1_MAGIC_MASK) == ZT_HTTP1_MAGIC)
		return false;
	for (int i = 0; i < 8; i++) {
		__u8 c = w >> (8 * i);

		if (zt_hex(c))
			continue;
		return !(i > 0 && (c == '\r' || c == ';' || c == ' '));
	}
	return true; /* eight hex digits: a body (a chunk size would exceed any capture) */
}

#endif /* ZT_HTTP1_BODY_BPF_H */
