/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Structs shared by l7rec's BPF programs and its user-space loader.
 * Keep every struct free of implicit padding: user space mirrors them byte for byte. */
#ifndef L7REC_H
#define L7REC_H

/* A TCP connection as both BPF sides see it, direction-independent:
 * endpoint "a" is the numerically lower (addr, port) pair. The netns inode is part of
 * the key because 127.0.0.1:8080 exists in every network namespace. IPv4 addresses
 * are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
struct l7_flow_key {
	__u32 netns;
	__u16 port_a;
	__u16 port_b;
	__u8 addr_a[16];
	__u8 addr_b[16];
};

/* ---- packet path (sockfilter.bpf.c) ---- */

/* Flow keys built by the packet path: ports in host byte order; "a" is the endpoint
 * whose address (compared byte by byte, network order) is lower, ties broken by the
 * lower port. The netns is the recorder's (rodata), not the packet's. */

/* How to find the IP header on an interface: value of map l7_links (key: ifindex),
 * written by user space. An interface missing from the map is parsed as Ethernet. */
enum l7_link_kind {
	L7_LINK_ETHER = 0,    /* Ethernet header, 802.1Q/802.1ad tags allowed */
	L7_LINK_LOOPBACK = 1, /* lo: zero Ethernet header; drop the outgoing copy */
	L7_LINK_RAW_IP = 2,   /* no link header (tun, wireguard): starts at IPv4/IPv6 */
	L7_LINK_IGNORE = 3,   /* framing we cannot parse: keep nothing */
};

/* l7_flows value: a flow classified as HTTP. FIN/RST counts are updated with 64-bit
 * atomic adds (the only atomics the default BPF CPU target has). No per-flow packet
 * counters: both directions of a flow are filtered on different CPUs, and an atomic
 * add per packet on a shared cache line cost more than it told (l7_pkt_counters has
 * the totals). */
struct l7_flow {
	__u64 classified_ns; /* bpf_ktime_get_ns() when the first HTTP message start was seen */
	__u64 fins_a;        /* FIN segments sent by endpoint a */
	__u64 fins_b;        /* FIN segments sent by endpoint b */
	__u64 rsts;          /* RST segments, either side */
};

/* Index into the per-CPU u64 array l7_pkt_counters. */
enum l7_pkt_counter {
	L7_PC_SEEN = 0,           /* packets the filter ran on */
	L7_PC_KEPT = 1,           /* packets passed to the socket */
	L7_PC_KEPT_BYTES = 2,     /* their wire length (skb->len) */
	L7_PC_FLOWS_CLASSIFIED = 3, /* flows that became HTTP */
	L7_PC_LO_OUTGOING = 4,    /* outgoing duplicates on loopback dropped */
	L7_PC_TRUNCATED = 5,      /* kept packets longer than the snap length */
	L7_PC_FLOW_INSERT_FAIL = 6, /* HTTP flows the table could not take */
	L7_PC_MAX = 7,
};

/* ---- syscall path (syscalls.bpf.c) ---- */

/* Every ringbuf record of syscalls.bpf.c starts with a __u32 kind. */
enum l7_sys_kind {
	L7_EV_IO = 1,   /* struct l7_sys_event, op is a read/write-family syscall */
	L7_EV_CONN = 2, /* struct l7_sys_event, op is connect/accept/accept4/close */
	L7_EV_PROC = 3, /* struct l7_proc_event */
	L7_EV_SEEN = 4, /* struct l7_sys_event: connections mode, a process's connect() or
			 * first receive on a socket (op/fd/ret of that call; ts_enter = the
			 * connection's open time, 0 if it predates recording) */
	L7_EV_ENDED = 5, /* struct l7_sys_event: connections mode, a reported connection
			  * reached TCP CLOSE (op close; tgid/fd/role of its last report,
			  * tid 0, no comm; ts_enter = open time, ts_exit = now) */
};

/* Traced syscalls (values are part of the user-space ABI: append only). */
enum l7_sys_op {
	L7_OP_CONNECT = 1,
	L7_OP_ACCEPT = 2,
	L7_OP_ACCEPT4 = 3,
	L7_OP_CLOSE = 4,
	L7_OP_READ = 5,
	L7_OP_WRITE = 6,
	L7_OP_READV = 7,
	L7_OP_WRITEV = 8,
	L7_OP_RECVFROM = 9,
	L7_OP_SENDTO = 10,
	L7_OP_RECVMSG = 11,
	L7_OP_SENDMSG = 12,
	L7_OP_RECVMMSG = 13,
	L7_OP_SENDMMSG = 14,
	L7_OP_SENDFILE = 15,
};

/* Which side of the connection the traced process is on. */
enum l7_sys_role {
	L7_ROLE_UNKNOWN = 0, /* socket first seen mid-connection */
	L7_ROLE_CLIENT = 1,  /* it called connect() */
	L7_ROLE_SERVER = 2,  /* it got the socket from accept() */
};

enum l7_proc_reason {
	L7_PROC_FIRST_SEEN = 1, /* first traced event of this tgid */
	L7_PROC_EXEC = 2,       /* a process reported before called execve() */
};

/* A TCP socket's endpoints from its own point of view (l = local, r = remote).
 * IPv4 addresses are IPv4-mapped IPv6 (::ffff:a.b.c.d); ports in host byte order. */
struct l7_sock_tuple {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;
	__u16 rport;
	__u16 family; /* AF_INET (2) or AF_INET6 (10) */
	__u16 pad0;
	__u32 netns; /* inode of the socket's network namespace */
	__u32 pad1;
}; /* 48 bytes */

/* kind L7_EV_IO, L7_EV_CONN or L7_EV_SEEN. */
struct l7_sys_event {
	__u32 kind;
	__u32 op;       /* enum l7_sys_op */
	__u64 ts_enter; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) at syscall entry */
	__u64 ts_exit;  /* ... and at syscall exit */
	__s64 ret;      /* raw return: bytes, messages (mmsg), new fd (accept), or -errno */
	__u64 bytes;    /* bytes moved (mmsg: sum of msg_len); 0 on error */
	__u32 tgid;
	__u32 tid;
	__s32 fd; /* accept: the new connection's fd */
	__u32 role; /* enum l7_sys_role */
	char comm[16]; /* thread comm */
	struct l7_sock_tuple sock;
}; /* 120 bytes */

/* Process identity captured in the kernel, in the task's own context, so that it is
 * right even when the process is gone (or a zombie) by the time user space reads /proc. */
#define L7_CMDLINE_MAX 1024 /* bytes of mm->arg_start..arg_end kept */
#define L7_EXE_BUF 512      /* exe path components, see struct l7_proc_event.exe */
#define L7_EXE_NAME_MAX 256 /* one component incl. NUL (NAME_MAX + 1) */
#define L7_EXE_DEPTH 24     /* dentries + mount crossings walked up from the exe */

/* struct l7_proc_event.flags */
enum l7_proc_flags {
	L7_PROC_F_NO_MM = 1 << 0,         /* no mm (kernel thread, exiting): no cmdline, no exe */
	L7_PROC_F_CMDLINE_FAULT = 1 << 1, /* cmdline could not be read (page not resident) */
	L7_PROC_F_EXE_PARTIAL = 1 << 2,   /* exe walk stopped before the root: relative path */
};

/* kind L7_EV_PROC: sent before a process's first event, and again after it execs.
 * Fixed size (bpf_ringbuf_reserve needs a constant); process events are rare. */
struct l7_proc_event {
	__u32 kind;
	__u32 reason; /* enum l7_proc_reason */
	__u32 tgid;
	__u32 ppid;           /* real_parent's tgid */
	__u64 ts;             /* bpf_ktime_get_ns() when sent */
	__u64 start_boottime; /* process start, ns since boot (CLOCK_BOOTTIME) */
	char comm[16];        /* thread-group leader's comm */
	__u32 netns;          /* task's network namespace inode */
	__u32 flags;          /* enum l7_proc_flags */
	__u32 cmdline_len;    /* mm->arg_end - mm->arg_start: the real length */
	__u32 cmdline_copied; /* bytes of cmdline[] filled: < cmdline_len when cut, 0 on fault */
	__u32 exe_len;        /* bytes of exe[] used */
	__u32 pad0;
	char cmdline[L7_CMDLINE_MAX]; /* argv as NUL-terminated strings, back to back */
	/* Executable path as dentry names, LEAF FIRST, each NUL-terminated
	 * ("curl\0bin\0usr\0" = /usr/bin/curl), crossing mount points up to the root of the
	 * task's mount namespace; the leaf (file name) is always first. */
	char exe[L7_EXE_BUF];
}; /* 1608 bytes */

/* ---- TLS path (tls.bpf.c) ---- */

/* Ringbuf records of tls.bpf.c: a fixed header, then (L7_TLS_DATA) `len` bytes. */
enum l7_tls_kind {
	L7_TLS_DATA = 1,  /* plaintext moved by SSL_read/SSL_write(_ex) */
	L7_TLS_CLOSE = 2, /* SSL_free of an SSL object seen before (no data) */
};

/* Which SSL function an entry probe is on: the attach cookie of tls.bpf.c's entry program. */
enum l7_tls_op {
	L7_TLS_OP_READ = 1,
	L7_TLS_OP_READ_EX = 2,
	L7_TLS_OP_WRITE = 3,
	L7_TLS_OP_WRITE_EX = 4,
	L7_TLS_OP_HANDSHAKE = 5, /* moves no plaintext: only learns the socket */
	L7_TLS_OP_FREE = 6,      /* the connection is over */
};

/* struct l7_tls_event.flags */
enum l7_tls_flags {
	L7_TLS_F_READ = 1 << 0,     /* SSL_read*: data flowed from the peer to the process */
	L7_TLS_F_NO_TUPLE = 1 << 1, /* socket not known yet: fd -1, sock zeroed */
};

/* Index into the per-CPU u64 array tls_counters. */
enum l7_tls_counter {
	L7_TLS_C_CHUNKS = 0,         /* data records submitted */
	L7_TLS_C_BYTES = 1,          /* plaintext bytes submitted */
	L7_TLS_C_DROP_CHUNKS = 2,    /* records lost: ringbuf full */
	L7_TLS_C_DROP_BYTES = 3,     /* ... their bytes */
	L7_TLS_C_FAULT_BYTES = 4,    /* bytes bpf_probe_read_user could not copy */
	L7_TLS_C_TRUNC_CALLS = 5,    /* calls larger than L7_TLS_MAX_CALL */
	L7_TLS_C_TRUNC_BYTES = 6,    /* ... bytes beyond it, not copied */
	L7_TLS_C_STATE_FULL = 7,     /* calls not tracked: per-thread state map full */
	L7_TLS_C_MAX = 8,
};

#define L7_TLS_CHUNK 16384 /* plaintext bytes per record at most */
#define L7_TLS_MAX_CHUNKS 1024
#define L7_TLS_MAX_CALL (L7_TLS_CHUNK * L7_TLS_MAX_CHUNKS) /* 16 MiB copied per call */

/* Header of every tls.bpf.c record. `stream_off` is the offset of data[0] in this
 * direction's plaintext stream of the SSL object (per process): bytes lost anywhere
 * (ringbuf full, faults, truncation) leave a hole in the offsets, never a shift. */
struct l7_tls_event {
	__u32 kind;        /* enum l7_tls_kind */
	__u32 flags;       /* enum l7_tls_flags */
	__u64 ts;          /* bpf_ktime_get_ns(): call entry for writes, return for reads */
	__u64 ssl;         /* the SSL * (identifies the TLS connection within the process) */
	__u64 stream_off;  /* see above; CLOSE: bytes written so far */
	__u32 tgid;
	__u32 tid;
	__u32 len;         /* bytes of data[]; CLOSE: 0 */
	__s32 fd;          /* socket fd, -1 if unknown */
	__u64 read_off;    /* CLOSE: bytes read so far; DATA: 0 */
	char comm[16];     /* thread comm */
	struct l7_sock_tuple sock;
	/* __u8 data[len] follows */
}; /* 120 bytes */

#endif /* L7REC_H */
