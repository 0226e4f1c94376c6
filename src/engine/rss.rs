//! Toeplitz RSS hash and the indirection table (RETA) that maps a hash to a worker.
//!
//! The NIC spreads received frames over its queues with the Toeplitz hash of the
//! addresses and ports and a 128-entry RETA; each AF_XDP worker owns one queue. The
//! engine computes the same function in software to know which worker owns a flow (for
//! frames we originate, and to check the NIC's steering). Microsoft's "RSS hashing
//! functions" page defines it: for every set bit of the input, most significant bit of
//! the first byte first, XOR into the result the 32 bits of the key that start at that
//! bit position.
//!
//! That is linear in the input, so the hash of a byte string is the XOR over its bytes of
//! a per-position, per-value contribution. [`Toeplitz::new`] tabulates those
//! contributions (36 positions × 256 values × 4 bytes = 36 KiB), and [`Toeplitz::hash`]
//! is one table load and one XOR per input byte: 12 for IPv4/TCP, 36 for IPv6/TCP.
//!
//! Inputs, all in network byte order as on the wire (Microsoft "RSS hashing types"):
//! IPv4 with ports `src(4) | dst(4) | sport(2) | dport(2)`, IPv6 with ports
//! `src(16) | dst(16) | sport(2) | dport(2)`; without ports, the address part alone.

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

/// Hash → owning worker through a 128-entry indirection table like a NIC's RETA
/// (`ethtool -X`).
#[derive(Debug, Clone)]
pub struct Rss {
    toeplitz: Toeplitz,
    reta: [u16; Rss::RETA_SIZE],
}

impl Rss {
    /// Entries in the indirection table, indexed by the low 7 bits of the hash (the size
    /// most NICs use, e.g. Intel 82599/ixgbe and the `ethtool -x` default of many).
    pub const RETA_SIZE: usize = 128;

    /// RETA spread evenly as `ethtool`'s default: `reta[i] = i % workers`.
    ///
    /// # Panics
    /// If `workers` is 0 or more than `u16::MAX + 1` (a configuration error).
    pub fn new(key: &[u8; 40], workers: usize) -> Self {
        assert!(
            (1..=usize::from(u16::MAX) + 1).contains(&workers),
            "rss: worker count {workers} must be between 1 and 65536"
        );
        let reta = core::array::from_fn(|i| (i % workers) as u16);
        Rss {
            toeplitz: Toeplitz::new(key),
            reta,
        }
    }

    /// RETA from an explicit table (as `ethtool -x` shows it). A table shorter than
    /// [`RETA_SIZE`](Self::RETA_SIZE) is repeated to fill it; entries beyond it are ignored.
    ///
    /// # Panics
    /// If `reta` is empty (a configuration error).
    pub fn with_reta(key: &[u8; 40], reta: &[u16]) -> Self {
        assert!(
            !reta.is_empty(),
            "rss: the indirection table needs at least one entry"
        );
        let table = core::array::from_fn(|i| reta[i % reta.len()]);
        Rss {
            toeplitz: Toeplitz::new(key),
            reta: table,
        }
    }

    /// The Toeplitz hasher behind this table.
    #[inline]
    pub fn toeplitz(&self) -> &Toeplitz {
        &self.toeplitz
    }

    /// The indirection table.
    #[inline]
    pub fn reta(&self) -> &[u16; Rss::RETA_SIZE] {
        &self.reta
    }

    /// The worker for a hash: `reta[hash % 128]` (the low 7 bits, as NICs do).
    #[inline]
    pub fn owner(&self, hash: u32) -> usize {
        usize::from(self.reta[hash as usize % Self::RETA_SIZE])
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

    #[test]
    fn reta_default_spread_is_even() {
        for workers in 1..=16 {
            let rss = Rss::new(&MICROSOFT_KEY, workers);
            let mut per_worker = vec![0usize; workers];
            for (i, &w) in rss.reta().iter().enumerate() {
                assert_eq!(usize::from(w), i % workers);
                per_worker[usize::from(w)] += 1;
            }
            let (min, max) = (
                per_worker.iter().min().unwrap(),
                per_worker.iter().max().unwrap(),
            );
            assert!(max - min <= 1, "{workers} workers: {per_worker:?}");
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
    fn owner_uses_low_seven_bits() {
        let reta: Vec<u16> = (0..128).collect();
        let rss = Rss::with_reta(&MICROSOFT_KEY, &reta);
        assert_eq!(rss.owner(0), 0);
        assert_eq!(rss.owner(127), 127);
        assert_eq!(rss.owner(128), 0);
        assert_eq!(rss.owner(0xffff_ff85), 5);
        // A shorter table is repeated.
        let rss = Rss::with_reta(&MICROSOFT_KEY, &[3, 1]);
        assert_eq!(rss.owner(0), 3);
        assert_eq!(rss.owner(1), 1);
        assert_eq!(rss.owner(126), 3);
        assert_eq!(rss.owner(127), 1);
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
