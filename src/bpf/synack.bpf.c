// SPDX-License-Identifier: MIT OR Apache-2.0 OR GPL-2.0
/*
 * synack XDP program: steering, and the stateless half of the listener.
 *
 * Steering: redirects TCP segments addressed to one of our addresses AND one of our ports
 * into the AF_XDP socket bound to the receiving queue; in standalone mode (the endpoint owns
 * the address and answers neighbour discovery itself) also ARP requests and ICMPv6 neighbour
 * solicitations for our addresses. Everything else goes to the kernel (XDP_PASS), so SSH,
 * ICMP and ARP for other addresses keep working.
 *
 * SYN offload (when userspace turns it on in `cookie_state`): a SYN for one of our
 * listeners whose 4-tuple has no state in any worker (the `occupancy` counting filter reads
 * 0) is answered here with XDP_TX: the SYN-ACK the userspace path would send
 * (src/tcp/listen.rs on_syn), with the same Linux-layout SYN cookie (src/tcp/cookie.rs,
 * Linux net/ipv4/syncookies.c) and the same options, window and window scale. An ACK for a
 * tuple with no state is cookie-checked here: valid ones go to userspace, which creates
 * the connection as before; invalid ones are dropped and answered with the RFC 9293
 * §3.10.7.2 reset <SEQ=SEG.ACK><CTL=RST>, rate-limited per CPU. Anything the program cannot
 * judge exactly as userspace would (IP options, bad checksums, malformed options, SYN with
 * data, ...) goes to userspace, which decides and counts.
 *
 * Every packet access is bounds-checked against data_end for the verifier; every loop is
 * bounded. A packet that is too short for the header we want to read is passed to the
 * kernel untouched.
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
/* Cells of the occupancy filter (a power of two); keep in sync with src/io/bpf.rs. */
#define OCC_CELLS (1 << 20)

/* Indices of the `counters` map. build.rs turns this enum into io::bpf's CounterIndex
 * (CNT_SYNACK_SENT -> SynackSent): keep the form CNT_<NAME> = <value>, values 0, 1, 2, ...
 * in order, each with a comment, CNT_MAX last. */
enum counter_index {
	CNT_REDIRECTED = 0,      /* TCP frames redirected into an AF_XDP socket */
	CNT_PASSED = 1,          /* frames handed to the kernel (XDP_PASS), for any reason */
	CNT_REDIRECT_FAILED = 2, /* ours, but no socket on this queue: passed to the kernel */
	CNT_ARP_REDIRECTED = 3,  /* ARP requests for our IPv4 addresses redirected (standalone) */
	CNT_NDP_REDIRECTED = 4,  /* ICMPv6 neighbour solicitations redirected (standalone) */
	CNT_SYNACK_SENT = 5,     /* SYNs answered here with a cookie SYN-ACK (XDP_TX) */
	CNT_SYN_TO_USER = 6,     /* SYNs for us sent on to userspace (offload off, tuple may
				  * have state, or not judged here) */
	CNT_ACK_DROPPED = 7,     /* stateless ACKs whose cookie failed: dropped here */
	CNT_RST_SENT = 8,        /* resets sent for them (XDP_TX) */
	CNT_RST_LIMITED = 9,     /* resets not sent: over the per-CPU rate */
	CNT_COOKIE_ACK_TO_USER = 10, /* stateless ACKs with a valid cookie sent to userspace */
	CNT_VLAN_PASSED = 11,    /* 802.1ad or stacked tags: passed to the kernel */
	CNT_FOLLOWER_TO_USER = 12, /* segments without state right after a valid cookie ACK of
				    * their tuple (`recent_cookie`): sent to userspace */
	CNT_MAX = 16,
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

/* One SipHash key as the two little-endian u64 words of Linux's siphash_key_t. */
struct sip_key {
	__u64 k[2];
};

/* The two Linux cookie keys (syncookie_secret[0] and [1]). */
struct cookie_keys {
	struct sip_key k0;
	struct sip_key k1;
};

/* Everything the SYN offload needs from userspace; layout = `StateMap` in src/io/bpf.rs.
 * Written by the control thread (keys on reload, counter every second); a reader racing a
 * write may see a torn key once, which only costs one cookie that will not verify. */
struct cookie_state {
	struct cookie_keys cur;
	struct cookie_keys prev;
	__u32 has_prev;
	__u32 counter;       /* Linux tcp_cookie_time(): unix seconds / 60 */
	__u64 origin_ns;     /* CLOCK_MONOTONIC ns of userspace's clock origin (TSval 0) */
	struct sip_key occ;  /* key of the occupancy hash */
	__u32 enabled;       /* SYN offload on */
	__u32 clock_flags;   /* CLOCK_FOLLOW: compute the counter from CLOCK_TAI */
	__u64 rst_cost_ns;   /* token bucket: ns of credit one reset costs (1e9 / rate) */
	__u64 tai_minus_unix_ns; /* CLOCK_TAI - CLOCK_REALTIME, whole seconds, in ns */
};
#define CLOCK_FOLLOW 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cookie_state);
} cookie_state SEC(".maps");

/* What a listener's SYN-ACK carries (src/tcp/listen.rs on_syn for the port's mode). */
struct listener {
	__u16 window;   /* SYN-ACK window field (never scaled) */
	__u16 mss;      /* our MSS for IPv4 (IPv6 announces 20 less) */
	__u8 wscale;    /* window shift offered when the SYN offers one (and has timestamps) */
	__u8 flags;     /* bit 0: answer SYNs here; bit 1: timestamps enabled */
	__u16 _pad;
};
#define LISTENER_OFFLOAD 1
#define LISTENER_TIMESTAMPS 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORT_SPACE);
	__type(key, __u32);
	__type(value, struct listener);
} listeners SEC(".maps");

/* Counting filter over 4-tuple hashes: cell = connections of all workers whose tuple hashes
 * there. Workers update it with atomic adds through an mmap (src/io/occupancy.rs). The
 * cells are u64 because an array map lays its values out 8 bytes apart (elem_size is
 * round_up(value_size, 8)), and the mmap shows that layout. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OCC_CELLS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} occupancy SEC(".maps");

/* Which tuple last had a valid cookie ACK sent to userspace from this cell, and when: its
 * 32-bit flow hash in the high half, the time in units of 2^20 ns (about 1 ms) in the low. Until its worker has made the connection and marked the occupancy
 * filter, the client's next segments (data, FIN: their sequence number has moved past
 * ISN + 1, so they cannot verify as a cookie) still look stateless here; for RECENT_WINDOW
 * after such an ACK they go to userspace too instead of being reset. Only a verified cookie
 * writes a cell, and a stateless segment must match the cell's whole hash, so a forged-ACK
 * flood (which cannot verify) passes only by a 32-bit hash collision with a tuple that
 * completed a handshake within the window; such a collision only costs a trip to
 * userspace. */
#define RECENT_CELLS (1 << 16)
#define RECENT_SHIFT 20
#define RECENT_WINDOW 1024 /* about 1.07 s */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RECENT_CELLS);
	__type(key, __u32);
	__type(value, __u64);
} recent_cookie SEC(".maps");

/* Per-CPU token bucket for resets. */
struct rst_bucket {
	__u64 credit_ns;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rst_bucket);
} rst_bucket SEC(".maps");

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ARPOP_REQUEST_ 1
#define ICMPV6_NS 135
#define IP_OFFSET_MASK 0x1FFF
#define IP_DF 0x4000
#define TTL 64

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define COOKIE_BITS 24
#define COOKIE_MASK ((1u << COOKIE_BITS) - 1)
#define MAX_AGE 2
#define TS_BITS 6
#define TS_MASK ((1u << TS_BITS) - 1)
#define MAX_WSCALE 14
#define MIN_FRAME 60
/* Longest TCP segment whose checksum we verify here (a header with 40 option bytes and no
 * data); longer ones (ACKs with data) go to userspace. */
#define MAX_CSUM_LEN 60

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

/* ---- SipHash-2-4 (as src/tcp/cookie.rs sip24_16 and the kernel's siphash) ---- */

#define ROTL(x, b) (__u64)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                           \
	do {                                                                               \
		v0 += v1;                                                                  \
		v1 = ROTL(v1, 13);                                                         \
		v1 ^= v0;                                                                  \
		v0 = ROTL(v0, 32);                                                         \
		v2 += v3;                                                                  \
		v3 = ROTL(v3, 16);                                                         \
		v3 ^= v2;                                                                  \
		v0 += v3;                                                                  \
		v3 = ROTL(v3, 21);                                                         \
		v3 ^= v0;                                                                  \
		v2 += v1;                                                                  \
		v1 = ROTL(v1, 17);                                                         \
		v1 ^= v2;                                                                  \
		v2 = ROTL(v2, 32);                                                         \
	} while (0)

/* The flow as the cookie hashes it: client = source of the SYN / ACK. Addresses and ports
 * are kept as the raw network-order words the kernel's `(__force u32)` casts see. */
struct flow {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport; /* raw __be16 */
	__u16 dport; /* raw __be16 */
	__u32 v6;
};

/* SipHash-2-4 of the cookie message for `f` with `count`, truncated to 32 bits (Linux
 * cookie_hash: siphash_4u32(saddr, daddr, sport << 16 | dport, count) for IPv4, siphash
 * of {saddr, daddr, count, sport, dport} (40 bytes) for IPv6). */
static __always_inline __u32 flow_hash(const struct sip_key *key, const struct flow *f,
				       __u32 cnt)
{
	__u64 m[5];
	__u32 n;
	__u64 v0 = key->k[0] ^ 0x736f6d6570736575ULL;
	__u64 v1 = key->k[1] ^ 0x646f72616e646f6dULL;
	__u64 v2 = key->k[0] ^ 0x6c7967656e657261ULL;
	__u64 v3 = key->k[1] ^ 0x7465646279746573ULL;
	__u64 b;

	if (f->v6) {
		m[0] = (__u64)f->saddr[0] | (__u64)f->saddr[1] << 32;
		m[1] = (__u64)f->saddr[2] | (__u64)f->saddr[3] << 32;
		m[2] = (__u64)f->daddr[0] | (__u64)f->daddr[1] << 32;
		m[3] = (__u64)f->daddr[2] | (__u64)f->daddr[3] << 32;
		m[4] = (__u64)cnt | (__u64)f->sport << 32 | (__u64)f->dport << 48;
		n = 5;
		b = 40ULL << 56;
	} else {
		m[0] = (__u64)f->saddr[0] | (__u64)f->daddr[0] << 32;
		m[1] = ((__u64)f->sport << 16 | (__u64)f->dport) | (__u64)cnt << 32;
		m[2] = m[3] = m[4] = 0;
		n = 2;
		b = 16ULL << 56;
	}
	for (__u32 i = 0; i < 5; i++) {
		if (i >= n)
			break;
		v3 ^= m[i];
		SIPROUND;
		SIPROUND;
		v0 ^= m[i];
	}
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (__u32)(v0 ^ v1 ^ v2 ^ v3);
}

/* Linux secure_tcp_syn_cookie. */
static __always_inline __u32 cookie_make(const struct cookie_keys *k, const struct flow *f,
					 __u32 isn, __u32 data, __u32 counter)
{
	__u32 h0 = flow_hash(&k->k0, f, 0);
	__u32 h1 = flow_hash(&k->k1, f, counter);
	return h0 + isn + (counter << COOKIE_BITS) + ((h1 + data) & COOKIE_MASK);
}

/* Linux check_tcp_syn_cookie + the MSS-index test: 1 if the cookie verifies. */
static __always_inline int cookie_ok(const struct cookie_keys *k, const struct flow *f,
				     __u32 isn, __u32 cookie, __u32 counter)
{
	__u32 rest = cookie - (flow_hash(&k->k0, f, 0) + isn);
	__u32 diff = (counter - (rest >> COOKIE_BITS)) & (0xffffffffu >> COOKIE_BITS);
	__u32 data;

	if (diff >= MAX_AGE)
		return 0;
	data = (rest - flow_hash(&k->k1, f, counter - diff)) & COOKIE_MASK;
	return data < 4;
}

/* The minute counter (Linux tcp_cookie_time(): unix seconds / 60). Following the clock, it
 * is computed here from CLOCK_TAI and the published TAI - UTC offset, so it turns at the
 * same instant as the workers' (CLOCK_REALTIME), not up to a second later; otherwise the
 * published value. */
static __always_inline __u32 cookie_counter(const struct cookie_state *st)
{
	if (st->clock_flags & CLOCK_FOLLOW) {
		__u64 unix_ns = bpf_ktime_get_tai_ns() - st->tai_minus_unix_ns;
		return (__u32)(unix_ns / (60 * 1000000000ULL));
	}
	return st->counter;
}

/* ---- checksums (RFC 1071: the one's-complement sum is byte-order independent, so the
 * words are summed as they sit in memory) ---- */

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Sum of the 16-bit words of [p, p + len) (an odd last byte padded with zero); -1 when the
 * bytes are not all inside the packet or len exceeds MAX_CSUM_LEN. */
static __always_inline __s64 csum_bytes(__u8 *p, __u32 len, void *data_end)
{
	__u64 sum = 0;
	__u16 *w = (__u16 *)p;

	if (len > MAX_CSUM_LEN)
		return -1;
	for (__u32 i = 0; i < MAX_CSUM_LEN / 2; i++) {
		if (2 * i + 1 >= len)
			break;
		/* Keep clang from hoisting the bounds test out of the loop (the verifier needs
		 * it on every access). */
		asm volatile("" : "+r"(w));
		if ((void *)(w + 1) > data_end)
			return -1;
		sum += *w;
		w++;
	}
	if (len & 1) {
		__u8 *last = (__u8 *)w;
		if ((void *)(last + 1) > data_end)
			return -1;
		sum += *last; /* little-endian memory word {last, 0} */
	}
	return (__s64)sum;
}

/* Pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1) for a TCP segment of `len` bytes. */
static __always_inline __u64 pseudo_sum(const struct flow *f, __u32 len)
{
	/* The sum does not depend on which address is the source. */
	__u64 sum = 0;

	if (f->v6) {
		for (int i = 0; i < 4; i++)
			sum += (__u64)f->saddr[i] + f->daddr[i];
	} else {
		sum += (__u64)f->saddr[0] + f->daddr[0];
	}
	sum += bpf_htons(IPPROTO_TCP);
	sum += bpf_htons((__u16)len);
	return sum;
}

/* ---- the offload ---- */

/* What a SYN's options say (RFC 9293 §3.1 walk, as wire::TcpOptions::parse: malformed
 * options are refused, a repeated option's last copy wins, window scale clamped to 14). */
struct syn_opts {
	__u32 tsval;
	__u16 mss;
	__u8 has_mss;
	__u8 has_ws;
	__u8 ws;
	__u8 sack;
	__u8 has_ts;
};

/* State of the option walk (a bpf_loop callback context). */
struct opt_walk {
	__u8 b[64];
	__u32 i;
	__u32 optlen;
	__s32 err;
	struct syn_opts o;
};

/* One step of the RFC 9293 §3.1 option walk: 0 to go on, 1 to stop. */
static long opt_step(__u32 step, struct opt_walk *w)
{
	__u32 i = w->i;
	__u8 kind, len;

	(void)step;
	if (i >= w->optlen || i >= 40)
		return 1;
	kind = w->b[i & 63];
	if (kind == 0)
		return 1; /* EOL */
	if (kind == 1) {
		w->i = i + 1;
		return 0;
	}
	if (i + 1 >= w->optlen)
		goto bad;
	len = w->b[(i + 1) & 63];
	if (len < 2 || i + len > w->optlen)
		goto bad;
	switch (kind) {
	case 2:
		if (len != 4)
			goto bad;
		w->o.mss = (__u16)w->b[(i + 2) & 63] << 8 | w->b[(i + 3) & 63];
		w->o.has_mss = 1;
		break;
	case 3:
		if (len != 3)
			goto bad;
		w->o.ws = w->b[(i + 2) & 63] > MAX_WSCALE ? MAX_WSCALE : w->b[(i + 2) & 63];
		w->o.has_ws = 1;
		break;
	case 4:
		if (len != 2)
			goto bad;
		w->o.sack = 1;
		break;
	case 5:
		/* RFC 2018 §3: 8 bytes a block, 1 to 4 blocks. */
		if ((len - 2) % 8 != 0 || len < 10 || len > 34)
			goto bad;
		break;
	case 8:
		if (len != 10)
			goto bad;
		w->o.tsval = (__u32)w->b[(i + 2) & 63] << 24 | (__u32)w->b[(i + 3) & 63] << 16 |
			     (__u32)w->b[(i + 4) & 63] << 8 | w->b[(i + 5) & 63];
		w->o.has_ts = 1;
		break;
	default:
		break;
	}
	w->i = i + len;
	return 0;
bad:
	w->err = -1;
	return 1;
}

/* 0 on success, -1 when the options are malformed or not all in the packet. The option
 * bytes are copied to the stack first and walked by a bpf_loop callback, so the verifier
 * checks one step instead of every path through 40 of them. */
static __always_inline int parse_options(__u8 *opt, __u32 optlen, void *data_end,
					 struct opt_walk *w)
{
	if (optlen > 40)
		return -1;
	for (__u32 j = 0; j < 40; j++) {
		__u8 *p = opt + j;

		if (j >= optlen)
			break;
		asm volatile("" : "+r"(p));
		if ((void *)(p + 1) > data_end)
			return -1;
		w->b[j] = *p;
	}
	w->optlen = optlen;
	bpf_loop(40, opt_step, w, 0);
	return w->err;
}

/* Linux cookie_init_timestamp (src/tcp/cookie.rs ts_encode). */
static __always_inline __u32 ts_encode(__u32 now, const struct syn_opts *o)
{
	__u32 options = o->has_ws ? o->ws : 0xF;
	__u32 ts;

	if (o->sack)
		options |= 1 << 4;
	ts = (now & ~TS_MASK) | options;
	if (ts > now)
		ts -= 1u << TS_BITS;
	return ts;
}

/* Linux msstab lookup (src/tcp/cookie.rs mss_index). */
static __always_inline __u32 mss_index(__u16 mss, __u32 v6)
{
	if (v6) {
		if (mss >= 8940)
			return 3;
		if (mss >= 1440)
			return 2;
		if (mss >= 1420)
			return 1;
		return 0;
	}
	if (mss >= 1460)
		return 3;
	if (mss >= 1440)
		return 2;
	if (mss >= 1300)
		return 1;
	return 0;
}

/* Offsets of the received segment, relative to ctx->data. */
struct layout {
	__u32 l3;      /* 14 or 18 */
	__u32 l4;      /* l3 + 20 or l3 + 40 */
	__u32 tcp_len; /* TCP header + payload, from the IP length */
};

/* Resize the frame to `len` bytes. 0 on success.
 *
 * Built with SYNACK_FIXED_LEN (synack_fixed.bpf.o, for libxdp dispatchers whose slots do
 * not change packet data: Linux 6.13+ refuses an extension program that does in such a
 * slot, see bpf_check_attach_target in kernel/bpf/verifier.c), frames are never resized: a
 * reply of another length than the received frame fails here, so such a SYN goes to
 * userspace and such a forged ACK is dropped without its reset. */
static __always_inline int set_len(struct xdp_md *ctx, __u32 len)
{
	__s32 delta = (__s32)len - (__s32)(ctx->data_end - ctx->data);
	if (delta == 0)
		return 0;
#ifdef SYNACK_FIXED_LEN
	return -1;
#else
	return bpf_xdp_adjust_tail(ctx, delta) ? -1 : 0;
#endif
}

/* Rewrite the received frame into our reply, in place: MACs and addresses swapped, IP
 * header rewritten as wire::Ipv4Repr / Ipv6Repr::emit write it, TCP header with `seq`,
 * `ack`, `flags`, `window` and the `optlen` option bytes of `opt`, checksums filled,
 * padding to 60 bytes zeroed. Returns XDP_TX, or -1 if the frame could not be resized. */
static __always_inline int emit_reply(struct xdp_md *ctx, const struct layout *lo,
				      const struct flow *f, __u32 seq, __u32 ack, __u8 flags,
				      __u16 window, const __u8 *opt, __u32 optlen)
{
	__u32 tcp_len = 20 + optlen;
	__u32 ip_len = f->v6 ? 40 : 20;
	__u32 total = lo->l3 + ip_len + tcp_len;
	__u32 padded = total < MIN_FRAME ? MIN_FRAME : total;
	void *data, *data_end;
	__u8 *eth, *tcp, mac[6];
	__s64 s;
	__u64 sum;

	if (set_len(ctx, padded))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 12) > data_end)
		return -1;
	__builtin_memcpy(mac, eth, 6);
	__builtin_memcpy(eth, eth + 6, 6);
	__builtin_memcpy(eth + 6, mac, 6);

	if (lo->l3 > 18)
		return -1;
	if (f->v6) {
		struct ipv6hdr *ip6 = data + lo->l3;
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		*(__be32 *)ip6 = bpf_htonl(6u << 28);
		ip6->payload_len = bpf_htons((__u16)tcp_len);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = TTL;
		__builtin_memcpy(&ip6->saddr, f->daddr, 16);
		__builtin_memcpy(&ip6->daddr, f->saddr, 16);
		tcp = (__u8 *)(ip6 + 1);
	} else {
		struct iphdr *ip = data + lo->l3;
		if ((void *)(ip + 1) > data_end)
			return -1;
		*(__u8 *)ip = 0x45;
		ip->tos = 0;
		ip->tot_len = bpf_htons((__u16)(20 + tcp_len));
		ip->id = 0;
		ip->frag_off = bpf_htons(IP_DF);
		ip->ttl = TTL;
		ip->protocol = IPPROTO_TCP;
		ip->check = 0;
		ip->saddr = f->daddr[0];
		ip->daddr = f->saddr[0];
		s = csum_bytes((__u8 *)ip, 20, data_end);
		if (s < 0)
			return -1;
		ip->check = ~csum_fold((__u64)s);
		tcp = (__u8 *)(ip + 1);
	}
	if ((void *)(tcp + 20) > data_end)
		return -1;
	*(__u16 *)tcp = f->dport;
	*(__u16 *)(tcp + 2) = f->sport;
	*(__be32 *)(tcp + 4) = bpf_htonl(seq);
	*(__be32 *)(tcp + 8) = bpf_htonl(ack);
	tcp[12] = (__u8)((tcp_len / 4) << 4);
	tcp[13] = flags;
	*(__be16 *)(tcp + 14) = bpf_htons(window);
	*(__u16 *)(tcp + 16) = 0;
	*(__u16 *)(tcp + 18) = 0;
	for (__u32 i = 0; i < 20; i++) {
		__u8 *p = tcp + 20 + i;
		asm volatile("" : "+r"(p));
		if (i >= optlen)
			break;
		if ((void *)(p + 1) > data_end)
			return -1;
		*p = opt[i];
	}
	/* Ethernet padding (wire::TcpFrame zero-fills up to 60 bytes). */
	for (__u32 i = 0; i < MIN_FRAME; i++) {
		__u8 *p = data + total + i;
		asm volatile("" : "+r"(p));
		if (total + i >= padded)
			break;
		if (total + i >= MIN_FRAME)
			break;
		if ((void *)(p + 1) > data_end)
			return -1;
		*p = 0;
	}
	s = csum_bytes(tcp, tcp_len, data_end);
	if (s < 0)
		return -1;
	sum = (__u64)s + pseudo_sum(f, tcp_len);
	*(__u16 *)(tcp + 16) = ~csum_fold(sum);
	return XDP_TX;
}

/* RFC 9293 §3.10.7.2 LISTEN, third check, as src/tcp/listen.rs on_syn: the cookie
 * SYN-ACK for this SYN. -1 when it must be left to userspace. */
static __always_inline int answer_syn(struct xdp_md *ctx, const struct layout *lo,
				      const struct flow *f, const struct cookie_state *st,
				      const struct listener *lc)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct opt_walk w = {};
	struct syn_opts o;
	__u8 opt[20] = {};
	__u32 optlen = 4, isn, iss, doff;
	__u16 client_mss, our_mss;
	__u8 *tcp;

	if (lo->l4 > 58)
		return -1;
	tcp = data + lo->l4;
	if ((void *)(tcp + 20) > data_end)
		return -1;
	doff = (__u32)(tcp[12] >> 4) * 4;
	/* A SYN with data, or a header that does not fit, is left to userspace. */
	if (doff < 20 || doff != lo->tcp_len)
		return -1;
	if (parse_options(tcp + 20, doff - 20, data_end, &w))
		return -1;
	o = w.o;
	isn = bpf_ntohl(*(__be32 *)(tcp + 4));

	client_mss = o.has_mss ? o.mss : (f->v6 ? 1220 : 536);
	iss = cookie_make(&st->cur, f, isn, mss_index(client_mss, f->v6), cookie_counter(st));
	our_mss = lc->mss;
	if (f->v6)
		our_mss = our_mss > 20 ? our_mss - 20 : 0;
	opt[0] = 2;
	opt[1] = 4;
	opt[2] = our_mss >> 8;
	opt[3] = our_mss & 0xff;
	if ((lc->flags & LISTENER_TIMESTAMPS) && o.has_ts) {
		__u64 now = bpf_ktime_get_ns();
		__u32 tick = now > st->origin_ns ? (__u32)((now - st->origin_ns) / 1000000) : 0;
		__u32 ts = ts_encode(tick, &o);

		opt[4] = o.sack ? 4 : 1;
		opt[5] = o.sack ? 2 : 1;
		opt[6] = 8;
		opt[7] = 10;
		opt[8] = ts >> 24;
		opt[9] = ts >> 16;
		opt[10] = ts >> 8;
		opt[11] = ts;
		opt[12] = o.tsval >> 24;
		opt[13] = o.tsval >> 16;
		opt[14] = o.tsval >> 8;
		opt[15] = o.tsval;
		optlen = 16;
		if (o.has_ws) {
			opt[16] = 1;
			opt[17] = 3;
			opt[18] = 3;
			opt[19] = lc->wscale;
			optlen = 20;
		}
	}
	return emit_reply(ctx, lo, f, iss, isn + 1, TCP_SYN | TCP_ACK, lc->window, opt, optlen);
}

/* Per-CPU token bucket: 1 when a reset may be sent now. */
static __always_inline int rst_allowed(const struct cookie_state *st)
{
	__u32 key = 0;
	struct rst_bucket *b = bpf_map_lookup_elem(&rst_bucket, &key);
	__u64 now = bpf_ktime_get_ns();
	__u64 credit;

	if (!b || st->rst_cost_ns == 0)
		return 0;
	credit = b->credit_ns + (now - b->last_ns);
	if (credit > 1000000000ULL)
		credit = 1000000000ULL; /* burst: one second's worth */
	b->last_ns = now;
	if (credit < st->rst_cost_ns) {
		b->credit_ns = credit;
		return 0;
	}
	b->credit_ns = credit - st->rst_cost_ns;
	return 1;
}

/* The occupancy cell of a tuple with hash `h`: 0 = no worker holds state for it. */
static __always_inline __u64 occupied(__u32 h)
{
	__u32 idx = h & (OCC_CELLS - 1);
	__u64 *cell = bpf_map_lookup_elem(&occupancy, &idx);
	return cell ? *cell : 1;
}

/* The `recent_cookie` cell of a tuple with hash `h` (never NULL for an index in range). */
static __always_inline __u64 *recent_cell(__u32 h)
{
	__u32 idx = h & (RECENT_CELLS - 1);
	return bpf_map_lookup_elem(&recent_cookie, &idx);
}

/* A TCP segment for one of our (address, port) pairs: answer it here, or redirect it. */
static __always_inline int handle_tcp(struct xdp_md *ctx, const struct layout *lo,
				      const struct flow *f)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = 0, lport;
	struct cookie_state *st;
	struct listener *lc;
	__u8 *tcp, flags;
	__u64 *recent;
	__u32 h;
	__s64 s;
	int syn, ack, ret;

	if (lo->l4 > 58)
		return redirect(ctx, CNT_REDIRECTED);
	tcp = data + lo->l4;
	if ((void *)(tcp + 20) > data_end)
		return redirect(ctx, CNT_REDIRECTED);
	flags = tcp[13];
	syn = (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN;
	ack = (flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_ACK;
	if (!syn && !ack)
		return redirect(ctx, CNT_REDIRECTED);
	st = bpf_map_lookup_elem(&cookie_state, &key);
	lport = bpf_ntohs(f->dport);
	lc = bpf_map_lookup_elem(&listeners, &lport);
	if (!st || !st->enabled || !lc || !(lc->flags & LISTENER_OFFLOAD))
		goto to_user;
	h = flow_hash(&st->occ, f, 0);
	if (occupied(h))
		goto to_user;
	/* Only segments whose checksum holds are judged here (userspace drops the rest and
	 * counts them by reason). */
	s = csum_bytes(tcp, lo->tcp_len, data_end);
	if (s < 0 || csum_fold((__u64)s + pseudo_sum(f, lo->tcp_len)) != 0xffff)
		goto to_user;

	if (syn) {
		ret = answer_syn(ctx, lo, f, st, lc);
		if (ret < 0)
			goto to_user;
		count(CNT_SYNACK_SENT);
		return ret;
	} else {
		__u32 seq = bpf_ntohl(*(__be32 *)(tcp + 4));
		__u32 seg_ack = bpf_ntohl(*(__be32 *)(tcp + 8));
		__u32 isn = seq - 1, cookie = seg_ack - 1, counter = cookie_counter(st);
		__u32 now = (__u32)(bpf_ktime_get_ns() >> RECENT_SHIFT);

		recent = recent_cell(h);
		if (cookie_ok(&st->cur, f, isn, cookie, counter) ||
		    (st->has_prev && cookie_ok(&st->prev, f, isn, cookie, counter))) {
			if (recent)
				*recent = (__u64)h << 32 | now;
			count(CNT_COOKIE_ACK_TO_USER);
			return redirect(ctx, CNT_REDIRECTED);
		}
		if (recent && (__u32)(*recent >> 32) == h &&
		    now - (__u32)*recent <= RECENT_WINDOW) {
			count(CNT_FOLLOWER_TO_USER);
			return redirect(ctx, CNT_REDIRECTED);
		}
		count(CNT_ACK_DROPPED);
		if (!rst_allowed(st)) {
			count(CNT_RST_LIMITED);
			return XDP_DROP;
		}
		ret = emit_reply(ctx, lo, f, seg_ack, 0, TCP_RST, 0, 0, 0);
		if (ret < 0)
			return XDP_DROP;
		count(CNT_RST_SENT);
		return ret;
	}
to_user:
	if (syn)
		count(CNT_SYN_TO_USER);
	return redirect(ctx, CNT_REDIRECTED);
}

SEC("xdp")
int synack_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct layout lo = {};
	struct flow f = {};
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return pass();
	proto = eth->h_proto;
	l3 = eth + 1;
	lo.l3 = 14;

	/* One 802.1Q tag, as wire::ethernet accepts. An 802.1ad S-tag, or a second tag after
	 * the first, is refused there (Unsupported), so such frames stay with the kernel. */
	if (proto == bpf_htons(ETH_P_8021AD_)) {
		count(CNT_VLAN_PASSED);
		return pass();
	}
	if (proto == bpf_htons(ETH_P_8021Q_)) {
		if (l3 + 4 > data_end)
			return pass();
		proto = *(__be16 *)(l3 + 2);
		if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
			count(CNT_VLAN_PASSED);
			return pass();
		}
		l3 += 4;
		lo.l3 = 18;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		__u32 ihl_bytes, tot;
		__u8 *l4;
		__s64 s;

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
		/* Judged here only without IP options or fragmentation, with a valid header
		 * checksum and a sane source (as engine::handle_ipv4 demands). */
		tot = bpf_ntohs(ip->tot_len);
		if (ihl_bytes != 20 || (ip->frag_off & bpf_htons(0x2000)) || tot < 40 ||
		    (void *)ip + tot > data_end)
			return redirect(ctx, CNT_REDIRECTED);
		s = csum_bytes((__u8 *)ip, 20, data_end);
		if (s < 0 || csum_fold((__u64)s) != 0xffff)
			return redirect(ctx, CNT_REDIRECTED);
		if (ip->saddr == 0xffffffff || (bpf_ntohl(ip->saddr) >> 28) == 0xe ||
		    ip->saddr == 0 || bpf_map_lookup_elem(&addrs_v4, &ip->saddr))
			return redirect(ctx, CNT_REDIRECTED);
		f.saddr[0] = ip->saddr;
		f.daddr[0] = ip->daddr;
		f.sport = *(__u16 *)l4;
		f.dport = *(__u16 *)(l4 + 2);
		lo.l4 = lo.l3 + 20;
		lo.tcp_len = tot - 20;
		return handle_tcp(ctx, &lo, &f);
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		__u8 *l4;

		if ((void *)(ip6 + 1) > data_end)
			return pass();
		l4 = (__u8 *)(ip6 + 1);
		if (ip6->nexthdr == IPPROTO_TCP) {
			__u32 plen;

			if (!bpf_map_lookup_elem(&addrs_v6, &ip6->daddr))
				return pass();
			if ((void *)(l4 + 4) > data_end)
				return pass();
			if (!port_is_ours(*(__be16 *)(l4 + 2)))
				return pass();
			plen = bpf_ntohs(ip6->payload_len);
			if (plen < 20 || (void *)l4 + plen > data_end)
				return redirect(ctx, CNT_REDIRECTED);
			/* engine::handle_ipv6 drops multicast, unspecified and own sources. */
			if (ip6->saddr.in6_u.u6_addr8[0] == 0xff ||
			    (ip6->saddr.in6_u.u6_addr32[0] == 0 && ip6->saddr.in6_u.u6_addr32[1] == 0 &&
			     ip6->saddr.in6_u.u6_addr32[2] == 0 && ip6->saddr.in6_u.u6_addr32[3] == 0) ||
			    bpf_map_lookup_elem(&addrs_v6, &ip6->saddr))
				return redirect(ctx, CNT_REDIRECTED);
			__builtin_memcpy(f.saddr, &ip6->saddr, 16);
			__builtin_memcpy(f.daddr, &ip6->daddr, 16);
			f.sport = *(__u16 *)l4;
			f.dport = *(__u16 *)(l4 + 2);
			f.v6 = 1;
			lo.l4 = lo.l3 + 40;
			lo.tcp_len = plen;
			return handle_tcp(ctx, &lo, &f);
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
