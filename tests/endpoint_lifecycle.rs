//! The endpoint's life cycle on a veth lab (root): SIGKILL leaves no XDP program behind
//! and the kernel answers again, a restart works; generic XDP mode; two queues with two
//! workers and software steering; and `synack lab` itself.

mod common;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{endpoint_toml, event, Endpoint, Lab};

const TIMEOUT: Duration = Duration::from_secs(5);

/// One echo round trip over a fresh connection from the client namespace.
fn echo_once(lab: &Lab, ip: IpAddr, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = lab.client_connect(ip, 7, TIMEOUT)?;
    s.write_all(payload)?;
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back)?;
    Ok(back)
}

/// A GET on port 80; the whole answer (the server closes: `Connection: close`).
fn http_get(lab: &Lab, ip: IpAddr) -> std::io::Result<String> {
    let mut s = lab.client_connect(ip, 80, TIMEOUT)?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// SIGKILL: the bpf_link goes with the process, so no XDP program stays attached; the
/// kernel then owns port 80 again (no listener: connection refused instead of our
/// answer); a new endpoint starts on the same interface and serves.
#[test]
fn sigkill_detaches_and_restart_serves() {
    if !common::require_root("sigkill_detaches_and_restart_serves") {
        return;
    }
    let lab = Lab::new("kill", 1);
    let toml = endpoint_toml(&lab, "0", "");
    let mut ep = Endpoint::start(&lab, &toml, &[]);
    assert!(lab.xdp_attached(&lab.server_ns, &lab.server_if));
    let answer = http_get(&lab, lab.server_v4.into()).expect("http");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    let status = ep.kill();
    assert!(!status.success());
    let t0 = Instant::now();
    while lab.xdp_attached(&lab.server_ns, &lab.server_if) {
        assert!(
            t0.elapsed() < TIMEOUT,
            "XDP program still attached after SIGKILL: {}",
            lab.link_details(&lab.server_ns, &lab.server_if)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for ip in [IpAddr::V4(lab.server_v4), IpAddr::V6(lab.server_v6)] {
        let e = http_get(&lab, ip).expect_err("the kernel has no listener on 80");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{ip}: {e}");
    }

    let ep2 = Endpoint::start(&lab, &toml, &[]);
    assert!(lab.xdp_attached(&lab.server_ns, &lab.server_if));
    let answer = http_get(&lab, lab.server_v6.into()).expect("http after restart");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert_eq!(
        echo_once(&lab, lab.server_v4.into(), b"again").unwrap(),
        b"again"
    );
    let st = ep2.wait_stats(TIMEOUT, "2 connections", |s| event(s, "established") == 2);
    assert_eq!(event(&st, "established"), 2);
}

/// Generic (skb) XDP mode serves as native mode does, v4 and v6.
#[test]
fn generic_mode_serves() {
    if !common::require_root("generic_mode_serves") {
        return;
    }
    let lab = Lab::new("generic", 1);
    let ep = Endpoint::start(
        &lab,
        &endpoint_toml(&lab, "0", ""),
        &["--xdp-mode", "generic"],
    );
    assert!(lab
        .link_details(&lab.server_ns, &lab.server_if)
        .contains("xdpgeneric"));
    for ip in [IpAddr::V4(lab.server_v4), IpAddr::V6(lab.server_v6)] {
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert_eq!(echo_once(&lab, ip, &data).expect("echo"), data, "{ip}");
        let answer = http_get(&lab, ip).expect("http");
        assert!(answer.ends_with("synack\n"), "{answer}");
    }
    let st = ep.wait_stats(TIMEOUT, "4 connections", |s| event(s, "established") == 4);
    assert_eq!(st["xdp_mode"], "generic", "{st:#}");
}

/// Two queues, two workers, native mode: every connection completes although the veth
/// sender, not a Toeplitz hash, picks the queue, so some flows arrive at the worker that
/// does not own them and are handed over (`handoff_out` > 0).
#[test]
fn two_queues_two_workers_complete_every_connection() {
    if !common::require_root("two_queues_two_workers_complete_every_connection") {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("SKIPPED two_queues_two_workers_complete_every_connection: needs 2 CPUs");
        return;
    }
    let lab = Lab::new("mq", 2);
    let ep = Endpoint::start(
        &lab,
        &endpoint_toml(&lab, "0-1", ""),
        &["--xdp-mode", "native"],
    );
    const N: usize = 200;
    let ok = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (lab, ok, errors) = (&lab, &ok, &errors);
            s.spawn(move || {
                for i in (t..N).step_by(4) {
                    let ip: IpAddr = if i % 3 == 0 {
                        lab.server_v6.into()
                    } else {
                        lab.server_v4.into()
                    };
                    let data = format!("connection {i}").into_bytes();
                    match echo_once(lab, ip, &data) {
                        Ok(back) if back == data => {
                            ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        other => errors.lock().unwrap().push(format!("{i} {ip}: {other:?}")),
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    assert!(errors.is_empty(), "{} failed: {errors:?}", errors.len());
    assert_eq!(ok.into_inner(), N);
    // Each worker publishes its counters on its own (every 100 ms): wait until both have
    // published every handoff, not just every handshake (under load, and with the SYN
    // offload on, frames of the closes are still being handed off when the last
    // connection is counted established).
    let st = ep.wait_stats(TIMEOUT, "all established, every handoff taken", |s| {
        event(s, "established") == N as u64 && event(s, "handoff_out") == event(s, "handoff_in")
    });
    assert_eq!(st["workers"].as_array().map(Vec::len), Some(2), "{st:#}");
    assert!(event(&st, "handoff_out") > 0, "no handoff: {st:#}");
    assert_eq!(
        event(&st, "handoff_out"),
        event(&st, "handoff_in"),
        "{st:#}"
    );
}

/// `synack lab` with small numbers exits 0, reports every connection completed, and
/// leaves no namespace behind.
#[test]
fn synack_lab_runs_and_cleans_up() {
    if !common::require_root("synack_lab_runs_and_cleans_up") {
        return;
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_synack"));
    cmd.args(["lab", "--connections", "100", "--flood-packets", "2000"])
        .args(["--flood-secs", "2"])
        .args(common::syn_offload_flags());
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn synack lab");
    let pid = child.id();
    let out = child.wait_with_output().expect("synack lab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert!(
        stdout.contains("connections: 100 completed, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("SYN flood: 2000 SYNs sent"), "{stdout}");
    assert!(stdout.contains("synack lab: OK"), "{stdout}");
    common::assert_lab_cleaned_up(pid);
}
