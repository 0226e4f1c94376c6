//! The root netns harness of the integration tests (the in-memory one, without root, is
//! `tests/support`: the test kit `synack::testkit`): a thin adapter over the project's one
//! netns lab library, [`synack::lab::netns`] and [`synack::lab::endpoint`], that turns its
//! errors into test panics and keeps the names the test files use ([`Lab`], [`Endpoint`],
//! [`in_netns`], [`signal`], …), plus commands with a timeout and the root check.
//!
//! Network rules: traffic stays inside the namespaces a [`Lab`] creates; addresses come from
//! 198.18.0.0/15 and 2001:2::/48; the root namespace and eth0 are never touched; a `Lab`
//! removes its namespaces on drop, also when the test panics.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use synack::lab::netns::{self, VethLab, VethSpec};
use synack::lab::{EndpointSpec, OnDrop};

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

/// `--syn-offload MODE` when [`SYN_OFFLOAD_ENV`] forces a mode, else nothing: for the tests
/// that start `synack lab` or `synack run` themselves (`synack lab --syn-offload on` gives
/// its veth peers the pass-through XDP program it needs in native mode itself).
pub fn syn_offload_flags() -> Vec<&'static str> {
    forced_syn_offload().map_or(Vec::new(), |m| vec!["--syn-offload", m])
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

/// Two namespaces (client, server) joined by a veth pair: the library's
/// [`synack::lab::VethLab`] (its fields: `client_ns`, `server_if`, `server_v4`,
/// `client_mac`, …), with panicking helpers for tests. Dropping it deletes both
/// namespaces, which deletes the veth with them, also when the test panics.
#[derive(Debug)]
pub struct Lab {
    inner: VethLab,
}

impl std::ops::Deref for Lab {
    type Target = VethLab;
    fn deref(&self) -> &VethLab {
        &self.inner
    }
}

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// A new lab. `tag` (letters/digits) makes names readable; `queues` > 1 creates a
    /// multi-queue veth (`numrxqueues N numtxqueues N`), 0 or 1 a single-queue one.
    /// Checksum offload is off on both ends ([`synack::lab::netns::link_up`] says why).
    pub fn new(tag: &str, queues: u32) -> Lab {
        netns::remove_stale(NS_PREFIX);
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        // A distinct subnet per lab (and per process, as far as 512 slots go).
        let slot = (pid.wrapping_mul(7).wrapping_add(n)) % 512;
        let (b, c) = (18 + (slot / 256) as u8, (slot % 256) as u8);
        let spec = VethSpec {
            client_ns: format!("{NS_PREFIX}{pid}-{n}-{tag}-c"),
            server_ns: format!("{NS_PREFIX}{pid}-{n}-{tag}-s"),
            // IFNAMSIZ (15 chars): "vc"/"vs" + pid hex + counter hex.
            client_if: format!("vc{pid:x}x{n:x}"),
            server_if: format!("vs{pid:x}x{n:x}"),
            client_v4: Ipv4Addr::new(198, b, c, 1),
            server_v4: Ipv4Addr::new(198, b, c, 2),
            client_v6: Ipv6Addr::new(0x2001, 2, 0, slot as u16, 0, 0, 0, 1),
            server_v6: Ipv6Addr::new(0x2001, 2, 0, slot as u16, 0, 0, 0, 2),
            queues,
            static_neighbours: false,
            keep: false,
        };
        let inner = VethLab::create(&spec).unwrap_or_else(|e| panic!("creating lab {tag}: {e:#}"));
        Lab { inner }
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
        let prog = if self.xdp_attached(&self.client_ns, &self.client_if) {
            None
        } else {
            synack::lab::endpoint::offload_peer_program(
                synack::config::SynOffloadMode::On,
                synack::io::XdpMode::Native,
                &self.client_ns,
                &self.client_if,
            )
            .unwrap_or_else(|e| panic!("{e:#}"))
        };
        self.inner
            .add_static_neighbours()
            .unwrap_or_else(|e| panic!("{e:#}"));
        prog
    }

    /// `ip netns exec <ns> args...` with a 60 s cap (panics on timeout, not on failure).
    pub fn ns_exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args);
        run_with_timeout(&mut cmd, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("`ip netns exec {ns} {args:?}` timed out"))
    }

    /// Run `f` on a new thread that has joined namespace `ns` (see [`in_netns`]).
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

    /// Set the MTU of both ends of the veth (client and server side).
    pub fn set_mtu(&self, mtu: u32) {
        let mtu = mtu.to_string();
        for (ns, ifname) in [
            (&self.client_ns, &self.client_if),
            (&self.server_ns, &self.server_if),
        ] {
            let out = self.ns_exec(ns, &["ip", "link", "set", "dev", ifname, "mtu", &mtu]);
            assert!(out.status.success(), "set mtu {mtu} on {ifname}: {out:?}");
        }
    }

    /// A TCP connection from the client namespace (a real Linux client) to `ip:port`, with
    /// `timeout` for the connect and for every read and write on it.
    pub fn client_connect(
        &self,
        ip: IpAddr,
        port: u16,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        self.in_ns(&self.client_ns, || {
            let s = TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout)?;
            s.set_read_timeout(Some(timeout))?;
            s.set_write_timeout(Some(timeout))?;
            Ok(s)
        })
    }

    /// A kernel SNMP counter (e.g. `("Tcp", "InSegs")`) of namespace `ns`.
    pub fn snmp(&self, ns: &str, proto: &str, field: &str) -> u64 {
        netns::ns_snmp(ns, "snmp", proto, field).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

pub use synack::lab::netns::xdp_in_link_details;

/// Run `f` on a thread inside network namespace `ns` (setns on /var/run/netns/<ns>):
/// std::net sockets, AF_XDP sockets and XDP attach then act in that namespace. Sockets
/// keep their namespace after the thread ends. A panic in `f` is propagated.
pub fn in_netns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> R {
    netns::in_netns(ns, f).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The input of a `BPF_PROG_TEST_RUN` call (no NIC): `frame`, run `repeat` times (0 and 1
/// both mean once), every other field the kernel's default.
pub fn test_run_input(frame: &[u8], repeat: u32) -> synack::io::test_run::XdpTestRun<'_> {
    synack::io::test_run::XdpTestRun {
        frame,
        repeat,
        ..Default::default()
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
    netns::signal(pid, sig).unwrap_or_else(|e| panic!("{e:#}"));
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

/// Never set: the tests' endpoints are not interrupted by a signal handler.
static NO_STOP: AtomicBool = AtomicBool::new(false);

/// `synack run` in a lab's server namespace: the library's [`synack::lab::Endpoint`]
/// (its fields: `ready`, `stats`, `stdout`, `stderr`, `config`) with panicking helpers.
/// Its files are in `dir` (`endpoint.toml`, …). Dropping it kills the pid (SIGKILL) and
/// removes the directory.
pub struct Endpoint {
    inner: synack::lab::Endpoint,
    /// The directory of its files.
    pub dir: std::path::PathBuf,
    /// The client veth's pass-through XDP program when the offload is forced on
    /// ([`Lab::give_client_napi`]); detached when the endpoint goes (after it: fields drop
    /// in this order).
    pub client_prog: Option<synack::io::bpf::XdpProgram>,
}

impl std::ops::Deref for Endpoint {
    type Target = synack::lab::Endpoint;
    fn deref(&self) -> &synack::lab::Endpoint {
        &self.inner
    }
}

impl Endpoint {
    /// Start the endpoint with config `toml` and extra flags; wait (at most 20 s) for its
    /// ready file and its first stats file. Panics with its stderr if it does not come up.
    ///
    /// With [`SYN_OFFLOAD_ENV`] set (and neither the config nor the flags setting the
    /// offload), `--syn-offload on|off` is added; `on` also gives the client veth NAPI.
    pub fn start(lab: &Lab, toml: &str, flags: &[&str]) -> Endpoint {
        Endpoint::start_env(lab, toml, flags, &[])
    }

    /// [`Endpoint::start`] with extra environment variables for `synack run`.
    pub fn start_env(lab: &Lab, toml: &str, flags: &[&str], env: &[(&str, &str)]) -> Endpoint {
        let n = ENDPOINT_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("synack-ep-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let forced = forced_syn_offload().filter(|_| {
            !toml.contains("syn_offload") && !flags.iter().any(|f| f == "--syn-offload")
        });
        let mut client_prog = None;
        if let Some(mode) = forced {
            flags.extend(["--syn-offload".to_owned(), mode.to_owned()]);
            if mode == "on" {
                client_prog = lab.give_client_napi();
            }
        }
        let spec = EndpointSpec {
            ns: lab.server_ns.clone(),
            exe: env!("CARGO_BIN_EXE_synack").into(),
            dir: dir.clone(),
            tag: "endpoint".to_owned(),
            config: toml.to_owned(),
            flags,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            on_drop: OnDrop::Kill,
        };
        match synack::lab::Endpoint::start(&spec, &NO_STOP) {
            Ok(inner) => Endpoint {
                inner,
                dir,
                client_prog,
            },
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                panic!("synack run did not come up: {e:#}")
            }
        }
    }

    pub fn pid(&self) -> u32 {
        let pid = self.inner.pid();
        assert_ne!(pid, 0, "the endpoint is not running");
        pid
    }

    /// The stats JSON as it is now.
    pub fn stats(&self) -> serde_json::Value {
        self.inner.stats_now().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The stats JSON once it was rewritten after this call (bounded: 5 s).
    pub fn fresh_stats(&self) -> serde_json::Value {
        self.inner
            .fresh_stats(&NO_STOP)
            .unwrap_or_else(|e| panic!("{e:#}"))
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
        self.inner
            .stop(timeout)
            .unwrap_or_else(|e| panic!("synack run: {e:#}"))
    }

    /// [`Endpoint::interrupt`] that must end in a clean exit (status 0), else a panic with
    /// the status and its stderr; returns how long the exit took.
    pub fn interrupt_ok(&mut self, timeout: Duration) -> Duration {
        let (status, took) = self.interrupt(timeout);
        assert!(
            status.success(),
            "exit {status} after {took:?}: {}",
            self.stderr_text()
        );
        took
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> std::process::ExitStatus {
        self.inner.kill().unwrap_or_else(|e| panic!("{e:#}"))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // The inner endpoint is killed when it drops, after this; the directory goes now
        // (a running process keeps its open files).
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Everything the peer sends until its FIN; panics on a reset or a read timeout.
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("read until the server's FIN (no reset, no timeout)");
    out
}

/// A counter from a stats document: `total.events.NAME` (or `total.drops.NAME`).
pub fn event(stats: &serde_json::Value, name: &str) -> u64 {
    stats["total"]["events"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no event {name} in {stats:#}"))
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

/// No namespace of the `synack lab` process `pid` is left, nor its temporary directory.
pub fn assert_lab_cleaned_up(pid: u32) {
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let prefix = format!("synack-lab{pid}-");
    assert!(!list.contains(&prefix), "namespaces left behind: {list}");
    assert!(!std::env::temp_dir()
        .join(format!("synack-lab-{pid}"))
        .exists());
}
