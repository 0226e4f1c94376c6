//! IPv6 Neighbor Discovery: Neighbor Solicitation and Advertisement (RFC 4861 §4.3, §4.4)
//! carried in ICMPv6 (RFC 4443), with the link-layer address options of RFC 4861 §4.6.1.
//!
//! ```text
//!  0      1      2          4                    8                 24
//!  | type | code | checksum | reserved / R S O   | target (16)     | options ...
//! ```
//!
//! [`NdpRepr::parse`] checks what RFC 4861 §7.1.1/§7.1.2 ask of a receiver except the IP
//! hop limit, which the caller has and must check against [`HOP_LIMIT`] (255).

use std::net::Ipv6Addr;

use super::{be, checksum, ip_protocol};
use super::{Error, Result};

mod field {
    use crate::wire::field::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Reserved in a solicitation; R, S, O flags and reserved bits in an advertisement.
    pub const FLAGS: usize = 4;
    pub const RESERVED: Field = 4..8;
    pub const TARGET: Field = 8..24;
    pub const OPTIONS: usize = 24;

    pub const HEADER_LEN: usize = 24;
}

/// ICMPv6 type of a Neighbor Solicitation.
pub const TYPE_NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 type of a Neighbor Advertisement.
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;
/// RFC 4861 §7.1.1: "The IP Hop Limit field has a value of 255", and we send 255
/// (§4.3/§4.4: "Hop Limit 255").
pub const HOP_LIMIT: u8 = 255;

/// Option type: source link-layer address (RFC 4861 §4.6.1).
const OPT_SOURCE_LL: u8 = 1;
/// Option type: target link-layer address.
const OPT_TARGET_LL: u8 = 2;
/// A link-layer address option for Ethernet: type, length 1 (×8 octets), 6-byte MAC.
const LL_OPT_LEN: usize = 8;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1:
/// `ff02::1:ffXX:XXXX` with the low 24 bits of `addr`).
#[inline]
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast address for an IPv6 multicast address (RFC 2464 §7:
/// `33:33` followed by the last four octets).
#[inline]
pub fn multicast_mac(addr: &Ipv6Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A Neighbor Solicitation or Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpRepr {
    /// RFC 4861 §4.3: "who has `target`?", usually with the sender's MAC.
    NeighborSolicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The source link-layer address option, if present.
        source_mac: Option<[u8; 6]>,
    },
    /// RFC 4861 §4.4: "`target` is at `target_mac`".
    NeighborAdvert {
        /// R: the sender is a router.
        flags_router: bool,
        /// S: sent in response to a solicitation.
        flags_solicited: bool,
        /// O: override an existing cache entry.
        flags_override: bool,
        /// The address being advertised.
        target: Ipv6Addr,
        /// The target link-layer address option, if present.
        target_mac: Option<[u8; 6]>,
    },
}

impl NdpRepr {
    /// Parse an ICMPv6 message (the IPv6 payload, cut at `payload_len`) sent from `src` to
    /// `dst`.
    ///
    /// Errors: `Truncated` below 24 bytes; `Malformed` for a bad checksum, a non-zero code,
    /// a multicast target, an option of length 0 or past the end, a link-layer option from
    /// the unspecified address, a multicast solicitation sent to something other than the
    /// solicited-node address, or a multicast advertisement with S set; `Unsupported` for
    /// other ICMPv6 types. Unknown options are skipped.
    pub fn parse(icmp: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<Self> {
        // RFC 4861 §7.1.1: "ICMP length (derived from the IP length) is 24 or more octets."
        if icmp.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let msg_type = icmp[field::TYPE];
        if msg_type != TYPE_NEIGHBOR_SOLICIT && msg_type != TYPE_NEIGHBOR_ADVERT {
            return Err(Error::Unsupported);
        }
        // RFC 4861 §7.1.1: "The ICMP Checksum is valid."
        let sum = checksum::combine(
            checksum::pseudo_header_v6(src, dst, ip_protocol::ICMPV6, icmp.len() as u32),
            checksum::sum(icmp),
        );
        if checksum::fold(sum) != 0xffff {
            return Err(Error::Malformed);
        }
        // RFC 4861 §7.1.1: "ICMP Code is 0."
        if icmp[field::CODE] != 0 {
            return Err(Error::Malformed);
        }
        let target = be::ipv6(icmp, field::TARGET);
        // RFC 4861 §7.1.1: "Target Address is not a multicast address."
        if target.is_multicast() {
            return Err(Error::Malformed);
        }
        let wanted = if msg_type == TYPE_NEIGHBOR_SOLICIT {
            OPT_SOURCE_LL
        } else {
            OPT_TARGET_LL
        };
        let mac = Self::find_ll_option(&icmp[field::OPTIONS..], wanted)?;

        if msg_type == TYPE_NEIGHBOR_SOLICIT {
            if src.is_unspecified() {
                // RFC 4861 §7.1.1: "If the IP source address is the unspecified address,
                // the IP destination address is a solicited-node multicast address" and
                // "there is no source link-layer address option in the message."
                if *dst != solicited_node(&target) || mac.is_some() {
                    return Err(Error::Malformed);
                }
            }
            Ok(NdpRepr::NeighborSolicit {
                target,
                source_mac: mac,
            })
        } else {
            let flags = icmp[field::FLAGS];
            let solicited = flags & FLAG_SOLICITED != 0;
            // RFC 4861 §7.1.2: "If the IP Destination Address is a multicast address the
            // Solicited flag is zero."
            if dst.is_multicast() && solicited {
                return Err(Error::Malformed);
            }
            Ok(NdpRepr::NeighborAdvert {
                flags_router: flags & FLAG_ROUTER != 0,
                flags_solicited: solicited,
                flags_override: flags & FLAG_OVERRIDE != 0,
                target,
                target_mac: mac,
            })
        }
    }

    /// Walk the options (RFC 4861 §4.6: type, length in units of 8 octets, value) and
    /// return the Ethernet address of the first option of type `wanted`.
    ///
    /// RFC 4861 §7.1.1: "All included options have a length that is greater than zero";
    /// §4.6: "Receivers MUST silently ignore any options they do not recognize".
    /// A link-layer option longer than 8 bytes is not Ethernet's and is skipped.
    fn find_ll_option(mut opts: &[u8], wanted: u8) -> Result<Option<[u8; 6]>> {
        let mut mac = None;
        while !opts.is_empty() {
            if opts.len() < 2 {
                return Err(Error::Malformed);
            }
            let len = usize::from(opts[1]) * 8;
            if len == 0 || len > opts.len() {
                return Err(Error::Malformed);
            }
            if opts[0] == wanted && len == LL_OPT_LEN && mac.is_none() {
                mac = Some(be::mac(opts, 2..8));
            }
            opts = &opts[len..];
        }
        Ok(mac)
    }

    /// 24 bytes, plus 8 for a link-layer address option.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        let mac = match self {
            NdpRepr::NeighborSolicit { source_mac, .. } => source_mac.is_some(),
            NdpRepr::NeighborAdvert { target_mac, .. } => target_mac.is_some(),
        };
        field::HEADER_LEN + if mac { LL_OPT_LEN } else { 0 }
    }

    /// Write the ICMPv6 message into `buf[..buffer_len()]`, with the checksum computed over
    /// the IPv6 pseudo-header for `src` → `dst` (RFC 4443 §2.3). Reserved bits are zero.
    ///
    /// # Panics
    /// If `buf` is shorter than `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8], src: &Ipv6Addr, dst: &Ipv6Addr) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        let (msg_type, flags, target, opt_type, mac) = match *self {
            NdpRepr::NeighborSolicit { target, source_mac } => {
                (TYPE_NEIGHBOR_SOLICIT, 0, target, OPT_SOURCE_LL, source_mac)
            }
            NdpRepr::NeighborAdvert {
                flags_router,
                flags_solicited,
                flags_override,
                target,
                target_mac,
            } => {
                let mut f = 0;
                if flags_router {
                    f |= FLAG_ROUTER;
                }
                if flags_solicited {
                    f |= FLAG_SOLICITED;
                }
                if flags_override {
                    f |= FLAG_OVERRIDE;
                }
                (TYPE_NEIGHBOR_ADVERT, f, target, OPT_TARGET_LL, target_mac)
            }
        };
        buf[field::TYPE] = msg_type;
        buf[field::CODE] = 0;
        be::set_u16(buf, field::CHECKSUM, 0);
        be::set_u32(buf, field::RESERVED, 0);
        buf[field::FLAGS] = flags;
        buf[field::TARGET].copy_from_slice(&target.octets());
        if let Some(mac) = mac {
            let opt = &mut buf[field::OPTIONS..field::OPTIONS + LL_OPT_LEN];
            opt[0] = opt_type;
            opt[1] = (LL_OPT_LEN / 8) as u8;
            opt[2..8].copy_from_slice(&mac);
        }
        let sum = checksum::combine(
            checksum::pseudo_header_v6(src, dst, ip_protocol::ICMPV6, len as u32),
            checksum::sum(buf),
        );
        be::set_u16(buf, field::CHECKSUM, checksum::finish(sum));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, EthernetFrame};
    use crate::wire::ipv6::{Ipv6Packet, Ipv6Repr};
    use crate::wire::test_util::{hex, poisoned};

    /// Neighbor Solicitation captured from Linux: 2001:2::1 asks who has 2001:2::2.
    const NS_FRAME: &str = "
        33 33 ff 00 00 02  02 00 00 00 00 01  86 dd      # Ethernet to 33:33:ff:00:00:02
        60 00 00 00  00 20  3a  ff                       # IPv6, 32 bytes, ICMPv6, hop 255
        20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01  # src 2001:2::1
        ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02  # dst ff02::1:ff00:2
        87 00 37 93                                      # type 135, code 0, checksum
        00 00 00 00                                      # reserved
        20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02  # target 2001:2::2
        01 01 02 00 00 00 00 01                          # source link-layer address";

    /// The advertisement Linux answered with (S and O set).
    const NA_ICMP: &str = "
        88 00 b3 93                                      # type 136, code 0, checksum
        60 00 00 00                                      # R=0 S=1 O=1
        20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02  # target 2001:2::2
        02 01 02 00 00 00 00 02                          # target link-layer address";

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn ns_icmp() -> (Vec<u8>, Ipv6Addr, Ipv6Addr) {
        let b = hex(NS_FRAME);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::IPV6);
        let p = Ipv6Packet::new_checked(f.payload()).unwrap();
        let ip = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(ip.next_header, ip_protocol::ICMPV6);
        assert_eq!(ip.hop_limit, HOP_LIMIT);
        (p.payload().to_vec(), ip.src, ip.dst)
    }

    #[test]
    fn rfc4861_s4_3_parse_captured_solicitation() {
        let (icmp, src, dst) = ns_icmp();
        let r = NdpRepr::parse(&icmp, &src, &dst).unwrap();
        assert_eq!(
            r,
            NdpRepr::NeighborSolicit {
                target: a("2001:2::2"),
                source_mac: Some([2, 0, 0, 0, 0, 1])
            }
        );
        assert_eq!(r.buffer_len(), 32);
        assert_eq!(solicited_node(&a("2001:2::2")), dst);
        assert_eq!(multicast_mac(&dst), [0x33, 0x33, 0xff, 0, 0, 2]);
        // Re-emitting gives the captured bytes.
        let mut out = poisoned(34);
        r.emit(&mut out, &src, &dst);
        assert_eq!(&out[..32], &icmp[..]);
        assert_eq!(&out[32..], &[0xa5, 0xa5]);
    }

    #[test]
    fn rfc4861_s4_4_emit_matches_linux_advertisement() {
        let r = NdpRepr::NeighborAdvert {
            flags_router: false,
            flags_solicited: true,
            flags_override: true,
            target: a("2001:2::2"),
            target_mac: Some([2, 0, 0, 0, 0, 2]),
        };
        let (src, dst) = (a("2001:2::2"), a("2001:2::1"));
        let mut out = poisoned(34);
        r.emit(&mut out, &src, &dst);
        assert_eq!(&out[..32], &hex(NA_ICMP)[..]);
        assert_eq!(&out[32..], &[0xa5, 0xa5]);
        assert_eq!(NdpRepr::parse(&out[..32], &src, &dst).unwrap(), r);
    }

    #[test]
    fn without_link_layer_option() {
        let (src, dst) = (a("2001:2::2"), a("2001:2::1"));
        for r in [
            NdpRepr::NeighborSolicit {
                target: a("2001:2::1"),
                source_mac: None,
            },
            NdpRepr::NeighborAdvert {
                flags_router: true,
                flags_solicited: false,
                flags_override: false,
                target: a("2001:2::2"),
                target_mac: None,
            },
        ] {
            assert_eq!(r.buffer_len(), 24);
            let mut out = poisoned(26);
            r.emit(&mut out, &src, &dst);
            assert_eq!(&out[24..], &[0xa5, 0xa5]);
            assert_eq!(&out[5..8], &[0, 0, 0], "reserved bits zero");
            assert_eq!(NdpRepr::parse(&out[..24], &src, &dst).unwrap(), r);
        }
    }

    /// RFC 4861 §7.1.1 validity checks on a solicitation.
    #[test]
    fn rfc4861_s7_1_1_invalid_solicitations() {
        let (icmp, src, dst) = ns_icmp();
        for n in 0..24 {
            assert_eq!(
                NdpRepr::parse(&icmp[..n], &src, &dst),
                Err(Error::Truncated)
            );
        }
        // Cutting the option in the middle breaks the checksum first; re-sign each variant
        // so that the check under test is the one that fails.
        let resign = |mut m: Vec<u8>| {
            m[2] = 0;
            m[3] = 0;
            let s = checksum::combine(
                checksum::pseudo_header_v6(&src, &dst, 58, m.len() as u32),
                checksum::sum(&m),
            );
            m[2..4].copy_from_slice(&checksum::finish(s).to_be_bytes());
            m
        };
        let mut bad_sum = icmp.clone();
        bad_sum[3] ^= 0x10;
        assert_eq!(NdpRepr::parse(&bad_sum, &src, &dst), Err(Error::Malformed));
        let mut code = icmp.clone();
        code[1] = 1;
        assert_eq!(
            NdpRepr::parse(&resign(code), &src, &dst),
            Err(Error::Malformed)
        );
        let mut mcast_target = icmp.clone();
        mcast_target[8] = 0xff;
        assert_eq!(
            NdpRepr::parse(&resign(mcast_target), &src, &dst),
            Err(Error::Malformed)
        );
        let mut zero_len_opt = icmp.clone();
        zero_len_opt[25] = 0;
        assert_eq!(
            NdpRepr::parse(&resign(zero_len_opt), &src, &dst),
            Err(Error::Malformed)
        );
        let mut overrun = icmp.clone();
        overrun[25] = 2;
        assert_eq!(
            NdpRepr::parse(&resign(overrun), &src, &dst),
            Err(Error::Malformed)
        );
        let lone_type_byte = icmp[..25].to_vec();
        assert_eq!(
            NdpRepr::parse(&resign(lone_type_byte), &src, &dst),
            Err(Error::Malformed)
        );
        // DAD probe from :: must not carry a source link-layer address.
        let unspec = Ipv6Addr::UNSPECIFIED;
        let mut out = [0u8; 32];
        let dad = NdpRepr::NeighborSolicit {
            target: a("2001:2::2"),
            source_mac: Some([2, 0, 0, 0, 0, 1]),
        };
        dad.emit(&mut out, &unspec, &dst);
        assert_eq!(NdpRepr::parse(&out, &unspec, &dst), Err(Error::Malformed));
        let dad = NdpRepr::NeighborSolicit {
            target: a("2001:2::2"),
            source_mac: None,
        };
        dad.emit(&mut out, &unspec, &dst);
        assert_eq!(NdpRepr::parse(&out[..24], &unspec, &dst), Ok(dad));
        // ... and must go to the target's solicited-node address.
        let all_nodes = a("ff02::1");
        dad.emit(&mut out, &unspec, &all_nodes);
        assert_eq!(
            NdpRepr::parse(&out[..24], &unspec, &all_nodes),
            Err(Error::Malformed)
        );
    }

    /// RFC 4861 §7.1.2: a multicast advertisement must not claim to be solicited.
    #[test]
    fn rfc4861_s7_1_2_multicast_solicited_advert() {
        let src = a("2001:2::2");
        let all_nodes = a("ff02::1");
        let mut r = NdpRepr::NeighborAdvert {
            flags_router: false,
            flags_solicited: true,
            flags_override: true,
            target: src,
            target_mac: Some([2, 0, 0, 0, 0, 2]),
        };
        let mut out = [0u8; 32];
        r.emit(&mut out, &src, &all_nodes);
        assert_eq!(
            NdpRepr::parse(&out, &src, &all_nodes),
            Err(Error::Malformed)
        );
        if let NdpRepr::NeighborAdvert {
            flags_solicited, ..
        } = &mut r
        {
            *flags_solicited = false;
        }
        r.emit(&mut out, &src, &all_nodes);
        assert_eq!(NdpRepr::parse(&out, &src, &all_nodes), Ok(r));
    }

    /// RFC 4861 §4.6: unknown options are skipped; other ICMPv6 types are not ours.
    #[test]
    fn unknown_options_and_types() {
        let (src, dst) = (a("2001:2::1"), a("2001:2::2"));
        let r = NdpRepr::NeighborSolicit {
            target: dst,
            source_mac: Some([2, 0, 0, 0, 0, 1]),
        };
        let mut m = vec![0u8; 48];
        r.emit(&mut m, &src, &dst);
        // Insert a nonce option (type 14, 8 bytes) before the SLLA, then re-sign.
        let mut with_nonce = m[..24].to_vec();
        with_nonce.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
        with_nonce.extend_from_slice(&m[24..32]);
        with_nonce[2] = 0;
        with_nonce[3] = 0;
        let s = checksum::combine(
            checksum::pseudo_header_v6(&src, &dst, 58, 40),
            checksum::sum(&with_nonce),
        );
        with_nonce[2..4].copy_from_slice(&checksum::finish(s).to_be_bytes());
        assert_eq!(NdpRepr::parse(&with_nonce, &src, &dst), Ok(r));
        // Echo request (128): valid ICMPv6 but not NDP.
        let mut echo = m[..24].to_vec();
        echo[0] = 128;
        assert_eq!(NdpRepr::parse(&echo, &src, &dst), Err(Error::Unsupported));
    }
}
