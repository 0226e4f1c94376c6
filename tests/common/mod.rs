//! Shared harness for root-only integration tests: network-namespace labs joined by a veth
//! pair, running code or commands inside a namespace, and commands with a timeout.
//! (The in-memory harness, without root, is `tests/support`: the test kit `synack::testkit`.)
//!
//! Network rules: traffic stays inside the namespaces a [`Lab`] creates; addresses come from
//! 198.18.0.0/15 and 2001:2::/48; the root namespace and eth0 are never touched; a `Lab`
//! removes its namespaces on drop, also when the test panics.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Env var that turns "needs root" into a skip instead of a failure.
pub const SKIP_ENV: &str = "SYNACK_SKIP_PRIVILEGED";

/// Env var that forces the XDP SYN offload (`xdp.syn_offload`) `on` or `off` for every
/// endpoint these tests start, unless the test sets it itself: `scripts/test.sh` runs the root
/// endpoint tests once as configured (`auto`: off on a native veth, on in generic mode) and
/// once more with `on`, so every one of them also passes with SYNs answered in XDP.
pub const SYN_OFFLOAD_ENV: &str = "SYNACK_TEST_SYN_OFFLOAD";

/// The offload setting forced by [`SYN_OFFLOAD_ENV`], if any. Panics on any other value, so
/// a typo cannot quietly run the default.
pub fn forced_syn_offload() -> Option<&'static str> {
    match std::env::var(SYN_OFFLOAD_ENV).ok()?.as_str() {
        "on" => Some("on"),
        "off" => Some("off"),
        "" => None,
        other => panic!("{SYN_OFFLOAD_ENV}={other}: use on or off (or leave it unset)"),
    }
}

/// Prefix of every namespace a lab creates; the pid follows, so stale labs can be found.
const NS_PREFIX: &str = "synack-t";

/// Root-only tests: `true` when running as root. Otherwise, with `SYNACK_SKIP_PRIVILEGED=1`
/// print a SKIPPED line and return `false`; without it, panic with what to do.
pub fn require_root(test: &str) -> bool {
    if synack::io::sys::is_root() {
        return true;
    }
    if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: needs root ({SKIP_ENV}=1)");
        return false;
    }
    panic!(
        "{test} needs root (CAP_NET_ADMIN) for network namespaces and AF_XDP; run as root, \
         or set {SKIP_ENV}=1 to skip"
    );
}

/// Run a command, killing it (by its pid) if it has not finished after `timeout`.
/// Returns `None` on timeout; stdout and stderr are captured either way.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Option<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    wait_with_timeout(child, timeout)
}

/// Wait for a spawned child (its output piped), killing it by its pid if it has not
/// finished after `timeout`. Returns `None` on timeout.
pub fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> Option<Output> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().ok(),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill(); // SIGKILL to this child's pid only
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
    }
}

/// Run a command (with a 30 s cap) and panic with its output unless it succeeds.
pub fn must(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = run_with_timeout(cmd, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{shown} timed out"));
    assert!(
        out.status.success(),
        "{shown} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) -> Output {
    must(Command::new("ip").args(args))
}

/// Two namespaces (client, server) joined by a veth pair. Dropping it deletes both
/// namespaces, which deletes the veth with them.
#[derive(Debug)]
pub struct Lab {
    pub client_ns: String,
    pub server_ns: String,
    pub client_if: String,
    pub server_if: String,
    pub client_v4: Ipv4Addr,
    pub server_v4: Ipv4Addr,
    pub client_v6: Ipv6Addr,
    pub server_v6: Ipv6Addr,
    pub client_mac: [u8; 6],
    pub server_mac: [u8; 6],
}

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// A new lab. `tag` (letters/digits) makes names readable; `queues` > 1 creates a
    /// multi-queue veth (`numrxqueues N numtxqueues N`), 0 or 1 a single-queue one.
    ///
    /// Checksum offload: `ethtool -K <veth> tx off rx off` on both ends. `tx off` makes the
    /// kernel write full TCP checksums (a veth with TX offload leaves a partial, pseudo-header
    /// only checksum that AF_XDP would see raw) and stops GSO from building frames larger
    /// than a UMEM frame. `rx off` too, so no path can mark a frame as already verified:
    /// the receiving kernel checks every checksum in software, and a bad checksum written
    /// by our AF_XDP TX makes a test fail instead of passing silently.
    pub fn new(tag: &str, queues: u32) -> Lab {
        cleanup_stale_labs();
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        // Interface names must fit IFNAMSIZ (15 chars): "vc"/"vs" + pid hex + counter hex.
        let client_if = format!("vc{pid:x}x{n:x}");
        let server_if = format!("vs{pid:x}x{n:x}");
        assert!(client_if.len() <= 15);
        // A distinct subnet per lab (and per process, as far as 512 slots go).
        let slot = (pid.wrapping_mul(7).wrapping_add(n)) % 512;
        let (b, c) = (18 + (slot / 256) as u8, (slot % 256) as u8);
        let mut lab = Lab {
            client_ns: format!("{NS_PREFIX}{pid}-{n}-{tag}-c"),
            server_ns: format!("{NS_PREFIX}{pid}-{n}-{tag}-s"),
            client_if,
            server_if,
            client_v4: Ipv4Addr::new(198, b, c, 1),
            server_v4: Ipv4Addr::new(198, b, c, 2),
            client_v6: Ipv6Addr::new(0x2001, 2, 0, slot as u16, 0, 0, 0, 1),
            server_v6: Ipv6Addr::new(0x2001, 2, 0, slot as u16, 0, 0, 0, 2),
            client_mac: [0; 6],
            server_mac: [0; 6],
        };
        // From here on, Drop cleans up whatever was created.
        ip(&["netns", "add", &lab.client_ns]);
        ip(&["netns", "add", &lab.server_ns]);
        let q = queues.max(1).to_string();
        let mut add = vec!["link", "add", &lab.client_if, "netns", &lab.client_ns];
        if queues > 1 {
            add.extend(["numrxqueues", &q, "numtxqueues", &q]);
        }
        add.extend(["type", "veth", "peer", "name", &lab.server_if]);
        add.extend(["netns", &lab.server_ns]);
        if queues > 1 {
            add.extend(["numrxqueues", &q, "numtxqueues", &q]);
        }
        ip(&add);
        for (ns, ifname, v4, v6) in [
            (&lab.client_ns, &lab.client_if, lab.client_v4, lab.client_v6),
            (&lab.server_ns, &lab.server_if, lab.server_v4, lab.server_v6),
        ] {
            must(
                Command::new("ip")
                    .args(["netns", "exec", ns, "ethtool", "-K", ifname])
                    .args(["tx", "off", "rx", "off"]),
            );
            let nsx = |args: &[&str]| {
                let mut full = vec!["-n", ns.as_str()];
                full.extend_from_slice(args);
                ip(&full)
            };
            nsx(&["addr", "add", &format!("{v4}/24"), "dev", ifname]);
            nsx(&[
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ]);
            nsx(&["link", "set", "dev", ifname, "up"]);
            nsx(&["link", "set", "dev", "lo", "up"]);
        }
        lab.client_mac = read_mac(&lab, &lab.client_ns, &lab.client_if);
        lab.server_mac = read_mac(&lab, &lab.server_ns, &lab.server_if);
        lab
    }

    /// What the XDP SYN offload needs on a veth lab: an XDP program on the client veth (ours,
    /// with an empty filter, so every frame passes to the client's kernel), returned to be
    /// held for as long as it is needed. In native mode a veth hands its peer's `XDP_TX`
    /// frames on promptly only then (kernel `veth_xdp_xmit` needs the peer's NAPI; with GRO
    /// alone the SYN-ACKs wait in its ring until the client's next retransmission). `None`
    /// when the client veth already has a program.
    ///
    /// Everything the server side sends then shares the client veth's 256-frame ring: under
    /// a flood the SYN-ACKs fill it, and the kernels' ARP and neighbour replies are lost
    /// with the rest (`connect: No route to host`). Permanent neighbour entries on both
    /// sides keep the real clients' addresses resolved, as the benchmark lab does; no test
    /// that uses this is about address resolution.
    pub fn give_client_napi(&self) -> Option<synack::io::bpf::XdpProgram> {
        let prog = (!self.xdp_attached(&self.client_ns, &self.client_if)).then(|| {
            self.in_ns(&self.client_ns, || {
                synack::io::bpf::XdpProgram::attach(
                    &self.client_if,
                    synack::io::XdpMode::Native,
                    &synack::io::bpf::Filter::default(),
                )
                .expect("a pass-through XDP program on the client veth")
            })
        });
        for (ns, ifname, v4, v6, mac) in [
            (
                &self.client_ns,
                &self.client_if,
                self.server_v4,
                self.server_v6,
                self.server_mac,
            ),
            (
                &self.server_ns,
                &self.server_if,
                self.client_v4,
                self.client_v6,
                self.client_mac,
            ),
        ] {
            for addr in [v4.to_string(), v6.to_string()] {
                ip(&[
                    "-n",
                    ns,
                    "neigh",
                    "replace",
                    &addr,
                    "lladdr",
                    &synack::gen::run::fmt_mac(&mac),
                    "dev",
                    ifname,
                    "nud",
                    "permanent",
                ]);
            }
        }
        prog
    }

    /// `ip netns exec <ns> args...` with a 60 s cap (panics on timeout, not on failure).
    pub fn ns_exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args);
        run_with_timeout(&mut cmd, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("`ip netns exec {ns} {args:?}` timed out"))
    }

    /// Run `f` on a new thread that has joined namespace `ns` (setns on
    /// /var/run/netns/<ns>): std::net sockets, AF_XDP sockets and XDP attach then act in
    /// that namespace. Sockets keep their namespace after the thread ends. A panic in `f`
    /// is propagated.
    pub fn in_ns<R: Send>(&self, ns: &str, f: impl FnOnce() -> R + Send) -> R {
        in_netns(ns, f)
    }

    /// `ip -d link show dev <ifname>` in `ns`.
    pub fn link_details(&self, ns: &str, ifname: &str) -> String {
        let out = self.ns_exec(ns, &["ip", "-d", "link", "show", "dev", ifname]);
        assert!(out.status.success(), "ip link show {ifname} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether any XDP program (native, generic, offload) is attached to `ifname` in `ns`.
    pub fn xdp_attached(&self, ns: &str, ifname: &str) -> bool {
        xdp_in_link_details(&self.link_details(ns, ifname))
    }

    /// A kernel SNMP counter (e.g. `("Tcp", "InSegs")`) of namespace `ns`.
    pub fn snmp(&self, ns: &str, proto: &str, field: &str) -> u64 {
        let out = self.ns_exec(ns, &["cat", "/proc/net/snmp"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let prefix = format!("{proto}:");
        let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
        let (names, values) = (lines.next(), lines.next());
        let (Some(names), Some(values)) = (names, values) else {
            panic!("no {proto} lines in /proc/net/snmp of {ns}");
        };
        let i = names
            .split_whitespace()
            .position(|n| n == field)
            .unwrap_or_else(|| panic!("no {proto} {field} in /proc/net/snmp"));
        values
            .split_whitespace()
            .nth(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad {proto} {field} value"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.client_ns, &self.server_ns] {
            // Best effort, never panic in drop (we may already be unwinding).
            let _ = run_with_timeout(
                Command::new("ip").args(["netns", "del", ns]),
                Duration::from_secs(30),
            );
        }
    }
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

/// Run `f` on a thread inside network namespace `ns` (see [`Lab::in_ns`]).
pub fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> R {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        let handle = s.spawn(move || {
            synack::io::sys::enter_netns(ns).unwrap_or_else(|e| panic!("setns({path}): {e}"));
            f()
        });
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn read_mac(lab: &Lab, ns: &str, ifname: &str) -> [u8; 6] {
    let out = lab.ns_exec(ns, &["cat", &format!("/sys/class/net/{ifname}/address")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut mac = [0u8; 6];
    let parts: Vec<u8> = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("mac hex"))
        .collect();
    assert_eq!(parts.len(), 6, "bad MAC {text:?} for {ifname}");
    mac.copy_from_slice(&parts);
    mac
}

/// Delete namespaces left by lab processes that died without cleaning up (SIGKILL).
/// Only names with our prefix whose pid is no longer alive are touched.
fn cleanup_stale_labs() {
    let Some(out) = run_with_timeout(
        Command::new("ip").args(["netns", "list"]),
        Duration::from_secs(10),
    ) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run_with_timeout(
                Command::new("ip").args(["netns", "del", name]),
                Duration::from_secs(10),
            );
        }
    }
}

/// RFC 1071 Internet checksum over `chunks` (folded, complemented).
pub fn inet_checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for chunk in chunks {
        for &b in *chunk {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

// ---------------------------------------------------------------------------------------
// The endpoint as a child process (tests/endpoint_*.rs)
// ---------------------------------------------------------------------------------------

/// Send signal `sig` (a name like `INT` or `KILL`) to one process, by pid, with kill(1).
pub fn signal(pid: u32, sig: &str) {
    must(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string()),
    );
}

/// The config of a test endpoint on `lab`'s server side: ports 80 http, 7 echo, 9 discard,
/// 13 close; `extra` is appended (sections such as `[tcp]`), `workers` is a CPU list.
pub fn endpoint_toml(lab: &Lab, workers: &str, extra: &str) -> String {
    format!(
        "interface = \"{}\"\naddresses = [\"{}\", \"{}\"]\nworkers = \"{workers}\"\n\
         [[listen]]\nport = 80\nmode = \"http\"\n\
         [[listen]]\nport = 7\nmode = \"echo\"\n\
         [[listen]]\nport = 9\nmode = \"discard\"\n\
         [[listen]]\nport = 13\nmode = \"close\"\n\
         [ops]\nstats_interval_ms = 100\n{extra}\n",
        lab.server_if, lab.server_v4, lab.server_v6
    )
}

static ENDPOINT_COUNTER: AtomicU32 = AtomicU32::new(0);

/// `synack run` started in a lab's server namespace (`ip netns exec` execs the binary, so
/// the child's pid is the endpoint's). Dropping it kills that pid (SIGKILL) and removes its
/// temporary directory.
pub struct Endpoint {
    pub child: Option<std::process::Child>,
    pub dir: std::path::PathBuf,
    pub ready: std::path::PathBuf,
    pub stats: std::path::PathBuf,
    pub stdout: std::path::PathBuf,
    pub stderr: std::path::PathBuf,
    /// The client veth's pass-through XDP program when the offload is forced on
    /// ([`Lab::give_client_napi`]); detached when the endpoint goes.
    pub client_prog: Option<synack::io::bpf::XdpProgram>,
}

impl Endpoint {
    /// Start the endpoint with config `toml` and extra flags; wait (at most 20 s) for its
    /// ready file and its first stats file. Panics with its stderr if it does not come up.
    pub fn start(lab: &Lab, toml: &str, flags: &[&str]) -> Endpoint {
        Endpoint::start_env(lab, toml, flags, &[])
    }

    /// [`Endpoint::start`] with extra environment variables for `synack run`.
    pub fn start_env(lab: &Lab, toml: &str, flags: &[&str], env: &[(&str, &str)]) -> Endpoint {
        let n = ENDPOINT_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("synack-ep-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("endpoint.toml");
        std::fs::write(&config, toml).expect("write config");
        let mut ep = Endpoint {
            child: None,
            ready: dir.join("ready"),
            stats: dir.join("stats.json"),
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
            client_prog: None,
            dir,
        };
        let mut flags: Vec<&str> = flags.to_vec();
        let forced = forced_syn_offload()
            .filter(|_| !toml.contains("syn_offload") && !flags.contains(&"--syn-offload"));
        if let Some(mode) = forced {
            flags.extend(["--syn-offload", mode]);
            if mode == "on" {
                ep.client_prog = lab.give_client_napi();
            }
        }
        let out = std::fs::File::create(&ep.stdout).expect("stdout log");
        let err = std::fs::File::create(&ep.stderr).expect("stderr log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.server_ns,
                env!("CARGO_BIN_EXE_synack"),
                "run",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--ready-file")
            .arg(&ep.ready)
            .arg("--stats-json")
            .arg(&ep.stats)
            .args(flags)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn synack run");
        ep.child = Some(child);
        let t0 = Instant::now();
        while !(ep.ready.exists() && ep.stats.exists()) {
            if let Some(st) = ep.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "synack run exited during start-up ({st}): {}",
                    ep.stderr_text()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "synack run not ready after 20 s: {}",
                ep.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ep
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The stats JSON as it is now.
    pub fn stats(&self) -> serde_json::Value {
        let text = std::fs::read(&self.stats).expect("read stats json");
        serde_json::from_slice(&text).expect("stats json parses")
    }

    /// The stats JSON once it was rewritten after this call (bounded: 5 s).
    pub fn fresh_stats(&self) -> serde_json::Value {
        let since = std::time::SystemTime::now();
        let t0 = Instant::now();
        loop {
            let fresh = std::fs::metadata(&self.stats)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > since);
            if fresh {
                if let Ok(text) = std::fs::read(&self.stats) {
                    if let Ok(v) = serde_json::from_slice(&text) {
                        return v;
                    }
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "stats json not rewritten within 5 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Poll fresh stats until `pred` holds (at most `timeout`); returns the stats that did.
    pub fn wait_stats(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            let s = self.fresh_stats();
            if pred(&s) {
                return s;
            }
            assert!(
                t0.elapsed() < timeout,
                "stats never showed {what} within {timeout:?}: {s:#}"
            );
        }
    }

    /// SIGINT, then wait at most `timeout` for the exit; returns the status and how long
    /// it took. Panics (after SIGKILL) if it does not exit in time.
    pub fn interrupt(&mut self, timeout: Duration) -> (std::process::ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let t0 = Instant::now();
        signal(child.id(), "INT");
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return (st, t0.elapsed());
            }
            if t0.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!("synack run ignored SIGINT for {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap")
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL to this pid only
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A counter of the XDP program from a stats document (`xdp_program.NAME`).
pub fn xdp_counter(stats: &serde_json::Value, name: &str) -> u64 {
    stats["xdp_program"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no xdp_program.{name} in {stats:#}"))
}

/// SYN-ACKs sent, by the workers (`synack_sent`) and by the XDP SYN offload
/// (`xdp_program.syn_acks_sent`, which the workers never see).
pub fn synacks_sent(stats: &serde_json::Value) -> u64 {
    event(stats, "synack_sent") + xdp_counter(stats, "syn_acks_sent")
}

/// A counter from a stats document: `total.events.NAME` (or `total.drops.NAME`).
pub fn event(stats: &serde_json::Value, name: &str) -> u64 {
    stats["total"]["events"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no event {name} in {stats:#}"))
}

/// `ss -tanH` in namespace `ns`: (state, recv-q, send-q, local, peer) per socket.
pub fn ss_tan(lab: &Lab, ns: &str) -> Vec<(String, u64, u64, String, String)> {
    let out = lab.ns_exec(ns, &["ss", "-tanH"]);
    assert!(out.status.success(), "ss failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5).then(|| {
                (
                    f[0].to_owned(),
                    f[1].parse().unwrap_or(0),
                    f[2].parse().unwrap_or(0),
                    f[3].to_owned(),
                    f[4].to_owned(),
                )
            })
        })
        .collect()
}
