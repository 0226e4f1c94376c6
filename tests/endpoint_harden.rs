//! Hardening with a real endpoint on AF_XDP (root): a SYN flood while 200 real Linux clients
//! connect, SIGKILL while loaded, and the link going down and up under the endpoint.

mod common;

use common::{event, Endpoint, Lab};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use synack::lab::{flood, FloodTarget};

/// One discard-mode conversation from the client namespace: connect, send, close first,
/// read until the server's FIN. Generous timeouts: under a flood a SYN may be lost in a
/// full RX ring and the client kernel retransmits it after 1 s.
fn converse(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"hello under flood")
        .map_err(|e| format!("write: {e}"))?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).map_err(|e| format!("read: {e}"))?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("unexpected data {rest:?}"))
    }
}

/// Run `n` conversations from `threads` threads in the client namespace.
fn clients(lab: &Lab, addr: SocketAddr, n: usize, threads: usize) -> Vec<Result<(), String>> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    synack::io::sys::enter_netns(&lab.client_ns).expect("enter client ns");
                    (0..n)
                        .filter(|i| i % threads == t)
                        .map(|_| converse(addr))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    })
}

/// A SYN flood from the client side of `lab` to its server's port 80.
fn flood_target(lab: &Lab) -> FloodTarget<'_> {
    FloodTarget {
        ns: &lab.client_ns,
        ifname: &lab.client_if,
        server_mac: lab.server_mac,
        dst: lab.server_v4,
        dst_port: 80,
    }
}

#[test]
fn syn_flood_while_200_real_clients_connect() {
    if !common::require_root("syn_flood_while_200_real_clients_connect") {
        return;
    }
    let lab = Lab::new("synflood", 1);
    let ep = Endpoint::start(
        &lab,
        &common::endpoint_toml(&lab, "0", "[xdp]\nmode = \"native\"\n"),
        &[],
    );
    let target = flood_target(&lab);
    let stop = AtomicBool::new(false);
    let addr = SocketAddr::new(lab.server_v4.into(), 9);
    let t0 = Instant::now();
    let (flooded, results) = std::thread::scope(|s| {
        let f = s.spawn(|| flood(&target, 3_000_000, Duration::from_secs(4), 1, &stop));
        // Let the flood get going, then connect.
        std::thread::sleep(Duration::from_millis(300));
        let results = clients(&lab, addr, 200, 8);
        (f.join().expect("flood thread"), results)
    });
    let flooded = flooded.expect("flood");
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of 200 clients failed under the flood: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let stats = ep.wait_stats(Duration::from_secs(3), "200 connections established", |s| {
        event(s, "established") >= 200
    });
    let answered = common::synacks_sent(&stats);
    println!(
        "syn flood: {} SYNs in {:.2} s while 200/200 clients completed ({:.1} s); {} SYN-ACKs answered",
        flooded.sent,
        flooded.elapsed.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        answered
    );
    assert!(
        flooded.sent > 10_000,
        "the flood sent only {}",
        flooded.sent
    );
    assert!(
        answered > 10_000,
        "only {answered} SYN-ACKs under the flood"
    );
    assert!(event(&stats, "established") >= 200);
}

#[test]
fn sigkill_while_loaded_detaches_and_restart_works() {
    if !common::require_root("sigkill_while_loaded_detaches_and_restart_works") {
        return;
    }
    let lab = Lab::new("killload", 1);
    let toml = common::endpoint_toml(&lab, "0", "[xdp]\nmode = \"native\"\n");
    let mut ep = Endpoint::start(&lab, &toml, &[]);
    let target = flood_target(&lab);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let f = s.spawn(|| flood(&target, 2_000_000, Duration::from_secs(3), 1, &stop));
        std::thread::sleep(Duration::from_millis(500));
        let st = ep.kill();
        assert!(!st.success());
        let _ = f.join();
    });
    // The program went with the process: the kernel answers port 80 again (refused).
    let t = Instant::now();
    while lab.xdp_attached(&lab.server_ns, &lab.server_if) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "XDP program still attached after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = lab.client_connect(lab.server_v4.into(), 80, Duration::from_secs(3));
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
    // A restart serves again.
    drop(ep);
    let _ep = Endpoint::start(&lab, &toml, &[]);
    let r = lab.in_ns(&lab.client_ns, || {
        converse(SocketAddr::new(lab.server_v4.into(), 9))
    });
    r.expect("a connection after the restart");
}

#[test]
fn link_down_and_up_survives_and_resumes() {
    if !common::require_root("link_down_and_up_survives_and_resumes") {
        return;
    }
    let lab = Lab::new("linkflap", 1);
    let mut ep = Endpoint::start(
        &lab,
        &common::endpoint_toml(&lab, "0", "[xdp]\nmode = \"native\"\n"),
        &[],
    );
    let addr = SocketAddr::new(lab.server_v4.into(), 9);
    lab.in_ns(&lab.client_ns, || converse(addr))
        .expect("before the flap");
    for updown in ["down", "up"] {
        let out = lab.ns_exec(
            &lab.server_ns,
            &["ip", "link", "set", "dev", &lab.server_if, updown],
        );
        assert!(out.status.success());
        std::thread::sleep(Duration::from_millis(700));
    }
    // A veth coming up needs a moment before it forwards.
    let t = Instant::now();
    loop {
        match lab.in_ns(&lab.client_ns, || converse(addr)) {
            Ok(()) => break,
            Err(e) => assert!(
                t.elapsed() < Duration::from_secs(10),
                "no service after the link came back: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Still the same process, still attached, and it stops cleanly.
    assert!(lab.xdp_attached(&lab.server_ns, &lab.server_if));
    // Counters reach the stats file within a publish period or two.
    ep.wait_stats(Duration::from_secs(3), "2 connections established", |s| {
        event(s, "established") >= 2
    });
    ep.interrupt_ok(Duration::from_secs(10));
}
