//! LISTEN at its edges (in memory): what a segment for no connection gets (RFC 9293
//! §3.10.7.2, Linux `tcp_rcv_state_process` and `tcp_v4_send_reset`), the per-core reset
//! budget, and the link-path table that connections share (released with the last one, so
//! spoofed source MACs leave nothing behind; bounded like Linux's neighbour table).

mod support;

use support::*;
use synack::counters::{DropReason, Event};
use synack::table::{CoreConfig, L2Path, LinkTable};
use synack::tcp::conn::State;
use synack::tcp::cookie::CookieJar;
use synack::tcp::responder::Mode;
use synack::tcp::Params;
use synack::wire::TcpOptions;

fn net_with(reset_limit: u32) -> Net {
    Net::with_config(CoreConfig {
        reset_limit,
        ..config(Params::default(), Mode::Discard)
    })
}

/// A SYN as a Linux client sends it, with extra flags.
fn syn_with(net: &Net, peer: &Peer, extra: synack::wire::TcpFlags) -> Vec<u8> {
    let mut o = peer.syn_options;
    o.timestamps = Some((peer.tsval(net), 0));
    peer.frame(SYN | extra, peer.iss, 0, b"", o)
}

/// Linux `tcp_rcv_state_process` (TCP_LISTEN: `if (th->fin) goto discard`): a SYN with FIN
/// gets nothing, opens nothing, and is counted as `syn_fin`; with PSH or URG beside it too.
#[test]
fn tcp_rcv_state_process_syn_fin_to_listener_is_discarded() {
    for v6 in [false, true] {
        let mut net = net_with(1000);
        let peer = if v6 { Peer::v6(2000) } else { Peer::v4(2000) };
        none(net.inject(&syn_with(&net, &peer, FIN)));
        none(net.inject(&syn_with(&net, &peer, FIN | PSH)));
        assert_eq!(net.dropped(DropReason::SynWithFin), 2);
        assert_eq!(net.event(Event::SynAckSent), 0);
        assert_eq!(net.event(Event::SynReceived), 0);
        net.assert_clean();
        // The plain SYN still gets its SYN-ACK.
        let mut peer = peer;
        peer.connect(&mut net);
        assert_eq!(net.state(&peer), Some(State::Established));
    }
}

/// RFC 9293 §3.10.7.2 (LISTEN, first check): "An incoming RST should be ignored", also
/// when SYN is set beside it; counted as `syn_rst`, a bare RST as `rst_no_connection`.
#[test]
fn rfc9293_3_10_7_2_syn_rst_to_listener_is_ignored() {
    let mut net = net_with(1000);
    let peer = Peer::v4(2001);
    none(net.inject(&syn_with(&net, &peer, RST)));
    none(net.inject(&syn_with(&net, &peer, RST | ACK)));
    assert_eq!(net.dropped(DropReason::SynWithRst), 2);
    none(net.inject(&peer.frame(RST, 1, 0, b"", TcpOptions::default())));
    assert_eq!(net.dropped(DropReason::RstNoConnection), 1);
    assert_eq!(net.event(Event::SynAckSent), 0);
    assert_eq!(net.event(Event::RstSent), 0);
    net.assert_clean();
}

/// A SYN with FIN for a tuple in TIME-WAIT does not reopen it (it is not a SYN LISTEN
/// would answer).
#[test]
fn rfc9293_3_10_7_2_syn_fin_does_not_reopen_time_wait() {
    let (mut net, mut peer) = time_wait(Params::default());
    peer.iss = peer.snd_nxt.wrapping_add(100_000);
    net.advance(1_000);
    let _ = net.inject(&syn_with(&net, &peer, FIN));
    assert_eq!(net.event(Event::TimeWaitReused), 0);
    assert_eq!(
        net.event(Event::SynAckSent),
        1,
        "only the first handshake's"
    );
    assert_eq!(net.state(&peer), Some(State::TimeWait));
}

/// RFC 9293 §3.10.7.2 and Linux (`cookie_v4_check` hands the listener back,
/// `tcp_rcv_state_process` returns 1 for an ACK in LISTEN, `tcp_v4_send_reset`): a peer of
/// a restarted server (another cookie secret) keeps sending on its connection; each ACK,
/// with or without data, is answered by `<SEQ=SEG.ACK><CTL=RST>`, so the peer learns at
/// once that the connection is gone instead of retransmitting for minutes.
#[test]
fn tcp_v4_send_reset_after_cookie_v4_check_fails_restarted_server() {
    for v6 in [false, true] {
        let mut before = net_with(1000);
        let mut peer = if v6 { Peer::v6(2002) } else { Peer::v4(2002) };
        peer.connect(&mut before);
        // The server restarts: a new random secret, an empty table.
        let mut after = Net::with_jar(
            config(Params::default(), Mode::Discard),
            CookieJar::new(*b"after-a-restart!"),
            &[SERVER_V4.into(), SERVER_V6.into()],
        );
        // Pretend the old server had sent 5000 bytes: the peer's ACK is past the cookie.
        peer.rcv_nxt = peer.rcv_nxt.wrapping_add(5_000);
        let ack = peer.rcv_nxt;
        let r = one(peer.tx(&mut after, ACK | PSH, b"GET / HTTP/1.1\r\n\r\n"));
        r.expect(RST, ack, 0);
        assert!(r.payload.is_empty());
        let r = one(peer.tx(&mut after, ACK, b""));
        r.expect(RST, ack, 0);
        assert_eq!(after.event(Event::RstSent), 2);
        assert_eq!(
            after.dropped(DropReason::CookieInvalid) + after.dropped(DropReason::CookieExpired),
            2
        );
        after.assert_clean();
    }
}

/// With SYN cookies the first segment after the SYN-ACK creates the connection; if it is
/// lost, the client's next segment fails the cookie check by its sequence number alone.
/// That one is dropped without a reset (Linux would reset it: its cookies are only a
/// fallback), and the retransmitted first segment still opens the connection.
#[test]
fn cookie_v4_check_later_segment_of_handshake_is_not_reset() {
    let mut net = net_with(1000);
    let mut peer = Peer::v4(2003);
    peer.syn(&mut net);
    let opts = peer.opts(&net);
    let (seq, ack) = (peer.snd_nxt, peer.rcv_nxt);
    // Bytes 1..=100 were lost; bytes 101..=200 arrive first.
    none(peer.send(
        &mut net,
        ACK | PSH,
        seq.wrapping_add(100),
        ack,
        &[b'b'; 100],
        opts,
    ));
    assert_eq!(net.event(Event::RstSent), 0);
    assert_eq!(net.core().active(), 0);
    // The retransmission of the first segment opens the connection.
    let out = peer.send(&mut net, ACK | PSH, seq, ack, &[b'a'; 100], opts);
    one(out).expect(ACK, ack, seq.wrapping_add(100));
    assert_eq!(net.state(&peer), Some(State::Established));
}

/// The reset budget is a token bucket per core fed by the time passed in: `reset_limit`
/// resets a second, never more than one second's worth at once; beyond it the ACK is only
/// dropped and counted as `rst_limited`. A limit of 0 never resets.
#[test]
fn tcp_v4_send_reset_rate_limited_per_core_token_bucket() {
    let mut net = net_with(10);
    let mut peer = Peer::v4(2004);
    let mut burst = |net: &mut Net, n: u32| -> u64 {
        let mut resets = 0;
        for i in 0..n {
            peer.port = 3000 + (i % 1000) as u16;
            let ack = 0x5555_0000 + i;
            let out =
                net.inject(&peer.frame(ACK, 0x1234_0000 + i, ack, b"", TcpOptions::default()));
            if !out.is_empty() {
                one(out).expect(RST, ack, 0);
                resets += 1;
            }
        }
        resets
    };
    assert_eq!(burst(&mut net, 25), 10);
    assert_eq!(net.event(Event::RstLimited), 15);
    net.advance(500);
    assert_eq!(
        burst(&mut net, 25),
        5,
        "half a second refills half the budget"
    );
    net.advance(10_000);
    assert_eq!(
        burst(&mut net, 25),
        10,
        "the bucket holds one second's worth"
    );
    assert_eq!(net.event(Event::RstSent), 25);
    assert_eq!(net.event(Event::RstLimited), 50);

    // The same budget covers a SYN-ACK sent to a listener.
    let mut peer = Peer::v4(2005);
    none(peer.send(&mut net, SYN | ACK, 5, 77, b"", TcpOptions::default()));
    net.advance(1_000);
    one(peer.send(&mut net, SYN | ACK, 5, 77, b"", TcpOptions::default())).expect(RST, 77, 0);

    let mut silent = net_with(0);
    let peer = Peer::v4(2006);
    none(silent.inject(&peer.frame(ACK, 1, 2, b"", TcpOptions::default())));
    assert_eq!(silent.event(Event::RstLimited), 1);
}

fn path(n: u8) -> L2Path {
    L2Path {
        local_mac: SERVER_MAC,
        remote_mac: [0x02, 0xee, 0, 0, 0, n],
        vlan: None,
    }
}

/// A peer on its own MAC address.
fn peer_on_mac(port: u16, mac: u8) -> Peer {
    let mut p = Peer::v4(port);
    p.mac = [0x02, 0xee, 0, 0, 0, mac];
    p
}

/// Reset the connection from the client side: an RST exactly at RCV.NXT (RFC 9293
/// §3.10.7.4 second check) removes it.
fn reset(net: &mut Net, peer: &mut Peer) {
    let (seq, ack) = (peer.snd_nxt, peer.rcv_nxt);
    none(peer.send(net, RST, seq, ack, b"", TcpOptions::default()));
    assert_eq!(net.state(peer), None);
}

/// The link path of two connections from one neighbour is one entry held twice; it goes
/// with the second connection (Linux: a neighbour entry lives while something holds it).
#[test]
fn neigh_release_path_with_last_connection() {
    let mut net = net_with(1000);
    let mut a = peer_on_mac(2100, 1);
    let mut b = peer_on_mac(2101, 1);
    a.connect(&mut net);
    b.connect(&mut net);
    let id = net.conn(&a).unwrap().link;
    assert_eq!(net.conn(&b).unwrap().link, id);
    assert_eq!(net.core().sh.links.len(), 1);
    assert_eq!(net.core().sh.links.refs(id), 2);
    reset(&mut net, &mut a);
    assert_eq!(net.core().sh.links.refs(id), 1);
    reset(&mut net, &mut b);
    assert_eq!(net.core().sh.links.refs(id), 0);
    // Released; recycled once nothing queued can name it (the next frame).
    none(net.inject(&a.frame(RST, 1, 0, b"", TcpOptions::default())));
    assert!(net.core().sh.links.is_empty());
    net.assert_clean();
}

/// A host cycling through spoofed source MACs: every connection on a new MAC takes a path,
/// every one that goes gives it back, so round after round the table stays within the
/// connections alive (here: the 64-connection table) and reuses the same indices.
#[test]
fn neigh_spoofed_source_macs_cannot_fill_the_link_table() {
    let mut net = net_with(1000);
    for round in 0..4u16 {
        let mut peers: Vec<Peer> = (0..64u16)
            .map(|i| peer_on_mac(10_000 + round * 100 + i, (round * 64 + i) as u8))
            .collect();
        for p in &mut peers {
            p.connect(&mut net);
        }
        assert_eq!(net.core().active(), 64);
        assert_eq!(net.core().sh.links.len(), 64);
        for p in &peers {
            assert!(net.conn(p).unwrap().link < 64, "index reused, not grown");
        }
        for p in &mut peers {
            reset(&mut net, p);
        }
    }
    none(net.inject(&Peer::v4(9).frame(RST, 1, 0, b"", TcpOptions::default())));
    assert!(net.core().sh.links.is_empty());
    assert_eq!(net.dropped(DropReason::LinkTableFull), 0);
    net.assert_clean();
}

/// Linux `neigh_forced_gc` frees only entries nobody holds and `neigh_alloc` fails past
/// `gc_thresh3`: with every path held, a connection over a new path is refused (RST, counted
/// as `link_table_full`), a connection over a held path is still accepted, and no live
/// connection loses its path.
#[test]
fn neigh_forced_gc_full_link_table_refuses_new_path_keeps_live_ones() {
    let mut net = net_with(1000);
    net.stack.core.sh.links = LinkTable::new(2);
    let mut a = peer_on_mac(2200, 1);
    let mut b = peer_on_mac(2201, 2);
    a.connect(&mut net);
    b.connect(&mut net);
    let mut c = peer_on_mac(2202, 3);
    c.syn(&mut net);
    one(c.tx(&mut net, ACK, b"")).expect_flags(RST);
    assert_eq!(net.dropped(DropReason::LinkTableFull), 1);
    assert_eq!(net.state(&c), None);
    // A second connection from a known neighbour shares its path.
    let mut a2 = peer_on_mac(2203, 1);
    a2.connect(&mut net);
    // The live ones still reach their own MACs.
    for p in [&mut a, &mut b, &mut a2] {
        let out = p.tx(&mut net, ACK | PSH, b"x");
        assert_eq!(one(out).eth.dst, p.mac);
    }
    // Once b's connection goes, c's path fits.
    reset(&mut net, &mut b);
    let mut c = peer_on_mac(2204, 3);
    c.connect(&mut net);
    assert_eq!(net.state(&c), Some(State::Established));
    assert_eq!(one(c.tx(&mut net, ACK | PSH, b"x")).eth.dst, c.mac);
}

/// The table itself: acquire counts, release frees with the last holder, a released index
/// is reused only after `recycle`, a full table refuses instead of evicting.
#[test]
fn neigh_forced_gc_link_table_never_evicts_a_held_path() {
    let mut t = LinkTable::new(2);
    let a = t.acquire(&path(1)).unwrap();
    assert_eq!(t.acquire(&path(1)), Some(a));
    let b = t.acquire(&path(2)).unwrap();
    assert_eq!(t.acquire(&path(3)), None, "full: no eviction of held paths");
    t.release(a);
    assert_eq!(t.acquire(&path(3)), None, "a still held once");
    t.release(a);
    assert_eq!(t.acquire(&path(3)), None, "released but not recycled");
    assert_eq!(
        t.get(a),
        Some(&path(1)),
        "still readable for queued segments"
    );
    t.recycle();
    let c = t.acquire(&path(3)).unwrap();
    assert_eq!(c, a, "index reused");
    assert_eq!(t.get(b), Some(&path(2)));
    assert_eq!(t.get(c), Some(&path(3)));
    // Released, then acquired again before recycle: keeps its index, not freed.
    t.release(b);
    assert_eq!(t.acquire(&path(2)), Some(b));
    t.recycle();
    assert_eq!(t.refs(b), 1);
    assert_eq!(t.get(b), Some(&path(2)));
    assert_eq!(t.len(), 2);
}
