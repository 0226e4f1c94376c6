//! Wire formats: zero-copy packet views and small `Repr` structs.
//!
//! Two levels, as in smoltcp:
//!
//! - A view such as [`TcpPacket<T: AsRef<[u8]>>`](TcpPacket) wraps the frame bytes without
//!   copying. Field byte ranges live in one private `field` module per protocol; getters
//!   read them, setters (for `T: AsMut<[u8]>`) write them. `new_unchecked` wraps anything;
//!   `new_checked` validates every length the accessors rely on, so that **after
//!   `new_checked` succeeds no accessor panics**, whatever the bytes.
//! - A `Repr` (`TcpRepr`, `Ipv4Repr`, ...) is the parsed, validated meaning of a header:
//!   `parse` turns a view into one (or an [`Error`]), `buffer_len` says how many bytes
//!   `emit` needs, and `emit` writes it.
//!
//! Network input never panics here: every malformed frame ends in an [`Error`], a `Copy`
//! enum that maps onto a [`DropReason`] counter. Nothing in this
//! module allocates. `emit` methods write into a caller-provided buffer and panic only if
//! that buffer is shorter than `buffer_len()` (a caller bug, never a property of the input).
//!
//! This is the lowest protocol layer: it imports only [`crate::counters`].

#![forbid(unsafe_code)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod seq;
pub mod tcp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{format_mac, parse_mac, EtherType, EthernetFrame, EthernetRepr};
pub use frame::TcpFrame;
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use ndp::NdpRepr;
pub use seq::SeqNumber;
pub use tcp::{TcpFlags, TcpOptions, TcpPacket, TcpRepr};

use crate::counters::DropReason;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers") used by this crate.
pub mod ip_protocol {
    /// Transmission Control Protocol (RFC 9293).
    pub const TCP: u8 = 6;
    /// Internet Control Message Protocol for IPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
}

/// Why a frame failed to parse. `Copy`, no strings: it only picks a drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than a header, or than a length field says.
    Truncated,
    /// A field has an impossible value (version, header length, code, ...).
    Malformed,
    /// IPv4 header checksum does not verify (RFC 791 §3.1).
    BadIpChecksum,
    /// TCP checksum does not verify (RFC 9293 §3.1).
    BadTcpChecksum,
    /// An IPv4 fragment (MF set or offset ≠ 0): we never reassemble.
    Fragment,
    /// An IPv6 extension header follows the fixed header.
    ExtensionHeader,
    /// Something well-formed that we do not handle (double VLAN tag, non-Ethernet ARP,
    /// an ARP operation or ICMPv6 type other than the ones we answer).
    Unsupported,
    /// A TCP option block with an impossible length.
    BadOptions,
}

impl Error {
    /// The drop counter this error increments.
    #[inline]
    pub fn reason(self) -> DropReason {
        match self {
            Error::Truncated | Error::Malformed => DropReason::Malformed,
            Error::BadIpChecksum => DropReason::BadIpChecksum,
            Error::BadTcpChecksum => DropReason::BadTcpChecksum,
            Error::Fragment => DropReason::Fragment,
            Error::ExtensionHeader => DropReason::Ipv6ExtHeader,
            Error::Unsupported => DropReason::UnsupportedL2,
            Error::BadOptions => DropReason::BadTcpOptions,
        }
    }

    /// A short static description (for logs on the control path).
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed",
            Error::BadIpChecksum => "bad IPv4 header checksum",
            Error::BadTcpChecksum => "bad TCP checksum",
            Error::Fragment => "IPv4 fragment",
            Error::ExtensionHeader => "IPv6 extension header",
            Error::Unsupported => "unsupported",
            Error::BadOptions => "bad TCP options",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Error {}

/// The result of parsing network bytes.
pub type Result<T> = core::result::Result<T, Error>;

/// Byte-range types for the per-protocol `field` modules.
mod field {
    /// A fixed field: `start..end`.
    pub type Field = core::ops::Range<usize>;
}

/// Big-endian reads and writes of fixed fields. Each does one bounds check (the slice
/// index); the constant-length conversion after it is free.
mod be {
    use super::field::Field;

    #[inline(always)]
    pub fn u16(data: &[u8], f: Field) -> u16 {
        let b = &data[f];
        u16::from_be_bytes([b[0], b[1]])
    }

    #[inline(always)]
    pub fn u32(data: &[u8], f: Field) -> u32 {
        let b = &data[f];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    #[inline(always)]
    pub fn set_u16(data: &mut [u8], f: Field, v: u16) {
        data[f].copy_from_slice(&v.to_be_bytes());
    }

    #[inline(always)]
    pub fn set_u32(data: &mut [u8], f: Field, v: u32) {
        data[f].copy_from_slice(&v.to_be_bytes());
    }

    #[inline(always)]
    pub fn mac(data: &[u8], f: Field) -> [u8; 6] {
        let b = &data[f];
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }

    #[inline(always)]
    pub fn ipv4(data: &[u8], f: Field) -> std::net::Ipv4Addr {
        let b = &data[f];
        std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    #[inline(always)]
    pub fn ipv6(data: &[u8], f: Field) -> std::net::Ipv6Addr {
        let b = &data[f];
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        std::net::Ipv6Addr::from(a)
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers shared by the wire tests.

    /// Parse a hex fixture written with spaces, newlines and `#` comments.
    pub fn hex(s: &str) -> Vec<u8> {
        let mut digits = Vec::new();
        for line in s.lines() {
            let line = line.split('#').next().unwrap_or("");
            digits.extend(line.chars().filter(|c| c.is_ascii_hexdigit()));
        }
        assert!(
            digits.len().is_multiple_of(2),
            "odd number of hex digits in fixture"
        );
        digits
            .chunks(2)
            .map(|p| {
                let s: String = p.iter().collect();
                u8::from_str_radix(&s, 16).expect("hex digit")
            })
            .collect()
    }

    /// A buffer filled with `0xa5`, so a field `emit` forgets to write shows up.
    pub fn poisoned(len: usize) -> Vec<u8> {
        vec![0xa5; len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reasons_map_to_counters() {
        assert_eq!(Error::Truncated.reason(), DropReason::Malformed);
        assert_eq!(Error::Malformed.reason(), DropReason::Malformed);
        assert_eq!(Error::BadIpChecksum.reason(), DropReason::BadIpChecksum);
        assert_eq!(Error::BadTcpChecksum.reason(), DropReason::BadTcpChecksum);
        assert_eq!(Error::Fragment.reason(), DropReason::Fragment);
        assert_eq!(Error::ExtensionHeader.reason(), DropReason::Ipv6ExtHeader);
        assert_eq!(Error::Unsupported.reason(), DropReason::UnsupportedL2);
        assert_eq!(Error::BadOptions.reason(), DropReason::BadTcpOptions);
    }

    #[test]
    fn hex_fixture_parser() {
        assert_eq!(
            test_util::hex("de ad # comment\n be ef"),
            [0xde, 0xad, 0xbe, 0xef]
        );
    }
}
