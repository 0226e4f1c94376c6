//! Ethernet II frames (IEEE 802.3 clause 3.2.6 type field) with at most one IEEE 802.1Q tag.
//!
//! ```text
//!  0      6      12         14/18
//!  | dst  | src  | type     | payload ...            untagged: header 14 bytes
//!  | dst  | src  | 8100 TCI | type | payload ...     802.1Q:   header 18 bytes
//! ```
//!
//! A second tag (802.1ad QinQ, or a stacked 802.1Q) is refused with
//! [`Error::Unsupported`] by `new_checked`, so [`EthernetFrame::ethertype`] is always the
//! type of the payload.

use super::be;
use super::{Error, Result};

/// Ethertype values (IEEE 802 numbers). A namespace of `u16` constants, to compare with
/// [`EthernetFrame::ethertype`] and [`EthernetRepr::ethertype`] or use as `match` patterns.
#[derive(Debug)]
pub enum EtherType {}

impl EtherType {
    /// Internet Protocol version 4.
    pub const IPV4: u16 = 0x0800;
    /// Address Resolution Protocol (RFC 826).
    pub const ARP: u16 = 0x0806;
    /// Internet Protocol version 6.
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1Q VLAN tag (customer tag).
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
}

mod field {
    use crate::wire::field::Field;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    /// Ethertype of an untagged frame, or the TPID (0x8100) of a tagged one.
    pub const ETHERTYPE: Field = 12..14;
    /// 802.1Q tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub const VLAN_TCI: Field = 14..16;
    /// Ethertype of a tagged frame.
    pub const INNER_ETHERTYPE: Field = 16..18;

    pub const HEADER_LEN: usize = 14;
    pub const TAGGED_HEADER_LEN: usize = 18;
}

/// A zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of an untagged header.
    pub const HEADER_LEN: usize = field::HEADER_LEN;
    /// Length of a header with one 802.1Q tag.
    pub const TAGGED_HEADER_LEN: usize = field::TAGGED_HEADER_LEN;

    /// Wrap a buffer without checking it. Accessors may panic on a short buffer.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wrap a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Check that the header fits and carries at most one 802.1Q tag.
    ///
    /// `Truncated` if the buffer is shorter than the (tagged) header; `Unsupported` for an
    /// 802.1ad outer tag or a second tag inside the first.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        match be::u16(data, field::ETHERTYPE) {
            EtherType::VLAN => {
                if data.len() < field::TAGGED_HEADER_LEN {
                    return Err(Error::Truncated);
                }
                match be::u16(data, field::INNER_ETHERTYPE) {
                    EtherType::VLAN | EtherType::QINQ => Err(Error::Unsupported),
                    _ => Ok(()),
                }
            }
            EtherType::QINQ => Err(Error::Unsupported),
            _ => Ok(()),
        }
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline(always)]
    fn is_tagged(&self) -> bool {
        be::u16(self.buffer.as_ref(), field::ETHERTYPE) == EtherType::VLAN
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 6] {
        be::mac(self.buffer.as_ref(), field::DESTINATION)
    }

    /// Source MAC address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 6] {
        be::mac(self.buffer.as_ref(), field::SOURCE)
    }

    /// The full 802.1Q TCI (PCP, DEI, VID) if the frame is tagged.
    #[inline]
    pub fn vlan(&self) -> Option<u16> {
        if self.is_tagged() {
            Some(be::u16(self.buffer.as_ref(), field::VLAN_TCI))
        } else {
            None
        }
    }

    /// The ethertype of the payload (after the tag, if any).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let data = self.buffer.as_ref();
        let outer = be::u16(data, field::ETHERTYPE);
        if outer == EtherType::VLAN {
            be::u16(data, field::INNER_ETHERTYPE)
        } else {
            outer
        }
    }

    /// 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            field::TAGGED_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    /// The bytes after the header (including any Ethernet padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<'a> EthernetFrame<&'a [u8]> {
    /// The payload with the buffer's lifetime (not the view's), to chain parsers.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Set the destination MAC address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr);
    }

    /// Set the source MAC address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr);
    }

    /// Set the payload ethertype, in the position the current tagging dictates.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        let f = if self.is_tagged() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        be::set_u16(self.buffer.as_mut(), f, ethertype);
    }

    /// Swap source and destination MAC addresses (to answer a frame in place).
    #[inline]
    pub fn swap_addrs(&mut self) {
        let (dst, rest) = self.buffer.as_mut().split_at_mut(6);
        dst.swap_with_slice(&mut rest[..6]);
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// Parse the text form of a MAC address, `aa:bb:cc:dd:ee:ff` (as `ip`, `ethtool` and
/// sysfs write it; surrounding white space, e.g. sysfs's newline, is ignored): six fields
/// of one or two hex digits separated by `:`, like glibc's `ether_aton(3)`. `None` for
/// anything else (another count, another separator, a sign or a non-hex digit).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut fields = text.trim().split(':');
    for byte in mac.iter_mut() {
        let field = fields.next()?;
        if !(1..=2).contains(&field.len()) || !field.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(field, 16).ok()?;
    }
    fields.next().is_none().then_some(mac)
}

/// The text form of a MAC address as `ip` and `ethtool` write it (`02:00:00:00:00:01`,
/// lower case, two digits a byte); [`parse_mac`] reads it back.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// The parsed header of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source MAC address.
    pub src: [u8; 6],
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// 802.1Q TCI, if tagged.
    pub vlan: Option<u16>,
    /// Ethertype of the payload.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Parse a frame's header (checks it even if the view was built unchecked).
    #[inline]
    pub fn parse(f: &EthernetFrame<&[u8]>) -> Result<Self> {
        f.check_len()?;
        Ok(EthernetRepr {
            src: f.src_addr(),
            dst: f.dst_addr(),
            vlan: f.vlan(),
            ethertype: f.ethertype(),
        })
    }

    /// 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            field::TAGGED_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    /// Write the header into `buf[..self.header_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than `header_len()`.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::DESTINATION].copy_from_slice(&self.dst);
        buf[field::SOURCE].copy_from_slice(&self.src);
        match self.vlan {
            Some(tci) => {
                be::set_u16(buf, field::ETHERTYPE, EtherType::VLAN);
                be::set_u16(buf, field::VLAN_TCI, tci);
                be::set_u16(buf, field::INNER_ETHERTYPE, self.ethertype);
            }
            None => be::set_u16(buf, field::ETHERTYPE, self.ethertype),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_util::{hex, poisoned};

    /// Ethernet header of a captured Linux SYN (02:..:01 → 02:..:02, IPv4).
    const SYN_HEADER: &str = "
        02 00 00 00 00 02   # dst
        02 00 00 00 00 01   # src
        08 00               # ethertype IPv4
        45 00               # (start of payload)";

    const TAGGED: &str = "
        02 00 00 00 00 02   # dst
        02 00 00 00 00 01   # src
        81 00 a0 2a         # 802.1Q, PCP 5, DEI 0, VID 42
        86 dd               # ethertype IPv6
        60 00";

    #[test]
    fn mac_text_valid() {
        let mac = [0x02, 0, 0x5e, 0x10, 0, 0x0a];
        assert_eq!(parse_mac("02:00:5e:10:00:0a"), Some(mac));
        // sysfs's trailing newline, upper case, one-digit fields (ether_aton accepts them).
        assert_eq!(parse_mac("02:00:5E:10:00:0A\n"), Some(mac));
        assert_eq!(parse_mac("2:0:5e:10:0:a"), Some(mac));
        assert_eq!(parse_mac("ff:ff:ff:ff:ff:ff"), Some([0xff; 6]));
        assert_eq!(format_mac(&mac), "02:00:5e:10:00:0a");
        assert_eq!(parse_mac(&format_mac(&[0xab; 6])), Some([0xab; 6]));
    }

    /// Each of `texts` is not a MAC address.
    fn assert_not_a_mac(texts: &[&str]) {
        for text in texts {
            assert_eq!(parse_mac(text), None, "{text:?}");
        }
    }

    #[test]
    fn mac_text_wrong_length() {
        assert_not_a_mac(&[
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:0a:01",
            "02:00:5e:10:00:",
            // A field of three digits, even one whose value fits a byte.
            "002:00:5e:10:00:0a",
        ]);
    }

    #[test]
    fn mac_text_bad_hex() {
        assert_not_a_mac(&[
            "zz:00:5e:10:00:0a",
            "02:00:5g:10:00:0a",
            "+2:00:5e:10:00:0a",
            "02: 0:5e:10:00:0a",
        ]);
    }

    #[test]
    fn mac_text_separators() {
        assert_not_a_mac(&[
            "02-00-5e-10-00-0a",
            "0200.5e10.000a",
            "02:00-5e:10:00:0a",
            "02::00:5e:10:00",
        ]);
    }

    #[test]
    fn parse_untagged() {
        let b = hex(SYN_HEADER);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert_eq!(f.dst_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0x45, 0x00]);
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(
            r,
            EthernetRepr {
                src: [2, 0, 0, 0, 0, 1],
                dst: [2, 0, 0, 0, 0, 2],
                vlan: None,
                ethertype: 0x0800
            }
        );
    }

    /// IEEE 802.1Q: one tag, TCI kept whole, ethertype taken after the tag.
    #[test]
    fn parse_tagged() {
        let b = hex(TAGGED);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert_eq!(f.vlan(), Some(0xa02a));
        assert_eq!(f.ethertype(), EtherType::IPV6);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x60, 0x00]);
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(r.vlan, Some(0xa02a));
        assert_eq!(r.header_len(), 18);
    }

    #[test]
    fn double_tag_unsupported() {
        for inner in [EtherType::VLAN, EtherType::QINQ] {
            let mut b = hex(TAGGED);
            b[16..18].copy_from_slice(&inner.to_be_bytes());
            assert_eq!(
                EthernetFrame::new_checked(&b[..]).unwrap_err(),
                Error::Unsupported
            );
            assert_eq!(
                EthernetRepr::parse(&EthernetFrame::new_unchecked(&b[..])),
                Err(Error::Unsupported)
            );
        }
        // An 802.1ad outer tag always announces a stack.
        let mut b = hex(TAGGED);
        b[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(
            EthernetFrame::new_checked(&b[..]).unwrap_err(),
            Error::Unsupported
        );
    }

    #[test]
    fn truncated_at_every_length() {
        let b = hex(SYN_HEADER);
        for n in 0..14 {
            assert_eq!(
                EthernetFrame::new_checked(&b[..n]).unwrap_err(),
                Error::Truncated,
                "len {n}"
            );
        }
        assert!(EthernetFrame::new_checked(&b[..14]).is_ok());
        let t = hex(TAGGED);
        for n in 0..18 {
            assert_eq!(
                EthernetFrame::new_checked(&t[..n]).unwrap_err(),
                Error::Truncated,
                "len {n}"
            );
        }
        let f = EthernetFrame::new_checked(&t[..18]).unwrap();
        assert!(f.payload().is_empty());
    }

    #[test]
    fn emit_untagged_and_tagged() {
        let b = hex(SYN_HEADER);
        let r = EthernetRepr::parse(&EthernetFrame::new_unchecked(&b[..])).unwrap();
        let mut out = poisoned(16);
        r.emit(&mut out);
        assert_eq!(&out[..14], &b[..14]);
        assert_eq!(&out[14..], &[0xa5, 0xa5], "wrote past the header");

        let t = hex(TAGGED);
        let r = EthernetRepr::parse(&EthernetFrame::new_unchecked(&t[..])).unwrap();
        let mut out = poisoned(20);
        r.emit(&mut out);
        assert_eq!(&out[..18], &t[..18]);
        assert_eq!(&out[18..], &[0xa5, 0xa5]);
    }

    #[test]
    fn setters_and_swap() {
        let mut b = hex(TAGGED);
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        f.swap_addrs();
        assert_eq!(f.dst_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 2]);
        f.set_ethertype(EtherType::IPV4);
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.vlan(), Some(0xa02a), "tag untouched");
        f.set_dst_addr([0xff; 6]);
        f.set_src_addr([1; 6]);
        f.payload_mut()[0] = 0x45;
        let b = f.into_inner();
        assert_eq!(&b[..6], &[0xff; 6]);
        assert_eq!(&b[6..12], &[1; 6]);
        assert_eq!(b[18], 0x45);
    }
}
