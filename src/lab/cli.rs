//! `synack lab up`, `synack lab down` and `synack lab pin-napi`: the netns library for
//! the benchmark scripts, so that they do not keep a shell copy of it.
//!
//! ```sh
//! eval "$(synack lab up --name sw$$ --gro both --napi server:0 --napi client:1:50 \
//!         --route-back 198.19.0.0/16)"      # CNS SNS VC VS CLIENT SERVER CLIENT6 SERVER6 CMAC SMAC
//! synack lab pin-napi --name sw$$ --napi server:0   # once an XDP program gave the veth NAPI
//! synack lab down --name sw$$
//! ```
//!
//! `up` is idempotent (a lab of the same name is removed first) and removes what it made
//! when any step fails; `down` removes the two namespaces (and with them the veth) and is a
//! no-op when they are gone. Every command has a time cap ([`super::netns::cmd`]).

use std::net::Ipv4Addr;
use std::str::FromStr;

use anyhow::{Context, Result};

use super::netns::{delete_netns, ip_n, pin_napi, set_gro, VethLab, VethSpec};

/// A lab name: 1..=14 ASCII letters and digits (the veth ends add one letter and must fit
/// IFNAMSIZ, 15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabName(pub String);

impl FromStr for LabName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 14 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "{s:?}: give 1..=14 ASCII letters and digits, e.g. sw$$ in a script"
            ));
        }
        Ok(LabName(s.to_owned()))
    }
}

/// One end of the lab's veth pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client end (`VC` in namespace `CNS`).
    Client,
    /// The server end (`VS` in namespace `SNS`).
    Server,
}

impl FromStr for Side {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "client" => Ok(Side::Client),
            "server" => Ok(Side::Server),
            _ => Err(format!("{s:?}: give client or server")),
        }
    }
}

/// Where GRO goes on (`--gro`): on a veth that is also what gives it NAPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gro {
    /// Only the client end.
    Client,
    /// Only the server end.
    Server,
    /// Both ends.
    Both,
}

impl FromStr for Gro {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "client" => Ok(Gro::Client),
            "server" => Ok(Gro::Server),
            "both" => Ok(Gro::Both),
            _ => Err(format!("{s:?}: give client, server or both")),
        }
    }
}

/// `SIDE:CPU[:FIFO]`: pin that end's threaded NAPI to CPU, at SCHED_FIFO FIFO (1..=99).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NapiPin {
    /// Which end.
    pub side: Side,
    /// The CPU.
    pub cpu: usize,
    /// The SCHED_FIFO priority, if any.
    pub fifo: Option<u8>,
}

impl FromStr for NapiPin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "give SIDE:CPU or SIDE:CPU:FIFO, e.g. client:1:50";
        let mut parts = s.split(':');
        let side = parts
            .next()
            .unwrap_or("")
            .parse::<Side>()
            .map_err(|e| format!("{s:?}: {e}; {hint}"))?;
        let cpu = parts
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("{s:?}: no CPU number; {hint}"))?;
        let fifo = match parts.next() {
            None => None,
            Some(p) => match p.parse::<u8>() {
                Ok(p @ 1..=99) => Some(p),
                _ => return Err(format!("{s:?}: the FIFO priority must be 1..=99; {hint}")),
            },
        };
        if parts.next().is_some() {
            return Err(format!("{s:?}: too many fields; {hint}"));
        }
        Ok(NapiPin { side, cpu, fifo })
    }
}

/// `A.B.C.D/LEN` inside 198.18.0.0/15, the benchmarking block every lab address is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabNet {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 15..=32.
    pub len: u8,
}

impl FromStr for LabNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "give a prefix inside 198.18.0.0/15, e.g. 198.19.0.0/16";
        let (a, l) = s.split_once('/').ok_or_else(|| format!("{s:?}: {hint}"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("{s:?}: {hint}"))?;
        let len: u8 = l.parse().map_err(|_| format!("{s:?}: {hint}"))?;
        let inside = (15..=32).contains(&len)
            && u32::from(addr) >> 17 == u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17;
        if !inside {
            return Err(format!("{s:?}: {hint}"));
        }
        Ok(LabNet { addr, len })
    }
}

/// What `synack lab up` builds on top of the two-namespace veth lab.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The lab's name.
    pub name: LabName,
    /// RX/TX queues of each veth end.
    pub queues: u32,
    /// GRO on (and so NAPI) at these ends.
    pub gro: Option<Gro>,
    /// Threaded NAPI placements, applied after GRO.
    pub napi: Vec<NapiPin>,
    /// Prefixes routed from the server namespace back to the client (flood sources).
    pub route_back: Vec<LabNet>,
}

/// `synack lab up`: build the lab (removing one of the same name first) and return its
/// names as shell assignments. On failure everything it made is removed.
pub fn up(o: &UpOptions) -> Result<String> {
    down(&o.name)?;
    let mut spec = VethSpec::named(&o.name.0);
    spec.queues = o.queues;
    let mut lab = VethLab::create(&spec)?;
    if let Some(g) = o.gro {
        if g != Gro::Server {
            set_gro(&lab.client_ns, &lab.client_if, true)?;
        }
        if g != Gro::Client {
            set_gro(&lab.server_ns, &lab.server_if, true)?;
        }
    }
    let out = pin_existing(&o.name, &o.napi)?;
    for net in &o.route_back {
        let (dst, via) = (
            format!("{}/{}", net.addr, net.len),
            lab.client_v4.to_string(),
        );
        ip_n(&lab.server_ns, &["route", "add", &dst, "via", &via])
            .with_context(|| format!("routing {dst} back to the client"))?;
    }
    lab.set_keep(true);
    // The placements as shell comments: the assignments stay the only commands.
    Ok(format!("{}{out}", lab.shell_vars()))
}

/// `synack lab pin-napi`: pin threaded NAPI of an existing lab (e.g. once an XDP program
/// gave the server veth NAPI). Returns the `#` lines saying what was done.
pub fn pin_existing(name: &LabName, pins: &[NapiPin]) -> Result<String> {
    let spec = VethSpec::named(&name.0);
    let mut out = String::new();
    for p in pins {
        let (ns, dev) = match p.side {
            Side::Client => (&spec.client_ns, &spec.client_if),
            Side::Server => (&spec.server_ns, &spec.server_if),
        };
        let n = pin_napi(ns, dev, p.cpu, p.fifo)?;
        let fifo = p
            .fifo
            .map_or(String::new(), |f| format!(" (SCHED_FIFO {f})"));
        out.push_str(&format!(
            "# pinned {n} NAPI thread(s) of {dev} to CPU {}{fifo}\n",
            p.cpu
        ));
    }
    Ok(out)
}

/// `synack lab down`: remove lab `name` (both namespaces; the veth goes with them).
/// Idempotent: a lab that is not there is no error.
pub fn down(name: &LabName) -> Result<()> {
    let spec = VethSpec::named(&name.0);
    delete_netns(&spec.client_ns)?;
    delete_netns(&spec.server_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn napi_pins_parse_and_bad_ones_say_the_form() {
        let p: NapiPin = "client:1:50".parse().unwrap();
        assert_eq!((p.side, p.cpu, p.fifo), (Side::Client, 1, Some(50)));
        let p: NapiPin = "server:0".parse().unwrap();
        assert_eq!((p.side, p.cpu, p.fifo), (Side::Server, 0, None));
        for bad in [
            "router:0",
            "client",
            "client:x",
            "client:1:0",
            "client:1:100",
            "server:0:5:1",
        ] {
            let e = bad.parse::<NapiPin>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn names_fit_ifnamsiz_and_route_back_stays_in_198_18_0_0_15() {
        assert!("sw123456".parse::<LabName>().is_ok());
        assert!("".parse::<LabName>().is_err());
        assert!("a-b".parse::<LabName>().is_err());
        assert!("abcdefghijklmno".parse::<LabName>().is_err());
        let n: LabNet = "198.19.0.0/16".parse().unwrap();
        assert_eq!((n.addr, n.len), (Ipv4Addr::new(198, 19, 0, 0), 16));
        for bad in [
            "10.0.0.0/8",
            "198.20.0.0/16",
            "198.18.0.0/14",
            "198.19.0.0",
            "x/16",
        ] {
            assert!(bad.parse::<LabNet>().is_err(), "{bad}");
        }
        assert!("both".parse::<Gro>().is_ok() && "all".parse::<Gro>().is_err());
    }
}
