//! The netns lab library: network namespaces, veth pairs with queues, offloads and
//! addresses, MAC and SNMP readings, threaded NAPI placement and the removal of stale labs.
//!
//! One copy for every user: `synack lab` (the demo and `--nodes`), `synack lab up|down|
//! pin-napi` (what the benchmark scripts call), and the root integration tests
//! (`tests/common` wraps it). Every command runs with a time cap ([`cmd`]); everything a
//! lab creates sits in a guard ([`NetnsGuard`], [`VethLab`]) whose `Drop` removes it, also
//! on failure and when a test panics.
//!
//! Network rules kept here: traffic only inside namespaces the caller creates, addresses
//! from 198.18.0.0/15 and 2001:2::/48 (the caller picks them), the root namespace and eth0
//! never touched, only our own namespaces deleted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::wire::{format_mac, parse_mac};

/// Longest any one lab command may run before it is killed (by its pid).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(20);

/// Run a command with a time cap ([`CMD_TIMEOUT`]); its stdout, or an error with its
/// stderr unless it succeeds.
pub fn cmd(program: &str, args: &[&str]) -> Result<String> {
    let shown = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{shown}`: is {program} installed?"))?;
    let deadline = Instant::now() + CMD_TIMEOUT;
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

/// `ip -n NS ARGS…`.
pub fn ip_n(ns: &str, args: &[&str]) -> Result<String> {
    let mut a = vec!["-n", ns];
    a.extend_from_slice(args);
    cmd("ip", &a)
}

/// `ip -n NS` with the words of `line` (no word contains a space).
pub fn ip_line(ns: &str, line: &str) -> Result<String> {
    ip_n(ns, &line.split_whitespace().collect::<Vec<_>>())
}

/// `ip netns exec NS PROGRAM ARGS…`.
pub fn ns_exec(ns: &str, args: &[&str]) -> Result<String> {
    let mut a = vec!["netns", "exec", ns];
    a.extend_from_slice(args);
    cmd("ip", &a)
}

/// Run `f` on a thread inside namespace `ns` (setns on /var/run/netns/NS): sockets,
/// AF_XDP sockets and XDP attach made there act in that namespace. A panic in `f` is
/// propagated.
pub fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> Result<R> {
    crate::io::sys::in_netns(ns, f).with_context(|| format!("entering namespace {ns}"))
}

/// Send a signal (a name like `INT` or `KILL`) to one process, by pid, with `kill(1)`.
pub fn signal(pid: u32, sig: &str) -> Result<()> {
    cmd("kill", &[&format!("-{sig}"), &pid.to_string()]).map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------

/// Network namespaces this process created (and with them their veth pairs), deleted on
/// drop unless kept.
#[derive(Debug)]
pub struct NetnsGuard {
    created: Vec<String>,
    keep: bool,
}

impl NetnsGuard {
    /// An empty set; `keep` leaves the namespaces in place on drop.
    pub fn new(keep: bool) -> NetnsGuard {
        NetnsGuard {
            created: Vec::new(),
            keep,
        }
    }

    /// Create namespace `name` (with `lo` up) and take charge of deleting it.
    pub fn add(&mut self, name: &str) -> Result<()> {
        cmd("ip", &["netns", "add", name])
            .context("creating a network namespace (needs root and iproute2)")?;
        self.created.push(name.to_owned());
        ip_n(name, &["link", "set", "dev", "lo", "up"])?;
        Ok(())
    }

    /// Keep (`true`) or delete (`false`) the namespaces on drop.
    pub fn set_keep(&mut self, keep: bool) {
        self.keep = keep;
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for name in self.created.drain(..) {
            if let Err(e) = delete_netns(&name) {
                eprintln!("synack lab: cleanup: {e:#}");
            }
        }
    }
}

/// Delete namespace `name` if it exists (its veth ends go with it); idempotent.
pub fn delete_netns(name: &str) -> Result<()> {
    if Path::new(&format!("/var/run/netns/{name}")).exists() {
        cmd("ip", &["netns", "del", name])?;
    }
    Ok(())
}

/// Delete namespaces named `PREFIX<pid>…` whose process is gone (a lab or test killed
/// with SIGKILL). Only names with `prefix` followed by the pid of a dead process are
/// touched.
pub fn remove_stale(prefix: &str) {
    let Ok(list) = cmd("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(prefix) else {
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

// ---------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------

/// Create a veth pair `a` (in namespace `ns_a`) – `b` (in `ns_b`); `queues` > 1 gives
/// both ends that many RX and TX queues (`numrxqueues`/`numtxqueues`).
pub fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str, queues: u32) -> Result<()> {
    let q = queues.max(1).to_string();
    let multi = ["numrxqueues", q.as_str(), "numtxqueues", q.as_str()];
    let mut args = vec!["link", "add", a, "netns", ns_a];
    if queues > 1 {
        args.extend(multi);
    }
    args.extend(["type", "veth", "peer", "name", b, "netns", ns_b]);
    if queues > 1 {
        args.extend(multi);
    }
    cmd("ip", &args)
        .with_context(|| format!("creating the veth pair {a}–{b}"))
        .map(|_| ())
}

/// Checksum offload off, the addresses (`/24` and `/64`, no DAD) added, the link up.
///
/// `ethtool -K IF tx off rx off`: `tx off` makes the kernel write full TCP checksums (a
/// veth with TX offload leaves a partial, pseudo-header-only checksum that AF_XDP would
/// see raw) and stops GSO from building frames larger than a UMEM frame; `rx off` so that
/// no path marks a frame as already verified: the receiving kernel checks every checksum
/// in software, and a bad checksum written by our AF_XDP TX is seen.
pub fn link_up(ns: &str, ifname: &str, v4: Ipv4Addr, v6: Ipv6Addr) -> Result<()> {
    ns_exec(ns, &["ethtool", "-K", ifname, "tx", "off", "rx", "off"])
        .context("turning checksum offload off (is ethtool installed?)")?;
    ip_n(ns, &["addr", "add", &format!("{v4}/24"), "dev", ifname])?;
    let v6 = format!("{v6}/64");
    ip_n(ns, &["-6", "addr", "add", &v6, "dev", ifname, "nodad"])?;
    ip_n(ns, &["link", "set", "dev", ifname, "up"]).map(|_| ())
}

/// GRO on or off on `ifname`. On a veth, GRO on gives the device NAPI (kernel
/// `veth_set_features` → `veth_napi_enable`) also without an XDP program, which is what
/// XDP_TX frames from the peer and threaded NAPI need.
pub fn set_gro(ns: &str, ifname: &str, on: bool) -> Result<()> {
    let v = if on { "on" } else { "off" };
    ns_exec(ns, &["ethtool", "-K", ifname, "gro", v])
        .with_context(|| format!("turning GRO {v} on {ifname}"))
        .map(|_| ())
}

/// A permanent neighbour entry: no resolution delay and no ARP/NDP during a run.
pub fn neigh(ns: &str, addr: IpAddr, mac: [u8; 6], dev: &str) -> Result<()> {
    let (addr, mac) = (addr.to_string(), format_mac(&mac));
    ip_n(
        ns,
        &[
            "neigh",
            "replace",
            &addr,
            "lladdr",
            &mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ],
    )
    .with_context(|| format!("adding the neighbour entry {addr} in {ns}"))
    .map(|_| ())
}

/// The MAC address of `ifname` in namespace `ns` (its sysfs file, through `ip netns
/// exec`, which mounts the namespace's own sysfs; a thread that only entered the
/// namespace still sees the sysfs of the one it was mounted in).
pub fn ns_mac(ns: &str, ifname: &str) -> Result<[u8; 6]> {
    let text = ns_exec(ns, &["cat", &format!("/sys/class/net/{ifname}/address")])?;
    parse_mac(&text).with_context(|| format!("bad MAC {text:?} of {ifname}"))
}

/// A kernel counter of namespace `ns`: `file` is `snmp` or `netstat` (under `/proc/net`),
/// `group` e.g. `Tcp` or `TcpExt`, `field` e.g. `InSegs`.
pub fn ns_snmp(ns: &str, file: &str, group: &str, field: &str) -> Result<u64> {
    // /proc/thread-self: the namespace of this thread, which has entered `ns`.
    let path = format!("/proc/thread-self/net/{file}");
    let text = in_netns(ns, || std::fs::read_to_string(&path))?
        .with_context(|| format!("reading {path} in {ns}"))?;
    snmp_value(&text, group, field).with_context(|| format!("no {group} {field} in {path}"))
}

/// The value of `group` `field` in the text of `/proc/net/snmp` or `/proc/net/netstat`:
/// a line of names and then a line of values, both starting with `group:`.
pub fn snmp_value(text: &str, group: &str, field: &str) -> Option<u64> {
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == field)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Whether `ip -d link show` output reports an attached XDP program.
pub fn xdp_in_link_details(details: &str) -> bool {
    details.split_whitespace().any(|t| {
        matches!(
            t,
            "xdp" | "xdpgeneric" | "xdpdrv" | "xdpoffload" | "xdpmulti" | "prog/xdp"
        ) || t.starts_with("xdpgeneric/")
            || t.starts_with("xdp/")
    })
}

/// Switch `ifname` (in `ns`) to threaded NAPI and pin its kernel threads (`napi/IF-N`,
/// found by name in `/proc/*/comm`, never by a pattern over command lines) to `cpu`, at
/// SCHED_FIFO `fifo` when given. The device needs NAPI first: an XDP program attached, or
/// GRO on. Returns how many threads were pinned (at least one, or an error).
pub fn pin_napi(ns: &str, ifname: &str, cpu: usize, fifo: Option<u8>) -> Result<usize> {
    let threaded = format!("echo 1 > /sys/class/net/{ifname}/threaded");
    ns_exec(ns, &["sh", "-c", &threaded])
        .with_context(|| format!("switching {ifname} to threaded NAPI (does it have NAPI?)"))?;
    // A thread's name (comm) is cut at 15 bytes (TASK_COMM_LEN 16, with the NUL).
    let mut want = format!("napi/{ifname}-");
    want.truncate(15);
    let t0 = Instant::now();
    let pids = loop {
        let pids = napi_threads(&want);
        if !pids.is_empty() || t0.elapsed() > Duration::from_secs(2) {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if pids.is_empty() {
        bail!("no NAPI thread of {ifname} found (named {want}…)");
    }
    for pid in &pids {
        let pid = pid.to_string();
        cmd("taskset", &["-pc", &cpu.to_string(), &pid])?;
        if let Some(p) = fifo {
            cmd("chrt", &["-f", "-p", &p.to_string(), &pid])?;
        }
    }
    Ok(pids.len())
}

/// Pids of the kernel threads whose name starts with `prefix`.
fn napi_threads(prefix: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        comm.starts_with(prefix).then_some(pid)
    })
    .collect()
}

// ---------------------------------------------------------------------------------------
// A two-namespace veth lab
// ---------------------------------------------------------------------------------------

/// What a [`VethLab`] is made of: names, addresses and the veth's queues.
#[derive(Debug, Clone)]
pub struct VethSpec {
    /// Client namespace.
    pub client_ns: String,
    /// Server namespace.
    pub server_ns: String,
    /// Client veth end (at most 15 characters, IFNAMSIZ).
    pub client_if: String,
    /// Server veth end.
    pub server_if: String,
    /// Client IPv4 address (a /24 with the server's).
    pub client_v4: Ipv4Addr,
    /// Server IPv4 address.
    pub server_v4: Ipv4Addr,
    /// Client IPv6 address (a /64 with the server's).
    pub client_v6: Ipv6Addr,
    /// Server IPv6 address.
    pub server_v6: Ipv6Addr,
    /// RX/TX queues of each end; 0 or 1 is a single-queue veth.
    pub queues: u32,
    /// Permanent neighbour entries both ways. Measured in the demo: in the first second
    /// after the link comes up, the server kernel leaves the client's first neighbour
    /// solicitation unanswered, so the first IPv6 connections waited for the one-second
    /// NS retransmission; resolution is kernel-to-kernel business, the lab measures the
    /// endpoint.
    pub static_neighbours: bool,
    /// Leave the namespaces in place on drop.
    pub keep: bool,
}

impl VethSpec {
    /// The demo's and the scripts' layout for lab `name`: namespaces `NAME-c` and
    /// `NAME-s`, veth ends `NAMEc` and `NAMEs`, client 198.18.0.2 and 2001:2::2, server
    /// 198.18.0.1 and 2001:2::1 (as in `config/lab.toml`), one queue, static neighbours.
    pub fn named(name: &str) -> VethSpec {
        VethSpec {
            client_ns: format!("{name}-c"),
            server_ns: format!("{name}-s"),
            client_if: format!("{name}c"),
            server_if: format!("{name}s"),
            client_v4: super::CLIENT_V4,
            server_v4: super::SERVER_V4,
            client_v6: super::CLIENT_V6,
            server_v6: super::SERVER_V6,
            queues: 1,
            static_neighbours: true,
            keep: false,
        }
    }
}

/// Two namespaces (client, server) joined by a veth pair, with addresses, checksum
/// offloads off and the links up; its names and addresses are those of its [`VethSpec`]
/// (`lab.client_ns`, `lab.server_v4`, … through `Deref`). Dropping it deletes both
/// namespaces (and with them the veth) unless the spec said keep.
#[derive(Debug)]
pub struct VethLab {
    spec: VethSpec,
    /// MAC of the client veth end.
    pub client_mac: [u8; 6],
    /// MAC of the server veth end.
    pub server_mac: [u8; 6],
    guard: NetnsGuard,
}

impl std::ops::Deref for VethLab {
    type Target = VethSpec;
    fn deref(&self) -> &VethSpec {
        &self.spec
    }
}

impl VethLab {
    /// Build the lab of `spec`; on any failure what was created is removed again.
    pub fn create(spec: &VethSpec) -> Result<VethLab> {
        anyhow::ensure!(
            spec.client_if.len() <= 15 && spec.server_if.len() <= 15,
            "interface names {} and {} must fit 15 characters (IFNAMSIZ)",
            spec.client_if,
            spec.server_if
        );
        let mut guard = NetnsGuard::new(false);
        guard.add(&spec.client_ns)?;
        guard.add(&spec.server_ns)?;
        veth(
            &spec.client_ns,
            &spec.client_if,
            &spec.server_ns,
            &spec.server_if,
            spec.queues,
        )?;
        link_up(
            &spec.client_ns,
            &spec.client_if,
            spec.client_v4,
            spec.client_v6,
        )?;
        link_up(
            &spec.server_ns,
            &spec.server_if,
            spec.server_v4,
            spec.server_v6,
        )?;
        let client_mac = ns_mac(&spec.client_ns, &spec.client_if)?;
        let server_mac = ns_mac(&spec.server_ns, &spec.server_if)?;
        guard.set_keep(spec.keep);
        let lab = VethLab {
            spec: spec.clone(),
            client_mac,
            server_mac,
            guard,
        };
        if spec.static_neighbours {
            lab.add_static_neighbours()?;
        }
        Ok(lab)
    }

    /// Permanent neighbour entries both ways (see [`VethSpec::static_neighbours`]).
    pub fn add_static_neighbours(&self) -> Result<()> {
        let s = &self.spec;
        let server = [s.server_v4.into(), s.server_v6.into()];
        let client = [s.client_v4.into(), s.client_v6.into()];
        for a in server {
            neigh(&s.client_ns, a, self.server_mac, &s.client_if)?;
        }
        for a in client {
            neigh(&s.server_ns, a, self.client_mac, &s.server_if)?;
        }
        Ok(())
    }

    /// Keep (`true`) or delete (`false`) the namespaces on drop.
    pub fn set_keep(&mut self, keep: bool) {
        self.guard.set_keep(keep);
    }

    /// The lab as shell assignments (`CNS=… SNS=… VC=… VS=… CLIENT=… SERVER=… CLIENT6=…
    /// SERVER6=… CMAC=… SMAC=…`), one a line, for `eval` in the benchmark scripts.
    pub fn shell_vars(&self) -> String {
        [
            ("CNS", self.client_ns.clone()),
            ("SNS", self.server_ns.clone()),
            ("VC", self.client_if.clone()),
            ("VS", self.server_if.clone()),
            ("CLIENT", self.client_v4.to_string()),
            ("SERVER", self.server_v4.to_string()),
            ("CLIENT6", self.client_v6.to_string()),
            ("SERVER6", self.server_v6.to_string()),
            ("CMAC", format_mac(&self.client_mac)),
            ("SMAC", format_mac(&self.server_mac)),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

/// A private temporary directory, removed on drop unless kept.
#[derive(Debug)]
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// `$TMPDIR/NAME`, emptied first.
    pub fn new(name: &str, keep: bool) -> Result<TempDir> {
        let path = std::env::temp_dir().join(name);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_value_reads_the_field_under_its_name() {
        let text = "Ip: Forwarding DefaultTTL InAddrErrors\nIp: 2 64 17\n\
                    Tcp: RtoAlgorithm InSegs\nTcp: 1 905\n";
        assert_eq!(snmp_value(text, "Ip", "InAddrErrors"), Some(17));
        assert_eq!(snmp_value(text, "Tcp", "InSegs"), Some(905));
        assert_eq!(snmp_value(text, "Tcp", "OutSegs"), None);
        assert_eq!(snmp_value(text, "Udp", "InDatagrams"), None);
    }

    #[test]
    fn xdp_is_found_in_link_details() {
        assert!(xdp_in_link_details(
            "2: vs: <UP> mtu 1500 xdpgeneric/id:12 qdisc"
        ));
        assert!(xdp_in_link_details("    prog/xdp id 42 tag 1"));
        assert!(!xdp_in_link_details(
            "2: vs: <BROADCAST,UP> mtu 1500 qdisc noqueue"
        ));
    }

    #[test]
    fn named_spec_fits_ifnamsiz_and_uses_the_lab_addresses() {
        let s = VethSpec::named("sw123456");
        assert_eq!(
            (s.client_ns.as_str(), s.server_ns.as_str()),
            ("sw123456-c", "sw123456-s")
        );
        assert_eq!(
            (s.client_if.as_str(), s.server_if.as_str()),
            ("sw123456c", "sw123456s")
        );
        assert_eq!(s.server_v4, Ipv4Addr::new(198, 18, 0, 1));
    }
}
