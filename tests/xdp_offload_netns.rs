//! The XDP SYN offload against real Linux clients on a veth lab (root): the SYN-ACK comes
//! from the XDP program (its counter says so, the workers count no SYN), the Linux client
//! completes the handshake with window scaling, SACK and timestamps intact, data flows both
//! ways, and both closes work; over IPv4 and IPv6, in generic mode (`auto` turns the
//! offload on there) and in native mode (`on`, with an XDP program on the client veth: a
//! veth delivers its peer's XDP_TX frames promptly only then, kernel `veth_xdp_flush`).

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use common::{endpoint_toml, event, read_to_eof, xdp_counter, Endpoint, Lab};
use synack::io::afxdp::AfXdpPort;
use synack::io::bpf::{Filter, XdpProgram};
use synack::io::{Port, XdpMode};
use synack::testkit::Peer;
use synack::wire::{TcpFlags, TcpOptions};

const TIMEOUT: Duration = Duration::from_secs(5);

fn connect(lab: &Lab, ep: &Endpoint, ip: IpAddr, port: u16) -> TcpStream {
    lab.client_connect(ip, port, TIMEOUT).unwrap_or_else(|e| {
        let stats = |ns: &str, ifname: &str| {
            String::from_utf8_lossy(&lab.ns_exec(ns, &["ethtool", "-S", ifname]).stdout)
                .lines()
                .filter(|l| !l.ends_with(": 0"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let nstat = String::from_utf8_lossy(&lab.ns_exec(&lab.client_ns, &["nstat", "-a"]).stdout)
            .into_owned();
        panic!(
            "connect to {ip}:{port}: {e}; server veth:\n{}\nclient veth:\n{}\nclient nstat:\n{nstat}\n{:#}",
            stats(&lab.server_ns, &lab.server_if),
            stats(&lab.client_ns, &lab.client_if),
            ep.stats()
        )
    })
}

/// `ss -tni` of the client's socket to `peer`: the line with its TCP info.
fn client_tcp_info(lab: &Lab, peer: SocketAddr) -> String {
    let out = lab.ns_exec(&lab.client_ns, &["ss", "-tniH", "dst", &peer.to_string()]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How much data each echo connection sends back and forth (in native mode through the
/// client veth's 256-frame XDP ring as well).
const ECHO_BYTES: u32 = 200_000;

fn offload_serves_real_clients(tag: &str, xdp_section: &str, client_xdp: bool) {
    let lab = Lab::new(tag, 1);
    // Our own program with an empty filter passes everything to the client's kernel.
    let _client_prog = client_xdp.then(|| {
        lab.in_ns(&lab.client_ns, || {
            XdpProgram::attach(&lab.client_if, XdpMode::Native, &Filter::default())
                .expect("XDP on the client veth")
        })
    });
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", xdp_section), &[]);
    let mut conns = 0;
    for ip in [IpAddr::V4(lab.server_v4), IpAddr::V6(lab.server_v6)] {
        // Echo: the handshake from an XDP cookie, then data both ways; the client closes.
        let mut s = connect(&lab, &ep, ip, 7);
        // The client's view: window scaling on (echo offers shift 0), and timestamps in use
        // (its MSS is 1460 - 12 over IPv4, 1440 - 12 over IPv6). (This machine's `ss`
        // does not print the ts/sack flags; SACK-permitted in the XDP SYN-ACK is pinned
        // byte for byte by tests/xdp_offload.rs.)
        let info = client_tcp_info(&lab, s.peer_addr().unwrap());
        assert!(
            info.contains("wscale:0,"),
            "window scaling over {ip}: {info}"
        );
        let mss = if ip.is_ipv4() { "mss:1448" } else { "mss:1428" };
        assert!(info.contains(mss), "timestamps over {ip}: {info}");
        let data: Vec<u8> = (0..ECHO_BYTES).map(|i| (i * 13) as u8).collect();
        let mut back = vec![0u8; data.len()];
        std::thread::scope(|sc| {
            let mut w = s.try_clone().unwrap();
            let d = &data;
            sc.spawn(move || w.write_all(d).expect("send"));
            if let Err(e) = s.read_exact(&mut back) {
                panic!("echo over {ip}: {e}; {:#}", ep.stats());
            }
        });
        assert!(back == data, "echoed bytes over {ip}");
        s.shutdown(Shutdown::Write).unwrap();
        assert!(
            read_to_eof(&mut s).is_empty(),
            "over {ip}: the server's FIN"
        );
        // Close mode: the server closes first.
        let mut c = connect(&lab, &ep, ip, 13);
        assert!(
            read_to_eof(&mut c).is_empty(),
            "over {ip}: the server's FIN first"
        );
        drop(c);
        conns += 2;
    }
    // The close-mode connections wait in our TIME-WAIT; the echo ones are closed.
    let st = ep.wait_stats(TIMEOUT, "both closes", |s| {
        event(s, "established") == conns && event(s, "closed") + event(s, "time_wait") >= conns
    });
    assert_eq!(event(&st, "established"), conns, "{st:#}");
    assert_eq!(st["xdp_syn_offload"], true, "{st:#}");
    assert!(
        xdp_counter(&st, "syn_acks_sent") >= conns,
        "the SYN-ACKs came from XDP: {st:#}"
    );
    assert_eq!(
        event(&st, "syn_received"),
        0,
        "no SYN reached a worker: {st:#}"
    );
    assert!(
        xdp_counter(&st, "cookie_acks_to_userspace") >= conns,
        "{st:#}"
    );
    assert_eq!(xdp_counter(&st, "acks_dropped"), 0, "{st:#}");
}

#[test]
fn xdp_cookies_complete_real_linux_handshakes_generic_auto() {
    if !common::require_root("xdp_cookies_complete_real_linux_handshakes_generic_auto") {
        return;
    }
    offload_serves_real_clients("xoffgen", "[xdp]\nmode = \"generic\"\n", false);
}

#[test]
fn xdp_cookies_complete_real_linux_handshakes_native_on() {
    if !common::require_root("xdp_cookies_complete_real_linux_handshakes_native_on") {
        return;
    }
    offload_serves_real_clients(
        "xoffnat",
        "[xdp]\nmode = \"native\"\nsyn_offload = \"on\"\n",
        true,
    );
}

/// `auto` on a veth in native mode leaves the offload off (the peer may lack NAPI for
/// XDP_TX frames): the workers answer the SYNs, as before.
#[test]
fn auto_offload_stays_off_on_native_veth() {
    if !common::require_root("auto_offload_stays_off_on_native_veth") {
        return;
    }
    let lab = Lab::new("xoffauto", 1);
    let ep = Endpoint::start(
        &lab,
        // `auto` written out, so a forced offload (common::SYN_OFFLOAD_ENV) leaves it be.
        &endpoint_toml(
            &lab,
            "0",
            "[xdp]\nmode = \"native\"\nsyn_offload = \"auto\"\n",
        ),
        &[],
    );
    let mut s = connect(&lab, &ep, lab.server_v4.into(), 9);
    s.write_all(b"x").unwrap();
    drop(s);
    let st = ep.wait_stats(TIMEOUT, "one SYN", |s| event(s, "syn_received") >= 1);
    assert_eq!(xdp_counter(&st, "syn_acks_sent"), 0, "{st:#}");
    assert_eq!(st["xdp_syn_offload"], false, "{st:#}");
}

/// SIGHUP with offload on: a new listener and a new cookie secret reach the XDP program
/// (the new port's SYNs are answered in XDP with the new key, and the handshakes complete,
/// so the workers and the program agree on the secret); the connection kept across the
/// reload still echoes.
#[test]
fn sighup_reload_updates_the_offload_listeners_and_secret() {
    if !common::require_root("sighup_reload_updates_the_offload_listeners_and_secret") {
        return;
    }
    let lab = Lab::new("xoffhup", 1);
    let toml = endpoint_toml(
        &lab,
        "0",
        "[xdp]\nmode = \"generic\"\nsyn_offload = \"on\"\n\
         [tcp]\ncookie_secret = \"00112233445566778899aabbccddeeff\"\n",
    );
    let ep = Endpoint::start(&lab, &toml, &["--quiet"]);
    let mut kept = connect(&lab, &ep, lab.server_v4.into(), 7);
    kept.write_all(b"before").unwrap();
    let mut back = [0u8; 6];
    kept.read_exact(&mut back).unwrap();
    let cfg = ep.dir.join("endpoint.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("port = 9\nmode = \"discard\"", "port = 19\nmode = \"echo\"")
        .replace(
            "00112233445566778899aabbccddeeff",
            "ffeeddccbbaa99887766554433221100",
        );
    std::fs::write(&cfg, text).unwrap();
    let before = ep.fresh_stats();
    common::signal(ep.pid(), "HUP");
    let t0 = std::time::Instant::now();
    while !ep.stderr_text().contains("configuration reloaded") {
        assert!(t0.elapsed() < TIMEOUT, "no reload: {}", ep.stderr_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    for ip in [IpAddr::V4(lab.server_v4), IpAddr::V6(lab.server_v6)] {
        let mut s = connect(&lab, &ep, ip, 19);
        s.write_all(b"new port").unwrap();
        let mut back = [0u8; 8];
        s.read_exact(&mut back).expect("echo on the new port");
        assert_eq!(&back, b"new port");
    }
    kept.write_all(b"after!").unwrap();
    kept.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"after!");
    let st = ep.wait_stats(TIMEOUT, "two more connections", |s| {
        event(s, "established") >= event(&before, "established") + 2
    });
    assert!(
        xdp_counter(&st, "syn_acks_sent") >= xdp_counter(&before, "syn_acks_sent") + 2,
        "the new port's SYNs answered in XDP: {st:#}"
    );
    assert_eq!(event(&st, "syn_received"), 0, "{st:#}");
    assert_eq!(st["total"]["drops"]["cookie_invalid"], 0, "{st:#}");
}

/// A forged-ACK flood (20,000 ACKs for tuples without state, wrong cookies, from an AF_XDP
/// socket on the client veth) with the offload on: no connection, no frame for the workers
/// (their rx counter does not move), the XDP program drops them and sends resets at no
/// more than its per-CPU rate, and the endpoint's memory stays flat (RSS within 1 MiB).
#[test]
fn forged_ack_flood_never_reaches_userspace() {
    if !common::require_root("forged_ack_flood_never_reaches_userspace") {
        return;
    }
    let lab = Lab::new("xoffack", 1);
    let toml = endpoint_toml(
        &lab,
        "0",
        "[xdp]\nmode = \"generic\"\nsyn_offload = \"on\"\n",
    );
    let ep = Endpoint::start(&lab, &toml, &["--quiet"]);
    let before = ep.fresh_stats();
    let rss_before = synack::io::sys::resident_bytes(ep.pid()).expect("the endpoint's RSS");
    let (base, dst) = (lab_peer(&lab, 0, 9, 512), lab.server_v4);
    let t0 = std::time::Instant::now();
    let sent = xsk_send(&lab, 20_000, Duration::from_secs(5), |i| {
        let (src, sport) = synack::lab::flood_source(u64::from(i));
        // Never one of the lab's own addresses (a source of ours goes to the worker, which
        // drops it as bad_source): flood sources share 198.19.0.0/16 with lab subnets.
        let o = src.octets();
        let src = if o[..3] == dst.octets()[..3] {
            std::net::Ipv4Addr::new(o[0], o[1], o[2] ^ 1, o[3])
        } else {
            src
        };
        let peer = Peer {
            addr: src.into(),
            port: sport,
            ..base.clone()
        };
        let (seq, ack) = (
            i.wrapping_mul(2_654_435_761),
            i.wrapping_mul(40_503) ^ 0x5a5a_5a5a,
        );
        peer.frame(TcpFlags::ACK, seq, ack, &[], TcpOptions::default())
    });
    let secs = t0.elapsed().as_secs_f64();
    let st = ep.wait_stats(TIMEOUT, "the flood counted", |s| {
        xdp_counter(s, "acks_dropped")
            >= xdp_counter(&before, "acks_dropped") + u64::from(sent) * 9 / 10
    });
    let dropped = xdp_counter(&st, "acks_dropped") - xdp_counter(&before, "acks_dropped");
    let rsts = xdp_counter(&st, "rsts_sent") - xdp_counter(&before, "rsts_sent");
    println!(
        "forged-ACK flood: {sent} sent in {secs:.2} s, {dropped} dropped in XDP, {rsts} resets"
    );
    assert!(sent >= 10_000, "the flood sent only {sent}");
    assert_eq!(event(&st, "established"), 0, "{st:#}");
    assert_eq!(
        event(&st, "rx_frames"),
        event(&before, "rx_frames"),
        "no flood frame reached a worker: {st:#}"
    );
    assert_eq!(xdp_counter(&st, "cookie_acks_to_userspace"), 0, "{st:#}");
    // Memory stays flat: nothing of the flood is kept anywhere (a connection would cost
    // a TCB, a frame copied to a worker at most a ring slot that is reused).
    let rss_after = synack::io::sys::resident_bytes(ep.pid()).expect("the endpoint's RSS");
    println!("endpoint RSS {rss_before} -> {rss_after} bytes");
    assert!(
        rss_after <= rss_before + 1024 * 1024,
        "RSS grew from {rss_before} to {rss_after} bytes"
    );
    assert!(
        rsts as f64 <= 1000.0 * (1.0 + secs + 1.0) * 2.0,
        "{rsts} resets in {secs:.2} s (1,000/s per CPU, 2 CPUs)"
    );
}

/// Send up to `n` frames made by `make(i)` from an AF_XDP socket (TX only) on the client
/// veth, bounded by `limit`; returns how many were queued.
fn xsk_send(
    lab: &Lab,
    n: u32,
    limit: Duration,
    make: impl Fn(u32) -> Vec<u8> + Send + Sync,
) -> u32 {
    lab.in_ns(&lab.client_ns, || {
        let cfg = synack::lab::flood::tx_socket_config();
        let mut port = AfXdpPort::open(&lab.client_if, 0, &cfg).expect("AF_XDP TX socket");
        let t0 = std::time::Instant::now();
        let mut sent = 0u32;
        while sent < n && t0.elapsed() < limit {
            let Some(addr) = port.alloc_tx() else {
                port.flush();
                std::thread::sleep(Duration::from_micros(200));
                continue;
            };
            let frame = make(sent);
            port.buffer(addr)[..frame.len()].copy_from_slice(&frame);
            if port.send(addr, frame.len() as u32) {
                sent += 1;
            }
            if sent.is_multiple_of(64) {
                port.flush();
            }
        }
        port.flush();
        std::thread::sleep(Duration::from_millis(200));
        port.flush();
        sent
    })
}

/// The lab's client (its MACs and IPv4 address) as a test-kit [`Peer`] from `sport` to the
/// server's `dport`, advertising `window`: the one builder of the frames these tests send
/// raw from the client veth.
fn lab_peer(lab: &Lab, sport: u16, dport: u16, window: u16) -> Peer {
    Peer {
        mac: lab.client_mac,
        server_mac: lab.server_mac,
        addr: lab.client_v4.into(),
        server: lab.server_v4.into(),
        server_port: dport,
        window,
        ..Peer::v4(sport)
    }
}

/// One SYN (MSS 1460, no other option, window 64240) from the client's IPv4 address and
/// `sport` to the server's `dport`, sent raw from an AF_XDP socket on the client veth;
/// returns how many were queued (1).
fn send_syn(lab: &Lab, sport: u16, dport: u16, seq: u32) -> u32 {
    let peer = lab_peer(lab, sport, dport, 64240);
    let mss_only = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    xsk_send(lab, 1, TIMEOUT, |_| {
        peer.frame(TcpFlags::SYN, seq, 0, &[], mss_only)
    })
}

/// An endpoint on a new lab `tag` with the offload forced on in generic mode (`extra`
/// appended to its config), and the connection `connect` makes to its IPv4 `port`: the
/// setup of the tests that send a SYN on a tuple with state.
fn offload_on_with_a_connection(tag: &str, extra: &str, port: u16) -> (Lab, Endpoint, TcpStream) {
    let lab = Lab::new(tag, 1);
    let xdp = format!("[xdp]\nmode = \"generic\"\nsyn_offload = \"on\"\n{extra}");
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", &xdp), &["--quiet"]);
    let s = connect(&lab, &ep, lab.server_v4.into(), port);
    (lab, ep, s)
}

/// The XDP program did not answer a SYN between `before` and `st` (its SYN-ACK counter did
/// not move) and passed at least one to userspace.
fn assert_syn_went_to_the_worker(before: &serde_json::Value, st: &serde_json::Value) {
    assert_eq!(
        xdp_counter(st, "syn_acks_sent"),
        xdp_counter(before, "syn_acks_sent"),
        "not answered in XDP: {st:#}"
    );
    assert!(xdp_counter(st, "syns_to_userspace") > xdp_counter(before, "syns_to_userspace"));
}

/// RFC 5961 §4 with the offload on: a SYN on an ESTABLISHED connection's 4-tuple is not
/// answered in XDP (the occupancy filter has the tuple) but by the worker, which answers
/// it with an ACK as it does without the offload (a challenge ACK, or the RFC 9293
/// §3.10.7.4 ACK for an unacceptable sequence number, which this SYN's is); the
/// connection survives.
#[test]
fn rfc5961_4_syn_on_established_goes_to_the_worker_with_offload_on() {
    if !common::require_root("rfc5961_4_syn_on_established_goes_to_the_worker_with_offload_on") {
        return;
    }
    let (lab, ep, mut s) = offload_on_with_a_connection("xoffchal", "", 7);
    let local = s.local_addr().unwrap();
    let before = ep.fresh_stats();
    let sent = send_syn(&lab, local.port(), 7, 0x0bad_5e0d);
    assert_eq!(sent, 1);
    let answered = |s: &serde_json::Value| {
        event(s, "challenge_ack") + s["total"]["drops"]["out_of_window"].as_u64().unwrap_or(0)
    };
    let st = ep.wait_stats(TIMEOUT, "the worker's ACK", |s| {
        answered(s) > answered(&before) && event(s, "tx_frames") > event(&before, "tx_frames")
    });
    assert_syn_went_to_the_worker(&before, &st);
    s.write_all(b"still here").unwrap();
    let mut back = [0u8; 10];
    s.read_exact(&mut back).expect("the connection survives");
    assert_eq!(&back, b"still here");
}

/// RFC 9293 §3.10.7.4 TIME-WAIT with the offload on: the server closes first (`close`
/// mode), so the TCB sits in our TIME-WAIT; a SYN on that 4-tuple is then not answered in
/// XDP (the TIME-WAIT TCB holds its occupancy cell) but reaches the worker, which applies
/// the TIME-WAIT rules (`Conn::syn_may_reopen`: reopen with a SYN-ACK, or the ACK of a
/// stale SYN), exactly as without the offload.
#[test]
fn rfc9293_time_wait_syn_goes_to_the_worker_with_offload_on() {
    if !common::require_root("rfc9293_time_wait_syn_goes_to_the_worker_with_offload_on") {
        return;
    }
    let (lab, ep, mut s) =
        offload_on_with_a_connection("xofftw", "[tcp]\ntime_wait_secs = 30\n", 13);
    let local = s.local_addr().unwrap();
    read_to_eof(&mut s); // close mode sends its FIN only
    drop(s); // our FIN after the server's: the server's TCB goes to TIME-WAIT
    let before = ep.wait_stats(TIMEOUT, "TIME-WAIT", |s| event(s, "time_wait") >= 1);
    assert_eq!(before["active"], 1, "the TCB sits in TIME-WAIT: {before:#}");
    let sent = send_syn(&lab, local.port(), 13, 0x7e57_0001);
    assert_eq!(sent, 1);
    // The worker's TIME-WAIT answer: a reopen (time_wait_reused, then its SYN-ACK) or the
    // ACK of a stale SYN (sent, or held back by the rate limit and counted).
    let handled = |s: &serde_json::Value| {
        event(s, "time_wait_reused") + event(s, "ack_rate_limited") + event(s, "tx_frames")
    };
    let st = ep.wait_stats(TIMEOUT, "the worker's TIME-WAIT answer", |s| {
        xdp_counter(s, "syns_to_userspace") > xdp_counter(&before, "syns_to_userspace")
            && handled(s) > handled(&before)
    });
    assert_syn_went_to_the_worker(&before, &st);
    assert!(
        event(&st, "time_wait") >= 1 && st["active"].as_u64() <= Some(1),
        "the tuple's TCB answered it (no second connection): {st:#}"
    );
}
