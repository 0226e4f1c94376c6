//! `synack gen`'s client state machine and poll loop against synack's own server
//! (`engine::Worker` over a `MemoryPort`), in memory with a virtual clock: frames move
//! between the two ports, so every segment goes through both parsers and emitters.

use std::net::{IpAddr, Ipv4Addr};

use synack::engine::{Stack, Worker};
use synack::gen::driver::Pace;
use synack::gen::{Client, ClientConfig, CloseOrder, Driver, GenStats, Hold, SourceRange};
use synack::io::memory::MemoryPort;
use synack::table::{Core, CoreConfig, L2Path};
use synack::tcp::cookie::CookieJar;
use synack::tcp::responder::Mode;
use synack::tcp::Clock;
use synack::wire::{EthernetFrame, Ipv4Packet, TcpFlags, TcpPacket};

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];
/// Step of the virtual clock, µs.
const STEP_US: u64 = 50;

/// Decides, per client frame (its index and bytes), whether the link loses it.
type LossFn = Box<dyn FnMut(u64, &[u8]) -> bool>;

/// A link between the generator and a synack worker. `drop_to_server` decides, per
/// client frame (with its index), whether the link loses it.
struct Sim {
    gen: Driver<MemoryPort>,
    srv: Worker<MemoryPort>,
    now_us: u64,
    sent_to_server: u64,
    drop_to_server: LossFn,
    /// Server frames seen by the client, as (flags) of TCP segments.
    server_flags: Vec<TcpFlags>,
}

fn clock(now_us: u64) -> Clock {
    Clock {
        ms: now_us / 1000,
        unix_secs: 1_800_000_000 + now_us / 1_000_000,
    }
}

fn tcp_flags(frame: &[u8]) -> Option<TcpFlags> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(tcp.flags())
}

impl Sim {
    fn new(cfg: ClientConfig, pace: Pace) -> Sim {
        let core_cfg = CoreConfig {
            listeners: vec![
                (9, Mode::Discard),
                (7, Mode::Echo),
                (80, Mode::Http),
                (13, Mode::Close),
            ],
            ..CoreConfig::default()
        };
        let core = Core::new(&core_cfg, CookieJar::new(*b"gen-memory-test!"), &clock(0));
        let stack = Stack::new(core, &[IpAddr::V4(SERVER)]);
        let srv = Worker::new(stack, MemoryPort::new(8192, 2048, 8192), 64);
        let l2 = L2Path {
            local_mac: CLIENT_MAC,
            remote_mac: SERVER_MAC,
            vlan: None,
        };
        let gen = Driver::new(
            Client::new(cfg),
            MemoryPort::new(8192, 2048, 8192),
            l2,
            pace,
        );
        Sim {
            gen,
            srv,
            now_us: 0,
            sent_to_server: 0,
            drop_to_server: Box::new(|_, _| false),
            server_flags: Vec::new(),
        }
    }

    /// One step: generator poll, frames to the server, server poll, frames back.
    fn step(&mut self, open: bool) {
        self.gen.poll(self.now_us, open);
        let mut to_server = Vec::new();
        self.gen.port.for_each_sent(|f| to_server.push(f.to_vec()));
        for f in to_server {
            let i = self.sent_to_server;
            self.sent_to_server += 1;
            if !(self.drop_to_server)(i, &f) {
                assert!(self.srv.port.inject(&f), "server port full");
            }
        }
        self.srv.poll(&clock(self.now_us));
        let mut to_client = Vec::new();
        self.srv.port.for_each_sent(|f| to_client.push(f.to_vec()));
        for f in to_client {
            if let Some(fl) = tcp_flags(&f) {
                self.server_flags.push(fl);
            }
            assert!(self.gen.port.inject(&f), "generator port full");
        }
        self.now_us += STEP_US;
    }

    /// Run until everything is started and finished, or `limit_us` of virtual time.
    fn run(&mut self, limit_us: u64) -> GenStats {
        while self.now_us < limit_us {
            let open = !self.gen.all_started();
            self.step(open);
            if !open && self.gen.idle() {
                break;
            }
        }
        // A few more steps so the server sees our last ACKs.
        for _ in 0..4 {
            self.step(false);
        }
        self.gen.client.stats().clone()
    }
}

fn config(port: u16, n_addrs: u8) -> ClientConfig {
    let sources =
        SourceRange::parse(&format!("198.19.0.1-198.19.0.{n_addrs}"), "1024-65535").unwrap();
    ClientConfig::new(IpAddr::V4(SERVER), port, sources)
}

fn pace(count: u64) -> Pace {
    Pace {
        rate: None,
        count,
        max_in_flight: 512,
        batch: 32,
    }
}

fn assert_clean(s: &GenStats, n: u64) {
    assert_eq!(s.attempted, n, "{s:?}");
    assert_eq!(s.completed, n, "{s:?}");
    assert_eq!(s.failed(), 0, "{s:?}");
    assert_eq!(s.syn_retransmits, 0, "{s:?}");
    assert_eq!(s.drops.iter().sum::<u64>(), 0, "{s:?}");
}

/// `n` connections (paced as [`pace`]) that each send `request` and read `expect_bytes` of
/// the reply, run for 5 s of virtual time: every one completes cleanly ([`assert_clean`])
/// and was answered. Returns the simulation for the test's own checks.
#[track_caller]
fn all_answered(mut cfg: ClientConfig, request: &[u8], expect_bytes: u32, n: u64) -> Sim {
    cfg.request = Some(request.to_vec());
    cfg.expect_bytes = expect_bytes;
    let mut sim = Sim::new(cfg, pace(n));
    let s = sim.run(5_000_000);
    assert_clean(&s, n);
    assert_eq!(s.replies, n);
    sim
}

/// RFC 9293 §3.10.7.3 and §3.10.7.4 (FIN-WAIT-1/2): N connections complete against the
/// discard listener with the client closing first; the server's table ends empty.
#[test]
fn connect_client_first_against_discard() {
    let mut sim = Sim::new(config(9, 6), pace(2000));
    let s = sim.run(5_000_000);
    assert_clean(&s, 2000);
    assert_eq!(s.established, 2000);
    assert_eq!(s.synack_received, 2000);
    assert_eq!(
        sim.srv.stack.core.active(),
        0,
        "server still holds connections"
    );
    let c = sim.srv.stack.counters();
    assert_eq!(c.get(synack::counters::Event::Established), 2000);
    assert_eq!(sim.gen.client.in_flight(), 0);
    let h = sim.gen.client.handshake_histogram();
    assert_eq!(h.len(), 2000);
    // Each hop costs one step of the virtual clock: the first SYN-ACK comes one step later;
    // later ones wait behind the batches queued at the server (64 frames per poll).
    assert_eq!(h.min(), STEP_US, "handshake min");
    assert!(h.max() < 5_000, "handshake max {} us", h.max());
}

/// Echo (RFC 862): the request comes back, the client closes first.
#[test]
fn request_against_echo() {
    let sim = all_answered(config(7, 4), b"hello, echo\n", 12, 1000);
    assert_eq!(sim.srv.stack.core.active(), 0);
}

/// HTTP keep-alive: one GET, the response, the client closes first.
#[test]
fn http_get_keep_alive_client_first() {
    let get = b"GET / HTTP/1.1\r\nHost: synack\r\n\r\n";
    let sim = all_answered(config(80, 8), get, 17, 1500); // 17: "HTTP/1.1 200 OK\r\n"
    assert_eq!(sim.srv.stack.core.active(), 0);
}

/// HTTP with `Connection: close`: the server closes first, the client answers its FIN
/// with its own (CLOSE-WAIT → LAST-ACK in one segment), then the server's ACK ends it.
#[test]
fn http_connection_close_server_first() {
    let mut cfg = config(80, 8);
    cfg.close = CloseOrder::ServerFirst;
    let get = b"GET / HTTP/1.1\r\nHost: synack\r\nConnection: close\r\n\r\n";
    let sim = all_answered(cfg, get, 17, 1000);
    // The server closed first: it saw our FIN after its own and went to TIME-WAIT.
    let c = sim.srv.stack.counters();
    assert_eq!(c.get(synack::counters::Event::TimeWait), 1000);
}

/// The `close` listener closes right after the handshake: server-first without a request.
#[test]
fn server_first_against_close_listener() {
    let mut cfg = config(13, 3);
    cfg.close = CloseOrder::ServerFirst;
    let mut sim = Sim::new(cfg, pace(800));
    let s = sim.run(5_000_000);
    assert_clean(&s, 800);
}

/// `--syn-flood`: SYNs only, every SYN-ACK counted, no state on either side.
#[test]
fn syn_flood_counts_synacks_and_keeps_no_state() {
    let mut cfg = config(80, 16);
    cfg.syn_flood = true;
    let mut sim = Sim::new(cfg, pace(5000));
    let s = sim.run(1_000_000);
    assert_eq!(s.attempted, 5000);
    assert_eq!(s.synack_received, 5000);
    assert_eq!(s.established, 0);
    assert_eq!(sim.gen.client.in_flight(), 0);
    assert_eq!(sim.srv.stack.core.active(), 0, "cookies keep no state");
    assert_eq!(
        sim.server_flags
            .iter()
            .filter(|f| **f == TcpFlags::SYN | TcpFlags::ACK)
            .count(),
        5000
    );
}

/// RFC 6298 §5.5 (and RFC 9293 §3.8.1): a lost SYN is sent again after 1 s; the handshake
/// latency includes that second.
#[test]
fn lost_syn_is_retransmitted_after_one_second() {
    let mut sim = Sim::new(config(9, 1), pace(1));
    sim.drop_to_server = Box::new(|i, _| i == 0);
    let s = sim.run(5_000_000);
    assert_eq!(s.completed, 1, "{s:?}");
    assert_eq!(s.syn_retransmits, 1);
    assert_eq!(s.syn_sent, 2);
    let h = sim.gen.client.handshake_histogram();
    // 1 s + one step, as stored with 3 significant digits.
    assert!(
        h.min() >= 999_000 && h.max() < 1_010_000,
        "latency {} us",
        h.min()
    );
}

/// No answer at all: the SYN is retried `syn_retries` times (1 s, then 2 s) and the
/// attempt fails as a timeout, with nothing left open.
#[test]
fn unanswered_syn_fails_after_bounded_retries() {
    let mut sim = Sim::new(config(9, 2), pace(10));
    sim.drop_to_server = Box::new(|_, _| true);
    let s = sim.run(10_000_000);
    assert_eq!(s.attempted, 10);
    assert_eq!(s.syn_sent, 30);
    assert_eq!(s.failed_timeout, 10);
    assert_eq!(s.completed, 0);
    assert_eq!(sim.gen.client.in_flight(), 0);
    // 1 s + 2 s + 4 s of waiting, bounded.
    assert!(
        sim.now_us >= 7_000_000 && sim.now_us < 7_200_000,
        "{}",
        sim.now_us
    );
}

/// Pacing: 1000/s over 0.2 s of virtual time starts 200 connections (one at once, then
/// one per millisecond), and they complete.
#[test]
fn rate_paces_new_connections() {
    let mut sim = Sim::new(
        config(9, 4),
        Pace {
            rate: Some(1000),
            count: 1_000_000,
            max_in_flight: 512,
            batch: 64,
        },
    );
    while sim.now_us < 200_000 {
        sim.step(true);
    }
    let s = sim.gen.client.stats();
    assert!(
        (199..=202).contains(&s.attempted),
        "attempted {}",
        s.attempted
    );
    assert!(s.completed >= 195, "completed {}", s.completed);
}

/// RFC 9293 §3.10.7.3: a RST with an acceptable ACK in SYN-SENT resets the attempt; a RST
/// in ESTABLISHED at RCV.NXT does too. Driven by hand-made server frames.
#[test]
fn reset_in_syn_sent_fails_the_attempt() {
    use synack::tcp::{Flow, Link, Payload, Segment, Tx};
    use synack::wire::{SeqNumber, TcpOptions};
    let mut sim = Sim::new(config(9, 1), pace(1));
    sim.gen.poll(0, true);
    let syn = sim.gen.port.take_sent();
    assert_eq!(syn.len(), 1);
    assert_eq!(tcp_flags(&syn[0]), Some(TcpFlags::SYN));
    let eth = EthernetFrame::new_checked(&syn[0][..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    let rst = Tx {
        flow: Flow::V4 {
            local: SERVER,
            remote: ip.src_addr(),
            local_port: 9,
            remote_port: tcp.src_port(),
        },
        link: Link::Reply,
        seg: Segment {
            flags: TcpFlags::RST | TcpFlags::ACK,
            seq: SeqNumber(0),
            ack: tcp.seq_number().add(1),
            window: 0,
            options: TcpOptions::default(),
            payload: Payload::Empty,
        },
    };
    let path = L2Path {
        local_mac: SERVER_MAC,
        remote_mac: CLIENT_MAC,
        vlan: None,
    };
    let mut buf = vec![0u8; 128];
    let n = synack::engine::emit_frame(&rst, &path, &[], &mut buf).unwrap();
    // First a RST whose ACK is wrong: ignored (no reply to a RST).
    let mut bad = rst;
    bad.seg.ack = tcp.seq_number().add(7);
    let mut badbuf = vec![0u8; 128];
    let m = synack::engine::emit_frame(&bad, &path, &[], &mut badbuf).unwrap();
    assert!(sim.gen.port.inject(&badbuf[..m]));
    sim.gen.poll(10, false);
    assert!(sim.gen.port.take_sent().is_empty());
    assert_eq!(sim.gen.client.stats().failed_reset, 0);
    assert!(sim.gen.port.inject(&buf[..n]));
    sim.gen.poll(20, false);
    let s = sim.gen.client.stats();
    assert_eq!(s.failed_reset, 1, "{s:?}");
    assert_eq!(sim.gen.client.in_flight(), 0);
}

/// Frames that are not for us, or garbage, are dropped with a reason and never panic.
#[test]
fn garbage_is_dropped_with_a_reason() {
    let mut sim = Sim::new(config(9, 1), pace(1));
    for len in [0usize, 1, 13, 14, 33, 54, 60, 200] {
        let f: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        sim.gen.port.inject(&f);
    }
    sim.gen.poll(0, false);
    let s = sim.gen.client.stats();
    assert_eq!(s.drops.iter().sum::<u64>(), 8, "{s:?}");
    assert_eq!(s.completed + s.failed(), 0);
}

fn steady(port: u16, interval_us: Option<u64>) -> ClientConfig {
    let mut cfg = config(port, 4);
    cfg.hold = Some(Hold { interval_us });
    cfg
}

/// Steady concurrency with requests: 50 connections held against echo (RFC 862), each
/// sending its request every 10 ms; after the ramp all 50 stay established, every request
/// but the ones in flight is answered and timed, nothing closes until the run ends; then
/// every connection closes cleanly (client first) and the server's table ends empty.
#[test]
fn steady_concurrency_holds_connections_and_times_requests() {
    let mut cfg = steady(7, Some(10_000));
    cfg.request = Some(b"hello, echo\n".to_vec());
    cfg.expect_bytes = 12;
    let mut sim = Sim::new(
        cfg,
        Pace {
            max_in_flight: 50,
            ..pace(100_000)
        },
    );
    while sim.now_us < 1_000_000 {
        sim.step(true);
        if sim.now_us > 100_000 {
            assert_eq!(sim.gen.client.active(), 50, "at {} us", sim.now_us);
        }
    }
    let s = sim.gen.client.stats().clone();
    assert_eq!(
        s.attempted, 50,
        "no connection closed, so none was replaced: {s:?}"
    );
    assert_eq!(s.failed(), 0, "{s:?}");
    // 50 connections × one request per 10 ms over ~1 s.
    assert!(s.requests >= 50 * 95, "{s:?}");
    assert!(s.replies + 50 >= s.requests, "{s:?}");
    let h = sim.gen.client.request_histogram();
    assert_eq!(h.len(), s.replies);
    assert!(h.max() < 10_000, "request latency {} us", h.max());
    sim.gen.client.close_all(sim.now_us);
    let end = sim.now_us + 2_000_000;
    while sim.now_us < end && !sim.gen.idle() {
        sim.step(false);
    }
    for _ in 0..4 {
        sim.step(false);
    }
    let s = sim.gen.client.stats().clone();
    assert_eq!(s.completed, 50, "{s:?}");
    assert_eq!(s.failed(), 0, "{s:?}");
    assert_eq!(sim.srv.stack.core.active(), 0);
}

/// Steady concurrency replaces what closes: against the `close` listener (the server
/// closes every connection at once), the generator keeps opening replacements, so opens
/// go on past the target while no more than 20 are ever open, and every close is clean.
#[test]
fn steady_concurrency_replaces_closed_connections() {
    let mut sim = Sim::new(
        steady(13, None),
        Pace {
            max_in_flight: 20,
            ..pace(100_000)
        },
    );
    let mut most = 0;
    while sim.now_us < 200_000 {
        sim.step(true);
        most = most.max(sim.gen.client.in_flight());
    }
    let s = sim.gen.client.stats().clone();
    assert!(most <= 20, "{most} open at once");
    assert!(s.attempted > 200, "replacements opened: {s:?}");
    assert!(s.completed + 20 >= s.attempted, "{s:?}");
    assert_eq!(s.failed(), 0, "{s:?}");
}
