//! The reply parser: the inverse of [`TcpFrame`]'s writer, over the wire views and
//! `Repr`s (no hand offsets). A frame the server sent becomes a [`Reply`]: a TCP [`Seg`]
//! (the one segment type of the kit), an ARP reply or a neighbour advertisement.
//! [`Seg::to_frame`] gives back the [`TcpFrame`] that writes the same bytes.

use std::net::IpAddr;

use crate::wire::{
    ip_protocol, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr, NdpRepr, SeqNumber, TcpFlags, TcpFrame, TcpOptions, TcpPacket, TcpRepr,
};

/// One parsed TCP segment, with where it went: every field [`TcpFrame`] writes.
#[derive(Clone, PartialEq, Eq)]
pub struct Seg {
    /// The Ethernet header (MACs, 802.1Q tag).
    pub eth: EthernetRepr,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.SEQ.
    pub seq: u32,
    /// SEG.ACK.
    pub ack: u32,
    /// SEG.WND (the unscaled field).
    pub window: u16,
    /// Options.
    pub options: TcpOptions,
    /// The payload.
    pub payload: Vec<u8>,
    /// Length of the whole frame (padding included).
    pub frame_len: usize,
}

impl std::fmt::Debug for Seg {
    /// A trace line: `80 > 40000 <ACK|FIN SEQ=.. ACK=.. WND=.. LEN=..> TS=..`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} > {} <{} SEQ={} ACK={} WND={} LEN={}> {:?}",
            self.src_port,
            self.dst_port,
            self.flags,
            self.seq,
            self.ack,
            self.window,
            self.payload.len(),
            self.options
        )
    }
}

impl Seg {
    /// Assert flags (exactly), SEG.SEQ and SEG.ACK; returns `self` for chaining.
    #[track_caller]
    pub fn expect(&self, flags: TcpFlags, seq: u32, ack: u32) -> &Self {
        assert_eq!(
            (self.flags, self.seq, self.ack),
            (flags, seq, ack),
            "expected <{flags} SEQ={seq} ACK={ack}>, got {self:?}"
        );
        self
    }

    /// Assert the flags only.
    #[track_caller]
    pub fn expect_flags(&self, flags: TcpFlags) -> &Self {
        assert_eq!(self.flags, flags, "flags of {self:?}");
        self
    }

    /// SEG.LEN (RFC 9293 §3.4): payload plus SYN and FIN.
    pub fn len(&self) -> u32 {
        self.payload.len() as u32
            + u32::from(self.flags.contains(TcpFlags::SYN))
            + u32::from(self.flags.contains(TcpFlags::FIN))
    }

    /// Whether SEG.LEN is zero (a pure ACK or RST).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sender's TSval, if the segment carries timestamps.
    pub fn tsval(&self) -> Option<u32> {
        self.options.timestamps.map(|t| t.0)
    }

    /// The frame description that writes this segment again, byte for byte.
    pub fn to_frame(&self) -> TcpFrame<'_> {
        TcpFrame {
            src_mac: self.eth.src,
            dst_mac: self.eth.dst,
            vlan: self.eth.vlan,
            src: self.src,
            dst: self.dst,
            ttl: self.ttl,
            tcp: TcpRepr {
                src_port: self.src_port,
                dst_port: self.dst_port,
                seq: SeqNumber(self.seq),
                ack: SeqNumber(self.ack),
                flags: self.flags,
                window: self.window,
                options: self.options,
                payload: &self.payload,
            },
        }
    }
}

/// What a frame from the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A TCP segment (IPv4 or IPv6).
    Tcp(Seg),
    /// An ARP packet (RFC 826).
    Arp {
        /// Its Ethernet header.
        eth: EthernetRepr,
        /// The ARP body.
        arp: ArpRepr,
    },
    /// A neighbour discovery message (RFC 4861).
    Neighbor {
        /// Its Ethernet header.
        eth: EthernetRepr,
        /// The IPv6 hop limit (255 on the wire, RFC 4861 §7.1).
        hop_limit: u8,
        /// The ICMPv6 body.
        ndp: NdpRepr,
    },
}

/// Parse a frame as the server must write it: Ethernet, then IPv4 (header checksum
/// valid) or IPv6, then TCP with a valid checksum; or ARP; or ICMPv6 neighbour discovery.
/// `Err` names the first layer that is not.
pub fn parse_reply(frame: &[u8]) -> Result<Reply, String> {
    let eth_frame = EthernetFrame::new_checked(frame).map_err(|e| format!("ethernet: {e:?}"))?;
    let eth = EthernetRepr::parse(&eth_frame).map_err(|e| format!("ethernet repr: {e:?}"))?;
    let l3 = eth_frame.into_payload();
    let (src, dst, ttl, l4) = match eth.ethertype {
        EtherType::IPV4 => {
            let p = Ipv4Packet::new_checked(l3).map_err(|e| format!("ipv4: {e:?}"))?;
            let ip = Ipv4Repr::parse(&p, true).map_err(|e| format!("ipv4 repr: {e:?}"))?;
            if ip.protocol != ip_protocol::TCP {
                return Err(format!("ipv4 protocol {}", ip.protocol));
            }
            let body = p.into_payload();
            (IpAddr::V4(ip.src), IpAddr::V4(ip.dst), ip.ttl, body)
        }
        EtherType::IPV6 => {
            let p = Ipv6Packet::new_checked(l3).map_err(|e| format!("ipv6: {e:?}"))?;
            let ip = Ipv6Repr::parse(&p).map_err(|e| format!("ipv6 repr: {e:?}"))?;
            let body = p.into_payload();
            match ip.next_header {
                ip_protocol::TCP => {}
                ip_protocol::ICMPV6 => {
                    let ndp = NdpRepr::parse(body, &ip.src, &ip.dst)
                        .map_err(|e| format!("icmpv6: {e:?}"))?;
                    return Ok(Reply::Neighbor {
                        eth,
                        hop_limit: ip.hop_limit,
                        ndp,
                    });
                }
                n => return Err(format!("ipv6 next header {n}")),
            }
            (IpAddr::V6(ip.src), IpAddr::V6(ip.dst), ip.hop_limit, body)
        }
        EtherType::ARP => {
            let arp = ArpRepr::parse(l3).map_err(|e| format!("arp: {e:?}"))?;
            return Ok(Reply::Arp { eth, arp });
        }
        t => return Err(format!("ethertype {t:#06x}")),
    };
    let tcp = TcpPacket::new_checked(l4).map_err(|e| format!("tcp: {e:?}"))?;
    let r = TcpRepr::parse(&tcp, &src, &dst, true).map_err(|e| format!("tcp repr: {e:?}"))?;
    Ok(Reply::Tcp(Seg {
        eth,
        src,
        dst,
        ttl,
        src_port: r.src_port,
        dst_port: r.dst_port,
        flags: r.flags,
        seq: r.seq.0,
        ack: r.ack.0,
        window: r.window,
        options: r.options,
        payload: r.payload.to_vec(),
        frame_len: frame.len(),
    }))
}

/// Parse a TCP frame the server sent. Panics on anything else or anything malformed
/// (checksums included): the server must only emit valid frames.
#[track_caller]
pub fn parse_frame(frame: &[u8]) -> Seg {
    match parse_reply(frame) {
        Ok(Reply::Tcp(s)) => s,
        Ok(other) => panic!("reply is not TCP: {other:?}"),
        Err(e) => panic!("malformed reply: {e}"),
    }
}

/// Exactly one segment.
#[track_caller]
pub fn one(segs: Vec<Seg>) -> Seg {
    assert_eq!(segs.len(), 1, "expected exactly one segment, got {segs:#?}");
    segs.into_iter().next().unwrap_or_else(|| unreachable!())
}

/// No segment at all.
#[track_caller]
pub fn none(segs: Vec<Seg>) {
    assert!(segs.is_empty(), "expected no segment, got {segs:#?}");
}

/// Recompute the IPv4 header and TCP checksums of a frame in place, when its headers are
/// coherent enough to find them; otherwise leave it as it is (so that a mutated frame
/// still reaches the layers behind the checksum checks).
pub fn fix_checksums(frame: &mut [u8]) {
    let Ok(eth) = EthernetFrame::new_checked(&mut *frame) else {
        return;
    };
    let ethertype = eth.ethertype();
    let l3 = eth.header_len();
    let ip = &mut frame[l3..];
    match ethertype {
        EtherType::IPV4 => {
            let Ok(mut p) = Ipv4Packet::new_checked(&mut *ip) else {
                return;
            };
            p.fill_checksum();
            let (src, dst) = (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()));
            let (hl, total) = (p.header_len(), usize::from(p.total_len()));
            if let Ok(mut tcp) = TcpPacket::new_checked(&mut ip[hl..total]) {
                tcp.fill_checksum(&src, &dst);
            }
        }
        EtherType::IPV6 => {
            let Ok(p) = Ipv6Packet::new_checked(&mut *ip) else {
                return;
            };
            let (src, dst) = (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()));
            let end = Ipv6Repr::HEADER_LEN + usize::from(p.payload_len());
            if let Ok(mut tcp) = TcpPacket::new_checked(&mut ip[Ipv6Repr::HEADER_LEN..end]) {
                tcp.fill_checksum(&src, &dst);
            }
        }
        _ => {}
    }
}

/// The TCP header of a frame, mutably, when Ethernet and IP parse far enough to find it.
pub fn tcp_header_mut(frame: &mut [u8]) -> Option<TcpPacket<&mut [u8]>> {
    let eth = EthernetFrame::new_checked(&*frame).ok()?;
    let (ethertype, l3) = (eth.ethertype(), eth.header_len());
    let l4 = match ethertype {
        EtherType::IPV4 => l3 + Ipv4Packet::new_checked(&frame[l3..]).ok()?.header_len(),
        EtherType::IPV6 => {
            Ipv6Packet::new_checked(&frame[l3..]).ok()?;
            l3 + Ipv6Repr::HEADER_LEN
        }
        _ => return None,
    };
    TcpPacket::new_checked(&mut frame[l4..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::peer::{CLIENT_MAC, CLIENT_V4, CLIENT_V6};
    use crate::testkit::{SERVER_MAC, SERVER_V4, SERVER_V6};
    use proptest::prelude::*;

    fn frame(v6: bool, vlan: Option<u16>, ttl: u8, payload: &[u8]) -> TcpFrame<'_> {
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            (CLIENT_V6.into(), SERVER_V6.into())
        } else {
            (CLIENT_V4.into(), SERVER_V4.into())
        };
        TcpFrame {
            src_mac: CLIENT_MAC,
            dst_mac: SERVER_MAC,
            vlan,
            src,
            dst,
            ttl,
            tcp: TcpRepr {
                src_port: 40_000,
                dst_port: 80,
                seq: SeqNumber(7),
                ack: SeqNumber(9),
                flags: TcpFlags::ACK | TcpFlags::PSH,
                window: 502,
                options: TcpOptions {
                    timestamps: Some((1, 2)),
                    ..TcpOptions::default()
                },
                payload,
            },
        }
    }

    proptest! {
        /// The parser is the writer's inverse: every frame `TcpFrame` emits (IPv4/IPv6,
        /// tagged or not, padded or not) parses back to the same description.
        #[test]
        fn parse_inverts_tcp_frame_emit(
            v6 in any::<bool>(),
            vlan in proptest::option::of(0u16..4096),
            ttl in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let f = frame(v6, vlan, ttl, &payload);
            let bytes = f.to_vec().expect("same family");
            let s = parse_frame(&bytes);
            prop_assert_eq!(s.to_frame(), f);
            prop_assert_eq!(s.frame_len, bytes.len());
        }
    }

    #[test]
    fn bad_checksums_and_other_protocols_are_errors() {
        let mut bytes = frame(false, None, 64, b"x").to_vec().unwrap();
        let n = bytes.len();
        bytes[n - 8] ^= 0xff; // inside the timestamps option
        assert!(parse_reply(&bytes).unwrap_err().starts_with("tcp repr"));
        fix_checksums(&mut bytes);
        assert!(parse_reply(&bytes).is_ok());
        assert!(parse_reply(&bytes[..13])
            .unwrap_err()
            .starts_with("ethernet"));
    }

    #[test]
    fn fix_checksums_repairs_a_mutated_v6_segment() {
        let mut bytes = frame(true, Some(3), 64, b"abc").to_vec().unwrap();
        let mut tcp = tcp_header_mut(&mut bytes).expect("tcp header");
        tcp.set_seq_number(SeqNumber(1234));
        assert!(parse_reply(&bytes).is_err());
        fix_checksums(&mut bytes);
        assert_eq!(parse_frame(&bytes).seq, 1234);
    }
}
