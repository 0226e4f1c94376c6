//! Every transition of the server's TCP state machine, driven through whole frames
//! (`Stack::handle`), each test naming the RFC section it checks. Every scenario that ends
//! closed also checks that no table entry or pool buffer leaked.

mod support;

use support::*;
use synack::counters::{DropReason, Event};
use synack::tcp::conn::State;
use synack::tcp::responder::Mode;
use synack::tcp::Params;
use synack::wire::TcpOptions;

fn fast() -> Params {
    Params {
        time_wait_ms: 2_000,
        ..Params::default()
    }
}

// ---- LISTEN -----------------------------------------------------------------------------

/// RFC 9293 §3.10.7.2 (LISTEN, SYN) with RFC 7323 §1.3/§2.2 and RFC 2018 §2: a SYN with
/// MSS, WS, SACK_PERM and TS gets a cookie SYN-ACK with all four, the TS echoing the
/// client's TSval, an unscaled window; LISTEN keeps no state.
#[test]
fn listen_syn_gets_synack_with_options_rfc9293_3_10_7_2() {
    let mut net = Net::new(fast(), Mode::Discard);
    let mut peer = Peer::v4(1000);
    let synack = peer.syn(&mut net);
    let o = synack.options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, Some(7));
    assert!(o.sack_permitted);
    let (tsval, tsecr) = o.timestamps.expect("timestamps in the SYN-ACK");
    assert_eq!(tsecr, peer.tsval(&net), "TSecr echoes the SYN's TSval");
    assert!(
        tsval <= net.clock.ms as u32,
        "cookie TSval never runs ahead of the clock"
    );
    // RFC 7323 §2.2: "The window field in a segment where the SYN bit is set ... MUST NOT
    // be scaled".
    assert_eq!(synack.window, 65535);
    assert_eq!(net.core().active(), 0);
    assert_eq!(net.event(Event::SynAckSent), 1);
    // And the handshake completes with window scaling: our window field is shifted by 7.
    none(peer.tx(&mut net, ACK, b""));
    let c = net.conn(&peer).unwrap();
    assert!(c.timestamps() && c.sack_permitted());
    assert_eq!((c.snd_wscale, c.rcv_wscale), (7, 7));
    assert_eq!(c.snd_wnd, 502 << 7);
}

/// RFC 7323 §1.3 and Linux syncookies: without timestamps the cookie cannot carry WS and
/// SACK, so the SYN-ACK offers neither (only MSS).
#[test]
fn listen_syn_without_timestamps_offers_no_ws_or_sack_rfc7323_1_3() {
    let mut net = Net::new(fast(), Mode::Discard);
    let mut peer = Peer::v4(1001);
    peer.syn_options.timestamps = None;
    let synack = peer.syn(&mut net);
    assert_eq!(synack.options.mss, Some(1460));
    assert_eq!(synack.options.window_scale, None);
    assert!(!synack.options.sack_permitted);
    assert_eq!(synack.options.timestamps, None);
    none(peer.tx(&mut net, ACK, b""));
    let c = net.conn(&peer).unwrap();
    assert!(!c.timestamps() && !c.sack_permitted());
    assert_eq!((c.snd_wscale, c.rcv_wscale), (0, 0));
}

/// RFC 9293 §3.10.7.3 (SYN-RECEIVED, ACK acceptable → ESTABLISHED) with RFC 4987 §3.6
/// cookies: data on the handshake's third segment is accepted and acknowledged.
#[test]
fn cookie_ack_with_data_establishes_rfc9293_3_10_7_3() {
    let mut net = Net::new(fast(), Mode::Discard);
    let mut peer = Peer::v4(1002);
    peer.syn(&mut net);
    let a = one(peer.tx(&mut net, ACK | PSH, b"hello"));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.state(&peer), Some(State::Established));
    assert_eq!(net.event(Event::RxBytes), 5);
    assert_eq!(net.event(Event::Established), 1);
}

/// RFC 4987 §3.6: an ACK whose cookie does not verify creates nothing and is counted; it
/// is reset (RFC 9293 §3.10.7.2 `<SEQ=SEG.ACK><CTL=RST>`), unless it may be a later
/// segment of the handshake (its SEG.SEQ a little past the ISN the cookie stands for).
#[test]
fn bad_cookie_is_dropped_rfc4987_3_6() {
    let mut net = Net::new(fast(), Mode::Discard);
    let mut peer = Peer::v4(1003);
    peer.syn(&mut net);
    let opts = peer.opts(&net);
    let (seq, ack) = (peer.snd_nxt, peer.rcv_nxt.wrapping_add(1_000));
    one(peer.send(&mut net, ACK, seq, ack, b"", opts)).expect(RST, ack, 0);
    // A wrong cookie decodes to random counter and MSS bits: refused as invalid or expired.
    let refused =
        |n: &Net| n.dropped(DropReason::CookieInvalid) + n.dropped(DropReason::CookieExpired);
    assert_eq!(refused(&net), 1);
    assert_eq!(net.core().active(), 0);
    // An ACK 7 bytes past the ISN (the first 7 bytes lost) fails the same way, unreset.
    none(peer.send(&mut net, ACK, seq.wrapping_add(7), peer.rcv_nxt, b"", opts));
    assert_eq!(refused(&net), 2);
    net.assert_clean();
}

/// RFC 4987 §3.6 (cookie lifetime, Linux MAX_SYNCOOKIE_AGE): a correct cookie presented
/// more than two minute-periods later is refused as expired.
#[test]
fn expired_cookie_is_dropped_rfc4987_3_6() {
    let mut net = Net::new(fast(), Mode::Discard);
    let mut peer = Peer::v4(1004);
    peer.syn(&mut net);
    net.advance(121_000);
    let ack = peer.rcv_nxt;
    one(peer.tx(&mut net, ACK, b"")).expect(RST, ack, 0);
    assert_eq!(net.dropped(DropReason::CookieExpired), 1);
    assert_eq!(net.core().active(), 0);
    // Within the lifetime the same handshake works.
    let mut p2 = Peer::v4(1005);
    p2.syn(&mut net);
    net.advance(59_000);
    none(p2.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&p2), Some(State::Established));
}

/// RFC 9293 §3.10.7.2: a SYN+ACK to LISTEN is answered by <SEQ=SEG.ACK><CTL=RST>; an RST
/// to LISTEN is ignored; anything else without a connection is dropped.
#[test]
fn listen_refuses_ack_syn_and_ignores_rst_rfc9293_3_10_7_2() {
    let mut net = Net::new(fast(), Mode::Discard);
    let mut peer = Peer::v4(1006);
    let r = one(peer.send(&mut net, SYN | ACK, 5, 77, b"", TcpOptions::default()));
    r.expect(RST, 77, 0);
    none(peer.send(&mut net, RST, 5, 0, b"", TcpOptions::default()));
    assert_eq!(net.dropped(DropReason::RstNoConnection), 1);
    none(peer.send(&mut net, FIN, 5, 0, b"", TcpOptions::default()));
    assert_eq!(net.dropped(DropReason::NoConnection), 2);
    // Not a listening port.
    peer.server_port = 81;
    none(peer.send(&mut net, SYN, 5, 0, b"", TcpOptions::default()));
    assert_eq!(net.dropped(DropReason::NotOurs), 1);
}

// ---- ESTABLISHED: text ------------------------------------------------------------------

/// RFC 9293 §3.10.7.4 seventh check: in-order text is delivered and acknowledged.
#[test]
fn established_in_order_data_is_acked_rfc9293_3_10_7_4() {
    let (mut net, mut peer) = established(fast());
    let a = one(peer.tx(&mut net, ACK | PSH, b"abc"));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    let a = one(peer.tx(&mut net, ACK | PSH, &[7u8; 1400]));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.event(Event::RxBytes), 1403);
    // Timestamps ride on every segment (RFC 7323 §3.2), echoing our latest TSval.
    assert_eq!(a.options.timestamps.unwrap().1, peer.tsval(&net));
}

/// RFC 9293 §3.10.7.4 (we keep no out-of-order queue): a segment beyond RCV.NXT is dropped
/// and answered by a duplicate ACK of RCV.NXT, so the sender retransmits.
#[test]
fn out_of_order_dropped_with_duplicate_ack_rfc9293_3_10_7_4() {
    let (mut net, mut peer) = established(fast());
    let opts = peer.opts(&net);
    let (seq, ack) = (peer.snd_nxt.wrapping_add(100), peer.rcv_nxt);
    let a = one(peer.send(&mut net, ACK, seq, ack, b"later", opts));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.dropped(DropReason::OutOfOrder), 1);
    assert_eq!(net.event(Event::RxBytes), 0);
    // The hole filled, the stream continues from RCV.NXT.
    one(peer.tx(&mut net, ACK, b"now")).expect(ACK, peer.rcv_nxt, peer.snd_nxt);
}

/// RFC 9293 §3.10.7.4 seventh check: "If a segment's contents straddle the boundary between
/// old and new, only the new parts are processed."
#[test]
fn overlapping_retransmission_is_trimmed_rfc9293_3_10_7_4() {
    let (mut net, mut peer) = established(fast());
    one(peer.tx(&mut net, ACK, b"abcdef"));
    let opts = peer.opts(&net);
    let (seq, ack) = (peer.snd_nxt.wrapping_sub(3), peer.rcv_nxt);
    let a = one(peer.send(&mut net, ACK, seq, ack, b"defghi", opts));
    peer.snd_nxt += 3;
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.event(Event::RxBytes), 9);
    // An entirely old segment is not acceptable: ACK, nothing delivered.
    let a = one(peer.send(&mut net, ACK, seq, ack, b"def", opts));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.event(Event::RxBytes), 9);
    assert_eq!(net.dropped(DropReason::OutOfWindow), 1);
}

/// RFC 9293 §3.8.6 (window management) and §3.8.6.1 (zero window probing) in echo mode:
/// with the client not reading, the echo buffer fills and our window closes to zero;
/// data beyond it is not taken; when the client reads (acknowledges the echo), the window
/// opens again.
#[test]
fn zero_window_and_window_update_rfc9293_3_8_6() {
    let mut net = Net::new(fast(), Mode::Echo);
    let mut peer = Peer::v4(1010);
    let (synack, _) = peer.connect(&mut net);
    assert_eq!(synack.window, 4096, "echo offers its buffer");
    // The client stops reading.
    peer.window = 0;
    for chunk in [1400usize, 1400, 1296] {
        let a = one(peer.tx(&mut net, ACK, &vec![b'x'; chunk]));
        a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    }
    let c = net.conn(&peer).unwrap();
    assert_eq!(c.snd_wnd, 0);
    // The last ACK closed our window (echo buffer full, nothing could be sent).
    let o = peer.opts(&net);
    let probe = one(peer.send(&mut net, ACK, peer.snd_nxt, peer.rcv_nxt, b"y", o));
    probe.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(probe.window, 0, "zero window");
    assert_eq!(net.dropped(DropReason::NoBuffer), 1);
    // The client reads: opens its window; the echo flows, within MSS.
    peer.window = 502;
    let out = peer.tx(&mut net, ACK, b"");
    let echoed: usize = out.iter().map(|s| s.payload.len()).sum();
    assert_eq!(echoed, 4096);
    assert!(out.iter().all(|s| s.payload.len() <= 1460));
    peer.absorb(&out);
    // It acknowledges the echo: the buffer is free and our window opens again, which we
    // announce at once (RFC 9293 §3.8.6.2.2) instead of waiting for its probe.
    let upd = one(peer.tx(&mut net, ACK, b""));
    upd.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(upd.window, 4096, "window update");
    // A pure ACK that frees nothing gets no reply.
    none(peer.tx(&mut net, ACK, b""));
    let a = one(peer.tx(&mut net, ACK, b"y"));
    assert_eq!(a.payload, b"y");
}

/// RFC 7323 §5.3 R1: a segment whose TSval is older than TS.Recent is not acceptable; it is
/// acknowledged and dropped.
#[test]
fn paws_rejects_old_timestamp_rfc7323_5_3() {
    let (mut net, mut peer) = established(fast());
    net.advance(10);
    let old = TcpOptions {
        timestamps: Some((peer.tsval(&net).wrapping_sub(1_000), peer.ts_recent)),
        ..TcpOptions::default()
    };
    let a = one(peer.send(&mut net, ACK, peer.snd_nxt, peer.rcv_nxt, b"old", old));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.dropped(DropReason::PawsRejected), 1);
    assert_eq!(net.event(Event::RxBytes), 0);
    one(peer.tx(&mut net, ACK, b"new")).expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.event(Event::RxBytes), 3);
}

/// RFC 7323 §5.2 and §5.3 R1 across the wrap of the peer's timestamp clock: TSvals are
/// compared modulo 2^32, so a TSval that wrapped past 0 is newer than a TS.Recent just
/// below 2^32 (accepted, and TS.Recent follows it, §4.3), and one from before the wrap is
/// then older (rejected).
#[test]
fn paws_across_the_tsval_wrap_rfc7323_5_2_5_3() {
    let mut net = Net::new(fast(), Mode::Discard);
    let mut peer = Peer::v4(40_000);
    // The peer's TSval is 2^32 - 6 at the handshake.
    peer.ts_offset = (u32::MAX - 5).wrapping_sub(net.clock.ms as u32);
    peer.connect(&mut net);
    assert_eq!(net.conn(&peer).map(|c| c.ts_recent.0), Some(u32::MAX - 5));
    net.advance(10);
    assert_eq!(peer.tsval(&net), 4, "the peer's clock wrapped");
    one(peer.tx(&mut net, ACK, b"new")).expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.event(Event::RxBytes), 3);
    assert_eq!(net.conn(&peer).map(|c| c.ts_recent.0), Some(4));
    let before_wrap = TcpOptions {
        timestamps: Some((u32::MAX - 2, peer.ts_recent)),
        ..TcpOptions::default()
    };
    let a = one(peer.send(
        &mut net,
        ACK,
        peer.snd_nxt,
        peer.rcv_nxt,
        b"old",
        before_wrap,
    ));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.dropped(DropReason::PawsRejected), 1);
    assert_eq!(net.event(Event::RxBytes), 3);
}

// ---- closing ----------------------------------------------------------------------------

/// RFC 9293 §3.6 case 2 / §3.10.7.4: the client closes: ESTABLISHED → CLOSE-WAIT (FIN
/// received) → LAST-ACK (our FIN) → CLOSED (our FIN acknowledged), TCB removed.
#[test]
fn client_close_close_wait_last_ack_closed_rfc9293_3_10_7_4() {
    let (mut net, mut peer) = last_ack(fast());
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), None);
    assert_eq!(net.event(Event::Closed), 1);
    net.assert_clean();
}

/// RFC 9293 §3.6 case 1 / §3.10.7.4: the server closes (`close` mode): FIN-WAIT-1 →
/// FIN-WAIT-2 (our FIN acknowledged) → TIME-WAIT (their FIN) → removed after 2*MSL.
#[test]
fn server_close_fin_wait_time_wait_rfc9293_3_10_7_4() {
    let (mut net, peer) = time_wait(fast());
    assert_eq!(net.event(Event::TimeWait), 1);
    none(net.advance(1_992));
    assert_eq!(net.state(&peer), Some(State::TimeWait));
    none(net.advance(8));
    assert_eq!(net.state(&peer), None);
    assert_eq!(net.event(Event::Closed), 1);
    net.assert_clean();
}

/// RFC 9293 §3.6 case 3 (simultaneous close): FIN-WAIT-1 + FIN → CLOSING; the ACK of our
/// FIN → TIME-WAIT → removed.
#[test]
fn simultaneous_close_through_closing_rfc9293_3_10_7_4() {
    let (mut net, mut peer) = closing(fast());
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), Some(State::TimeWait));
    net.advance(2_000);
    assert_eq!(net.state(&peer), None);
    net.assert_clean();
}

/// RFC 9293 §3.10.7.4 (TIME-WAIT): "The only thing that can arrive in this state is a
/// retransmission of the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
#[test]
fn time_wait_reacks_retransmitted_fin_rfc9293_3_10_7_4() {
    let (mut net, mut peer) = time_wait(fast());
    net.advance(1_500);
    let opts = peer.opts(&net);
    let a = one(peer.send(
        &mut net,
        ACK | FIN,
        peer.snd_nxt - 1,
        peer.rcv_nxt,
        b"",
        opts,
    ));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    // The timer restarted: still there 1.5 s later, gone 2 s after the FIN.
    net.advance(1_500);
    assert_eq!(net.state(&peer), Some(State::TimeWait));
    net.advance(504);
    assert_eq!(net.state(&peer), None);
    net.assert_clean();
}

/// RFC 9293 §3.10.7.4 (TIME-WAIT) note and RFC 6191 §2: a new SYN whose TSval is newer than
/// TS.Recent reopens the tuple (new cookie SYN-ACK); an old one gets an ACK.
#[test]
fn time_wait_new_syn_reopens_old_syn_gets_ack_rfc6191_2() {
    let (mut net, mut peer) = time_wait(fast());
    // An old duplicate SYN (TSval from before): ACK of RCV.NXT, tuple kept.
    let old = TcpOptions {
        timestamps: Some((peer.tsval(&net).wrapping_sub(5_000), 0)),
        mss: Some(1460),
        ..TcpOptions::default()
    };
    let a = one(peer.send(&mut net, SYN, peer.iss, 0, b"", old));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.state(&peer), Some(State::TimeWait));
    assert_eq!(net.event(Event::TimeWaitReused), 0);
    // A new incarnation: higher TSval.
    net.advance(100);
    peer.iss = peer.snd_nxt.wrapping_add(100_000);
    let synack = peer.syn(&mut net);
    assert_eq!(net.event(Event::TimeWaitReused), 1);
    assert_eq!(net.state(&peer), None, "the TIME-WAIT TCB is gone");
    assert_eq!(synack.ack, peer.iss + 1);
    // and the new handshake completes (close mode: the server's FIN follows).
    let out = peer.tx(&mut net, ACK, b"");
    one(out).expect(ACK | FIN, synack.seq + 1, peer.snd_nxt);
    assert_eq!(net.state(&peer), Some(State::FinWait1));
}

/// RFC 9293 §3.10.7.4 (TIME-WAIT) and RFC 1337: an RST does not end TIME-WAIT early (Linux
/// with `tcp_rfc1337 = 1`; Linux's default, 0, would end it on an RST at RCV.NXT).
#[test]
fn time_wait_ignores_rst_rfc1337() {
    let (mut net, mut peer) = time_wait(fast());
    none(peer.send(&mut net, RST, peer.snd_nxt, 0, b"", TcpOptions::default()));
    assert_eq!(net.state(&peer), Some(State::TimeWait));
}

// ---- RFC 5961 ---------------------------------------------------------------------------

/// RFC 5961 §3.2: "If the RST bit is set and the sequence number exactly matches the next
/// expected sequence number (RCV.NXT), then TCP MUST reset the connection."
#[test]
fn exact_rst_closes_rfc5961_3_2() {
    let (mut net, mut peer) = established(fast());
    none(peer.send(&mut net, RST, peer.snd_nxt, 0, b"", TcpOptions::default()));
    assert_eq!(net.state(&peer), None);
    assert_eq!(net.event(Event::Reset), 1);
    net.assert_clean();
}

/// RFC 5961 §3.2: an RST in the window but not at RCV.NXT gets a challenge ACK; one
/// outside the window is silently dropped.
#[test]
fn in_window_rst_challenged_out_of_window_dropped_rfc5961_3_2() {
    let (mut net, mut peer) = established(fast());
    let a = one(peer.send(
        &mut net,
        RST,
        peer.snd_nxt + 10,
        0,
        b"",
        TcpOptions::default(),
    ));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.dropped(DropReason::RstInWindow), 1);
    assert_eq!(net.event(Event::ChallengeAck), 1);
    none(peer.send(
        &mut net,
        RST,
        peer.snd_nxt.wrapping_add(1 << 30),
        0,
        b"",
        TcpOptions::default(),
    ));
    assert_eq!(net.dropped(DropReason::RstOutOfWindow), 1);
    none(peer.send(
        &mut net,
        RST,
        peer.snd_nxt.wrapping_sub(1),
        0,
        b"",
        TcpOptions::default(),
    ));
    assert_eq!(net.dropped(DropReason::RstOutOfWindow), 2);
    assert_eq!(net.state(&peer), Some(State::Established));
}

/// RFC 5961 §4.2: a SYN on a synchronized connection, whatever its sequence number, gets a
/// challenge ACK and changes nothing; challenge ACKs are limited per connection first (Linux
/// `__tcp_oow_rate_limited`: one per 500 ms), counted as `ack_rate_limited`.
#[test]
fn syn_on_established_challenged_and_rate_limited_rfc5961_4_2_and_7() {
    let (mut net, mut peer) = established(fast());
    let o = peer.opts(&net);
    let a = one(peer.send(&mut net, SYN, peer.snd_nxt + 5, 0, b"", o));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    // Out of the window too (RFC 5961 §4.2 "irrespective of the sequence number"), within
    // the same 500 ms: skipped.
    none(peer.send(&mut net, SYN, peer.snd_nxt + 5, 0, b"", o));
    none(peer.send(&mut net, SYN, peer.snd_nxt ^ 0x8000_0000, 0, b"", o));
    assert_eq!(net.event(Event::ChallengeAck), 1);
    assert_eq!(net.event(Event::AckRateLimited), 2);
    net.advance(499);
    let o = peer.opts(&net);
    none(peer.send(&mut net, SYN, peer.snd_nxt + 5, 0, b"", o));
    // 500 ms after the last one sent, the next may go.
    net.advance(1);
    let o = peer.opts(&net);
    one(peer.send(&mut net, SYN, peer.snd_nxt ^ 0x8000_0000, 0, b"", o)).expect(
        ACK,
        peer.rcv_nxt,
        peer.snd_nxt,
    );
    assert_eq!(net.event(Event::ChallengeAck), 2);
    assert_eq!(net.state(&peer), Some(State::Established));
}

/// RFC 5961 §7 with Linux `tcp_send_challenge_ack` (the CVE-2016-5696 fix): past the
/// per-connection limit, a per-core budget drawn each second from
/// `[ceil(limit/2), limit + ceil(limit/2) - 1]`. 40 connections each draw one challenge ACK
/// a second; the number sent each second is that second's budget, which varies.
#[test]
fn challenge_ack_budget_per_core_randomised_tcp_send_challenge_ack() {
    let limit = 10u32;
    let mut net = Net::new(
        Params {
            challenge_ack_limit: limit,
            ..fast()
        },
        Mode::Discard,
    );
    let mut peers: Vec<Peer> = (0..40).map(|i| Peer::v4(42_000 + i)).collect();
    for p in &mut peers {
        p.connect(&mut net);
    }
    let half = limit.div_ceil(2);
    let mut budgets = std::collections::BTreeSet::new();
    for _ in 0..12 {
        net.advance(1_000);
        let before = net.event(Event::ChallengeAck);
        for p in &mut peers {
            // An in-window RST not at RCV.NXT: challenge ACK (RFC 5961 §3.2).
            let f = p.frame(RST, p.snd_nxt + 1, 0, b"", TcpOptions::default());
            net.inject(&f);
        }
        let sent = (net.event(Event::ChallengeAck) - before) as u32;
        assert!(
            (half..=limit + half - 1).contains(&sent),
            "budget {sent} outside [{half}, {}]",
            limit + half - 1
        );
        budgets.insert(sent);
    }
    assert!(budgets.len() > 1, "the budget never changed: {budgets:?}");
    assert!(net.dropped(DropReason::ChallengeAckLimited) > 0);
    assert_eq!(net.core().active(), peers.len());
}

/// RFC 5961 §5.2 / RFC 9293 §3.10.7.4: "If the ACK acks something not yet sent (SEG.ACK >
/// SND.NXT) then send an ACK, drop the segment, and return." The data is not taken.
#[test]
fn ack_of_unsent_data_dropped_rfc5961_5_2() {
    let (mut net, mut peer) = established(fast());
    let o = peer.opts(&net);
    let a = one(peer.send(&mut net, ACK, peer.snd_nxt, peer.rcv_nxt + 1_000, b"zz", o));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.dropped(DropReason::UnacceptableAck), 1);
    assert_eq!(net.event(Event::RxBytes), 0);
}

// ---- timers -----------------------------------------------------------------------------

/// RFC 6298 §5.4–5.5 and RFC 9293 §3.8.3 (R2): unacknowledged data is retransmitted after
/// 1 s, then 2 s, 4 s (doubling); after `max_retries` the connection is reset and removed.
#[test]
fn data_retransmitted_with_backoff_then_reset_rfc6298_5() {
    let mut net = Net::new(
        Params {
            max_retries: 3,
            ..fast()
        },
        Mode::Echo,
    );
    let mut peer = Peer::v4(1020);
    peer.connect(&mut net);
    let echo = one(peer.tx(&mut net, ACK | PSH, b"ping"));
    echo.expect(ACK | PSH, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(echo.payload, b"ping");
    for wait in [1_000u64, 2_000, 4_000] {
        none(net.advance(wait - 8));
        let r = one(net.advance(8));
        r.expect(ACK | PSH, echo.seq, peer.snd_nxt);
        assert_eq!(r.payload, b"ping");
    }
    assert_eq!(net.event(Event::Retransmit), 3);
    none(net.advance(8_000 - 8));
    let rst = one(net.advance(8));
    rst.expect(RST | ACK, echo.seq + 4, peer.snd_nxt);
    assert_eq!(net.state(&peer), None);
    assert_eq!(net.event(Event::TimedOut), 1);
    net.assert_clean();
}

/// RFC 6298 §5 for our FIN (it occupies sequence space, RFC 9293 §3.4): FIN-WAIT-1 resends
/// the FIN at 1 s, 2 s, 4 s, until acknowledged.
#[test]
fn fin_retransmitted_rfc6298_5() {
    let (mut net, mut peer) = fin_wait_1(fast());
    let fin_seq = peer.rcv_nxt - 1;
    for wait in [1_000u64, 2_000, 4_000] {
        none(net.advance(wait - 8));
        one(net.advance(8)).expect(ACK | FIN, fin_seq, peer.snd_nxt);
    }
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), Some(State::FinWait2));
    none(net.advance(20_000));
}

/// Idle timeout: an ESTABLISHED connection silent for `idle_timeout_ms` is closed by us
/// (FIN, RFC 9293 §3.10.4 CLOSE); a silent FIN-WAIT-2 is then forgotten.
#[test]
fn idle_timeout_closes() {
    let (mut net, mut peer) = established(Params {
        idle_timeout_ms: 5_000,
        ..fast()
    });
    net.advance(3_000);
    one(peer.tx(&mut net, ACK, b"x"));
    // Activity moved the deadline.
    none(net.advance(4_000));
    let fin = one(net.advance(1_000));
    fin.expect(ACK | FIN, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.event(Event::IdleClosed), 1);
    peer.absorb(&[fin]);
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), Some(State::FinWait2));
    net.advance(5_000);
    assert_eq!(net.state(&peer), None);
    assert_eq!(net.event(Event::IdleClosed), 2);
    net.assert_clean();
}

// ---- table full -------------------------------------------------------------------------

/// A full table refuses new connections: a valid cookie ACK is answered by RST (RFC 9293
/// §3.10.7.2 form, <SEQ=SEG.ACK><CTL=RST>) or dropped, by policy; counted TableFull.
#[test]
fn table_full_refuses_with_rst_or_drop() {
    for rst in [true, false] {
        let mut cfg = config(
            Params {
                rst_when_full: rst,
                ..fast()
            },
            Mode::Discard,
        );
        cfg.capacity = 2;
        let mut net = Net::with_config(cfg);
        for port in [2000, 2001] {
            Peer::v4(port).connect(&mut net);
        }
        let mut p = Peer::v6(2002);
        p.syn(&mut net);
        let out = p.tx(&mut net, ACK, b"");
        if rst {
            one(out).expect(RST, p.rcv_nxt, 0);
            assert_eq!(net.event(Event::RstSent), 1);
        } else {
            none(out);
        }
        assert_eq!(net.dropped(DropReason::TableFull), 1);
        assert_eq!(net.core().active(), 2);
    }
}

/// RFC 9293 §3.6 with the client closing first, everything sent and acknowledged: its FIN
/// is answered by our FIN with the ACK, its last ACK gets no reply, and no table entry or
/// pool buffer is left.
#[track_caller]
fn client_closes_first(net: &mut Net, peer: &mut Peer) {
    let fin = one(peer.tx(net, ACK | FIN, b""));
    fin.expect(ACK | FIN, peer.rcv_nxt, peer.snd_nxt);
    peer.absorb(&[fin]);
    none(peer.tx(net, ACK, b""));
    net.assert_clean();
}

// ---- responders -------------------------------------------------------------------------

/// RFC 862 echo: what arrives is sent back, in segments no larger than the peer's MSS and
/// never beyond its window (RFC 9293 §3.8.6.2.1: usable window).
#[test]
fn echo_within_peer_window_and_mss_rfc862() {
    let mut net = Net::new(fast(), Mode::Echo);
    let mut peer = Peer::v4(1030).bare(); // MSS 536 by default, no WS
    peer.window = 1000;
    peer.connect(&mut net);
    let data: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
    let out = peer.tx(&mut net, ACK | PSH, &data);
    let lens: Vec<usize> = out.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, vec![536, 464], "MSS 536, window 1000");
    assert!(out.iter().all(|s| s.ack == peer.snd_nxt));
    peer.absorb(&out);
    let rest = one(peer.tx(&mut net, ACK, b""));
    assert_eq!(rest.payload.len(), 500);
    peer.absorb(std::slice::from_ref(&rest));
    let mut got: Vec<u8> = out.iter().flat_map(|s| s.payload.clone()).collect();
    got.extend(&rest.payload);
    assert_eq!(got, data);
    client_closes_first(&mut net, &mut peer);
}

/// HTTP responder: each request answered, keep-alive honoured; `Connection: close` (RFC
/// 9112 §9.6) makes the server close after the response.
#[test]
fn http_keep_alive_then_connection_close() {
    let mut net = Net::new(fast(), Mode::Http);
    let mut peer = Peer::v4(1040);
    peer.connect(&mut net);
    let r = one(peer.tx(&mut net, ACK | PSH, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    let text = String::from_utf8(r.payload.clone()).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Connection: keep-alive") && text.ends_with("synack\n"));
    peer.absorb(&[r]);
    let out = peer.tx(
        &mut net,
        ACK | PSH,
        b"GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(out.len(), 2, "{out:#?}");
    assert!(String::from_utf8_lossy(&out[0].payload).contains("Connection: close"));
    out[1].expect(
        ACK | FIN,
        out[0].seq + out[0].payload.len() as u32,
        peer.snd_nxt,
    );
    peer.absorb(&out);
    assert_eq!(net.event(Event::HttpRequests), 2, "one per response queued");
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), Some(State::FinWait2));
    one(peer.tx(&mut net, ACK | FIN, b"")).expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.state(&peer), Some(State::TimeWait));
    net.advance(2_000);
    net.assert_clean();
}

// ---- IPv6 -------------------------------------------------------------------------------

/// RFC 9293 §3.5 over IPv6 (RFC 8200): the same handshake and close; the MSS we offer is
/// 20 bytes less for the larger IP header.
#[test]
fn ipv6_handshake_and_close_rfc9293_3_5() {
    let mut net = Net::new(fast(), Mode::Discard);
    let mut peer = Peer::v6(3000);
    let (synack, out) = peer.connect(&mut net);
    none(out);
    assert_eq!(synack.options.mss, Some(1440));
    assert!(synack.src.is_ipv6());
    assert_eq!(net.state(&peer), Some(State::Established));
    one(peer.tx(&mut net, ACK, b"six")).expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    client_closes_first(&mut net, &mut peer);
}

// ---- fixtures ---------------------------------------------------------------------------

/// Every per-state fixture reaches its state (and only one connection exists).
#[test]
fn fixtures_reach_their_states() {
    type Fixture = fn(Params) -> (Net, Peer);
    let cases: [(Fixture, State); 7] = [
        (established, State::Established),
        (close_wait, State::CloseWait),
        (last_ack, State::LastAck),
        (fin_wait_1, State::FinWait1),
        (fin_wait_2, State::FinWait2),
        (closing, State::Closing),
        (time_wait, State::TimeWait),
    ];
    for (fixture, state) in cases {
        let (net, peer) = fixture(fast());
        assert_eq!(net.state(&peer), Some(state));
        let mut expect = [0; 7];
        expect[state as usize] = 1;
        assert_eq!(net.states(), expect);
    }
}

// ---- retransmission and what was really sent --------------------------------------------

/// RFC 6298 §5.4 with RFC 9293 §3.10.7.4 ("If SND.UNA < SEG.ACK =< SND.NXT ... set SND.UNA
/// <- SEG.ACK"): after the RTO resends the first segment of a flight, a receiver that kept
/// the rest (any TCP with an out-of-order queue) acknowledges the whole flight. That ACK
/// covers data we did send and must be accepted, not refused as "ACK of unsent data".
#[test]
fn cumulative_ack_after_retransmission_accepted_rfc6298_5_4() {
    let mut net = Net::new(fast(), Mode::Echo);
    let mut peer = Peer::v4(1050);
    peer.connect(&mut net);
    peer.window = 0;
    one(peer.tx(&mut net, ACK, &[b'a'; 1400]));
    one(peer.tx(&mut net, ACK, &[b'b'; 1400]));
    peer.window = 502;
    let flight = peer.tx(&mut net, ACK, b"");
    assert_eq!(flight.len(), 2, "{flight:#?}");
    let flight_end = peer.rcv_nxt + 2800;
    // The first segment is lost; the client keeps the second out of order. RTO: the first
    // segment again.
    let re = one(net.advance(1_000));
    assert_eq!(
        (re.seq, re.payload.len()),
        (flight[0].seq, flight[0].payload.len())
    );
    // The client now has everything and acknowledges all of it.
    peer.rcv_nxt = flight_end;
    // Accepted: the echo buffer is empty again, so the reply is a window update.
    let upd = one(peer.tx(&mut net, ACK, b""));
    upd.expect(ACK, flight_end, peer.snd_nxt);
    assert_eq!(upd.window, 4096);
    assert_eq!(net.dropped(DropReason::UnacceptableAck), 0);
    assert_eq!(net.event(Event::ChallengeAck), 0);
    let c = net.conn(&peer).unwrap();
    assert_eq!(c.snd_una.0, flight_end);
    assert!(!c.rto_armed(), "everything acknowledged");
    none(net.advance(10_000));
}

/// RFC 6298 §5.4 and RFC 9293 §3.10.7.4 (FIN-WAIT-1: "if the FIN segment is now
/// acknowledged, then enter FIN-WAIT-2"): when the data before our FIN is lost and
/// retransmitted, the ACK of that data does not acknowledge the FIN; the FIN is sent again.
#[test]
fn ack_of_retransmitted_data_does_not_ack_fin_rfc9293_3_10_7_4() {
    let mut net = Net::new(fast(), Mode::Http);
    let mut peer = Peer::v4(1051);
    peer.connect(&mut net);
    let out = peer.tx(
        &mut net,
        ACK | PSH,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(out.len(), 2);
    let (resp, fin) = (&out[0], &out[1]);
    fin.expect(
        ACK | FIN,
        resp.seq + resp.payload.len() as u32,
        peer.snd_nxt,
    );
    // The response is lost; the FIN arrives out of order: a duplicate ACK.
    none(peer.tx(&mut net, ACK, b""));
    // RTO: the response again; the client acknowledges it (but has no FIN yet).
    let re = one(net.advance(1_000));
    assert_eq!(re.payload, resp.payload);
    peer.absorb(std::slice::from_ref(&re));
    // That partial ACK (RFC 6582 §3.2) brings the FIN again at once.
    let again = one(peer.tx(&mut net, ACK, b""));
    again.expect(ACK | FIN, fin.seq, peer.snd_nxt);
    assert_eq!(
        net.state(&peer),
        Some(State::FinWait1),
        "the FIN is not acknowledged"
    );
    // Lost again: the timer resends it (2 s: still in recovery).
    none(net.advance(1_992));
    one(net.advance(8)).expect(ACK | FIN, fin.seq, peer.snd_nxt);
    peer.absorb(&[again]);
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), Some(State::FinWait2));
}

// ---- timer memory -------------------------------------------------------------------------

/// Connections that close normally leave nothing on the timer wheel: the idle timer is a
/// slab sweep, not a wheel entry, and a retransmission entry goes stale (and is dropped
/// when it comes due) once its connection is gone. Wheel memory follows live connections.
#[test]
fn closed_connections_leave_no_wheel_entries() {
    let mut net = Net::new(
        Params {
            idle_timeout_ms: 300_000,
            ..Params::default()
        },
        Mode::Discard,
    );
    for i in 0..500u16 {
        let mut peer = Peer::v4(20_000 + i);
        peer.connect(&mut net);
        let fin = one(peer.tx(&mut net, ACK | FIN, b""));
        fin.expect_flags(ACK | FIN);
        peer.absorb(&[fin]);
        none(peer.tx(&mut net, ACK, b""));
    }
    assert_eq!(net.core().active(), 0);
    assert!(net.core().sh.wheel.len() <= 500);
    net.advance(Params::default().rto_initial_ms as u64 + 100);
    assert_eq!(net.core().sh.wheel.len(), 0);
    net.assert_clean();
}

/// RFC 1122 §4.2.2.17: zero-window probing continues indefinitely while the receiver
/// answers the probes; only a silent peer is given up after `max_retries`.
#[test]
fn zero_window_probes_continue_while_answered_rfc1122_4_2_2_17() {
    let params = Params {
        rto_initial_ms: 200,
        rto_max_ms: 1_000,
        max_retries: 3,
        idle_timeout_ms: 0,
        ..Params::default()
    };
    let (mut net, mut peer) = close_wait(params.clone());
    let mut probes = 0;
    for _ in 0..400 {
        // 20 s of virtual time; the receiver answers every probe, window still closed.
        if !net.advance(50).is_empty() {
            probes += 1;
            let (seq, ack) = (peer.snd_nxt, peer.rcv_nxt);
            let opts = peer.opts(&net);
            peer.send(&mut net, ACK, seq, ack, b"", opts);
        }
        assert!(
            net.state(&peer).is_some(),
            "aborted after {probes} answered probes"
        );
    }
    assert!(probes > params.max_retries as usize * 3, "{probes} probes");
    // A silent peer: the probes run out and the connection is reset.
    let out = net.advance_by_steps(10_000, 50);
    assert!(out.iter().any(|s| s.flags.contains(RST)));
    assert!(net.state(&peer).is_none());
}

// ---- issue 10: segment size, limits on ACKs we owe, ACK and window acceptance ----------

/// Payload bytes of the data segments in `segs`, asserting each fits `max` and a
/// 1500-byte MTU (1514-byte Ethernet frame).
#[track_caller]
fn data_sizes(segs: &[Seg], max: usize) -> Vec<usize> {
    segs.iter()
        .filter(|s| !s.payload.is_empty())
        .map(|s| {
            assert!(
                s.payload.len() <= max,
                "segment over Eff.snd.MSS {max}: {s:?}"
            );
            assert!(
                s.frame_len <= 1514,
                "frame over the MTU: {} {s:?}",
                s.frame_len
            );
            s.payload.len()
        })
        .collect()
}

/// Echo 3 x 1,000 bytes sent back to back; returns the server's segments (not absorbed).
fn echo_three_thousand(net: &mut Net, peer: &mut Peer) -> Vec<Seg> {
    peer.connect(net);
    let mut out = Vec::new();
    for i in 0..3u8 {
        out.extend(peer.tx(net, ACK | PSH, &[b'a' + i; 1_000]));
    }
    out
}

/// RFC 9293 §3.7.1 and RFC 6691 §2: Eff.snd.MSS is the send MSS less our TCP options, so
/// with timestamps (12 bytes) a data segment carries at most 1448 bytes to a peer that said
/// MSS 1460, on the first send and on retransmission, where the retransmission from
/// SND.UNA coalesces what first went out as 1,000-byte segments (go-back-N). Every frame
/// fits a 1500-byte MTU.
#[test]
fn rfc9293_3_7_1_eff_snd_mss_subtracts_timestamps() {
    let mut net = Net::new(fast(), Mode::Echo);
    let mut peer = Peer::v4(43_000);
    let first = echo_three_thousand(&mut net, &mut peer);
    assert!(peer.ts);
    assert_eq!(data_sizes(&first, 1448), vec![1_000, 1_000, 1_000]);
    // Nothing acknowledged: the RTO retransmits from SND.UNA, at most 1448 bytes.
    let rto = net.advance(1_000);
    assert_eq!(data_sizes(&rto, 1448), vec![1448]);
    // Each partial ACK sends the next segment (RFC 6582 §3.2 step 5), all <= 1448.
    let mut got = rto[0].payload.clone();
    let mut out = rto;
    while got.len() < 3_000 {
        peer.absorb(&out);
        out = peer.tx(&mut net, ACK, b"");
        data_sizes(&out, 1448);
        got.extend(out.iter().flat_map(|s| s.payload.clone()));
    }
    let want: Vec<u8> = (0..3u8).flat_map(|i| [b'a' + i; 1_000]).collect();
    assert_eq!(got, want, "every byte, in order");
}

/// RFC 9293 §3.7.1: without timestamps no option is subtracted (1460); on IPv6 the MSS
/// the peer gives (1440) less the timestamps leaves 1428, and the frame still fits 1500.
#[test]
fn rfc9293_3_7_1_eff_snd_mss_without_options_and_ipv6() {
    for (peer, max) in [(Peer::v4(43_001).bare(), 1460), (Peer::v6(43_002), 1428)] {
        let mut peer = peer;
        if max == 1428 {
            peer.syn_options.mss = Some(1440);
        } else {
            peer.syn_options.mss = Some(1460);
        }
        let mut net = Net::new(fast(), Mode::Echo);
        peer.connect(&mut net);
        // The client's window is closed while it sends 3 x 1,000 bytes, then opens: the
        // server has 3,000 bytes to send at once.
        peer.window = 0;
        for _ in 0..3 {
            none(
                peer.tx(&mut net, ACK | PSH, &[b'x'; 1_000])
                    .into_iter()
                    .filter(|s| !s.payload.is_empty())
                    .collect(),
            );
        }
        peer.window = if peer.syn_options.window_scale.is_some() {
            502
        } else {
            u16::MAX
        };
        let out = peer.tx(&mut net, ACK, b"");
        let sizes = data_sizes(&out, max);
        assert_eq!(sizes.iter().sum::<usize>(), 3_000);
        assert_eq!(sizes[0], max, "full segments of Eff.snd.MSS");
    }
}

/// Linux `tcp_oow_rate_limited`: the ACK owed to an unacceptable segment (PAWS, out of
/// window) goes out at most once per 500 ms per connection, so two endpoints that disagree
/// cannot loop ACKs at line rate; skipped ACKs are counted. Data segments are always
/// answered ("Data packets without SYNs are not likely part of an ACK loop").
#[test]
fn tcp_oow_rate_limited_paws_and_out_of_window() {
    let (mut net, mut peer) = established(fast());
    let old_ts = TcpOptions {
        timestamps: Some((peer.tsval(&net).wrapping_sub(10_000), peer.ts_recent)),
        ..TcpOptions::default()
    };
    let (seq, ack) = (peer.snd_nxt, peer.rcv_nxt);
    // PAWS: a pure ACK with an old TSval, 100 times in a burst: one ACK.
    let mut acks = 0;
    for _ in 0..100 {
        acks += peer.send(&mut net, ACK, seq, ack, b"", old_ts).len();
    }
    assert_eq!(acks, 1);
    assert_eq!(net.dropped(DropReason::PawsRejected), 100);
    // Out of window, same 500 ms: none.
    let o = peer.opts(&net);
    none(peer.send(&mut net, ACK, seq.wrapping_add(1 << 30), ack, b"", o));
    assert_eq!(net.event(Event::AckRateLimited), 100);
    // Old data (a retransmission of what we have) is answered every time.
    for _ in 0..3 {
        let o = peer.opts(&net);
        one(peer.send(&mut net, ACK, seq.wrapping_sub(10), ack, b"old", o)).expect(
            ACK,
            peer.rcv_nxt,
            peer.snd_nxt,
        );
    }
    // 500 ms later one more pure-ACK answer may go.
    net.advance(500);
    let o = peer.opts(&net);
    one(peer.send(&mut net, ACK, seq.wrapping_add(1 << 30), ack, b"", o));
    assert_eq!(net.state(&peer), Some(State::Established));
}

/// Linux `tcp_timewait_check_oow_rate_limit`: in TIME-WAIT, a SYN that may not reopen the
/// tuple gets one ACK per 500 ms; a retransmitted FIN is always answered.
#[test]
fn tcp_oow_rate_limited_time_wait_stale_syn() {
    let (mut net, mut peer) = time_wait(fast());
    let old = TcpOptions {
        timestamps: Some((peer.tsval(&net).wrapping_sub(5_000), 0)),
        ..TcpOptions::default()
    };
    let mut acks = 0;
    for _ in 0..50 {
        acks += peer.send(&mut net, SYN, peer.iss, 0, b"", old).len();
    }
    assert_eq!(acks, 1);
    assert_eq!(net.event(Event::AckRateLimited), 49);
    let o = peer.opts(&net);
    let fin = peer.snd_nxt - 1;
    for _ in 0..2 {
        one(peer.send(&mut net, ACK | FIN, fin, peer.rcv_nxt, b"", o));
    }
    net.advance(500);
    one(peer.send(&mut net, SYN, peer.iss, 0, b"", old)).expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.state(&peer), Some(State::TimeWait));
}

/// Linux `tcp_timewait_state_process`: a SYN reopens TIME-WAIT when
/// `!paws_reject && (after(seq, rcv_nxt) || TSval newer)`: the same TSval with a higher
/// sequence number reopens; an older TSval never does, whatever the sequence number; a
/// newer TSval does even with a lower sequence number.
#[test]
fn tcp_timewait_state_process_syn_reopen_rule() {
    let ts = |net: &Net, peer: &Peer, d: i32| TcpOptions {
        timestamps: Some((peer.tsval(net).wrapping_add(d as u32), 0)),
        mss: Some(1460),
        ..TcpOptions::default()
    };
    // TS.Recent is the TSval of the client's last FIN; the clock stands still, so
    // `tsval(net)` equals it.
    let cases = [
        (0, 1_000, true),         // equal TSval, sequence beyond RCV.NXT
        (0, -1_000, false),       // equal TSval, sequence before RCV.NXT
        (-1, 1_000, false),       // PAWS: older TSval
        (1, -1_000, true),        // newer TSval
        (-100_000, 5_000, false), // PAWS again
    ];
    for (i, &(dts, dseq, reopens)) in cases.iter().enumerate() {
        let (mut net, mut peer) = time_wait(fast());
        let o = ts(&net, &peer, dts);
        let seq = peer.snd_nxt.wrapping_add(dseq as u32);
        let out = one(peer.send(&mut net, SYN, seq, 0, b"", o));
        if reopens {
            out.expect(SYN | ACK, out.seq, seq.wrapping_add(1));
            assert_eq!(net.event(Event::TimeWaitReused), 1, "case {i}");
        } else {
            out.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
            assert_eq!(net.state(&peer), Some(State::TimeWait), "case {i}");
        }
    }
}

/// RFC 5961 §5.2 with Linux `tcp_ack`'s clamp: an ACK below SND.UNA is acceptable only down
/// to SND.UNA - min(MAX.SND.WND, bytes acknowledged so far). On a fresh connection (nothing
/// of ours acknowledged) even SND.UNA - 1 is refused with a challenge ACK; once 100 bytes
/// were acknowledged, SND.UNA - 100 is an old ACK (ignored), SND.UNA - 101 is refused.
#[test]
fn rfc5961_5_2_old_ack_clamped_to_bytes_acked() {
    let mut net = Net::new(fast(), Mode::Echo);
    let mut peer = Peer::v4(43_010);
    peer.connect(&mut net);
    let o = peer.opts(&net);
    let una = peer.rcv_nxt;
    one(peer.send(&mut net, ACK, peer.snd_nxt, una - 1, b"", o)).expect(ACK, una, peer.snd_nxt);
    assert_eq!(net.dropped(DropReason::UnacceptableAck), 1);
    assert_eq!(net.event(Event::ChallengeAck), 1);
    // 100 bytes echoed and acknowledged.
    let out = peer.tx(&mut net, ACK | PSH, &[b'e'; 100]);
    peer.absorb(&out);
    none(peer.tx(&mut net, ACK, b""));
    let una = peer.rcv_nxt;
    assert_eq!(net.conn(&peer).unwrap().bytes_acked, 100);
    net.advance(500);
    let o = peer.opts(&net);
    none(peer.send(&mut net, ACK, peer.snd_nxt, una - 100, b"", o));
    assert_eq!(net.dropped(DropReason::UnacceptableAck), 1);
    one(peer.send(&mut net, ACK, peer.snd_nxt, una - 101, b"", o));
    assert_eq!(net.dropped(DropReason::UnacceptableAck), 2);
    assert_eq!(net.state(&peer), Some(State::Established));
}

/// RFC 9293 §3.10.7.4: "If the ACK is a duplicate (SEG.ACK < SND.UNA), it can be ignored"
/// and the window is updated only for "SND.UNA =< SEG.ACK =< SND.NXT": an old ACK with a
/// newer SEG.SEQ and a zero window leaves SND.WND alone, while its data is still taken.
#[test]
fn rfc9293_3_10_7_4_old_ack_never_updates_window() {
    let mut net = Net::new(fast(), Mode::Echo);
    let mut peer = Peer::v4(43_011);
    peer.connect(&mut net);
    let out = peer.tx(&mut net, ACK | PSH, &[b'e'; 100]);
    peer.absorb(&out);
    none(peer.tx(&mut net, ACK, b""));
    let wnd = net.conn(&peer).unwrap().snd_wnd;
    assert!(wnd > 0);
    peer.window = 0;
    let o = peer.opts(&net);
    let una = peer.rcv_nxt;
    let out = peer.send(&mut net, ACK | PSH, peer.snd_nxt, una - 50, b"more", o);
    peer.snd_nxt += 4;
    assert_eq!(
        net.conn(&peer).unwrap().snd_wnd,
        wnd,
        "old ACK moved SND.WND"
    );
    assert_eq!(net.conn(&peer).unwrap().snd_una.0, una);
    // The text was taken (and echoed within the unchanged window).
    assert_eq!(net.event(Event::RxBytes), 104);
    assert!(out.iter().any(|s| s.payload == b"more"), "{out:?}");
}

/// RFC 7323 §2.3 / RFC 9293 §3.10.7.4: the acceptance window is the window we advertise.
/// Without window scaling the field holds at most 65,535, so with `tcp.window = 262144` a
/// byte at RCV.NXT + 65,535 is outside the window (not an out-of-order segment we would take
/// as in the window); with scaling (shift 7) the window is all 262,144.
#[test]
fn rfc7323_2_3_acceptance_window_is_advertised() {
    for (wscale, wnd) in [(None, 65_535u32), (Some(7), 262_144)] {
        let mut net = Net::new(fast(), Mode::Discard);
        let mut peer = Peer::v4(43_020);
        peer.syn_options.window_scale = wscale;
        let (_, _) = peer.connect(&mut net);
        let out = one(peer.tx(&mut net, ACK | PSH, b"x"));
        let shift = if wscale.is_some() { 7 } else { 0 };
        assert_eq!((out.window as u32) << shift, wnd, "advertised window");
        let c = net.conn(&peer).unwrap();
        assert_eq!(c.rcv_wnd(&net.core().sh.params, &net.core().sh.pool), wnd);
        let o = peer.opts(&net);
        // Last byte inside the window: in the window (dropped as out of order).
        one(peer.send(&mut net, ACK, peer.snd_nxt + wnd - 1, peer.rcv_nxt, b"y", o));
        assert_eq!(net.dropped(DropReason::OutOfOrder), 1);
        assert_eq!(net.dropped(DropReason::OutOfWindow), 0);
        // First byte past it: out of the window.
        net.advance(500);
        let o = peer.opts(&net);
        peer.send(&mut net, ACK, peer.snd_nxt + wnd, peer.rcv_nxt, b"z", o);
        assert_eq!(net.dropped(DropReason::OutOfWindow), 1, "wscale {wscale:?}");
    }
}

/// RFC 5961 §4.2 with Linux `tcp_validate_incoming` (`if (th->syn) goto syn_challenge;`): a
/// SYN that fails PAWS still gets a challenge ACK, counted against the challenge limits.
#[test]
fn rfc5961_4_2_paws_failing_syn_gets_challenge_ack() {
    let (mut net, mut peer) = established(fast());
    let old_ts = TcpOptions {
        timestamps: Some((peer.tsval(&net).wrapping_sub(10_000), 0)),
        ..TcpOptions::default()
    };
    let a = one(peer.send(&mut net, SYN, peer.snd_nxt, 0, b"", old_ts));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.dropped(DropReason::PawsRejected), 1);
    assert_eq!(net.event(Event::ChallengeAck), 1);
    assert_eq!(net.state(&peer), Some(State::Established));
}
