//! The XDP SYN offload run through `BPF_PROG_TEST_RUN` (root, no NIC): the SYN-ACK the
//! program makes is byte for byte the one the userspace path (`engine::Stack` with the same
//! secret, counter and clock) makes; stateless ACKs are cookie-checked (valid: on to
//! userspace; forged: dropped and reset, rate-limited); the occupancy filter keeps SYNs of
//! tuples with state away from the offload; secret rotation keeps old cookies for one
//! period; 802.1ad frames go to the kernel. The build that never resizes frames (for
//! libxdp dispatcher slots) answers the SYNs whose SYN-ACK has their length and leaves the
//! rest to userspace.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use synack::app::syn_answers;
use synack::engine::{Outcome, Stack};
use synack::io::bpf::{clock_origin_ns, BpfCounters, Filter, SynOffload, XdpProgram};
use synack::table::occupancy::Occupancy;
use synack::table::{Core, CoreConfig};
use synack::tcp::cookie::{counter_from_unix_secs, CookieJar};
use synack::tcp::responder::Mode;
use synack::tcp::{Clock, Flow};
use synack::testkit::Preset;
use synack::wire::{EthernetFrame, SeqNumber, TcpFlags, TcpFrame, TcpOptions, TcpPacket, TcpRepr};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const OURS4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const OURS6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// Any fixed wall-clock second: the minute counter both paths use.
const UNIX_SECS: u64 = 1_800_000_000;

struct Setup {
    prog: XdpProgram,
    cfg: CoreConfig,
    jar: CookieJar,
    origin: Instant,
}

fn setup(rst_per_sec: u32) -> Setup {
    setup_build(rst_per_sec, XdpProgram::load_detached)
}

fn setup_build(rst_per_sec: u32, load: fn(&Filter) -> anyhow::Result<XdpProgram>) -> Setup {
    let cfg = CoreConfig {
        listeners: vec![(80, Mode::Discard), (81, Mode::Echo)],
        capacity: 1024,
        buffers: 16,
        ..CoreConfig::default()
    };
    let jar = CookieJar::new(*b"xdp offload test");
    let filter = Filter {
        ipv4: vec![OURS4],
        ipv6: vec![OURS6],
        ports: vec![80, 81],
        standalone: false,
    };
    let mut prog = load(&filter).expect("load the XDP program (root)");
    let origin = Instant::now();
    prog.set_syn_offload(&SynOffload {
        listeners: syn_answers(&cfg),
        clock_origin_ns: clock_origin_ns(origin),
        rst_per_sec,
    })
    .unwrap();
    prog.publish_cookies(
        jar.raw_keys(),
        None,
        counter_from_unix_secs(UNIX_SECS),
        false,
    )
    .unwrap();
    Setup {
        prog,
        cfg,
        jar,
        origin,
    }
}

#[derive(Clone, Copy)]
struct Syn {
    v6: bool,
    vlan: Option<u16>,
    port: u16,
    options: TcpOptions,
}

/// A SYN to port 80 without a VLAN tag.
fn syn_to_80(v6: bool, options: TcpOptions) -> Syn {
    Syn {
        v6,
        vlan: None,
        port: 80,
        options,
    }
}

fn addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (PEER6.into(), OURS6.into())
    } else {
        (PEER4.into(), OURS4.into())
    }
}

fn segment(
    v6: bool,
    vlan: Option<u16>,
    port: u16,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    options: TcpOptions,
) -> Vec<u8> {
    segment_from(40000, v6, vlan, port, flags, seq, ack, options)
}

/// [`segment`] from client port `src_port`.
#[allow(clippy::too_many_arguments)]
fn segment_from(
    src_port: u16,
    v6: bool,
    vlan: Option<u16>,
    port: u16,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    options: TcpOptions,
) -> Vec<u8> {
    let (src, dst) = addrs(v6);
    TcpFrame {
        src_mac: CLIENT_MAC,
        dst_mac: OUR_MAC,
        vlan,
        src,
        dst,
        ttl: 64,
        tcp: TcpRepr {
            src_port,
            dst_port: port,
            seq: SeqNumber(seq),
            ack: SeqNumber(ack),
            flags,
            window: 64240,
            options,
            payload: &[],
        },
    }
    .to_vec()
    .unwrap()
}

fn syn_frame(s: &Syn) -> Vec<u8> {
    segment(
        s.v6,
        s.vlan,
        s.port,
        TcpFlags::SYN,
        0x1234_5678,
        0,
        s.options,
    )
}

/// The kit's Linux SYN options, TSval 0x01020304.
fn linux_options() -> TcpOptions {
    Preset::Linux.syn_options(0x0102_0304)
}

/// What the userspace path sends for `frame` at `ms`.
fn userspace_reply(s: &Setup, frame: &[u8], ms: u64) -> Option<Vec<u8>> {
    userspace_reply_at(s, frame, ms, UNIX_SECS)
}

/// What the userspace path sends for `frame` at `ms` and wall-clock second `unix_secs`.
fn userspace_reply_at(s: &Setup, frame: &[u8], ms: u64, unix_secs: u64) -> Option<Vec<u8>> {
    let clock = Clock { ms, unix_secs };
    let core = Core::new(&s.cfg, s.jar.clone(), &clock);
    let mut stack = Stack::new(core, &[OURS4.into(), OURS6.into()]);
    let mut buf = frame.to_vec();
    buf.resize(2048, 0);
    match stack.handle(&clock, &mut buf, frame.len()) {
        Outcome::Reply(n) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

fn run(prog: &mut XdpProgram, frame: &[u8]) -> (u32, Vec<u8>) {
    let out = prog.test_run(&common::test_run_input(frame, 0)).unwrap();
    (out.retval, out.frame)
}

/// Run the program on a SYN and find the userspace clock reading (within the run's time
/// bracket) for which userspace sends the same bytes.
fn assert_same_synack(s: &mut Setup, syn: &Syn) -> Vec<u8> {
    let frame = syn_frame(syn);
    let before = s.origin.elapsed().as_millis() as u64;
    let (verdict, out) = run(&mut s.prog, &frame);
    let after = s.origin.elapsed().as_millis() as u64;
    assert_eq!(verdict, XDP_TX, "SYN answered in XDP");
    let candidates: Vec<Vec<u8>> = (before.saturating_sub(1)..=after)
        .filter_map(|ms| userspace_reply(s, &frame, ms))
        .collect();
    assert!(
        candidates.contains(&out),
        "XDP SYN-ACK {out:02x?}\ndiffers from every userspace SYN-ACK in [{before}, {after}] ms, e.g. {:02x?}",
        candidates.first()
    );
    out
}

fn counters(prog: &XdpProgram) -> BpfCounters {
    prog.counters().unwrap()
}

/// RFC 9293 §3.10.7.2 (LISTEN, SYN) with Linux's cookie layout: for IPv4 and IPv6, with
/// and without an 802.1Q tag, with Linux's options, without timestamps, with timestamps but
/// no window scale or SACK, and with no options at all, for a non-buffered (discard) and a
/// buffered (echo) listener, the XDP SYN-ACK is the userspace one, byte for byte.
#[test]
fn rfc9293_3_10_7_2_xdp_synack_is_the_userspace_synack() {
    if !common::require_root("rfc9293_3_10_7_2_xdp_synack_is_the_userspace_synack") {
        return;
    }
    let mut s = setup(1000);
    let variants = [
        linux_options(),
        TcpOptions {
            timestamps: None,
            ..linux_options()
        },
        TcpOptions {
            window_scale: None,
            sack_permitted: false,
            ..linux_options()
        },
        TcpOptions {
            mss: Some(1300),
            window_scale: Some(14),
            ..linux_options()
        },
        TcpOptions::default(),
    ];
    let mut answered = 0;
    for v6 in [false, true] {
        for vlan in [None, Some(0x2005)] {
            for port in [80, 81] {
                for options in variants {
                    let syn = Syn {
                        v6,
                        vlan,
                        port,
                        options,
                    };
                    let out = assert_same_synack(&mut s, &syn);
                    let eth = EthernetFrame::new_checked(&out[..]).unwrap();
                    assert_eq!(eth.vlan(), vlan);
                    answered += 1;
                }
            }
        }
    }
    assert_eq!(counters(&s.prog).syn_acks_sent, answered);
    assert_eq!(counters(&s.prog).redirected, 0);
}

/// A Linux-style SYN to port 80 answered in XDP (checked byte for byte against the
/// userspace SYN-ACK): the cookie (our ISS) and the options of the client's next segments
/// (timestamps echoing our TSval).
fn linux_syn_answered(s: &mut Setup, v6: bool) -> (u32, TcpOptions) {
    let syn = syn_to_80(v6, linux_options());
    let synack = assert_same_synack(s, &syn);
    let (iss, tsval) = synack_fields(&synack);
    let opts = TcpOptions {
        timestamps: Some((0x0102_0305, tsval)),
        ..TcpOptions::default()
    };
    (iss, opts)
}

/// The SYN-ACK's cookie comes back in the ACK: the program lets a valid one through to
/// userspace (XDP_PASS here, no AF_XDP socket), and drops a forged one with the RFC 9293
/// §3.10.7.2 reset `<SEQ=SEG.ACK><CTL=RST>`.
#[test]
fn rfc9293_3_10_7_2_xdp_checks_cookie_acks_and_resets_forged_ones() {
    if !common::require_root("rfc9293_3_10_7_2_xdp_checks_cookie_acks_and_resets_forged_ones") {
        return;
    }
    let mut s = setup(1000);
    for v6 in [false, true] {
        let (iss, ack_opts) = linux_syn_answered(&mut s, v6);
        let good = segment(
            v6,
            None,
            80,
            TcpFlags::ACK,
            0x1234_5679,
            iss.wrapping_add(1),
            ack_opts,
        );
        // The forged ACK first: once the good one has passed, segments of this tuple go to
        // userspace for about a second (see the followers test below).
        let forged_ack = iss.wrapping_add(0x0100_0000);
        let bad = segment(
            v6,
            None,
            80,
            TcpFlags::ACK,
            0x1234_5679,
            forged_ack,
            ack_opts,
        );
        let c1 = counters(&s.prog);
        let (verdict, rst) = run(&mut s.prog, &bad);
        assert_eq!(verdict, XDP_TX);
        let (src, dst) = addrs(v6);
        let expected = TcpFrame {
            src_mac: OUR_MAC,
            dst_mac: CLIENT_MAC,
            vlan: None,
            src: dst,
            dst: src,
            ttl: 64,
            tcp: TcpRepr {
                src_port: 80,
                dst_port: 40000,
                seq: SeqNumber(forged_ack),
                ack: SeqNumber(0),
                flags: TcpFlags::RST,
                window: 0,
                options: TcpOptions::default(),
                payload: &[],
            },
        }
        .to_vec()
        .unwrap();
        assert_eq!(rst, expected, "v6={v6}: the reset");
        let c2 = counters(&s.prog);
        assert_eq!(c2.acks_dropped - c1.acks_dropped, 1);
        assert_eq!(c2.rsts_sent - c1.rsts_sent, 1);

        assert_eq!(run(&mut s.prog, &good), (XDP_PASS, good.clone()));
        let c3 = counters(&s.prog);
        assert_eq!(c3.cookie_acks_to_userspace - c2.cookie_acks_to_userspace, 1);
    }
}

/// A client's data and FIN right after its handshake ACK can reach XDP before the worker
/// has made the connection (and marked the occupancy filter). Their sequence number has
/// moved past ISN + 1, so they cannot verify as a cookie; for about a second after a valid
/// cookie ACK of the same tuple they go to userspace, where the connection is (RFC 9293
/// §3.10.7.4), instead of being reset as forged. Another tuple's FIN is still reset.
#[test]
fn rfc9293_3_10_7_4_segments_right_after_a_cookie_ack_go_to_userspace() {
    if !common::require_root("rfc9293_3_10_7_4_segments_right_after_a_cookie_ack_go_to_userspace") {
        return;
    }
    let mut s = setup(1000);
    for v6 in [false, true] {
        let (iss, opts) = linux_syn_answered(&mut s, v6);
        let ack = iss.wrapping_add(1);
        let seg =
            |src_port, flags, seq| segment_from(src_port, v6, None, 80, flags, seq, ack, opts);
        let c0 = counters(&s.prog);
        let good = seg(40000, TcpFlags::ACK, 0x1234_5679);
        assert_eq!(run(&mut s.prog, &good).0, XDP_PASS);
        // What a client sends after 17 bytes of data: its FIN, seq ISN + 18.
        let fin = seg(40000, TcpFlags::FIN | TcpFlags::ACK, 0x1234_5679 + 17);
        assert_eq!(run(&mut s.prog, &fin).0, XDP_PASS, "v6={v6}: the follower");
        let c1 = counters(&s.prog);
        assert_eq!(c1.cookie_acks_to_userspace - c0.cookie_acks_to_userspace, 1);
        assert_eq!(
            c1.cookie_followers_to_userspace - c0.cookie_followers_to_userspace,
            1
        );
        assert_eq!(c1.acks_dropped, c0.acks_dropped);
        // The same FIN from a tuple that never had a valid cookie ACK: forged, reset.
        let other = seg(40001, TcpFlags::FIN | TcpFlags::ACK, 0x1234_5679 + 17);
        assert_eq!(run(&mut s.prog, &other).0, XDP_TX, "v6={v6}: another tuple");
        let c2 = counters(&s.prog);
        assert_eq!(c2.acks_dropped - c1.acks_dropped, 1);
        assert_eq!(
            c2.cookie_followers_to_userspace,
            c1.cookie_followers_to_userspace
        );
    }
}

/// The SYN-ACK's ISN (the cookie) and TSval.
fn synack_fields(frame: &[u8]) -> (u32, u32) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let l4 = if eth.ethertype() == synack::wire::EtherType::IPV6 {
        eth.header_len() + 40
    } else {
        eth.header_len() + 20
    };
    let tcp = TcpPacket::new_checked(&frame[l4..]).unwrap();
    let opts = TcpOptions::parse(tcp.options()).unwrap();
    (tcp.seq_number().0, opts.timestamps.map_or(0, |t| t.0))
}

/// A forged-ACK flood (10,000 ACKs with wrong cookies): nothing reaches userspace, every
/// one is dropped, and resets stop at the per-CPU rate (a burst of one second's worth).
/// One test run per ACK: with `repeat`, the kernel would run the program again on the
/// frame the previous run left (our reset), not on the ACK.
#[test]
fn forged_ack_flood_is_dropped_in_xdp_and_resets_are_rate_limited() {
    if !common::require_root("forged_ack_flood_is_dropped_in_xdp_and_resets_are_rate_limited") {
        return;
    }
    let mut s = setup(100);
    let bad = segment(
        false,
        None,
        80,
        TcpFlags::ACK,
        1,
        0xdead_beef,
        TcpOptions::default(),
    );
    let c0 = counters(&s.prog);
    let t0 = Instant::now();
    let mut verdicts = [0u32; 5];
    for _ in 0..10_000 {
        verdicts[run(&mut s.prog, &bad).0 as usize] += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    let c1 = counters(&s.prog);
    assert_eq!(
        verdicts[XDP_DROP as usize] + verdicts[XDP_TX as usize],
        10_000,
        "every one dropped or reset: {verdicts:?}"
    );
    assert_eq!(
        u64::from(verdicts[XDP_TX as usize]),
        c1.rsts_sent - c0.rsts_sent
    );
    assert_eq!(c1.acks_dropped - c0.acks_dropped, 10_000);
    assert_eq!(c1.redirected, c0.redirected, "nothing for userspace");
    let sent = c1.rsts_sent - c0.rsts_sent;
    assert_eq!(sent + (c1.rsts_rate_limited - c0.rsts_rate_limited), 10_000);
    assert!(sent >= 100, "the burst is sent ({sent})");
    assert!(
        sent as f64 <= 100.0 + 100.0 * secs + 1.0,
        "{sent} resets in {secs:.3} s at 100/s"
    );
}

/// With a connection's tuple in the occupancy filter, its SYN goes to userspace (which
/// answers a SYN in a synchronized state with a challenge ACK, RFC 5961 §4); after the
/// connection is removed, the program answers again. The program finds the tuple in the
/// cell `table::occupancy` computes, so the C and Rust hashes agree (checked on 64 tuples).
#[test]
fn occupied_tuples_go_to_userspace_and_the_c_and_rust_hashes_agree() {
    if !common::require_root("occupied_tuples_go_to_userspace_and_the_c_and_rust_hashes_agree") {
        return;
    }
    let mut s = setup(1000);
    let (cells, key) = s.prog.occupancy().unwrap();
    let occ = Occupancy::new(Arc::new(cells), key).unwrap();
    for i in 0..64u16 {
        let v6 = i % 2 == 1;
        let port = 40000 + i;
        let frame = syn_from_port(port, v6);
        let flow = if v6 {
            Flow::V6 {
                local: OURS6,
                remote: PEER6,
                local_port: 80,
                remote_port: port,
            }
        } else {
            Flow::V4 {
                local: OURS4,
                remote: PEER4,
                local_port: 80,
                remote_port: port,
            }
        };
        occ.add(&flow);
        let c0 = counters(&s.prog);
        assert_eq!(run(&mut s.prog, &frame), (XDP_PASS, frame.clone()), "i={i}");
        let c1 = counters(&s.prog);
        assert_eq!(c1.syns_to_userspace - c0.syns_to_userspace, 1);
        occ.remove(&flow);
        assert_eq!(run(&mut s.prog, &frame).0, XDP_TX, "i={i}");
    }
}

/// A Linux-style SYN to port 80 from client port `port`.
fn syn_from_port(port: u16, v6: bool) -> Vec<u8> {
    let options = linux_options();
    segment_from(port, v6, None, 80, TcpFlags::SYN, 0x1234_5678, 0, options)
}

/// Secret rotation (SIGHUP with a new `tcp.cookie_secret`): a cookie made before it is
/// accepted with the previous key published, in its own minute and the next; two minutes
/// on, or once the previous key is forgotten, it is refused (Linux MAX_SYNCOOKIE_AGE).
#[test]
fn secret_rotation_keeps_old_cookies_for_one_period() {
    if !common::require_root("secret_rotation_keeps_old_cookies_for_one_period") {
        return;
    }
    let mut s = setup(1000);
    let counter = counter_from_unix_secs(UNIX_SECS);
    let syn = syn_to_80(false, TcpOptions::default());
    let synack = assert_same_synack(&mut s, &syn);
    let (iss, _) = synack_fields(&synack);
    let ack = segment(
        false,
        None,
        80,
        TcpFlags::ACK,
        0x1234_5679,
        iss.wrapping_add(1),
        TcpOptions::default(),
    );
    let old = s.jar.raw_keys();
    let mut rotated = s.jar.clone();
    rotated.rotate(*b"the next secret!");
    assert_eq!(rotated.previous_raw_keys(), Some(old));
    let new = rotated.raw_keys();
    // The refusals first: once the ACK has verified, the same tuple's segments go to
    // userspace for about a second anyway (`cookie_followers_to_userspace`).
    for (previous, c, verdict) in [
        (Some(old), counter + 2, XDP_TX),
        (None, counter, XDP_TX),
        (Some(old), counter, XDP_PASS),
        (Some(old), counter + 1, XDP_PASS),
    ] {
        s.prog.publish_cookies(new, previous, c, false).unwrap();
        let before = counters(&s.prog).cookie_acks_to_userspace;
        assert_eq!(
            run(&mut s.prog, &ack).0,
            verdict,
            "previous key {}, counter +{}",
            previous.is_some(),
            c - counter
        );
        let verified = counters(&s.prog).cookie_acks_to_userspace - before;
        assert_eq!(
            verified,
            u64::from(verdict == XDP_PASS),
            "the cookie itself verified"
        );
    }
}

/// Issue 10 item 13: an 802.1ad S-tag (with its C-tag), or two 802.1Q tags, is refused by
/// `wire::ethernet`, and the program passes such frames to the kernel instead of
/// redirecting or answering them.
#[test]
fn ieee_802_1ad_frames_go_to_the_kernel_as_wire_ethernet_refuses_them() {
    if !common::require_root("ieee_802_1ad_frames_go_to_the_kernel_as_wire_ethernet_refuses_them") {
        return;
    }
    let mut s = setup(1000);
    let tagged = syn_frame(&Syn {
        vlan: Some(5),
        ..syn_to_80(false, linux_options())
    });
    for (outer, inner) in [(0x88a8u16, 0x8100u16), (0x8100, 0x8100), (0x8100, 0x88a8)] {
        // dst, src, outer TPID + TCI, inner TPID + TCI, then the tagged frame's rest.
        let mut f = tagged[..12].to_vec();
        f.extend_from_slice(&outer.to_be_bytes());
        f.extend_from_slice(&[0, 7]);
        f.extend_from_slice(&inner.to_be_bytes());
        f.extend_from_slice(&tagged[14..]);
        assert!(
            EthernetFrame::new_checked(&f[..]).is_err(),
            "userspace refuses it"
        );
        let c0 = counters(&s.prog);
        assert_eq!(run(&mut s.prog, &f), (XDP_PASS, f.clone()));
        let c1 = counters(&s.prog);
        assert_eq!(c1.vlan_passed - c0.vlan_passed, 1);
        assert_eq!(c1.redirected, c0.redirected);
        assert_eq!(c1.redirect_failed, c0.redirect_failed);
    }
}

/// With the offload off, the program steers SYNs to userspace as before.
#[test]
fn offload_off_sends_syns_to_userspace() {
    if !common::require_root("offload_off_sends_syns_to_userspace") {
        return;
    }
    let mut s = setup(1000);
    s.prog.disable_syn_offload().unwrap();
    assert!(!s.prog.syn_offload_enabled());
    let frame = syn_frame(&syn_to_80(false, linux_options()));
    let c0 = counters(&s.prog);
    assert_eq!(run(&mut s.prog, &frame), (XDP_PASS, frame.clone()));
    let c1 = counters(&s.prog);
    assert_eq!(c1.syns_to_userspace - c0.syns_to_userspace, 1);
    assert_eq!(c1.syn_acks_sent, c0.syn_acks_sent);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Following the clock (as `synack run` publishes it), the program computes the minute
/// counter itself from CLOCK_TAI and the published offset: its cookie is the one userspace
/// makes from the wall clock (CLOCK_REALTIME) at that moment, whatever counter value was
/// published last.
#[test]
fn xdp_minute_counter_follows_the_wall_clock() {
    if !common::require_root("xdp_minute_counter_follows_the_wall_clock") {
        return;
    }
    let mut s = setup(1000);
    s.prog
        .publish_cookies(s.jar.raw_keys(), None, 0, true)
        .unwrap();
    let frame = syn_frame(&syn_to_80(false, TcpOptions::default()));
    let secs_before = unix_now();
    let (verdict, out) = run(&mut s.prog, &frame);
    let secs_after = unix_now();
    assert_eq!(verdict, XDP_TX);
    let matches = (secs_before..=secs_after)
        .any(|secs| userspace_reply_at(&s, &frame, 0, secs).as_deref() == Some(&out[..]));
    assert!(matches, "the XDP cookie is the wall clock's");
    assert!(
        userspace_reply_at(&s, &frame, 0, 0).as_deref() != Some(&out[..]),
        "not the published counter 0"
    );
}

/// The fixed-length build (`XdpProgram::load_detached_fixed_length`, attached to libxdp
/// dispatcher slots that must not change packet data): a Linux client's SYN (20 option
/// bytes, as many as the SYN-ACK's) is answered in XDP with the userspace SYN-ACK; the same
/// SYN in a longer frame (Ethernet padding) goes to userspace; a forged ACK whose reset is
/// shorter (a 66-byte frame, a 60-byte reset) is dropped without the reset.
#[test]
fn rfc9293_3_10_7_2_fixed_length_build_answers_only_same_length_syns() {
    if !common::require_root("rfc9293_3_10_7_2_fixed_length_build_answers_only_same_length_syns") {
        return;
    }
    let mut s = setup_build(1000, XdpProgram::load_detached_fixed_length);
    let linux = syn_to_80(false, linux_options());
    let synack = assert_same_synack(&mut s, &linux);
    assert_eq!(synack.len(), syn_frame(&linux).len());

    // The same SYN with 6 bytes of Ethernet padding after the IP datagram: its SYN-ACK
    // would be 6 bytes shorter than the frame.
    let mut padded = syn_frame(&linux);
    padded.extend_from_slice(&[0; 6]);
    let c0 = counters(&s.prog);
    assert_eq!(run(&mut s.prog, &padded), (XDP_PASS, padded.clone()));
    let c1 = counters(&s.prog);
    assert_eq!(c1.syns_to_userspace - c0.syns_to_userspace, 1);
    assert_eq!(c1.syn_acks_sent, c0.syn_acks_sent);

    let (iss, tsval) = synack_fields(&synack);
    let forged = segment(
        false,
        None,
        80,
        TcpFlags::ACK,
        0x1234_5679,
        iss.wrapping_add(0x0100_0000),
        TcpOptions {
            timestamps: Some((0x0102_0305, tsval)),
            ..TcpOptions::default()
        },
    );
    assert_eq!(run(&mut s.prog, &forged).0, XDP_DROP);
    let c2 = counters(&s.prog);
    assert_eq!(c2.acks_dropped - c1.acks_dropped, 1);
    assert_eq!(c2.rsts_sent, c1.rsts_sent);
}
