//! Root tests of two workers on a 2-queue veth (`numrxqueues 2 numtxqueues 2`): the XDP
//! program redirects each frame into the AF_XDP socket of its rx queue
//! (`ctx->rx_queue_index` → `xsks_map`), the veth sender — not a Toeplitz hash — picks
//! the queue, so synack's Toeplitz steering hands the flows that land on the wrong worker
//! to their owner. Both the endpoint's per-worker counters and `synack lab` show it.

mod common;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use common::{endpoint_toml, event, Endpoint, Lab};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Whether two CPUs are available; prints why the test is skipped otherwise.
fn two_cpus(test: &str) -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("SKIPPED {test}: needs 2 CPUs");
    }
    cpus >= 2
}

/// A worker's event counter.
fn wev(w: &serde_json::Value, name: &str) -> u64 {
    w["counters"]["events"][name].as_u64().unwrap_or(0)
}

#[test]
fn two_queues_each_worker_receives_and_hands_off_to_the_other() {
    let test = "two_queues_each_worker_receives_and_hands_off_to_the_other";
    if !common::require_root(test) || !two_cpus(test) {
        return;
    }
    let lab = Lab::new("mqwork", 2);
    let ep = Endpoint::start(
        &lab,
        &endpoint_toml(&lab, "0-1", ""),
        &["--xdp-mode", "native"],
    );
    const N: usize = 120;
    for i in 0..N {
        let ip: IpAddr = if i % 4 == 3 {
            lab.server_v6.into()
        } else {
            lab.server_v4.into()
        };
        let mut s = lab
            .client_connect(ip, 7, TIMEOUT)
            .unwrap_or_else(|e| panic!("connection {i} to {ip}: {e}"));
        let data = format!("flow {i}").into_bytes();
        s.write_all(&data).unwrap();
        let mut back = vec![0u8; data.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, data, "connection {i}");
    }
    let st = ep.wait_stats(TIMEOUT, "all established", |s| {
        event(s, "established") == N as u64
    });
    let ws = st["workers"].as_array().expect("workers");
    assert_eq!(ws.len(), 2, "{st:#}");
    for (i, w) in ws.iter().enumerate() {
        assert_eq!(w["queue"].as_u64(), Some(i as u64), "{st:#}");
        // Its own rx queue brought it frames (XDP steering by rx queue), some of which
        // another worker owns (Toeplitz steering), and it took the other's in turn.
        assert!(
            wev(w, "rx_frames") > 0,
            "worker {i} received nothing: {st:#}"
        );
        assert!(
            wev(w, "handoff_out") > 0,
            "worker {i} handed nothing off: {st:#}"
        );
        assert!(wev(w, "established") > 0, "worker {i} owns no flow: {st:#}");
    }
    assert_eq!(
        wev(&ws[0], "handoff_out"),
        wev(&ws[1], "handoff_in"),
        "{st:#}"
    );
    assert_eq!(
        wev(&ws[1], "handoff_out"),
        wev(&ws[0], "handoff_in"),
        "{st:#}"
    );
    assert_eq!(
        event(&st, "handoff_out"),
        event(&st, "handoff_in"),
        "{st:#}"
    );
    assert_eq!(
        st["xdp_program"]["redirect_failed"].as_u64(),
        Some(0),
        "{st:#}"
    );
}

#[test]
fn synack_lab_with_two_workers_shows_the_handoffs() {
    let test = "synack_lab_with_two_workers_shows_the_handoffs";
    if !common::require_root(test) || !two_cpus(test) {
        return;
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_synack"));
    cmd.args(["lab", "--workers", "0-1", "--connections", "200"])
        .args(["--flood-packets", "4000", "--flood-secs", "2"])
        .args(common::syn_offload_flags());
    let out = common::run_with_timeout(&mut cmd, Duration::from_secs(120)).expect("timed out");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("connections: 200 completed, 0 failed"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("endpoint:"))
        .unwrap_or_else(|| panic!("no endpoint line: {stdout}"));
    // "cpu0 queue0 busy 39.5% (rx 11160 frames, handed off 5534 out / 4472 in)"
    let mut per = Vec::new();
    for q in 0..2 {
        let at = line
            .find(&format!("queue{q} "))
            .unwrap_or_else(|| panic!("no queue{q}: {line}"));
        let rest = &line[at..];
        let num = |key: &str| -> u64 {
            let p = rest.find(key).unwrap_or_else(|| panic!("{key}: {line}")) + key.len();
            let digits: String = rest[p..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or_else(|_| panic!("{key}: {line}"))
        };
        per.push((num("(rx "), num("handed off "), num("out / ")));
    }
    for (q, (rx, out_, _)) in per.iter().enumerate() {
        assert!(*rx > 0 && *out_ > 0, "queue{q}: {line}");
    }
    assert_eq!(per[0].1, per[1].2, "{line}");
    assert_eq!(per[1].1, per[0].2, "{line}");
}
