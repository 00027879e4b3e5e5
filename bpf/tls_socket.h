/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Which socket an SSL call in flight uses: the socket layer's receive tracepoint inside
 * SSL_do_handshake/SSL_read says, for the thread's call in `tls_calls`.
 *
 * Shared by tls.bpf.c, whose own tracepoint program calls l7_tls_note_socket(), and
 * syscalls.bpf.c, whose connections-mode program already runs on that tracepoint and
 * calls it too: one program per receive instead of two (each costs a dispatch on every
 * receive of the host). User space then gives the TLS object this object's two maps
 * (reused fds) and leaves its own tracepoint program unloaded.
 *
 * Include after vmlinux.h, bpf_core_read.h, bpf_tracing.h, l7rec.h and sock_tuple.h,
 * with L7_TS_COMPAT and the L7_NR_* syscall numbers defined. */
#ifndef L7REC_TLS_SOCKET_H
#define L7REC_TLS_SOCKET_H

/* An SSL call between entry and return, per thread. Separate from the syscall tracer's
 * state: the recv/send inside SSL_read/SSL_write has its own entry there. */
struct l7_tls_call {
	__u64 ts_enter;
	__u64 ssl;
	__u64 buf;
	__u64 lenp; /* _ex: size_t *readbytes / *written */
	__u32 op;   /* enum l7_tls_op */
	__u32 depth; /* nested SSL calls (an SSL function calling another one) */
	__s32 fd;
	__u32 have_tuple;
	struct l7_sock_tuple sock;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct l7_tls_call);
} tls_calls SEC(".maps");

/* Entries in tls_calls (SSL calls in flight, plus any whose return was never seen):
 * while it is 0 the socket tracepoints return without a hash lookup. A map rather
 * than a global so that both objects can share it; the verifier inlines the lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tls_inflight SEC(".maps");

/* The counter of SSL calls in flight (never NULL in practice: one array slot). */
static __always_inline __u64 *l7_tls_inflight(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tls_inflight, &zero);
}

/* The fd argument of the socket syscall the current thread is in, or -1 (the call came
 * from elsewhere, e.g. io_uring, or is a compat syscall). */
static __always_inline int l7_tls_syscall_fd(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr;

#if defined(__TARGET_ARCH_x86)
	if (task->thread_info.status & L7_TS_COMPAT)
		return -1;
	nr = BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
	nr = BPF_CORE_READ(regs, syscallno);
#endif
	switch (nr) {
	case L7_NR_read:
	case L7_NR_write:
	case L7_NR_readv:
	case L7_NR_writev:
	case L7_NR_sendto:
	case L7_NR_recvfrom:
	case L7_NR_sendmsg:
	case L7_NR_recvmsg:
		return (int)PT_REGS_PARM1_CORE_SYSCALL(regs);
	}
	return -1;
}

/* The current thread receives on `sk`: if it is inside an SSL call that has no socket
 * yet, that call uses `sk`. */
static __always_inline void l7_tls_note_socket(struct sock *sk)
{
	struct l7_tls_call *call;
	__u64 pid_tgid, *inflight;

	/* This runs on every socket receive on the host. */
	inflight = l7_tls_inflight();
	if (!inflight || !*inflight)
		return;
	pid_tgid = bpf_get_current_pid_tgid();
	call = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!call || call->have_tuple || !sk)
		return;
	if (!l7_is_tcp_ip(sk))
		return;
	l7_tuple_of_sock(sk, &call->sock);
	/* Not connected (yet): no usable tuple. */
	if (!call->sock.rport)
		return;
	call->fd = l7_tls_syscall_fd(bpf_get_current_task_btf());
	call->have_tuple = 1;
}

#endif /* L7REC_TLS_SOCKET_H */
