//! SYN cookies end to end (RFC 4987 §3.6): a cookie made by one stack is accepted by any
//! stack that holds the same secret (nodes behind one address can share it) and refused by
//! a stack with another secret.

mod support;

use support::*;
use synack::counters::{DropReason, Event};
use synack::tcp::conn::State;
use synack::tcp::cookie::CookieJar;
use synack::tcp::responder::Mode;
use synack::tcp::Params;

fn node(secret: [u8; 16]) -> Net {
    Net::with_jar(
        config(Params::default(), Mode::Discard),
        CookieJar::new(secret),
        &[SERVER_V4.into(), SERVER_V6.into()],
    )
}

/// Cookie ACKs refused. A cookie hashed with another key or tuple decodes to a random
/// minute counter and MSS index, so (as in Linux's `check_tcp_syn_cookie`, which tests the
/// age first) it is refused as expired or as invalid, depending on the bits.
fn refused(net: &Net) -> u64 {
    net.dropped(DropReason::CookieInvalid) + net.dropped(DropReason::CookieExpired)
}

/// RFC 4987 §3.6: the SYN-ACK from node A, the ACK to node B (same secret): B opens the
/// connection with what A's cookie encoded (MSS, and WS/SACK via the timestamp); node C
/// (another secret) refuses it and opens nothing.
#[test]
fn cookie_made_by_one_stack_verified_by_another_with_the_same_secret_rfc4987_3_6() {
    for v6 in [false, true] {
        let mut a = node(SECRET);
        let mut b = node(SECRET);
        let mut c = node(*b"another-secret!!");
        let mut peer = if v6 { Peer::v6(5000) } else { Peer::v4(5000) };
        peer.syn(&mut a);
        assert_eq!(a.core().active(), 0);
        // The same ACK goes to C first: refused and reset (RFC 9293 §3.10.7.2).
        let ack = peer.rcv_nxt;
        one(peer.clone().tx(&mut c, ACK, b"")).expect(RST, ack, 0);
        assert_eq!(refused(&c), 1);
        assert_eq!(c.core().active(), 0);
        // And to B: accepted, with the negotiated options A put in its cookie.
        none(peer.tx(&mut b, ACK, b""));
        assert_eq!(b.state(&peer), Some(State::Established));
        assert_eq!(b.event(Event::CookieOk), 1);
        let conn = b.conn(&peer).unwrap();
        assert_eq!(conn.mss, if v6 { 1440 } else { 1460 });
        assert_eq!(conn.snd_wscale, 7);
        assert!(conn.timestamps() && conn.sack_permitted());
        // B serves it from there on.
        one(peer.tx(&mut b, ACK, b"data")).expect(ACK, peer.rcv_nxt, peer.snd_nxt);
        assert_eq!(a.core().active(), 0, "A never saw more than the SYN");
    }
}

/// RFC 4987 §3.6: the cookie binds the 4-tuple: the same numbers from another client port
/// are refused.
#[test]
fn cookie_bound_to_the_four_tuple_rfc4987_3_6() {
    let mut a = node(SECRET);
    let mut peer = Peer::v4(5001);
    peer.syn(&mut a);
    let mut other = peer.clone();
    other.port = 5002;
    let ack = other.rcv_nxt;
    one(other.tx(&mut a, ACK, b"")).expect(RST, ack, 0);
    assert_eq!(refused(&a), 1);
    none(peer.tx(&mut a, ACK, b""));
    assert_eq!(a.state(&peer), Some(State::Established));
}
