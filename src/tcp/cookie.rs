//! SYN cookies with Linux's layout (`net/ipv4/syncookies.c`, `net/ipv6/syncookies.c`).
//!
//! A LISTEN endpoint under load answers a SYN without keeping state: the ISN of its
//! SYN-ACK encodes a keyed hash of the flow, a minute counter and a 2-bit MSS index, and
//! the client's ACK hands it back (`SEG.ACK - 1`). RFC 4987 §3.6 describes the idea; the
//! bit layout below is exactly Linux's, so the arithmetic, the validity window and the
//! false-accept rate are the kernel's:
//!
//! ```text
//! cookie = H(k0; flow, 0) + client_isn + (count << 24) + ((H(k1; flow, count) + mss_index) mod 2^24)
//!          └──── hides the rest ─────┘   └─ 8 bits ─┘   └──────────── 24 bits ──────────────┘
//! ```
//!
//! `H` is SipHash-2-4 truncated to 32 bits; `count` is the minute counter
//! ([`counter_from_unix_secs`]), passed in by the caller (this module reads no clock), so
//! two nodes that share the secret and a synchronised clock accept each other's cookies.
//!
//! When the SYN carried timestamps, the options that the cookie cannot hold (window scale,
//! SACK, ECN) travel in the low [`TS_BITS`] bits of our TSval and come back in the ACK's
//! TSecr ([`ts_encode`], [`ts_decode`]; Linux `cookie_init_timestamp`,
//! `cookie_timestamp_decode`).
//!
//! # Byte order: Linux's `__be32` as a `u32`
//!
//! The kernel hashes IPv4 with `siphash_4u32((__force u32)saddr, (__force u32)daddr,
//! (__force u32)sport << 16 | (__force u32)dport, count, &syncookie_secret[c])`. The
//! `__force u32` casts reinterpret the network-order bytes as a native integer: on a
//! little-endian host (x86-64, arm64) that is `u32::from_ne_bytes(octets)` ==
//! `u32::from_le_bytes(octets)`, and a port is `u16::from_le_bytes(port.to_be_bytes())`.
//! We always use the little-endian reading, so the cookies are the ones an x86-64 or
//! arm64 kernel would compute with the same keys, and identical on every host we run
//! on. `siphash_4u32(a, b, c, d)` is `siphash_2u64(b << 32 | a, d << 32 | c)`, i.e.
//! standard SipHash over the 16 bytes `a, b, c, d` written little-endian: the address
//! octets go in unchanged, followed by `dport` then `sport` in wire order, then `count`
//! little-endian. For IPv6 Linux hashes a 40-byte struct `{saddr[16], daddr[16], u32
//! count, __be16 sport, __be16 dport}` with plain `siphash()`; we hash the same 40 bytes.
//! A known-answer test (`linux_known_answer_*`) checks both against values computed by
//! a C transcription of the kernel functions.
//!
//! # Keys
//!
//! Linux keeps two 128-bit SipHash keys, `syncookie_secret[0]` (for the counter-free
//! hash) and `syncookie_secret[1]` (for the counted hash). From one 128-bit secret we
//! derive them as: `k0 = secret`; `k1 = (SipHash-2-4(secret; "synack syncookie k1 lo") ,
//! SipHash-2-4(secret; "synack syncookie k1 hi"))` as two little-endian u64 halves. The
//! label messages are 22 bytes, never the 16 or 40 bytes of a cookie input.
//! [`CookieJar::from_linux_keys`] takes the two kernel keys directly instead.
//!
//! # What a forger gets
//!
//! As in Linux, a random `(cookie, client_isn)` passes the age test with probability
//! `MAX_AGE / 256` and then the MSS test with probability `4 / 2^24`. The 2-bit MSS index
//! is added in the clear: changing the cookie (or the ISN) by ±1..±3 shifts the decoded
//! index by the same amount and is accepted when the result stays in 0..4. That only
//! lets someone who already saw the SYN-ACK pick a smaller or larger table MSS, which
//! it could announce anyway; it is Linux's behaviour and the tests pin it down.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use siphasher::sip::SipHasher24;

use crate::counters::DropReason;

/// IPv4 MSS values a cookie can encode (Linux `msstab`, sorted ascending).
pub const MSS_TABLE_V4: [u16; 4] = [536, 1300, 1440, 1460];
/// IPv6 MSS values a cookie can encode (Linux `msstab` in `net/ipv6/syncookies.c`:
/// 1280-60, 1480-60, 1500-60, 9000-60).
pub const MSS_TABLE_V6: [u16; 4] = [1220, 1420, 1440, 8940];
/// Low bits of the cookie carrying hash + MSS index; the upper 8 bits carry the counter
/// (Linux `COOKIEBITS`).
pub const COOKIE_BITS: u32 = 24;
/// A cookie is valid while `counter - cookie_counter < MAX_AGE` (Linux
/// `MAX_SYNCOOKIE_AGE`): the minute it was made in and the next one.
pub const MAX_AGE: u32 = 2;
/// Length of one counter period in seconds (Linux `TCP_SYNCOOKIE_PERIOD`, 60 s).
pub const COUNTER_PERIOD_SECS: u64 = 60;
/// Low bits of the SYN-ACK's TSval that carry [`TsCookieOptions`] (Linux `TSBITS`).
pub const TS_BITS: u32 = 6;

/// Linux `COOKIEMASK`.
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// Mask for the counter difference: `(u32)-1 >> COOKIEBITS`.
const COUNT_MASK: u32 = u32::MAX >> COOKIE_BITS;
/// Linux `TSMASK`.
const TS_MASK: u32 = (1 << TS_BITS) - 1;
/// Linux `TS_OPT_WSCALE_MASK`; the value 0xF means "no window scale option".
const TS_OPT_WSCALE_MASK: u32 = 0xF;
/// Linux `TS_OPT_SACK`.
const TS_OPT_SACK: u32 = 1 << 4;
/// Linux `TS_OPT_ECN`.
const TS_OPT_ECN: u32 = 1 << 5;
/// RFC 7323 §2.3: "the shift.count value ... MUST NOT exceed 14".
const MAX_WSCALE: u8 = 14;

/// Labels for deriving `k1` from the secret (see the module doc).
const K1_LABEL_LO: &[u8; 22] = b"synack syncookie k1 lo";
const K1_LABEL_HI: &[u8; 22] = b"synack syncookie k1 hi";

/// Why a cookie ACK was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// The counter matched a live period but the hash-derived data is not an MSS index:
    /// forged, for another flow, or for another secret.
    Invalid,
    /// The counter in the cookie is `MAX_AGE` or more periods old, or in the future. A
    /// forged cookie lands here too (its counter bits are random), so this counter mixes
    /// late clients with forgeries; the two cannot be told apart from the 8 bits.
    Expired,
}

impl CookieError {
    /// The drop counter this error increments.
    #[inline]
    pub const fn drop_reason(self) -> DropReason {
        match self {
            CookieError::Invalid => DropReason::CookieInvalid,
            CookieError::Expired => DropReason::CookieExpired,
        }
    }
}

/// Everything the hash covers, as on the wire (client = src of the SYN).
///
/// Both addresses should be the same family. If they are not, both are hashed as IPv6
/// (an IPv4 address as `::ffff:a.b.c.d`), so the result is still deterministic.
#[derive(Debug, Clone, Copy)]
pub struct CookieFlow {
    /// The client's address (source of the SYN and of the ACK).
    pub src: IpAddr,
    /// Our address (destination of the SYN).
    pub dst: IpAddr,
    /// The client's port.
    pub src_port: u16,
    /// Our (listening) port.
    pub dst_port: u16,
}

/// The cookie counter for a wall-clock time: `secs / 60`, truncated to `u32` (Linux
/// `tcp_cookie_time()` on real time). Only its low 8 bits travel in the cookie.
#[inline]
pub fn counter_from_unix_secs(secs: u64) -> u32 {
    (secs / COUNTER_PERIOD_SECS) as u32
}

#[inline]
fn mss_table(ipv6: bool) -> &'static [u16; 4] {
    if ipv6 {
        &MSS_TABLE_V6
    } else {
        &MSS_TABLE_V4
    }
}

/// Index of the largest table entry `<= client_mss`; 0 when the client's MSS is below the
/// smallest entry (Linux `__cookie_v4_init_sequence`: the SYN-ACK then announces the
/// smallest entry, and we send no more than that).
#[inline]
pub fn mss_index(client_mss: u16, ipv6: bool) -> u8 {
    let table = mss_table(ipv6);
    let mut index = table.len() - 1;
    while index > 0 && client_mss < table[index] {
        index -= 1;
    }
    index as u8
}

/// The MSS a cookie index stands for. An index outside the table (never produced by
/// [`mss_index`] or [`CookieJar::check`]) maps to the smallest entry, the safe choice.
#[inline]
pub fn mss_from_index(index: u8, ipv6: bool) -> u16 {
    let table = mss_table(ipv6);
    match table.get(usize::from(index)) {
        Some(&mss) => mss,
        None => table[0],
    }
}

/// SipHash-2-4 of exactly 16 bytes given as two little-endian words, straight-line.
///
/// This is the IPv4 cookie hash (`siphash_4u32`), called two or three times per cookie.
/// The general `siphasher` path buffers its input and loops over it; this one is what
/// Linux's `siphash_4u32` compiles to, and because it is inlined, the independent hashes of
/// one cookie interleave in the CPU. It is checked against `siphasher` in the tests.
#[inline(always)]
fn sip24_16(k: (u64, u64), m0: u64, m1: u64) -> u64 {
    let mut v0 = k.0 ^ 0x736f_6d65_7073_6575;
    let mut v1 = k.1 ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = k.0 ^ 0x6c79_6765_6e65_7261;
    let mut v3 = k.1 ^ 0x7465_6462_7974_6573;
    macro_rules! round {
        () => {
            v0 = v0.wrapping_add(v1);
            v1 = v1.rotate_left(13) ^ v0;
            v0 = v0.rotate_left(32);
            v2 = v2.wrapping_add(v3);
            v3 = v3.rotate_left(16) ^ v2;
            v0 = v0.wrapping_add(v3);
            v3 = v3.rotate_left(21) ^ v0;
            v2 = v2.wrapping_add(v1);
            v1 = v1.rotate_left(17) ^ v2;
            v2 = v2.rotate_left(32);
        };
    }
    for m in [m0, m1, 16u64 << 56] {
        v3 ^= m;
        round!();
        round!();
        v0 ^= m;
    }
    v2 ^= 0xff;
    round!();
    round!();
    round!();
    round!();
    v0 ^ v1 ^ v2 ^ v3
}

/// A port as Linux's `(__force u32)` of a `__be16` sees it on a little-endian host.
#[inline]
fn kernel_port(port: u16) -> u32 {
    u32::from(u16::from_le_bytes(port.to_be_bytes()))
}

/// One pair of Linux keys (`syncookie_secret[0]`, `syncookie_secret[1]`), kept as ready
/// SipHash states.
#[derive(Clone, Copy)]
struct Keys {
    /// `syncookie_secret[0]`: the counter-free hash.
    k0: SipHasher24,
    /// `syncookie_secret[1]`: the hash with the counter.
    k1: SipHasher24,
    /// The same two keys as raw SipHash key words, for the IPv4 fast path.
    raw0: (u64, u64),
    raw1: (u64, u64),
}

impl Keys {
    fn from_secret(secret: &[u8; 16]) -> Self {
        let prf = SipHasher24::new_with_key(secret);
        let lo = prf.hash(K1_LABEL_LO);
        let hi = prf.hash(K1_LABEL_HI);
        Keys::from_hashers(prf, SipHasher24::new_with_keys(lo, hi))
    }

    fn from_hashers(k0: SipHasher24, k1: SipHasher24) -> Self {
        Keys {
            k0,
            k1,
            raw0: k0.keys(),
            raw1: k1.keys(),
        }
    }

    /// The two message words of the IPv4 `siphash_4u32` input, without the counter.
    #[inline(always)]
    fn v4_words(src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> (u64, u32) {
        let a = u32::from_le_bytes(src.octets()) as u64;
        let b = u32::from_le_bytes(dst.octets()) as u64;
        let c = kernel_port(src_port) << 16 | kernel_port(dst_port);
        (a | b << 32, c)
    }

    /// Linux `cookie_hash(saddr, daddr, sport, dport, count, c)`, `key` being
    /// `syncookie_secret[c]`.
    #[inline]
    fn hash(key: &SipHasher24, flow: &CookieFlow, count: u32) -> u32 {
        match (flow.src, flow.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                // siphash_4u32(saddr, daddr, sport << 16 | dport, count): four u32 written
                // little-endian (see the module doc on byte order).
                let a = u32::from_le_bytes(src.octets());
                let b = u32::from_le_bytes(dst.octets());
                let c = kernel_port(flow.src_port) << 16 | kernel_port(flow.dst_port);
                let mut msg = [0u8; 16];
                msg[0..4].copy_from_slice(&a.to_le_bytes());
                msg[4..8].copy_from_slice(&b.to_le_bytes());
                msg[8..12].copy_from_slice(&c.to_le_bytes());
                msg[12..16].copy_from_slice(&count.to_le_bytes());
                key.hash(&msg) as u32
            }
            (src, dst) => {
                // siphash(&{saddr, daddr, u32 count, __be16 sport, __be16 dport}, 40).
                let mut msg = [0u8; 40];
                msg[0..16].copy_from_slice(&as_v6(src).octets());
                msg[16..32].copy_from_slice(&as_v6(dst).octets());
                msg[32..36].copy_from_slice(&count.to_le_bytes());
                msg[36..38].copy_from_slice(&flow.src_port.to_be_bytes());
                msg[38..40].copy_from_slice(&flow.dst_port.to_be_bytes());
                key.hash(&msg) as u32
            }
        }
    }

    /// Linux `secure_tcp_syn_cookie`.
    #[inline]
    fn generate(&self, flow: &CookieFlow, client_isn: u32, data: u32, counter: u32) -> u32 {
        if let (IpAddr::V4(src), IpAddr::V4(dst)) = (flow.src, flow.dst) {
            let (m0, c) = Self::v4_words(src, dst, flow.src_port, flow.dst_port);
            // Two independent hashes: inlined side by side, they overlap in the pipeline.
            let h0 = sip24_16(self.raw0, m0, c as u64) as u32;
            let h1 = sip24_16(self.raw1, m0, c as u64 | (counter as u64) << 32) as u32;
            return h0
                .wrapping_add(client_isn)
                .wrapping_add(counter << COOKIE_BITS)
                .wrapping_add(h1.wrapping_add(data) & COOKIE_MASK);
        }
        Self::hash(&self.k0, flow, 0)
            .wrapping_add(client_isn)
            .wrapping_add(counter << COOKIE_BITS)
            .wrapping_add(Self::hash(&self.k1, flow, counter).wrapping_add(data) & COOKIE_MASK)
    }

    /// Linux `check_tcp_syn_cookie` plus the `mssind < ARRAY_SIZE(msstab)` test.
    #[inline]
    fn check(
        &self,
        flow: &CookieFlow,
        client_isn: u32,
        cookie: u32,
        counter: u32,
    ) -> Result<u8, CookieError> {
        if let (IpAddr::V4(src), IpAddr::V4(dst)) = (flow.src, flow.dst) {
            // The cookie can only have been made in this period or the last: hash both
            // candidates alongside H0 instead of after it (three independent hashes).
            let (m0, c) = Self::v4_words(src, dst, flow.src_port, flow.dst_port);
            let h0 = sip24_16(self.raw0, m0, c as u64) as u32;
            let now = sip24_16(self.raw1, m0, c as u64 | (counter as u64) << 32) as u32;
            let prev = counter.wrapping_sub(1);
            let before = sip24_16(self.raw1, m0, c as u64 | (prev as u64) << 32) as u32;
            let rest = cookie.wrapping_sub(h0.wrapping_add(client_isn));
            let diff = counter.wrapping_sub(rest >> COOKIE_BITS) & COUNT_MASK;
            let h1 = match diff {
                0 => now,
                1 => before,
                _ => return Err(CookieError::Expired),
            };
            let data = rest.wrapping_sub(h1) & COOKIE_MASK;
            return if data < MSS_TABLE_V4.len() as u32 {
                Ok(data as u8)
            } else {
                Err(CookieError::Invalid)
            };
        }
        // Strip away the layers: what is left is (count << 24) + ((H1 + data) mod 2^24).
        let rest = cookie.wrapping_sub(Self::hash(&self.k0, flow, 0).wrapping_add(client_isn));
        // 8-bit distance back to the period the cookie was made in; a counter from the
        // future wraps to a large distance.
        let diff = counter.wrapping_sub(rest >> COOKIE_BITS) & COUNT_MASK;
        if diff >= MAX_AGE {
            return Err(CookieError::Expired);
        }
        let made_at = counter.wrapping_sub(diff);
        let data = rest.wrapping_sub(Self::hash(&self.k1, flow, made_at)) & COOKIE_MASK;
        if data < MSS_TABLE_V4.len() as u32 {
            Ok(data as u8)
        } else {
            Err(CookieError::Invalid)
        }
    }
}

#[inline]
fn as_v6(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Makes and checks SYN cookies: the current keys and, during a rotation, the previous.
#[derive(Clone)]
pub struct CookieJar {
    current: Keys,
    previous: Option<Keys>,
}

impl fmt::Debug for CookieJar {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("has_previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar keyed by a 128-bit secret (from config, or shared by a cluster of nodes);
    /// Linux's two keys are derived from it as the module doc describes.
    pub fn new(secret: [u8; 16]) -> Self {
        CookieJar {
            current: Keys::from_secret(&secret),
            previous: None,
        }
    }

    /// A jar keyed by Linux's two raw keys, `syncookie_secret[0]` and
    /// `syncookie_secret[1]`, each as the 16 bytes of the kernel's `siphash_key_t`
    /// (two little-endian u64). Gives bit-for-bit the kernel's cookies.
    pub fn from_linux_keys(key0: [u8; 16], key1: [u8; 16]) -> Self {
        CookieJar {
            current: Keys::from_hashers(
                SipHasher24::new_with_key(&key0),
                SipHasher24::new_with_key(&key1),
            ),
            previous: None,
        }
    }

    /// A jar with a fresh secret from the OS random source.
    ///
    /// # Panics
    /// If the OS has no random source to give (`getrandom` fails); a node without one
    /// must not make cookies.
    pub fn random() -> Self {
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).expect("syn cookies: the OS random source (getrandom) failed");
        Self::new(secret)
    }

    /// Rotate: new cookies use `secret`; cookies made with the old one still verify until
    /// [`forget_previous`](Self::forget_previous). A second rotation drops the oldest.
    pub fn rotate(&mut self, secret: [u8; 16]) {
        self.previous = Some(self.current);
        self.current = Keys::from_secret(&secret);
    }

    /// Stop accepting cookies made with the secret before the last rotation. Do this at
    /// least `MAX_AGE` periods after `rotate`, when no such cookie can be valid anyway.
    pub fn forget_previous(&mut self) {
        self.previous = None;
    }

    /// The ISN for our SYN-ACK (Linux `secure_tcp_syn_cookie`). `client_isn` = SEG.SEQ of
    /// the SYN; `mss_index` from [`mss_index`] (values above 3 are clamped to 3);
    /// `counter` from [`counter_from_unix_secs`].
    #[inline]
    pub fn generate(&self, flow: &CookieFlow, client_isn: u32, mss_index: u8, counter: u32) -> u32 {
        debug_assert!(
            mss_index < 4,
            "mss index {mss_index} outside the cookie table"
        );
        let data = u32::from(mss_index.min(3));
        self.current.generate(flow, client_isn, data, counter)
    }

    /// Verify the ACK of a cookie handshake: `client_isn` = SEG.SEQ - 1 of the ACK,
    /// `cookie` = SEG.ACK - 1. Returns the MSS index (0..4) for [`mss_from_index`].
    ///
    /// `Expired` when the cookie's counter is `MAX_AGE` or more periods behind `counter`
    /// (or ahead of it); `Invalid` when the hash-derived data is not an MSS index. A
    /// cookie rejected by the current keys is tried with the previous keys (after a
    /// rotation); if both reject it, the current keys' verdict is returned.
    #[inline]
    pub fn check(
        &self,
        flow: &CookieFlow,
        client_isn: u32,
        cookie: u32,
        counter: u32,
    ) -> Result<u8, CookieError> {
        let verdict = self.current.check(flow, client_isn, cookie, counter);
        match (verdict, &self.previous) {
            (Err(_), Some(previous)) => previous
                .check(flow, client_isn, cookie, counter)
                .or(verdict),
            _ => verdict,
        }
    }
}

/// The two Linux keys of one secret as raw SipHash key words: `(syncookie_secret[0],
/// syncookie_secret[1])`, each `(k0, k1)` as `siphash_key_t` holds them. For a second
/// implementation of the same cookies (the XDP program, `src/bpf/synack.bpf.c`).
pub type RawKeys = ((u64, u64), (u64, u64));

impl CookieJar {
    /// The current secret's two keys as raw SipHash key words.
    pub fn raw_keys(&self) -> RawKeys {
        (self.current.raw0, self.current.raw1)
    }

    /// The previous secret's keys, while a rotation keeps it valid.
    pub fn previous_raw_keys(&self) -> Option<RawKeys> {
        self.previous.map(|k| (k.raw0, k.raw1))
    }
}

/// Linux `cookie_hash` with an arbitrary 128-bit SipHash key (`(k0, k1)` words): SipHash-2-4
/// of the cookie message of `flow` and `count`, truncated to 32 bits. The cookie uses it with
/// its two secret keys; the occupancy filter of the XDP offload (`table::occupancy`) uses it
/// with a key of its own, so both sides of that filter agree on one well-tested function.
pub fn flow_hash(key: (u64, u64), flow: &CookieFlow, count: u32) -> u32 {
    Keys::hash(&SipHasher24::new_with_keys(key.0, key.1), flow, count)
}

/// Options carried in the low 6 bits of our TSval (Linux cookie_init_timestamp /
/// cookie_timestamp_decode).
///
/// ```text
/// | 31 .. 6   |  5  |  4   | 3 2 1 0 |
/// | timestamp | ECN | SACK | WScale  |   WScale 0xF = no window scale option
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsCookieOptions {
    /// The client's window shift (its SYN's WS option), `None` if it sent none.
    pub snd_wscale: Option<u8>,
    /// The client's SYN carried SACK-permitted.
    pub sack_ok: bool,
    /// The client's SYN asked for ECN (ECE and CWR set).
    pub ecn_ok: bool,
}

/// TSval for the SYN-ACK: (now_ts with low 6 bits cleared) | options, minus 64 if that
/// exceeds now_ts. WS 0xF = none.
///
/// Linux `cookie_init_timestamp`: "we must make sure that the resulting initial timestamp
/// is <= tcp_time_stamp", so the TSval never runs ahead of the clock the later segments
/// use. A window shift above 14 is sent as 14 (RFC 7323 §2.3: "If a Window Scale
/// shift.count greater than 14 is received, the TCP MUST use 14").
#[inline]
pub fn ts_encode(now_ts: u32, opts: TsCookieOptions) -> u32 {
    let mut options = match opts.snd_wscale {
        Some(shift) => u32::from(shift.min(MAX_WSCALE)),
        None => TS_OPT_WSCALE_MASK,
    };
    if opts.sack_ok {
        options |= TS_OPT_SACK;
    }
    if opts.ecn_ok {
        options |= TS_OPT_ECN;
    }
    let ts = (now_ts & !TS_MASK) | options;
    if ts > now_ts {
        // Linux: ts >>= TSBITS; ts--; ts <<= TSBITS; ts |= options (wrapping at 0).
        ts.wrapping_sub(1 << TS_BITS)
    } else {
        ts
    }
}

/// From the ACK's TSecr. None when invalid (wscale field 0x0..0xE above 14 → None).
///
/// The 4-bit field holds a shift 0..=14 or 0xF for "no window scale", so every 6-bit
/// pattern is a valid encoding and this currently always returns `Some`; the `Option`
/// is where a stricter layout would refuse. (Linux `cookie_timestamp_decode` refuses only
/// options the host has disabled by sysctl, which is the caller's policy here.)
#[inline]
pub fn ts_decode(tsecr: u32) -> Option<TsCookieOptions> {
    let wscale = (tsecr & TS_OPT_WSCALE_MASK) as u8;
    let snd_wscale = match wscale {
        0..=MAX_WSCALE => Some(wscale),
        // 0xF: the SYN had no window scale option.
        _ => None,
    };
    Some(TsCookieOptions {
        snd_wscale,
        sack_ok: tsecr & TS_OPT_SACK != 0,
        ecn_ok: tsecr & TS_OPT_ECN != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use proptest::prelude::*;

    /// A random flow for the statistical tests, IPv4 or IPv6 with equal odds.
    fn random_flow(rng: &mut Rng) -> CookieFlow {
        let v6 = rng.next_u64() & 1 == 1;
        let (src, dst) = if v6 {
            let a = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
            let b = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
            (IpAddr::V6(a.into()), IpAddr::V6(b.into()))
        } else {
            (IpAddr::V4(low32(rng).into()), IpAddr::V4(low32(rng).into()))
        };
        CookieFlow {
            src,
            dst,
            src_port: rng.next_u64() as u16,
            dst_port: rng.next_u64() as u16,
        }
    }

    /// The low 32 bits of the next output (the statistical tests' fixed seeds were chosen
    /// with these values).
    fn low32(rng: &mut Rng) -> u32 {
        rng.next_u64() as u32
    }

    fn flow_v4() -> CookieFlow {
        CookieFlow {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            src_port: 40000,
            dst_port: 80,
        }
    }

    fn flow_v6() -> CookieFlow {
        CookieFlow {
            src: IpAddr::V6("2001:2::1".parse().unwrap()),
            dst: IpAddr::V6("2001:2::2".parse().unwrap()),
            src_port: 40000,
            dst_port: 80,
        }
    }

    const SECRET: [u8; 16] = *b"synack-test-key!";

    /// SipHash-2-4 reference vectors (Aumasson & Bernstein, "SipHash: a fast short-input
    /// PRF", appendix vectors.h): key 00..0f, message 00..(len-1). The lengths are the
    /// ones we hash: 0, a 15-byte tail, the 16-byte IPv4 input, the 40-byte IPv6 input.
    #[test]
    fn straight_line_siphash_matches_siphasher() {
        let mut rng = Rng::new(0x5eed_1234);
        for _ in 0..10_000 {
            let key = (rng.next_u64(), rng.next_u64());
            let (m0, m1) = (rng.next_u64(), rng.next_u64());
            let mut msg = [0u8; 16];
            msg[..8].copy_from_slice(&m0.to_le_bytes());
            msg[8..].copy_from_slice(&m1.to_le_bytes());
            let want = SipHasher24::new_with_keys(key.0, key.1).hash(&msg);
            assert_eq!(super::sip24_16(key, m0, m1), want);
        }
    }

    #[test]
    fn siphash24_reference_vectors() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let msg: [u8; 64] = core::array::from_fn(|i| i as u8);
        let h = SipHasher24::new_with_key(&key);
        assert_eq!(h.hash(&msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(h.hash(&msg[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(h.hash(&msg[..16]), 0x3f2a_cc7f_57c2_9bdb);
        assert_eq!(h.hash(&msg[..40]), 0x0e3e_a96b_5304_a7d0);
    }

    /// Known answers from a C transcription of Linux's `cookie_hash` /
    /// `secure_tcp_syn_cookie` (IPv4: `siphash_4u32` over the `__be32`/`__be16` fields
    /// loaded from wire bytes on x86-64; IPv6: `siphash` over the 40-byte struct), with
    /// `syncookie_secret[0]` = bytes 00..0f, `syncookie_secret[1]` = bytes 10..1f,
    /// flow 198.18.0.1:40000 → 198.18.0.2:80 (IPv6: 2001:2::1 → 2001:2::2, same ports),
    /// client ISN 0x01020304, counter 0x01234567, data (MSS index) 0..4.
    const KAT_V4: [u32; 4] = [0xc3aa_a58e, 0xc3aa_a58f, 0xc3aa_a590, 0xc3aa_a591];
    const KAT_V6: [u32; 4] = [0x03a4_2645, 0x03a4_2646, 0x03a4_2647, 0x03a4_2648];

    fn kat_jar() -> CookieJar {
        CookieJar::from_linux_keys(
            core::array::from_fn(|i| i as u8),
            core::array::from_fn(|i| 16 + i as u8),
        )
    }

    /// The cookie of `flow` for every MSS index is Linux's (`expected`) and checks back.
    fn assert_known_answers(flow: &CookieFlow, expected: &[u32; 4]) {
        let jar = kat_jar();
        for (index, &expected) in expected.iter().enumerate() {
            let cookie = jar.generate(flow, 0x0102_0304, index as u8, 0x0123_4567);
            assert_eq!(cookie, expected, "mss index {index}");
            assert_eq!(
                jar.check(flow, 0x0102_0304, cookie, 0x0123_4567),
                Ok(index as u8)
            );
        }
    }

    #[test]
    fn linux_known_answer_v4() {
        let jar = kat_jar();
        let flow = flow_v4();
        // Intermediate: cookie_hash(.., 0, 0) and cookie_hash(.., count, 1).
        assert_eq!(Keys::hash(&jar.current.k0, &flow, 0), 0x5afc_a0b5);
        assert_eq!(Keys::hash(&jar.current.k1, &flow, 0x0123_4567), 0x7eac_01d5);
        assert_known_answers(&flow, &KAT_V4);
    }

    #[test]
    fn linux_known_answer_v6() {
        assert_known_answers(&flow_v6(), &KAT_V6);
    }

    #[test]
    fn key_derivation_is_deterministic_and_splits_keys() {
        let a = Keys::from_secret(&SECRET);
        let b = Keys::from_secret(&SECRET);
        assert_eq!(a.k0.keys(), b.k0.keys());
        assert_eq!(a.k1.keys(), b.k1.keys());
        assert_eq!(a.k0.key(), SECRET);
        assert_ne!(a.k0.keys(), a.k1.keys());
        let prf = SipHasher24::new_with_key(&SECRET);
        assert_eq!(a.k1.keys(), (prf.hash(K1_LABEL_LO), prf.hash(K1_LABEL_HI)));
    }

    #[test]
    fn counter_is_minutes() {
        assert_eq!(counter_from_unix_secs(0), 0);
        assert_eq!(counter_from_unix_secs(59), 0);
        assert_eq!(counter_from_unix_secs(60), 1);
        assert_eq!(counter_from_unix_secs(1_700_000_000), 28_333_333);
        // Truncated to u32 far in the future.
        assert_eq!(counter_from_unix_secs(60 * (1u64 << 32) + 60), 1);
    }

    #[test]
    fn mss_index_rounds_down_to_table() {
        for (mss, index) in [
            (100, 0),
            (535, 0),
            (536, 0),
            (1299, 0),
            (1300, 1),
            (1439, 1),
            (1440, 2),
            (1459, 2),
            (1460, 3),
            (9000, 3),
            (u16::MAX, 3),
            (0, 0),
        ] {
            assert_eq!(mss_index(mss, false), index, "v4 mss {mss}");
        }
        for (mss, index) in [
            (536, 0),
            (1220, 0),
            (1419, 0),
            (1420, 1),
            (1440, 2),
            (1500, 2),
            (8939, 2),
            (8940, 3),
            (9000, 3),
        ] {
            assert_eq!(mss_index(mss, true), index, "v6 mss {mss}");
        }
        assert_eq!(mss_from_index(mss_index(1459, false), false), 1440);
        assert_eq!(mss_from_index(mss_index(9000, true), true), 8940);
        assert_eq!(mss_from_index(mss_index(100, false), false), 536);
        assert_eq!(mss_from_index(4, false), 536);
        assert_eq!(mss_from_index(255, true), 1220);
    }

    /// Every table entry survives generate → check for both families, in both periods of
    /// the validity window.
    #[test]
    fn round_trip_every_mss_entry() {
        let jar = CookieJar::new(SECRET);
        for (flow, ipv6) in [(flow_v4(), false), (flow_v6(), true)] {
            for &mss in mss_table(ipv6) {
                let index = mss_index(mss, ipv6);
                for counter in [0u32, 1, 255, 256, 0x00ff_ffff, u32::MAX] {
                    let cookie = jar.generate(&flow, 0xdead_beef, index, counter);
                    for age in 0..MAX_AGE {
                        let got = jar.check(&flow, 0xdead_beef, cookie, counter.wrapping_add(age));
                        assert_eq!(
                            got.map(|i| mss_from_index(i, ipv6)),
                            Ok(mss),
                            "counter {counter} age {age}"
                        );
                    }
                }
            }
        }
    }

    /// Linux `check_tcp_syn_cookie`: valid while `diff < MAX_SYNCOOKIE_AGE`.
    #[test]
    fn validity_window() {
        let jar = CookieJar::new(SECRET);
        let flow = flow_v4();
        let made = 1000;
        let cookie = jar.generate(&flow, 7, 3, made);
        assert_eq!(jar.check(&flow, 7, cookie, made), Ok(3));
        assert_eq!(jar.check(&flow, 7, cookie, made + 1), Ok(3));
        assert_eq!(
            jar.check(&flow, 7, cookie, made + 2),
            Err(CookieError::Expired)
        );
        assert_eq!(
            jar.check(&flow, 7, cookie, made + 100),
            Err(CookieError::Expired)
        );
        // From the future: the 8-bit difference wraps to 255, 254, ...
        assert_eq!(
            jar.check(&flow, 7, cookie, made - 1),
            Err(CookieError::Expired)
        );
        assert_eq!(
            jar.check(&flow, 7, cookie, made - 5),
            Err(CookieError::Expired)
        );
        // 256 periods later the 8 counter bits match again, but the counted hash does
        // not: Invalid (false accept 4/2^24; this seed is fixed).
        assert_eq!(
            jar.check(&flow, 7, cookie, made + 256),
            Err(CookieError::Invalid)
        );
        assert_eq!(
            jar.check(&flow, 7, cookie, made + 257),
            Err(CookieError::Invalid)
        );
    }

    #[test]
    fn shared_secret_across_nodes() {
        let node_a = CookieJar::new(SECRET);
        let node_b = CookieJar::new(SECRET);
        let other = CookieJar::new(*b"another-secret!!");
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            let flow = random_flow(&mut rng);
            let isn = low32(&mut rng);
            let counter = low32(&mut rng);
            let index = (rng.next_u64() % 4) as u8;
            let cookie = node_a.generate(&flow, isn, index, counter);
            assert_eq!(node_b.check(&flow, isn, cookie, counter), Ok(index));
            assert_eq!(
                node_b.check(&flow, isn, cookie, counter.wrapping_add(1)),
                Ok(index)
            );
            assert!(other.check(&flow, isn, cookie, counter).is_err());
        }
    }

    #[test]
    fn rotation_keeps_previous_until_forgotten() {
        let mut jar = CookieJar::new(SECRET);
        let flow = flow_v6();
        let old = jar.generate(&flow, 42, 2, 500);
        jar.rotate(*b"the-next-secret!");
        let new = jar.generate(&flow, 42, 2, 500);
        assert_ne!(old, new);
        assert_eq!(jar.check(&flow, 42, old, 500), Ok(2));
        assert_eq!(jar.check(&flow, 42, new, 501), Ok(2));
        // A jar built directly from the new secret makes the same new cookies.
        assert_eq!(
            CookieJar::new(*b"the-next-secret!").generate(&flow, 42, 2, 500),
            new
        );
        jar.forget_previous();
        assert!(jar.check(&flow, 42, old, 500).is_err());
        assert_eq!(jar.check(&flow, 42, new, 500), Ok(2));
        // A second rotation drops the oldest secret.
        let mut jar = CookieJar::new(SECRET);
        jar.rotate([1; 16]);
        jar.rotate([2; 16]);
        let first = CookieJar::new(SECRET).generate(&flow, 42, 1, 9);
        let second = CookieJar::new([1; 16]).generate(&flow, 42, 1, 9);
        assert!(jar.check(&flow, 42, first, 9).is_err());
        assert_eq!(jar.check(&flow, 42, second, 9), Ok(1));
    }

    /// Flipping bit k of the cookie adds or subtracts 2^k. Bits 2..=23 move the data out
    /// of 0..4 whatever happens to the counter bits: always rejected. Bits 24..=31 move
    /// the counter: Expired, or a different counted hash (Invalid). Bits 0 and 1 move the
    /// MSS index by ±1/±2 in the clear, accepted iff it stays in 0..4 (Linux behaves so).
    #[test]
    fn single_bit_flips_fixed_seed() {
        let jar = CookieJar::new(SECRET);
        for (flow, index) in [
            (flow_v4(), 0u8),
            (flow_v4(), 1),
            (flow_v6(), 2),
            (flow_v6(), 3),
        ] {
            let counter = 77;
            let cookie = jar.generate(&flow, 1234, index, counter);
            let mut rejected = 0;
            for bit in 0..32 {
                let flipped = cookie ^ (1 << bit);
                let delta: i64 = if cookie & (1 << bit) == 0 {
                    1 << bit
                } else {
                    -(1 << bit)
                };
                let got = jar.check(&flow, 1234, flipped, counter);
                if bit < 2 {
                    let shifted = i64::from(index) + delta;
                    let expect = if (0..4).contains(&shifted) {
                        Ok(shifted as u8)
                    } else {
                        Err(CookieError::Invalid)
                    };
                    assert_eq!(got, expect, "bit {bit} index {index}");
                } else {
                    assert!(got.is_err(), "bit {bit} index {index} accepted");
                    rejected += 1;
                }
            }
            assert_eq!(rejected, 30);
        }
    }

    /// Over many random flows: bits 2..=23 never pass; bits 24..=31 pass at most at the
    /// forgery rate 4/2^24 per try; random cookies likewise.
    #[test]
    fn bit_flips_and_forgeries_random_flows() {
        let jar = CookieJar::new(SECRET);
        let mut rng = Rng::new(0x5eed);
        let mut high_tries = 0u64;
        let mut high_accepts = 0u64;
        let mut forged_accepts = 0u64;
        let flows = 4000;
        for _ in 0..flows {
            let flow = random_flow(&mut rng);
            let isn = low32(&mut rng);
            let counter = low32(&mut rng);
            let index = (rng.next_u64() % 4) as u8;
            let cookie = jar.generate(&flow, isn, index, counter);
            let now = counter.wrapping_add((rng.next_u64() % 2) as u32);
            for bit in 2..24 {
                assert!(jar.check(&flow, isn, cookie ^ (1 << bit), now).is_err());
            }
            for bit in 24..32 {
                high_tries += 1;
                high_accepts += u64::from(jar.check(&flow, isn, cookie ^ (1 << bit), now).is_ok());
            }
            forged_accepts += u64::from(jar.check(&flow, isn, low32(&mut rng), now).is_ok());
        }
        // Expected accepts: 32000 * 4/2^24 ≈ 0.008 and 4000 * 2/256 * 4/2^24 ≈ 8e-6;
        // P(X >= 2) for Poisson(0.008) is 3e-5.
        assert!(
            high_accepts <= 1,
            "{high_accepts} of {high_tries} high-bit flips accepted"
        );
        assert!(
            forged_accepts <= 1,
            "{forged_accepts} forged cookies accepted"
        );
    }

    /// A wrong client ISN shifts the stripped value: far off → rejected; off by one →
    /// the MSS index moves by one, as in Linux (the index is added in the clear).
    #[test]
    fn wrong_client_isn() {
        let jar = CookieJar::new(SECRET);
        let flow = flow_v4();
        let cookie = jar.generate(&flow, 5000, 2, 10);
        for isn in [
            5000 + 4,
            5000 + 1000,
            5000 - 1000,
            0,
            u32::MAX,
            5000 ^ 0x8000_0000,
            5000 + (1 << 24),
        ] {
            assert!(jar.check(&flow, isn, cookie, 10).is_err(), "isn {isn}");
        }
        assert_eq!(jar.check(&flow, 5001, cookie, 10), Ok(1));
        assert_eq!(jar.check(&flow, 4999, cookie, 10), Ok(3));
        // Another flow (one port differs) is rejected.
        let other = CookieFlow {
            src_port: 40001,
            ..flow
        };
        assert!(jar.check(&other, 5000, cookie, 10).is_err());
        let swapped = CookieFlow {
            src: flow.dst,
            dst: flow.src,
            ..flow
        };
        assert!(jar.check(&swapped, 5000, cookie, 10).is_err());
    }

    #[test]
    fn mixed_families_hash_as_v6_mapped() {
        let jar = CookieJar::new(SECRET);
        let mixed = CookieFlow {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            ..flow_v6()
        };
        let mapped = CookieFlow {
            src: IpAddr::V6(Ipv4Addr::new(198, 18, 0, 1).to_ipv6_mapped()),
            ..flow_v6()
        };
        let cookie = jar.generate(&mixed, 1, 1, 1);
        assert_eq!(cookie, jar.generate(&mapped, 1, 1, 1));
        assert_eq!(jar.check(&mapped, 1, cookie, 1), Ok(1));
    }

    #[test]
    fn error_maps_to_drop_reason() {
        assert_eq!(
            CookieError::Invalid.drop_reason(),
            DropReason::CookieInvalid
        );
        assert_eq!(
            CookieError::Expired.drop_reason(),
            DropReason::CookieExpired
        );
    }

    #[test]
    fn random_jars_differ_and_debug_hides_keys() {
        let a = CookieJar::random();
        let b = CookieJar::random();
        let flow = flow_v4();
        assert_ne!(a.generate(&flow, 1, 0, 1), b.generate(&flow, 1, 0, 1));
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("k0") && !shown.contains("SipHasher"),
            "{shown}"
        );
    }

    /// Linux `cookie_init_timestamp` / `cookie_timestamp_decode`: every wscale 0..=14 and
    /// none, with and without SACK and ECN.
    #[test]
    fn ts_round_trip_all_option_combos() {
        let shifts = (0..=MAX_WSCALE).map(Some).chain([None]);
        for snd_wscale in shifts {
            for sack_ok in [false, true] {
                for ecn_ok in [false, true] {
                    let opts = TsCookieOptions {
                        snd_wscale,
                        sack_ok,
                        ecn_ok,
                    };
                    for now in [0u32, 1, 63, 64, 65, 0x1234_5678, 0x1234_5640, u32::MAX] {
                        let ts = ts_encode(now, opts);
                        assert_eq!(ts_decode(ts), Some(opts), "now {now:#x} {opts:?}");
                        // Never ahead of now, and less than one 64-tick step behind (mod 2^32).
                        let behind = now.wrapping_sub(ts);
                        assert!(behind < 2 << TS_BITS, "now {now:#x} ts {ts:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn ts_encode_layout() {
        let none = TsCookieOptions {
            snd_wscale: None,
            sack_ok: false,
            ecn_ok: false,
        };
        let all = TsCookieOptions {
            snd_wscale: Some(7),
            sack_ok: true,
            ecn_ok: true,
        };
        assert_eq!(ts_encode(0x1000_0040, all), 0x1000_0000 | 0x37);
        assert_eq!(ts_encode(0x1000_007f, all), 0x1000_0077);
        assert_eq!(ts_encode(0x1000_007f, none), 0x1000_004f);
        assert_eq!(ts_encode(0x1000_0045, none), 0x1000_000f);
        // Wraps below zero like Linux's shift-decrement-shift.
        assert_eq!(ts_encode(3, none), 0xffff_ffcf);
        // Shift counts above 14 are sent as 14 (RFC 7323 §2.3).
        let big = TsCookieOptions {
            snd_wscale: Some(200),
            ..none
        };
        assert_eq!(
            ts_decode(ts_encode(0xffff, big)).unwrap().snd_wscale,
            Some(14)
        );
        assert_eq!(ts_decode(0xf), Some(none));
    }

    fn arb_flow() -> impl Strategy<Value = CookieFlow> {
        let v4 = (any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d)));
        let v6 = (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d)));
        (prop_oneof![v4, v6], any::<u16>(), any::<u16>()).prop_map(
            |((src, dst), src_port, dst_port)| CookieFlow {
                src,
                dst,
                src_port,
                dst_port,
            },
        )
    }

    proptest! {
        #[test]
        fn prop_cookie_round_trip(
            secret in any::<[u8; 16]>(),
            flow in arb_flow(),
            isn in any::<u32>(),
            client_mss in any::<u16>(),
            counter in any::<u32>(),
            age in 0..MAX_AGE,
        ) {
            let ipv6 = flow.src.is_ipv6();
            let jar = CookieJar::new(secret);
            let index = mss_index(client_mss, ipv6);
            let cookie = jar.generate(&flow, isn, index, counter);
            let got = jar.check(&flow, isn, cookie, counter.wrapping_add(age));
            prop_assert_eq!(got, Ok(index));
            let mss = mss_from_index(index, ipv6);
            prop_assert!(mss <= client_mss || index == 0);
            // Expired at MAX_AGE and for any counter from the future.
            let late = counter.wrapping_add(MAX_AGE);
            prop_assert_eq!(jar.check(&flow, isn, cookie, late), Err(CookieError::Expired));
            prop_assert_eq!(jar.check(&flow, isn, cookie, counter.wrapping_sub(1)), Err(CookieError::Expired));
        }

        #[test]
        fn prop_ts_round_trip(
            now in any::<u32>(),
            wscale in proptest::option::of(0u8..=14),
            sack_ok in any::<bool>(),
            ecn_ok in any::<bool>(),
        ) {
            let opts = TsCookieOptions { snd_wscale: wscale, sack_ok, ecn_ok };
            let ts = ts_encode(now, opts);
            prop_assert_eq!(ts_decode(ts), Some(opts));
            prop_assert!(now.wrapping_sub(ts) < 2 << TS_BITS);
            prop_assert_eq!(ts & !TS_MASK, if (now & !TS_MASK) | (ts & TS_MASK) > now {
                (now & !TS_MASK).wrapping_sub(1 << TS_BITS)
            } else {
                now & !TS_MASK
            });
        }

        #[test]
        fn prop_ts_decode_any_tsecr(tsecr in any::<u32>()) {
            let opts = ts_decode(tsecr).expect("every pattern decodes");
            // Re-encoding the options reproduces the low bits.
            prop_assert_eq!(ts_encode(tsecr | TS_MASK, opts) & TS_MASK, tsecr & TS_MASK);
        }
    }
}
