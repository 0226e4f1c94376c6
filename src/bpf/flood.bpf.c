// SPDX-License-Identifier: MIT OR Apache-2.0 OR GPL-2.0
/*
 * synack flood generator and reply counter (two XDP programs, one object).
 *
 * flood_gen: run with BPF_PROG_TEST_RUN and BPF_F_TEST_XDP_LIVE_FRAMES on the client veth
 * (the mechanism of xdp-trafficgen): every run rewrites the template SYN into a SYN from
 * the next spoofed source of 198.19.0.0/16 (source address, source port, ISN and TSval
 * written as absolute values, because the kernel recycles the frame pages between runs)
 * and recomputes the IPv4 and TCP checksums in full; XDP_TX then sends it out of the
 * veth. Pacing is a GCRA token bucket on bpf_ktime_get_ns(): a run over the rate returns
 * XDP_DROP, which costs the kernel nothing but the run. A run past the packet bound or the
 * deadline is dropped too, so one call can never overshoot the bounds.
 *
 * The template is the 74-byte Linux-like SYN of lab::syn_frame: Ethernet (no VLAN), IPv4
 * with a 20-byte header, TCP with 20 bytes of options in this order: MSS, SACK-permitted,
 * timestamps, NOP, window scale (IPv4 total length 60). Anything else is dropped and
 * counted as bad_frame.
 *
 * State has one writer: a test run executes the program on the calling CPU with
 * migration disabled, and the generator makes one call at a time.
 *
 * flood_count: attached to the client veth, counts TCP frames to or from the flood
 * prefix by kind (SYN-ACK, RST, SYN, other) and drops them, so the client kernel never
 * answers the server's SYN-ACKs with RSTs and the count costs the server nothing. Every
 * other frame is passed.
 *
 * Build: clang -O2 -g -target bpf -I/usr/include/<multiarch> -c flood.bpf.c (see build.rs).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Offsets in the template frame (lab::syn_frame). */
#define L3 14
#define L4 (L3 + 20)
#define OPT_TS (L4 + 20 + 6) /* kind 8 after MSS (4) and SACK-permitted (2) */
#define FRAME_LEN (L4 + 40)

/* 198.19.0.0/16: hosts .0.1 to .255.254 (65534), then the next source port. */
#define FLOOD_HOSTS 65534 /* keep in step with lab::flood_source (tests/flood_xdp.rs checks it) */
#define FLOOD_PORTS 64000
#define FLOOD_PORT_BASE 1024

/* Settings of a flood, written by src/io/flood.rs (FloodConfig) before each call. */
struct flood_config {
	__u64 interval_ps;  /* picoseconds between frames; 0: no pacing */
	__u64 burst_ps;     /* how far ahead of the schedule a frame may go */
	__u64 max_packets;  /* frames to send in all */
	__u64 deadline_ns;  /* CLOCK_MONOTONIC: no frame after this */
	__u64 first_index;  /* source index of the first frame */
	__u32 net;          /* flood prefix, host order (198.19.0.0) */
	__u32 seed;         /* mixed into the ISN */
};

/* What the generator did, read by userspace. */
struct flood_state {
	__u64 sent;       /* frames returned as XDP_TX */
	__u64 paced;      /* runs dropped: over the rate */
	__u64 bounded;    /* runs dropped: past the packet bound or the deadline */
	__u64 bad_frame;  /* runs dropped: the frame is not the template layout */
	__u64 tat_ps;     /* GCRA theoretical arrival time, ps since start_ns */
	__u64 start_ns;   /* CLOCK_MONOTONIC of the first run */
	__u64 last_ns;    /* CLOCK_MONOTONIC of the last frame sent */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flood_config);
} flood_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flood_state);
} flood_st SEC(".maps");

/* The frame every run starts from, written by src/io/flood.rs (FloodProgram::configure).
 * Live frames recycle their pages: a page may come back holding whatever the last program
 * to see it left there (on a veth, the server's XDP_TX turns our SYN into its SYN-ACK in
 * the same page), so each run writes the whole frame, not only the fields that vary. */
struct flood_template {
	__u8 bytes[FRAME_LEN + 6]; /* 74 bytes, padded to 80 */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flood_template);
} flood_tpl SEC(".maps");

/* Indices of `count_counters`; keep in sync with src/io/flood.rs (ReplyCounts). */
enum count_index {
	COUNT_SYNACK = 0,
	COUNT_RST = 1,
	COUNT_SYN = 2,
	COUNT_OTHER = 3,
	COUNT_MAX = 4,
};

/* [0] = prefix (network order), [1] = mask (network order). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} count_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} count_counters SEC(".maps");

/* RFC 1071: fold a 32-bit one's-complement sum of 16-bit words to 16 bits. */
static __always_inline __u16 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Sum of `n` 16-bit big-endian words at p (n a constant, so the loop unrolls). */
static __always_inline __u32 sum_words(const __u8 *p, int n)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < n; i++)
		s += ((__u32)p[2 * i] << 8) | p[2 * i + 1];
	return s;
}

static __always_inline void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static __always_inline void put32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* GCRA: 1 when a frame may leave now, 0 when it is over the rate. */
static __always_inline int pace(const struct flood_config *cfg, struct flood_state *st, __u64 now)
{
	if (cfg->interval_ps == 0)
		return 1;
	__u64 t = (now - st->start_ns) * 1000;
	if (st->tat_ps < t)
		st->tat_ps = t;
	if (st->tat_ps - t > cfg->burst_ps)
		return 0;
	st->tat_ps += cfg->interval_ps;
	return 1;
}

SEC("xdp")
int flood_gen(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct flood_config *cfg = bpf_map_lookup_elem(&flood_cfg, &key);
	struct flood_state *st = bpf_map_lookup_elem(&flood_st, &key);
	struct flood_template *tpl = bpf_map_lookup_elem(&flood_tpl, &key);
	if (!cfg || !st || !tpl)
		return XDP_ABORTED;
	__u64 now = bpf_ktime_get_ns();
	if (st->start_ns == 0)
		st->start_ns = now;
	if (st->sent >= cfg->max_packets || now >= cfg->deadline_ns) {
		st->bounded++;
		return XDP_DROP;
	}
	__u8 *d = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	if (d + FRAME_LEN > end) {
		st->bad_frame++;
		return XDP_DROP;
	}
	__builtin_memcpy(d, tpl->bytes, FRAME_LEN);
	/* The IPv4 total length (60) pins the segment to the 40 bytes the checksum covers. */
	if (d[12] != 0x08 || d[13] != 0x00 || d[L3] != 0x45 ||
	    d[L3 + 2] != 0 || d[L3 + 3] != 60 || d[L3 + 9] != IPPROTO_TCP ||
	    (d[L4 + 12] >> 4) != 10 || d[OPT_TS] != 8 || d[OPT_TS + 1] != 10) {
		st->bad_frame++;
		return XDP_DROP;
	}
	if (!pace(cfg, st, now)) {
		st->paced++;
		return XDP_DROP;
	}
	__u64 i = cfg->first_index + st->sent;
	__u32 host = (__u32)(i % FLOOD_HOSTS) + 1;
	__u16 port = FLOOD_PORT_BASE + (__u16)((i / FLOOD_HOSTS) % FLOOD_PORTS);
	__u32 saddr = cfg->net | host;
	__u32 isn = ((__u32)i * 2654435761u) ^ cfg->seed;
	__u32 tsval = (__u32)(now / 1000000);

	put32(d + L3 + 12, saddr);
	put16(d + L4, port);
	put32(d + L4 + 4, isn);
	put32(d + OPT_TS + 2, tsval);

	/* IPv4 header checksum (RFC 791), over the 20-byte header with the field zero. */
	put16(d + L3 + 10, 0);
	put16(d + L3 + 10, ~fold(sum_words(d + L3, 10)));
	/* TCP checksum (RFC 9293 §3.1): pseudo-header (addresses, protocol, TCP length) and
	 * the 40-byte segment with the field zero. */
	put16(d + L4 + 16, 0);
	__u32 s = sum_words(d + L3 + 12, 4) + IPPROTO_TCP + 40 + sum_words(d + L4, 20);
	put16(d + L4 + 16, ~fold(s));

	st->sent++;
	st->last_ns = now;
	return XDP_TX;
}

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&count_counters, &idx);
	if (c)
		*c += 1;
}

SEC("xdp")
int flood_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	__u32 k0 = 0, k1 = 1;
	__u32 *prefix = bpf_map_lookup_elem(&count_cfg, &k0);
	__u32 *mask = bpf_map_lookup_elem(&count_cfg, &k1);
	if (!prefix || !mask)
		return XDP_PASS;
	if ((ip->daddr & *mask) != *prefix && (ip->saddr & *mask) != *prefix)
		return XDP_PASS;
	struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > end) {
		count(COUNT_OTHER);
		return XDP_DROP;
	}
	if (tcp->rst)
		count(COUNT_RST);
	else if (tcp->syn && tcp->ack)
		count(COUNT_SYNACK);
	else if (tcp->syn)
		count(COUNT_SYN);
	else
		count(COUNT_OTHER);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
