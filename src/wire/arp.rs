//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! ```text
//!  0     2     4    5    6     8          14         18         24         28
//!  | htype | ptype | hlen | plen | op | sha (6) | spa (4) | tha (6) | tpa (4) |
//! ```
//!
//! Only hardware type 1 (Ethernet), protocol type 0x0800, hlen 6, plen 4 and operations
//! 1 (request) and 2 (reply) are handled; anything else is [`Error::Unsupported`].

use std::net::Ipv4Addr;

use super::be;
use super::{Error, Result};

mod field {
    use crate::wire::field::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;

    pub const LEN: usize = 28;
}

/// RFC 826 `ar$hrd` for Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// RFC 826 `ar$pro` for IPv4 (the IPv4 ethertype).
const PTYPE_IPV4: u16 = 0x0800;

/// A zero-copy view of an Ethernet/IPv4 ARP packet (28 bytes; trailing padding ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wrap a buffer without checking it.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wrap a buffer of at least 28 bytes (`Truncated` otherwise). The hardware and
    /// protocol types are not checked here; [`ArpRepr::parse`] does.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < field::LEN {
            return Err(Error::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (`ar$hrd`).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (`ar$pro`).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length (`ar$hln`).
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length (`ar$pln`).
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation code (`ar$op`): 1 request, 2 reply.
    #[inline]
    pub fn operation(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address (`ar$sha`).
    #[inline]
    pub fn sender_mac(&self) -> [u8; 6] {
        be::mac(self.buffer.as_ref(), field::SHA)
    }

    /// Sender protocol address (`ar$spa`).
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        be::ipv4(self.buffer.as_ref(), field::SPA)
    }

    /// Target hardware address (`ar$tha`).
    #[inline]
    pub fn target_mac(&self) -> [u8; 6] {
        be::mac(self.buffer.as_ref(), field::THA)
    }

    /// Target protocol address (`ar$tpa`).
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        be::ipv4(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Set the operation code.
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        be::set_u16(self.buffer.as_mut(), field::OPER, op);
    }

    /// Set the sender hardware address.
    #[inline]
    pub fn set_sender_mac(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac);
    }

    /// Set the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    /// Set the target hardware address.
    #[inline]
    pub fn set_target_mac(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac);
    }

    /// Set the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

/// ARP operation (RFC 826 `ar$op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOperation {
    /// `ares_op$REQUEST` (1).
    Request,
    /// `ares_op$REPLY` (2).
    Reply,
}

impl ArpOperation {
    /// The wire value.
    #[inline]
    pub fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender IPv4 address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_mac: [u8; 6],
    /// Target IPv4 address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = field::LEN;

    /// Parse an Ethernet payload (padding after 28 bytes is ignored).
    ///
    /// RFC 826: "?Do I have the hardware type in ar$hrd? ... ?Do I speak the protocol in
    /// ar$pro?" — if not, discard: `Unsupported`. So are address lengths other than 6/4 and
    /// operations other than request/reply.
    #[inline]
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let p = ArpPacket::new_checked(payload)?;
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != PTYPE_IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let operation = match p.operation() {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            _ => return Err(Error::Unsupported),
        };
        Ok(ArpRepr {
            operation,
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        })
    }

    /// Write the 28-byte packet into `buf[..28]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`ArpRepr::LEN`].
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        be::set_u16(buf, field::HTYPE, HTYPE_ETHERNET);
        be::set_u16(buf, field::PTYPE, PTYPE_IPV4);
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
        be::set_u16(buf, field::OPER, self.operation.code());
        buf[field::SHA].copy_from_slice(&self.sender_mac);
        buf[field::SPA].copy_from_slice(&self.sender_ip.octets());
        buf[field::THA].copy_from_slice(&self.target_mac);
        buf[field::TPA].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, EthernetFrame};
    use crate::wire::test_util::{hex, poisoned};

    /// ARP request captured from Linux (198.18.0.1 asks for 198.18.0.2) on a veth pair.
    const REQUEST_FRAME: &str = "
        ff ff ff ff ff ff  02 00 00 00 00 01  08 06   # Ethernet: broadcast, ARP
        00 01              # htype Ethernet
        08 00              # ptype IPv4
        06 04              # hlen 6, plen 4
        00 01              # op request
        02 00 00 00 00 01  # sha
        c6 12 00 01        # spa 198.18.0.1
        00 00 00 00 00 00  # tha
        c6 12 00 02        # tpa 198.18.0.2";

    fn request() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: [2, 0, 0, 0, 0, 1],
            sender_ip: Ipv4Addr::new(198, 18, 0, 1),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(198, 18, 0, 2),
        }
    }

    #[test]
    fn rfc826_parse_captured_request() {
        let b = hex(REQUEST_FRAME);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(ArpRepr::parse(f.payload()).unwrap(), request());
        // Ethernet padding after the 28 bytes is ignored.
        let mut padded = f.payload().to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(ArpRepr::parse(&padded).unwrap(), request());
    }

    #[test]
    fn rfc826_emit_reply() {
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: [2, 0, 0, 0, 0, 2],
            sender_ip: Ipv4Addr::new(198, 18, 0, 2),
            target_mac: [2, 0, 0, 0, 0, 1],
            target_ip: Ipv4Addr::new(198, 18, 0, 1),
        };
        let mut out = poisoned(30);
        reply.emit(&mut out);
        // The reply Linux sent back in the same capture.
        let expected = hex("
            00 01 08 00 06 04 00 02
            02 00 00 00 00 02 c6 12 00 02
            02 00 00 00 00 01 c6 12 00 01");
        assert_eq!(&out[..28], &expected[..]);
        assert_eq!(&out[28..], &[0xa5, 0xa5]);
        assert_eq!(ArpRepr::parse(&out).unwrap(), reply);
    }

    #[test]
    fn rfc826_unsupported_and_truncated() {
        let b = hex(REQUEST_FRAME);
        let p = &b[14..];
        for n in 0..28 {
            assert_eq!(ArpRepr::parse(&p[..n]), Err(Error::Truncated), "len {n}");
        }
        // (byte index, value): htype, ptype, hlen, plen, op 3 (RARP), op 0.
        for (i, v) in [(1, 6), (2, 0x86), (4, 8), (5, 16), (7, 3), (7, 0)] {
            let mut q = p.to_vec();
            q[i] = v;
            assert_eq!(
                ArpRepr::parse(&q),
                Err(Error::Unsupported),
                "byte {i} = {v}"
            );
        }
    }

    #[test]
    fn view_setters() {
        let mut b = hex(REQUEST_FRAME)[14..].to_vec();
        let mut p = ArpPacket::new_checked(&mut b[..]).unwrap();
        p.set_operation(2);
        p.set_target_mac([2, 0, 0, 0, 0, 1]);
        p.set_target_ip(Ipv4Addr::new(198, 18, 0, 1));
        p.set_sender_mac([2, 0, 0, 0, 0, 2]);
        p.set_sender_ip(Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(p.operation(), 2);
        let r = ArpRepr::parse(p.into_inner()).unwrap();
        assert_eq!(r.operation, ArpOperation::Reply);
        assert_eq!(r.sender_ip, Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(r.target_mac, [2, 0, 0, 0, 0, 1]);
    }
}
