//! A whole TCP frame: Ethernet (with an optional 802.1Q tag), IPv4 or IPv6, TCP. The one
//! place that stacks the layer `Repr`s into a frame, for the endpoint's replies, the
//! generator and the lab's flood, and the tests' clients.

use super::ip_protocol;
use super::{EtherType, EthernetRepr, Ipv4Repr, Ipv6Repr, TcpRepr};
use std::net::IpAddr;

/// Ethernet II frames are at least 60 bytes before the FCS; shorter ones are zero-padded.
pub const MIN_FRAME: usize = 60;

/// Everything that goes into a TCP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFrame<'a> {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// 802.1Q TCI, if tagged.
    pub vlan: Option<u16>,
    /// Source address (the family decides IPv4 or IPv6).
    pub src: IpAddr,
    /// Destination address, same family.
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// The segment.
    pub tcp: TcpRepr<'a>,
}

impl TcpFrame<'_> {
    #[inline(always)]
    fn eth(&self) -> EthernetRepr {
        EthernetRepr {
            src: self.src_mac,
            dst: self.dst_mac,
            vlan: self.vlan,
            ethertype: if self.src.is_ipv4() {
                EtherType::IPV4
            } else {
                EtherType::IPV6
            },
        }
    }

    #[inline(always)]
    fn ip_len(&self) -> usize {
        if self.src.is_ipv4() {
            Ipv4Repr::HEADER_LEN
        } else {
            Ipv6Repr::HEADER_LEN
        }
    }

    /// Length of the frame before padding.
    pub fn unpadded_len(&self) -> usize {
        self.eth().header_len() + self.ip_len() + self.tcp.buffer_len()
    }

    /// Length of the emitted frame (padded to [`MIN_FRAME`]).
    pub fn buffer_len(&self) -> usize {
        self.unpadded_len().max(MIN_FRAME)
    }

    /// Write the frame at the start of `buf`, checksums filled, padding zeroed. Returns its
    /// length, or `None` when `buf` is too short or the two addresses differ in family.
    #[must_use = "`None` means no frame was written"]
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let eth = self.eth();
        let hl = eth.header_len();
        let ip_len = self.ip_len();
        let tcp_len = self.tcp.buffer_len();
        let total = hl + ip_len + tcp_len;
        let padded = total.max(MIN_FRAME);
        if buf.len() < padded {
            return None;
        }
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Ipv4Repr {
                src,
                dst,
                protocol: ip_protocol::TCP,
                payload_len: tcp_len,
                ttl: self.ttl,
            }
            .emit(&mut buf[hl..hl + ip_len]),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Ipv6Repr {
                src,
                dst,
                next_header: ip_protocol::TCP,
                payload_len: tcp_len,
                hop_limit: self.ttl,
            }
            .emit(&mut buf[hl..hl + ip_len]),
            _ => return None,
        }
        eth.emit(buf);
        self.tcp
            .emit(&mut buf[hl + ip_len..total], &self.src, &self.dst);
        buf[total..padded].fill(0);
        Some(padded)
    }

    /// The frame as a new vector.
    pub fn to_vec(&self) -> Option<Vec<u8>> {
        let mut v = vec![0; self.buffer_len()];
        let n = self.emit(&mut v)?;
        v.truncate(n);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{
        EthernetFrame, Ipv4Packet, Ipv6Packet, SeqNumber, TcpFlags, TcpOptions, TcpPacket,
    };
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn frame(src: IpAddr, dst: IpAddr, vlan: Option<u16>) -> TcpFrame<'static> {
        TcpFrame {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            vlan,
            src,
            dst,
            ttl: 64,
            tcp: TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq: SeqNumber(7),
                ack: SeqNumber(0),
                flags: TcpFlags::SYN,
                window: 64240,
                options: TcpOptions {
                    mss: Some(1460),
                    ..TcpOptions::default()
                },
                payload: &[],
            },
        }
    }

    #[test]
    fn v4_frame_parses_back_with_valid_checksums_and_padding() {
        let (s, d) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        let f = frame(s.into(), d.into(), Some(5));
        let mut buf = [0xa5u8; 128];
        let n = f.emit(&mut buf).unwrap();
        assert_eq!(n, 18 + 20 + 24);
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!((eth.vlan(), eth.ethertype()), (Some(5), EtherType::IPV4));
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(&s.into(), &d.into()));
        assert_eq!(f.to_vec().unwrap(), buf[..n].to_vec());
    }

    #[test]
    fn short_frames_are_zero_padded_to_60_bytes() {
        let (s, d) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        let mut f = frame(s.into(), d.into(), None);
        f.tcp.options = TcpOptions::default();
        let mut buf = [0xa5u8; 128];
        assert_eq!(f.unpadded_len(), 54);
        assert_eq!(f.emit(&mut buf), Some(60));
        assert_eq!(&buf[54..60], &[0; 6]);
        assert_eq!(buf[60], 0xa5);
    }

    #[test]
    fn v6_and_refusals() {
        let (s, d) = (
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2),
        );
        let f = frame(s.into(), d.into(), None);
        let mut buf = [0u8; 128];
        let n = f.emit(&mut buf).unwrap();
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(&s.into(), &d.into()));
        assert_eq!(f.emit(&mut buf[..40]), None);
        let mixed = frame(Ipv4Addr::LOCALHOST.into(), d.into(), None);
        assert_eq!(mixed.emit(&mut buf), None);
    }
}
