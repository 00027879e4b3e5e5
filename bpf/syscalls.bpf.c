// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Syscall metadata for l7rec: which process (tgid, tid, comm, fd) moved how many bytes
 * on which TCP socket, plus connection open/close and process-info events.
 *
 * Hooks: tp_btf/sys_enter + tp_btf/sys_exit with a syscall-number switch (two programs
 * instead of ~30 per-syscall tracepoints, and no tracefs needed: this kernel has no
 * kprobes/fentry and tracefs is not mounted by default), plus tp_btf/sched_process_exec
 * and tp_btf/sched_process_exit for process bookkeeping.
 *
 * Cost model: sys_enter/sys_exit run on every syscall of every task on the host, in that
 * task's context, so their cost is paid by the traced servers and clients themselves.
 * Measured (BENCHMARKS.md): hash-map operations and bpf_probe_read_kernel() calls were
 * most of it. So:
 *  - the syscall-number switch comes first; untraced syscalls cost one compare chain;
 *  - then the per-task filters (tgid, netns, comm), read with direct BTF loads from
 *    bpf_get_current_task_btf() (no helper calls);
 *  - the enter->exit state is a per-thread hash entry made once per thread and deleted
 *    at thread exit: one lookup at enter and one at exit, no update/delete per call
 *    (task storage would be cheaper, but creating it fails transiently, see below);
 *  - the fd -> socket walk is direct loads too (bpf_core_cast), no helper calls;
 *    files, pipes and non-TCP sockets stop before any map operation (or after one
 *    cache lookup, for sockets already known not to be TCP);
 *  - the per-(tgid, fd) socket cache also remembers whether the packet filter keeps
 *    the flow, so the 40-byte flow-key lookup runs until a flow is kept, not on every
 *    call, and a cache hit does not read the socket again;
 *  - "process already reported" is a per-thread flag in that entry, not a lookup per
 *    event.
 *
 * Process events carry the process's identity as the kernel sees it at that moment, read
 * in the task's own context: argv (mm->arg_start..arg_end, first L7_CMDLINE_MAX bytes)
 * and the executable's path rebuilt from mm->exe_file's dentries. User space cannot do
 * this later for short-lived processes: they are gone, or zombies without an mm. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "l7rec.h"
#include "sock_tuple.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- configuration (rodata, set by user space before load) ---- */
const volatile __u32 self_tgid = 0;       /* the recorder itself: never traced */
const volatile __u32 target_tgid = 0;     /* 0 = every process */
const volatile __u32 netns_ino = 0;       /* only tasks in this network namespace... */
const volatile __u8 all_netns = 0;        /* ...unless this is set */
const volatile __u8 only_kept_flows = 0;  /* calls mode: I/O events only for flows in l7_flows */
const volatile char target_comm[16] = {}; /* empty = every comm */

/* ---- constants vmlinux.h lacks (macros there are not in BTF) ---- */
#define L7_S_IFMT 0170000
#define L7_S_IFSOCK 0140000
#define L7_EAGAIN 11
#define L7_EINPROGRESS 115
#define L7_ERESTARTSYS 512
#define L7_ERESTART_RESTARTBLOCK 516
#define L7_TS_COMPAT 0x0002 /* x86 thread_info.status: task is in an ia32 syscall */
#define L7_MMSG_MAX 64      /* messages summed per recvmmsg/sendmmsg */

/* ---- syscall numbers (native ABI only) ---- */
#if defined(__TARGET_ARCH_x86)
#define L7_NR_read 0
#define L7_NR_write 1
#define L7_NR_close 3
#define L7_NR_readv 19
#define L7_NR_writev 20
#define L7_NR_sendfile 40
#define L7_NR_connect 42
#define L7_NR_accept 43
#define L7_NR_sendto 44
#define L7_NR_recvfrom 45
#define L7_NR_sendmsg 46
#define L7_NR_recvmsg 47
#define L7_NR_accept4 288
#define L7_NR_recvmmsg 299
#define L7_NR_sendmmsg 307
#define L7_SYSCALL_NR(regs) ((regs)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define L7_NR_close 57
#define L7_NR_read 63
#define L7_NR_write 64
#define L7_NR_readv 65
#define L7_NR_writev 66
#define L7_NR_sendfile 71
#define L7_NR_accept 202
#define L7_NR_connect 203
#define L7_NR_sendto 206
#define L7_NR_recvfrom 207
#define L7_NR_sendmsg 211
#define L7_NR_recvmsg 212
#define L7_NR_accept4 242
#define L7_NR_recvmmsg 243
#define L7_NR_sendmmsg 269
#define L7_SYSCALL_NR(regs) ((regs)->syscallno)
#else
#error "l7rec syscalls.bpf.c: unsupported architecture"
#endif

#include "tls_socket.h" /* connections mode also notes sockets for the TLS tracer */

/* ---- maps ---- */

/* Events to user space; size set by user space (default 16 MiB). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* Lost events, per CPU and cause: user space sums and reports them. */
enum l7_lost {
	L7_LOST_RINGBUF = 0, /* ringbuf full */
	L7_LOST_THREADS = 1, /* thread_state full: the call could not be followed */
	L7_LOST_UNPAIRED = 2, /* a traced call's sys_exit never ran: seen at the thread's
			       * next traced entry (a thread exiting inside a call takes its
			       * state with it, so this is not a normal path) */
	L7_LOST_CAUSES,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7_LOST_CAUSES);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* The socket filter's kept flows. User space replaces this map with the socket filter's
 * own (bpf_map__reuse_fd) when only_kept_flows is set; only presence is checked, so the
 * real value type (struct l7_flow there) does not matter. Same name as in
 * sockfilter.bpf.c: reuse_fd renames the map, and the skeleton looks maps up by name. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct l7_flow_key);
	__type(value, __u8);
} l7_flows SEC(".maps");

/* Per-thread state: the syscall between enter and exit, and whether the thread's process
 * was reported. */
struct l7_task {
	__u64 ts_enter;
	__u64 arg;  /* recvmmsg/sendmmsg: user pointer to the mmsghdr vector */
	__u64 file; /* struct file of `fd` at entry (socket cache check) */
	__u32 op;   /* enum l7_sys_op of the syscall in flight; 0 = none */
	__s32 fd;
	__u32 role; /* from the socket cache */
	__u8 kept;  /* the socket cache says the packet filter keeps this flow */
	__u8 proc_reported; /* this tgid is in procs_seen: no lookup per event */
	__u16 pad0;
	struct l7_sock_tuple sock; /* I/O and close: resolved at entry */
};

/* Keyed by thread id, created at a thread's first socket call, deleted when it exits.
 * A preallocated hash rather than task storage: creating task storage can fail
 * transiently (its per-CPU busy lock, its non-blocking allocator), which lost calls
 * without a trace; an update here fails only when the map is full, and that is counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct l7_task);
} thread_state SEC(".maps");

/* Socket tuple per (tgid, fd): filled on connect/accept exit and on first use, removed on
 * close. `file` guards against fds replaced behind our back (dup2, close_range, exit):
 * an entry is used only while the fd still points at the same struct file. LRU so that
 * entries of such fds age out. */
struct l7_sock_key {
	__u32 tgid;
	__s32 fd;
};

#define L7_ROLE_NOT_TCP 0xff /* sock_cache: a socket, but not TCP/IP: ignore */

struct l7_sock_val {
	__u64 file;
	__u32 role; /* enum l7_sys_role, or L7_ROLE_NOT_TCP */
	__u8 kept; /* seen in l7_flows once: later calls skip the flow-key lookup */
	__u8 pad0[3];
	struct l7_sock_tuple sock;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct l7_sock_key);
	__type(value, struct l7_sock_val);
} sock_cache SEC(".maps");

/* Processes already reported (tgid -> 1); cleared when the process exits. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} procs_seen SEC(".maps");

/* ---- helpers ---- */

static __always_inline void count_lost(__u32 cause)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &cause);

	if (n)
		*n += 1; /* per-CPU slot: no atomic needed */
}

/* The calling thread's state, created (zeroed) on its first socket call. */
static __always_inline struct l7_task *thread_state_of(__u32 tid)
{
	struct l7_task *st = bpf_map_lookup_elem(&thread_state, &tid);
	struct l7_task fresh = {};

	if (st)
		return st;
	bpf_map_update_elem(&thread_state, &tid, &fresh, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&thread_state, &tid);
	if (!st)
		count_lost(L7_LOST_THREADS);
	return st;
}

static __always_inline __u32 op_of(long id)
{
	switch (id) {
	case L7_NR_connect: return L7_OP_CONNECT;
	case L7_NR_accept: return L7_OP_ACCEPT;
	case L7_NR_accept4: return L7_OP_ACCEPT4;
	case L7_NR_close: return L7_OP_CLOSE;
	case L7_NR_read: return L7_OP_READ;
	case L7_NR_write: return L7_OP_WRITE;
	case L7_NR_readv: return L7_OP_READV;
	case L7_NR_writev: return L7_OP_WRITEV;
	case L7_NR_recvfrom: return L7_OP_RECVFROM;
	case L7_NR_sendto: return L7_OP_SENDTO;
	case L7_NR_recvmsg: return L7_OP_RECVMSG;
	case L7_NR_sendmsg: return L7_OP_SENDMSG;
	case L7_NR_recvmmsg: return L7_OP_RECVMMSG;
	case L7_NR_sendmmsg: return L7_OP_SENDMMSG;
	case L7_NR_sendfile: return L7_OP_SENDFILE;
	default: return 0;
	}
}

/* Syscall numbers above are the native ABI's; a 32-bit task's numbers mean other calls. */
static __always_inline bool is_compat_syscall(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	return task->thread_info.status & L7_TS_COMPAT;
#else
	return false;
#endif
}

static __always_inline bool comm_matches(const char comm[16])
{
	if (target_comm[0] == '\0')
		return true;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (comm[i] != target_comm[i])
			return false;
		if (comm[i] == '\0')
			return true;
	}
	return true;
}

/* Cheap per-task filters, before any fd-table walk. `task` is the current task
 * (bpf_get_current_task_btf()): its fields are plain loads, no helper calls. */
static __always_inline bool task_in_scope(struct task_struct *task, __u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (target_tgid && tgid != target_tgid)
		return false;
	if (target_comm[0] != '\0') {
		char comm[16];

		bpf_get_current_comm(comm, sizeof(comm));
		if (!comm_matches(comm))
			return false;
	}
	/* nsproxy is NULL for an exiting task: the faulting load reads 0, not our netns. */
	if (!all_netns && task->nsproxy->net_ns->ns.inum != netns_ino)
		return false;
	return true;
}

/* task->files->fdt->fd[fd], or NULL, with plain loads only. The verifier gives no typed
 * access to fdt->fd (a pointer to pointers), so the slot is read through
 * bpf_core_cast() as a struct kiocb, whose first member is a struct file pointer. */
static __always_inline struct file *file_of_fd(struct task_struct *task, int fd)
{
	struct fdtable *fdt;
	struct file **fds;

	if (fd < 0)
		return NULL;
	fdt = task->files->fdt;
	if (!fdt || (__u32)fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	if (!fds)
		return NULL;
	return bpf_core_cast(&fds[fd], struct kiocb)->ki_filp;
}

/* socket_file_ops, learned from the first socket seen (it is static in the kernel: no
 * ksym). Lets most calls test "is a socket" with one load instead of two. */
__u64 sock_fops = 0;

static __always_inline bool is_socket_file(struct file *file)
{
	__u64 fops = (__u64)file->f_op;

	if (fops && fops == sock_fops)
		return true;
	if ((file->f_inode->i_mode & L7_S_IFMT) != L7_S_IFSOCK)
		return false;
	sock_fops = fops;
	return true;
}

/* The TCP socket behind socket file `file`, or NULL. */
static __always_inline struct sock *tcp_sock_of_file(struct file *file)
{
	struct socket *sock = bpf_core_cast(file->private_data, struct socket);
	struct sock *sk = sock->sk;

	return sk && l7_is_tcp_ip(sk) ? sk : NULL;
}

/* Cache (tgid, fd) -> `val` once the socket is connected (an unconnected socket, e.g.
 * connect() in progress at entry, has no tuple yet), or if it is not TCP. */
static __always_inline void cache_sock(__u32 tgid, int fd, const struct l7_sock_val *val)
{
	struct l7_sock_key key = { .tgid = tgid, .fd = fd };

	if (val->sock.rport || val->role == L7_ROLE_NOT_TCP)
		bpf_map_update_elem(&sock_cache, &key, val, BPF_ANY);
}

/* At connect/accept exit: the (now connected) socket behind `fd`, with `role`, cached.
 * 0 on success. */
static __always_inline int refresh_fd(struct task_struct *task, __u32 tgid, int fd, __u32 role,
				      struct l7_sock_val *out)
{
	struct file *file = file_of_fd(task, fd);
	struct sock *sk;

	if (!file || !is_socket_file(file))
		return -1;
	sk = tcp_sock_of_file(file);
	if (!sk)
		return -1;
	out->file = (__u64)file;
	out->role = role;
	out->kept = 0;
	out->pad0[0] = out->pad0[1] = out->pad0[2] = 0;
	l7_tuple_of_sock(sk, &out->sock);
	cache_sock(tgid, fd, out);
	return 0;
}

/* Remember in the socket cache that the flow is kept (once per socket). */
static __always_inline void mark_kept(__u32 tgid, int fd, __u64 file)
{
	struct l7_sock_key key = { .tgid = tgid, .fd = fd };
	struct l7_sock_val *hit = bpf_map_lookup_elem(&sock_cache, &key);

	if (hit && hit->file == file)
		hit->kept = 1;
}

/* Is this socket's connection one the packet filter keeps? Builds the shared flow key:
 * endpoint "a" is the numerically lower (address bytes, then port) pair. */
static __always_inline bool flow_is_kept(const struct l7_sock_tuple *t)
{
	struct l7_flow_key key = { .netns = t->netns };
	int cmp = 0;

#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (t->laddr[i] != t->raddr[i]) {
			cmp = t->laddr[i] < t->raddr[i] ? -1 : 1;
			break;
		}
	}
	if (cmp == 0 && t->lport != t->rport)
		cmp = t->lport < t->rport ? -1 : 1;
	if (cmp <= 0) {
		key.port_a = t->lport;
		key.port_b = t->rport;
		__builtin_memcpy(key.addr_a, t->laddr, 16);
		__builtin_memcpy(key.addr_b, t->raddr, 16);
	} else {
		key.port_a = t->rport;
		key.port_b = t->lport;
		__builtin_memcpy(key.addr_a, t->raddr, 16);
		__builtin_memcpy(key.addr_b, t->laddr, 16);
	}
	return bpf_map_lookup_elem(&l7_flows, &key) != NULL;
}

/* argv of the current task: the bytes of mm->arg_start..arg_end (what /proc/PID/cmdline
 * shows), at most L7_CMDLINE_MAX of them. Runs in the task's own context, so its user
 * memory is the one read. Non-sleepable: a page that is not resident cannot be faulted
 * in, so on failure retry with what lies in the first page. */
static __always_inline void read_cmdline(struct mm_struct *mm, struct l7_proc_event *e)
{
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	__u64 n;

	e->cmdline_len = len > 0xffffffffULL ? 0xffffffff : (__u32)len;
	n = len < L7_CMDLINE_MAX ? len : L7_CMDLINE_MAX;
	barrier_var(n);
	if (n == 0 || n > L7_CMDLINE_MAX)
		return;
	if (!bpf_probe_read_user(e->cmdline, n, (const void *)start)) {
		e->cmdline_copied = n;
		return;
	}
	n = 4096 - (start & 4095);
	if (n > len)
		n = len;
	barrier_var(n);
	if (n == 0 || n > L7_CMDLINE_MAX ||
	    bpf_probe_read_user(e->cmdline, n, (const void *)start)) {
		e->flags |= L7_PROC_F_CMDLINE_FAULT;
		return;
	}
	e->cmdline_copied = n;
}

/* The executable's path, without bpf_d_path (not allowed from tp_btf): walk from
 * mm->exe_file's dentry up through d_parent, crossing each mount point to its parent
 * mount like the kernel's prepend_path(), and store the names leaf first. Stops at the
 * root of the mount tree the file lives in (the task's mount namespace: a chroot is not
 * honoured), after L7_EXE_DEPTH steps, or when the buffer is full (flag EXE_PARTIAL). */
static __always_inline void read_exe(struct mm_struct *mm, struct l7_proc_event *e)
{
	struct file *exe = BPF_CORE_READ(mm, exe_file);
	__u32 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct dentry *dentry, *parent, *mnt_root;
	struct mount *mnt, *mnt_parent;
	struct vfsmount *vfsmnt;
	bool complete = false;
	__u64 off = 0; /* 64-bit: a 32-bit bound check is lost on zero-extension */

	if (!exe) {
		e->flags |= L7_PROC_F_EXE_PARTIAL;
		return;
	}
	dentry = BPF_CORE_READ(exe, f_path.dentry);
	vfsmnt = BPF_CORE_READ(exe, f_path.mnt);
	mnt = (struct mount *)((void *)vfsmnt - mnt_off);
	for (int i = 0; i < L7_EXE_DEPTH; i++) {
		const unsigned char *name;
		long n;

		if (!dentry)
			break;
		mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
		parent = BPF_CORE_READ(dentry, d_parent);
		if (dentry == mnt_root || dentry == parent) {
			/* A filesystem root that is not its mount's root: unreachable (e.g. a
			 * bind mount's source went away); what we have is all there is. */
			if (dentry != mnt_root) {
				complete = true;
				break;
			}
			mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt || !mnt_parent) {
				complete = true; /* root of the mount tree */
				break;
			}
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			vfsmnt = (struct vfsmount *)((void *)mnt + mnt_off);
			continue;
		}
		barrier_var(off);
		if (off > L7_EXE_BUF - L7_EXE_NAME_MAX)
			break;
		name = BPF_CORE_READ(dentry, d_name.name);
		n = bpf_probe_read_kernel_str(&e->exe[off], L7_EXE_NAME_MAX, name);
		if (n <= 0)
			break;
		off += n;
		dentry = parent;
	}
	e->exe_len = (__u32)off;
	if (!complete)
		e->flags |= L7_PROC_F_EXE_PARTIAL;
}

/* Report the current process: the first time one of its events is sent, or when it
 * execs. A global function, verified once rather than at every (inlined) call site. */
__noinline int l7_emit_proc(__u32 reason)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	struct l7_proc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	struct mm_struct *mm;

	if (!e) {
		count_lost(L7_LOST_RINGBUF);
		return 0;
	}
	e->kind = L7_EV_PROC;
	e->reason = reason;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->ts = bpf_ktime_get_ns();
	e->start_boottime = BPF_CORE_READ(leader, start_boottime);
	if (bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), &leader->comm) < 0)
		e->comm[0] = '\0';
	e->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	e->flags = 0;
	e->cmdline_len = 0;
	e->cmdline_copied = 0;
	e->exe_len = 0;
	e->pad0 = 0;
	mm = BPF_CORE_READ(task, mm);
	if (mm) {
		read_cmdline(mm, e);
		read_exe(mm, e);
	} else {
		e->flags |= L7_PROC_F_NO_MM;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Report the process before its first event, once per tgid (procs_seen). */
static __always_inline void report_process_once(__u32 tgid)
{
	__u8 one = 1;

	if (bpf_map_lookup_elem(&procs_seen, &tgid))
		return;
	/* NOEXIST: of two threads racing here, only one reports. */
	if (bpf_map_update_elem(&procs_seen, &tgid, &one, BPF_NOEXIST))
		return;
	l7_emit_proc(L7_PROC_FIRST_SEEN);
}

/* The same, looked up once per thread (the flag in its thread state). */
static __always_inline void maybe_emit_proc(struct l7_task *st, __u32 tgid)
{
	if (st->proc_reported)
		return;
	st->proc_reported = 1;
	report_process_once(tgid);
}

static __always_inline void emit_sys(struct task_struct *task, struct l7_task *st,
				     __u64 pid_tgid, __u32 kind,
				     __u32 op, __s32 fd, __u32 role, long ret, __u64 bytes,
				     const struct l7_sock_tuple *sock)
{
	__u32 tgid = pid_tgid >> 32;
	struct l7_sys_event *e;

	maybe_emit_proc(st, tgid);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(L7_LOST_RINGBUF);
		return;
	}
	e->kind = kind;
	e->op = op;
	e->ts_enter = st->ts_enter;
	e->ts_exit = bpf_ktime_get_ns();
	e->ret = ret;
	e->bytes = bytes;
	e->tgid = tgid;
	e->tid = (__u32)pid_tgid;
	e->fd = fd;
	e->role = role;
	/* Two loads rather than the bpf_get_current_comm() helper (a string copy). */
	__builtin_memcpy(e->comm, task->comm, sizeof(e->comm));
	__builtin_memcpy(&e->sock, sock, sizeof(e->sock));
	bpf_ringbuf_submit(e, 0);
}

/* Bytes moved by recvmmsg/sendmmsg: the sum of msg_len over the first `n` messages. */
static __always_inline __u64 mmsg_bytes(__u64 vec, long n)
{
	struct mmsghdr *msgs = (struct mmsghdr *)vec;
	__u64 total = 0;

	for (int i = 0; i < L7_MMSG_MAX; i++) {
		unsigned int len = 0;

		if (i >= n)
			break;
		if (bpf_probe_read_user(&len, sizeof(len), &msgs[i].msg_len))
			break;
		total += len;
	}
	return total;
}

/* Transient results that carry no information and would only inflate the event rate:
 * non-blocking "try again" and the kernel-internal restart codes. */
static __always_inline bool is_retry(long ret)
{
	return ret == -L7_EAGAIN || (ret <= -L7_ERESTARTSYS && ret >= -L7_ERESTART_RESTARTBLOCK);
}

/* ---- programs ---- */

SEC("tp_btf/sys_enter")
int BPF_PROG(l7_sys_enter, struct pt_regs *regs, long id)
{
	__u32 op = op_of(id);
	struct task_struct *task;
	struct l7_sock_key key;
	struct l7_sock_val *hit;
	struct l7_task *st;
	struct file *file;
	struct sock *sk;
	__u32 tgid;
	int fd;

	if (!op)
		return 0;
	task = bpf_get_current_task_btf();
	tgid = task->tgid;
	if (is_compat_syscall(task) || !task_in_scope(task, tgid))
		return 0;

	/* Only TCP sockets; files and pipes stop here, before any map operation. connect:
	 * the socket has no tuple yet; accept: the tuple is the new fd's. Both only need "is
	 * a TCP socket" here; close and I/O need the tuple now. */
	fd = (int)PT_REGS_PARM1_CORE_SYSCALL(regs);
	file = file_of_fd(task, fd);
	if (!file || !is_socket_file(file))
		return 0;
	key.tgid = tgid;
	key.fd = fd;
	hit = bpf_map_lookup_elem(&sock_cache, &key);
	if (hit && hit->file == (__u64)file) {
		/* Known socket: no need to look at it again. */
		if (hit->role == L7_ROLE_NOT_TCP)
			return 0;
		st = thread_state_of(task->pid);
		if (!st)
			return 0;
		st->role = hit->role;
		st->kept = hit->kept;
		__builtin_memcpy(&st->sock, &hit->sock, sizeof(st->sock));
	} else {
		struct l7_sock_val val = { .file = (__u64)file, .role = L7_ROLE_UNKNOWN };

		sk = tcp_sock_of_file(file);
		if (!sk) {
			val.role = L7_ROLE_NOT_TCP; /* UDP, unix, netlink...: remember */
			cache_sock(tgid, fd, &val);
			return 0;
		}
		st = thread_state_of(task->pid);
		if (!st)
			return 0;
		l7_tuple_of_sock(sk, &val.sock);
		cache_sock(tgid, fd, &val);
		st->role = L7_ROLE_UNKNOWN;
		st->kept = 0;
		__builtin_memcpy(&st->sock, &val.sock, sizeof(st->sock));
	}
	if (st->op)
		count_lost(L7_LOST_UNPAIRED);
	st->file = (__u64)file;
	st->fd = fd;
	if (op == L7_OP_RECVMMSG || op == L7_OP_SENDMMSG)
		st->arg = PT_REGS_PARM2_CORE_SYSCALL(regs);
	st->ts_enter = bpf_ktime_get_ns();
	st->op = op; /* last: marks the entry complete */
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(l7_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 op = op_of(L7_SYSCALL_NR(regs));
	struct task_struct *task;
	struct l7_sock_val sv;
	struct l7_sock_key key;
	struct l7_task *st;
	__u64 pid_tgid, bytes;
	__u32 tgid, tid;

	if (!op)
		return 0;
	task = bpf_get_current_task_btf();
	tid = task->pid;
	st = bpf_map_lookup_elem(&thread_state, &tid);
	if (!st)
		return 0;
	if (st->op != op) {
		st->op = 0;
		return 0;
	}
	st->op = 0; /* the fields below stay valid until this thread's next sys_enter */
	tgid = task->tgid;
	pid_tgid = (__u64)tgid << 32 | tid;

	switch (op) {
	case L7_OP_CONNECT:
		if (is_retry(ret))
			return 0;
		/* Non-blocking connect returns -EINPROGRESS with the tuple already bound. */
		if (refresh_fd(task, tgid, st->fd, L7_ROLE_CLIENT, &sv))
			return 0;
		emit_sys(task, st, pid_tgid, L7_EV_CONN, op, st->fd, L7_ROLE_CLIENT, ret, 0, &sv.sock);
		break;
	case L7_OP_ACCEPT:
	case L7_OP_ACCEPT4:
		if (ret < 0 || ret > 0x7fffffff)
			return 0;
		if (refresh_fd(task, tgid, (int)ret, L7_ROLE_SERVER, &sv))
			return 0;
		emit_sys(task, st, pid_tgid, L7_EV_CONN, op, (int)ret, L7_ROLE_SERVER, ret, 0, &sv.sock);
		break;
	case L7_OP_CLOSE:
		key.tgid = tgid;
		key.fd = st->fd;
		bpf_map_delete_elem(&sock_cache, &key);
		emit_sys(task, st, pid_tgid, L7_EV_CONN, op, st->fd, st->role, ret, 0, &st->sock);
		break;
	default:
		if (is_retry(ret))
			return 0;
		/* Checked at exit, not entry: a flow becomes "kept" when the socket filter sees
		 * its first HTTP payload, i.e. during the very send/recv that carries it. Once
		 * seen, the socket cache remembers it. */
		if (only_kept_flows && !st->kept) {
			if (!flow_is_kept(&st->sock))
				return 0;
			mark_kept(tgid, st->fd, st->file);
		}
		bytes = 0;
		if (op == L7_OP_RECVMMSG || op == L7_OP_SENDMMSG) {
			if (ret > 0)
				bytes = mmsg_bytes(st->arg, ret);
		} else if (ret > 0) {
			bytes = ret;
		}
		emit_sys(task, st, pid_tgid, L7_EV_IO, op, st->fd, st->role, ret, bytes, &st->sock);
		break;
	}
	return 0;
}

/* ---- connections mode: attribution without per-call events ----
 *
 * tp_btf/sys_enter and sys_exit put every syscall of every task on the host on the
 * tracing slow path and run two programs per syscall, whether or not it touches a
 * socket: most of the recorder's cost under load (BENCHMARKS.md). In connections mode
 * (user space loads these programs instead of those two) each (process, socket) pair is
 * reported once: a client when it connects (the SYN_SENT transition runs in connect()),
 * everyone else at their first receive on the socket (an accepted socket, one opened
 * before recording, one used by another process). Only receives are hooked: every
 * hooked call costs a tracepoint dispatch in the traced task, and the receive is the
 * one call every HTTP server and client makes. Nothing runs on other syscalls. */

struct l7_conn_sock {
	__u64 open_ns;  /* SYN_SENT (client) or ESTABLISHED (accepted), 0 = before recording */
	__u32 role;     /* enum l7_sys_role */
	__u32 reported; /* tgid whose use was last reported; 0 = none */
	__s32 fd;       /* that process's fd, -1 if unknown */
	__u16 lport;    /* local port when reported: a client's is gone by TCP CLOSE */
	__u8 connecting; /* reported = the connecting process, its event not sent yet */
	__u8 pad0;
	/* The connecting thread (its event is sent once established, maybe in softirq). */
	__u32 op;       /* enum l7_sys_op of the call that connected, 0 = unknown */
	__u32 tid;
	char comm[16];
};

/* Socket-local storage: found from the socket itself (no hashing), freed with it. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct l7_conn_sock);
} conn_socks SEC(".maps");

#define L7_TCP_ESTABLISHED 1
#define L7_TCP_SYN_SENT 2
#define L7_TCP_SYN_RECV 3
#define L7_TCP_CLOSE 7

/* A reported connection's end: its TCP state reached CLOSE (after close() and the FIN
 * exchange, or a reset). Often in softirq context: the process is the one last
 * reported on the socket, not the current task. */
static __always_inline void conn_ended(struct sock *sk, struct l7_conn_sock *cs)
{
	struct l7_sys_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(L7_LOST_RINGBUF);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = L7_EV_ENDED;
	e->op = L7_OP_CLOSE;
	e->ts_enter = cs->open_ns;
	e->ts_exit = bpf_ktime_get_ns();
	e->tgid = cs->reported;
	e->fd = cs->fd;
	e->role = cs->role;
	l7_tuple_of_sock(sk, &e->sock);
	/* A client's port went to its TIME_WAIT socket before the CLOSE transition. */
	if (!e->sock.lport)
		e->sock.lport = cs->lport;
	bpf_ringbuf_submit(e, 0);
	cs->reported = 0;
}

#define L7_PF_KTHREAD 0x00200000 /* task->flags: a kernel thread */

/* The syscall the current task is in, for an event: its op (`*op`, 0 if not one of
 * ours or not from a syscall, e.g. io_uring) and fd argument (-1 if unknown). */
static __always_inline void current_call(struct task_struct *task, __u32 *op, __s32 *fd)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u32 o;

	*op = 0;
	*fd = -1;
	if (is_compat_syscall(task))
		return;
	o = op_of(L7_SYSCALL_NR(regs));
	/* connect's, and the read/write family's, first argument is the socket's fd. */
	if (o == L7_OP_CONNECT || o >= L7_OP_READ) {
		*op = o;
		*fd = (__s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
	}
}

/* Send the Seen event of process `tgid` (thread `tid`, `comm`) on the socket with tuple
 * `t`. False if the ring buffer is full. */
static __always_inline bool emit_seen(const struct l7_sock_tuple *t,
				      const struct l7_conn_sock *cs, __u32 tgid, __u32 tid,
				      const char *comm, __u32 op, __s32 fd, long ret)
{
	struct l7_sys_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_lost(L7_LOST_RINGBUF);
		return false;
	}
	e->kind = L7_EV_SEEN;
	e->op = op;
	e->ts_enter = cs ? cs->open_ns : 0;
	e->ts_exit = bpf_ktime_get_ns();
	e->ret = ret;
	e->bytes = ret > 0 ? ret : 0;
	e->tgid = tgid;
	e->tid = tid;
	e->fd = fd;
	e->role = cs ? cs->role : L7_ROLE_UNKNOWN;
	__builtin_memcpy(e->comm, comm, sizeof(e->comm));
	__builtin_memcpy(&e->sock, t, sizeof(e->sock));
	bpf_ringbuf_submit(e, 0);
	return true;
}

/* A socket of the recording's netns starts connecting: connect() runs this in the
 * connecting task. The tuple is not complete yet (the local port is picked right after),
 * so the process is remembered and reported once the connection is established. */
static __always_inline void conn_connecting(struct sock *sk)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct l7_conn_sock *cs;
	__u32 tgid = task->tgid;

	cs = bpf_sk_storage_get(&conn_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!cs)
		return;
	cs->open_ns = bpf_ktime_get_ns();
	cs->role = L7_ROLE_CLIENT;
	cs->reported = 0; /* a socket may connect again after a failed attempt */
	cs->connecting = 0;
	cs->fd = -1;
	/* Out of scope (or a kernel socket): a receive in scope will report it. */
	if ((task->flags & L7_PF_KTHREAD) || !task_in_scope(task, tgid) || !l7_is_tcp_ip(sk))
		return;
	current_call(task, &cs->op, &cs->fd);
	cs->tid = task->pid;
	__builtin_memcpy(cs->comm, task->comm, sizeof(cs->comm));
	cs->reported = tgid;
	cs->connecting = 1;
	report_process_once(tgid); /* needs the task itself: now, not when established */
}

/* A connecting socket is established (often in softirq): report its connector. */
static __always_inline void conn_connected(struct sock *sk, struct l7_conn_sock *cs)
{
	struct l7_sock_tuple t;

	cs->connecting = 0;
	l7_tuple_of_sock(sk, &t);
	cs->lport = t.lport;
	if (!emit_seen(&t, cs, cs->reported, cs->tid, cs->comm, cs->op, cs->fd, 0))
		cs->reported = 0; /* the connector's next receive reports it */
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(l7_conn_state, struct sock *sk, int oldstate, int newstate)
{
	struct l7_conn_sock *cs;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (newstate == L7_TCP_CLOSE) {
		/* Only sockets reported in use have storage with `reported` set. */
		cs = bpf_sk_storage_get(&conn_socks, sk, 0, 0);
		if (!cs || !cs->reported)
			return 0;
		if (cs->connecting) {
			/* The connect failed: nothing was reported, nothing ends. */
			cs->connecting = 0;
			cs->reported = 0;
			return 0;
		}
		conn_ended(sk, cs);
		return 0;
	}
	if (newstate == L7_TCP_ESTABLISHED && oldstate != L7_TCP_SYN_RECV) {
		/* SYN_SENT -> ESTABLISHED; or via SYN_RECV for a simultaneous open, below. */
		cs = bpf_sk_storage_get(&conn_socks, sk, 0, 0);
		if (cs && cs->connecting)
			conn_connected(sk, cs);
		return 0;
	}
	if (newstate != L7_TCP_SYN_SENT && newstate != L7_TCP_ESTABLISHED)
		return 0;
	if (!all_netns && sk->__sk_common.skc_net.net->ns.inum != netns_ino)
		return 0;
	if (newstate == L7_TCP_SYN_SENT) {
		conn_connecting(sk);
		return 0;
	}
	/* SYN_RECV -> ESTABLISHED: an accepted socket (storage is not inherited from the
	 * listener), or a simultaneous open of a connecting one. */
	cs = bpf_sk_storage_get(&conn_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!cs)
		return 0;
	if (cs->connecting) {
		conn_connected(sk, cs);
		return 0;
	}
	cs->open_ns = bpf_ktime_get_ns();
	cs->role = L7_ROLE_SERVER; /* in softirq: no process yet, its first receive says */
	cs->reported = 0;
	cs->fd = -1;
	return 0;
}

/* The current task received on `sk` (`ret`: the call's result). */
static __always_inline void conn_received(struct sock *sk, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct l7_conn_sock *cs;
	struct l7_sock_tuple t;
	__u32 tgid = task->tgid, op;
	__s32 fd;

	/* The hot path, one lookup per receive: this process was reported on this socket
	 * already (it was in scope then), so nothing to check or do. */
	cs = bpf_sk_storage_get(&conn_socks, sk, 0, 0);
	if (cs && (cs->reported == tgid || cs->connecting))
		return;
	if (!task_in_scope(task, tgid))
		return;
	if (!l7_is_tcp_ip(sk))
		return;
	l7_tuple_of_sock(sk, &t);
	if (!t.rport)
		return;
	/* Every connection in scope is reported, not only the flows the packet filter
	 * keeps (as calls mode reports every connect/accept): TLS plaintext is attributed
	 * through its ciphertext connection, which the filter drops; and one report is
	 * cheaper than a flow lookup on each call of an unkept connection. */
	/* Storage that cannot be made (no memory) only means reporting again next time. */
	if (!cs)
		cs = bpf_sk_storage_get(&conn_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	current_call(task, &op, &fd);
	if (cs) {
		cs->reported = tgid;
		cs->fd = fd;
		cs->lport = t.lport;
	}
	report_process_once(tgid);
	if (!emit_seen(&t, cs, tgid, task->pid, task->comm, op, fd, ret) && cs)
		cs->reported = 0; /* try again on the next call */
}

/* Both jobs of the receive tracepoint in one program (tls_socket.h). Sends are not
 * hooked: a client was reported at connect(), and a peer's first receive comes before
 * (or without) any send in HTTP. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(l7_conn_recv, struct sock *sk, int ret, int flags)
{
	conn_received(sk, ret);
	l7_tls_note_socket(sk);
	return 0;
}

/* A reported process replaced its image: report it again (new comm, exe, cmdline). */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(l7_proc_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task = bpf_get_current_task_btf();

	if (!bpf_map_lookup_elem(&procs_seen, &tgid))
		return 0;
	if (!task_in_scope(task, tgid))
		return 0;
	l7_emit_proc(L7_PROC_EXEC);
	return 0;
}

/* Forget exiting processes, so a reused pid is reported afresh. Keyed on the leader's
 * exit rather than the tracepoint's group_dead argument (only in recent kernels); a
 * leader that exits before its threads at worst causes one duplicate process event.
 * Every exiting thread's state is deleted. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(l7_proc_exit, struct task_struct *p)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;

	bpf_map_delete_elem(&thread_state, &tid);
	if (tid == tgid)
		bpf_map_delete_elem(&procs_seen, &tgid);
	return 0;
}
