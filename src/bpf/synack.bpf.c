// SPDX-License-Identifier: MIT OR Apache-2.0 OR GPL-2.0
/*
 * synack XDP steering program.
 *
 * Redirects TCP segments addressed to one of our addresses AND one of our ports into the
 * AF_XDP socket bound to the receiving queue; in standalone mode (the endpoint owns the
 * address and answers neighbour discovery itself) also ARP requests and ICMPv6 neighbour
 * solicitations for our addresses. Everything else goes to the kernel (XDP_PASS), so SSH,
 * ICMP and ARP for other addresses keep working.
 *
 * Every packet access is bounds-checked against data_end for the verifier; a packet that is
 * too short for the header we want to read is passed to the kernel untouched.
 *
 * Build: clang -O2 -g -target bpf -I/usr/include/<multiarch> -c synack.bpf.c (see build.rs).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_QUEUES 64
#define MAX_ADDRS 256
#define PORT_SPACE 65536

/* Indices of the `counters` map; keep in sync with src/io/bpf.rs (CounterIndex). */
enum counter_index {
	CNT_REDIRECTED = 0,      /* TCP frames redirected into an AF_XDP socket */
	CNT_PASSED = 1,          /* frames handed to the kernel (XDP_PASS), for any reason */
	CNT_REDIRECT_FAILED = 2, /* ours, but no socket on this queue: passed to the kernel */
	CNT_ARP_REDIRECTED = 3,  /* ARP requests for our IPv4 addresses redirected (standalone) */
	CNT_NDP_REDIRECTED = 4,  /* ICMPv6 neighbour solicitations redirected (standalone) */
	CNT_MAX = 8,
};

/* Settings array indices. */
#define SETTING_STANDALONE 0

/* rx queue index -> AF_XDP socket. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

/* IPv4 address (network byte order, as it sits in the header) -> flags (bit 0: ours). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ADDRS);
	__type(key, __u32);
	__type(value, __u8);
} addrs_v4 SEC(".maps");

/* IPv6 address (16 bytes, network order) -> flags (bit 0: ours). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ADDRS);
	__type(key, struct in6_addr);
	__type(value, __u8);
} addrs_v6 SEC(".maps");

/* TCP port in host byte order -> 1 if we serve it. An array: one load, no hashing. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORT_SPACE);
	__type(key, __u32);
	__type(value, __u8);
} ports SEC(".maps");

/* [0] = standalone flag (redirect ARP/NDP for our addresses too). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ARPOP_REQUEST_ 1
#define ICMPV6_NS 135
#define IP_OFFSET_MASK 0x1FFF

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline int pass(void)
{
	count(CNT_PASSED);
	return XDP_PASS;
}

/* Redirect into the socket of this rx queue; XDP_PASS when none is bound to it. */
static __always_inline int redirect(struct xdp_md *ctx, __u32 what)
{
	long ret = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	if (ret == XDP_REDIRECT) {
		count(what);
		return XDP_REDIRECT;
	}
	count(CNT_REDIRECT_FAILED);
	return pass();
}

static __always_inline int standalone(void)
{
	__u32 key = SETTING_STANDALONE;
	__u32 *v = bpf_map_lookup_elem(&settings, &key);
	return v && *v;
}

static __always_inline int port_is_ours(__u16 port_be)
{
	__u32 key = bpf_ntohs(port_be);
	__u8 *v = bpf_map_lookup_elem(&ports, &key);
	return v && *v;
}

/* ARP for Ethernet/IPv4 (RFC 826): fixed 28-byte body. */
struct arp_eth_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

SEC("xdp")
int synack_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return pass();
	proto = eth->h_proto;
	l3 = eth + 1;

	/* One 802.1Q / 802.1ad tag. */
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		if (l3 + 4 > data_end)
			return pass();
		proto = *(__be16 *)(l3 + 2);
		l3 += 4;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		__u32 ihl_bytes;
		__u8 *l4;

		if ((void *)(ip + 1) > data_end)
			return pass();
		if (ip->version != 4 || ip->ihl < 5)
			return pass();
		if (!bpf_map_lookup_elem(&addrs_v4, &ip->daddr))
			return pass();
		if (ip->protocol != IPPROTO_TCP)
			return pass();
		/* A non-first fragment carries no TCP header: no port to check; leave it to the
		 * kernel (which can never reassemble it without the first fragment we took). */
		if (ip->frag_off & bpf_htons(IP_OFFSET_MASK))
			return pass();
		ihl_bytes = (__u32)ip->ihl * 4;
		l4 = (__u8 *)ip + ihl_bytes;
		/* Source and destination port: the first 4 bytes of the TCP header. */
		if ((void *)(l4 + 4) > data_end)
			return pass();
		if (!port_is_ours(*(__be16 *)(l4 + 2)))
			return pass();
		return redirect(ctx, CNT_REDIRECTED);
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		__u8 *l4;

		if ((void *)(ip6 + 1) > data_end)
			return pass();
		l4 = (__u8 *)(ip6 + 1);
		if (ip6->nexthdr == IPPROTO_TCP) {
			if (!bpf_map_lookup_elem(&addrs_v6, &ip6->daddr))
				return pass();
			if ((void *)(l4 + 4) > data_end)
				return pass();
			if (!port_is_ours(*(__be16 *)(l4 + 2)))
				return pass();
			return redirect(ctx, CNT_REDIRECTED);
		}
		/* RFC 4861 §4.3: NS = type 135, code, checksum, reserved (4), target (16). The
		 * destination is usually the solicited-node multicast group, so match the target. */
		if (ip6->nexthdr == IPPROTO_ICMPV6 && standalone()) {
			if ((void *)(l4 + 24) > data_end)
				return pass();
			if (l4[0] != ICMPV6_NS)
				return pass();
			if (!bpf_map_lookup_elem(&addrs_v6, l4 + 8))
				return pass();
			return redirect(ctx, CNT_NDP_REDIRECTED);
		}
		return pass();
	}

	if (proto == bpf_htons(ETH_P_ARP) && standalone()) {
		struct arp_eth_ipv4 *arp = l3;

		if ((void *)(arp + 1) > data_end)
			return pass();
		if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) ||
		    arp->hlen != 6 || arp->plen != 4 || arp->oper != bpf_htons(ARPOP_REQUEST_))
			return pass();
		if (!bpf_map_lookup_elem(&addrs_v4, arp->tpa))
			return pass();
		return redirect(ctx, CNT_ARP_REDIRECTED);
	}

	return pass();
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
