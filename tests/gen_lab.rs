//! `synack gen` in a veth lab (root only): the generator in the client namespace on
//! AF_XDP, against the Linux kernel and against `synack run` in the server namespace, with
//! small counts bounded by `--count` and `--duration`. Every connection must complete.

mod common;

use common::{require_root, run_with_timeout, Lab};
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_synack");

/// A source range outside the lab's own /24, routed back to the client in the kernel case.
fn sources(lab: &Lab) -> String {
    let o = lab.client_v4.octets();
    let c = if o[1] == 19 && o[2] == 250 { 251 } else { 250 };
    format!("{}/28", Ipv4Addr::new(198, 19, c, 0))
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("synack-gen-{}-{name}", std::process::id()))
}

/// Run `synack gen` in the client namespace and return its JSON report. Each run takes
/// source ports of its own (`ports`): a tuple reused while the server still holds it in
/// TIME-WAIT would be answered by an ACK instead of a SYN-ACK (RFC 9293 §3.10.7.4).
fn gen(lab: &Lab, target: &str, ports: &str, extra: &[&str], name: &str) -> serde_json::Value {
    let json = tmp(name);
    let _ = std::fs::remove_file(&json);
    let src = sources(lab);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.client_ns, BIN, "gen"])
        .args(["--interface", &lab.client_if, "--target", target])
        .args(["--source", &src, "--source-ports", ports])
        .args(["--xdp-mode", "generic", "--drain-ms", "3000"])
        .args(["--json", json.to_str().unwrap()])
        .args(extra);
    if !extra.contains(&"--duration") {
        cmd.args(["--duration", "10"]);
    }
    let out = run_with_timeout(&mut cmd, Duration::from_secs(40))
        .unwrap_or_else(|| panic!("synack gen timed out: {cmd:?}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "synack gen failed: {stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    let text = std::fs::read_to_string(&json).expect("gen --json written");
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&text).expect("gen JSON parses")
}

fn stat(v: &serde_json::Value, k: &str) -> u64 {
    v["stats"][k]
        .as_u64()
        .unwrap_or_else(|| panic!("no stats.{k} in {v}"))
}

/// A kernel listener in the server namespace: accept, read to EOF, close (synack's
/// `discard` behaviour). Stops when `stop` is set.
fn kernel_listener(lab: &Lab, port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let addr = (lab.server_v4, port);
    let listener = lab.in_ns(&lab.server_ns, move || {
        TcpListener::bind(addr).expect("bind")
    });
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let mut served = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                    let mut buf = [0u8; 512];
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                    served += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_micros(100)),
            }
        }
        served
    })
}

/// The Linux kernel (tcp_syncookies=2) as the target: 300 connections, client-first
/// close, all completed; then a bounded SYN flood, every SYN answered. Paced at 3000/s:
/// the std listener's accept backlog is 128, and a full accept queue makes the kernel
/// drop SYNs and cookie ACKs (that is the kernel, not the generator).
#[test]
fn gen_against_the_kernel() {
    if !require_root("gen_against_the_kernel") {
        return;
    }
    let lab = Lab::new("genk", 1);
    let src = sources(&lab);
    let via = lab.client_v4.to_string();
    let out = lab.ns_exec(&lab.server_ns, &["ip", "route", "add", &src, "via", &via]);
    assert!(out.status.success(), "route add failed");
    let out = lab.ns_exec(
        &lab.server_ns,
        &["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"],
    );
    assert!(out.status.success(), "sysctl failed");
    let stop = Arc::new(AtomicBool::new(false));
    let server = kernel_listener(&lab, 9, stop.clone());
    let target = format!("{}:9", lab.server_v4);
    let v = gen(
        &lab,
        &target,
        "20000-20999",
        &["--count", "300", "--rate", "3000"],
        "kernel-connect",
    );
    stop.store(true, Ordering::Relaxed);
    let served = server.join().expect("listener thread");
    assert_eq!(stat(&v, "attempted"), 300, "{v}");
    assert_eq!(stat(&v, "completed"), 300, "{v}");
    assert_eq!(stat(&v, "failed_reset") + stat(&v, "failed_timeout"), 0);
    assert_eq!(served, 300, "the kernel listener accepted every connection");
    assert!(v["handshake_us"]["count"].as_u64() == Some(300));

    // The flood needs a listening port (a closed one answers RST); cookies
    // (tcp_syncookies=2) keep the kernel from holding any state for it.
    let flood_listener = lab.in_ns(&lab.server_ns, || {
        TcpListener::bind((lab.server_v4, 80)).expect("bind 80")
    });
    let target = format!("{}:80", lab.server_v4);
    let v = gen(
        &lab,
        &target,
        "21000-29999",
        &["--syn-flood", "--count", "5000"],
        "kernel-flood",
    );
    drop(flood_listener);
    assert_eq!(stat(&v, "attempted"), 5000);
    assert_eq!(stat(&v, "synack_received"), 5000, "{v}");
}

/// Stops a `synack run` child on drop: SIGTERM by its pid, then SIGKILL if it lingers.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `synack run` in the server namespace with `listen` (PORT:MODE each), generic XDP,
/// one worker; returns once it is ready.
fn start_synack(lab: &Lab, listen: &[&str]) -> Server {
    let ready = tmp(&format!("ready-{}", lab.server_if));
    let _ = std::fs::remove_file(&ready);
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.server_ns, BIN, "run"])
        .args(["--interface", &lab.server_if])
        .args(["--address", &lab.server_v4.to_string()])
        .args(listen.iter().flat_map(|l| ["--listen", l]))
        .args(["--workers", "0", "--xdp-mode", "generic"])
        .args(common::syn_offload_flags())
        .args(["--ready-file", ready.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn synack run");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "synack run did not get ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&ready);
    server
}

/// `synack run` as the target: connect (client-first), HTTP GET (keep-alive, client
/// first), HTTP GET with `Connection: close` (server first), and a SYN flood.
#[test]
fn gen_against_synack_run() {
    if !require_root("gen_against_synack_run") {
        return;
    }
    let lab = Lab::new("gens", 1);
    let _server = start_synack(&lab, &["9:discard", "80:http"]);

    let t9 = format!("{}:9", lab.server_v4);
    let t80 = format!("{}:80", lab.server_v4);
    let v = gen(
        &lab,
        &t9,
        "20000-20999",
        &["--count", "500"],
        "synack-connect",
    );
    assert_eq!(stat(&v, "completed"), 500, "{v}");
    assert_eq!(stat(&v, "attempted"), 500);

    let v = gen(
        &lab,
        &t80,
        "21000-21999",
        &["--count", "400", "--http-get", "/", "--expect-bytes", "17"],
        "synack-http",
    );
    assert_eq!(stat(&v, "completed"), 400, "{v}");
    assert_eq!(stat(&v, "replies"), 400, "{v}");

    let v = gen(
        &lab,
        &t80,
        "22000-22999",
        &[
            "--count",
            "300",
            "--http-get",
            "/",
            "--server-first",
            "--expect-bytes",
            "17",
        ],
        "synack-http-close",
    );
    assert_eq!(stat(&v, "completed"), 300, "{v}");
    assert_eq!(stat(&v, "replies"), 300, "{v}");

    let v = gen(
        &lab,
        &t80,
        "23000-29999",
        // Paced: the test binary is a debug build sharing two cores with other tests.
        &["--syn-flood", "--count", "10000", "--rate", "40000"],
        "synack-flood",
    );
    assert_eq!(stat(&v, "attempted"), 10000);
    assert_eq!(stat(&v, "synack_received"), 10000, "{v}");
}

/// `--rate`: new connections are paced to within 5 % of the rate asked for (2000/s for 2 s,
/// a rate far below what the generator can do, so the schedule alone sets it), and every
/// one completes.
#[test]
fn gen_fixed_rate_is_held_within_5_percent() {
    if !require_root("gen_fixed_rate_is_held_within_5_percent") {
        return;
    }
    let lab = Lab::new("genr", 1);
    let _server = start_synack(&lab, &["9:discard"]);
    let t9 = format!("{}:9", lab.server_v4);
    let v = gen(
        &lab,
        &t9,
        "30000-39999",
        &["--rate", "2000", "--count", "100000", "--duration", "2"],
        "synack-rate",
    );
    let err = v["rate_error"].as_f64().expect("rate_error");
    assert!(err.abs() < 0.05, "rate off by {:.1} %: {v}", err * 100.0);
    assert_eq!(stat(&v, "completed"), stat(&v, "attempted"), "{v}");
    assert!(stat(&v, "attempted") >= 3800, "{v}");
}

/// `--concurrency`: 100 connections held open against echo for 2 s, each sending its
/// request every 50 ms; after the ramp all 100 stay established (none closes, so none is
/// replaced), the requests are answered and timed, and at the end every one closes
/// cleanly.
#[test]
fn gen_steady_concurrency_against_synack_run() {
    if !require_root("gen_steady_concurrency_against_synack_run") {
        return;
    }
    let lab = Lab::new("genc", 1);
    let _server = start_synack(&lab, &["7:echo"]);
    let t7 = format!("{}:7", lab.server_v4);
    let v = gen(
        &lab,
        &t7,
        "40000-49999",
        &[
            "--concurrency",
            "100",
            "--request",
            "ping\\n",
            "--expect-bytes",
            "5",
            "--interval-ms",
            "50",
            "--duration",
            "2",
        ],
        "synack-steady",
    );
    assert_eq!(v["mode"], "steady", "{v}");
    let st = &v["steady"];
    assert_eq!(st["active_min"].as_u64(), Some(100), "{v}");
    assert_eq!(st["active_max"].as_u64(), Some(100), "{v}");
    assert!(st["samples"].as_u64().unwrap_or(0) >= 5, "{v}");
    assert_eq!(stat(&v, "attempted"), 100, "{v}");
    assert_eq!(stat(&v, "completed"), 100, "{v}");
    assert_eq!(
        stat(&v, "failed_timeout") + stat(&v, "failed_reset"),
        0,
        "{v}"
    );
    // About 100 × 2 s / 50 ms requests; each answered one is timed.
    assert!(stat(&v, "requests") >= 2000, "{v}");
    assert!(
        st["request_us"]["count"].as_u64().unwrap_or(0) >= 2000,
        "{v}"
    );
}
