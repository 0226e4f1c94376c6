//! `synack gen`: a connection-rate generator, the client role on the same AF_XDP io.
//!
//! ```text
//!  run (control path: XDP attach for the source range, AF_XDP port, target MAC, report)
//!    └─ Driver<P: Port> (poll loop: RX batch → Client, timers, paced SYN batch, one kick)
//!         └─ Client (sans-IO state machine, keyed by (source addr, source port))
//! ```
//!
//! - [`SourceRange`]: the addresses × ports the generator owns. The target must route that
//!   range back to the generator's interface; the XDP program (the same one `synack run`
//!   uses, with the source addresses and ports in its maps and standalone mode on) steers
//!   the replies into the AF_XDP socket so the client kernel never sees (and never RSTs)
//!   them, and ARP requests for the source addresses come to us and are answered.
//! - [`client::Client`]: SYN-SENT → ESTABLISHED → FIN-WAIT-1/2 (client-first close) or
//!   LAST-ACK (server-first close) → done. Time is passed in (microseconds). Each tuple is
//!   used once per run, so a connection is forgotten on its final ACK: there is no client
//!   TIME-WAIT. SYNs are retransmitted after 1 s (doubling, bounded); nothing else is
//!   retransmitted, so a lost request or FIN ends as a timeout failure.
//! - Steady concurrency (`--concurrency N`, [`client::Hold`]): connections stay open for the
//!   whole run, idle or sending the request every `--interval-ms`; the driver's in-flight
//!   bound is N, so whatever closes is replaced at once; at the end all are closed.
//! - [`driver::Driver`]: the loop over an [`crate::io::Port`] (AF_XDP in the lab, memory in
//!   tests), with SYNs filled in batches and one kick per loop iteration.
//! - [`run`]: `synack gen` itself.
//! - [`flood`]: `synack gen --live-flood`, the XDP flood generator of [`crate::io::flood`]
//!   with its reply counter.

#![forbid(unsafe_code)]

pub mod client;
pub mod driver;
pub mod flood;
pub mod run;

pub use client::{Client, ClientConfig, CloseOrder, GenDrop, GenStats, Hold};
pub use driver::Driver;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::ConfigError;

/// The source tuples the generator owns: every address × every port, each used once.
///
/// Tuple `i` is address `i % addrs.len()` and port `ports.0 + i / addrs.len()`, so that
/// consecutive connections spread over the addresses (and over RSS queues on a real NIC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRange {
    /// Source addresses (all IPv4 or all IPv6, the family of the target).
    pub addrs: Vec<IpAddr>,
    /// First and last source port, inclusive.
    pub ports: (u16, u16),
}

/// Most source addresses: the XDP program's address maps hold 256 entries.
pub const MAX_SOURCE_ADDRS: usize = 256;

impl SourceRange {
    /// Parse `198.19.0.0/24`, `198.19.0.1-198.19.0.9`, a single address, or the IPv6
    /// forms, and a port range `1024-65535` (or one port). A CIDR block of IPv4 with a
    /// prefix below 31 leaves out its network and broadcast addresses.
    ///
    /// Errors name the flag (`--source`, `--source-ports`) with the hint of its rule in
    /// the settings table.
    pub fn parse(addrs: &str, ports: &str) -> Result<SourceRange, ConfigError> {
        let list = parse_addrs(addrs).map_err(|p| ConfigError::flag("--source", p))?;
        let (lo, hi) = parse_ports(ports).map_err(|p| ConfigError::flag("--source-ports", p))?;
        Ok(SourceRange {
            addrs: list,
            ports: (lo, hi),
        })
    }

    /// Number of tuples.
    pub fn len(&self) -> u64 {
        self.addrs.len() as u64 * (u64::from(self.ports.1) - u64::from(self.ports.0) + 1)
    }

    /// Whether there is no tuple.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tuple `i` (`i < len()`).
    pub fn tuple(&self, i: u64) -> Option<(IpAddr, u16)> {
        if i >= self.len() {
            return None;
        }
        let n = self.addrs.len() as u64;
        let addr = self.addrs[(i % n) as usize];
        let port = u64::from(self.ports.0) + i / n;
        Some((addr, port as u16))
    }

    /// Whether `addr` is one of ours.
    pub fn has_addr(&self, addr: &IpAddr) -> bool {
        self.addrs.contains(addr)
    }

    /// Whether `port` is in the port range.
    pub fn has_port(&self, port: u16) -> bool {
        (self.ports.0..=self.ports.1).contains(&port)
    }

    /// Whether the addresses are IPv6.
    pub fn is_v6(&self) -> bool {
        matches!(self.addrs.first(), Some(IpAddr::V6(_)))
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .map_err(|_| format!("{s:?} is not a port (1..=65535)"))
}

/// `LOW-HIGH` or one port, with 1 <= LOW <= HIGH.
fn parse_ports(ports: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse_port(a)?, parse_port(b)?),
        None => {
            let p = parse_port(ports)?;
            (p, p)
        }
    };
    if lo == 0 || lo > hi {
        return Err(format!("{ports:?} is not LOW-HIGH with 1 <= LOW <= HIGH"));
    }
    Ok((lo, hi))
}

/// The source addresses of `s`: at least one, at most [`MAX_SOURCE_ADDRS`].
fn parse_addrs(s: &str) -> Result<Vec<IpAddr>, String> {
    let list = parse_addr_form(s)?;
    if list.is_empty() {
        return Err(format!("{s:?} has no usable addresses"));
    }
    if list.len() > MAX_SOURCE_ADDRS {
        return Err(format!(
            "{s:?} has {} addresses, more than {MAX_SOURCE_ADDRS} (the XDP address map size); use a /24 or smaller",
            list.len()
        ));
    }
    Ok(list)
}

/// A CIDR block, a range `FIRST-LAST` or one address.
fn parse_addr_form(s: &str) -> Result<Vec<IpAddr>, String> {
    let s = s.trim();
    if let Some((base, len)) = s.split_once('/') {
        let base: IpAddr = base
            .parse()
            .map_err(|_| format!("{s:?}: {base:?} is not an address"))?;
        let len: u32 = len
            .parse()
            .map_err(|_| format!("{s:?}: {len:?} is not a prefix length"))?;
        return match base {
            IpAddr::V4(b) => {
                if !(16..=32).contains(&len) {
                    return Err(format!("{s:?}: IPv4 prefix must be /16../32"));
                }
                let host_bits = 32 - len;
                let start = u32::from(b) & !((1u64 << host_bits) - 1) as u32;
                let count = 1u64 << host_bits;
                if count > 4096 {
                    return Err(format!(
                        "{s:?} has more than {MAX_SOURCE_ADDRS} addresses; use a /24 or smaller"
                    ));
                }
                let (first, last) = if len < 31 { (1, count - 1) } else { (0, count) };
                Ok((first..last)
                    .map(|i| IpAddr::V4(Ipv4Addr::from(start + i as u32)))
                    .collect())
            }
            IpAddr::V6(b) => {
                if !(120..=128).contains(&len) {
                    return Err(format!("{s:?}: IPv6 prefix must be /120../128"));
                }
                let host_bits = 128 - len;
                let start = u128::from(b) & !((1u128 << host_bits) - 1);
                let count = 1u128 << host_bits;
                // Skip the subnet-router anycast address (all host bits zero).
                let first = if count > 1 { 1 } else { 0 };
                Ok((first..count)
                    .map(|i| IpAddr::V6(Ipv6Addr::from(start + i)))
                    .collect())
            }
        };
    }
    if let Some((a, b)) = s.split_once('-') {
        let a: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {a:?} is not an address"))?;
        let b: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {b:?} is not an address"))?;
        let (lo, hi) = match (a, b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => return Err(format!("{s:?}: both ends must be the same family")),
        };
        if lo > hi || hi - lo >= MAX_SOURCE_ADDRS as u128 {
            return Err(format!(
                "{s:?} is not FIRST-LAST with at most {MAX_SOURCE_ADDRS} addresses"
            ));
        }
        return Ok((lo..=hi)
            .map(|v| match a {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
            })
            .collect());
    }
    let a: IpAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an address, range or CIDR block"))?;
    Ok(vec![a])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_skips_network_and_broadcast() {
        let r = SourceRange::parse("198.19.0.0/24", "1024-65535").unwrap();
        assert_eq!(r.addrs.len(), 254);
        assert_eq!(r.addrs[0], "198.19.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.addrs[253], "198.19.0.254".parse::<IpAddr>().unwrap());
        assert_eq!(r.len(), 254 * 64512);
    }

    #[test]
    fn tuples_spread_over_addresses_first() {
        let r = SourceRange::parse("198.19.0.1-198.19.0.3", "2000-2001").unwrap();
        let t: Vec<_> = (0..7).map(|i| r.tuple(i)).collect();
        assert_eq!(t[0], Some(("198.19.0.1".parse().unwrap(), 2000)));
        assert_eq!(t[2], Some(("198.19.0.3".parse().unwrap(), 2000)));
        assert_eq!(t[3], Some(("198.19.0.1".parse().unwrap(), 2001)));
        assert_eq!(t[6], None);
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(SourceRange::parse("198.19.0.0/16", "1024").is_err());
        assert!(SourceRange::parse("198.19.0.1", "0-10").is_err());
        assert!(SourceRange::parse("198.19.0.1", "10-5").is_err());
        assert!(SourceRange::parse("198.19.0.1-2001:2::1", "10").is_err());
        assert!(SourceRange::parse("nonsense", "10").is_err());
        let v6 = SourceRange::parse("2001:2:0:1::/120", "5000").unwrap();
        assert_eq!(v6.addrs.len(), 255);
        assert!(v6.is_v6());
    }
}
