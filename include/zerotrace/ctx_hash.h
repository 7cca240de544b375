/* The root trace id both the kernel (bpf/ctx_propagate.bpf.h, at a server's read) and the agent
 * (SpanLinker, for a root span on a connection traced from its start) compute for one HTTP/1
 * request: H(salt, client addr/port, server addr/port, stream position of the request's first
 * byte in the client->server stream). Written once, compiled as BPF C and as C++. */
#ifndef ZEROTRACE_CTX_HASH_H
#define ZEROTRACE_CTX_HASH_H

#ifdef __BPF__
/* vmlinux.h already provides the __u* types. */
#define ZT_CTX_HASH_INLINE static __always_inline
#else
#include <linux/types.h>
#define ZT_CTX_HASH_INLINE static inline
#endif

/* A 64-bit finalizer (the splitmix64 one): every input bit flips about half the output bits. */
ZT_CTX_HASH_INLINE __u64 zt_ctx_mix(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* The trace id of an IPv4 request: addresses with the first address byte most significant
 * (ntohl of the wire form), ports in host order, pos the request's first byte in the
 * client->server stream. Two chained rounds give the two halves; never all-zero. */
ZT_CTX_HASH_INLINE void zt_ctx_trace_id(__u64 salt, __u32 client_ip, __u16 client_port,
					__u32 server_ip, __u16 server_port, __u64 pos,
					__u8 out[16])
{
	__u64 w0 = ((__u64)client_ip << 32) | server_ip;
	__u64 w1 = ((__u64)client_port << 16) | server_port;
	__u64 hi = zt_ctx_mix(zt_ctx_mix(zt_ctx_mix(salt ^ w0 ^ 0x243f6a8885a308d3ULL) ^ w1) ^
			      pos);
	__u64 lo = zt_ctx_mix(zt_ctx_mix(hi ^ salt ^ 0x9e3779b97f4a7c15ULL) ^ pos);
	int i;

	if (hi == 0 && lo == 0)
		lo = 1;
	for (i = 0; i < 8; i++) {
		out[i] = (__u8)(hi >> (56 - 8 * i));
		out[8 + i] = (__u8)(lo >> (56 - 8 * i));
	}
}

#endif /* ZEROTRACE_CTX_HASH_H */
