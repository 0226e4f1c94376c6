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

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use crate::config::{Config, LabOptions};
use crate::forms::Named;
use crate::io::afxdp::{AfXdpConfig, AfXdpPort};
use crate::io::{Port, XdpMode};
use crate::tcp::responder::Mode;
use crate::wire::{SeqNumber, TcpFlags, TcpFrame, TcpOptions, TcpRepr};

pub mod ecmp;

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
/// Longest wait for the endpoint's ready file.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for the endpoint to exit after SIGINT (its drain is 2 s).
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time the connection phase may take before the rest count as failed.
const CONNECT_PHASE: Duration = Duration::from_secs(40);
/// Socket connect, read and write timeout of one client connection.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
/// Client threads driving connections.
const CLIENT_THREADS: usize = 8;
/// HTTP requests on one connection: keep-alive ones, then one with `Connection: close`.
const HTTP_REQUESTS: usize = 4;
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

/// Build the endpoint's config: `config/lab.toml` with the lab's workers and XDP mode, a
/// fast stats period, and the ready and stats files given.
pub fn lab_config(opts: &LabOptions, ready: &Path, stats: &Path) -> Result<Config> {
    let mut cfg = Config::parse_toml(LAB_CONFIG).context("parsing the embedded lab config")?;
    cfg.workers = opts.workers.clone();
    cfg.xdp.mode = opts.xdp_mode;
    cfg.ops.ready_file = Some(ready.to_owned());
    cfg.ops.stats_json = Some(stats.to_owned());
    cfg.ops.stats_interval_ms = STATS_INTERVAL_MS;
    cfg.validate()
        .context("the generated lab config is invalid")?;
    Ok(cfg)
}

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

// ---------------------------------------------------------------------------------------
// Guards
// ---------------------------------------------------------------------------------------

/// Run a command with a time cap; error with its output unless it succeeds.
pub(crate) fn cmd(program: &str, args: &[&str]) -> Result<String> {
    let shown = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{shown}`: is {program} installed?"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill(); // this child's pid only
            let _ = child.wait();
            bail!("`{shown}` timed out");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Network namespaces this process created (and with them their veth pairs), deleted on
/// drop unless kept.
pub(crate) struct NetnsGuard {
    created: Vec<String>,
    keep: bool,
}

impl NetnsGuard {
    /// An empty set; `keep` leaves the namespaces in place on drop.
    pub(crate) fn new(keep: bool) -> NetnsGuard {
        NetnsGuard {
            created: Vec::new(),
            keep,
        }
    }

    /// Create namespace `name` (with `lo` up) and take charge of deleting it.
    pub(crate) fn add(&mut self, name: &str) -> Result<()> {
        cmd("ip", &["netns", "add", name])
            .context("creating a network namespace (needs root and iproute2)")?;
        self.created.push(name.to_owned());
        cmd("ip", &["-n", name, "link", "set", "dev", "lo", "up"])?;
        Ok(())
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for name in self.created.drain(..) {
            if let Err(e) = cmd("ip", &["netns", "del", &name]) {
                eprintln!("synack lab: cleanup: {e:#}");
            }
        }
    }
}

/// The two namespaces (and with them the veth pair). Deleted on drop unless kept.
struct Namespaces {
    client: String,
    server: String,
    _guard: NetnsGuard,
}

impl Namespaces {
    fn create(opts: &LabOptions) -> Result<Namespaces> {
        let pid = std::process::id();
        let (client, server) = (format!("{NS_PREFIX}{pid}-c"), format!("{NS_PREFIX}{pid}-s"));
        let mut guard = NetnsGuard::new(opts.keep);
        guard.add(&client)?;
        guard.add(&server)?;
        let ns = Namespaces {
            client,
            server,
            _guard: guard,
        };
        let q = opts.workers.len().max(1).to_string();
        let mut add: Vec<&str> = vec!["link", "add", CLIENT_IF, "netns", &ns.client];
        let queues = ["numrxqueues", &q, "numtxqueues", &q];
        if opts.workers.len() > 1 {
            add.extend(queues);
        }
        add.extend([
            "type", "veth", "peer", "name", SERVER_IF, "netns", &ns.server,
        ]);
        if opts.workers.len() > 1 {
            add.extend(queues);
        }
        cmd("ip", &add).context("creating the veth pair")?;
        for (name, ifname, v4, v6) in [
            (&ns.client, CLIENT_IF, CLIENT_V4, CLIENT_V6),
            (&ns.server, SERVER_IF, SERVER_V4, SERVER_V6),
        ] {
            // Full checksums on both ends (no partial TX checksums for AF_XDP to see, no
            // GSO frames larger than a UMEM frame), and software verification on RX.
            cmd(
                "ip",
                &[
                    "netns", "exec", name, "ethtool", "-K", ifname, "tx", "off", "rx", "off",
                ],
            )
            .context("turning checksum offload off (is ethtool installed?)")?;
            let v4 = format!("{v4}/24");
            let v6 = format!("{v6}/64");
            cmd("ip", &["-n", name, "addr", "add", &v4, "dev", ifname])?;
            cmd(
                "ip",
                &["-n", name, "-6", "addr", "add", &v6, "dev", ifname, "nodad"],
            )?;
            cmd("ip", &["-n", name, "link", "set", "dev", ifname, "up"])?;
        }
        // Static neighbour entries for the server in the client namespace. Measured here:
        // in the first second or so after the link comes up, the server kernel leaves the
        // client's first neighbour solicitation for 2001:2::1 unanswered, so the first IPv6
        // connections waited for the one-second NS retransmission (in native and generic
        // mode alike). Resolution is kernel-to-kernel business; the lab measures the endpoint.
        let mac = ns_mac(&ns.server, SERVER_IF)?;
        let mac = mac.map(|b| format!("{b:02x}")).join(":");
        for addr in [SERVER_V4.to_string(), SERVER_V6.to_string()] {
            cmd(
                "ip",
                &[
                    "-n",
                    &ns.client,
                    "neigh",
                    "replace",
                    &addr,
                    "lladdr",
                    &mac,
                    "dev",
                    CLIENT_IF,
                    "nud",
                    "permanent",
                ],
            )
            .context("adding the server's neighbour entries in the client namespace")?;
        }
        Ok(ns)
    }
}

/// Delete namespaces of earlier labs whose process is gone (killed with SIGKILL).
pub(crate) fn remove_stale_labs() {
    let Ok(list) = cmd("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = cmd("ip", &["netns", "del", name]);
        }
    }
}

/// A private temporary directory, removed on drop unless kept.
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub(crate) fn new(keep: bool) -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("synack-lab-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path, keep })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Send a signal to one process, by pid, with `kill(1)`.
pub(crate) fn signal(pid: u32, sig: &str) -> Result<()> {
    cmd("kill", &[&format!("-{sig}"), &pid.to_string()]).map(|_| ())
}

/// The endpoint process. On drop (failure paths) it gets SIGINT, then SIGKILL after
/// [`STOP_TIMEOUT`].
pub(crate) struct Endpoint {
    child: Option<Child>,
    pub(crate) log: PathBuf,
    /// Its ready file.
    pub(crate) ready: PathBuf,
    /// Its stats JSON file.
    pub(crate) stats: PathBuf,
}

impl Endpoint {
    /// Write `cfg` to `dir/{tag}.toml` and start `synack run` with it in namespace `ns`,
    /// with ready file, stats JSON and log under `dir`; wait (bounded by
    /// [`READY_TIMEOUT`] and `stop`) until it is ready.
    pub(crate) fn start(
        ns: &str,
        cfg: &Config,
        dir: &Path,
        tag: &str,
        stop: &AtomicBool,
    ) -> Result<Endpoint> {
        let ready = dir.join(format!("{tag}.ready"));
        let stats = dir.join(format!("{tag}.stats.json"));
        let mut cfg = cfg.clone();
        cfg.ops.ready_file = Some(ready.clone());
        cfg.ops.stats_json = Some(stats.clone());
        let cfg_path = dir.join(format!("{tag}.toml"));
        std::fs::write(
            &cfg_path,
            toml::to_string(&cfg).context("rendering the lab config")?,
        )
        .with_context(|| format!("writing {}", cfg_path.display()))?;
        let exe = std::env::current_exe().context("finding the synack executable")?;
        let log = dir.join(format!("{tag}.log"));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .arg("run")
            .arg("--config")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting `synack run` in namespace {ns}"))?;
        let mut ep = Endpoint {
            child: Some(child),
            log,
            ready,
            stats,
        };
        // Wait for the ready file, bounded; the endpoint may also fail to start.
        let t0 = Instant::now();
        while !ep.ready.exists() {
            interrupted(stop)?;
            if let Some(st) = ep.exited() {
                bail!(
                    "the endpoint in {ns} exited during start-up ({st}):\n{}",
                    ep.log_tail(20)
                );
            }
            if t0.elapsed() > READY_TIMEOUT {
                bail!(
                    "the endpoint in {ns} was not ready after {} s:\n{}",
                    READY_TIMEOUT.as_secs(),
                    ep.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(ep)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Exit status if it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGINT, then wait up to `timeout`; SIGKILL if it is still running.
    pub(crate) fn stop(&mut self, timeout: Duration) -> Result<(ExitStatus, Duration)> {
        let Some(mut child) = self.child.take() else {
            bail!("the endpoint was already stopped");
        };
        let t0 = Instant::now();
        if child.try_wait()?.is_none() {
            signal(child.id(), "INT")?;
        }
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok((st, t0.elapsed()));
            }
            if t0.elapsed() >= timeout {
                let _ = child.kill(); // SIGKILL, this pid only
                let _ = child.wait();
                bail!(
                    "the endpoint (pid {}) did not exit within {} s of SIGINT; killed",
                    child.id(),
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last `n` lines of its log.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop(STOP_TIMEOUT);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// Per-mode results of the connection phase.
#[derive(Debug, Default, Clone)]
struct ModeResult {
    ok: u64,
    failed: u64,
    errors: Vec<String>,
}

/// What the connection phase did.
#[derive(Debug, Default)]
struct ConnResults {
    modes: [ModeResult; Mode::ALL.len()],
    v4: u64,
    v6: u64,
    http_requests: u64,
    elapsed: Duration,
    /// The slowest connection (a lost segment shows as about 200 ms or one second: Linux's
    /// minimum and initial RTO).
    slowest: Duration,
    /// Which connection that was, and how long its connect() took.
    slowest_what: String,
}

impl ConnResults {
    fn ok(&self) -> u64 {
        self.modes.iter().map(|m| m.ok).sum()
    }
    fn failed(&self) -> u64 {
        self.modes.iter().map(|m| m.failed).sum()
    }
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

pub(crate) fn interrupted(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted; cleaning up");
    }
    Ok(())
}

fn run_inner(opts: &LabOptions, stop: &Arc<AtomicBool>) -> Result<()> {
    remove_stale_labs();
    let dir = TempDir::new(opts.keep)?;
    let ns = Namespaces::create(opts)?;
    interrupted(stop)?;
    let cfg = lab_config(opts, &dir.path.join("ready"), &dir.path.join("stats.json"))?;
    let mut ep = Endpoint::start(&ns.server, &cfg, &dir.path, "lab", stop)?;
    let stats = ep.stats.clone();
    let cfg_path = dir.path.join("lab.toml");
    let exe = std::env::current_exe().context("finding the synack executable")?;
    let first = read_stats_fresh(&stats, SystemTime::now(), stop)?;
    let xdp_mode = first["xdp_mode"].as_str().unwrap_or("?").to_owned();
    println!(
        "synack lab: server {} in namespace {} ({SERVER_V4}, {SERVER_V6}), client {} in {}; \
         endpoint pid {}, XDP mode {xdp_mode}, workers on CPUs {}",
        SERVER_IF,
        ns.server,
        CLIENT_IF,
        ns.client,
        ep.pid(),
        crate::config::format_cpu_list(&opts.workers)
    );

    // Connections.
    let conns = connections(&ns.client, opts.connections, stop)?;
    interrupted(stop)?;
    let before = read_stats_fresh(&stats, SystemTime::now(), stop)?;
    if ep.exited().is_some() {
        bail!(
            "the endpoint died during the connections:\n{}",
            ep.log_tail(20)
        );
    }

    // SYN flood.
    let client_in_addr_errors0 = ns_snmp(&ns.client, "Ip", "InAddrErrors").unwrap_or(0);
    let flood = if opts.flood_packets > 0 {
        let server_mac = ns_mac(&ns.server, SERVER_IF)?;
        flood(
            &FloodTarget {
                ns: &ns.client,
                ifname: CLIENT_IF,
                server_mac,
                dst: SERVER_V4,
                dst_port: FLOOD_PORT,
            },
            opts.flood_packets,
            Duration::from_secs(opts.flood_secs),
            opts.workers.len().max(1) as u32,
            stop,
        )?
    } else {
        FloodResult::default()
    };
    interrupted(stop)?;
    // Let the last SYN-ACKs out and one more stats period pass.
    std::thread::sleep(Duration::from_millis(300));
    let after = read_stats_fresh(&stats, SystemTime::now(), stop)?;
    let client_in_addr_errors =
        ns_snmp(&ns.client, "Ip", "InAddrErrors").unwrap_or(0) - client_in_addr_errors0;

    // Stop the endpoint and read its final stats.
    let (status, stop_time) = ep.stop(STOP_TIMEOUT)?;
    let last = read_json(&stats).unwrap_or(after.clone());
    let summary = std::fs::read_to_string(&ep.log)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| l.contains("summary"))
        .map(str::to_owned);

    // Report.
    let mut problems = Vec::new();
    print_connections(&conns);
    if conns.failed() > 0 {
        problems.push(format!("{} connections failed", conns.failed()));
    }
    let ev = |v: &serde_json::Value, name: &str| v["total"]["events"][name].as_u64().unwrap_or(0);
    let dr = |v: &serde_json::Value, name: &str| v["total"]["drops"][name].as_u64().unwrap_or(0);
    let established = ev(&last, "established");
    if established < conns.ok() {
        problems.push(format!(
            "the endpoint counted {established} established connections, fewer than the {} \
             clients completed",
            conns.ok()
        ));
    }
    if opts.flood_packets > 0 {
        let answered = ev(&after, "synack_sent").saturating_sub(ev(&before, "synack_sent"));
        let syns = ev(&after, "syn_received").saturating_sub(ev(&before, "syn_received"));
        let redirected = after["xdp_program"]["redirected"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before["xdp_program"]["redirected"].as_u64().unwrap_or(0));
        let sock = |v: &serde_json::Value, name: &str| -> u64 {
            v["workers"]
                .as_array()
                .map(|ws| {
                    ws.iter()
                        .map(|w| w["xdp_socket"][name].as_u64().unwrap_or(0))
                        .sum()
                })
                .unwrap_or(0)
        };
        let rx_dropped = sock(&after, "rx_dropped").saturating_sub(sock(&before, "rx_dropped"));
        let secs = flood.elapsed.as_secs_f64().max(1e-6);
        println!(
            "SYN flood: {} SYNs sent in {:.2} s ({:.0}/s) from {FLOOD_NET}/16 to \
             {SERVER_V4}:{FLOOD_PORT} (limits {} packets, {} s; TX ring full {} times)",
            flood.sent,
            secs,
            flood.sent as f64 / secs,
            opts.flood_packets,
            opts.flood_secs,
            flood.tx_ring_full
        );
        println!(
            "  server: {redirected} redirected by XDP, {rx_dropped} dropped by the kernel \
             for a full AF_XDP RX ring, {syns} SYNs received, {answered} SYN-ACKs answered \
             ({:.0}/s, {:.1}% of sent); client kernel dropped {} SYN-ACKs as not-for-me",
            answered as f64 / secs,
            100.0 * answered as f64 / flood.sent.max(1) as f64,
            client_in_addr_errors
        );
        if flood.sent > 0 && answered == 0 {
            problems.push("the SYN flood got no SYN-ACK at all".to_owned());
        }
    }
    println!(
        "cookies: ok {}, invalid {}, expired {}",
        ev(&last, "cookie_ok"),
        dr(&last, "cookie_invalid"),
        dr(&last, "cookie_expired")
    );
    let drops: Vec<String> = last["total"]["drops"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "drops: {}",
        if drops.is_empty() {
            "none".to_owned()
        } else {
            drops.join(" ")
        }
    );
    let workers: Vec<String> = last["workers"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| {
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
                })
                .collect()
        })
        .unwrap_or_default();
    println!(
        "endpoint: XDP mode {}, {}; handoffs {}; {} connections still in the table \
         (TIME-WAIT); exit {} {:.1} s after SIGINT",
        last["xdp_mode"].as_str().unwrap_or("?"),
        workers.join(", "),
        ev(&last, "handoff_out"),
        last["active"].as_u64().unwrap_or(0),
        status
            .code()
            .map_or_else(|| status.to_string(), |c| c.to_string()),
        stop_time.as_secs_f64()
    );
    if let Some(s) = summary {
        println!("endpoint log: {}", s.trim());
    }
    if !status.success() {
        problems.push(format!(
            "the endpoint exited with {status} after SIGINT:\n{}",
            ep.log_tail(20)
        ));
    }
    if opts.keep {
        println!(
            "kept: enter with `ip netns exec {} bash` (server, {SERVER_IF}) or `ip netns exec \
             {} bash` (client, {CLIENT_IF}); restart the endpoint with `ip netns exec {} {} \
             run --config {}`; remove with `ip netns del {}; ip netns del {}`",
            ns.server,
            ns.client,
            ns.server,
            exe.display(),
            cfg_path.display(),
            ns.server,
            ns.client
        );
    }
    drop(ep);
    drop(ns);
    drop(dir);
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    println!("synack lab: OK");
    Ok(())
}

fn print_connections(c: &ConnResults) {
    let total = c.ok() + c.failed();
    let secs = c.elapsed.as_secs_f64().max(1e-6);
    println!(
        "connections: {} completed, {} failed, in {:.2} s ({:.0}/s; IPv4 {}, IPv6 {}; \
         slowest {:.0} ms)",
        c.ok(),
        c.failed(),
        secs,
        total as f64 / secs,
        c.v4,
        c.v6,
        c.slowest.as_secs_f64() * 1000.0
    );
    if c.slowest > Duration::from_millis(150) {
        println!("  slowest: {}", c.slowest_what);
    }
    for (&mode, r) in Mode::ALL.iter().zip(c.modes.iter()) {
        let extra = match mode {
            Mode::Http => format!(
                " ({} requests, {HTTP_REQUESTS} per connection)",
                c.http_requests
            ),
            Mode::Discard | Mode::Echo => " (client closes first)".to_owned(),
            Mode::Close => " (server closes first)".to_owned(),
        };
        println!(
            "  {:<8} port {:<3} {:>6} ok {:>6} failed{extra}",
            mode.name(),
            lab_port(mode),
            r.ok,
            r.failed
        );
        for e in &r.errors {
            println!("    e.g. {e}");
        }
    }
}

/// Read the stats JSON once it has been rewritten after `since`, bounded.
pub(crate) fn read_stats_fresh(
    path: &Path,
    since: SystemTime,
    stop: &AtomicBool,
) -> Result<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        interrupted(stop)?;
        let fresh = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > since);
        if fresh {
            if let Ok(v) = read_json(path) {
                return Ok(v);
            }
        }
        if t0.elapsed() > Duration::from_secs(5) {
            bail!(
                "the endpoint's stats file {} was not rewritten within 5 s",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read(path)?;
    Ok(serde_json::from_slice(&text)?)
}

/// The MAC address of `ifname` in namespace `ns`.
pub(crate) fn ns_mac(ns: &str, ifname: &str) -> Result<[u8; 6]> {
    let text = cmd(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "cat",
            &format!("/sys/class/net/{ifname}/address"),
        ],
    )?;
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.trim().split(':').collect();
    anyhow::ensure!(parts.len() == 6, "bad MAC {text:?} of {ifname}");
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).with_context(|| format!("bad MAC {text:?}"))?;
    }
    Ok(mac)
}

/// A kernel SNMP counter of namespace `ns` (`/proc/net/snmp`).
fn ns_snmp(ns: &str, proto: &str, field: &str) -> Option<u64> {
    let text = cmd("ip", &["netns", "exec", ns, "cat", "/proc/net/snmp"]).ok()?;
    let prefix = format!("{proto}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == field)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------

/// Drive `n` connections from threads inside the client namespace.
fn connections(client_ns: &str, n: u32, stop: &AtomicBool) -> Result<ConnResults> {
    let next = AtomicU64::new(0);
    let results = Mutex::new(ConnResults::default());
    let deadline = Instant::now() + CONNECT_PHASE;
    let t0 = Instant::now();
    let threads = CLIENT_THREADS.min(n as usize).max(1);
    let joined = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> std::io::Result<()> {
                    crate::io::sys::enter_netns(client_ns)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= u64::from(n) {
                            return Ok(());
                        }
                        let (mode, v6) = connection_plan(i as u32);
                        let started = Instant::now();
                        let r = if stop.load(Ordering::Relaxed) {
                            Err("interrupted".to_owned())
                        } else if Instant::now() > deadline {
                            Err(format!(
                                "not tried: the connection phase ran over {} s",
                                CONNECT_PHASE.as_secs()
                            ))
                        } else {
                            one_connection(mode, v6, i)
                        };
                        let took = started.elapsed();
                        let mut res = results.lock().unwrap_or_else(|p| p.into_inner());
                        if took > res.slowest {
                            res.slowest = took;
                            let fam = if v6 { "IPv6" } else { "IPv4" };
                            res.slowest_what = match &r {
                                Ok((_, connect)) => format!(
                                    "connection {i}, {} over {fam}, connect() {:.0} ms",
                                    mode.name(),
                                    connect.as_secs_f64() * 1000.0
                                ),
                                Err(_) => {
                                    format!("connection {i}, {} over {fam}, failed", mode.name())
                                }
                            };
                        }
                        let m = &mut res.modes[mode as usize];
                        match r {
                            Ok((requests, _)) => {
                                m.ok += 1;
                                res.http_requests += requests;
                            }
                            Err(e) => {
                                m.failed += 1;
                                if m.errors.len() < 3 {
                                    let fam = if v6 { "IPv6" } else { "IPv4" };
                                    m.errors.push(format!("connection {i} ({fam}): {e}"));
                                }
                            }
                        }
                        if v6 {
                            res.v6 += 1;
                        } else {
                            res.v4 += 1;
                        }
                    }
                })
            })
            .collect();
        join_clients(handles)
    });
    joined?;
    let mut res = results.into_inner().unwrap_or_else(|p| p.into_inner());
    res.elapsed = t0.elapsed();
    Ok(res)
}

/// Join all the client threads of a lab phase; the first error any of them returned (or
/// a panic), with the context every phase gives it.
pub(crate) fn join_clients(
    handles: Vec<std::thread::ScopedJoinHandle<'_, std::io::Result<()>>>,
) -> Result<()> {
    // Every thread is joined (a panic is an error here, not the scope's), then the first
    // error is returned.
    let results: Vec<std::io::Result<()>> = handles
        .into_iter()
        .map(|h| match h.join() {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::other("a client thread panicked")),
        })
        .collect();
    results
        .into_iter()
        .collect::<std::io::Result<()>>()
        .context("client thread in the client namespace")
}

/// Bytes of payload for connection `i`: a pattern of varying length (1..=3000).
fn payload(i: u64) -> Vec<u8> {
    let len = 1 + (i.wrapping_mul(2654435761) % 3000) as usize;
    (0..len).map(|k| (k as u64 ^ i) as u8).collect()
}

/// One client connection in `mode`. Returns the HTTP requests answered and how long
/// connect() took.
fn one_connection(mode: Mode, v6: bool, i: u64) -> std::result::Result<(u64, Duration), String> {
    let t0 = Instant::now();
    converse(mode, v6, i, &t0)
}

/// The body of [`one_connection`].
fn converse(
    mode: Mode,
    v6: bool,
    i: u64,
    t0: &Instant,
) -> std::result::Result<(u64, Duration), String> {
    let ip: IpAddr = if v6 {
        SERVER_V6.into()
    } else {
        SERVER_V4.into()
    };
    let addr = SocketAddr::new(ip, lab_port(mode));
    let mut s =
        TcpStream::connect_timeout(&addr, SOCKET_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    let connect = t0.elapsed();
    s.set_read_timeout(Some(SOCKET_TIMEOUT))
        .and_then(|_| s.set_write_timeout(Some(SOCKET_TIMEOUT)))
        .and_then(|_| s.set_nodelay(true))
        .map_err(|e| format!("socket options: {e}"))?;
    match mode {
        Mode::Discard => {
            s.write_all(&payload(i)).map_err(|e| format!("send: {e}"))?;
            s.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            expect_eof(&mut s)?;
            Ok((0, connect))
        }
        Mode::Echo => {
            let data = payload(i);
            s.write_all(&data).map_err(|e| format!("send: {e}"))?;
            let mut back = vec![0u8; data.len()];
            s.read_exact(&mut back)
                .map_err(|e| format!("reading the echo of {} bytes: {e}", data.len()))?;
            if back != data {
                return Err(format!("the echo of {} bytes differs", data.len()));
            }
            s.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            expect_eof(&mut s)?;
            Ok((0, connect))
        }
        Mode::Http => {
            let mut pending = Vec::new();
            for r in 0..HTTP_REQUESTS {
                let last = r + 1 == HTTP_REQUESTS;
                let req = format!(
                    "GET /lab/{i}/{r} HTTP/1.1\r\nHost: {ip}\r\nUser-Agent: synack-lab\r\n{}\r\n",
                    if last { "Connection: close\r\n" } else { "" }
                );
                s.write_all(req.as_bytes())
                    .map_err(|e| format!("request {r}: {e}"))?;
                let (head, _) = read_http_response(&mut s, &mut pending)
                    .map_err(|e| format!("response {r}: {e}"))?;
                let want = if last { "close" } else { "keep-alive" };
                if !head
                    .to_ascii_lowercase()
                    .contains(&format!("connection: {want}"))
                {
                    return Err(format!("response {r} lacks `Connection: {want}`: {head:?}"));
                }
            }
            if !pending.is_empty() {
                return Err(format!("{} bytes after the last response", pending.len()));
            }
            // Connection: close: the server closes first.
            expect_eof(&mut s)?;
            Ok((HTTP_REQUESTS as u64, connect))
        }
        Mode::Close => {
            expect_eof(&mut s)?;
            Ok((0, connect))
        }
    }
}

/// Read until the peer's FIN; any data before it is an error.
pub(crate) fn expect_eof(s: &mut TcpStream) -> std::result::Result<(), String> {
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{n} unexpected bytes instead of the server's FIN")),
        Err(e) => Err(format!("waiting for the server's FIN: {e}")),
    }
}

/// Read one HTTP response (head and `Content-Length` body); `pending` keeps bytes read
/// beyond it. Returns the head and the body; the status must be 200.
fn read_http_response(
    s: &mut TcpStream,
    pending: &mut Vec<u8>,
) -> std::result::Result<(String, Vec<u8>), String> {
    let mut buf = [0u8; 2048];
    let head_end = loop {
        if let Some(p) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if pending.len() > 16384 {
            return Err("head longer than 16 KiB".to_owned());
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "connection closed after {} bytes of head",
                pending.len()
            ));
        }
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("status line: {:?}", head.lines().next()));
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    while pending.len() < head_end + len {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed inside the body".to_owned());
        }
        pending.extend_from_slice(&buf[..n]);
    }
    let body = pending[head_end..head_end + len].to_vec();
    pending.drain(..head_end + len);
    Ok((head, body))
}

// ---------------------------------------------------------------------------------------
// SYN flood
// ---------------------------------------------------------------------------------------

/// Send at most `packets` SYNs in at most `limit` from AF_XDP sockets (TX only, no XDP
/// program) on the client veth's `queues` queues, round-robin, to the server's MAC.
/// A SYN flood over AF_XDP TX, bounded by `packets` and `limit` (and `stop`), spread
/// over `queues` TX queues in batches of 64.
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
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
        u32::from_le_bytes(b)
    };
    std::thread::scope(|s| {
        s.spawn(|| -> Result<FloodResult> {
            crate::io::sys::enter_netns(client_ns)
                .with_context(|| format!("entering namespace {client_ns}"))?;
            let cfg = AfXdpConfig {
                frame_size: 2048,
                frame_count: 4096,
                ring_size: 2048,
                busy_poll: false,
                mode: XdpMode::Generic,
                zerocopy: crate::io::ZeroCopy::Auto,
            };
            let mut ports = Vec::new();
            for q in 0..queues {
                let p = AfXdpPort::open(target.ifname, q, &cfg)
                    .with_context(|| format!("opening the flood's AF_XDP socket on queue {q}"))?;
                let free = p.free_frames();
                ports.push((p, free));
            }
            let t0 = Instant::now();
            let mut sent = 0u64;
            let mut rng = seed | 1;
            while sent < packets && t0.elapsed() < limit && !stop.load(Ordering::Relaxed) {
                let mut queued = 0;
                for (port, _) in ports.iter_mut() {
                    let mut batch = 0;
                    while batch < 64 && sent < packets {
                        let Some(addr) = port.alloc_tx() else { break };
                        let (src, sport) = flood_source(sent);
                        // xorshift32: a different ISN per SYN.
                        rng ^= rng << 13;
                        rng ^= rng >> 17;
                        rng ^= rng << 5;
                        let len = syn_frame(
                            port.buffer(addr),
                            client_mac,
                            server_mac,
                            src,
                            target.dst,
                            sport,
                            target.dst_port,
                            rng,
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
    use crate::wire::{EtherType, EthernetFrame, Ipv4Packet, Ipv4Repr, TcpPacket};

    #[test]
    fn lab_config_is_valid_and_keeps_the_listeners() {
        let opts = LabOptions {
            workers: vec![0],
            xdp_mode: XdpMode::Native,
            ..LabOptions::default()
        };
        let cfg = lab_config(&opts, Path::new("/tmp/r"), Path::new("/tmp/s.json")).unwrap();
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
