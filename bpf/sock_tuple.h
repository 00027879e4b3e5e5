/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A TCP/IP socket's endpoints as struct l7_sock_tuple (l7rec.h), read with direct BTF
 * loads from its struct sock. Shared by syscalls.bpf.c and tls.bpf.c; include after
 * vmlinux.h, bpf_endian.h and l7rec.h. */
#ifndef L7REC_SOCK_TUPLE_H
#define L7REC_SOCK_TUPLE_H

#define L7_AF_INET 2
#define L7_AF_INET6 10

/* IPv4 address `addr` (network order) as ::ffff:a.b.c.d into `out`. */
static __always_inline void l7_v4_mapped(__u8 out[16], __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

/* A TCP socket over IPv4 or IPv6? */
static __always_inline bool l7_is_tcp_ip(struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	return (family == L7_AF_INET || family == L7_AF_INET6) && sk->sk_protocol == IPPROTO_TCP;
}

/* `sk`'s endpoints into `t` (an AF_INET or AF_INET6 socket). */
static __always_inline void l7_tuple_of_sock(struct sock *sk, struct l7_sock_tuple *t)
{
	__u16 family = sk->__sk_common.skc_family;

	t->family = family;
	t->pad0 = 0;
	t->pad1 = 0;
	t->lport = sk->__sk_common.skc_num;
	t->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	t->netns = sk->__sk_common.skc_net.net->ns.inum;
	if (family == L7_AF_INET) {
		l7_v4_mapped(t->laddr, sk->__sk_common.skc_rcv_saddr);
		l7_v4_mapped(t->raddr, sk->__sk_common.skc_daddr);
	} else {
		__u32 *l = (__u32 *)t->laddr, *r = (__u32 *)t->raddr;

#pragma unroll
		for (int i = 0; i < 4; i++) {
			l[i] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[i];
			r[i] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[i];
		}
	}
}

#endif /* L7REC_SOCK_TUPLE_H */
