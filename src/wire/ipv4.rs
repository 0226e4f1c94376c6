//! IPv4 (RFC 791).
//!
//! ```text
//!  0       4       8              16    19             31
//!  | ver | ihl | DSCP/ECN |      total length            |
//!  |      identification    | flags |  fragment offset   |
//!  |  TTL   | protocol      |      header checksum       |
//!  |                 source address                      |
//!  |               destination address                   |
//!  |      options (ihl > 5) ...                          |
//! ```
//!
//! Options are skipped (not interpreted). Fragments are refused by [`Ipv4Repr::parse`]
//! with [`Error::Fragment`]: we never reassemble. `total_len` may be shorter than the
//! buffer (Ethernet pads short frames to 60 bytes); [`Ipv4Packet::payload`] stops at it.

use std::net::Ipv4Addr;

use super::{be, checksum};
use super::{Error, Result};

mod field {
    use crate::wire::field::Field;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;

    pub const HEADER_LEN: usize = 20;
}

/// "DF": don't fragment, in the flags/offset word.
const FLAG_DF: u16 = 0x4000;
/// "MF": more fragments.
const FLAG_MF: u16 = 0x2000;
/// Fragment offset, in 8-byte units.
const OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap a buffer without checking it.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wrap a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check every length the accessors rely on:
    /// the buffer holds 20 bytes (`Truncated`); version is 4 and IHL ≥ 5 (`Malformed`);
    /// the header fits (`Truncated`); `header_len ≤ total_len` (`Malformed`);
    /// `total_len ≤ buffer length` (`Truncated`).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let hlen = self.header_len();
        // RFC 791 §3.1: "the minimum value for a correct header is 5".
        if hlen < field::HEADER_LEN {
            return Err(Error::Malformed);
        }
        if data.len() < hlen {
            return Err(Error::Truncated);
        }
        let tlen = usize::from(self.total_len());
        if tlen < hlen {
            return Err(Error::Malformed);
        }
        if data.len() < tlen {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP/ECN byte (formerly type of service).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::IDENT)
    }

    /// DF flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        be::u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// MF flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        be::u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field is in 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (be::u16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// MF set or offset ≠ 0: this packet is one fragment of a larger one.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be::u16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload (6 = TCP).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        be::ipv4(self.buffer.as_ref(), field::SRC_ADDR)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        be::ipv4(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// RFC 791 §3.1: the checksum over the header (options included) verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let data = self.buffer.as_ref();
        checksum::fold(checksum::sum(&data[..self.header_len()])) == 0xffff
    }

    /// The options bytes (empty when IHL = 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..self.header_len()]
    }

    /// The payload, from the end of the header to `total_len` (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[self.header_len()..usize::from(self.total_len())]
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// The payload (cut at `total_len`) with the buffer's lifetime, to chain parsers.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Set the version field.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Set the header length in bytes (rounded down to a multiple of 4).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Set the DSCP/ECN byte.
    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Set the total length.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        be::set_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Set the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        be::set_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Clear DF, MF and the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        be::set_u16(self.buffer.as_mut(), field::FLG_OFF, 0);
    }

    fn update_flg_off(&mut self, f: impl FnOnce(u16) -> u16) {
        let v = be::u16(self.buffer.as_ref(), field::FLG_OFF);
        be::set_u16(self.buffer.as_mut(), field::FLG_OFF, f(v));
    }

    /// Set or clear DF.
    #[inline]
    pub fn set_dont_frag(&mut self, on: bool) {
        self.update_flg_off(|v| if on { v | FLAG_DF } else { v & !FLAG_DF });
    }

    /// Set or clear MF.
    #[inline]
    pub fn set_more_frags(&mut self, on: bool) {
        self.update_flg_off(|v| if on { v | FLAG_MF } else { v & !FLAG_MF });
    }

    /// Set the fragment offset in bytes (rounded down to a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, offset: u16) {
        self.update_flg_off(|v| (v & !OFFSET_MASK) | (offset >> 3));
    }

    /// Set the TTL.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Set the protocol.
    #[inline]
    pub fn set_protocol(&mut self, p: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = p;
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        be::set_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Set the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Compute and store the header checksum (RFC 791 §3.1: "For purposes of computing
    /// the checksum, the value of the checksum field is zero").
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hlen = self.header_len();
        let c = checksum::finish(checksum::sum(&self.buffer.as_ref()[..hlen]));
        self.set_checksum(c);
    }

    /// The payload (up to `total_len`), writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[start..end]
    }
}

/// A parsed IPv4 header: what the upper layers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: u8,
    /// Payload length (`total_len - header_len`).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
}

impl Ipv4Repr {
    /// Length of the header [`emit`](Self::emit) writes (no options).
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Parse a packet: lengths, version, then the header checksum (if asked:
    /// `BadIpChecksum`), then fragmentation (`Fragment`: MF set or offset ≠ 0).
    /// The checksum comes first so that a corrupted header is counted as such.
    #[inline]
    pub fn parse(p: &Ipv4Packet<&[u8]>, verify_checksum: bool) -> Result<Self> {
        p.check_len()?;
        if verify_checksum && !p.verify_checksum() {
            return Err(Error::BadIpChecksum);
        }
        if p.is_fragment() {
            return Err(Error::Fragment);
        }
        Ok(Ipv4Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
        })
    }

    /// Header plus payload.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.payload_len
    }

    /// Write a 20-byte header into `buf[..20]`: version 4, IHL 5, DSCP/ECN 0, total length,
    /// ident 0, DF set (as Linux does for TCP: RFC 6864 §4.1 allows ident 0 on atomic
    /// datagrams), TTL, protocol, addresses, and the checksum.
    ///
    /// # Panics
    /// If `buf` is shorter than 20 bytes. `payload_len` must be ≤ 65515.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let buf = &mut buf[..field::HEADER_LEN];
        buf[field::VER_IHL] = 0x45;
        buf[field::DSCP_ECN] = 0;
        be::set_u16(buf, field::LENGTH, self.buffer_len() as u16);
        be::set_u16(buf, field::IDENT, 0);
        be::set_u16(buf, field::FLG_OFF, FLAG_DF);
        buf[field::TTL] = self.ttl;
        buf[field::PROTOCOL] = self.protocol;
        be::set_u16(buf, field::CHECKSUM, 0);
        buf[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        buf[field::DST_ADDR].copy_from_slice(&self.dst.octets());
        let c = checksum::finish(checksum::sum(buf));
        be::set_u16(buf, field::CHECKSUM, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::{hex, poisoned};

    /// IPv4 header of a Linux SYN captured on a veth pair (then 40 bytes of TCP).
    const SYN_IP: &str = "
        45          # version 4, IHL 5
        00          # DSCP/ECN
        00 3c       # total length 60
        d7 e5       # ident
        40 00       # DF, offset 0
        40          # TTL 64
        06          # TCP
        d6 ae       # checksum
        c6 12 00 01 # 198.18.0.1
        c6 12 00 02 # 198.18.0.2";

    fn syn_packet() -> Vec<u8> {
        let mut b = hex(SYN_IP);
        b.extend(std::iter::repeat_n(0x77, 40));
        b
    }

    #[test]
    fn rfc791_parse_captured_header() {
        let b = syn_packet();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.ident(), 0xd7e5);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.checksum(), 0xd6ae);
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 40);
        assert!(p.options().is_empty());
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(
            r,
            Ipv4Repr {
                src: Ipv4Addr::new(198, 18, 0, 1),
                dst: Ipv4Addr::new(198, 18, 0, 2),
                protocol: 6,
                payload_len: 40,
                ttl: 64
            }
        );
        assert_eq!(r.buffer_len(), 60);
    }

    /// A 54-byte frame carries 40 bytes of IP; Ethernet pads it to 60 (46 bytes of IP).
    #[test]
    fn payload_stops_at_total_len() {
        let mut b = hex(SYN_IP);
        b[2..4].copy_from_slice(&40u16.to_be_bytes());
        b[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::finish(checksum::sum(&b));
        b[10..12].copy_from_slice(&c.to_be_bytes());
        b.extend_from_slice(&[0x11; 20]);
        b.extend_from_slice(&[0; 6]); // Ethernet padding
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload(), &[0x11; 20]);
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap().payload_len, 20);
    }

    #[test]
    fn rfc791_options_are_skipped() {
        let mut b = hex(SYN_IP);
        b[0] = 0x46; // IHL 6: one word of options
        b[2..4].copy_from_slice(&28u16.to_be_bytes());
        b.extend_from_slice(&[0x01, 0x01, 0x01, 0x00]); // NOP NOP NOP EOL
        b.extend_from_slice(&[0xee; 4]);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[0xee; 4]);
        let b = p.into_inner();
        let r = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&b[..]), true).unwrap();
        assert_eq!(r.payload_len, 4);
    }

    #[test]
    fn truncated_at_every_length() {
        let b = syn_packet();
        for n in 0..b.len() {
            let e = Ipv4Packet::new_checked(&b[..n]).unwrap_err();
            assert_eq!(e, Error::Truncated, "len {n}");
            assert_eq!(
                Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&b[..n]), true),
                Err(Error::Truncated)
            );
        }
    }

    #[test]
    fn rfc791_malformed_lengths_and_version() {
        let base = syn_packet();
        // IHL below 5.
        for ihl in 0..5u8 {
            let mut b = base.clone();
            b[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&b[..]).unwrap_err(),
                Error::Malformed
            );
        }
        // Total length below the header length.
        let mut b = base.clone();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
        // Total length beyond the buffer.
        let mut b = base.clone();
        b[2..4].copy_from_slice(&61u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Truncated
        );
        // IHL 15: a 60-byte header with total length 60 is valid (no payload).
        let mut b = base.clone();
        b[0] = 0x4f;
        assert!(Ipv4Packet::new_checked(&b[..]).is_ok());
        // Version 6 in an IPv4 ethertype.
        let mut b = base.clone();
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn rfc791_bad_checksum() {
        let mut b = syn_packet();
        b[11] ^= 1;
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p, true), Err(Error::BadIpChecksum));
        assert!(Ipv4Repr::parse(&p, false).is_ok());
    }

    /// RFC 791 §3.2: a packet with MF set, or a non-zero offset, is a fragment.
    #[test]
    fn rfc791_fragments_refused() {
        for flg_off in [0x2000u16, 0x0001, 0x00b9, 0x4001, 0x3fff] {
            let mut b = syn_packet();
            let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
            p.clear_flags();
            p.set_more_frags(flg_off & FLAG_MF != 0);
            p.set_dont_frag(flg_off & FLAG_DF != 0);
            p.set_frag_offset((flg_off & OFFSET_MASK) << 3);
            p.fill_checksum();
            assert_eq!(be::u16(&b, field::FLG_OFF), flg_off);
            let p = Ipv4Packet::new_checked(&b[..]).unwrap();
            assert!(p.is_fragment());
            assert_eq!(
                Ipv4Repr::parse(&p, true),
                Err(Error::Fragment),
                "flags/offset {flg_off:#06x}"
            );
        }
    }

    /// Emitting the Linux SYN-ACK's addresses gives Linux's header byte for byte
    /// (ident 0, DF, TTL 64, checksum ae94).
    #[test]
    fn emit_matches_linux_synack_header() {
        let r = Ipv4Repr {
            src: Ipv4Addr::new(198, 18, 0, 2),
            dst: Ipv4Addr::new(198, 18, 0, 1),
            protocol: 6,
            payload_len: 40,
            ttl: 64,
        };
        let mut out = poisoned(22);
        r.emit(&mut out);
        let expected = hex("
            45 00 00 3c  00 00 40 00  40 06 ae 94
            c6 12 00 02  c6 12 00 01");
        assert_eq!(&out[..20], &expected[..]);
        assert_eq!(&out[20..], &[0xa5, 0xa5]);
    }

    #[test]
    fn setters_round_trip() {
        let mut b = syn_packet();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_addr(Ipv4Addr::new(198, 19, 0, 9));
        p.set_dst_addr(Ipv4Addr::new(198, 19, 0, 10));
        p.set_ttl(3);
        p.set_protocol(17);
        p.set_ident(0x1234);
        p.set_dscp_ecn(0x02);
        p.set_total_len(50);
        p.set_version(4);
        p.set_header_len(20);
        p.fill_checksum();
        p.payload_mut()[0] = 9;
        assert_eq!(p.payload().len(), 30);
        assert_eq!(p.dscp_ecn(), 2);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.src, Ipv4Addr::new(198, 19, 0, 9));
        assert_eq!(r.dst, Ipv4Addr::new(198, 19, 0, 10));
        assert_eq!((r.ttl, r.protocol, r.payload_len), (3, 17, 30));
        assert_eq!(p.ident(), 0x1234);
        assert_eq!(p.payload()[0], 9);
    }
}
