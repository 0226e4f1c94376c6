//! The seed article's worked examples (TCP 三次握手 / 四次挥手), frame by frame: client
//! 192.168.1.100:12345, server 192.168.2.200:80. The frames exist only in memory.
//!
//! The seed's first teardown segment is "FIN=1, ACK=0". RFC 9293 §3.10.7.4 drops a segment
//! without ACK in a synchronized state, so the teardown tests send FIN+ACK (as every real
//! client does), and [`bare_fin_without_ack_is_dropped`] shows what the seed's literal
//! segment gets.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use support::*;
use synack::counters::{DropReason, Event};
use synack::tcp::conn::State;
use synack::tcp::cookie::{self, CookieJar};
use synack::tcp::responder::Mode;
use synack::tcp::Params;
use synack::wire::TcpOptions;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 200);
/// The seed's x: the client's initial sequence number.
const X: u32 = 0x1234_5678;

fn seed_net(params: Params) -> Net {
    Net::with_jar(
        config(params, Mode::Discard),
        CookieJar::new(SECRET),
        &[IpAddr::V4(SERVER)],
    )
}

/// The seed's client: no options in its SYN (the article shows none).
fn seed_peer() -> Peer {
    let mut p = Peer::v4(12345).bare();
    p.addr = CLIENT.into();
    p.server = SERVER.into();
    p.server_port = 80;
    p.iss = X;
    p
}

/// The three-way handshake; returns y.
fn handshake(net: &mut Net, peer: &mut Peer) -> u32 {
    // 1. 客户端发送 SYN: 192.168.1.100:12345 → 192.168.2.200:80, seq x, SYN=1 ACK=0.
    let synack = one(peer.send(net, SYN, X, 0, b"", TcpOptions::default()));
    // 2. 服务器回应 SYN-ACK: 192.168.2.200:80 → 192.168.1.100:12345, seq y, ack x+1.
    assert_eq!(synack.src, IpAddr::V4(SERVER));
    assert_eq!(synack.dst, IpAddr::V4(CLIENT));
    assert_eq!((synack.src_port, synack.dst_port), (80, 12345));
    let y = synack.seq;
    synack.expect(SYN | ACK, y, X + 1);
    // y is the SYN cookie for this flow, x and the MSS the client implied (536 without
    // an MSS option, RFC 9293 §3.7.1), made with the server's secret.
    let counter = cookie::counter_from_unix_secs(net.clock.unix_secs);
    let expected = CookieJar::new(SECRET).generate(
        &peer.flow().cookie_flow(),
        X,
        cookie::mss_index(536, false),
        counter,
    );
    assert_eq!(y, expected, "the SYN-ACK's ISN is the cookie");
    // Without timestamps in the SYN, the SYN-ACK carries only MSS (RFC 7323 §1.3).
    assert_eq!(synack.options.mss, Some(1460));
    assert_eq!(synack.options.timestamps, None);
    assert_eq!(synack.options.window_scale, None);
    assert!(!synack.options.sack_permitted);
    // LISTEN keeps no state (SYN cookies).
    assert_eq!(net.core().active(), 0);
    // 3. 客户端发送 ACK: seq x+1, ack y+1 → ESTABLISHED, no reply.
    none(peer.send(net, ACK, X + 1, y + 1, b"", TcpOptions::default()));
    assert_eq!(net.state(peer), Some(State::Established));
    assert_eq!(net.event(Event::CookieOk), 1);
    assert_eq!(net.event(Event::Established), 1);
    y
}

/// RFC 9293 §3.5 (three-way handshake) with §3.10.7.2 (LISTEN answers a SYN with
/// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>) and §3.10.7.3 (the ACK enters ESTABLISHED).
#[test]
fn seed_three_way_handshake_rfc9293_3_5() {
    let mut net = seed_net(Params::default());
    let mut peer = seed_peer();
    handshake(&mut net, &mut peer);
    assert_eq!(net.core().active(), 1);
}

/// RFC 9293 §3.6 (closing a connection, case 2: the remote closes first), with the server
/// sending its ACK and FIN apart (`fin_with_ack: false`): the seed's exact four segments.
#[test]
fn seed_four_way_close_rfc9293_3_6() {
    let mut net = seed_net(Params {
        fin_with_ack: false,
        ..Params::default()
    });
    let mut peer = seed_peer();
    let y = handshake(&mut net, &mut peer);
    let a = X + 1;
    let b = y + 1;
    // 1. 客户端发送 FIN: seq a (FIN+ACK, see the module doc).
    let out = peer.send(&mut net, FIN | ACK, a, b, b"", TcpOptions::default());
    assert_eq!(out.len(), 2, "ACK and FIN as two segments: {out:#?}");
    // 2. 服务器回应 ACK: seq b, ack a+1.
    out[0].expect(ACK, b, a + 1);
    // 3. 服务器发送 FIN: seq c, ack a+1 (c = b: the server sent no data).
    let c = out[1].seq;
    out[1].expect(FIN | ACK, b, a + 1);
    assert_eq!(c, b);
    assert_eq!(net.state(&peer), Some(State::LastAck));
    // 4. 客户端回应 ACK: seq a+1, ack c+1 → the server forgets the connection.
    none(peer.send(&mut net, ACK, a + 1, c + 1, b"", TcpOptions::default()));
    assert_eq!(net.state(&peer), None);
    assert_eq!(net.event(Event::Closed), 1);
    net.assert_clean();
}

/// RFC 9293 §3.6 with the default `fin_with_ack: true`: the server's FIN rides on the ACK
/// of the client's FIN, three segments instead of four.
#[test]
fn seed_close_fin_rides_on_ack_rfc9293_3_6() {
    let mut net = seed_net(Params::default());
    let mut peer = seed_peer();
    let y = handshake(&mut net, &mut peer);
    let (a, b) = (X + 1, y + 1);
    let fin = one(peer.send(&mut net, FIN | ACK, a, b, b"", TcpOptions::default()));
    fin.expect(FIN | ACK, b, a + 1);
    assert_eq!(net.state(&peer), Some(State::LastAck));
    none(peer.send(&mut net, ACK, a + 1, b + 1, b"", TcpOptions::default()));
    assert_eq!(net.event(Event::Closed), 1);
    net.assert_clean();
}

/// RFC 9293 §3.10.7.4 fifth check: "if the ACK bit is off, drop the segment and return".
/// The seed's literal first teardown segment (FIN=1, ACK=0) changes nothing.
#[test]
fn bare_fin_without_ack_is_dropped_rfc9293_3_10_7_4() {
    let mut net = seed_net(Params::default());
    let mut peer = seed_peer();
    let y = handshake(&mut net, &mut peer);
    let before = net.stack.counters().total_drops();
    none(peer.send(&mut net, FIN, X + 1, 0, b"", TcpOptions::default()));
    assert_eq!(net.dropped(DropReason::NoAck), 1);
    assert_eq!(net.stack.counters().total_drops(), before + 1);
    assert_eq!(net.state(&peer), Some(State::Established));
    // The FIN was not taken: the same FIN with ACK is still the next segment.
    let fin = one(peer.send(
        &mut net,
        FIN | ACK,
        X + 1,
        y + 1,
        b"",
        TcpOptions::default(),
    ));
    fin.expect(FIN | ACK, y + 1, X + 2);
}
