//! The Internet checksum: RFC 1071 (computation) and RFC 1624 (incremental update).
//!
//! A checksum is built in three steps: [`sum`] the bytes (and [`combine`] several sums, e.g.
//! a pseudo-header and a segment), [`fold`] the carries into 16 bits, and [`finish`] by
//! complementing. A receiver checks by summing everything *including* the checksum field:
//! the data is intact iff `fold(total) == 0xffff`.
//!
//! Partial sums are `u32` values that are congruent to the true one's-complement sum modulo
//! `0xffff`; any `u32` is a valid partial sum, so adding two of them with an end-around
//! carry ([`combine`]) is exact (RFC 1071 §2(C): "the sum can be computed in any order" and
//! with any word size, as long as carries wrap around).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One's-complement partial sum of `data` as a sequence of big-endian 16-bit words, an odd
/// final byte padded with a zero byte on the right (RFC 1071 §4.1).
///
/// Not folded and not complemented. Eight bytes are added per step: each 64-bit word is
/// split into two 32-bit halves that are added into a 64-bit accumulator (which cannot
/// overflow for any buffer below 8 GiB), then the accumulator is folded to 32 bits.
///
/// To sum a message in pieces, every piece but the last must have an even length, or the
/// later pieces' bytes would be summed in the wrong half of their words.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc += u64::from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        acc += u64::from(b) << 8;
    }
    fold64(acc)
}

/// Fold a 64-bit one's-complement accumulator to 32 bits (end-around carry).
#[inline(always)]
fn fold64(acc: u64) -> u32 {
    let s = (acc >> 32) + (acc & 0xffff_ffff); // < 2^33
    let s = (s >> 32) + (s & 0xffff_ffff); // s < 2^33 - 1, so this is < 2^32
    s as u32
}

/// One's-complement sum of two partial sums (32-bit add with end-around carry).
///
/// Exact because 2^32 ≡ 1 (mod 0xffff): a carry out of bit 31 is worth one unit.
#[inline(always)]
pub fn combine(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s + u32::from(carry)
}

/// Fold a partial sum to 16 bits by adding the carries back in (RFC 1071 §4.1:
/// "Fold 32-bit sum to 16 bits"). Not complemented.
///
/// A non-zero sum never folds to zero, so an intact header folds to `0xffff`.
#[inline(always)]
pub fn fold(sum: u32) -> u16 {
    let s = (sum >> 16) + (sum & 0xffff); // <= 0x1fffe
    let s = (s >> 16) + (s & 0xffff); // <= 0xffff
    s as u16
}

/// The value to put in a checksum field: the complement of the folded sum (RFC 1071 §1:
/// "the 16-bit one's complement of the one's complement sum").
#[inline(always)]
pub fn finish(sum: u32) -> u16 {
    !fold(sum)
}

/// Partial sum of the IPv4 pseudo-header (RFC 9293 §3.1: source address, destination
/// address, zero, protocol, TCP length).
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, length: u32) -> u32 {
    let s = u32::from_be_bytes(src.octets());
    let d = u32::from_be_bytes(dst.octets());
    let acc = (s >> 16) as u64
        + (s & 0xffff) as u64
        + (d >> 16) as u64
        + (d & 0xffff) as u64
        + u64::from(protocol)
        + (length >> 16) as u64
        + (length & 0xffff) as u64;
    fold64(acc)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1: source address, destination
/// address, 32-bit upper-layer packet length, three zero bytes, next header).
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u32 {
    let a = sum(&src.octets());
    let b = sum(&dst.octets());
    let c = (length >> 16) + (length & 0xffff) + u32::from(next_header);
    combine(combine(a, b), c)
}

/// Pseudo-header sum for either family. Mixed families (which callers never pass) give 0,
/// so a checksum built from them would simply not verify.
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, length: u32) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, protocol, length),
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_header_v6(s, d, protocol, length),
        _ => 0,
    }
}

/// Incrementally update a checksum after one 16-bit word of the covered data changed from
/// `old_word` to `new_word`.
///
/// RFC 1624 §3, eqn. 3: "HC' = ~(~HC + ~m + m')". Unlike eqn. 2 this never produces the
/// `-0` (0xffff) that a full recomputation cannot produce, so the result equals a full
/// recomputation whenever the updated data is not all zeros.
#[inline(always)]
pub fn update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    let s = u32::from(!old_checksum) + u32::from(!old_word) + u32::from(new_word);
    finish(s)
}

/// [`update`] for a 32-bit field (an IPv4 address, a sequence number): both 16-bit halves
/// change at once (RFC 1624 eqn. 3 applied to each word).
#[inline(always)]
pub fn update32(old_checksum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!old_checksum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    finish(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::hex;

    /// RFC 1071 §3 numerical example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (folded).
    #[test]
    fn rfc1071_s3_example() {
        let data = hex("00 01 f2 03 f4 f5 f6 f7");
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(finish(sum(&data)), !0xddf2);
    }

    /// RFC 1071 §4.1: an odd trailing byte is padded on the right with zero.
    #[test]
    fn rfc1071_odd_tail_is_high_byte() {
        assert_eq!(fold(sum(&[0xab])), 0xab00);
        assert_eq!(fold(sum(&[0x12, 0x34, 0xab])), 0x1234 + 0xab00);
        // Every remainder length (0..8 after a full 8-byte chunk) takes its own path.
        let data: Vec<u8> = (1..=15).collect();
        for n in 0..=data.len() {
            let mut reference: u32 = 0;
            for w in data[..n].chunks(2) {
                let word = u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
                reference += word;
            }
            assert_eq!(fold(sum(&data[..n])), fold(reference), "length {n}");
        }
    }

    #[test]
    fn fold_carries_and_nonzero() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(u32::MAX), 0xffff);
        assert_eq!(combine(u32::MAX, 1), 1);
        assert_eq!(combine(0x8000_0000, 0x8000_0000), 1);
    }

    /// A captured IPv4 header (Linux SYN, checksum d6ae) verifies and recomputes.
    #[test]
    fn rfc791_ipv4_header_checksum() {
        let hdr = hex("45 00 00 3c d7 e5 40 00 40 06 d6 ae c6 12 00 01 c6 12 00 02");
        assert_eq!(fold(sum(&hdr)), 0xffff);
        let mut z = hdr.clone();
        z[10] = 0;
        z[11] = 0;
        assert_eq!(finish(sum(&z)), 0xd6ae);
    }

    /// RFC 1624 §4 example: HC = 0xdd2f, m = 0x5555 → m' = 0x3285 gives HC' = 0x0000.
    #[test]
    fn rfc1624_s4_example() {
        assert_eq!(update(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn update32_matches_recompute() {
        let mut hdr = hex("45 00 00 3c d7 e5 40 00 40 06 d6 ae c6 12 00 01 c6 12 00 02");
        // Rewrite the source address to 198.19.1.2.
        let new = u32::from_be_bytes([198, 19, 1, 2]);
        let c = update32(0xd6ae, u32::from_be_bytes([198, 18, 0, 1]), new);
        hdr[12..16].copy_from_slice(&new.to_be_bytes());
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(c, finish(sum(&hdr)));
    }

    #[test]
    fn pseudo_headers() {
        // RFC 9293 §3.1 pseudo-header, summed byte by byte.
        let s = Ipv4Addr::new(198, 18, 0, 1);
        let d = Ipv4Addr::new(198, 18, 0, 2);
        let mut ph = Vec::new();
        ph.extend_from_slice(&s.octets());
        ph.extend_from_slice(&d.octets());
        ph.extend_from_slice(&[0, 6, 0, 40]);
        assert_eq!(fold(pseudo_header_v4(&s, &d, 6, 40)), fold(sum(&ph)));
        // RFC 8200 §8.1 pseudo-header with a 32-bit length.
        let s6: Ipv6Addr = "2001:2::1".parse().unwrap();
        let d6: Ipv6Addr = "2001:2::ffff:2".parse().unwrap();
        let mut ph6 = Vec::new();
        ph6.extend_from_slice(&s6.octets());
        ph6.extend_from_slice(&d6.octets());
        ph6.extend_from_slice(&0x0001_0028u32.to_be_bytes());
        ph6.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(
            fold(pseudo_header_v6(&s6, &d6, 6, 0x0001_0028)),
            fold(sum(&ph6))
        );
        assert_eq!(
            pseudo_header(&IpAddr::V6(s6), &IpAddr::V6(d6), 6, 40),
            pseudo_header_v6(&s6, &d6, 6, 40)
        );
        assert_eq!(pseudo_header(&IpAddr::V4(s), &IpAddr::V6(d6), 6, 40), 0);
    }
}
