//! `synack lab --nodes N`: several synack nodes behind the kernel's own ECMP routing.
//!
//! ```text
//!  client ns            router ns                              node ns 0..N-1
//!  ecmp-c 198.18.1.2 ── ecmp-rc 198.18.1.1                    ┌ ecmp-s0 198.18.16.2  synack run
//!   Linux sockets,       route 198.18.200.1/32 nhid 1000 ────┼ ecmp-s1 198.18.17.2  synack run
//!   synack gen           (resilient group over ecmp-r0..)     └ ...
//!                        fib_multipath_hash_policy = 1 (L4)
//! ```
//!
//! Every node runs `synack run` on the same service address (198.18.200.1 and
//! 2001:2:0:200::1, owned by no kernel) with the same `tcp.cookie_secret`. The router
//! namespace forwards with a nexthop group of type `resilient` (one nexthop per node,
//! IPv4 and IPv6 groups), hashing flows on the 5-tuple (`fib_multipath_hash_policy = 1`).
//! [`run`] measures three things:
//!
//! - **spread**: connections per node for Linux clients and for `synack gen`, each node
//!   within ±15 % of 1/N;
//! - **route churn**: a thread in the router flips the service route between single
//!   nodes and the group several hundred times a second while connections open. With one
//!   secret every connection that opens and closes without data completes (each segment
//!   before data still validates as a cookie on any node); the same run with a different
//!   secret per node is the control, and connections that carry data are counted too;
//! - **node loss**: connections are held open, one node is stopped and its nexthops are
//!   removed; the resilient group keeps the buckets of the other nodes, so only the
//!   stopped node's connections fail.
//!
//! Everything is bounded in connections and seconds; namespaces, processes and files sit
//! in the guards of the parent module and go away also on failure and Ctrl-C.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use super::clients::{expect_eof, join_clients, read_http_response};
use super::endpoint::{read_json, read_stats_fresh};
use super::netns::{
    ip_line as ipl, ip_n as ip, link_up, neigh, ns_exec as exec, ns_mac, remove_stale, veth,
    NetnsGuard, TempDir,
};
use super::{
    interrupted, start_endpoint, Endpoint, LAB_CONFIG, NS_PREFIX, STATS_INTERVAL_MS, STOP_TIMEOUT,
};
use crate::config::{Config, LabOptions};
use crate::wire::format_mac;

/// The service address every node serves (no kernel owns it).
pub const SERVICE_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 1);
/// The IPv6 service address (inside 2001:2::/48).
pub const SERVICE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0x200, 0, 0, 0, 1);
/// Client address on the client–router link (198.18.1.0/24).
const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// Router address on the client–router link.
const ROUTER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// Client IPv6 address (2001:2:0:1::/64).
const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2);
/// Router IPv6 address on the client link.
const ROUTER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
/// Sources of `synack gen` (routed back to the client by the router).
const GEN_SOURCES: &str = "198.19.0.0/24";
/// Nexthop id of the IPv4 group; node i's nexthop is `1 + i`.
const GROUP_V4: u32 = 1000;
/// Nexthop id of the IPv6 group; node i's nexthop is `101 + i`.
const GROUP_V6: u32 = 1100;
/// Buckets of each resilient group.
const BUCKETS: u32 = 128;
/// How long one route state lasts during churn.
const FLIP_PERIOD: Duration = Duration::from_millis(1);
/// Socket timeouts of the lab's client connections.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(4);
/// Longest a connection phase may take; the rest count as not tried (failed).
const PHASE_LIMIT: Duration = Duration::from_secs(30);
/// Client threads.
const THREADS: usize = 16;
/// Connections held per node across the node loss.
const HELD_PER_NODE: usize = 32;
/// Bytes each data connection sends and reads back (echo).
const DATA_BYTES: usize = 200;

/// Node `i`'s link addresses: router side, node side (IPv4 198.18.(16+i).0/24, IPv6
/// 2001:2:0:(16+i)::/64).
fn node_link(i: u32) -> (Ipv4Addr, Ipv4Addr, Ipv6Addr, Ipv6Addr) {
    let o = 16 + i as u8;
    let s = 0x10 + i as u16;
    (
        Ipv4Addr::new(198, 18, o, 1),
        Ipv4Addr::new(198, 18, o, 2),
        Ipv6Addr::new(0x2001, 2, 0, s, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 2, 0, s, 0, 0, 0, 2),
    )
}

/// The lab's namespaces and links.
struct Topology {
    client: String,
    router: String,
    nodes: Vec<String>,
    /// MAC of the router's client-side interface (the target MAC of `synack gen`).
    router_mac: [u8; 6],
    _guard: NetnsGuard,
}

/// Forwarding, the L4 multipath hash, and no reverse-path filter in the router.
fn router_sysctls(router: &str) -> Result<()> {
    for kv in [
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        // L4 hash: each TCP flow has its own path (the default hashes addresses only).
        "net.ipv4.fib_multipath_hash_policy=1",
        "net.ipv6.fib_multipath_hash_policy=1",
        // Replies from the service address come back on any node link.
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ] {
        exec(router, &["sysctl", "-qw", kv])
            .with_context(|| format!("setting {kv} in the router namespace"))?;
    }
    Ok(())
}

/// Node `i`: its veth to the router, addresses, permanent neighbours both ways, and its
/// IPv4 and IPv6 nexthops (`1 + i`, `101 + i`) in the router.
fn add_node(router: &str, ns: &str, i: u32) -> Result<()> {
    let (rif, sif) = node_ifs(i);
    let (r4, s4, r6, s6) = node_link(i);
    veth(router, &rif, ns, &sif, 1)?;
    exec(
        router,
        &["sysctl", "-qw", &format!("net.ipv4.conf.{rif}.rp_filter=0")],
    )?;
    link_up(router, &rif, r4, r6)?;
    link_up(ns, &sif, s4, s6)?;
    let mac = ns_mac(ns, &sif)?;
    neigh(router, s4.into(), mac, &rif)?;
    neigh(router, s6.into(), mac, &rif)?;
    let rmac = ns_mac(router, &rif)?;
    neigh(ns, r4.into(), rmac, &sif)?;
    neigh(ns, r6.into(), rmac, &sif)?;
    ipl(
        router,
        &format!("nexthop add id {} via {s4} dev {rif}", 1 + i),
    )?;
    ipl(
        router,
        &format!("nexthop add id {} via {s6} dev {rif}", 101 + i),
    )?;
    Ok(())
}

/// Router side interface of node `i`, and the node's own.
fn node_ifs(i: u32) -> (String, String) {
    (format!("ecmp-r{i}"), format!("ecmp-s{i}"))
}

impl Topology {
    /// Build the namespaces, links, nexthops, groups and routes.
    fn create(nodes: u32, keep: bool) -> Result<Topology> {
        let pid = std::process::id();
        let mut guard = NetnsGuard::new(keep);
        let client = format!("{NS_PREFIX}{pid}-c");
        let router = format!("{NS_PREFIX}{pid}-r");
        guard.add(&client)?;
        guard.add(&router)?;
        veth(&client, "ecmp-c", &router, "ecmp-rc", 1)?;
        link_up(&client, "ecmp-c", CLIENT_V4, CLIENT_V6)?;
        link_up(&router, "ecmp-rc", ROUTER_V4, ROUTER_V6)?;
        let router_mac = ns_mac(&router, "ecmp-rc")?;
        let client_mac = ns_mac(&client, "ecmp-c")?;
        neigh(&client, ROUTER_V4.into(), router_mac, "ecmp-c")?;
        neigh(&client, ROUTER_V6.into(), router_mac, "ecmp-c")?;
        neigh(&router, CLIENT_V4.into(), client_mac, "ecmp-rc")?;
        neigh(&router, CLIENT_V6.into(), client_mac, "ecmp-rc")?;
        ipl(&client, &format!("route add default via {ROUTER_V4}"))?;
        ipl(&client, &format!("-6 route add default via {ROUTER_V6}"))?;
        router_sysctls(&router)?;
        let mut names = Vec::new();
        for i in 0..nodes {
            let ns = format!("{NS_PREFIX}{pid}-n{i}");
            guard.add(&ns)?;
            add_node(&router, &ns, i)?;
            names.push(ns);
        }
        for (group, first) in [(GROUP_V4, 1), (GROUP_V6, 101)] {
            let members: Vec<String> = (0..nodes).map(|i| (first + i).to_string()).collect();
            let members = members.join("/");
            ipl(
                &router,
                &format!("nexthop add id {group} group {members} type resilient buckets {BUCKETS}"),
            )
            .context("adding the resilient nexthop group (needs Linux 5.13 or later)")?;
        }
        route(&router, GROUP_V4, GROUP_V6)?;
        ipl(&router, &format!("route add {GEN_SOURCES} via {CLIENT_V4}"))?;
        Ok(Topology {
            client,
            router,
            nodes: names,
            router_mac,
            _guard: guard,
        })
    }
}

/// Point the service routes at nexthop (group) `v4` and `v6`.
fn route(router: &str, v4: u32, v6: u32) -> Result<()> {
    let (a4, a6) = (format!("{SERVICE_V4}/32"), format!("{SERVICE_V6}/128"));
    ip(router, &["route", "replace", &a4, "nhid", &v4.to_string()])?;
    ip(
        router,
        &["-6", "route", "replace", &a6, "nhid", &v6.to_string()],
    )
    .map(|_| ())
}

/// A random 16-byte cookie secret.
fn secret() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    Ok(b)
}

/// The running nodes.
struct Nodes {
    eps: Vec<Option<Endpoint>>,
}

impl Nodes {
    /// Start `synack run` in every node namespace, node `i` with `secrets[i]`, serving
    /// `node i` as its HTTP body (so a client can tell which node answered).
    fn start(
        topo: &Topology,
        opts: &LabOptions,
        dir: &TempDir,
        secrets: &[[u8; 16]],
        stop: &AtomicBool,
    ) -> Result<Nodes> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut eps = Vec::new();
        for (i, ns) in topo.nodes.iter().enumerate() {
            let mut cfg = Config::parse_toml(LAB_CONFIG).context("parsing the lab config")?;
            cfg.interface = node_ifs(i as u32).1;
            cfg.addresses = vec![SERVICE_V4.into(), SERVICE_V6.into()];
            cfg.workers = vec![opts.workers[i % opts.workers.len()] % cpus];
            cfg.xdp.mode = opts.xdp_mode;
            cfg.tcp.cookie_secret = Some(secrets[i]);
            cfg.http.body = format!("node {i}\n");
            cfg.ops.stats_interval_ms = STATS_INTERVAL_MS;
            cfg.validate()
                .context("the generated node config is invalid")?;
            let tag = format!("node{i}");
            eps.push(Some(start_endpoint(ns, &cfg, &dir.path, &tag, stop)?));
        }
        Ok(Nodes { eps })
    }

    /// Fresh stats of every running node (`None` for stopped ones).
    fn stats(&self, stop: &AtomicBool) -> Result<Vec<Option<serde_json::Value>>> {
        let since = SystemTime::now();
        self.eps
            .iter()
            .map(|e| match e {
                Some(ep) => read_stats_fresh(&ep.stats, since, stop).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// Stop node `i` (SIGINT, bounded); error if it did not exit cleanly.
    fn stop_one(&mut self, i: usize) -> Result<()> {
        if let Some(mut ep) = self.eps[i].take() {
            let (st, _) = ep.stop(STOP_TIMEOUT)?;
            if !st.success() {
                bail!("node {i} exited with {st}:\n{}", ep.log_tail(20));
            }
        }
        Ok(())
    }

    /// Stop every node; the first failure is returned after all were stopped.
    fn stop_all(&mut self) -> Result<()> {
        let mut first = Ok(());
        for i in 0..self.eps.len() {
            let r = self.stop_one(i);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Error if a node died.
    fn check_alive(&mut self) -> Result<()> {
        for (i, e) in self.eps.iter_mut().enumerate() {
            if let Some(ep) = e {
                if let Some(st) = ep.exited() {
                    bail!("node {i} died ({st}):\n{}", ep.log_tail(20));
                }
            }
        }
        Ok(())
    }
}

/// `established` of each node.
fn established(stats: &[Option<serde_json::Value>]) -> Vec<u64> {
    stats
        .iter()
        .map(|s| {
            s.as_ref()
                .and_then(|v| v["total"]["events"]["established"].as_u64())
                .unwrap_or(0)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Client connections
// ---------------------------------------------------------------------------------------

/// What a client connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Open and close without data (discard port, client closes first).
    Bare,
    /// Send [`DATA_BYTES`] to the echo port, read them back, close.
    Data,
}

/// Outcome of a batch of connections.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: u64,
    errors: Vec<String>,
}

impl Tally {
    fn rate(&self) -> f64 {
        100.0 * self.failed as f64 / (self.ok + self.failed).max(1) as f64
    }
}

/// The service address connection `i` uses: every fourth goes over IPv6.
fn service(i: u64, port: u16) -> SocketAddr {
    let ip: IpAddr = if i % 4 == 3 {
        SERVICE_V6.into()
    } else {
        SERVICE_V4.into()
    };
    SocketAddr::new(ip, port)
}

/// A connected stream with the lab's timeouts.
fn connect(addr: SocketAddr) -> std::result::Result<TcpStream, String> {
    let s =
        TcpStream::connect_timeout(&addr, SOCKET_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(SOCKET_TIMEOUT))
        .and_then(|_| s.set_write_timeout(Some(SOCKET_TIMEOUT)))
        .and_then(|_| s.set_nodelay(true))
        .map_err(|e| format!("socket options: {e}"))?;
    Ok(s)
}

/// One connection of `kind`.
fn one(kind: Kind, i: u64) -> std::result::Result<(), String> {
    match kind {
        Kind::Bare => {
            let mut s = connect(service(i, 9))?;
            s.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            expect_eof(&mut s)
        }
        Kind::Data => {
            use std::io::Read;
            let mut s = connect(service(i, 7))?;
            let data: Vec<u8> = (0..DATA_BYTES).map(|k| (k as u64 ^ i) as u8).collect();
            s.write_all(&data).map_err(|e| format!("send: {e}"))?;
            let mut back = vec![0u8; data.len()];
            s.read_exact(&mut back)
                .map_err(|e| format!("reading the echo: {e}"))?;
            if back != data {
                return Err("the echo differs".to_owned());
            }
            s.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            expect_eof(&mut s)
        }
    }
}

/// Run `n` connections of `kind` from [`THREADS`] threads in the client namespace,
/// bounded by [`PHASE_LIMIT`] (the rest count as failed, "not tried").
fn drive(client: &str, n: u32, kind: Kind, stop: &AtomicBool) -> Result<Tally> {
    let next = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let deadline = Instant::now() + PHASE_LIMIT;
    let joined = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS.min(n as usize).max(1))
            .map(|_| {
                s.spawn(|| -> std::io::Result<()> {
                    crate::io::sys::enter_netns(client)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= u64::from(n) {
                            return Ok(());
                        }
                        let r = if stop.load(Ordering::Relaxed) {
                            Err("interrupted".to_owned())
                        } else if Instant::now() > deadline {
                            Err(format!("not tried within {} s", PHASE_LIMIT.as_secs()))
                        } else {
                            one(kind, i)
                        };
                        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                        match r {
                            Ok(()) => t.ok += 1,
                            Err(e) => {
                                t.failed += 1;
                                if t.errors.len() < 3 {
                                    t.errors.push(format!(
                                        "connection {i} ({}): {e}",
                                        service(i, 0).ip()
                                    ));
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        join_clients(hs)
    });
    joined?;
    Ok(tally.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// HTTP GET on a held connection; returns the node that answered (its body is
/// `node i`).
fn get(s: &mut TcpStream, pending: &mut Vec<u8>) -> std::result::Result<usize, String> {
    s.write_all(b"GET /ecmp HTTP/1.1\r\nHost: synack\r\nUser-Agent: synack-lab\r\n\r\n")
        .map_err(|e| format!("request: {e}"))?;
    let (_, body) = read_http_response(s, pending).map_err(|e| format!("response: {e}"))?;
    String::from_utf8_lossy(&body)
        .trim()
        .strip_prefix("node ")
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| format!("body {body:?} names no node"))
}

// ---------------------------------------------------------------------------------------
// Spread
// ---------------------------------------------------------------------------------------

/// Whether every node's share of `counts` is within ±15 % of 1/N (relative), and there
/// was anything to share.
pub fn spread_ok(counts: &[u64]) -> bool {
    let total: u64 = counts.iter().sum();
    let fair = 1.0 / counts.len().max(1) as f64;
    total > 0
        && counts
            .iter()
            .all(|&c| ((c as f64 / total as f64) - fair).abs() <= 0.15 * fair + 1e-12)
}

/// "node0 203 (50.8 %), node1 197 (49.2 %)".
fn shares(counts: &[u64]) -> String {
    let total = counts.iter().sum::<u64>().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| format!("node{i} {c} ({:.1} %)", 100.0 * c as f64 / total))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Per-node `established` growth while `f` runs.
fn per_node<T>(
    nodes: &Nodes,
    stop: &AtomicBool,
    f: impl FnOnce() -> Result<T>,
) -> Result<(T, Vec<u64>)> {
    let before = established(&nodes.stats(stop)?);
    let out = f()?;
    // One more stats period, so the last handshakes are in the file.
    std::thread::sleep(Duration::from_millis(3 * STATS_INTERVAL_MS));
    let after = established(&nodes.stats(stop)?);
    let delta = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    Ok((out, delta))
}

/// `synack gen` from the client namespace: `n` connections to the discard port from
/// [`GEN_SOURCES`], bounded (8 s opening, 2 s drain, the command capped at 20 s).
fn gen(topo: &Topology, dir: &TempDir, n: u32) -> Result<serde_json::Value> {
    let exe = std::env::current_exe().context("finding the synack executable")?;
    let exe = exe.to_string_lossy().into_owned();
    let json = dir.path.join("gen.json");
    let mac = format_mac(&topo.router_mac);
    let (target, count) = (format!("{SERVICE_V4}:9"), n.to_string());
    exec(
        &topo.client,
        &[
            &exe,
            "gen",
            "--interface",
            "ecmp-c",
            "--target",
            &target,
            "--source",
            GEN_SOURCES,
            "--count",
            &count,
            "--duration",
            "8",
            "--drain-ms",
            "2000",
            "--xdp-mode",
            "generic",
            "--target-mac",
            &mac,
            "--json",
            &json.to_string_lossy(),
        ],
    )
    .context("running synack gen in the client namespace")?;
    read_json(&json).with_context(|| format!("reading {}", json.display()))
}

// ---------------------------------------------------------------------------------------
// Route churn
// ---------------------------------------------------------------------------------------

/// What the route flipper did.
#[derive(Debug, Default)]
struct Churn {
    flips: u64,
    elapsed: Duration,
}

/// Run `f` while a thread flips the service routes every [`FLIP_PERIOD`] through the
/// states group, node 0, group, node 1, … (one `ip -batch` process in the router
/// namespace reads the `route replace` lines); the group is restored afterwards.
fn with_churn<T: Send>(
    router: &str,
    nodes: u32,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<(T, Churn)> {
    let mut child = Command::new("ip")
        .args(["-n", router, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting `ip -batch -` in the router namespace")?;
    let mut stdin = child.stdin.take().context("no stdin for ip -batch")?;
    let done = AtomicBool::new(false);
    let (out, churn) = std::thread::scope(|s| {
        let flipper = s.spawn(|| -> Result<Churn> {
            let t0 = Instant::now();
            let mut flips = 0u64;
            while !done.load(Ordering::Relaxed) && t0.elapsed() < 2 * PHASE_LIMIT {
                let k = flips % (2 * u64::from(nodes));
                let (v4, v6) = if k.is_multiple_of(2) {
                    (GROUP_V4, GROUP_V6)
                } else {
                    let node = (k / 2) as u32;
                    (1 + node, 101 + node)
                };
                writeln!(stdin, "route replace {SERVICE_V4}/32 nhid {v4}")
                    .and_then(|_| writeln!(stdin, "route replace {SERVICE_V6}/128 nhid {v6}"))
                    .and_then(|_| stdin.flush())
                    .context("writing to `ip -batch -` (did it exit?)")?;
                flips += 1;
                std::thread::sleep(FLIP_PERIOD);
            }
            Ok(Churn {
                flips,
                elapsed: t0.elapsed(),
            })
        });
        let out = f();
        done.store(true, Ordering::Relaxed);
        let churn = flipper
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the route flipper panicked")));
        (out, churn)
    });
    drop(stdin);
    let status = wait_bounded(&mut child)?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    route(router, GROUP_V4, GROUP_V6)?;
    if !status.success() {
        bail!(
            "`ip -batch -` in the router failed ({status}): {}",
            err.trim()
        );
    }
    Ok((out?, churn?))
}

/// Wait for a child up to 5 s, then SIGKILL it (this pid only).
fn wait_bounded(child: &mut std::process::Child) -> Result<std::process::ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if t0.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            return Ok(child.wait()?);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Churn results of one secret setting: connections without and with data.
struct ChurnResult {
    /// ACKs the nodes refused as invalid cookies (`cookie_invalid` drops, summed).
    cookie_invalid: u64,
    bare: Tally,
    data: Tally,
    churn: Churn,
}

/// Bare and data connections under route churn.
fn churn_phase(topo: &Topology, nodes: &Nodes, n: u32, stop: &AtomicBool) -> Result<ChurnResult> {
    let count = topo.nodes.len() as u32;
    let invalid = |st: &[Option<serde_json::Value>]| -> u64 {
        st.iter()
            .flatten()
            .map(|v| v["total"]["drops"]["cookie_invalid"].as_u64().unwrap_or(0))
            .sum()
    };
    let before = invalid(&nodes.stats(stop)?);
    let ((bare, data), churn) = with_churn(&topo.router, count, || {
        let bare = drive(&topo.client, n, Kind::Bare, stop)?;
        let data = drive(&topo.client, n, Kind::Data, stop)?;
        Ok((bare, data))
    })?;
    std::thread::sleep(Duration::from_millis(3 * STATS_INTERVAL_MS));
    let cookie_invalid = invalid(&nodes.stats(stop)?).saturating_sub(before);
    Ok(ChurnResult {
        cookie_invalid,
        bare,
        data,
        churn,
    })
}

fn print_churn(label: &str, r: &ChurnResult) {
    let secs = r.churn.elapsed.as_secs_f64().max(1e-6);
    println!(
        "route churn, {label}: {} route flips in {secs:.1} s ({:.0}/s); without data {} ok, \
         {} failed ({:.1} %); with data {} ok, {} failed ({:.1} %)",
        r.churn.flips,
        r.churn.flips as f64 / secs,
        r.bare.ok,
        r.bare.failed,
        r.bare.rate(),
        r.data.ok,
        r.data.failed,
        r.data.rate()
    );
    println!(
        "  ACKs the nodes refused as invalid cookies: {}",
        r.cookie_invalid
    );
    for e in r.bare.errors.iter().chain(&r.data.errors) {
        println!("  e.g. {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Node loss
// ---------------------------------------------------------------------------------------

/// A held connection: its stream, unread bytes, the node that answered its first request.
type Held = (TcpStream, Vec<u8>, usize);

/// Open `n` keep-alive HTTP connections from the client namespace and ask each once
/// which node serves it. Connections that fail count in the returned tally.
fn hold(client: &str, n: usize) -> Result<(Vec<Held>, Tally)> {
    let held = Mutex::new((Vec::new(), Tally::default()));
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| -> std::io::Result<()> {
                    crate::io::sys::enter_netns(client)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n as u64 {
                            return Ok(());
                        }
                        let r = connect(service(i, 80)).and_then(|mut s| {
                            let mut pending = Vec::new();
                            get(&mut s, &mut pending).map(|node| (s, pending, node))
                        });
                        let mut h = held.lock().unwrap_or_else(|p| p.into_inner());
                        match r {
                            Ok(c) => {
                                h.1.ok += 1;
                                h.0.push(c);
                            }
                            Err(e) => {
                                h.1.failed += 1;
                                h.1.errors.push(format!("held connection {i}: {e}"));
                            }
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))?
                .context("client thread in the client namespace")?;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(held.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// Per original node: held connections that still answer, and that fail.
fn probe(held: Vec<Held>, nodes: usize) -> Vec<Tally> {
    let out = Mutex::new((0..nodes).map(|_| Tally::default()).collect::<Vec<_>>());
    let held = Mutex::new(held);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let Some((mut st, mut pending, node)) =
                    held.lock().unwrap_or_else(|p| p.into_inner()).pop()
                else {
                    return;
                };
                let r = get(&mut st, &mut pending);
                let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
                match r {
                    Ok(_) => o[node].ok += 1,
                    Err(e) => {
                        o[node].failed += 1;
                        if o[node].errors.len() < 2 {
                            o[node].errors.push(e);
                        }
                    }
                }
            });
        }
    });
    out.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Node loss: hold connections, stop the last node and delete its nexthops, then ask
/// every held connection again and open `n` new ones. Returns the problems found.
fn node_loss(topo: &Topology, nodes: &mut Nodes, n: u32, stop: &AtomicBool) -> Result<Vec<String>> {
    let count = topo.nodes.len();
    let victim = count - 1;
    let (held, opened) = hold(&topo.client, HELD_PER_NODE * count)?;
    let mut problems = Vec::new();
    if opened.failed > 0 {
        problems.push(format!(
            "{} of the held connections failed to open: {:?}",
            opened.failed, opened.errors
        ));
    }
    let mut per = vec![0u64; count];
    for h in &held {
        per[h.2] += 1;
    }
    nodes.stop_one(victim)?;
    for id in [1 + victim, 101 + victim] {
        ip(&topo.router, &["nexthop", "del", "id", &id.to_string()])?;
    }
    let after = probe(held, count);
    interrupted(stop)?;
    let (fresh, spread) = per_node(nodes, stop, || drive(&topo.client, n, Kind::Bare, stop))?;
    println!(
        "node loss: {} connections held ({}); node{victim} stopped and its nexthops {} and {} \
         removed",
        per.iter().sum::<u64>(),
        shares(&per),
        1 + victim,
        101 + victim
    );
    for (i, t) in after.iter().enumerate() {
        let what = if i == victim { "stopped" } else { "kept" };
        println!(
            "  node{i} ({what}): {} of its held connections still answer, {} failed{}",
            t.ok,
            t.failed,
            t.errors
                .first()
                .map_or(String::new(), |e| format!(" (e.g. {e})"))
        );
        if i != victim && t.failed > 0 {
            problems.push(format!(
                "node loss: {} held connections of node{i}, which kept running, failed: {:?}",
                t.failed, t.errors
            ));
        }
    }
    println!(
        "  then {} new connections: {} ok, {} failed; {}",
        n,
        fresh.ok,
        fresh.failed,
        shares(&spread[..victim])
    );
    if fresh.failed > 0 {
        problems.push(format!(
            "node loss: {} new connections failed: {:?}",
            fresh.failed, fresh.errors
        ));
    }
    if per[victim] == 0 {
        problems.push(format!("node loss: no held connection was on node{victim}"));
    }
    Ok(problems)
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// Run the multi-node lab (see the module documentation); the parent's `run` has
/// checked for root and installed the signal handlers.
pub fn run(opts: &LabOptions, stop: &AtomicBool) -> Result<()> {
    remove_stale(NS_PREFIX);
    let dir = TempDir::new(&format!("synack-lab-{}", std::process::id()), opts.keep)?;
    let n = opts.nodes as usize;
    let topo = Topology::create(opts.nodes, opts.keep)?;
    interrupted(stop)?;
    println!(
        "synack lab --nodes {n}: client {} ({CLIENT_V4}) → router {} (nexthop groups {GROUP_V4} \
         and {GROUP_V6}, type resilient, {BUCKETS} buckets, fib_multipath_hash_policy = 1) → \
         {n} nodes {}..{} each running `synack run` on {SERVICE_V4} and {SERVICE_V6}",
        topo.client,
        topo.router,
        topo.nodes[0],
        topo.nodes[n - 1]
    );
    let mut problems = Vec::new();

    // The control first: a different secret per node.
    let secrets = (0..n).map(|_| secret()).collect::<Result<Vec<_>>>()?;
    let mut nodes = Nodes::start(&topo, opts, &dir, &secrets, stop)?;
    let control = churn_phase(&topo, &nodes, opts.connections, stop)?;
    nodes.check_alive()?;
    nodes.stop_all()?;
    drop(nodes);

    let shared = vec![secret()?; n];
    let mut nodes = Nodes::start(&topo, opts, &dir, &shared, stop)?;
    let (linux, spread) = per_node(&nodes, stop, || {
        drive(&topo.client, opts.connections, Kind::Bare, stop)
    })?;
    println!(
        "spread, {} Linux client connections ({} failed): {}",
        linux.ok,
        linux.failed,
        shares(&spread)
    );
    check_spread("Linux clients", &spread, &linux, &mut problems);
    let (g, gspread) = per_node(&nodes, stop, || gen(&topo, &dir, opts.connections))?;
    let gs = &g["stats"];
    let completed = gs["completed"].as_u64().unwrap_or(0);
    let gtally = Tally {
        ok: completed,
        failed: u64::from(opts.connections).saturating_sub(completed),
        ..Tally::default()
    };
    println!(
        "spread, synack gen ({} started, {} completed, {} failed): {}",
        gs["attempted"],
        gs["completed"],
        gtally.failed,
        shares(&gspread)
    );
    check_spread("synack gen", &gspread, &gtally, &mut problems);

    let churn = churn_phase(&topo, &nodes, opts.connections, stop)?;
    print_churn("one cookie secret", &churn);
    print_churn("a different secret per node (control)", &control);
    if churn.bare.failed > 0 {
        problems.push(format!(
            "route churn: {} connections without data failed with one secret",
            churn.bare.failed
        ));
    }
    if churn.churn.flips < 10 {
        problems.push(format!(
            "route churn: only {} route flips",
            churn.churn.flips
        ));
    }
    nodes.check_alive()?;
    problems.extend(node_loss(&topo, &mut nodes, opts.connections, stop)?);
    nodes.stop_all()?;
    drop(nodes);
    if opts.keep {
        let all: Vec<&str> = [topo.client.as_str(), topo.router.as_str()]
            .into_iter()
            .chain(topo.nodes.iter().map(String::as_str))
            .collect();
        println!(
            "kept (nodes stopped): namespaces {}; configs and logs in {}; remove with `ip netns \
             del NAME` for each",
            all.join(" "),
            dir.path.display()
        );
    }
    drop(topo);
    drop(dir);
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    println!("synack lab --nodes {n}: OK");
    Ok(())
}

/// Print whether `counts` is an even spread, and add a problem unless it is one of all
/// `t.ok` connections.
fn check_spread(what: &str, counts: &[u64], t: &Tally, problems: &mut Vec<String>) {
    let fair = 100.0 / counts.len().max(1) as f64;
    println!(
        "  each node within ±15 % of {fair:.1} % ({:.1}..{:.1} %): {}",
        0.85 * fair,
        1.15 * fair,
        if spread_ok(counts) { "yes" } else { "NO" }
    );
    if t.failed > 0 {
        problems.push(format!(
            "spread: {} {what} connections failed: {:?}",
            t.failed, t.errors
        ));
    }
    if !spread_ok(counts) {
        problems.push(format!(
            "spread: {what}: {} is not within ±15 % of 1/{} per node",
            shares(counts),
            counts.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_ok_allows_15_percent_of_the_fair_share() {
        assert!(spread_ok(&[50, 50]));
        assert!(spread_ok(&[575, 425])); // 57.5 %: the edge for N = 2
        assert!(!spread_ok(&[580, 420]));
        assert!(spread_ok(&[30, 36, 34]));
        assert!(!spread_ok(&[0, 0]));
        assert!(!spread_ok(&[100, 0]));
    }

    #[test]
    fn addresses_stay_in_the_benchmarking_blocks() {
        let in_v4 = |a: Ipv4Addr| a.octets()[0] == 198 && (a.octets()[1] & 0xfe) == 18;
        let in_v6 = |a: Ipv6Addr| a.segments()[..3] == [0x2001, 2, 0];
        assert!(in_v4(SERVICE_V4) && in_v4(CLIENT_V4) && in_v4(ROUTER_V4));
        assert!(in_v6(SERVICE_V6) && in_v6(CLIENT_V6) && in_v6(ROUTER_V6));
        for i in 0..8 {
            let (a, b, c, d) = node_link(i);
            assert!(in_v4(a) && in_v4(b) && in_v6(c) && in_v6(d));
        }
    }
}
