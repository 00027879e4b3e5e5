// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TLS plaintext for l7rec: uprobes on OpenSSL's SSL_read, SSL_read_ex, SSL_write and
 * SSL_write_ex (entry: remember the call; return: copy the bytes actually moved), and on
 * SSL_free (the connection is over).
 *
 * Which socket? OpenSSL's BIO (nginx: a socket BIO; curl: its own BIO) receives on the
 * socket inside the SSL call, on the same thread. The socket layer's own receive
 * tracepoint (tp_btf/sock_recv_length) hands us that struct sock when a thread inside a
 * tracked SSL call (SSL_do_handshake, a read, or a write that finishes a handshake)
 * receives on it: its TCP 4-tuple goes into the call's state and, at return, is
 * remembered per SSL object, since later calls may not touch the socket (writes only
 * send, and a read may be served from OpenSSL's buffer). Sends are not watched: every
 * watched call costs a dispatch on the host's every such call, and both ends of a TLS
 * connection receive during the handshake. The fd comes from the syscall's saved
 * registers. This is independent of OpenSSL's struct layouts (no rbio/fd
 * offsets), and unlike tp_btf/sys_enter it costs nothing on the host's other syscalls.
 * That part lives in tls_socket.h: in connections mode the syscall tracer's programs
 * on the same tracepoints do it, and this object's two are not loaded.
 *
 * Completeness: the whole return value is copied, in records of at most L7_TLS_CHUNK
 * bytes (bpf_loop, at most L7_TLS_MAX_CALL bytes per call), each record sized to its
 * data by three size classes. Every record carries its offset in the per-SSL, per-
 * direction plaintext stream, kept here: whatever is lost (ringbuf full, page fault,
 * truncation) becomes a hole in the offsets that user space reproduces as a hole in the
 * TCP sequence space, and is counted in tls_counters. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "l7rec.h"
#include "sock_tuple.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- configuration (rodata, set by user space before load) ---- */
const volatile __u32 self_tgid = 0;   /* the recorder itself: never traced */
const volatile __u32 target_tgid = 0; /* 0 = every process */
const volatile __u32 netns_ino = 0;   /* only tasks in this network namespace... */
const volatile __u8 all_netns = 0;    /* ...unless this is set */

/* ---- constants vmlinux.h lacks ---- */
#define L7_TS_COMPAT 0x0002

/* ---- I/O syscall numbers (native ABI only) ---- */
#if defined(__TARGET_ARCH_x86)
#define L7_NR_read 0
#define L7_NR_write 1
#define L7_NR_readv 19
#define L7_NR_writev 20
#define L7_NR_sendto 44
#define L7_NR_recvfrom 45
#define L7_NR_sendmsg 46
#define L7_NR_recvmsg 47
#elif defined(__TARGET_ARCH_arm64)
#define L7_NR_read 63
#define L7_NR_write 64
#define L7_NR_readv 65
#define L7_NR_writev 66
#define L7_NR_sendto 206
#define L7_NR_recvfrom 207
#define L7_NR_sendmsg 211
#define L7_NR_recvmsg 212
#else
#error "l7rec tls.bpf.c: unsupported architecture"
#endif

/* ---- maps ---- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 << 20);
} tls_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7_TLS_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_counters SEC(".maps");

#include "tls_socket.h"

/* Per SSL object (per process): its socket, once learned, and the stream offsets. */
struct l7_tls_ssl_key {
	__u32 tgid;
	__u32 pad0;
	__u64 ssl;
};

struct l7_tls_ssl {
	__u64 written; /* plaintext bytes SSL_write* returned so far */
	__u64 read;    /* plaintext bytes SSL_read* returned so far */
	__s32 fd;
	__u32 have_tuple;
	struct l7_sock_tuple sock;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct l7_tls_ssl_key);
	__type(value, struct l7_tls_ssl);
} tls_ssls SEC(".maps");

/* ---- helpers ---- */

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&tls_counters, &idx);

	if (v)
		*v += n; /* per-CPU slot: no atomic needed */
}

static __always_inline bool task_in_scope(struct task_struct *task, __u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (target_tgid && tgid != target_tgid)
		return false;
	if (!all_netns && BPF_CORE_READ(task, nsproxy, net_ns, ns.inum) != netns_ino)
		return false;
	return true;
}

static __always_inline bool same_tuple(const struct l7_sock_tuple *a,
				       const struct l7_sock_tuple *b)
{
	if (a->lport != b->lport || a->rport != b->rport || a->family != b->family)
		return false;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (a->laddr[i] != b->laddr[i] || a->raddr[i] != b->raddr[i])
			return false;
	}
	return true;
}

/* ---- entry probes ---- */

static __always_inline int enter(__u32 op, void *ssl, const void *buf, void *lenp)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct l7_tls_call *cur, call = {};

	cur = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (cur && cur->ssl == (__u64)ssl) {
		/* An SSL function called by another one on the same object: the outer call
		 * reports. (Another object: a stale entry whose return was never seen.) */
		cur->depth += 1;
		return 0;
	}
	if (!task_in_scope(task, pid_tgid >> 32))
		return 0;
	call.ts_enter = bpf_ktime_get_ns();
	call.ssl = (__u64)ssl;
	call.buf = (__u64)buf;
	call.lenp = (__u64)lenp;
	call.op = op;
	call.fd = -1;
	if (!bpf_map_update_elem(&tls_calls, &pid_tgid, &call, BPF_NOEXIST)) {
		__u64 *inflight = l7_tls_inflight();

		if (inflight)
			__sync_fetch_and_add(inflight, 1);
	} else if (bpf_map_update_elem(&tls_calls, &pid_tgid, &call, BPF_ANY)) {
		count(L7_TLS_C_STATE_FULL, 1);
	}
	return 0;
}

/* ---- end of a TLS connection ---- */

static __always_inline int ssl_free(void *ssl)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct l7_tls_ssl_key skey = {};
	struct l7_tls_event *e;
	struct l7_tls_ssl *st;

	skey.tgid = pid_tgid >> 32;
	skey.ssl = (__u64)ssl;
	st = bpf_map_lookup_elem(&tls_ssls, &skey);
	if (!st)
		return 0;
	e = bpf_ringbuf_reserve(&tls_events, sizeof(*e), 0);
	if (e) {
		__builtin_memset(e, 0, sizeof(*e));
		e->kind = L7_TLS_CLOSE;
		e->flags = st->have_tuple ? 0 : L7_TLS_F_NO_TUPLE;
		e->ts = bpf_ktime_get_ns();
		e->ssl = (__u64)ssl;
		e->stream_off = st->written;
		e->read_off = st->read;
		e->tgid = skey.tgid;
		e->tid = (__u32)pid_tgid;
		e->fd = st->fd;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		__builtin_memcpy(&e->sock, &st->sock, sizeof(e->sock));
		bpf_ringbuf_submit(e, 0);
	} else {
		count(L7_TLS_C_DROP_CHUNKS, 1);
	}
	bpf_map_delete_elem(&tls_ssls, &skey);
	return 0;
}

/* One entry program for every probed function, told apart by the attach cookie (enum
 * l7_tls_op): user space attaches it with a single uprobe.multi link where the kernel
 * has them (6.6+), whose detach waits for the kernel once instead of once per function.
 * SSL_do_handshake: both ends receive during the handshake, so its socket is known
 * before the first SSL_write (only receives are watched, tls_socket.h). */
SEC("uprobe")
int BPF_KPROBE(l7_ssl_enter, void *ssl, void *buf, __u64 num, void *lenp)
{
	__u32 op = (__u32)bpf_get_attach_cookie(ctx);

	switch (op) {
	case L7_TLS_OP_READ:
	case L7_TLS_OP_WRITE:
		return enter(op, ssl, buf, NULL);
	case L7_TLS_OP_READ_EX:
	case L7_TLS_OP_WRITE_EX:
		return enter(op, ssl, buf, lenp);
	case L7_TLS_OP_HANDSHAKE:
		return enter(op, ssl, NULL, NULL);
	case L7_TLS_OP_FREE:
		return ssl_free(ssl);
	}
	return 0;
}

/* ---- the nested socket call: which socket the SSL object uses ---- */

SEC("tp_btf/sock_recv_length")
int BPF_PROG(l7_tls_sock_recv, struct sock *sk, int ret, int flags)
{
	l7_tls_note_socket(sk);
	return 0;
}

/* ---- return probe: copy what was moved ---- */

struct copy_ctx {
	struct l7_tls_event hdr; /* filled except len and stream_off */
	__u64 src;               /* user buffer */
	__u64 total;             /* bytes to copy (<= L7_TLS_MAX_CALL) */
	__u64 base;              /* stream offset of src[0] */
};

/* One record of `n` (1..L7_TLS_CHUNK) bytes in a record of data size SZ (>= n). */
#define L7_TLS_EMIT(SZ)                                                                    \
	do {                                                                               \
		struct l7_tls_event *e;                                                    \
		__u64 m = n;                                                               \
		e = bpf_ringbuf_reserve(&tls_events, sizeof(struct l7_tls_event) + (SZ), 0); \
		if (!e) {                                                                  \
			count(L7_TLS_C_DROP_CHUNKS, 1);                                    \
			count(L7_TLS_C_DROP_BYTES, n);                                     \
			return 0;                                                          \
		}                                                                          \
		__builtin_memcpy(e, &c->hdr, sizeof(*e));                                  \
		e->len = (__u32)n;                                                         \
		e->stream_off = c->base + off;                                             \
		barrier_var(m);                                                            \
		if (m > (SZ))                                                              \
			m = (SZ);                                                          \
		if (bpf_probe_read_user((void *)(e + 1), m, (const void *)(c->src + off))) { \
			bpf_ringbuf_discard(e, 0);                                         \
			count(L7_TLS_C_FAULT_BYTES, n);                                    \
			return 0;                                                          \
		}                                                                          \
		bpf_ringbuf_submit(e, 0);                                                  \
		count(L7_TLS_C_CHUNKS, 1);                                                 \
		count(L7_TLS_C_BYTES, n);                                                  \
	} while (0)

static int copy_chunk(__u32 i, struct copy_ctx *c)
{
	__u64 off = (__u64)i * L7_TLS_CHUNK;
	__u64 n;

	if (off >= c->total)
		return 1; /* done */
	n = c->total - off;
	if (n > L7_TLS_CHUNK)
		n = L7_TLS_CHUNK;
	if (n <= 512)
		L7_TLS_EMIT(512);
	else if (n <= 4096)
		L7_TLS_EMIT(4096);
	else
		L7_TLS_EMIT(L7_TLS_CHUNK);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(l7_ssl_ret, long rc)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct l7_tls_ssl_key skey = {};
	struct l7_tls_ssl *st;
	struct l7_tls_call *pcall;
	struct copy_ctx c = {};
	__u64 bytes = 0, base, ts_enter, lenp;
	__u32 op, have_tuple;
	__s32 fd;
	bool is_read;
	int ret = (int)rc; /* all four return int */

	pcall = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!pcall)
		return 0;
	if (pcall->depth > 0) {
		pcall->depth -= 1;
		return 0;
	}
	ts_enter = pcall->ts_enter;
	lenp = pcall->lenp;
	op = pcall->op;
	have_tuple = pcall->have_tuple;
	fd = pcall->fd;
	c.src = pcall->buf;
	skey.ssl = pcall->ssl;
	/* The event's tuple: the one learned in this call, else the SSL object's (below). */
	__builtin_memcpy(&c.hdr.sock, &pcall->sock, sizeof(c.hdr.sock));
	if (!bpf_map_delete_elem(&tls_calls, &pid_tgid)) {
		__u64 *inflight = l7_tls_inflight();

		if (inflight)
			__sync_fetch_and_sub(inflight, 1);
	}
	is_read = op == L7_TLS_OP_READ || op == L7_TLS_OP_READ_EX;

	if (op == L7_TLS_OP_READ || op == L7_TLS_OP_WRITE) {
		if (ret > 0)
			bytes = (__u64)ret;
	} else if (ret == 1 && lenp) {
		if (bpf_probe_read_user(&bytes, sizeof(bytes), (const void *)lenp))
			bytes = 0;
	}

	skey.tgid = pid_tgid >> 32;
	st = bpf_map_lookup_elem(&tls_ssls, &skey);
	if (!st) {
		struct l7_tls_ssl fresh = { .fd = -1 };

		if (!bytes && !have_tuple)
			return 0;
		bpf_map_update_elem(&tls_ssls, &skey, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&tls_ssls, &skey);
		if (!st)
			return 0;
	}
	if (have_tuple) {
		/* The same SSL object on another connection (SSL_clear, or a freed and
		 * reused address we missed): a new stream. */
		if (st->have_tuple && !same_tuple(&st->sock, &c.hdr.sock)) {
			st->written = 0;
			st->read = 0;
		}
		__builtin_memcpy(&st->sock, &c.hdr.sock, sizeof(st->sock));
		st->fd = fd;
		st->have_tuple = 1;
	}
	if (!bytes)
		return 0;
	if (is_read) {
		base = st->read;
		st->read += bytes;
	} else {
		base = st->written;
		st->written += bytes;
	}

	c.hdr.kind = L7_TLS_DATA;
	c.hdr.flags = is_read ? L7_TLS_F_READ : 0;
	c.hdr.ts = is_read ? bpf_ktime_get_ns() : ts_enter;
	c.hdr.ssl = skey.ssl;
	c.hdr.tgid = skey.tgid;
	c.hdr.tid = (__u32)pid_tgid;
	c.hdr.fd = st->fd;
	if (st->have_tuple)
		__builtin_memcpy(&c.hdr.sock, &st->sock, sizeof(c.hdr.sock));
	else
		c.hdr.flags |= L7_TLS_F_NO_TUPLE;
	bpf_get_current_comm(c.hdr.comm, sizeof(c.hdr.comm));
	c.base = base;
	c.total = bytes;
	if (bytes > L7_TLS_MAX_CALL) {
		count(L7_TLS_C_TRUNC_CALLS, 1);
		count(L7_TLS_C_TRUNC_BYTES, bytes - L7_TLS_MAX_CALL);
		c.total = L7_TLS_MAX_CALL;
	}
	bpf_loop(L7_TLS_MAX_CHUNKS, copy_chunk, &c, 0);
	return 0;
}
