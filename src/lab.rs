//! `synack lab`: the self-contained veth demo, and the README's first command.
//!
//! ```text
//!  client namespace                                server namespace
//!  synack-cli 198.18.0.2, 2001:2::2   ◀──veth──▶   synack-srv 198.18.0.1, 2001:2::1
//!   Linux sockets (discard/echo/http/close)          `synack run` (XDP + AF_XDP)
//!   AF_XDP TX: SYNs from 198.19.0.0/16
//! ```
//!
//! [`run`] builds two network namespaces joined by a veth pair, starts the endpoint in the
//! server namespace as a child process (`synack run` with a config generated from
//! `config/lab.toml`), drives real Linux kernel connections against every listener mode
//! and a bounded SYN flood from addresses the client namespace does not own, prints what
//! happened, stops the endpoint with SIGINT and removes everything again (also on Ctrl-C
//! and on any failure: every resource sits in a guard whose `Drop` cleans it up).
//!
//! The flood's SYN-ACKs go back over the veth to the client MAC; the client kernel does
//! not own 198.19.0.0/16 and does not forward, so it drops them (counted as
//! `Ip InAddrErrors`) and no RST comes back to disturb the numbers.
//!
//! The module tree is the one netns lab library of the project:
//!
//! | module | what |
//! |---|---|
//! | [`netns`] | namespaces, veth pairs (queues, offloads, addresses), MACs, SNMP, NAPI placement, stale-lab cleanup |
//! | [`endpoint`] | `synack run` as a child process: config, ready file, stats JSON, stop |
//! | [`clients`] | the Linux client connections of every listener mode |
//! | [`flood`] | the bounded AF_XDP SYN flood |
//! | [`cli`] | `synack lab up`, `down` and `pin-napi`: the library for the shell scripts |
//! | [`ecmp`] | `synack lab --nodes N` |
//!
//! `tests/common` (the root integration tests' harness) is a thin adapter over it.

#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use crate::config::{Config, LabOptions};
use crate::forms::Named;
use crate::tcp::responder::Mode;

pub mod cli;
pub mod clients;
pub mod ecmp;
pub mod endpoint;
pub mod flood;
pub mod netns;

pub use endpoint::{interrupted, Endpoint, EndpointSpec, OnDrop, STOP_TIMEOUT};
pub use flood::{flood, flood_source, syn_frame, FloodResult, FloodTarget};
pub use netns::{TempDir, VethLab, VethSpec};

use clients::{connections, print_connections, ConnResults};
use endpoint::{drop_count, event, offload_peer_program, read_json, read_stats_fresh};
use netns::{ns_mac, ns_snmp};

/// The server side's config (interface `synack-srv`, 198.18.0.1 and 2001:2::1, ports 80
/// http, 7 echo, 9 discard, 13 close); the lab adjusts workers, XDP mode and `ops`.
pub const LAB_CONFIG: &str = include_str!("../config/lab.toml");

/// Server veth end (the name `config/lab.toml` uses).
pub const SERVER_IF: &str = "synack-srv";
/// Client veth end.
pub const CLIENT_IF: &str = "synack-cli";
/// Server addresses (as in `config/lab.toml`).
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Server IPv6 address.
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
/// Client addresses.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Client IPv6 address.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
/// First address of the flood sources (198.19.0.0/16): routed to the client namespace
/// by nobody, owned by nobody, inside the benchmarking block 198.18.0.0/15 (RFC 2544).
pub const FLOOD_NET: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
/// Port the flood targets (the http listener).
pub const FLOOD_PORT: u16 = 80;

/// Prefix of the namespace names; the pid follows, so stale labs can be recognised.
pub(crate) const NS_PREFIX: &str = "synack-lab";
/// Stats file period asked of the endpoint, so that before/after readings are fresh.
pub(crate) const STATS_INTERVAL_MS: u64 = 100;

/// Port of the listener of each mode in `config/lab.toml`, and what the lab's clients do
/// there: discard (9) and echo (7) send data and close client-first, http (80) sends
/// keep-alive requests, then `Connection: close` (the server closes first), close (13)
/// sees the server close right after the handshake.
pub const fn lab_port(mode: Mode) -> u16 {
    match mode {
        Mode::Discard => 9,
        Mode::Echo => 7,
        Mode::Http => 80,
        Mode::Close => 13,
    }
}

/// Mode and address family of connection number `i`: modes round-robin over
/// [`Mode::ALL`], and every fourth round goes over IPv6.
pub fn connection_plan(i: u32) -> (Mode, bool) {
    let mode = Mode::ALL[i as usize % Mode::ALL.len()];
    let v6 = (i / 4) % 4 == 3;
    (mode, v6)
}

/// Build the endpoint's config: `config/lab.toml` with the lab's workers, XDP mode and SYN
/// offload and a fast stats period (the ready and stats files are flags of
/// [`Endpoint::start`]).
pub fn lab_config(opts: &LabOptions) -> Result<Config> {
    let mut cfg = Config::parse_toml(LAB_CONFIG).context("parsing the embedded lab config")?;
    cfg.workers = opts.workers.clone();
    cfg.xdp.mode = opts.xdp_mode;
    cfg.xdp.syn_offload = opts.syn_offload;
    cfg.ops.stats_interval_ms = STATS_INTERVAL_MS;
    cfg.validate()
        .context("the generated lab config is invalid")?;
    Ok(cfg)
}

/// Start `synack run` (this executable) with `cfg` in namespace `ns`, its files under
/// `dir` named by `tag`; stopped with SIGINT when dropped (see [`OnDrop::Interrupt`]).
pub(crate) fn start_endpoint(
    ns: &str,
    cfg: &Config,
    dir: &Path,
    tag: &str,
    stop: &AtomicBool,
) -> Result<Endpoint> {
    let spec = EndpointSpec {
        ns: ns.to_owned(),
        exe: std::env::current_exe().context("finding the synack executable")?,
        dir: dir.to_owned(),
        tag: tag.to_owned(),
        config: toml::to_string(cfg).context("rendering the lab config")?,
        flags: Vec::new(),
        env: Vec::new(),
        on_drop: OnDrop::Interrupt,
    };
    Endpoint::start(&spec, stop)
}

// ---------------------------------------------------------------------------------------
// The run, one function per phase
// ---------------------------------------------------------------------------------------

/// Run the lab: see the module documentation. Needs root.
pub fn run(opts: LabOptions) -> Result<()> {
    if !crate::io::sys::is_root() {
        bail!(
            "synack lab needs root (CAP_NET_ADMIN and CAP_BPF) for network namespaces, XDP \
             and AF_XDP: run it with sudo, or use scripts/lab.sh as root"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut sig_ids = Vec::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        sig_ids.push(
            signal_hook::flag::register(sig, stop.clone())
                .context("installing the SIGINT/SIGTERM handler")?,
        );
    }
    let result = if opts.nodes > 0 {
        ecmp::run(&opts, &stop)
    } else {
        run_inner(&opts, &stop)
    };
    for id in sig_ids {
        signal_hook::low_level::unregister(id);
    }
    result
}

/// The demo: set up, connections, flood, stop, report; every resource is in `demo`, whose
/// guards remove it also when a phase fails.
fn run_inner(opts: &LabOptions, stop: &AtomicBool) -> Result<()> {
    let mut demo = Demo::setup(opts, stop)?;
    let conns = connect_phase(&mut demo, opts, stop)?;
    let flood = flood_phase(&demo, opts, stop)?;
    let end = stop_phase(&mut demo)?;
    let mut problems = report_connections(&conns, &end.last);
    if let Some(f) = &flood {
        problems.extend(report_flood(f, opts));
    }
    problems.extend(report_endpoint(&end, &demo.ep));
    if opts.keep {
        demo.print_kept();
    }
    drop(demo);
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    println!("synack lab: OK");
    Ok(())
}

/// The demo's resources. Fields drop in order: the endpoint first, then the client veth's
/// pass-through XDP program, the namespaces, the files.
struct Demo {
    ep: Endpoint,
    _client_prog: Option<crate::io::bpf::XdpProgram>,
    lab: VethLab,
    _dir: TempDir,
}

impl Demo {
    /// Phase 1: remove stale labs, create the namespaces and the veth pair, start the
    /// endpoint and print where everything is.
    fn setup(opts: &LabOptions, stop: &AtomicBool) -> Result<Demo> {
        netns::remove_stale(NS_PREFIX);
        let pid = std::process::id();
        let dir = TempDir::new(&format!("synack-lab-{pid}"), opts.keep)?;
        let mut spec = VethSpec::named(&format!("{NS_PREFIX}{pid}"));
        spec.client_if = CLIENT_IF.to_owned();
        spec.server_if = SERVER_IF.to_owned();
        spec.queues = opts.workers.len().max(1) as u32;
        spec.keep = opts.keep;
        let lab = VethLab::create(&spec)?;
        interrupted(stop)?;
        let cfg = lab_config(opts)?;
        let client_prog =
            offload_peer_program(opts.syn_offload, opts.xdp_mode, &lab.client_ns, CLIENT_IF)?;
        let ep = start_endpoint(&lab.server_ns, &cfg, &dir.path, "lab", stop)?;
        let first = read_stats_fresh(&ep.stats, SystemTime::now(), stop)?;
        println!(
            "synack lab: server {SERVER_IF} in namespace {} ({SERVER_V4}, {SERVER_V6}), client \
             {CLIENT_IF} in {}; endpoint pid {}, XDP mode {}, workers on CPUs {}",
            lab.server_ns,
            lab.client_ns,
            ep.pid(),
            first["xdp_mode"].as_str().unwrap_or("?"),
            crate::config::format_cpu_list(&opts.workers)
        );
        Ok(Demo {
            ep,
            _client_prog: client_prog,
            lab,
            _dir: dir,
        })
    }

    /// How to enter a kept lab, restart its endpoint and remove it.
    fn print_kept(&self) {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("synack"));
        let (s, c) = (&self.lab.server_ns, &self.lab.client_ns);
        println!(
            "kept: enter with `ip netns exec {s} bash` (server, {SERVER_IF}) or `ip netns exec \
             {c} bash` (client, {CLIENT_IF}); restart the endpoint with `ip netns exec {s} {} \
             run --config {}`; remove with `ip netns del {s}; ip netns del {c}`",
            exe.display(),
            self.ep.config.display(),
        );
    }
}

/// Phase 2: the Linux client connections; the endpoint must still be alive after them.
fn connect_phase(demo: &mut Demo, opts: &LabOptions, stop: &AtomicBool) -> Result<ConnResults> {
    let conns = connections(&demo.lab.client_ns, opts.connections, stop)?;
    interrupted(stop)?;
    if demo.ep.exited().is_some() {
        bail!(
            "the endpoint died during the connections:\n{}",
            demo.ep.log_tail(20)
        );
    }
    Ok(conns)
}

/// What the flood phase measured.
struct FloodPhase {
    sent: FloodResult,
    /// Stats just before and after the flood.
    before: serde_json::Value,
    after: serde_json::Value,
    /// SYN-ACKs the client kernel dropped as not its own (`Ip InAddrErrors`).
    client_in_addr_errors: u64,
}

/// Phase 3: the bounded SYN flood from 198.19.0.0/16, with the stats around it (`None`
/// when `--flood-packets 0`).
fn flood_phase(demo: &Demo, opts: &LabOptions, stop: &AtomicBool) -> Result<Option<FloodPhase>> {
    if opts.flood_packets == 0 {
        return Ok(None);
    }
    let client = &demo.lab.client_ns;
    let before = read_stats_fresh(&demo.ep.stats, SystemTime::now(), stop)?;
    let in_addr_errors = || ns_snmp(client, "snmp", "Ip", "InAddrErrors").unwrap_or(0);
    let errors0 = in_addr_errors();
    let target = FloodTarget {
        ns: client,
        ifname: CLIENT_IF,
        server_mac: ns_mac(&demo.lab.server_ns, SERVER_IF)?,
        dst: SERVER_V4,
        dst_port: FLOOD_PORT,
    };
    let limit = Duration::from_secs(opts.flood_secs);
    let queues = opts.workers.len().max(1) as u32;
    let sent = flood(&target, opts.flood_packets, limit, queues, stop)?;
    interrupted(stop)?;
    // Let the last SYN-ACKs out and one more stats period pass.
    std::thread::sleep(Duration::from_millis(300));
    let after = read_stats_fresh(&demo.ep.stats, SystemTime::now(), stop)?;
    Ok(Some(FloodPhase {
        sent,
        before,
        after,
        client_in_addr_errors: in_addr_errors().saturating_sub(errors0),
    }))
}

/// How the endpoint ended.
struct EndPhase {
    status: ExitStatus,
    stop_time: Duration,
    /// Its last stats.
    last: serde_json::Value,
    /// Its summary log line.
    summary: Option<String>,
}

/// Phase 4: stop the endpoint with SIGINT and read its final stats and summary.
fn stop_phase(demo: &mut Demo) -> Result<EndPhase> {
    let last_seen = demo.ep.stats_now()?;
    let (status, stop_time) = demo.ep.stop(STOP_TIMEOUT)?;
    Ok(EndPhase {
        status,
        stop_time,
        last: read_json(&demo.ep.stats).unwrap_or(last_seen),
        summary: demo.ep.last_log_line("summary"),
    })
}

/// Report the connections; the problems found.
fn report_connections(conns: &ConnResults, last: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    print_connections(conns);
    if conns.failed() > 0 {
        problems.push(format!("{} connections failed", conns.failed()));
    }
    let established = event(last, "established");
    if established < conns.ok() {
        problems.push(format!(
            "the endpoint counted {established} established connections, fewer than the {} \
             clients completed",
            conns.ok()
        ));
    }
    problems
}

/// Sum of `xdp_socket.NAME` over the workers of a stats document.
fn socket_stat(v: &serde_json::Value, name: &str) -> u64 {
    v["workers"].as_array().map_or(0, |ws| {
        ws.iter()
            .map(|w| w["xdp_socket"][name].as_u64().unwrap_or(0))
            .sum()
    })
}

/// Report the flood: sent, redirected, dropped for a full ring, answered (by the workers,
/// and with the SYN offload on by the XDP program: its `syn_acks_sent`).
fn report_flood(f: &FloodPhase, opts: &LabOptions) -> Vec<String> {
    let delta = |name: &str| event(&f.after, name).saturating_sub(event(&f.before, name));
    let xdp = |name: &str| {
        let at = |v: &serde_json::Value| v["xdp_program"][name].as_u64().unwrap_or(0);
        at(&f.after).saturating_sub(at(&f.before))
    };
    let in_xdp = xdp("syn_acks_sent");
    let (answered, syns) = (delta("synack_sent") + in_xdp, delta("syn_received"));
    let redirected = xdp("redirected");
    let by_xdp = if in_xdp > 0 {
        format!(", {in_xdp} of them by the XDP program")
    } else {
        String::new()
    };
    let rx_dropped =
        socket_stat(&f.after, "rx_dropped").saturating_sub(socket_stat(&f.before, "rx_dropped"));
    let secs = f.sent.elapsed.as_secs_f64().max(1e-6);
    println!(
        "SYN flood: {} SYNs sent in {:.2} s ({:.0}/s) from {FLOOD_NET}/16 to \
         {SERVER_V4}:{FLOOD_PORT} (limits {} packets, {} s; TX ring full {} times)",
        f.sent.sent,
        secs,
        f.sent.sent as f64 / secs,
        opts.flood_packets,
        opts.flood_secs,
        f.sent.tx_ring_full
    );
    println!(
        "  server: {redirected} redirected by XDP, {rx_dropped} dropped by the kernel \
         for a full AF_XDP RX ring, {syns} SYNs received, {answered} SYN-ACKs answered \
         ({:.0}/s, {:.1}% of sent{by_xdp}); client kernel dropped {} SYN-ACKs as not-for-me",
        answered as f64 / secs,
        100.0 * answered as f64 / f.sent.sent.max(1) as f64,
        f.client_in_addr_errors
    );
    if f.sent.sent > 0 && answered == 0 {
        return vec!["the SYN flood got no SYN-ACK at all".to_owned()];
    }
    Vec::new()
}

/// One worker of a stats document as the demo prints it.
fn worker_line(w: &serde_json::Value) -> String {
    let e = |name: &str| w["counters"]["events"][name].as_u64().unwrap_or(0);
    format!(
        "cpu{} queue{} busy {:.1}% (rx {} frames, handed off {} out / {} in)",
        w["cpu"],
        w["queue"],
        100.0 * w["busy_fraction"].as_f64().unwrap_or(0.0),
        e("rx_frames"),
        e("handoff_out"),
        e("handoff_in")
    )
}

/// Report cookies, drops, the workers and the exit; a problem if the exit was not clean.
fn report_endpoint(end: &EndPhase, ep: &Endpoint) -> Vec<String> {
    let last = &end.last;
    println!(
        "cookies: ok {}, invalid {}, expired {}",
        event(last, "cookie_ok"),
        drop_count(last, "cookie_invalid"),
        drop_count(last, "cookie_expired")
    );
    let drops: Vec<String> = last["total"]["drops"].as_object().map_or(Vec::new(), |m| {
        m.iter()
            .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    });
    let drops = if drops.is_empty() {
        "none".to_owned()
    } else {
        drops.join(" ")
    };
    println!("drops: {drops}");
    let workers: Vec<String> = last["workers"]
        .as_array()
        .map_or(Vec::new(), |ws| ws.iter().map(worker_line).collect());
    let st = &end.status;
    println!(
        "endpoint: XDP mode {}, {}; handoffs {}; {} connections still in the table \
         (TIME-WAIT); exit {} {:.1} s after SIGINT",
        last["xdp_mode"].as_str().unwrap_or("?"),
        workers.join(", "),
        event(last, "handoff_out"),
        last["active"].as_u64().unwrap_or(0),
        st.code().map_or_else(|| st.to_string(), |c| c.to_string()),
        end.stop_time.as_secs_f64()
    );
    if let Some(s) = &end.summary {
        println!("endpoint log: {}", s.trim());
    }
    if st.success() {
        return Vec::new();
    }
    vec![format!(
        "the endpoint exited with {st} after SIGINT:\n{}",
        ep.log_tail(20)
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::XdpMode;
    use std::net::IpAddr;

    #[test]
    fn lab_config_is_valid_and_keeps_the_listeners() {
        let opts = LabOptions {
            workers: vec![0],
            xdp_mode: XdpMode::Native,
            ..LabOptions::default()
        };
        let cfg = lab_config(&opts).unwrap();
        assert_eq!(cfg.interface, SERVER_IF);
        assert_eq!(
            cfg.addresses,
            vec![IpAddr::V4(SERVER_V4), IpAddr::V6(SERVER_V6)]
        );
        assert_eq!(cfg.xdp.mode, XdpMode::Native);
        for &m in Mode::ALL {
            let l = cfg.listen.iter().find(|l| l.port == lab_port(m)).unwrap();
            assert_eq!(l.mode, m);
        }
        // The rendered TOML is what the child reads: it must round-trip.
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(Config::parse_toml(&text).unwrap(), cfg);
    }

    #[test]
    fn connections_spread_over_modes_and_families() {
        let mut per_mode = [0; 4];
        let mut v6 = 0;
        for i in 0..100 {
            let (m, six) = connection_plan(i);
            per_mode[m as usize] += 1;
            v6 += six as u32;
        }
        assert_eq!(per_mode, [25; 4]);
        assert!(v6 > 0 && v6 < 100);
    }
}
