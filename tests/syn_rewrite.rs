//! The in-place SYN → SYN-ACK rewrite (`engine::syn_rewrite`) against the general path
//! (`Core::on_segment`, `Tx`, `emit_frame`): for Linux-style SYNs (IPv4 and IPv6; with
//! MSS, SACK-permitted, timestamps and window scale; with some of them; bare) both write
//! the same bytes over the same received frame and count the same events, and the frames
//! the rewrite does not take (an 802.1Q tag, a tuple with state) still get their answer
//! from the general path. RFC 9293 §3.10.7.2 (LISTEN, SYN) and RFC 4987 §3.6 (cookies).

mod support;

use support::*;
use synack::counters::{DropReason, Event};
use synack::engine::Outcome;
use synack::tcp::responder::Mode;
use synack::tcp::Params;
use synack::wire::{TcpFrame, TcpOptions, TcpRepr};

/// Handle `frame` in a 0xa5-filled frame buffer (so a byte one path writes and the other
/// does not shows); returns the outcome and the whole buffer.
fn answer(net: &mut Net, frame: &[u8]) -> (Outcome, Vec<u8>) {
    let mut buf = vec![0xa5u8; FRAME];
    buf[..frame.len()].copy_from_slice(frame);
    let out = net.stack.handle(&net.clock, &mut buf, frame.len());
    (out, buf)
}

/// Two servers with the same secret and clock: `fast` rewrites SYNs in place, `general`
/// takes every SYN through the general path.
fn pair() -> (Net, Net) {
    let fast = Net::new(Params::default(), Mode::Discard);
    let general = Net::with_stack(config(Params::default(), Mode::Discard), |s| {
        s.rewrite_syn_in_place = false
    });
    assert!(
        fast.stack.rewrites_syn_in_place(),
        "the rewrite is on by default"
    );
    (fast, general)
}

/// The kit's Linux SYN options, TSval 0x12345678.
fn linux_options() -> TcpOptions {
    Preset::Linux.syn_options(0x1234_5678)
}

fn assert_same(fast: &mut Net, general: &mut Net, frame: &[u8], what: &str) -> Vec<u8> {
    let (a, fa) = answer(fast, frame);
    let (b, fb) = answer(general, frame);
    assert!(matches!(a, Outcome::Reply(_)), "{what}: {a:?}");
    assert_eq!(a, b, "{what}: outcome");
    assert!(fa == fb, "{what}: the two paths wrote different bytes");
    for e in [Event::SynReceived, Event::SynAckSent] {
        assert_eq!(fast.event(e), general.event(e), "{what}: {e:?}");
    }
    let Outcome::Reply(n) = a else { unreachable!() };
    fa[..n].to_vec()
}

#[test]
fn rfc9293_3_10_7_2_in_place_synack_is_byte_identical_for_linux_syns() {
    let (mut fast, mut general) = pair();
    let variants: [(&str, TcpOptions); 6] = [
        ("linux", linux_options()),
        ("bare", TcpOptions::default()),
        (
            "mss_only",
            TcpOptions {
                mss: Some(1400),
                ..TcpOptions::default()
            },
        ),
        (
            "ts_no_ws",
            TcpOptions {
                window_scale: None,
                ..linux_options()
            },
        ),
        (
            "sack_no_ts",
            TcpOptions {
                timestamps: None,
                ..linux_options()
            },
        ),
        (
            "ws_no_sack",
            TcpOptions {
                sack_permitted: false,
                ..linux_options()
            },
        ),
    ];
    let mut port = 40_000;
    for v6 in [false, true] {
        for (name, options) in variants {
            port += 1;
            let peer = if v6 { Peer::v6(port) } else { Peer::v4(port) };
            let frame = peer.frame(SYN, peer.iss, 0, &[], options);
            let what = format!("{name} v6={v6}");
            let reply = assert_same(&mut fast, &mut general, &frame, &what);
            let seg = parse_frame(&reply);
            assert_eq!(seg.flags, SYN | ACK, "{what}");
            assert_eq!(seg.ack, peer.iss.wrapping_add(1), "{what}");
        }
    }
    assert_eq!(
        fast.stack.synacks_in_place(),
        12,
        "every SYN was rewritten in place"
    );
    assert_eq!(general.stack.synacks_in_place(), 0);
    assert_eq!(fast.core().active(), 0, "a SYN created state");
    fast.assert_clean();
    general.assert_clean();
}

#[test]
fn vlan_tagged_syn_takes_the_general_path_with_the_same_answer() {
    let (mut fast, mut general) = pair();
    let peer = Peer::v4(40_100);
    let f = TcpFrame {
        src_mac: peer.mac,
        dst_mac: peer.server_mac,
        vlan: Some(7),
        src: peer.addr,
        dst: peer.server,
        ttl: 64,
        tcp: TcpRepr {
            src_port: peer.port,
            dst_port: peer.server_port,
            seq: synack::wire::SeqNumber(peer.iss),
            ack: synack::wire::SeqNumber(0),
            flags: SYN,
            window: Preset::Linux.syn_window(),
            options: linux_options(),
            payload: &[],
        },
    };
    let frame = f.to_vec().expect("frame");
    let reply = assert_same(&mut fast, &mut general, &frame, "vlan");
    assert_eq!(
        &reply[12..14],
        &[0x81, 0x00],
        "the reply keeps the 802.1Q tag"
    );
    assert_eq!(
        fast.stack.synacks_in_place(),
        0,
        "a tagged frame is not rewritten"
    );
}

/// RFC 5961 §4: a SYN on an ESTABLISHED connection gets a challenge ACK, not a cookie
/// SYN-ACK, with the rewrite on.
#[test]
fn rfc5961_4_syn_on_established_tuple_is_not_rewritten() {
    let (mut fast, _) = pair();
    let mut peer = Peer::v4(40_200);
    peer.connect(&mut fast);
    let before = fast.event(Event::SynAckSent);
    let frame = peer.frame(SYN, peer.iss, 0, &[], linux_options());
    let out = fast.inject(&frame);
    let seg = one(out);
    assert_eq!(seg.flags, ACK, "challenge ACK");
    assert_eq!(fast.event(Event::SynAckSent), before, "no cookie SYN-ACK");
    assert_eq!(
        fast.stack.synacks_in_place(),
        1,
        "only the handshake's SYN was rewritten"
    );
    assert_eq!(fast.dropped(DropReason::NotOurs), 0);
}
