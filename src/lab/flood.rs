//! The lab's SYN flood: Linux-like SYNs from addresses nobody owns (198.19.0.0/16), sent
//! from AF_XDP TX sockets of the client veth (no XDP program needed there), bounded in
//! packets and seconds. Used by the demo and by the root tests.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::netns::ns_mac;
use super::FLOOD_NET;
use crate::io::afxdp::{AfXdpConfig, AfXdpPort};
use crate::io::{Port, XdpMode};
use crate::rng::Rng;
use crate::wire::{SeqNumber, TcpFlags, TcpFrame, TcpOptions, TcpRepr};

/// Write one SYN frame (Ethernet, IPv4, TCP with MSS, SACK-permitted, timestamps and
/// window scale, like a Linux SYN) into `buf` and return its length (74 bytes).
///
/// # Panics
/// If `buf` is shorter than 74 bytes.
#[allow(clippy::too_many_arguments)]
pub fn syn_frame(
    buf: &mut [u8],
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
) -> usize {
    let frame = TcpFrame {
        src_mac,
        dst_mac,
        vlan: None,
        src: src.into(),
        dst: dst.into(),
        ttl: 64,
        tcp: TcpRepr {
            src_port,
            dst_port,
            seq: SeqNumber(seq),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: 64240,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((seq.rotate_left(7), 0)),
                ..TcpOptions::default()
            },
            payload: &[],
        },
    };
    frame.emit(buf).unwrap_or(0)
}

/// Source address and port of flood packet `i`: 65534 hosts of 198.19.0.0/16 (no .0.0,
/// no .255.255), then the next source port.
pub fn flood_source(i: u64) -> (Ipv4Addr, u16) {
    let host = (i % 65534) as u32 + 1;
    let port = 1024 + ((i / 65534) % 64000) as u16;
    (Ipv4Addr::from(u32::from(FLOOD_NET) | host), port)
}

/// What the flood did.
#[derive(Debug, Default)]
pub struct FloodResult {
    /// SYNs put on the TX rings.
    pub sent: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Times a TX ring was full.
    pub tx_ring_full: u64,
}

/// Where a SYN flood goes: sent from `ifname` in namespace `ns` to `dst:dst_port` at L2
/// address `server_mac`, from sources in 198.19.0.0/16 (see [`flood_source`]).
#[derive(Debug, Clone)]
pub struct FloodTarget<'a> {
    /// Namespace of the sending interface.
    pub ns: &'a str,
    /// Sending interface (its AF_XDP TX queues are used, no XDP program needed).
    pub ifname: &'a str,
    /// MAC of the receiving interface.
    pub server_mac: [u8; 6],
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dst_port: u16,
}

/// The AF_XDP socket a client-side sender opens on its veth to send raw frames (the
/// flood here, and tests' hand-made segments): generic mode, so it needs no XDP support
/// from the driver, with 4,096 frames and 2,048-entry rings.
pub fn tx_socket_config() -> AfXdpConfig {
    AfXdpConfig {
        frame_size: 2048,
        frame_count: 4096,
        ring_size: 2048,
        busy_poll: false,
        mode: XdpMode::Generic,
        zerocopy: crate::io::ZeroCopy::Auto,
    }
}

/// A SYN flood: at most `packets` SYNs in at most `limit` (or until `stop`), sent from
/// AF_XDP sockets (TX only, no XDP program) on the client veth's `queues` queues,
/// round-robin in batches of 64, to the server's MAC.
pub fn flood(
    target: &FloodTarget<'_>,
    packets: u64,
    limit: Duration,
    queues: u32,
    stop: &AtomicBool,
) -> Result<FloodResult> {
    let client_ns = target.ns;
    let server_mac = target.server_mac;
    let client_mac = ns_mac(client_ns, target.ifname)?;
    let seed = {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
        u64::from_le_bytes(b)
    };
    std::thread::scope(|s| {
        s.spawn(|| -> Result<FloodResult> {
            crate::io::sys::enter_netns(client_ns)
                .with_context(|| format!("entering namespace {client_ns}"))?;
            let cfg = tx_socket_config();
            let mut ports = Vec::new();
            for q in 0..queues {
                let p = AfXdpPort::open(target.ifname, q, &cfg)
                    .with_context(|| format!("opening the flood's AF_XDP socket on queue {q}"))?;
                let free = p.free_frames();
                ports.push((p, free));
            }
            let t0 = Instant::now();
            let mut sent = 0u64;
            let mut rng = Rng::new(seed);
            while sent < packets && t0.elapsed() < limit && !stop.load(Ordering::Relaxed) {
                let mut queued = 0;
                for (port, _) in ports.iter_mut() {
                    let mut batch = 0;
                    while batch < 64 && sent < packets {
                        let Some(addr) = port.alloc_tx() else { break };
                        let (src, sport) = flood_source(sent);
                        let len = syn_frame(
                            port.buffer(addr),
                            client_mac,
                            server_mac,
                            src,
                            target.dst,
                            sport,
                            target.dst_port,
                            // A different ISN per SYN.
                            rng.next_u32(),
                        );
                        if !port.send(addr, len as u32) {
                            break;
                        }
                        sent += 1;
                        batch += 1;
                    }
                    queued += batch;
                    port.flush();
                }
                if queued == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            let elapsed = t0.elapsed();
            // Let the TX rings drain (bounded) before the sockets close.
            let t1 = Instant::now();
            while t1.elapsed() < Duration::from_millis(500)
                && ports.iter().any(|(p, free)| p.free_frames() < *free)
            {
                for (p, _) in ports.iter_mut() {
                    p.flush();
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(FloodResult {
                sent,
                elapsed,
                tx_ring_full: ports.iter().map(|(p, _)| p.stats().tx_ring_full).sum(),
            })
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the flood thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::SERVER_V4;
    use crate::wire::{EtherType, EthernetFrame, Ipv4Packet, Ipv4Repr, TcpPacket};
    use std::net::IpAddr;

    /// RFC 9293 §3.1: the SYN the flood sends parses with valid IPv4 and TCP checksums.
    #[test]
    fn syn_frame_is_a_valid_syn() {
        let mut buf = vec![0xa5u8; 128];
        let (src, sport) = flood_source(70_000);
        assert_eq!(src, Ipv4Addr::new(198, 19, 17, 115)); // 70000 % 65534 + 1 = 4467
        assert_eq!(sport, 1025);
        let len = syn_frame(
            &mut buf,
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            src,
            SERVER_V4,
            sport,
            80,
            0xdead_beef,
        );
        assert_eq!(len, 74);
        let eth = EthernetFrame::new_checked(&buf[..len]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::IPV4);
        let ipp = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let ip = Ipv4Repr::parse(&ipp, true).unwrap();
        assert_eq!((ip.src, ip.dst), (src, SERVER_V4));
        let tp = TcpPacket::new_checked(ipp.payload()).unwrap();
        let tcp = TcpRepr::parse(&tp, &IpAddr::V4(src), &IpAddr::V4(SERVER_V4), true).unwrap();
        assert_eq!(tcp.flags, TcpFlags::SYN);
        assert_eq!((tcp.src_port, tcp.dst_port), (sport, 80));
        assert_eq!(tcp.seq, SeqNumber(0xdead_beef));
        assert_eq!(tcp.options.mss, Some(1460));
        assert!(tcp.options.timestamps.is_some());
    }

    #[test]
    fn flood_sources_stay_in_198_19_0_0_16_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for i in [0u64, 1, 65533, 65534, 65535, 200_000, 9_999_999] {
            let (a, p) = flood_source(i);
            assert_eq!(a.octets()[..2], [198, 19]);
            assert_ne!(a.octets()[2..], [0, 0]);
            assert_ne!(a.octets()[2..], [255, 255]);
            assert!(p >= 1024);
            assert!(seen.insert((a, p)));
        }
    }
}
