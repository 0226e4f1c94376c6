//! In-memory harness for the TCP scenario tests: a [`Net`] (one [`Stack`] and a virtual
//! clock) and [`Peer`]s (client models that build real Ethernet frames with the wire
//! `Repr`s and parse the server's reply frames the same way). Nothing leaves the process.
//!
//! A scenario reads like the packet trace it checks:
//!
//! ```text
//! let r = peer.send(&mut net, ACK | FIN, a, b, b"", peer.opts(&net));
//! one(r).expect(ACK | FIN, b, a + 1);
//! ```
//!
//! Per-state fixtures ([`established`], [`close_wait`], [`last_ack`], [`fin_wait_1`],
//! [`fin_wait_2`], [`closing`], [`time_wait`]) drive a fresh connection into one state and
//! assert that it got there.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use synack::counters::{DropReason, Event};
use synack::engine::{Outcome, Stack, StackConfig};
use synack::table::{Core, CoreConfig, Key};
use synack::tcp::conn::{Conn, State};
use synack::tcp::cookie::CookieJar;
use synack::tcp::responder::{HttpResponses, Mode};
use synack::tcp::{Clock, Flow, Params};
use synack::wire::{
    EtherType, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, SeqNumber,
    TcpFlags, TcpFrame, TcpOptions, TcpPacket, TcpRepr,
};

pub const FIN: TcpFlags = TcpFlags::FIN;
pub const SYN: TcpFlags = TcpFlags::SYN;
pub const RST: TcpFlags = TcpFlags::RST;
pub const PSH: TcpFlags = TcpFlags::PSH;
pub const ACK: TcpFlags = TcpFlags::ACK;

/// The server's MAC in every scenario.
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The secret of the default cookie jar.
pub const SECRET: [u8; 16] = *b"synack-tcptests!";
/// The default server addresses (RFC 2544 benchmarking range, never routed).
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
/// Frame buffers are this large (a reply may be longer than the request).
pub const FRAME: usize = 2048;
/// A wall clock well inside a cookie counter period.
pub const UNIX_START: u64 = 1_700_000_000;

/// One parsed segment the server sent, with where it went.
#[derive(Clone, PartialEq, Eq)]
pub struct Seg {
    pub eth: EthernetRepr,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
    /// Length of the whole frame.
    pub frame_len: usize,
}

impl std::fmt::Debug for Seg {
    /// A trace line: `80 > 40000 <ACK|FIN SEQ=.. ACK=.. WND=.. LEN=..> TS=..`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} > {} <{} SEQ={} ACK={} WND={} LEN={}> {:?}",
            self.src_port,
            self.dst_port,
            self.flags,
            self.seq,
            self.ack,
            self.window,
            self.payload.len(),
            self.options
        )
    }
}

impl Seg {
    /// Assert flags (exactly), SEG.SEQ and SEG.ACK; returns `self` for chaining.
    #[track_caller]
    pub fn expect(&self, flags: TcpFlags, seq: u32, ack: u32) -> &Self {
        assert_eq!(
            (self.flags, self.seq, self.ack),
            (flags, seq, ack),
            "expected <{flags} SEQ={seq} ACK={ack}>, got {self:?}"
        );
        self
    }

    /// Assert the flags only.
    #[track_caller]
    pub fn expect_flags(&self, flags: TcpFlags) -> &Self {
        assert_eq!(self.flags, flags, "flags of {self:?}");
        self
    }

    /// SEG.LEN (RFC 9293 §3.4): payload plus SYN and FIN.
    pub fn len(&self) -> u32 {
        self.payload.len() as u32
            + u32::from(self.flags.contains(SYN))
            + u32::from(self.flags.contains(FIN))
    }

    /// The server's TSval, if it sent timestamps.
    pub fn tsval(&self) -> Option<u32> {
        self.options.timestamps.map(|t| t.0)
    }
}

/// Exactly one segment.
#[track_caller]
pub fn one(segs: Vec<Seg>) -> Seg {
    assert_eq!(segs.len(), 1, "expected exactly one segment, got {segs:#?}");
    segs.into_iter().next().unwrap()
}

/// No segment at all.
#[track_caller]
pub fn none(segs: Vec<Seg>) {
    assert!(segs.is_empty(), "expected no segment, got {segs:#?}");
}

/// Parse a frame the server sent. Panics on anything malformed: the server must only emit
/// valid frames (checksums included).
#[track_caller]
pub fn parse_frame(frame: &[u8]) -> Seg {
    let eth_frame = EthernetFrame::new_checked(frame).expect("reply: ethernet");
    let eth = EthernetRepr::parse(&eth_frame).expect("reply: ethernet repr");
    let l3 = eth_frame.header_len();
    let (src, dst, l4) = match eth.ethertype {
        EtherType::IPV4 => {
            let p = Ipv4Packet::new_checked(&frame[l3..]).expect("reply: ipv4");
            let ip = Ipv4Repr::parse(&p, true).expect("reply: ipv4 repr (checksum)");
            assert_eq!(ip.protocol, 6);
            let start = l3 + p.header_len();
            (
                IpAddr::V4(ip.src),
                IpAddr::V4(ip.dst),
                &frame[start..start + ip.payload_len],
            )
        }
        EtherType::IPV6 => {
            let p = Ipv6Packet::new_checked(&frame[l3..]).expect("reply: ipv6");
            let ip = Ipv6Repr::parse(&p).expect("reply: ipv6 repr");
            assert_eq!(ip.next_header, 6);
            let start = l3 + Ipv6Repr::HEADER_LEN;
            (
                IpAddr::V6(ip.src),
                IpAddr::V6(ip.dst),
                &frame[start..start + ip.payload_len],
            )
        }
        t => panic!("reply with ethertype {t:#06x}"),
    };
    let tcp = TcpPacket::new_checked(l4).expect("reply: tcp");
    let r = TcpRepr::parse(&tcp, &src, &dst, true).expect("reply: tcp repr (checksum)");
    Seg {
        eth,
        src,
        dst,
        src_port: r.src_port,
        dst_port: r.dst_port,
        flags: r.flags,
        seq: r.seq.0,
        ack: r.ack.0,
        window: r.window,
        options: r.options,
        payload: r.payload.to_vec(),
        frame_len: frame.len(),
    }
}

/// Build a client frame (Ethernet + IPv4/IPv6 + TCP) with the wire `Repr`s.
#[allow(clippy::too_many_arguments)]
pub fn build_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    tcp: &TcpRepr<'_>,
) -> Vec<u8> {
    let frame = TcpFrame {
        src_mac,
        dst_mac,
        vlan: None,
        src,
        dst,
        ttl: 64,
        tcp: *tcp,
    };
    // Emitted over 0xa5 so a field the emitter forgot would show.
    let mut buf = vec![0xa5; frame.buffer_len()];
    frame.emit(&mut buf).expect("same-family addresses");
    buf
}

/// One server core behind a frame-level [`Stack`], with a virtual clock.
pub struct Net {
    pub stack: Stack,
    pub clock: Clock,
    /// Buffers the pool started with (to check for leaks).
    pub buffers: usize,
    /// Every frame the server sent, in order (for traces and property checks).
    pub sent: usize,
}

impl Net {
    /// A server on 198.18.0.2 and 2001:2::2 with `cfg`, cookie secret [`SECRET`].
    pub fn with_config(cfg: CoreConfig) -> Net {
        Self::with_stack(cfg, |_| {})
    }

    /// A server on 198.18.0.2 and 2001:2::2 with `cfg`, its stack set up by `tweak`
    /// (checksums, standalone neighbour answers, the in-place SYN-ACK).
    pub fn with_stack(cfg: CoreConfig, tweak: impl FnOnce(&mut StackConfig)) -> Net {
        let mut stack = StackConfig::serving(&[SERVER_V4.into(), SERVER_V6.into()]);
        tweak(&mut stack);
        Self::build(cfg, CookieJar::new(SECRET), stack)
    }

    /// A server with its own cookie jar and addresses.
    pub fn with_jar(cfg: CoreConfig, jar: CookieJar, addrs: &[IpAddr]) -> Net {
        Self::build(cfg, jar, StackConfig::serving(addrs))
    }

    fn build(cfg: CoreConfig, jar: CookieJar, stack: StackConfig) -> Net {
        let clock = Clock {
            ms: 1_000_000,
            unix_secs: UNIX_START,
        };
        let core = Core::new(&cfg, jar, &clock);
        Net {
            stack: Stack::with_config(core, stack),
            clock,
            buffers: cfg.buffers,
            sent: 0,
        }
    }

    /// A server on port 80 in `mode` with `params` (small table and pool).
    pub fn new(params: Params, mode: Mode) -> Net {
        Self::with_config(config(params, mode))
    }

    /// Hand one frame to the stack; return every segment it sent in reply, in order.
    pub fn inject(&mut self, frame: &[u8]) -> Vec<Seg> {
        let mut buf = vec![0u8; FRAME];
        buf[..frame.len()].copy_from_slice(frame);
        let mut out = Vec::new();
        if let Outcome::Reply(n) = self.stack.handle(&self.clock, &mut buf, frame.len()) {
            out.push(parse_frame(&buf[..n]));
        }
        out.extend(self.pending());
        self.sent += out.len();
        out
    }

    /// Emit what waits in the stack (timer output, replies beyond the first).
    fn pending(&mut self) -> Vec<Seg> {
        let txs: Vec<_> = self.stack.take_pending().collect();
        txs.iter()
            .map(|tx| {
                let mut buf = vec![0u8; FRAME];
                let n = self
                    .stack
                    .emit(tx, &mut buf)
                    .expect("pending segment fits a frame");
                parse_frame(&buf[..n])
            })
            .collect()
    }

    /// Move the virtual clock `ms` forward (wall clock too) and run due timers.
    pub fn advance(&mut self, ms: u64) -> Vec<Seg> {
        self.clock.ms += ms;
        self.clock.unix_secs = UNIX_START + (self.clock.ms - 1_000_000) / 1000;
        self.stack.on_timers(&self.clock);
        let out = self.pending();
        self.sent += out.len();
        out
    }

    /// Advance in steps of `step` ms until `ms` have passed, collecting timer output.
    pub fn advance_by_steps(&mut self, ms: u64, step: u64) -> Vec<Seg> {
        let mut out = Vec::new();
        let mut t = 0;
        while t < ms {
            let d = step.min(ms - t);
            out.extend(self.advance(d));
            t += d;
        }
        out
    }

    pub fn core(&self) -> &Core {
        &self.stack.core
    }

    /// Connections per state, in [`State::ALL`] order.
    pub fn states(&self) -> [usize; 7] {
        self.stack.core.states()
    }

    /// The TCB of `peer`'s connection, if the table has one.
    pub fn conn(&self, peer: &Peer) -> Option<Conn> {
        let flow = peer.flow();
        match flow {
            Flow::V4 { .. } => self
                .core()
                .v4
                .iter()
                .find(|(k, _)| k.flow() == flow)
                .map(|(_, c)| c.clone()),
            Flow::V6 { .. } => self
                .core()
                .v6
                .iter()
                .find(|(k, _)| k.flow() == flow)
                .map(|(_, c)| c.clone()),
        }
    }

    /// The state of `peer`'s connection (`None` = no TCB: LISTEN/CLOSED).
    pub fn state(&self, peer: &Peer) -> Option<State> {
        self.conn(peer).map(|c| c.state)
    }

    /// Read one drop counter.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.stack.counters().dropped(r)
    }

    /// Read one event counter.
    pub fn event(&self, e: Event) -> u64 {
        self.stack.counters().get(e)
    }

    /// No table entry and no buffer leaked: nothing in the table, the pool full again.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert_eq!(
            self.core().active(),
            0,
            "connections left: {:?}",
            self.states()
        );
        assert_eq!(
            self.core().sh.pool.available(),
            self.buffers,
            "pool buffers leaked"
        );
    }
}

/// A small core config: port 80 in `mode`, 64 connections, 8 buffers of 4 KiB.
pub fn config(params: Params, mode: Mode) -> CoreConfig {
    CoreConfig {
        params,
        capacity: 64,
        buffers: 8,
        buffer_size: 4096,
        http: HttpResponses::new(200, "text/plain", "synack\n"),
        listeners: vec![(80, mode)],
        ..CoreConfig::default()
    }
}

/// A client: its addresses and a minimal model of its side of the connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub mac: [u8; 6],
    pub server_mac: [u8; 6],
    pub addr: IpAddr,
    pub port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    /// Options the SYN offers (timestamps are filled in from the clock when `Some`).
    pub syn_options: TcpOptions,
    /// The client's ISN.
    pub iss: u32,
    /// The next sequence number the client sends.
    pub snd_nxt: u32,
    /// The next sequence number the client expects (after the handshake).
    pub rcv_nxt: u32,
    /// The server's ISN (the cookie), learnt from the SYN-ACK.
    pub irs: u32,
    /// Whether timestamps were negotiated.
    pub ts: bool,
    /// Offset of the client's TSval clock from the virtual ms clock.
    pub ts_offset: u32,
    /// The server's latest TSval (the client's TS.Recent).
    pub ts_recent: u32,
    /// The window the client advertises (unscaled field).
    pub window: u16,
}

impl Peer {
    /// A Linux-like IPv4 client 198.18.0.1:`port` → 198.18.0.2:80 offering MSS 1460, SACK,
    /// timestamps and window scale 7.
    pub fn v4(port: u16) -> Peer {
        Peer {
            mac: [0x02, 0, 0, 0, 0, 0x01],
            server_mac: SERVER_MAC,
            addr: Ipv4Addr::new(198, 18, 0, 1).into(),
            port,
            server: SERVER_V4.into(),
            server_port: 80,
            syn_options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((0, 0)),
                ..TcpOptions::default()
            },
            iss: 1_000_000u32.wrapping_mul(port as u32).wrapping_add(12_345),
            snd_nxt: 0,
            rcv_nxt: 0,
            irs: 0,
            ts: false,
            ts_offset: 7_000,
            ts_recent: 0,
            window: 502,
        }
    }

    /// The same client on IPv6, 2001:2::1 → 2001:2::2.
    pub fn v6(port: u16) -> Peer {
        Peer {
            addr: Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1).into(),
            server: SERVER_V6.into(),
            ..Peer::v4(port)
        }
    }

    /// A client without any option in its SYN (no MSS, WS, SACK or timestamps).
    pub fn bare(mut self) -> Peer {
        self.syn_options = TcpOptions::default();
        self
    }

    /// The flow from the server's side.
    pub fn flow(&self) -> Flow {
        match (self.server, self.addr) {
            (IpAddr::V4(local), IpAddr::V4(remote)) => Flow::V4 {
                local,
                remote,
                local_port: self.server_port,
                remote_port: self.port,
            },
            (IpAddr::V6(local), IpAddr::V6(remote)) => Flow::V6 {
                local,
                remote,
                local_port: self.server_port,
                remote_port: self.port,
            },
            _ => panic!("mixed families"),
        }
    }

    /// The client's TSval now.
    pub fn tsval(&self, net: &Net) -> u32 {
        (net.clock.ms as u32).wrapping_add(self.ts_offset)
    }

    /// Options for a segment after the handshake: timestamps if negotiated.
    pub fn opts(&self, net: &Net) -> TcpOptions {
        TcpOptions {
            timestamps: self.ts.then(|| (self.tsval(net), self.ts_recent)),
            ..TcpOptions::default()
        }
    }

    /// Build the frame of one segment from this client.
    pub fn frame(
        &self,
        flags: TcpFlags,
        seq: u32,
        ack: u32,
        payload: &[u8],
        options: TcpOptions,
    ) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: self.port,
            dst_port: self.server_port,
            seq: SeqNumber(seq),
            ack: SeqNumber(if flags.contains(ACK) { ack } else { 0 }),
            flags,
            window: self.window,
            options,
            payload,
        };
        build_frame(self.mac, self.server_mac, self.addr, self.server, &tcp)
    }

    /// Send one segment exactly as given; returns the server's replies. The client learns
    /// the server's TSval from them (its TS.Recent), nothing else.
    pub fn send(
        &mut self,
        net: &mut Net,
        flags: TcpFlags,
        seq: u32,
        ack: u32,
        payload: &[u8],
        options: TcpOptions,
    ) -> Vec<Seg> {
        let frame = self.frame(flags, seq, ack, payload, options);
        let out = net.inject(&frame);
        self.learn_ts(&out);
        out
    }

    fn learn_ts(&mut self, segs: &[Seg]) {
        for s in segs {
            if let Some(v) = s.tsval() {
                if s.dst_port == self.port {
                    self.ts_recent = v;
                }
            }
        }
    }

    /// Send the next segment of the client's stream (SEQ=snd_nxt, ACK=rcv_nxt, timestamps
    /// if negotiated) and advance snd_nxt by its length.
    pub fn tx(&mut self, net: &mut Net, flags: TcpFlags, payload: &[u8]) -> Vec<Seg> {
        let opts = self.opts(net);
        let (seq, ack) = (self.snd_nxt, self.rcv_nxt);
        let out = self.send(net, flags, seq, ack, payload, opts);
        self.snd_nxt = seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags.contains(SYN)) + u32::from(flags.contains(FIN)));
        out
    }

    /// Take in-order segments from the server: advance rcv_nxt over them.
    pub fn absorb(&mut self, segs: &[Seg]) {
        self.learn_ts(segs);
        for s in segs {
            if s.seq == self.rcv_nxt && !s.flags.contains(RST) {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(s.len());
            }
        }
    }

    /// Send the SYN; returns the SYN-ACK (asserting its SEQ/ACK shape) and learns from it.
    #[track_caller]
    pub fn syn(&mut self, net: &mut Net) -> Seg {
        let mut o = self.syn_options;
        if o.timestamps.is_some() {
            o.timestamps = Some((self.tsval(net), 0));
        }
        let r = one(self.send(net, SYN, self.iss, 0, b"", o));
        r.expect(SYN | ACK, r.seq, self.iss.wrapping_add(1));
        self.irs = r.seq;
        self.snd_nxt = self.iss.wrapping_add(1);
        self.rcv_nxt = r.seq.wrapping_add(1);
        self.ts = o.timestamps.is_some() && r.options.timestamps.is_some();
        if let Some((v, _)) = r.options.timestamps {
            self.ts_recent = v;
        }
        r
    }

    /// Full handshake (SYN, SYN-ACK, ACK); returns the SYN-ACK and what answered the ACK.
    /// Asserts the connection is ESTABLISHED (or further, for `close` mode).
    #[track_caller]
    pub fn connect(&mut self, net: &mut Net) -> (Seg, Vec<Seg>) {
        let synack = self.syn(net);
        let out = self.tx(net, ACK, b"");
        assert!(net.state(self).is_some(), "no TCB after the cookie ACK");
        (synack, out)
    }
}

// ---- per-state fixtures -----------------------------------------------------------------

/// RFC 9293 §3.10.7.3: SYN, cookie SYN-ACK, ACK → ESTABLISHED (discard mode).
#[track_caller]
pub fn established(params: Params) -> (Net, Peer) {
    let mut net = Net::new(params, Mode::Discard);
    let mut peer = Peer::v4(40_000);
    let (_, out) = peer.connect(&mut net);
    none(out);
    assert_eq!(net.state(&peer), Some(State::Established));
    (net, peer)
}

/// CLOSE-WAIT (RFC 9293 §3.10.7.4 eighth check, ESTABLISHED + FIN): echo mode, the client
/// advertises a zero window, so the echoed data (and the server's FIN behind it) cannot
/// leave and the server stays in CLOSE-WAIT.
#[track_caller]
pub fn close_wait(params: Params) -> (Net, Peer) {
    let mut net = Net::new(params, Mode::Echo);
    let mut peer = Peer::v4(40_001);
    peer.connect(&mut net);
    peer.window = 0;
    let out = peer.tx(&mut net, ACK | PSH | FIN, b"hello");
    let a = one(out);
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.state(&peer), Some(State::CloseWait));
    (net, peer)
}

/// LAST-ACK: from CLOSE-WAIT the client opens its window; the server sends the echo and
/// its FIN (RFC 9293 §3.10.4 CLOSE in CLOSE-WAIT).
#[track_caller]
pub fn last_ack(params: Params) -> (Net, Peer) {
    let (mut net, mut peer) = close_wait(params);
    peer.window = 502;
    let out = peer.tx(&mut net, ACK, b"");
    assert_eq!(out.len(), 2, "{out:#?}");
    out[0].expect(ACK | PSH, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(out[0].payload, b"hello");
    out[1].expect(ACK | FIN, peer.rcv_nxt + 5, peer.snd_nxt);
    peer.absorb(&out);
    assert_eq!(net.state(&peer), Some(State::LastAck));
    (net, peer)
}

/// FIN-WAIT-1: `close` mode sends FIN right after the handshake.
#[track_caller]
pub fn fin_wait_1(params: Params) -> (Net, Peer) {
    let mut net = Net::new(params, Mode::Close);
    let mut peer = Peer::v4(40_002);
    let (synack, out) = peer.connect(&mut net);
    let fin = one(out);
    fin.expect(ACK | FIN, synack.seq + 1, peer.snd_nxt);
    peer.absorb(std::slice::from_ref(&fin));
    assert_eq!(net.state(&peer), Some(State::FinWait1));
    (net, peer)
}

/// FIN-WAIT-2: the client acknowledges the server's FIN.
#[track_caller]
pub fn fin_wait_2(params: Params) -> (Net, Peer) {
    let (mut net, mut peer) = fin_wait_1(params);
    none(peer.tx(&mut net, ACK, b""));
    assert_eq!(net.state(&peer), Some(State::FinWait2));
    (net, peer)
}

/// TIME-WAIT: from FIN-WAIT-2 the client's FIN is acknowledged.
#[track_caller]
pub fn time_wait(params: Params) -> (Net, Peer) {
    let (mut net, mut peer) = fin_wait_2(params);
    let a = one(peer.tx(&mut net, ACK | FIN, b""));
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.state(&peer), Some(State::TimeWait));
    (net, peer)
}

/// CLOSING: in FIN-WAIT-1 the client's FIN arrives before it acknowledged ours.
#[track_caller]
pub fn closing(params: Params) -> (Net, Peer) {
    let (mut net, mut peer) = fin_wait_1(params);
    // The FIN acknowledges only up to (not including) the server's FIN.
    let opts = peer.opts(&net);
    let (seq, ack) = (peer.snd_nxt, peer.rcv_nxt - 1);
    let a = one(peer.send(&mut net, ACK | FIN, seq, ack, b"", opts));
    peer.snd_nxt += 1;
    a.expect(ACK, peer.rcv_nxt, peer.snd_nxt);
    assert_eq!(net.state(&peer), Some(State::Closing));
    (net, peer)
}
