// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* l7rec packet path: a socket filter for an AF_PACKET raw socket that keeps, in the
 * kernel, every packet of TCP flows that carry HTTP/1.x and drops everything else.
 *
 * A flow becomes HTTP when one of its payloads starts with a method token or
 * "HTTP/1."; from then on all its packets, both directions, are kept (whole, up to the
 * snap length) until the LRU table ages it out. Classification looks at each payload,
 * so connections opened before recording are picked up at their next message.
 *
 * Socket filters cannot read packet memory directly: everything goes through
 * bpf_skb_load_bytes, whose offsets are relative to skb->data (the link header for
 * Ethernet-framed devices, the IP header for raw-IP ones). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "l7rec.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define L7_MAX_PORTS 16
#define L7_MAX_VLAN_TAGS 2
#define L7_MAX_IPV6_EXT 6
#define L7_MAX_FLOWS 65536
#define L7_MAX_LINKS 1024

#define L7_ETH_HLEN 14
#define L7_ETH_P_IP 0x0800
#define L7_ETH_P_IPV6 0x86DD
#define L7_ETH_P_8021Q 0x8100
#define L7_ETH_P_8021AD 0x88A8
#define L7_IPPROTO_TCP 6
#define L7_NEXTHDR_HOP 0
#define L7_NEXTHDR_ROUTING 43
#define L7_NEXTHDR_FRAGMENT 44
#define L7_NEXTHDR_AUTH 51
#define L7_NEXTHDR_DEST 60
#define L7_PACKET_OUTGOING 4
#define L7_LOOPBACK_IFINDEX 1 /* lo, in every network namespace */

#define L7_TCP_FIN 0x01
#define L7_TCP_SYN 0x02
#define L7_TCP_RST 0x04
#define L7_TCP_ACK 0x10

/* Set by user space before load. */
const volatile __u32 l7_netns = 0;         /* recorder's netns inode: part of every key */
const volatile __u32 l7_snaplen = 262144;  /* bytes kept per packet at most */
const volatile __u32 l7_all_tcp = 0;       /* keep every TCP packet */
const volatile __u32 l7_nports = 0;        /* 0: any port; else only these ports */
const volatile __u16 l7_ports[L7_MAX_PORTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7_MAX_FLOWS);
	__type(key, struct l7_flow_key);
	__type(value, struct l7_flow);
} l7_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7_MAX_LINKS);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* enum l7_link_kind */
} l7_links SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7_PC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} l7_pkt_counters SEC(".maps");

/* What the parser extracts from one TCP segment. */
struct l7_pkt {
	struct l7_flow_key key;
	__u32 payload_off; /* from skb->data */
	__u32 payload_len;
	__u16 sport;
	__u16 dport;
	__u8 tcp_flags;
	__u8 from_a; /* sender is endpoint a of the key */
};

static __always_inline void l7_count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&l7_pkt_counters, &idx);

	if (v)
		*v += n; /* per-CPU slot: no atomics needed */
}

/* Copies IPv4 address @v4 (network order) as ::ffff:a.b.c.d into @dst. */
static __always_inline void l7_addr_v4mapped(__u8 *dst, __u32 v4)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &v4, 4);
}

/* <0, 0, >0 like memcmp on two 16-byte network-order addresses. */
static __always_inline int l7_addr_cmp(const __u8 *x, const __u8 *y)
{
	__u32 a, b;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		__builtin_memcpy(&a, x + 4 * i, 4);
		__builtin_memcpy(&b, y + 4 * i, 4);
		a = bpf_ntohl(a);
		b = bpf_ntohl(b);
		if (a != b)
			return a < b ? -1 : 1;
	}
	return 0;
}

/* Fills p->key from the source/destination of the segment, lower endpoint first. */
static __always_inline void l7_make_key(struct l7_pkt *p, const __u8 *saddr, const __u8 *daddr)
{
	int c = l7_addr_cmp(saddr, daddr);

	p->key.netns = l7_netns;
	if (c < 0 || (c == 0 && p->sport <= p->dport)) {
		p->from_a = 1;
		p->key.port_a = p->sport;
		p->key.port_b = p->dport;
		__builtin_memcpy(p->key.addr_a, saddr, 16);
		__builtin_memcpy(p->key.addr_b, daddr, 16);
	} else {
		p->from_a = 0;
		p->key.port_a = p->dport;
		p->key.port_b = p->sport;
		__builtin_memcpy(p->key.addr_a, daddr, 16);
		__builtin_memcpy(p->key.addr_b, saddr, 16);
	}
}

/* Link header: returns the L3 ethertype and sets *off to the IP header, or 0. */
static __always_inline __u16 l7_parse_link(struct __sk_buff *skb, __u32 kind, __u32 *off)
{
	__u16 proto;
	__u8 b;
	int i;

	if (kind == L7_LINK_RAW_IP) {
		*off = 0;
		if (bpf_skb_load_bytes(skb, 0, &b, 1) < 0)
			return 0;
		if ((b >> 4) == 4)
			return L7_ETH_P_IP;
		if ((b >> 4) == 6)
			return L7_ETH_P_IPV6;
		return 0;
	}
	if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0)
		return 0;
	proto = bpf_ntohs(proto);
	*off = L7_ETH_HLEN;
	/* In-band VLAN tags (when the NIC did not strip them into skb metadata). */
#pragma unroll
	for (i = 0; i < L7_MAX_VLAN_TAGS; i++) {
		if (proto != L7_ETH_P_8021Q && proto != L7_ETH_P_8021AD)
			break;
		if (bpf_skb_load_bytes(skb, *off + 2, &proto, 2) < 0)
			return 0;
		proto = bpf_ntohs(proto);
		*off += 4;
	}
	return proto;
}

/* The link, IPv4 and TCP headers of the common case, loaded at `eth_addrs` in one call.
 * The leading pad aligns the IP and TCP headers: the verifier rejects misaligned stack
 * reads. */
struct l7_eth_ip4_tcp {
	__u8 pad[2];
	__u8 eth_addrs[12];
	__be16 eth_proto;
	struct iphdr ip;
	struct tcphdr tcp;
};
#define L7_ETH_IP4_TCP_LEN (L7_ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))

/* Checks IPv4 header @ip (at @off) carries TCP and is a first fragment; sets the end of
 * its datagram and its addresses. Returns 0 if usable. */
static __always_inline int l7_ipv4(struct __sk_buff *skb, const struct iphdr *ip, __u32 off,
				   __u32 *end, __u8 *saddr, __u8 *daddr)
{
	__u16 tot;

	if (ip->version != 4 || ip->protocol != L7_IPPROTO_TCP)
		return -1;
	/* Only the first fragment carries the TCP header (TCP sets DF anyway). */
	if (bpf_ntohs(ip->frag_off) & 0x1fff)
		return -1;
	if (ip->ihl < 5)
		return -1;
	tot = bpf_ntohs(ip->tot_len);
	/* tot_len 0: a GSO super-packet larger than 64 KiB (BIG TCP). */
	*end = tot ? off + tot : skb->len;
	l7_addr_v4mapped(saddr, ip->saddr);
	l7_addr_v4mapped(daddr, ip->daddr);
	return 0;
}

/* Fills ports, flags and payload bounds of @p from TCP header @th at @l4, in an IP
 * datagram ending at @end. Returns 0 if usable. */
static __always_inline int l7_tcp(struct __sk_buff *skb, const struct tcphdr *th, __u32 l4,
				  __u32 end, struct l7_pkt *p)
{
	__u32 doff = (__u32)th->doff * 4;

	if (doff < sizeof(*th))
		return -1;
	p->sport = bpf_ntohs(th->source);
	p->dport = bpf_ntohs(th->dest);
	/* Byte 13 of the TCP header holds CWR..FIN. */
	p->tcp_flags = ((const __u8 *)th)[13];
	p->payload_off = l4 + doff;
	/* IP length, not skb->len: short frames carry Ethernet padding. */
	if (end > skb->len)
		end = skb->len;
	p->payload_len = end > p->payload_off ? end - p->payload_off : 0;
	return 0;
}

/* IPv4 and IPv6 (+ extension headers), then TCP. Returns 0 when @p is filled. */
static __always_inline int l7_parse(struct __sk_buff *skb, __u32 kind, struct l7_pkt *p)
{
	__u8 saddr[16], daddr[16];
	__u32 off = 0, l4, end;
	__u16 proto;
	__u8 nexthdr;

	/* Common case first: Ethernet (or lo) + IPv4 without options + TCP, one load. */
	if (kind != L7_LINK_RAW_IP) {
		struct l7_eth_ip4_tcp h;

		if (bpf_skb_load_bytes(skb, 0, h.eth_addrs, L7_ETH_IP4_TCP_LEN) == 0 &&
		    h.eth_proto == bpf_htons(L7_ETH_P_IP) && h.ip.ihl == 5) {
			if (l7_ipv4(skb, &h.ip, L7_ETH_HLEN, &end, saddr, daddr))
				return -1;
			if (l7_tcp(skb, &h.tcp, L7_ETH_HLEN + sizeof(h.ip), end, p))
				return -1;
			l7_make_key(p, saddr, daddr);
			return 0;
		}
	}

	proto = l7_parse_link(skb, kind, &off);
	if (proto == L7_ETH_P_IP) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
			return -1;
		if (l7_ipv4(skb, &ip, off, &end, saddr, daddr))
			return -1;
		l4 = off + (__u32)ip.ihl * 4;
	} else if (proto == L7_ETH_P_IPV6) {
		struct ipv6hdr ip6;
		__u16 plen;
		int i;

		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0)
			return -1;
		if (ip6.version != 6)
			return -1;
		plen = bpf_ntohs(ip6.payload_len);
		end = plen ? off + sizeof(ip6) + plen : skb->len;
		__builtin_memcpy(saddr, &ip6.saddr, 16);
		__builtin_memcpy(daddr, &ip6.daddr, 16);
		nexthdr = ip6.nexthdr;
		l4 = off + sizeof(ip6);
		for (i = 0; i < L7_MAX_IPV6_EXT; i++) {
			__u8 ext[4];

			if (nexthdr != L7_NEXTHDR_HOP && nexthdr != L7_NEXTHDR_ROUTING &&
			    nexthdr != L7_NEXTHDR_DEST && nexthdr != L7_NEXTHDR_FRAGMENT &&
			    nexthdr != L7_NEXTHDR_AUTH)
				break;
			if (bpf_skb_load_bytes(skb, l4, ext, sizeof(ext)) < 0)
				return -1;
			if (nexthdr == L7_NEXTHDR_FRAGMENT) {
				/* Non-first fragments have no TCP header. */
				if (((ext[2] << 8) | ext[3]) & 0xfff8)
					return -1;
				l4 += 8;
			} else if (nexthdr == L7_NEXTHDR_AUTH) {
				l4 += ((__u32)ext[1] + 2) * 4;
			} else {
				l4 += ((__u32)ext[1] + 1) * 8;
			}
			nexthdr = ext[0];
		}
		if (nexthdr != L7_IPPROTO_TCP)
			return -1;
	} else {
		return -1;
	}

	{
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, l4, &th, sizeof(th)) < 0)
			return -1;
		if (l7_tcp(skb, &th, l4, end, p))
			return -1;
	}
	l7_make_key(p, saddr, daddr);
	return 0;
}

/* Whether @buf (first @n bytes of a payload) starts with @tok of length @len. */
static __always_inline bool l7_starts(const __u8 *buf, __u32 n, const char *tok, __u32 len)
{
	int i;

	if (n < len)
		return false;
#pragma unroll
	for (i = 0; i < 8; i++) {
		if (i >= len)
			break;
		if (buf[i] != (__u8)tok[i])
			return false;
	}
	return true;
}

/* A payload that starts an HTTP/1.x request or response. */
static __always_inline bool l7_is_http_start(struct __sk_buff *skb, const struct l7_pkt *p)
{
	__u8 buf[8] = {};
	__u64 n = p->payload_len;

	if (n > sizeof(buf))
		n = sizeof(buf);
	barrier_var(n);
	if (n < 4 || n > sizeof(buf))
		return false;
	if (bpf_skb_load_bytes(skb, p->payload_off, buf, n) < 0)
		return false;

	switch (buf[0]) {
	case 'G':
		return l7_starts(buf, n, "GET ", 4);
	case 'P':
		return l7_starts(buf, n, "POST ", 5) || l7_starts(buf, n, "PUT ", 4) ||
		       l7_starts(buf, n, "PATCH ", 6);
	case 'H':
		return l7_starts(buf, n, "HTTP/1.", 7) || l7_starts(buf, n, "HEAD ", 5);
	case 'D':
		return l7_starts(buf, n, "DELETE ", 7);
	case 'O':
		return l7_starts(buf, n, "OPTIONS ", 8);
	case 'C':
		return l7_starts(buf, n, "CONNECT ", 8);
	case 'T':
		return l7_starts(buf, n, "TRACE ", 6);
	}
	return false;
}

static __always_inline bool l7_port_wanted(__u16 sport, __u16 dport)
{
	int i;

	if (l7_nports == 0)
		return true;
	for (i = 0; i < L7_MAX_PORTS; i++) {
		if (i >= l7_nports)
			break;
		if (l7_ports[i] == sport || l7_ports[i] == dport)
			return true;
	}
	return false;
}

static __always_inline int l7_keep(struct __sk_buff *skb)
{
	__u32 len = skb->len;

	l7_count(L7_PC_KEPT, 1);
	l7_count(L7_PC_KEPT_BYTES, len);
	if (len > l7_snaplen) {
		l7_count(L7_PC_TRUNCATED, 1);
		return l7_snaplen;
	}
	return len;
}

static __always_inline void l7_note_close(struct l7_flow *f, __u8 fl, __u8 from_a)
{
	if (fl & L7_TCP_FIN) {
		if (from_a)
			__sync_fetch_and_add(&f->fins_a, 1);
		else
			__sync_fetch_and_add(&f->fins_b, 1);
	}
	if (fl & L7_TCP_RST)
		__sync_fetch_and_add(&f->rsts, 1);
}

SEC("socket")
int l7_sockfilter(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, kind = L7_LINK_ETHER;
	struct l7_pkt p = {};
	struct l7_flow *f;
	__u32 *k;
	__u8 fl;

	l7_count(L7_PC_SEEN, 1);
	if (ifindex == L7_LOOPBACK_IFINDEX) {
		kind = L7_LINK_LOOPBACK; /* no map lookup for the busiest link of all */
	} else {
		k = bpf_map_lookup_elem(&l7_links, &ifindex);
		if (k)
			kind = *k;
		if (kind == L7_LINK_IGNORE)
			return 0;
	}
	/* lo hands AF_PACKET every packet twice (outgoing, then host): keep one, as
	 * libpcap does. */
	if (kind == L7_LINK_LOOPBACK && skb->pkt_type == L7_PACKET_OUTGOING) {
		l7_count(L7_PC_LO_OUTGOING, 1);
		return 0;
	}
	if (l7_parse(skb, kind, &p) < 0)
		return 0;
	if (!l7_port_wanted(p.sport, p.dport))
		return 0;
	if (l7_all_tcp)
		return l7_keep(skb);

	fl = p.tcp_flags;
	f = bpf_map_lookup_elem(&l7_flows, &p.key);
	if (f) {
		/* A fresh SYN on a closed flow is a new connection reusing the 4-tuple: it
		 * must earn classification again. */
		if ((fl & (L7_TCP_SYN | L7_TCP_ACK)) == L7_TCP_SYN &&
		    (f->rsts || (f->fins_a && f->fins_b))) {
			bpf_map_delete_elem(&l7_flows, &p.key);
			f = NULL;
		} else {
			/* FIN/RST are kept; the entry stays so retransmissions and the last
			 * ACK are kept too, and LRU ages it out. */
			l7_note_close(f, fl, p.from_a);
			return l7_keep(skb);
		}
	}

	if (p.payload_len && l7_is_http_start(skb, &p)) {
		struct l7_flow nf = {};

		nf.classified_ns = bpf_ktime_get_ns();
		/* NOEXIST: another CPU may classify the same flow at the same time. */
		if (bpf_map_update_elem(&l7_flows, &p.key, &nf, BPF_NOEXIST) == 0)
			l7_count(L7_PC_FLOWS_CLASSIFIED, 1);
		f = bpf_map_lookup_elem(&l7_flows, &p.key);
		if (f)
			l7_note_close(f, fl, p.from_a);
		else
			l7_count(L7_PC_FLOW_INSERT_FAIL, 1);
		return l7_keep(skb);
	}

	/* Handshakes of candidate flows go to user space, which writes them only
	 * for flows that turn out to be HTTP (the classification comes later, with
	 * the first payload): the capture then has the initial sequence numbers. */
	if ((fl & L7_TCP_SYN) && !p.payload_len)
		return l7_keep(skb);
	return 0;
}
