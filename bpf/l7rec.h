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

/* ---- syscall path (syscalls.bpf.c) ---- */

#endif /* L7REC_H */
