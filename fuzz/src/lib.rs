//! Shared harness of the synack fuzz targets (cargo-fuzz / libFuzzer, see `scripts/fuzz.sh`).
//!
//! - [`Server`]: one [`Stack`] in standalone mode with listeners in every mode, a virtual
//!   clock, and the checks every frame must pass: no panic, at most one drop counter per
//!   frame (`ChallengeAckLimited` aside), every reply a well-formed frame with valid
//!   checksums from one of our addresses, and at the end nothing leaked (no connection, no
//!   buffer, no timer entry once everything is closed and time has run out).
//! - [`Session`]: the stateful target's interpreter. The input is a sequence of records
//!   (raw frames, clock steps, `close_all`, and *templates*: valid segments of client `k`
//!   built from a few fuzzer-chosen fields with the wire `Repr`s, so the fuzzer reaches
//!   ESTABLISHED and the closing states without having to guess cookies).
//! - [`seeds`]: the committed seed corpus, built with the same encoders.
//!
//! Nothing here reads the real clock or does I/O: the same input always runs the same way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use synack::counters::DropReason;
use synack::engine::{Outcome, Stack, StackConfig};
use synack::table::{Core, CoreConfig};
use synack::tcp::cookie::CookieJar;
use synack::tcp::responder::{HttpResponses, Mode};
use synack::tcp::{Clock, Params};
use synack::wire::{
    ArpOperation, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, NdpRepr, SeqNumber, TcpFlags, TcpFrame, TcpOptions, TcpPacket, TcpRepr,
};

/// The server's MAC.
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The clients' MAC.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The server's addresses (RFC 2544 benchmarking range, as in the wire fixtures).
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The server's IPv6 address (RFC 5180 benchmarking range).
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
/// The clients' IPv4 address.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The clients' IPv6 address.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
/// Frame buffers are this large (an AF_XDP frame); longer inputs are cut here.
pub const FRAME: usize = 2048;
/// The cookie secret.
pub const SECRET: [u8; 16] = *b"synack-fuzzing!!";
/// Virtual clock origin (ms) and the wall clock at that instant.
pub const START_MS: u64 = 1_000_000;
/// A wall clock well inside a cookie counter period.
pub const UNIX_START: u64 = 1_700_000_000;
/// Listening ports, one per mode (8080 answers the captured Linux SYNs of the seeds).
pub const LISTENERS: [(u16, Mode); 5] = [
    (80, Mode::Echo),
    (81, Mode::Http),
    (82, Mode::Close),
    (83, Mode::Discard),
    (8080, Mode::Http),
];
/// Steps of 1 s the final drain runs after `close_all`: 200 s, far beyond TIME-WAIT
/// (2 s), the retransmission give-up (3 retries, RTO ≤ 2 s) and the idle timeout (20 s).
pub const DRAIN_STEPS: usize = 200;

/// Whether `SYNACK_FUZZ_TRACE` is set: print every record and reply (to replay a crash).
pub fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SYNACK_FUZZ_TRACE").is_some())
}

/// Short timers so that the final drain is cheap, a small table and pool so that
/// exhaustion is reachable (as `tests/harden.rs` does).
pub fn params() -> Params {
    Params {
        idle_timeout_ms: 20_000,
        time_wait_ms: 2_000,
        rto_initial_ms: 200,
        rto_max_ms: 2_000,
        max_retries: 3,
        challenge_ack_limit: 50,
        ..Params::default()
    }
}

/// The core configuration of every fuzzed server.
pub fn config() -> CoreConfig {
    CoreConfig {
        params: params(),
        capacity: 32,
        buffers: 8,
        buffer_size: 4096,
        http: HttpResponses::new(200, "text/plain", "synack\n"),
        listeners: LISTENERS.to_vec(),
        ..CoreConfig::default()
    }
}

/// A TCP segment the server sent, parsed back with the wire types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Source address (one of ours).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.SEQ.
    pub seq: u32,
    /// SEG.ACK.
    pub ack: u32,
    /// TSval, if the segment carries timestamps.
    pub tsval: Option<u32>,
    /// SEG.LEN: payload plus SYN and FIN (RFC 9293 §3.4).
    pub len: u32,
}

/// Check one frame the server sent and return its TCP segment, if it is one. Panics (a
/// fuzzer finding) when the frame is not what a correct endpoint emits: Ethernet, then
/// IPv4/IPv6 from one of our addresses with a valid header checksum, then TCP with a
/// valid checksum; or an ARP reply / neighbour advertisement for one of our addresses.
pub fn check_reply(frame: &[u8]) -> Option<Sent> {
    let eth_frame = match EthernetFrame::new_checked(frame) {
        Ok(f) => f,
        Err(e) => panic!("reply is not an Ethernet frame: {e:?}"),
    };
    let eth = match EthernetRepr::parse(&eth_frame) {
        Ok(r) => r,
        Err(e) => panic!("reply Ethernet header: {e:?}"),
    };
    // TCP replies go out from the MAC the segment was sent to (the NIC filtered it), so
    // only the neighbour answers must name our own MAC.
    let l3 = eth_frame.header_len();
    let (src, dst, l4) = match eth.ethertype {
        EtherType::IPV4 => {
            let p = Ipv4Packet::new_checked(&frame[l3..]).expect("reply: IPv4 header");
            let ip = Ipv4Repr::parse(&p, true).expect("reply: IPv4 repr (checksum)");
            assert_eq!(ip.src, SERVER_V4, "IPv4 reply from an address not ours");
            assert_eq!(ip.protocol, 6, "IPv4 reply is not TCP");
            let start = l3 + p.header_len();
            (
                IpAddr::V4(ip.src),
                IpAddr::V4(ip.dst),
                &frame[start..start + ip.payload_len],
            )
        }
        EtherType::IPV6 => {
            let p = Ipv6Packet::new_checked(&frame[l3..]).expect("reply: IPv6 header");
            let ip = Ipv6Repr::parse(&p).expect("reply: IPv6 repr");
            let start = l3 + Ipv6Repr::HEADER_LEN;
            let body = &frame[start..start + ip.payload_len];
            if ip.next_header == 58 {
                // RFC 4861 §7.2.4: a solicited advertisement for one of our addresses.
                match NdpRepr::parse(body, &ip.src, &ip.dst) {
                    Ok(NdpRepr::NeighborAdvert { target, .. }) => {
                        assert_eq!(target, SERVER_V6, "advertised an address not ours");
                        assert_eq!(ip.hop_limit, 255, "RFC 4861 §7.1: hop limit 255");
                        assert_eq!(eth.src, SERVER_MAC, "NA from a MAC not ours");
                    }
                    other => panic!("ICMPv6 reply is not a valid NA: {other:?}"),
                }
                return None;
            }
            assert_eq!(ip.src, SERVER_V6, "IPv6 reply from an address not ours");
            assert_eq!(ip.next_header, 6, "IPv6 reply is neither TCP nor ICMPv6");
            (IpAddr::V6(ip.src), IpAddr::V6(ip.dst), body)
        }
        EtherType::ARP => {
            let arp = ArpRepr::parse(&frame[l3..]).expect("reply: ARP");
            assert_eq!(arp.operation, ArpOperation::Reply, "ARP reply op");
            assert_eq!(
                arp.sender_ip, SERVER_V4,
                "ARP reply for an address not ours"
            );
            assert_eq!(arp.sender_mac, SERVER_MAC, "ARP reply with a MAC not ours");
            assert_eq!(eth.src, SERVER_MAC, "ARP reply from a MAC not ours");
            return None;
        }
        t => panic!("reply with ethertype {t:#06x}"),
    };
    let tcp = TcpPacket::new_checked(l4).expect("reply: TCP header");
    let r = TcpRepr::parse(&tcp, &src, &dst, true).expect("reply: TCP repr (checksum)");
    if r.flags.contains(TcpFlags::SYN) {
        // Only a listener answers a SYN (with SYN-ACK); we never open connections.
        assert!(r.flags.contains(TcpFlags::ACK), "a SYN without ACK: {r:?}");
        assert!(
            LISTENERS.iter().any(|&(p, _)| p == r.src_port),
            "a SYN-ACK from port {} that does not listen",
            r.src_port
        );
    }
    Some(Sent {
        src,
        dst,
        src_port: r.src_port,
        dst_port: r.dst_port,
        flags: r.flags,
        seq: r.seq.0,
        ack: r.ack.0,
        tsval: r.options.timestamps.map(|t| t.0),
        len: r.segment_len(),
    })
}

/// One server core behind a [`Stack`], with a virtual clock and the per-frame checks.
pub struct Server {
    /// The stack under test.
    pub stack: Stack,
    /// The virtual clock.
    pub clock: Clock,
    /// Buffers the pool started with (to check for leaks).
    pub buffers: usize,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Server {
    /// A standalone server on 198.18.0.2 and 2001:2::2, listeners [`LISTENERS`].
    pub fn new(verify_checksums: bool) -> Server {
        let cfg = config();
        let clock = Clock {
            ms: START_MS,
            unix_secs: UNIX_START,
        };
        let core = Core::new(&cfg, CookieJar::new(SECRET), &clock);
        let stack = Stack::with_config(
            core,
            StackConfig {
                verify_checksums,
                standalone: Some(SERVER_MAC),
                ..StackConfig::serving(&[SERVER_V4.into(), SERVER_V6.into()])
            },
        );
        Server {
            stack,
            clock,
            buffers: cfg.buffers,
            buf: vec![0; FRAME],
            out: vec![0; FRAME],
        }
    }

    /// Drops counted so far, `ChallengeAckLimited` aside (RFC 5961 §7 rate limiting is
    /// counted on top of whatever else happened to the segment).
    pub fn drops_counted(&self) -> u64 {
        let c = &self.stack.core.sh.counters;
        c.total_drops() - c.dropped(DropReason::ChallengeAckLimited)
    }

    /// Hand one frame (cut at [`FRAME`] bytes) to the stack; check it counted at most one
    /// drop and that every reply is well formed; return the TCP segments sent.
    pub fn inject(&mut self, frame: &[u8], sent: &mut Vec<Sent>) {
        let n = frame.len().min(FRAME);
        self.buf[..n].copy_from_slice(&frame[..n]);
        // Bytes past the frame are stale: a reply may use them, a parse must not.
        self.buf[n..].fill(0xa5);
        let before = self.drops_counted();
        let outcome = self.stack.handle(&self.clock, &mut self.buf, n);
        let after = self.drops_counted();
        assert!(
            after - before <= 1,
            "one frame counted {} drops",
            after - before
        );
        match outcome {
            Outcome::Done => {}
            Outcome::Reply(len) => {
                assert!(len <= FRAME, "reply of {len} bytes in a {FRAME}-byte frame");
                let s = check_reply(&self.buf[..len]);
                trace_sent("reply", s);
                sent.extend(s);
            }
            Outcome::Handoff(w) => panic!("handoff to worker {w} without steering"),
        }
        self.flush(sent);
    }

    /// Emit what waits in the stack (replies beyond the first, timer output) and check it.
    fn flush(&mut self, sent: &mut Vec<Sent>) {
        let txs: Vec<_> = self.stack.take_pending().collect();
        for tx in &txs {
            let n = self
                .stack
                .emit(tx, &mut self.out)
                .expect("a pending segment did not fit a frame");
            let s = check_reply(&self.out[..n]);
            trace_sent("pending", s);
            sent.extend(s);
        }
    }

    /// Move the virtual clock (and the wall clock) `ms` forward and run due timers.
    pub fn advance(&mut self, ms: u64, sent: &mut Vec<Sent>) {
        self.clock.ms += ms;
        self.clock.unix_secs = UNIX_START + (self.clock.ms - START_MS) / 1000;
        self.stack.on_timers(&self.clock);
        self.flush(sent);
    }

    /// Close every connection (as on shutdown) and emit what that sends.
    pub fn close_all(&mut self, sent: &mut Vec<Sent>) {
        let clock = self.clock;
        self.stack.core.close_all(&clock);
        self.flush(sent);
    }

    /// `close_all`, let every timer run out, and check nothing is left: no connection, the
    /// pool full again, the timer wheel empty.
    pub fn drain_and_check(&mut self) {
        let mut sent = Vec::new();
        self.close_all(&mut sent);
        for _ in 0..DRAIN_STEPS {
            // Once nothing is left there is nothing more to wait for (and most inputs end
            // there at once); otherwise keep stepping: a leak shows after the last step.
            if self.stack.core.active() == 0 && self.stack.core.sh.wheel.is_empty() {
                break;
            }
            sent.clear();
            self.advance(1_000, &mut sent);
        }
        let core = &self.stack.core;
        assert_eq!(
            core.active(),
            0,
            "connections left after close_all and {DRAIN_STEPS} s: {:?}",
            core.states()
        );
        assert_eq!(
            core.sh.pool.available(),
            self.buffers,
            "pool buffers leaked"
        );
        assert_eq!(core.sh.wheel.len(), 0, "timer entries left");
    }
}

fn trace_sent(what: &str, s: Option<Sent>) {
    if tracing() {
        match s {
            Some(s) => eprintln!(
                "  {what}: {} > {} <{:?} SEQ={} ACK={} LEN={}>",
                s.src_port, s.dst_port, s.flags, s.seq, s.ack, s.len
            ),
            None => eprintln!("  {what}: ARP/NDP"),
        }
    }
}

/// Build a client frame (Ethernet + IPv4/IPv6 + TCP) with the wire `Repr`s, padded to the
/// 60-byte Ethernet minimum.
pub fn build_frame(src: IpAddr, dst: IpAddr, tcp: &TcpRepr<'_>) -> Vec<u8> {
    TcpFrame {
        src_mac: CLIENT_MAC,
        dst_mac: SERVER_MAC,
        vlan: None,
        src,
        dst,
        ttl: 64,
        tcp: *tcp,
    }
    .to_vec()
    .expect("clients and server share the family")
}

// ---- the stateful target ------------------------------------------------------------------

/// Number of modelled clients; a template's client byte is taken modulo this.
pub const CLIENTS: usize = 8;

/// Record tags (the tag byte is taken modulo 8, so every byte is some record).
pub mod tag {
    /// `len: u16 BE` then `len` bytes (fewer if the input ends): one raw frame.
    pub const FRAME: u8 = 0;
    /// `ms: u16 BE`: advance the clock and run timers.
    pub const ADVANCE: u8 = 1;
    /// `close_all` (shutdown of every connection).
    pub const CLOSE_ALL: u8 = 2;
    /// `client, kind, arg: u16 BE, extra`: one valid segment of a client (also 4, 5, 6).
    pub const TEMPLATE: u8 = 3;
    /// A template, then `at, value`: byte `at % len` of its frame overwritten (checksums
    /// stay stale; the stateful server does not verify them).
    pub const MUTATED: u8 = 7;
}

/// Template kinds (the kind byte is taken modulo 8).
pub mod kind {
    /// SYN with ISS `arg << 16 | k`; options from `extra` bits 0..3 (MSS, WS, SACK-permitted,
    /// timestamps), bit 4 adds ECE|CWR (RFC 3168 ECN-setup SYN).
    pub const SYN: u8 = 0;
    /// ACK at SND.NXT/RCV.NXT (the cookie ACK after a SYN); `extra` bit 0 adds a SACK block.
    pub const ACK: u8 = 1;
    /// ACK|PSH with data chosen by `extra >> 5` and `arg`.
    pub const DATA: u8 = 2;
    /// ACK|FIN, with one byte of data when `arg` is odd.
    pub const FIN: u8 = 3;
    /// RST|ACK at SND.NXT + `arg as i16` (RFC 5961 §3 in-window checks).
    pub const RST: u8 = 4;
    /// ACK advertising window `arg` (0 closes it: persist / zero-window probes).
    pub const WINDOW: u8 = 5;
    /// ACK|PSH with SEQ off by `arg as i16` and ACK off by `extra as i8`, one byte of data.
    pub const OFF: u8 = 6;
    /// SYN at SND.NXT - 1 + `arg as i16` on a synchronized connection (RFC 5961 §4).
    pub const RESYN: u8 = 7;
}

/// The stateful target's model of one client: enough of its side of the connection to
/// build valid segments (RFC 9293 §3.3.1 send and receive variables).
#[derive(Debug, Clone)]
pub struct Client {
    /// Client address.
    pub addr: IpAddr,
    /// Client port.
    pub port: u16,
    /// Server address.
    pub server: IpAddr,
    /// Server port.
    pub server_port: u16,
    /// ISS of the latest SYN.
    pub iss: u32,
    /// SND.NXT.
    pub snd_nxt: u32,
    /// RCV.NXT (after the SYN-ACK).
    pub rcv_nxt: u32,
    /// Whether the latest SYN offered timestamps.
    pub ts_offered: bool,
    /// Whether timestamps were negotiated (RFC 7323 §3.2).
    pub ts: bool,
    /// The server's latest TSval (TS.Recent).
    pub ts_recent: u32,
    /// Advertised window (unscaled field).
    pub window: u16,
}

impl Client {
    /// Client `k`: IPv6 for every third, ports 30000 + k, server port by `k` over
    /// [`LISTENERS`].
    pub fn new(k: usize) -> Client {
        let (addr, server) = if k.is_multiple_of(3) {
            (IpAddr::V6(CLIENT_V6), IpAddr::V6(SERVER_V6))
        } else {
            (IpAddr::V4(CLIENT_V4), IpAddr::V4(SERVER_V4))
        };
        Client {
            addr,
            port: 30_000 + k as u16,
            server,
            server_port: LISTENERS[k % LISTENERS.len()].0,
            iss: 0,
            snd_nxt: 0,
            rcv_nxt: 0,
            ts_offered: false,
            ts: false,
            ts_recent: 0,
            window: 502,
        }
    }

    /// Learn from the server's segments to this client: TS.Recent, the SYN-ACK of our SYN
    /// (IRS, RCV.NXT, SND.NXT), and in-order data and FIN (RCV.NXT advances over them).
    pub fn absorb(&mut self, sent: &[Sent]) {
        for s in sent {
            if s.dst != self.addr || s.dst_port != self.port || s.src_port != self.server_port {
                continue;
            }
            if let Some(v) = s.tsval {
                self.ts_recent = v;
            }
            if s.flags.contains(TcpFlags::SYN) {
                if s.ack == self.iss.wrapping_add(1) {
                    self.snd_nxt = s.ack;
                    self.rcv_nxt = s.seq.wrapping_add(1);
                    self.ts = self.ts_offered && s.tsval.is_some();
                }
            } else if s.seq == self.rcv_nxt && !s.flags.contains(TcpFlags::RST) {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(s.len);
            }
        }
    }
}

/// Payloads a DATA template picks from (`extra >> 5`); 2 and 3 take their length from `arg`.
fn payload(sel: u8, arg: u16, scratch: &mut Vec<u8>) -> &[u8] {
    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const POST: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    const PIPELINED: &[u8] = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
    const PARTIAL: &[u8] = b"GET / HTTP/1.1\r\nHost:";
    match sel & 7 {
        0 => GET,
        1 => POST,
        2 | 3 => {
            let n = usize::from(arg) % if sel & 7 == 2 { 1461 } else { 64 };
            scratch.clear();
            scratch.extend((0..n).map(|i| b'a' + (i % 26) as u8));
            scratch
        }
        4 => PIPELINED,
        5 => PARTIAL,
        6 => b"\r\n\r\n",
        _ => b"x",
    }
}

/// The stateful target: one fresh [`Server`] (checksums not verified, so raw records reach
/// the deep layers) and [`CLIENTS`] client models.
pub struct Session {
    /// The server under test.
    pub server: Server,
    /// The client models.
    pub clients: Vec<Client>,
    sent: Vec<Sent>,
    scratch: Vec<u8>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A fresh server and clients.
    pub fn new() -> Session {
        Session {
            server: Server::new(false),
            clients: (0..CLIENTS).map(Client::new).collect(),
            sent: Vec::with_capacity(16),
            scratch: Vec::new(),
        }
    }

    /// Run one whole input: every record, then the end-of-input invariants.
    pub fn run(data: &[u8]) {
        let mut s = Session::new();
        let mut rest = data;
        while let Some((&t, tail)) = rest.split_first() {
            rest = s.record(t, tail);
        }
        if tracing() {
            eprintln!("end: states {:?}", s.server.stack.core.states());
        }
        s.server.drain_and_check();
    }

    /// Run one record with tag `t`; returns the bytes after it.
    fn record<'a>(&mut self, t: u8, rest: &'a [u8]) -> &'a [u8] {
        let mut r = Reader(rest);
        self.sent.clear();
        match t % 8 {
            tag::FRAME => {
                let n = usize::from(r.u16());
                let frame = r.take(n);
                if tracing() {
                    eprintln!("frame {} bytes", frame.len());
                }
                self.server.inject(frame, &mut self.sent);
            }
            tag::ADVANCE => {
                let ms = r.u16();
                if tracing() {
                    eprintln!("advance {ms} ms");
                }
                self.server.advance(u64::from(ms), &mut self.sent);
            }
            tag::CLOSE_ALL => {
                if tracing() {
                    eprintln!("close_all");
                }
                self.server.close_all(&mut self.sent);
            }
            t => {
                let (k, kind, arg, extra) = (r.u8(), r.u8(), r.u16(), r.u8());
                let k = usize::from(k) % CLIENTS;
                let mut frame = self.template(k, kind, arg, extra);
                if t == tag::MUTATED {
                    let (at, value) = (r.u8(), r.u8());
                    let at = usize::from(at) % frame.len();
                    frame[at] = value;
                }
                self.server.inject(&frame, &mut self.sent);
            }
        }
        for c in &mut self.clients {
            c.absorb(&self.sent);
        }
        r.0
    }

    /// Build the frame of one template record for client `k` (and update its model as
    /// sending it does).
    fn template(&mut self, k: usize, kind: u8, arg: u16, extra: u8) -> Vec<u8> {
        let now = self.server.clock.ms as u32;
        let c = &mut self.clients[k];
        let tsval = now.wrapping_add(7_000 + k as u32 * 1_000);
        let mut options = TcpOptions {
            timestamps: (c.ts && extra & 0x40 == 0).then_some((tsval, c.ts_recent)),
            ..TcpOptions::default()
        };
        let off = arg as i16 as i32 as u32;
        let (mut flags, mut seq, mut ack) = (TcpFlags::ACK, c.snd_nxt, c.rcv_nxt);
        let mut data: &[u8] = b"";
        let mut advance = true;
        match kind % 8 {
            kind::SYN => {
                c.iss = (u32::from(arg) << 16) | k as u32;
                c.ts_offered = extra & 8 != 0;
                options = TcpOptions {
                    mss: (extra & 1 != 0).then_some(1460),
                    window_scale: (extra & 2 != 0).then_some(7),
                    sack_permitted: extra & 4 != 0,
                    timestamps: c.ts_offered.then_some((tsval, 0)),
                    ..TcpOptions::default()
                };
                flags = TcpFlags::SYN;
                if extra & 0x10 != 0 {
                    flags.insert(TcpFlags::ECE);
                    flags.insert(TcpFlags::CWR);
                }
                (seq, ack) = (c.iss, 0);
                advance = false;
            }
            kind::ACK => {
                if extra & 1 != 0 {
                    let left = c.rcv_nxt.wrapping_add(u32::from(arg));
                    options.sack_blocks[0] = (left, left.wrapping_add(100));
                    options.sack_count = 1;
                }
            }
            kind::DATA => {
                flags.insert(TcpFlags::PSH);
                data = payload(extra >> 5, arg, &mut self.scratch);
            }
            kind::FIN => {
                flags.insert(TcpFlags::FIN);
                if arg & 1 == 1 {
                    data = b"z";
                }
            }
            kind::RST => {
                flags.insert(TcpFlags::RST);
                seq = seq.wrapping_add(off);
                advance = false;
            }
            kind::WINDOW => c.window = arg,
            kind::OFF => {
                flags.insert(TcpFlags::PSH);
                seq = seq.wrapping_add(off);
                ack = ack.wrapping_add(extra as i8 as i32 as u32);
                data = b"o";
                advance = false;
            }
            _ => {
                flags = TcpFlags::SYN;
                seq = seq.wrapping_sub(1).wrapping_add(off);
                ack = 0;
                advance = false;
            }
        }
        if extra & 0x80 != 0 && kind % 8 != kind::SYN {
            flags.insert(TcpFlags::URG);
        }
        let tcp = TcpRepr {
            src_port: c.port,
            dst_port: c.server_port,
            seq: SeqNumber(seq),
            ack: SeqNumber(ack),
            flags,
            window: c.window,
            options,
            payload: data,
        };
        if tracing() {
            eprintln!(
                "client {k} ({}): <{flags:?} SEQ={seq} ACK={ack} LEN={}>",
                c.port,
                tcp.segment_len()
            );
        }
        let frame = build_frame(c.addr, c.server, &tcp);
        if advance {
            c.snd_nxt = c.snd_nxt.wrapping_add(tcp.segment_len());
        }
        frame
    }
}

/// A cursor over the input that yields zeros past its end (a truncated record still runs).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }
}

// ---- seeds --------------------------------------------------------------------------------

/// Captured frames (the annotated versions are the unit tests of `src/wire/`): Linux
/// IPv4 and IPv6 SYNs to port 8080, an ARP request and a neighbour solicitation for
/// 198.18.0.2 / 2001:2::2, and a bare Linux ACK.
pub const CAPTURED: [(&str, &str); 5] = [
    (
        "linux-syn-v4",
        "02000000000202000000000108004500003cd7e540004006d6aec6120001c6120002ddec1f900e8bcbd100000000a002faf0aced0000020405b40402080a750ac712000000000103030a",
    ),
    (
        "linux-syn-v6",
        "02000000000202000000000186dd600590c800280640200100020000000000000000000000012001000200000000000000000000000282081f9062f85dd800000000a002fd20ccf80000020405a00402080a8a17516e000000000103030a",
    ),
    (
        "arp-request",
        "ffffffffffff02000000000108060001080006040001020000000001c6120001000000000000c6120002",
    ),
    (
        "ndp-solicit",
        "3333ff00000202000000000186dd6000000000203aff20010002000000000000000000000001ff0200000000000000000001ff0000028700379300000000200100020000000000000000000000020101020000000001",
    ),
    (
        "linux-ack-v4",
        "020000000002020000000001080045000028 83e540004006 2ac3c6120001c6120002ddf21f9087d2541a31f7ca7650 10003f4d900000",
    ),
];

/// Decode hex digits, ignoring anything else (spaces).
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| {
            let v = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16)).unwrap_or(0) as u8;
            (v(p.first()) << 4) | v(p.get(1))
        })
        .collect()
}

/// Encoders of the stateful target's records (for seeds and tests).
pub mod rec {
    use super::{kind, tag};

    /// A template record.
    pub fn template(k: u8, kind: u8, arg: u16, extra: u8) -> Vec<u8> {
        let a = arg.to_be_bytes();
        vec![tag::TEMPLATE, k, kind, a[0], a[1], extra]
    }

    /// A full handshake of client `k`: SYN with every option, then the cookie ACK.
    pub fn connect(k: u8) -> Vec<u8> {
        let mut v = template(k, kind::SYN, 0x1234, 0x0f);
        v.extend(template(k, kind::ACK, 0, 0));
        v
    }

    /// A clock step.
    pub fn advance(ms: u16) -> Vec<u8> {
        let a = ms.to_be_bytes();
        vec![tag::ADVANCE, a[0], a[1]]
    }

    /// A raw frame.
    pub fn frame(bytes: &[u8]) -> Vec<u8> {
        let n = (bytes.len() as u16).to_be_bytes();
        let mut v = vec![tag::FRAME, n[0], n[1]];
        v.extend_from_slice(bytes);
        v
    }
}

/// The committed seed corpus: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, h) in CAPTURED {
        out.push(("frames", name.to_string(), hex(h)));
    }
    let cat = |parts: Vec<Vec<u8>>| parts.concat();
    // Client 0 (IPv6, echo): connect, echo a GET, close from the client side.
    out.push((
        "stack",
        "echo-v6-close".to_string(),
        cat(vec![
            rec::connect(0),
            rec::template(0, kind::DATA, 0, 0),
            rec::template(0, kind::ACK, 0, 0),
            rec::template(0, kind::FIN, 0, 0),
            rec::template(0, kind::ACK, 0, 0),
            rec::advance(3_000),
        ]),
    ));
    // Client 1 (IPv4, http): request, response, client FIN; client 2 (close mode).
    out.push((
        "stack",
        "http-and-close".to_string(),
        cat(vec![
            rec::connect(1),
            rec::template(1, kind::DATA, 0, 0x20),
            rec::template(1, kind::ACK, 0, 0),
            rec::template(1, kind::FIN, 0, 0),
            rec::connect(2),
            rec::template(2, kind::ACK, 0, 0),
            rec::template(2, kind::FIN, 0, 0),
        ]),
    ));
    // Client 3 (IPv6, discard): bulk data, zero window, RST in window, re-SYN.
    out.push((
        "stack",
        "discard-rst-resyn".to_string(),
        cat(vec![
            rec::connect(3),
            rec::template(3, kind::DATA, 1400, 0x40),
            rec::template(3, kind::WINDOW, 0, 0),
            rec::template(3, kind::RESYN, 0, 0),
            rec::template(3, kind::OFF, 5, 0),
            rec::template(3, kind::RST, 10, 0),
        ]),
    ));
    // Client 5 (IPv4, echo, bare SYN): echo with the window closed, timers, shutdown.
    out.push((
        "stack",
        "echo-zero-window-shutdown".to_string(),
        cat(vec![
            rec::template(5, kind::SYN, 7, 0),
            rec::template(5, kind::ACK, 0, 0),
            rec::template(5, kind::WINDOW, 0, 0),
            rec::template(5, kind::DATA, 100, 0x40),
            rec::advance(1_000),
            vec![tag::CLOSE_ALL],
            rec::advance(5_000),
        ]),
    ));
    // Raw captured Linux SYN among templates.
    out.push((
        "stack",
        "raw-linux-syn".to_string(),
        cat(vec![rec::frame(&hex(CAPTURED[0].1)), rec::connect(4)]),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use synack::tcp::conn::State;

    fn state_count(s: &Session, st: State) -> usize {
        s.server.stack.core.states()[st as usize]
    }

    /// Run records without the final drain.
    fn run_records(data: &[u8]) -> Session {
        let mut s = Session::new();
        let mut rest = data;
        while let Some((&t, tail)) = rest.split_first() {
            rest = s.record(t, tail);
        }
        s
    }

    /// RFC 9293 §3.5: the template SYN and cookie ACK reach ESTABLISHED, for IPv4 and IPv6.
    #[test]
    fn templates_reach_established() {
        let s = run_records(&[rec::connect(0), rec::connect(1)].concat());
        assert_eq!(state_count(&s, State::Established), 2);
        assert_eq!(s.clients[0].snd_nxt, s.clients[0].iss.wrapping_add(1));
    }

    /// Echo (RFC 862): the client model absorbs the echoed bytes, and a further ACK at
    /// the new RCV.NXT is acceptable (no drop counted).
    #[test]
    fn template_data_is_echoed_and_absorbed() {
        let mut s = run_records(&rec::connect(0));
        let before = s.clients[0].rcv_nxt;
        s.record(tag::TEMPLATE, &rec::template(0, kind::DATA, 0, 0)[1..]);
        let echoed = s.sent.iter().map(|x| x.len).sum::<u32>();
        assert_eq!(echoed, 27, "the GET echoed: {:?}", s.sent);
        assert_eq!(s.clients[0].rcv_nxt, before.wrapping_add(27));
        let drops = s.server.drops_counted();
        s.record(tag::TEMPLATE, &rec::template(0, kind::ACK, 0, 0)[1..]);
        assert_eq!(s.server.drops_counted(), drops);
    }

    /// Every committed seed runs clean (RFC 9293 §3.6 closes, nothing left after the
    /// drain); the captured Linux SYNs are answered with a SYN-ACK when checksums are checked.
    #[test]
    fn seeds_run_clean() {
        for (target, name, bytes) in seeds() {
            match target {
                "stack" => Session::run(&bytes),
                _ => {
                    let mut a = Server::new(true);
                    let mut sent = Vec::new();
                    a.inject(&bytes, &mut sent);
                    if name.starts_with("linux-syn") {
                        assert!(
                            sent.iter()
                                .any(|s| s.flags == TcpFlags::SYN | TcpFlags::ACK),
                            "{name}: no SYN-ACK"
                        );
                    }
                }
            }
        }
    }

    /// A reply must carry valid checksums: a SYN-ACK built from the server passes, the same
    /// frame with one TCP checksum byte flipped is a finding.
    #[test]
    fn check_reply_rejects_bad_checksum() {
        let (server, client) = (IpAddr::V4(SERVER_V4), IpAddr::V4(CLIENT_V4));
        let tcp = TcpRepr {
            src_port: 8080,
            dst_port: 40_000,
            seq: SeqNumber(1),
            ack: SeqNumber(2),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 100,
            options: TcpOptions::default(),
            payload: b"",
        };
        let mut f = build_frame(server, client, &tcp);
        f[0..6].copy_from_slice(&CLIENT_MAC);
        f[6..12].copy_from_slice(&SERVER_MAC);
        let s = check_reply(&f).expect("a TCP segment");
        assert_eq!((s.seq, s.ack, s.len), (1, 2, 1));
        f[14 + 20 + 16] ^= 0xff;
        assert!(std::panic::catch_unwind(|| check_reply(&f)).is_err());
    }
}
