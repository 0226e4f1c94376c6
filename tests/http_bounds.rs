//! No connection holds resources forever (sockstress, slowloris), on the virtual clock:
//! a zero window answered forever is reset after `persist_timeout_ms` (RFC 6429), a close
//! whose FIN waits behind data that never drains is reset after `close_timeout_ms`, and
//! an http request head still incomplete after `header_timeout_ms` gets 408 and a close.

mod support;

use support::*;
use synack::counters::Event;
use synack::tcp::conn::State;
use synack::tcp::responder::Mode;
use synack::tcp::Params;

fn params() -> Params {
    Params {
        rto_initial_ms: 1_000,
        rto_max_ms: 8_000,
        idle_timeout_ms: 0,
        ..Params::default()
    }
}

/// Echo `data` to a client whose window is zero: the server holds it.
fn stuck_echo(params: Params, port: u16) -> (Net, Peer) {
    let mut net = Net::new(params, Mode::Echo);
    let mut peer = Peer::v4(port);
    peer.connect(&mut net);
    peer.window = 0;
    let a = one(peer.tx(&mut net, ACK | PSH, b"held data"));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    (net, peer)
}

/// The client answers every segment of `out` (probes) with a zero-window ACK.
fn answer(net: &mut Net, peer: &mut Peer, out: &[Seg]) -> Vec<Seg> {
    let mut replies = Vec::new();
    for _ in out.iter().filter(|s| !s.flags.contains(RST)) {
        let (seq, ack) = (peer.snd_nxt, peer.rcv_nxt);
        let o = peer.opts(net);
        replies.extend(peer.send(net, ACK, seq, ack, b"", o));
    }
    replies
}

/// Run `ms` of virtual time in 100 ms steps, answering every probe; returns every
/// segment the server sent and the time of its RST, if any.
fn probe_answered(net: &mut Net, peer: &mut Peer, ms: u64) -> (Vec<Seg>, Option<u64>) {
    let mut all = Vec::new();
    let mut t = 0;
    while t < ms {
        t += 100;
        let out = net.advance(100);
        let replies = answer(net, peer, &out);
        let rst = out.iter().chain(&replies).any(|s| s.flags.contains(RST));
        all.extend(out);
        all.extend(replies);
        if rst {
            return (all, Some(t));
        }
    }
    (all, None)
}

/// RFC 6429 (RFC 9293 §3.8.6.1): a peer that answers every zero-window probe keeps the
/// connection only up to the persist bound; then RST, the entry and its buffer freed.
#[test]
fn rfc6429_zero_window_persist_is_bounded() {
    let p = Params {
        persist_timeout_ms: 20_000,
        ..params()
    };
    let (mut net, mut peer) = stuck_echo(p, 42_000);
    let (out, rst) = probe_answered(&mut net, &mut peer, 19_900);
    assert!(rst.is_none(), "reset before the bound: {out:#?}");
    let probes = out.iter().filter(|s| s.payload.len() == 1).count();
    assert!(probes >= 4, "{probes} probes");
    assert_eq!(net.state(&peer), Some(State::Established));
    // At most one probe interval (rto_max 8 s) after the bound, it is reset.
    let (out, rst) = probe_answered(&mut net, &mut peer, 8_200);
    assert!(rst.is_some(), "never reset: {out:#?}");
    let r = out.iter().find(|s| s.flags.contains(RST)).unwrap();
    // At the window's edge, not after the probe byte the client did not take.
    r.expect(RST | ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.event(Event::PersistTimedOut), 1);
    assert_eq!(net.event(Event::RstSent), 1);
    net.assert_clean();
}

/// With `persist_timeout_ms = 0` the probes go on while answered (RFC 1122 §4.2.2.17).
#[test]
fn rfc1122_4_2_2_17_persist_unbounded_when_disabled() {
    let p = Params {
        persist_timeout_ms: 0,
        ..params()
    };
    let (mut net, mut peer) = stuck_echo(p, 42_001);
    let (_, rst) = probe_answered(&mut net, &mut peer, 300_000);
    assert!(rst.is_none());
    assert_eq!(net.state(&peer), Some(State::Established));
}

/// RFC 9293 §3.10.4 CLOSE queues our FIN behind the data; when that data never drains
/// (a zero window answered forever, persist unbounded) the idle close still ends the
/// connection: RST `close_timeout_ms` after it.
#[test]
fn rfc9293_3_10_4_idle_close_behind_unsendable_data_resets() {
    let p = Params {
        idle_timeout_ms: 5_000,
        persist_timeout_ms: 0,
        close_timeout_ms: 3_000,
        ..params()
    };
    let (mut net, mut peer) = stuck_echo(p, 42_002);
    // Probes at 1, 2, 4 and then every 8 s: the 8 s gaps let the idle timer fire.
    let (out, rst) = probe_answered(&mut net, &mut peer, 60_000);
    assert_eq!(net.event(Event::IdleClosed), 1, "{out:#?}");
    assert!(rst.is_some(), "never reset: {out:#?}");
    assert!(
        !out.iter().any(|s| s.flags.contains(FIN)),
        "the FIN jumped the data"
    );
    assert_eq!(net.event(Event::CloseTimedOut), 1);
    net.assert_clean();
}

/// Shutdown (`close_all`) behind a zero window: the same bound ends it.
#[test]
fn rfc9293_3_10_4_close_all_behind_unsendable_data_resets() {
    let p = Params {
        persist_timeout_ms: 0,
        close_timeout_ms: 3_000,
        ..params()
    };
    let (mut net, mut peer) = stuck_echo(p, 42_003);
    let clock = net.clock;
    net.stack.core.close_all(&clock);
    none(net.advance(0));
    let (out, rst) = probe_answered(&mut net, &mut peer, 10_000);
    let t = rst.unwrap_or_else(|| panic!("never reset: {out:#?}"));
    assert!((3_000..=8_000).contains(&t), "reset at {t} ms");
    assert_eq!(net.event(Event::CloseTimedOut), 1);
    net.assert_clean();
}

fn http(header_timeout_ms: u32) -> Net {
    Net::new(
        Params {
            header_timeout_ms,
            ..params()
        },
        Mode::Http,
    )
}

/// Slowloris: a head dribbled one field line a second never completes; 408 (RFC 9110
/// §15.5.9) and FIN `header_timeout_ms` after its first byte, not after the last.
#[test]
fn rfc9110_15_5_9_incomplete_head_times_out_with_408() {
    let mut net = http(5_000);
    let mut peer = Peer::v4(42_010);
    peer.connect(&mut net);
    one(peer.tx(&mut net, ACK | PSH, b"GET / HTTP/1.1\r\n"));
    for i in 0..4 {
        none(net.advance(1_000));
        one(peer.tx(&mut net, ACK | PSH, format!("X-{i}: a\r\n").as_bytes()));
    }
    let out = net.advance(1_000);
    assert_eq!(out.len(), 2, "{out:#?}");
    let text = String::from_utf8_lossy(&out[0].payload);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(text.contains("Connection: close"));
    out[1].expect(
        ACK | FIN,
        out[0].seq + out[0].payload.len() as u32,
        peer.snd_nxt,
    );
    assert_eq!(net.event(Event::HttpHeaderTimeout), 1);
    assert_eq!(net.event(Event::HttpRequests), 0);
    peer.absorb(&out);
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), Some(State::FinWait2));
}

/// The header clock runs only while a head is incomplete: a keep-alive connection
/// between requests, or one whose response is still unacknowledged, is not timed out;
/// a head begun while a response was in flight times out once that is acknowledged.
#[test]
fn rfc9112_9_3_header_timeout_spares_idle_keep_alive() {
    let mut net = http(5_000);
    let mut peer = Peer::v4(42_011);
    peer.connect(&mut net);
    let r = one(peer.tx(&mut net, ACK | PSH, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    peer.absorb(std::slice::from_ref(&r));
    none(peer.tx(&mut net, ACK, b""));
    none(net.advance(30_000));
    assert_eq!(net.state(&peer), Some(State::Established));
    // A response in flight (not acknowledged) and a head begun.
    let r = one(peer.tx(&mut net, ACK | PSH, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET"));
    assert!(String::from_utf8_lossy(&r.payload).starts_with("HTTP/1.1 200"));
    peer.absorb(std::slice::from_ref(&r));
    none(net.advance(900));
    // The client acknowledges 4 s later; the head's 5 s run out 1 s after that.
    net.advance(3_100);
    none(peer.tx(&mut net, ACK, b""));
    none(net.advance(900));
    let out = net.advance(200);
    assert!(
        out.first()
            .is_some_and(|s| s.payload.starts_with(b"HTTP/1.1 408")),
        "{out:#?}"
    );
    assert_eq!(net.event(Event::HttpHeaderTimeout), 1);
}

/// `header_timeout_ms = 0`: no limit.
#[test]
fn header_timeout_disabled() {
    let mut net = http(0);
    let mut peer = Peer::v4(42_012);
    peer.connect(&mut net);
    one(peer.tx(&mut net, ACK | PSH, b"GET / HTTP/1.1\r\n"));
    none(net.advance(200_000));
    assert_eq!(net.event(Event::HttpHeaderTimeout), 0);
}
