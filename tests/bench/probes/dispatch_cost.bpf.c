// SPDX-License-Identifier: GPL-2.0
/* Near-empty programs for dispatch_cost: each does at most the syscall-number check a raw
 * tracepoint needs and bumps a counter, so what the benchmark times is the kernel's dispatch of
 * a program, not the program's work. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* The syscall the raw programs stand for (write); set before load. */
const volatile long traced_nr = -1;

/* Runs that passed the filter: proof that a setup's programs ran (not atomic: a count, not a
 * measure). */
__u64 enter_hits;
__u64 exit_hits;

#if defined(__TARGET_ARCH_x86)
#define ZT_NR_FIELD orig_ax
#elif defined(__TARGET_ARCH_arm64)
#define ZT_NR_FIELD syscallno
#else
#error "the syscall number's register is not known for this architecture"
#endif

/* Per-syscall tracepoints: perf_syscall_{enter,exit} fill a perf record, then trace_call_bpf. */
SEC("tracepoint/syscalls/sys_enter_write")
int tp_enter_write(void *ctx)
{
	enter_hits++;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int tp_exit_write(void *ctx)
{
	exit_hits++;
	return 0;
}

/* BTF-typed raw tracepoints: every syscall of the machine; the number is filtered here. */
SEC("tp_btf/sys_enter")
int BPF_PROG(btf_enter, struct pt_regs *regs, long id)
{
	if (id != traced_nr)
		return 0;
	enter_hits++;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(btf_exit, struct pt_regs *regs, long ret)
{
	if (regs->ZT_NR_FIELD != traced_nr) /* direct load through the BTF pointer */
		return 0;
	exit_hits++;
	return 0;
}

/* Untyped raw tracepoint: the number needs a probe read of the registers. */
SEC("raw_tp/sys_exit")
int raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];

	if (BPF_CORE_READ(regs, ZT_NR_FIELD) != traced_nr)
		return 0;
	exit_hits++;
	return 0;
}
