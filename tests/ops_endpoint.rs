//! Operability of a running endpoint (issue: Prometheus metrics, pcap capture, live view,
//! reload on SIGHUP). Root-only: each test builds its own veth lab in fresh namespaces and
//! runs `synack run` in the server namespace.

mod common;

use common::{Endpoint, Lab};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The test endpoint (ports 80 http, 7 echo, 9 discard, 13 close) with `extra` config.
fn start(lab: &Lab, extra: &str, flags: &[&str]) -> Endpoint {
    Endpoint::start(lab, &common::endpoint_toml(lab, "0", extra), flags)
}

/// Poll `f` for up to 10 s.
fn wait_for(ep: &Endpoint, mut f: impl FnMut() -> bool, what: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "timed out waiting for {what}; stderr:\n{}",
        ep.stderr_text()
    );
}

/// SIGINT, exit 0 within 10 s; returns the log.
fn stop(mut ep: Endpoint) -> String {
    ep.interrupt_ok(Duration::from_secs(10));
    ep.stderr_text()
}

/// A client connection to the server's IPv4 `port`, with 3 s for the connect and for every
/// read and write.
fn connect(lab: &Lab, port: u16) -> TcpStream {
    lab.client_connect(lab.server_v4.into(), port, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("connect to port {port}: {e}"))
}

fn echo(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

/// Scrape the metrics endpoint with curl (a real HTTP client) inside the server namespace.
fn scrape(lab: &Lab, port: u16) -> String {
    let out = lab.ns_exec(
        &lab.server_ns,
        &[
            "curl",
            "-sf",
            "--max-time",
            "3",
            &format!("http://127.0.0.1:{port}/metrics"),
        ],
    );
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {prefix} in:\n{text}"))
}

#[test]
fn prometheus_endpoint_is_scraped_by_a_real_http_client() {
    if !common::require_root("prometheus_endpoint_is_scraped_by_a_real_http_client") {
        return;
    }
    let lab = Lab::new("metrics", 1);
    let ep = start(&lab, "", &["--metrics", "127.0.0.1:9464", "--quiet"]);
    let mut s = connect(&lab, 7);
    echo(&mut s, b"ping");
    // The text is refreshed every stats interval (1 s).
    let mut text = String::new();
    wait_for(
        &ep,
        || {
            text = scrape(&lab, 9464);
            metric(&text, "synack_active_connections{worker=\"0\"}") == 1.0
        },
        "active_connections 1 in the metrics",
    );
    assert_eq!(metric(&text, "synack_up "), 1.0);
    assert!(
        metric(
            &text,
            "synack_events_total{worker=\"0\",event=\"cookie_ok\"}"
        ) >= 1.0
    );
    assert!(metric(&text, "synack_xdp_program_total{verdict=\"redirected\"}") >= 3.0);
    assert!(text.contains("synack_drops_total{worker=\"0\",reason=\"bad_tcp_checksum\"} 0"));
    assert!(text.contains("# TYPE synack_drops_total counter"));
    drop(s);
    let log = stop(ep);
    assert!(log.contains("serving Prometheus metrics"), "{log}");
}

/// tshark's one-line summaries and comments of a capture file.
fn tshark(file: &Path, fields: &[&str]) -> String {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file).args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark is installed (scripts/deps.sh)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Start the endpoint capturing in `mode` to a fresh temporary file, with one more flag.
fn start_capturing(
    lab: &Lab,
    mode: &str,
    flag: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Endpoint) {
    let dir = std::env::temp_dir().join(format!("synack-cap-{}-{mode}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{mode}.pcapng"));
    let path = file.to_str().unwrap().to_owned();
    let ep = start(lab, "", &["--capture", &path, "--capture-mode", mode, flag]);
    (dir, file, ep)
}

#[test]
fn capture_of_dropped_frames_reads_back_in_tshark_with_reasons() {
    if !common::require_root("capture_of_dropped_frames_reads_back_in_tshark_with_reasons") {
        return;
    }
    let lab = Lab::new("capdrop", 1);
    let (dir, file, ep) = start_capturing(&lab, "dropped", "--quiet");
    // A keepalive probe (SEG.SEQ = RCV.NXT - 1, RFC 9293 §3.8.4) is unacceptable by the
    // sequence check: it is answered with an ACK and dropped as out_of_window.
    let s = connect(&lab, 9);
    let sock = socket2_keepalive(&s);
    assert!(sock, "could not enable keepalive");
    std::thread::sleep(Duration::from_millis(3500));
    drop(s);
    stop(ep);
    let comments = tshark(&file, &["tcp.dstport", "frame.comment"]);
    assert!(
        comments
            .lines()
            .any(|l| l.starts_with("9\t") && l.contains("dropped: out_of_window")),
        "no out_of_window drop to port 9 in the capture:\n{comments}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// TCP keepalive with a 1 s idle time and interval (std has no keepalive API).
fn socket2_keepalive(s: &TcpStream) -> bool {
    synack::io::sys::set_keepalive(s, 1, 1)
}

#[test]
fn capture_all_and_live_json_lines() {
    if !common::require_root("capture_all_and_live_json_lines") {
        return;
    }
    let lab = Lab::new("capall", 1);
    let (dir, file, ep) = start_capturing(&lab, "all", "--json-lines");
    let mut s = connect(&lab, 7);
    echo(&mut s, b"capture me");
    drop(s);
    std::thread::sleep(Duration::from_millis(600));
    let stdout = std::fs::read_to_string(&ep.stdout).unwrap_or_default();
    let offload = ep.stats()["xdp_syn_offload"] == true;
    stop(ep);
    let out = tshark(&file, &["tcp.flags.str", "tcp.dstport"]);
    // With the SYN offload on, the SYN and its SYN-ACK never reach a worker (README,
    // capture): the capture starts with the handshake's ACK.
    let first = if offload { "A" } else { "S" };
    assert!(
        out.lines().next().is_some_and(|l| l.contains(first)
            && !(offload && l.contains("S"))
            && l.ends_with("\t7")),
        "first frame is the {} to 7:\n{out}",
        if offload { "ACK" } else { "SYN" }
    );
    assert!(
        out.lines().count() >= 4,
        "handshake, data and close captured:\n{out}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(lines.len() >= 2, "json lines every 100 ms:\n{stdout}");
    assert!(lines
        .iter()
        .any(|v| v["total"]["events"]["established"].as_u64() == Some(1)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_reload_changes_listeners_and_keeps_connections() {
    if !common::require_root("sighup_reload_changes_listeners_and_keeps_connections") {
        return;
    }
    let lab = Lab::new("reload", 1);
    let ep = start(
        &lab,
        "[tcp]\ncookie_secret = \"00112233445566778899aabbccddeeff\"\n",
        &["--quiet"],
    );
    let mut kept = connect(&lab, 7);
    echo(&mut kept, b"before");
    // New file: port 9 becomes 19 (http), a new secret.
    let cfg = ep.dir.join("endpoint.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("port = 9\nmode = \"discard\"", "port = 19\nmode = \"http\"")
        .replace(
            "00112233445566778899aabbccddeeff",
            "ffeeddccbbaa99887766554433221100",
        );
    std::fs::write(&cfg, text).unwrap();
    common::signal(ep.pid(), "HUP");
    wait_for(
        &ep,
        || ep.stderr_text().contains("configuration reloaded"),
        "the reload log line",
    );
    // The established connection survives and still echoes.
    echo(&mut kept, b"after reload");
    // The new listener answers HTTP; the removed port goes back to the kernel (refused).
    let mut h = connect(&lab, 19);
    h.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    h.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    let refused = lab.client_connect(lab.server_v4.into(), 9, Duration::from_secs(3));
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    drop(kept);
    let log = stop(ep);
    assert!(!log.contains("not applied"), "{log}");
}
