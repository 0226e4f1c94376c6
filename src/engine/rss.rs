//! Toeplitz RSS hash and the indirection table (RETA) that maps a hash to a worker.
//!
//! The NIC spreads received frames over its queues with the Toeplitz hash of the
//! addresses and ports and its RETA (128 to 2048 entries, `ethtool -x`); each AF_XDP
//! worker owns one queue. The engine computes the same function in software to know which
//! worker owns a flow, and hands a frame that arrived elsewhere to its owner. Microsoft's
//! "RSS hashing functions" page defines it: for every set bit of the input, most
//! significant bit of the first byte first, XOR into the result the 32 bits of the key
//! that start at that bit position.
//!
//! Where key and table come from ([`resolve`]): by default the NIC's own, read at start
//! ([`crate::io::ethtool::read_rss`]), so software and hardware agree for any worker
//! count; on an interface without RSS (veth), a random key per start and an even table;
//! a fixed key only when configured. Never a public key by default: Toeplitz is linear, so
//! with a known key (and the 16-bit repeating one worst of all: its hash depends only on
//! the XOR of the tuple's 16-bit words) an attacker can pick spoofed sources that all land
//! on one core.
//!
//! That is linear in the input, so the hash of a byte string is the XOR over its bytes of
//! a per-position, per-value contribution. [`Toeplitz::new`] tabulates those
//! contributions (36 positions × 256 values × 4 bytes = 36 KiB), and [`Toeplitz::hash`]
//! is one table load and one XOR per input byte: 12 for IPv4/TCP, 36 for IPv6/TCP.
//!
//! Inputs, all in network byte order as on the wire (Microsoft "RSS hashing types"):
//! IPv4 with ports `src(4) | dst(4) | sport(2) | dport(2)`, IPv6 with ports
//! `src(16) | dst(16) | sport(2) | dport(2)`; without ports, the address part alone.

use crate::io::ethtool::{NicRss, HASH_TOEPLITZ};
use std::net::{Ipv4Addr, Ipv6Addr};

/// `0x6d, 0x5a` repeated: the key repeats every 16 bits, so swapping source and
/// destination (a 32-bit or 128-bit shift of the input, and a 16-bit shift of the ports)
/// leaves the hash unchanged: hash(a→b) == hash(b→a). Both directions of a connection land
/// on one queue (Woo & Park, "Scalable TCP Session Monitoring with Symmetric Receive-side
/// Scaling", 2012).
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut key = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        key[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    key
};

/// The key from Microsoft's "Verifying the RSS Hash Calculation" page (also the default
/// key of many NIC drivers and the one Intel's 82599 datasheet §7.1.2.8.3 verifies with).
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Longest input a 40-byte key can hash: each input bit needs 32 key bits starting at
/// its position, so 40 * 8 - 32 = 288 bits = 36 bytes (IPv6 addresses and two ports).
pub const MAX_INPUT: usize = 36;

/// A Toeplitz hasher for one key, with precomputed per-byte tables.
#[derive(Clone)]
pub struct Toeplitz {
    /// `table[i][v]`: the hash contribution of byte value `v` at input position `i`.
    table: Box<[[u32; 256]; MAX_INPUT]>,
}

impl std::fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toeplitz").finish_non_exhaustive()
    }
}

impl Toeplitz {
    /// Tabulate the hash for `key` (one 36 KiB allocation, at setup time).
    pub fn new(key: &[u8; 40]) -> Self {
        // The 32-bit key window that starts at bit `offset` (bit 0 = MSB of key[0]).
        let window = |offset: usize| -> u32 {
            let byte = offset / 8;
            let mut bytes = [0u8; 8];
            // offset <= 287, so byte <= 35 and byte + 5 <= 40: five bytes cover the window.
            bytes[..5].copy_from_slice(&key[byte..byte + 5]);
            let wide = u64::from_be_bytes(bytes) << (offset % 8);
            (wide >> 32) as u32
        };
        let mut table: Box<[[u32; 256]; MAX_INPUT]> = vec![[0u32; 256]; MAX_INPUT]
            .into_boxed_slice()
            .try_into()
            .expect("vec of MAX_INPUT rows");
        for (position, row) in table.iter_mut().enumerate() {
            // Contribution of each single bit of this byte, MSB first.
            let bits: [u32; 8] = core::array::from_fn(|bit| window(position * 8 + bit));
            for (value, slot) in row.iter_mut().enumerate() {
                *slot = bits
                    .iter()
                    .enumerate()
                    .filter(|&(bit, _)| value & (0x80 >> bit) != 0)
                    .fold(0, |acc, (_, &w)| acc ^ w);
            }
        }
        Toeplitz { table }
    }

    /// Toeplitz hash of `input` (at most [`MAX_INPUT`] bytes; bytes beyond that are
    /// ignored, as a NIC never hashes more).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.table.iter())
            .fold(0, |hash, (&byte, row)| hash ^ row[usize::from(byte)])
    }

    /// Hash of an IPv4/TCP 4-tuple: `src | dst | src_port | dst_port`, network order.
    #[inline]
    pub fn hash_v4(&self, src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> u32 {
        let mut input = [0u8; 12];
        input[0..4].copy_from_slice(&src.octets());
        input[4..8].copy_from_slice(&dst.octets());
        input[8..10].copy_from_slice(&src_port.to_be_bytes());
        input[10..12].copy_from_slice(&dst_port.to_be_bytes());
        self.hash(&input)
    }

    /// Hash of an IPv6/TCP 4-tuple: `src | dst | src_port | dst_port`, network order.
    #[inline]
    pub fn hash_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr, src_port: u16, dst_port: u16) -> u32 {
        let mut input = [0u8; 36];
        input[0..16].copy_from_slice(&src.octets());
        input[16..32].copy_from_slice(&dst.octets());
        input[32..34].copy_from_slice(&src_port.to_be_bytes());
        input[34..36].copy_from_slice(&dst_port.to_be_bytes());
        self.hash(&input)
    }
}

/// Hash → owning worker through an indirection table like a NIC's RETA (`ethtool -x`).
#[derive(Debug, Clone)]
pub struct Rss {
    toeplitz: Toeplitz,
    reta: Box<[u16]>,
    key: [u8; 40],
}

impl Rss {
    /// Entries of the table a NIC without its own uses by default (Intel 82599/ixgbe and
    /// the `ethtool -x` default of many drivers).
    pub const RETA_SIZE: usize = 128;

    /// An even table for `workers`: `reta[i] = i % workers` over the smallest multiple
    /// of `workers` that has at least [`RETA_SIZE`](Self::RETA_SIZE) entries, so every
    /// worker has exactly as many entries as every other (3 workers: 129 entries, 43 each;
    /// a power of two up to 128: the usual 128-entry `ethtool -X equal` table).
    ///
    /// # Panics
    /// If `workers` is 0 or more than `u16::MAX + 1` (a configuration error).
    pub fn new(key: &[u8; 40], workers: usize) -> Self {
        assert!(
            (1..=usize::from(u16::MAX) + 1).contains(&workers),
            "rss: worker count {workers} must be between 1 and 65536"
        );
        let len = Self::RETA_SIZE.div_ceil(workers) * workers;
        let reta: Vec<u16> = (0..len).map(|i| (i % workers) as u16).collect();
        Self::with_reta(key, &reta)
    }

    /// An explicit table (as `ethtool -x` shows it), used as it is: entry `hash % len`.
    ///
    /// # Panics
    /// If `reta` is empty (a configuration error).
    pub fn with_reta(key: &[u8; 40], reta: &[u16]) -> Self {
        assert!(
            !reta.is_empty(),
            "rss: the indirection table needs at least one entry"
        );
        Rss {
            toeplitz: Toeplitz::new(key),
            reta: reta.into(),
            key: *key,
        }
    }

    /// The key behind this table.
    pub fn key(&self) -> &[u8; 40] {
        &self.key
    }

    /// The Toeplitz hasher behind this table.
    #[inline]
    pub fn toeplitz(&self) -> &Toeplitz {
        &self.toeplitz
    }

    /// The indirection table.
    #[inline]
    pub fn reta(&self) -> &[u16] {
        &self.reta
    }

    /// The worker for a hash: `reta[hash % len]` (for the power-of-two tables of NICs,
    /// the low bits of the hash, as they index it).
    #[inline]
    pub fn owner(&self, hash: u32) -> usize {
        usize::from(self.reta[hash as usize % self.reta.len()])
    }

    /// The worker that owns an IPv4/TCP flow, tuple as received (src = the peer).
    #[inline]
    pub fn owner_v4(&self, src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> usize {
        self.owner(self.toeplitz.hash_v4(src, dst, src_port, dst_port))
    }

    /// The worker that owns an IPv6/TCP flow, tuple as received (src = the peer).
    #[inline]
    pub fn owner_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr, src_port: u16, dst_port: u16) -> usize {
        self.owner(self.toeplitz.hash_v6(src, dst, src_port, dst_port))
    }
}

/// Where the RSS key comes from (`steering.rss_key`); defined beside the NIC's RSS
/// reader, where the config can name it without importing the engine.
pub use crate::io::ethtool::KeyChoice;

/// A fresh random Toeplitz key (getrandom).
///
/// # Panics
/// If the OS random source fails (as the cookie secret does, `CookieJar::random`).
pub fn random_key() -> [u8; 40] {
    let mut key = [0u8; 40];
    getrandom::fill(&mut key).expect("rss: the OS random source (getrandom) failed");
    key
}

/// The steering [`resolve`] chose and why, for the start-up log.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Key and table.
    pub rss: Rss,
    /// `"nic"`, `"random"` or `"configured"`.
    pub key_from: &'static str,
    /// `"nic"` or `"even"`.
    pub table_from: &'static str,
    /// Why the NIC's RSS was not used, when it was asked for.
    pub nic_unused: Option<String>,
    /// Entries of the NIC's table that point at a queue without a worker (frames the
    /// kernel keeps: `ethtool -X <if> equal <workers>` fixes it).
    pub unserved_entries: usize,
}

/// The NIC's table for `workers` (queue i = worker i), with the count of entries that
/// point past the last worker (mapped `% workers`, as a handoff would correct anyway).
/// `None` when the NIC's key or hash cannot be reproduced: not Toeplitz, or a key shorter
/// than 40 bytes (a longer key is fine: the hash of 36 input bytes reads 40).
fn nic_table(nic: &NicRss, workers: usize) -> Result<(Vec<u16>, usize), String> {
    if nic.hfunc != 0 && nic.hfunc & HASH_TOEPLITZ == 0 {
        return Err(format!("hash function {:#x} is not Toeplitz", nic.hfunc));
    }
    if nic.table.is_empty() {
        return Err("no indirection table".into());
    }
    let unserved = nic.table.iter().filter(|&&q| q as usize >= workers).count();
    let table = nic
        .table
        .iter()
        .map(|&q| (q as usize % workers) as u16)
        .collect();
    Ok((table, unserved))
}

/// The NIC's key as a 40-byte Toeplitz key.
fn nic_key(nic: &NicRss) -> Result<[u8; 40], String> {
    nic.key
        .get(..40)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| format!("{}-byte key, not at least 40", nic.key.len()))
}

/// Pick key and table for `workers` from the configured `choice` and what reading the
/// NIC's RSS gave (`nic`: [`crate::io::ethtool::read_rss`]).
///
/// # Panics
/// If `workers` is 0 or more than 65536 (see [`Rss::new`]).
pub fn resolve(choice: KeyChoice, nic: std::io::Result<NicRss>, workers: usize) -> Resolved {
    let even = |key: [u8; 40], key_from, nic_unused| Resolved {
        rss: Rss::new(&key, workers),
        key_from,
        table_from: "even",
        nic_unused,
        unserved_entries: 0,
    };
    let nic = nic.map_err(|e| e.to_string());
    match choice {
        KeyChoice::Random => even(random_key(), "random", None),
        KeyChoice::Nic => {
            let both = nic.and_then(|n| Ok((nic_key(&n)?, nic_table(&n, workers)?)));
            match both {
                Ok((key, (table, unserved))) => Resolved {
                    rss: Rss::with_reta(&key, &table),
                    key_from: "nic",
                    table_from: "nic",
                    nic_unused: None,
                    unserved_entries: unserved,
                },
                Err(why) => even(random_key(), "random", Some(why)),
            }
        }
        KeyChoice::Fixed(key) => match nic.and_then(|n| nic_table(&n, workers)) {
            Ok((table, unserved)) => Resolved {
                rss: Rss::with_reta(&key, &table),
                key_from: "configured",
                table_from: "nic",
                nic_unused: None,
                unserved_entries: unserved,
            },
            Err(why) => even(key, "configured", Some(why)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit-by-bit Toeplitz straight from Microsoft's pseudo-code: keep a 32-bit window of
    /// the key, shift it left one key bit per input bit, XOR it in for every set bit.
    fn reference(key: &[u8; 40], input: &[u8]) -> u32 {
        let key_bit =
            |i: usize| -> u32 { u32::from(key.get(i / 8).map_or(0, |b| (b >> (7 - i % 8)) & 1)) };
        let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        let mut result = 0u32;
        for (n, &byte) in input.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    result ^= window;
                }
                window = (window << 1) | key_bit(32 + n * 8 + bit);
            }
        }
        result
    }

    struct V4 {
        dst: [u8; 4],
        src: [u8; 4],
        dst_port: u16,
        src_port: u16,
        hash_l3: u32,
        hash_l3l4: u32,
    }

    /// Microsoft, "Verifying the RSS Hash Calculation" (learn.microsoft.com,
    /// windows-hardware/drivers/network), IPv4 table; the same rows are Intel's 82599
    /// datasheet §7.1.2.8.3 "RSS Verification Suite" and DPDK `app/test/test_thash.c`
    /// `v4_tbl`. Columns: destination, source, ports, IPv4 only, IPv4 with TCP.
    const V4_VECTORS: [V4; 5] = [
        V4 {
            dst: [161, 142, 100, 80],
            src: [66, 9, 149, 187],
            dst_port: 1766,
            src_port: 2794,
            hash_l3: 0x323e_8fc2,
            hash_l3l4: 0x51cc_c178,
        },
        V4 {
            dst: [65, 69, 140, 83],
            src: [199, 92, 111, 2],
            dst_port: 4739,
            src_port: 14230,
            hash_l3: 0xd718_262a,
            hash_l3l4: 0xc626_b0ea,
        },
        V4 {
            dst: [12, 22, 207, 184],
            src: [24, 19, 198, 95],
            dst_port: 38024,
            src_port: 12898,
            hash_l3: 0xd2d0_a5de,
            hash_l3l4: 0x5c2b_394a,
        },
        V4 {
            dst: [209, 142, 163, 6],
            src: [38, 27, 205, 30],
            dst_port: 2217,
            src_port: 48228,
            hash_l3: 0x8298_9176,
            hash_l3l4: 0xafc7_327f,
        },
        V4 {
            dst: [202, 188, 127, 2],
            src: [153, 39, 163, 191],
            dst_port: 1303,
            src_port: 44251,
            hash_l3: 0x5d18_09c5,
            hash_l3l4: 0x10e8_28a2,
        },
    ];

    /// Same page, IPv6 table (DPDK `v6_tbl`).
    const V6_VECTORS: [(&str, &str, u16, u16, u32, u32); 3] = [
        (
            "3ffe:2501:200:3::1",
            "3ffe:2501:200:1fff::7",
            1766,
            2794,
            0x2cc1_8cd5,
            0x4020_7d3d,
        ),
        (
            "ff02::1",
            "3ffe:501:8::260:97ff:fe40:efab",
            4739,
            14230,
            0x0f0c_461c,
            0xdde5_1bbf,
        ),
        (
            "fe80::200:f8ff:fe21:67cf",
            "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
            38024,
            44251,
            0x4b61_e985,
            0x02d1_feef,
        ),
    ];

    #[test]
    fn microsoft_vectors_ipv4() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        for v in &V4_VECTORS {
            let (src, dst) = (Ipv4Addr::from(v.src), Ipv4Addr::from(v.dst));
            let mut l3 = [0u8; 8];
            l3[..4].copy_from_slice(&v.src);
            l3[4..].copy_from_slice(&v.dst);
            assert_eq!(t.hash(&l3), v.hash_l3, "{src} -> {dst}");
            assert_eq!(reference(&MICROSOFT_KEY, &l3), v.hash_l3);
            assert_eq!(
                t.hash_v4(src, dst, v.src_port, v.dst_port),
                v.hash_l3l4,
                "{src} -> {dst} tcp"
            );
        }
    }

    #[test]
    fn microsoft_vectors_ipv6() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        for &(dst, src, dst_port, src_port, hash_l3, hash_l3l4) in &V6_VECTORS {
            let dst: Ipv6Addr = dst.parse().unwrap();
            let src: Ipv6Addr = src.parse().unwrap();
            let mut l3 = [0u8; 32];
            l3[..16].copy_from_slice(&src.octets());
            l3[16..].copy_from_slice(&dst.octets());
            assert_eq!(t.hash(&l3), hash_l3, "{src} -> {dst}");
            assert_eq!(reference(&MICROSOFT_KEY, &l3), hash_l3);
            assert_eq!(
                t.hash_v6(&src, &dst, src_port, dst_port),
                hash_l3l4,
                "{src} -> {dst} tcp"
            );
        }
    }

    #[test]
    fn symmetric_key_layout() {
        assert_eq!(&SYMMETRIC_KEY[..4], &[0x6d, 0x5a, 0x6d, 0x5a]);
        assert!(SYMMETRIC_KEY.chunks(2).all(|c| c == [0x6d, 0x5a]));
    }

    #[test]
    fn zero_first_bit_and_overlong_inputs() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        assert_eq!(t.hash(&[]), 0);
        assert_eq!(t.hash(&[0; MAX_INPUT]), 0);
        // The first input bit takes the first 32 key bits.
        assert_eq!(t.hash(&[0x80]), 0x6d5a_56da);
        // Bytes past MAX_INPUT are ignored.
        let long: [u8; 40] = core::array::from_fn(|i| (i as u8).wrapping_mul(7) + 1);
        assert_eq!(t.hash(&long), t.hash(&long[..MAX_INPUT]));
        assert_eq!(
            t.hash(&long[..MAX_INPUT]),
            reference(&MICROSOFT_KEY, &long[..MAX_INPUT])
        );
    }

    /// The symmetry tests can fail: with the Microsoft key a swapped tuple hashes
    /// differently (first verification vector).
    #[test]
    fn microsoft_key_is_not_symmetric() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        let (a, b) = (
            Ipv4Addr::new(66, 9, 149, 187),
            Ipv4Addr::new(161, 142, 100, 80),
        );
        assert_eq!(t.hash_v4(a, b, 2794, 1766), 0x51cc_c178);
        assert_ne!(t.hash_v4(b, a, 1766, 2794), 0x51cc_c178);
    }

    /// The even table: every worker exactly as many entries as every other, for any
    /// count (3 workers: 129 entries, 43 each), at least 128 entries, `i % workers`.
    #[test]
    fn reta_even_for_any_worker_count_including_three() {
        for workers in 1..=200 {
            let rss = Rss::new(&MICROSOFT_KEY, workers);
            let reta = rss.reta();
            assert!(reta.len() >= Rss::RETA_SIZE && reta.len().is_multiple_of(workers));
            let mut per_worker = vec![0usize; workers];
            for (i, &w) in reta.iter().enumerate() {
                assert_eq!(usize::from(w), i % workers);
                per_worker[usize::from(w)] += 1;
            }
            assert!(per_worker.iter().all(|&c| c == reta.len() / workers));
        }
        let three = Rss::new(&MICROSOFT_KEY, 3);
        assert_eq!(three.reta().len(), 129);
        // Powers of two keep the usual 128-entry table.
        assert_eq!(Rss::new(&MICROSOFT_KEY, 4).reta().len(), 128);
    }

    /// Flows through the 3-worker even table: each worker within 5% of the mean.
    #[test]
    fn reta_three_workers_spread_flows_evenly() {
        let rss = Rss::new(&random_key(), 3);
        let mut per = [0u32; 3];
        let server = Ipv4Addr::new(198, 18, 0, 1);
        for n in 0..60_000u32 {
            let client = Ipv4Addr::from(0xc613_0000 | (n % 65_536));
            per[rss.owner_v4(client, server, 1024 + (n / 7) as u16, 80)] += 1;
        }
        for &c in &per {
            assert!(c.abs_diff(20_000) < 1_000, "{per:?}");
        }
    }

    /// Hashing real-looking flows (one server, many client addresses and ports) through
    /// the default RETA loads every worker within 10% of the mean.
    #[test]
    fn reta_spreads_flows_evenly() {
        for key in [&MICROSOFT_KEY, &SYMMETRIC_KEY] {
            let workers = 4;
            let rss = Rss::new(key, workers);
            let mut per_worker = [0u32; 4];
            let server = Ipv4Addr::new(198, 18, 0, 1);
            let flows = 64_000u32;
            for n in 0..flows {
                let client =
                    Ipv4Addr::from(0xc612_0000 | (((n % 250) + 2) << 8) | ((n / 250) % 256));
                let port = 32768 + (n.wrapping_mul(7919) % 28000) as u16;
                let owner = rss.owner_v4(client, server, port, 80);
                per_worker[owner] += 1;
            }
            let mean = flows / workers as u32;
            for &count in &per_worker {
                assert!(count.abs_diff(mean) < mean / 10, "{per_worker:?}");
            }
        }
    }

    #[test]
    fn owner_indexes_the_table_by_hash_modulo_its_length() {
        let reta: Vec<u16> = (0..128).collect();
        let rss = Rss::with_reta(&MICROSOFT_KEY, &reta);
        assert_eq!(rss.owner(0), 0);
        assert_eq!(rss.owner(127), 127);
        assert_eq!(rss.owner(128), 0);
        assert_eq!(rss.owner(0xffff_ff85), 5);
        // A 512-entry table (as many NICs have) uses the low 9 bits.
        let reta: Vec<u16> = (0..512).map(|i| (i / 128) as u16).collect();
        let rss = Rss::with_reta(&MICROSOFT_KEY, &reta);
        assert_eq!(rss.owner(0x1ff), 3);
        assert_eq!(rss.owner(0x200), 0);
        assert_eq!(rss.owner(0x17f), 2);
        // owner_v4/v6 agree with hash + owner.
        let rss = Rss::new(&MICROSOFT_KEY, 3);
        let (a, b) = (Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 19, 3, 4));
        assert_eq!(
            rss.owner_v4(a, b, 1, 2),
            rss.owner(rss.toeplitz().hash_v4(a, b, 1, 2))
        );
        let (a6, b6): (Ipv6Addr, Ipv6Addr) =
            ("2001:2::1".parse().unwrap(), "2001:2::2".parse().unwrap());
        assert_eq!(
            rss.owner_v6(&a6, &b6, 1, 2),
            rss.owner(rss.toeplitz().hash_v6(&a6, &b6, 1, 2))
        );
    }

    fn unsupported() -> std::io::Result<NicRss> {
        Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }

    /// A NIC's configuration as `ethtool -x` would show it: `size` entries spread over
    /// `queues` queues, the Microsoft key (52 bytes long, as on some Intel parts).
    fn nic(size: usize, queues: u32) -> NicRss {
        let mut key = MICROSOFT_KEY.to_vec();
        key.extend_from_slice(&[0xaa; 12]);
        NicRss {
            key,
            table: (0..size as u32).map(|i| i % queues).collect(),
            hfunc: HASH_TOEPLITZ,
        }
    }

    /// `steering.rss_key = "nic"` (the default): the NIC's key and its whole table, for
    /// every table size drivers use and any worker count: software picks the queue the
    /// NIC picks.
    #[test]
    fn resolve_nic_uses_the_whole_nic_table() {
        for size in [128, 256, 512, 2048] {
            for workers in [2, 3, 5, 6] {
                let nic = nic(size, workers as u32);
                let r = resolve(KeyChoice::Nic, Ok(nic.clone()), workers);
                assert_eq!((r.key_from, r.table_from), ("nic", "nic"));
                assert_eq!(r.unserved_entries, 0);
                assert_eq!(r.rss.key(), &MICROSOFT_KEY);
                assert_eq!(r.rss.reta().len(), size);
                let t = Toeplitz::new(&MICROSOFT_KEY);
                for v in &V4_VECTORS {
                    let (src, dst) = (Ipv4Addr::from(v.src), Ipv4Addr::from(v.dst));
                    let hash = t.hash_v4(src, dst, v.src_port, v.dst_port);
                    let nic_queue = nic.table[hash as usize % size] as usize;
                    assert_eq!(r.rss.owner_v4(src, dst, v.src_port, v.dst_port), nic_queue);
                }
            }
        }
        // More queues than workers: counted, so the start-up log can say what to fix.
        let r = resolve(KeyChoice::Nic, Ok(nic(128, 4)), 2);
        assert_eq!(r.unserved_entries, 64);
    }

    /// No RSS on the interface (veth: EOPNOTSUPP), or RSS we cannot reproduce: a random
    /// key and an even table, with the reason kept for the log.
    #[test]
    fn resolve_nic_falls_back_to_random_key_and_even_table() {
        let r = resolve(KeyChoice::Nic, unsupported(), 3);
        assert_eq!((r.key_from, r.table_from), ("random", "even"));
        assert!(r.nic_unused.is_some());
        assert_eq!(r.rss.reta().len(), 129);
        let mut xor = nic(128, 3);
        xor.hfunc = 2; // ETH_RSS_HASH_XOR
        assert_eq!(resolve(KeyChoice::Nic, Ok(xor), 3).key_from, "random");
        let mut short = nic(128, 3);
        short.key.truncate(16);
        assert_eq!(resolve(KeyChoice::Nic, Ok(short), 3).key_from, "random");
    }

    /// The random key is drawn anew at every start (and is not the public default).
    #[test]
    fn random_key_differs_per_start() {
        let a = resolve(KeyChoice::Nic, unsupported(), 2);
        let b = resolve(KeyChoice::Nic, unsupported(), 2);
        let c = resolve(KeyChoice::Random, Ok(nic(128, 2)), 2);
        assert_ne!(a.rss.key(), b.rss.key());
        assert_ne!(a.rss.key(), c.rss.key());
        for k in [a.rss.key(), b.rss.key(), c.rss.key()] {
            assert_ne!(k, &SYMMETRIC_KEY);
            assert_ne!(k, &MICROSOFT_KEY);
        }
        assert_eq!(c.table_from, "even");
    }

    /// A configured key is used as given (the NIC's table if it has one), so the
    /// Microsoft verification vectors still come out.
    #[test]
    fn resolve_fixed_key_passes_microsoft_vectors() {
        for nic_result in [unsupported(), Ok(nic(512, 4))] {
            let r = resolve(KeyChoice::Fixed(MICROSOFT_KEY), nic_result, 4);
            assert_eq!(r.key_from, "configured");
            let t = r.rss.toeplitz();
            for v in &V4_VECTORS {
                let (src, dst) = (Ipv4Addr::from(v.src), Ipv4Addr::from(v.dst));
                assert_eq!(t.hash_v4(src, dst, v.src_port, v.dst_port), v.hash_l3l4);
            }
            for &(dst, src, dst_port, src_port, _, hash_l3l4) in &V6_VECTORS {
                let (dst, src): (Ipv6Addr, Ipv6Addr) = (dst.parse().unwrap(), src.parse().unwrap());
                assert_eq!(t.hash_v6(&src, &dst, src_port, dst_port), hash_l3l4);
            }
        }
        let r = resolve(KeyChoice::Fixed(SYMMETRIC_KEY), Ok(nic(512, 4)), 4);
        assert_eq!((r.table_from, r.rss.reta().len()), ("nic", 512));
    }

    #[test]
    #[should_panic(expected = "worker count")]
    fn zero_workers_is_a_config_error() {
        let _ = Rss::new(&MICROSOFT_KEY, 0);
    }

    #[test]
    #[should_panic(expected = "at least one entry")]
    fn empty_reta_is_a_config_error() {
        let _ = Rss::with_reta(&MICROSOFT_KEY, &[]);
    }

    proptest! {
        #[test]
        fn prop_table_matches_bitwise_reference(
            key in any::<[u8; 40]>(),
            input in proptest::collection::vec(any::<u8>(), 0..=MAX_INPUT),
        ) {
            let t = Toeplitz::new(&key);
            prop_assert_eq!(t.hash(&input), reference(&key, &input));
        }

        #[test]
        fn prop_symmetric_key_v4(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>()) {
            let t = Toeplitz::new(&SYMMETRIC_KEY);
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            prop_assert_eq!(t.hash_v4(src, dst, sp, dp), t.hash_v4(dst, src, dp, sp));
        }

        #[test]
        fn prop_symmetric_key_v6(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), sp in any::<u16>(), dp in any::<u16>()) {
            let t = Toeplitz::new(&SYMMETRIC_KEY);
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            prop_assert_eq!(t.hash_v6(&src, &dst, sp, dp), t.hash_v6(&dst, &src, dp, sp));
            let rss = Rss::new(&SYMMETRIC_KEY, 6);
            prop_assert_eq!(rss.owner_v6(&src, &dst, sp, dp), rss.owner_v6(&dst, &src, dp, sp));
        }
    }
}
