//! The endpoint (`synack run` as a child process) against real Linux clients on a veth lab
//! (root): handshakes over IPv4 and IPv6, discard/echo/http data, client- and
//! server-initiated close with their TIME-WAIT sides, traffic that is not ours reaching
//! the kernel, and a clean stop on SIGINT.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{endpoint_toml, event, read_to_eof, ss_tan, Endpoint, Lab};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The client-side socket state of `local` → `peer` in `ss`, if any.
fn client_state(lab: &Lab, local: SocketAddr, peer: SocketAddr) -> Option<(String, u64, u64)> {
    ss_tan(lab, &lab.client_ns)
        .into_iter()
        .find(|(_, _, _, l, p)| *l == local.to_string() && *p == peer.to_string())
        .map(|(st, rq, sq, _, _)| (st, rq, sq))
}

/// Poll `ss` until the socket is in `state` (or, with `None`, gone); bounded.
fn wait_client_state(lab: &Lab, local: SocketAddr, peer: SocketAddr, state: Option<&str>) {
    let t0 = Instant::now();
    loop {
        let now = client_state(lab, local, peer);
        if now.as_ref().map(|s| s.0.as_str()) == state {
            return;
        }
        assert!(
            t0.elapsed() < TIMEOUT,
            "client socket {local} -> {peer}: want {state:?}, have {now:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Read one HTTP response with a Content-Length body; returns the head.
fn http_response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).expect("read head"), 1, "EOF inside head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("ASCII head");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .expect("length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("body");
    (head, body)
}

/// RFC 9293 §3.5: the three-way handshake completes against the endpoint over IPv4 and
/// IPv6; the Linux client sees ESTABLISHED and the endpoint counts the cookie ACKs.
#[test]
fn handshake_establishes_v4_and_v6() {
    if !common::require_root("handshake_establishes_v4_and_v6") {
        return;
    }
    let lab = Lab::new("hs", 1);
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    let mut socks = Vec::new();
    for ip in [IpAddr::V4(lab.server_v4), IpAddr::V6(lab.server_v6)] {
        let s = lab.client_connect(ip, 9, TIMEOUT).expect("connect");
        let (local, peer) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
        wait_client_state(&lab, local, peer, Some("ESTAB"));
        socks.push(s);
    }
    let st = ep.wait_stats(TIMEOUT, "2 established", |s| {
        event(s, "established") == 2 && s["active"] == 2
    });
    assert_eq!(event(&st, "cookie_ok"), 2, "{st:#}");
    assert!(common::synacks_sent(&st) >= 2, "{st:#}");
    assert_eq!(st["workers"][0]["active"], 2);
}

/// RFC 863 (discard) over RFC 9293 §3.10.7.4 (text processing): every byte is
/// acknowledged (the client's send queue drains), then the client's FIN is answered.
#[test]
fn discard_acknowledges_all_data() {
    if !common::require_root("discard_acknowledges_all_data") {
        return;
    }
    let lab = Lab::new("discard", 1);
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    let mut s = lab
        .client_connect(lab.server_v4.into(), 9, TIMEOUT)
        .expect("connect");
    let (local, peer) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
    let data = vec![0x5au8; 200_000];
    s.write_all(&data).expect("send");
    let t0 = Instant::now();
    loop {
        let (state, _, send_q) = client_state(&lab, local, peer).expect("socket");
        assert_eq!(state, "ESTAB");
        if send_q == 0 {
            break;
        }
        assert!(
            t0.elapsed() < TIMEOUT,
            "Send-Q still {send_q}: data not acked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = ep.wait_stats(TIMEOUT, "all bytes", |s| event(s, "rx_bytes") >= 200_000);
    assert_eq!(event(&st, "rx_bytes"), 200_000, "{st:#}");
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_eof(&mut s).is_empty(), "discard sends nothing");
}

/// RFC 862 (echo): what the client sends comes back byte for byte, v4 and v6.
#[test]
fn echo_returns_every_byte() {
    if !common::require_root("echo_returns_every_byte") {
        return;
    }
    let lab = Lab::new("echo", 1);
    let _ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    for ip in [IpAddr::V4(lab.server_v4), IpAddr::V6(lab.server_v6)] {
        let mut s = lab.client_connect(ip, 7, TIMEOUT).expect("connect");
        for round in 0..20u32 {
            let data: Vec<u8> = (0..(1 + round * 150))
                .map(|i| (i * 7 + round) as u8)
                .collect();
            s.write_all(&data).unwrap();
            let mut back = vec![0u8; data.len()];
            s.read_exact(&mut back).expect("echo");
            assert_eq!(back, data, "round {round} over {ip}");
        }
        s.shutdown(Shutdown::Write).unwrap();
        assert!(read_to_eof(&mut s).is_empty());
    }
}

/// HTTP: keep-alive requests are answered on one connection; `Connection: close` gets
/// `Connection: close` and the server's FIN right after the response.
#[test]
fn http_keep_alive_then_close() {
    if !common::require_root("http_keep_alive_then_close") {
        return;
    }
    let lab = Lab::new("http", 1);
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    let mut s = lab
        .client_connect(lab.server_v6.into(), 80, TIMEOUT)
        .expect("connect");
    for i in 0..3 {
        s.write_all(format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        let (head, body) = http_response(&mut s);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Connection: keep-alive\r\n"), "{head}");
        assert_eq!(body, b"synack\n");
    }
    s.write_all(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (head, body) = http_response(&mut s);
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert_eq!(body, b"synack\n");
    assert!(
        read_to_eof(&mut s).is_empty(),
        "FIN right after the response"
    );
    drop(s); // the client's FIN: the endpoint, having closed first, enters TIME-WAIT
    let st = ep.wait_stats(TIMEOUT, "the server's close", |s| {
        event(s, "time_wait") == 1
    });
    assert_eq!(
        event(&st, "established"),
        1,
        "one connection for all four: {st:#}"
    );
}

/// The stats count answered HTTP requests (`http_requests`, documented in
/// src/counters.rs as "HTTP requests answered").
#[test]
fn http_requests_are_counted() {
    if !common::require_root("http_requests_are_counted") {
        return;
    }
    let lab = Lab::new("httpcount", 1);
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    let mut s = lab
        .client_connect(lab.server_v4.into(), 80, TIMEOUT)
        .expect("connect");
    for i in 0..3 {
        s.write_all(format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        let (head, _) = http_response(&mut s);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    }
    let st = ep.wait_stats(TIMEOUT, "3 answered requests", |s| {
        event(s, "http_requests") >= 3
    });
    assert_eq!(event(&st, "http_requests"), 3, "{st:#}");
}

/// RFC 9293 §3.6: the client closes first: the client ends in TIME-WAIT and the
/// endpoint's table is empty (its side went through LAST-ACK to CLOSED).
#[test]
fn client_close_leaves_client_time_wait_and_empty_table() {
    if !common::require_root("client_close_leaves_client_time_wait_and_empty_table") {
        return;
    }
    let lab = Lab::new("cclose", 1);
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    let mut s = lab
        .client_connect(lab.server_v4.into(), 9, TIMEOUT)
        .expect("connect");
    let (local, peer) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
    s.write_all(b"bye").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_eof(&mut s).is_empty());
    drop(s);
    wait_client_state(&lab, local, peer, Some("TIME-WAIT"));
    let st = ep.wait_stats(TIMEOUT, "an empty table", |s| {
        s["active"] == 0 && event(s, "closed") == 1
    });
    assert_eq!(
        event(&st, "time_wait"),
        0,
        "the endpoint did not enter TIME-WAIT"
    );
}

/// RFC 9293 §3.6 and §3.10.7.4 (TIME-WAIT): the server closes first (`close` mode): the
/// endpoint keeps the connection in TIME-WAIT for `tcp.time_wait_secs` (2 s here), then
/// drops it; the client ends CLOSED (no socket left in ss).
#[test]
fn server_close_goes_through_our_time_wait() {
    if !common::require_root("server_close_goes_through_our_time_wait") {
        return;
    }
    let lab = Lab::new("sclose", 1);
    let toml = endpoint_toml(&lab, "0", "[tcp]\ntime_wait_secs = 2\n");
    let ep = Endpoint::start(&lab, &toml, &[]);
    let mut s = lab
        .client_connect(lab.server_v6.into(), 13, TIMEOUT)
        .expect("connect");
    let (local, peer) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
    assert!(read_to_eof(&mut s).is_empty(), "close mode sends FIN only");
    drop(s); // our FIN, after theirs: the client goes LAST-ACK → CLOSED
    let closed_at = Instant::now();
    wait_client_state(&lab, local, peer, None);
    let st = ep.wait_stats(TIMEOUT, "TIME-WAIT", |s| event(s, "time_wait") >= 1);
    assert_eq!(event(&st, "time_wait"), 1, "{st:#}");
    assert_eq!(
        st["active"], 1,
        "the connection sits in our TIME-WAIT: {st:#}"
    );
    let st = ep.wait_stats(Duration::from_secs(6), "TIME-WAIT expiry", |s| {
        s["active"] == 0
    });
    let waited = closed_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "TIME-WAIT ended after {waited:?}, before time_wait_secs = 2"
    );
    assert_eq!(event(&st, "closed"), 1, "{st:#}");
    assert!(client_state(&lab, local, peer).is_none());
}

/// The XDP program passes what is not ours: UDP (answered by the server kernel's ICMP
/// port unreachable), TCP to a port we do not serve (the kernel's RST: connection
/// refused), ping where installed.
#[test]
fn traffic_not_ours_reaches_the_kernel() {
    if !common::require_root("traffic_not_ours_reaches_the_kernel") {
        return;
    }
    let lab = Lab::new("notours", 1);
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    for (server, client) in [
        (IpAddr::V4(lab.server_v4), IpAddr::V4(lab.client_v4)),
        (IpAddr::V6(lab.server_v6), IpAddr::V6(lab.client_v6)),
    ] {
        let e = lab
            .client_connect(server, 8080, TIMEOUT)
            .expect_err("nobody listens on 8080");
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{server}: {e}"
        );
        let udp = lab.in_ns(&lab.client_ns, || {
            let sock = UdpSocket::bind(SocketAddr::new(client, 0))?;
            sock.set_read_timeout(Some(Duration::from_secs(3)))?;
            sock.connect(SocketAddr::new(server, 9))?;
            sock.send(b"probe")?;
            let mut buf = [0u8; 16];
            sock.recv(&mut buf)
        });
        let e = udp.expect_err("ICMP port unreachable");
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{server}: {e}"
        );
        let has_ping = std::process::Command::new("ping")
            .arg("-V")
            .output()
            .is_ok();
        if has_ping {
            let out = lab.ns_exec(
                &lab.client_ns,
                &["ping", "-c", "1", "-W", "2", &server.to_string()],
            );
            assert!(out.status.success(), "ping {server}: {out:?}");
        }
    }
    let st = ep.fresh_stats();
    assert_eq!(event(&st, "syn_received"), 0, "8080 is not ours: {st:#}");
    let passed = st["xdp_program"]["passed"].as_u64().expect("xdp counters");
    assert!(passed >= 4, "the program passed them to the kernel: {st:#}");
}

/// SIGINT: the endpoint closes its connections (the idle client gets a FIN), exits 0
/// within a few seconds, prints its summary and leaves a final stats file.
#[test]
fn sigint_stops_cleanly() {
    if !common::require_root("sigint_stops_cleanly") {
        return;
    }
    let lab = Lab::new("sigint", 1);
    let mut ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    let mut idle = lab
        .client_connect(lab.server_v4.into(), 9, TIMEOUT)
        .expect("connect");
    ep.wait_stats(TIMEOUT, "1 established", |s| event(s, "established") == 1);
    let took = ep.interrupt_ok(Duration::from_secs(8));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let err = ep.stderr_text();
    assert!(err.contains("summary"), "no summary line: {err}");
    assert!(err.contains("established=1"), "{err}");
    let st = ep.stats();
    assert_eq!(event(&st, "established"), 1, "final stats: {st:#}");
    assert!(st["uptime_secs"].as_f64().unwrap() > 0.0);
    // The idle connection was closed by the endpoint while it stopped.
    let mut buf = [0u8; 16];
    match idle.read(&mut buf) {
        Ok(0) => {}
        other => panic!("the idle connection got {other:?} instead of the server's FIN"),
    }
}

/// RFC 9293 §3.7.1 and RFC 6691 §2 against curl: a 3,000-byte HTTP body leaves in segments
/// of at most Eff.snd.MSS (1448 bytes with timestamps to a client that said MSS 1460), so
/// every frame fits the 1500-byte veth MTU and curl gets every byte, over IPv4 and IPv6.
/// (Segments of 1460 bytes plus the 12-byte timestamp option are 1512-byte IP packets,
/// which the veth drops: the client then never gets the body.)
#[test]
fn rfc9293_3_7_1_eff_snd_mss_curl_3000_byte_body() {
    if !common::require_root("rfc9293_3_7_1_eff_snd_mss_curl_3000_byte_body") {
        return;
    }
    let lab = Lab::new("effmss", 1);
    let body: String = (0..3_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let extra = format!("[http]\nbody = \"{body}\"\n");
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", &extra), &[]);
    let urls = [
        format!("http://{}/", lab.server_v4),
        format!("http://[{}]/", lab.server_v6),
    ];
    for url in &urls {
        let out = lab.ns_exec(
            &lab.client_ns,
            &["curl", "--silent", "--show-error", "--max-time", "5", url],
        );
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), 3_000, "body length from {url}");
        assert_eq!(out.stdout, body.as_bytes(), "body from {url}");
    }
    let st = ep.wait_stats(TIMEOUT, "2 answered", |s| event(s, "http_requests") >= 2);
    assert_eq!(event(&st, "http_requests"), 2, "{st:#}");
}

/// RFC 9293 §3.7.1 against the Linux client's echo: three 1,000-byte writes back to back
/// (TCP_NODELAY: three segments) come back whole, over IPv4 and IPv6, several times.
#[test]
fn rfc9293_3_7_1_eff_snd_mss_echo_three_1000_byte_writes() {
    if !common::require_root("rfc9293_3_7_1_eff_snd_mss_echo_three_1000_byte_writes") {
        return;
    }
    let lab = Lab::new("effecho", 1);
    let _ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    for ip in [IpAddr::V4(lab.server_v4), IpAddr::V6(lab.server_v6)] {
        let mut s = lab.client_connect(ip, 7, TIMEOUT).expect("connect");
        s.set_nodelay(true).unwrap();
        for round in 0..5u8 {
            let chunks: Vec<Vec<u8>> = (0..3u8)
                .map(|c| {
                    (0..1_000u32)
                        .map(|i| (i as u8) ^ (c * 31 + round))
                        .collect()
                })
                .collect();
            for c in &chunks {
                s.write_all(c).unwrap();
            }
            let mut back = vec![0u8; 3_000];
            s.read_exact(&mut back).expect("all 3,000 bytes echoed");
            assert_eq!(back, chunks.concat(), "round {round} over {ip}");
        }
        s.shutdown(Shutdown::Write).unwrap();
        assert!(read_to_eof(&mut s).is_empty());
    }
}

/// RFC 9293 §3.7.1: never a frame larger than the interface MTU. The server's veth has MTU
/// 1400 while the client claims MSS 1460 (IPv6: 1440) through a route `advmss` and its own
/// veth also takes only 1400: the endpoint lowers its MSS to the interface (1360), so its
/// segments (1348 bytes of data with timestamps) pass, and curl gets the 3,000-byte body.
#[test]
fn rfc9293_3_7_1_mss_fits_interface_mtu_curl() {
    if !common::require_root("rfc9293_3_7_1_mss_fits_interface_mtu_curl") {
        return;
    }
    let lab = Lab::new("mtu", 1);
    lab.set_mtu(1400);
    for (dst, mss) in [
        (format!("{}/32", lab.server_v4), "1460"),
        (format!("{}/128", lab.server_v6), "1440"),
    ] {
        let args = [
            "ip",
            "route",
            "add",
            &dst,
            "dev",
            &lab.client_if,
            "advmss",
            mss,
        ];
        let out = lab.ns_exec(&lab.client_ns, &args);
        assert!(out.status.success(), "route advmss: {out:?}");
    }
    let body: String = (0..3_000u32)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    let extra = format!("[http]\nbody = \"{body}\"\n");
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", &extra), &[]);
    for url in [
        format!("http://{}/", lab.server_v4),
        format!("http://[{}]/", lab.server_v6),
    ] {
        let out = lab.ns_exec(
            &lab.client_ns,
            &["curl", "--silent", "--show-error", "--max-time", "5", &url],
        );
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, body.as_bytes(), "body from {url}");
    }
    assert!(
        ep.stderr_text().contains("lowered to 1360"),
        "the endpoint says it lowered tcp.mss: {}",
        ep.stderr_text()
    );
}

/// Linux `tcp_timewait_state_process` against a Linux client: curl asks `Connection: close`,
/// so the endpoint closes first and keeps the tuple in TIME-WAIT (60 s); curl then connects
/// again from the same local port. Its SYN carries a newer TSval and is not PAWS-rejected,
/// so the tuple reopens at once (`time_wait_reused`) and the second request is answered.
#[test]
fn tcp_timewait_state_process_linux_client_reopens() {
    if !common::require_root("tcp_timewait_state_process_linux_client_reopens") {
        return;
    }
    let lab = Lab::new("twreuse", 1);
    let ep = Endpoint::start(&lab, &endpoint_toml(&lab, "0", ""), &[]);
    let url = format!("http://{}/", lab.server_v4);
    for round in 0..2 {
        let t0 = Instant::now();
        let out = lab.ns_exec(
            &lab.client_ns,
            &[
                "curl",
                "--silent",
                "--show-error",
                "--max-time",
                "5",
                "--local-port",
                "41000",
                "--header",
                "Connection: close",
                &url,
            ],
        );
        assert!(
            out.status.success(),
            "curl round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"synack\n", "round {round}");
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "round {round} waited"
        );
        ep.wait_stats(TIMEOUT, "TIME-WAIT", |s| event(s, "time_wait") == round + 1);
    }
    let st = ep.fresh_stats();
    assert_eq!(event(&st, "time_wait_reused"), 1, "{st:#}");
    assert_eq!(event(&st, "http_requests"), 2, "{st:#}");
}
