//! The flood generator program (`src/bpf/flood.bpf.c`) through `BPF_PROG_TEST_RUN` (root):
//! without live frames on known input (no NIC), the frame it leaves is a valid SYN
//! (checksums verified by the crate's own checksum code) from a new source each run, the
//! packet bound holds and pacing drops the runs over the rate; with live frames on a veth
//! pair in namespaces, the reply counter on the peer counts every frame sent. All bounded in
//! packets and seconds.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::{require_root, Lab};
use synack::io::flood::{ifindex, FloodProgram, FloodSettings, ReplyCounter, TEMPLATE_LEN};
use synack::io::XdpMode;
use synack::lab::{flood_source, syn_frame, FLOOD_NET};
use synack::wire::{EthernetFrame, Ipv4Packet, Ipv4Repr, TcpFlags, TcpPacket, TcpRepr};

const XDP_DROP: u32 = 1;
const XDP_TX: u32 = 3;
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn template(src_mac: [u8; 6], dst_mac: [u8; 6], dst: Ipv4Addr) -> Vec<u8> {
    let mut buf = vec![0xa5u8; 128];
    let len = syn_frame(
        &mut buf,
        src_mac,
        dst_mac,
        Ipv4Addr::new(198, 19, 0, 1),
        dst,
        1024,
        80,
        1,
    );
    buf.truncate(len);
    assert_eq!(len, TEMPLATE_LEN);
    buf
}

fn settings(rate: Option<f64>, max_packets: u64) -> FloodSettings {
    FloodSettings {
        rate,
        burst: 1,
        max_packets,
        duration: Duration::from_secs(10),
        first_index: 0,
        seed: 0x1234_5678,
        net: FLOOD_NET,
    }
}

/// Parse a frame as the crate's receive path does, checksums verified: (source, port, ISN).
fn parse_syn(frame: &[u8]) -> (Ipv4Addr, u16, u32) {
    let eth = EthernetFrame::new_checked(frame).expect("ethernet");
    let ipp = Ipv4Packet::new_checked(eth.payload()).expect("ipv4");
    let ip = Ipv4Repr::parse(&ipp, true).expect("IPv4 header checksum verifies");
    let tp = TcpPacket::new_checked(ipp.payload()).expect("tcp");
    let tcp = TcpRepr::parse(&tp, &IpAddr::V4(ip.src), &IpAddr::V4(ip.dst), true)
        .expect("TCP checksum verifies");
    assert_eq!(ip.dst, SERVER);
    assert_eq!(tcp.flags, TcpFlags::SYN);
    assert_eq!(tcp.dst_port, 80);
    assert_eq!(tcp.options.mss, Some(1460));
    assert_eq!(tcp.options.window_scale, Some(7));
    assert!(tcp.options.sack_permitted);
    assert!(tcp.options.timestamps.is_some());
    (ip.src, tcp.src_port, tcp.seq.0)
}

/// Each run leaves a SYN whose IPv4 and TCP checksums verify, from a new source of
/// 198.19.0.0/16 (the lab's `flood_source` sequence) with a new ISN; the frame keeps the template's options (a Linux SYN, so
/// the server's cookies carry timestamps).
#[test]
fn flood_gen_writes_valid_syns_from_varying_sources() {
    if !require_root("flood_gen_writes_valid_syns_from_varying_sources") {
        return;
    }
    let mut prog = FloodProgram::load().expect("load the flood program");
    let frame = template([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], SERVER);
    prog.configure(&settings(None, 1000), &frame).unwrap();
    let mut seen = HashSet::new();
    let mut isns = HashSet::new();
    for i in 0..200u32 {
        let out = prog.test_run(&common::test_run_input(&frame, 0)).unwrap();
        assert_eq!(out.retval, XDP_TX, "run {i}");
        assert_eq!(out.frame.len(), TEMPLATE_LEN);
        let (src, port, isn) = parse_syn(&out.frame);
        assert_eq!(
            (src, port),
            flood_source(u64::from(i)),
            "run {i}: the lab's sources"
        );
        assert!(
            seen.insert((src, port)),
            "run {i}: source {src}:{port} repeated"
        );
        isns.insert(isn);
    }
    assert!(isns.len() > 190, "ISNs vary: {} distinct", isns.len());
    assert_eq!(prog.counts().unwrap().sent, 200);
}

/// Live frames recycle their pages, and on a veth the server's XDP_TX turns our SYN into
/// its SYN-ACK in the same page, which then comes back to the generator: every run must
/// write the whole template, so a page holding a SYN-ACK (addresses, ports and MACs
/// swapped, flags SYN|ACK) leaves as a SYN to the server again.
#[test]
fn flood_gen_rewrites_a_recycled_synack_page_into_the_template_syn() {
    if !require_root("flood_gen_rewrites_a_recycled_synack_page_into_the_template_syn") {
        return;
    }
    let mut prog = FloodProgram::load().expect("load the flood program");
    let frame = template([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], SERVER);
    prog.configure(&settings(None, 1000), &frame).unwrap();
    let mut recycled = frame.clone();
    recycled.copy_within(0..6, 6); // destination MAC over source: a reply's layout
    recycled[..6].copy_from_slice(&frame[6..12]);
    recycled.copy_within(26..30, 30); // IPv4 source over destination
    recycled[26..30].copy_from_slice(&[198, 19, 7, 7]);
    recycled[34 + 13] = 0x12; // SYN|ACK
    let out = prog
        .test_run(&common::test_run_input(&recycled, 0))
        .unwrap();
    assert_eq!(out.retval, XDP_TX);
    assert_eq!(&out.frame[..12], &frame[..12], "the template's MACs");
    let (src, port, _) = parse_syn(&out.frame); // a SYN to SERVER:80 with valid checksums
    assert_eq!((src, port), flood_source(0));
}

/// The packet bound: runs past `max_packets` are dropped and counted as bounded.
#[test]
fn flood_gen_stops_at_the_packet_bound() {
    if !require_root("flood_gen_stops_at_the_packet_bound") {
        return;
    }
    let mut prog = FloodProgram::load().unwrap();
    let frame = template([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], SERVER);
    prog.configure(&settings(None, 10), &frame).unwrap();
    let out = prog
        .test_run(&common::test_run_input(&frame, 1000))
        .unwrap();
    assert_eq!(out.retval, XDP_DROP, "the last run is past the bound");
    let c = prog.counts().unwrap();
    assert_eq!((c.sent, c.bounded, c.paced), (10, 990, 0));
}

/// Pacing: at 1000 frames/s with a burst of one frame, a call of 200,000 runs sends no more
/// than the schedule allows for the time the call took (plus the first frame); every other
/// run is dropped as over the rate.
#[test]
fn flood_gen_pacing_drops_runs_over_the_rate() {
    if !require_root("flood_gen_pacing_drops_runs_over_the_rate") {
        return;
    }
    let mut prog = FloodProgram::load().unwrap();
    let frame = template([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], SERVER);
    prog.configure(&settings(Some(1000.0), 1_000_000), &frame)
        .unwrap();
    let t = Instant::now();
    prog.test_run(&common::test_run_input(&frame, 200_000))
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let c = prog.counts().unwrap();
    let allowed = 2 + (secs * 1000.0).ceil() as u64;
    assert!(
        c.sent >= 1 && c.sent <= allowed,
        "sent {} in {secs:.3} s",
        c.sent
    );
    assert_eq!(c.sent + c.paced, 200_000, "{c:?}");
}

/// A frame that is not the template layout is dropped and counted, never sent.
#[test]
fn flood_gen_refuses_other_frames() {
    if !require_root("flood_gen_refuses_other_frames") {
        return;
    }
    let mut prog = FloodProgram::load().unwrap();
    let mut frame = template([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], SERVER);
    frame[12..14].copy_from_slice(&[0x86, 0xdd]); // not IPv4
    prog.configure(&settings(None, 10), &frame).unwrap();
    let out = prog.test_run(&common::test_run_input(&frame, 0)).unwrap();
    assert_eq!(out.retval, XDP_DROP);
    assert_eq!(prog.counts().unwrap().bad_frame, 1);
}

/// `tx_queue_0_xdp_xmit` and `tx_queue_0_xdp_xmit_errors` of a veth (`ethtool -S`): the
/// XDP frames its peer took, and those it refused (its ring was full).
fn veth_xmit(lab: &Lab, ns: &str, ifname: &str) -> (u64, u64) {
    let out = lab.ns_exec(ns, &["ethtool", "-S", ifname]);
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in ethtool -S {ifname}: {text}"))
    };
    (
        get("tx_queue_0_xdp_xmit:"),
        get("tx_queue_0_xdp_xmit_errors:"),
    )
}

/// Live frames on a veth pair: 20,000 SYNs at 50,000/s out of the client veth; the reply
/// counter on the server veth (native XDP, which also gives that veth the NAPI it needs to
/// take XDP_TX frames) counts every one the server veth took as a SYN of the flood prefix,
/// and the veth accounts for every frame sent (taken or refused for a full ring, which a
/// starved receiver on a busy machine may cause).
#[test]
fn flood_live_frames_arrive_at_the_peer() {
    if !require_root("flood_live_frames_arrive_at_the_peer") {
        return;
    }
    let lab = Lab::new("flood", 1);
    let server_if = lab.server_if.clone();
    let counter = lab.in_ns(&lab.server_ns, || {
        ReplyCounter::attach(
            &server_if,
            XdpMode::Native,
            Ipv4Addr::new(198, 19, 0, 0),
            16,
        )
        .expect("attach the counter on the server veth")
    });
    let frame = template(lab.client_mac, lab.server_mac, lab.server_v4);
    let client_if = lab.client_if.clone();
    let before = veth_xmit(&lab, &lab.client_ns, &lab.client_if);
    let outcome = lab.in_ns(&lab.client_ns, || {
        let mut prog = FloodProgram::load().unwrap();
        let stop = AtomicBool::new(false);
        let s = FloodSettings {
            rate: Some(50_000.0),
            burst: 16,
            max_packets: 20_000,
            duration: Duration::from_secs(5),
            first_index: 0,
            seed: 7,
            net: FLOOD_NET,
        };
        prog.run_live(&frame, ifindex(&client_if).unwrap(), &s, &stop)
            .expect("live flood")
    });
    assert_eq!(outcome.counts.sent, 20_000, "{outcome:?}");
    assert!(outcome.secs < 5.5, "{outcome:?}");
    let after = veth_xmit(&lab, &lab.client_ns, &lab.client_if);
    let (taken, refused) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(taken + refused, 20_000, "taken {taken} refused {refused}");
    assert!(taken > 0);
    // Frames still in the veth ring are counted within a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut c = counter.counts().unwrap();
    while c.syn < taken && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        c = counter.counts().unwrap();
    }
    assert_eq!(c.syn, taken, "{c:?} {outcome:?} refused {refused}");
    assert_eq!((c.synack, c.rst), (0, 0));
}

/// `synack gen --live-flood` end to end against the Linux kernel (tcp_syncookies=2, a
/// listener on port 80, the flood prefix routed back): 2,000 SYNs at 2,000/s without bursts
/// (a veth ring holds 256 frames, so a starved NAPI thread would refuse a burst), every one
/// answered with a SYN-ACK counted (and dropped) by the reply counter on the client veth;
/// the JSON report says so.
#[test]
fn gen_live_flood_against_the_kernel() {
    if !require_root("gen_live_flood_against_the_kernel") {
        return;
    }
    let lab = Lab::new("lflood", 1);
    let via = lab.client_v4.to_string();
    for args in [
        vec!["ip", "route", "add", "198.19.0.0/16", "via", &via],
        vec!["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"],
        // GRO gives the server veth the NAPI it needs to take XDP_TX frames.
        vec!["ethtool", "-K", &lab.server_if, "gro", "on"],
    ] {
        let out = lab.ns_exec(&lab.server_ns, &args);
        assert!(out.status.success(), "{args:?} failed");
    }
    let listener = lab.in_ns(&lab.server_ns, || {
        std::net::TcpListener::bind((lab.server_v4, 80)).expect("bind 80")
    });
    let json = std::env::temp_dir().join(format!("synack-lflood-{}.json", std::process::id()));
    let mac = synack::wire::format_mac(&lab.server_mac);
    let target = format!("{}:80", lab.server_v4);
    let mut cmd = std::process::Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &lab.client_ns,
        env!("CARGO_BIN_EXE_synack"),
        "gen",
    ])
    .args(["--interface", &lab.client_if, "--target", &target])
    .args(["--target-mac", &mac, "--live-flood", "--rate", "2000"])
    .args([
        "--burst",
        "1",
        "--packets",
        "2000",
        "--secs",
        "5",
        "--drain-ms",
        "500",
    ])
    .args(["--json", json.to_str().unwrap()]);
    let out = common::run_with_timeout(&mut cmd, Duration::from_secs(30)).expect("gen timed out");
    drop(listener);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    let text = std::fs::read_to_string(&json).expect("--json written");
    let _ = std::fs::remove_file(&json);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["mode"], "live-flood");
    assert_eq!(v["sent"].as_u64(), Some(2_000), "{v}");
    assert_eq!(v["replies"]["synack"].as_u64(), Some(2_000), "{v}");
    assert_eq!(v["replies"]["rst"].as_u64(), Some(0), "{v}");
    assert_eq!(v["answered_fraction"].as_f64(), Some(1.0), "{v}");
}
