//! IPv6 fixed header (RFC 8200 §3).
//!
//! ```text
//!  0     4              12                      31
//!  | ver | traffic class |       flow label      |
//!  |   payload length     | next hdr | hop limit |
//!  |            source address (16)              |
//!  |          destination address (16)           |
//! ```
//!
//! Only the fixed header is handled: a next header that is an extension header is refused
//! by [`Ipv6Repr::parse`] with [`Error::ExtensionHeader`]. `payload_len` may be shorter than
//! the buffer (Ethernet padding); [`Ipv6Packet::payload`] stops at it.

use std::net::Ipv6Addr;

use super::be;
use super::{Error, Result};

mod field {
    use crate::wire::field::Field;

    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;

    pub const HEADER_LEN: usize = 40;
}

/// Is `next_header` an IPv6 extension header (IANA "IPv6 Extension Header Types", RFC 8200
/// §4): Hop-by-Hop 0, Routing 43, Fragment 44, ESP 50, AH 51, Destination Options 60,
/// Mobility 135, HIP 139, Shim6 140, experimental 253/254.
#[inline]
pub fn is_extension_header(next_header: u8) -> bool {
    matches!(
        next_header,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// A zero-copy view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap a buffer without checking it.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wrap a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The buffer holds the 40-byte header (`Truncated`), the version is 6 (`Malformed`),
    /// and the buffer holds `40 + payload_len` bytes (`Truncated`).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Malformed);
        }
        if data.len() < field::HEADER_LEN + usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (6).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (be::u32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be::u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length: bytes after the fixed header.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Next header (6 = TCP, 58 = ICMPv6).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        be::ipv6(self.buffer.as_ref(), field::SRC_ADDR)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        be::ipv6(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// The payload, `payload_len` bytes after the header (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let end = field::HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[field::HEADER_LEN..end]
    }
}

impl<'a> Ipv6Packet<&'a [u8]> {
    /// The payload (cut at `payload_len`) with the buffer's lifetime, to chain parsers.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let end = field::HEADER_LEN + usize::from(self.payload_len());
        &self.buffer[field::HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn update_word0(&mut self, f: impl FnOnce(u32) -> u32) {
        let v = be::u32(self.buffer.as_ref(), field::VER_TC_FLOW);
        be::set_u32(self.buffer.as_mut(), field::VER_TC_FLOW, f(v));
    }

    /// Set the version field.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        self.update_word0(|w| (w & 0x0fff_ffff) | (u32::from(v & 0x0f) << 28));
    }

    /// Set the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        self.update_word0(|w| (w & 0xf00f_ffff) | (u32::from(tc) << 20));
    }

    /// Set the flow label (low 20 bits used).
    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        self.update_word0(|w| (w & 0xfff0_0000) | (label & 0x000f_ffff));
    }

    /// Set the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        be::set_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Set the next header.
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = nh;
    }

    /// Set the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hl: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hl;
    }

    /// Set the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Swap source and destination addresses (to answer in place).
    #[inline]
    pub fn swap_addrs(&mut self) {
        let (src, dst) =
            self.buffer.as_mut()[field::SRC_ADDR.start..field::DST_ADDR.end].split_at_mut(16);
        src.swap_with_slice(dst);
    }

    /// The payload (up to `payload_len`), writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = field::HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[field::HEADER_LEN..end]
    }
}

/// A parsed IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Upper-layer protocol (never an extension header after `parse`).
    pub next_header: u8,
    /// Payload length.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Parse a packet: lengths and version, then `ExtensionHeader` if the next header is
    /// one (we only accept an upper-layer header right after the fixed header).
    #[inline]
    pub fn parse(p: &Ipv6Packet<&[u8]>) -> Result<Self> {
        p.check_len()?;
        let next_header = p.next_header();
        if is_extension_header(next_header) {
            return Err(Error::ExtensionHeader);
        }
        Ok(Ipv6Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header,
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
        })
    }

    /// Header plus payload.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.payload_len
    }

    /// Write the 40-byte header into `buf[..40]`: version 6, traffic class 0, flow label 0.
    ///
    /// # Panics
    /// If `buf` is shorter than 40 bytes. `payload_len` must be ≤ 65535.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let buf = &mut buf[..field::HEADER_LEN];
        be::set_u32(buf, field::VER_TC_FLOW, 6 << 28);
        be::set_u16(buf, field::LENGTH, self.payload_len as u16);
        buf[field::NXT_HDR] = self.next_header;
        buf[field::HOP_LIMIT] = self.hop_limit;
        buf[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        buf[field::DST_ADDR].copy_from_slice(&self.dst.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::{hex, poisoned};

    /// IPv6 header of a Linux SYN captured on a veth pair (then 40 bytes of TCP).
    const SYN_IP6: &str = "
        60 05 90 c8                                     # version 6, TC 0, flow 0x590c8
        00 28                                           # payload length 40
        06                                              # next header TCP
        40                                              # hop limit 64
        20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01 # 2001:2::1
        20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02 # 2001:2::2";

    fn syn_packet() -> Vec<u8> {
        let mut b = hex(SYN_IP6);
        b.extend(std::iter::repeat_n(0x77, 40));
        b
    }

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc8200_s3_parse_captured_header() {
        let b = syn_packet();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0x590c8);
        assert_eq!(p.payload_len(), 40);
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), a("2001:2::1"));
        assert_eq!(p.dst_addr(), a("2001:2::2"));
        assert_eq!(p.payload(), &[0x77; 40]);
        let r = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Ipv6Repr {
                src: a("2001:2::1"),
                dst: a("2001:2::2"),
                next_header: 6,
                payload_len: 40,
                hop_limit: 64
            }
        );
        assert_eq!(r.buffer_len(), 80);
    }

    #[test]
    fn payload_stops_at_payload_len() {
        let mut b = syn_packet();
        b.extend_from_slice(&[0; 6]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 40);
    }

    #[test]
    fn truncated_at_every_length_and_bad_version() {
        let b = syn_packet();
        for n in 0..b.len() {
            assert_eq!(
                Ipv6Packet::new_checked(&b[..n]).unwrap_err(),
                Error::Truncated,
                "len {n}"
            );
            assert_eq!(
                Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&b[..n])),
                Err(Error::Truncated)
            );
        }
        let mut b = syn_packet();
        b[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
    }

    /// RFC 8200 §4: extension headers are refused; other upper layers pass through.
    #[test]
    fn rfc8200_s4_extension_headers_refused() {
        for nh in [0u8, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254] {
            let mut b = syn_packet();
            b[6] = nh;
            let p = Ipv6Packet::new_checked(&b[..]).unwrap();
            assert_eq!(Ipv6Repr::parse(&p), Err(Error::ExtensionHeader), "nh {nh}");
        }
        for nh in [6u8, 17, 58, 59] {
            let mut b = syn_packet();
            b[6] = nh;
            let p = Ipv6Packet::new_checked(&b[..]).unwrap();
            assert_eq!(Ipv6Repr::parse(&p).unwrap().next_header, nh);
        }
    }

    #[test]
    fn emit_into_poisoned_buffer() {
        let r = Ipv6Repr {
            src: a("2001:2::2"),
            dst: a("2001:2::1"),
            next_header: 6,
            payload_len: 40,
            hop_limit: 64,
        };
        let mut out = poisoned(42);
        r.emit(&mut out);
        let expected = hex("
            60 00 00 00  00 28 06 40
            20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
            20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01");
        assert_eq!(&out[..40], &expected[..]);
        assert_eq!(&out[40..], &[0xa5, 0xa5]);
    }

    #[test]
    fn setters() {
        let mut b = syn_packet();
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        p.swap_addrs();
        assert_eq!(p.src_addr(), a("2001:2::2"));
        assert_eq!(p.dst_addr(), a("2001:2::1"));
        p.set_traffic_class(0xb8);
        p.set_flow_label(0xfffff);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0xb8, 0xfffff)
        );
        p.set_flow_label(0x12345);
        p.set_traffic_class(0);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0, 0x12345)
        );
        p.set_version(6);
        p.set_payload_len(20);
        p.set_next_header(58);
        p.set_hop_limit(255);
        p.set_src_addr(a("2001:2::9"));
        p.set_dst_addr(a("ff02::1:ff00:2"));
        p.payload_mut()[19] = 1;
        assert_eq!(p.payload().len(), 20);
        let r = Ipv6Repr::parse(&Ipv6Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!((r.next_header, r.hop_limit, r.payload_len), (58, 255, 20));
        assert_eq!(r.src, a("2001:2::9"));
        assert_eq!(r.dst, a("ff02::1:ff00:2"));
        assert_eq!(b[59], 1);
    }
}
