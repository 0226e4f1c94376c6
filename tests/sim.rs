//! A deterministic two-peer simulation: scripted client TCPs against the [`Stack`] over a
//! seeded lossy link (loss, duplication, reordering by jitter), on a virtual clock.
//!
//! Each client does a handshake, sends its bytes, and closes first or waits for the
//! server's FIN depending on the mode; it retransmits on its own timer (go-back-N, RFC 6298
//! backoff). At the end every connection must be closed on both sides, every echo and
//! HTTP answer complete, and no table entry or pool buffer left behind. The kit's seeded
//! [`Rng`] with fixed seeds keeps every run identical.
//!
//! [`Stack`]: synack::engine::Stack

mod support;

use std::collections::BTreeMap;

use support::*;
use synack::counters::Event;
use synack::tcp::responder::Mode;
use synack::tcp::Params;
use synack::wire::{TcpFlags, TcpOptions};

/// What travels on the link.
enum Packet {
    /// A client frame for the server.
    ToServer(Vec<u8>),
    /// A server segment for client `usize`.
    ToClient(usize, Seg),
}

/// The lossy link: packets in flight keyed by (delivery time, sequence) so equal times keep
/// their order and jitter reorders.
struct Link {
    rng: Rng,
    loss: u64,
    dup: u64,
    jitter: u64,
    flight: BTreeMap<(u64, u64), Packet>,
    n: u64,
    lost: u64,
    duplicated: u64,
}

impl Link {
    fn put(&mut self, now: u64, p: Packet) {
        if self.rng.chance(self.loss) {
            self.lost += 1;
            return;
        }
        if self.rng.chance(self.dup) {
            self.duplicated += 1;
            let copy = match &p {
                Packet::ToServer(f) => Packet::ToServer(f.clone()),
                Packet::ToClient(i, s) => Packet::ToClient(*i, s.clone()),
            };
            self.push(now, copy);
        }
        self.push(now, p);
    }

    fn push(&mut self, now: u64, p: Packet) {
        let at = now + 1 + self.rng.below(self.jitter + 1);
        self.n += 1;
        self.flight.insert((at, self.n), p);
    }

    fn next_at(&self) -> Option<u64> {
        self.flight.keys().next().map(|k| k.0)
    }

    fn pop_due(&mut self, now: u64) -> Option<Packet> {
        let key = *self.flight.keys().next()?;
        if key.0 > now {
            return None;
        }
        self.flight.remove(&key)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    SynSent,
    Open,
    /// Both FINs exchanged and ours acknowledged: answering retransmissions until `until`.
    Lingering {
        until: u64,
    },
    Done,
    Failed(&'static str),
}

const CLIENT_MSS: u32 = 1000;
const RTO_MS: u64 = 300;
const MAX_RETRIES: u32 = 14;
const LINGER_MS: u64 = 20_000;

/// The scripted client TCP.
struct Client {
    peer: Peer,
    mode: Mode,
    phase: Phase,
    start_at: u64,
    data: Vec<u8>,
    received: Vec<u8>,
    /// First data byte's sequence number is `base` (= ISS + 1).
    base: u32,
    snd_una: u32,
    snd_nxt: u32,
    snd_max: u32,
    snd_wnd: u32,
    rcv_nxt: u32,
    fin_queued: bool,
    fin_acked: bool,
    peer_fin: bool,
    ack_owed: bool,
    rto_at: Option<u64>,
    rto: u64,
    retries: u32,
    /// RSTs sent after the client closed (to connections a stale duplicate reopened).
    resets_sent: u64,
}

fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

impl Client {
    fn new(peer: Peer, mode: Mode, data: Vec<u8>, start_at: u64) -> Client {
        let base = peer.iss.wrapping_add(1);
        Client {
            peer,
            mode,
            phase: Phase::Idle,
            start_at,
            data,
            received: Vec::new(),
            base,
            snd_una: base,
            snd_nxt: base,
            snd_max: base,
            snd_wnd: 0,
            rcv_nxt: 0,
            fin_queued: false,
            fin_acked: false,
            peer_fin: false,
            ack_owed: false,
            rto_at: None,
            rto: RTO_MS,
            retries: 0,
            resets_sent: 0,
        }
    }

    fn data_end(&self) -> u32 {
        self.base.wrapping_add(self.data.len() as u32)
    }

    fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed(_))
    }

    fn opts(&self, now: u64) -> TcpOptions {
        TcpOptions {
            timestamps: self.peer.ts.then(|| {
                (
                    (now as u32).wrapping_add(self.peer.ts_offset),
                    self.peer.ts_recent,
                )
            }),
            ..TcpOptions::default()
        }
    }

    fn frame(&self, now: u64, flags: TcpFlags, seq: u32, payload: &[u8]) -> Vec<u8> {
        self.peer
            .frame(flags, seq, self.rcv_nxt, payload, self.opts(now))
    }

    fn timer(&self) -> Option<u64> {
        match self.phase {
            Phase::Idle => Some(self.start_at),
            Phase::Lingering { until } => Some(until),
            Phase::SynSent | Phase::Open => self.rto_at,
            _ => None,
        }
    }

    fn arm(&mut self, now: u64) {
        self.rto_at = Some(now + self.rto);
    }

    /// The client decides to close when its script says so.
    fn maybe_close(&mut self) {
        if self.fin_queued {
            return;
        }
        self.fin_queued = match self.mode {
            // Closes first, right after its data.
            Mode::Discard => true,
            // Closes once everything came back.
            Mode::Echo => self.received.len() == self.data.len(),
            // Waits for the server's FIN.
            Mode::Close | Mode::Http => self.peer_fin,
        };
    }

    /// Timers and sending. Returns frames to put on the link.
    fn poll(&mut self, now: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let due = self.rto_at.is_some_and(|t| t <= now);
        match self.phase {
            Phase::Idle if now >= self.start_at => {
                self.phase = Phase::SynSent;
                out.push(self.syn(now));
                self.arm(now);
            }
            Phase::SynSent if due => {
                if !self.backoff() {
                    return out;
                }
                out.push(self.syn(now));
                self.arm(now);
            }
            Phase::Open => {
                if due {
                    if !self.backoff() {
                        return out;
                    }
                    self.snd_nxt = self.snd_una;
                    self.arm(now);
                }
                self.maybe_close();
                let sent = self.send_data(now, &mut out, due);
                if self.ack_owed && !sent {
                    out.push(self.frame(now, ACK, self.snd_nxt, b""));
                }
                self.ack_owed = false;
                if self.fin_acked && self.peer_fin && self.rcv_nxt_past_fin() {
                    self.phase = Phase::Lingering {
                        until: now + LINGER_MS,
                    };
                    self.rto_at = None;
                }
            }
            Phase::Lingering { until } => {
                if self.ack_owed {
                    out.push(self.frame(now, ACK, self.snd_nxt, b""));
                    self.ack_owed = false;
                }
                if now >= until {
                    self.phase = Phase::Done;
                }
            }
            _ => {}
        }
        out
    }

    fn rcv_nxt_past_fin(&self) -> bool {
        self.peer_fin
    }

    fn backoff(&mut self) -> bool {
        self.retries += 1;
        if self.retries > MAX_RETRIES {
            self.phase = Phase::Failed("gave up retransmitting");
            return false;
        }
        self.rto = (self.rto * 2).min(4_000);
        true
    }

    fn syn(&mut self, now: u64) -> Vec<u8> {
        let mut o = self.peer.syn_options;
        if o.timestamps.is_some() {
            o.timestamps = Some(((now as u32).wrapping_add(self.peer.ts_offset), 0));
        }
        self.peer.frame(SYN, self.peer.iss, 0, b"", o)
    }

    /// Send from SND.NXT: data within the window (at least one segment after a timeout),
    /// then the FIN. Returns whether anything was sent.
    fn send_data(&mut self, now: u64, out: &mut Vec<Vec<u8>>, forced: bool) -> bool {
        let mut sent = false;
        let end = self.data_end();
        let wnd_end =
            self.snd_una
                .wrapping_add(self.snd_wnd.max(if forced { CLIENT_MSS } else { 0 }));
        while seq_lt(self.snd_nxt, end) && seq_lt(self.snd_nxt, wnd_end) {
            let off = self.snd_nxt.wrapping_sub(self.base) as usize;
            let room = wnd_end.wrapping_sub(self.snd_nxt) as usize;
            let len = (self.data.len() - off).min(CLIENT_MSS as usize).min(room);
            let chunk = self.data[off..off + len].to_vec();
            out.push(self.frame(now, ACK | PSH, self.snd_nxt, &chunk));
            self.snd_nxt = self.snd_nxt.wrapping_add(len as u32);
            sent = true;
        }
        if self.fin_queued && self.snd_nxt == end && !self.fin_acked {
            out.push(self.frame(now, ACK | FIN, end, b""));
            self.snd_nxt = end.wrapping_add(1);
            sent = true;
        }
        if seq_lt(self.snd_max, self.snd_nxt) {
            self.snd_max = self.snd_nxt;
        }
        if sent && self.rto_at.is_none() {
            self.arm(now);
        }
        sent
    }

    /// A segment from the server. Returns a reply the client sends at once (only an RST
    /// from a closed client).
    fn on_seg(&mut self, now: u64, s: &Seg) -> Option<Vec<u8>> {
        if self.phase == Phase::Done && !s.flags.contains(RST) {
            // RFC 9293 §3.10.7.1 (CLOSED): "If the incoming segment has an ACK field, the
            // reset takes its sequence number from the ACK field of the segment".
            self.resets_sent += 1;
            return Some(self.peer.frame(RST, s.ack, 0, b"", TcpOptions::default()));
        }
        self.handle(now, s);
        None
    }

    fn handle(&mut self, now: u64, s: &Seg) {
        if matches!(self.phase, Phase::Done | Phase::Failed(_) | Phase::Idle) {
            return;
        }
        if s.flags.contains(RST) {
            self.phase = Phase::Failed("reset by the server");
            return;
        }
        if let Some(v) = s.tsval() {
            if (v.wrapping_sub(self.peer.ts_recent) as i32) >= 0 {
                self.peer.ts_recent = v;
            }
        }
        if self.phase == Phase::SynSent {
            if s.flags == SYN | ACK && s.ack == self.base {
                self.peer.irs = s.seq;
                self.rcv_nxt = s.seq.wrapping_add(1);
                self.peer.ts =
                    self.peer.syn_options.timestamps.is_some() && s.options.timestamps.is_some();
                self.snd_wnd = s.window as u32;
                self.phase = Phase::Open;
                self.ack_owed = true;
                self.retries = 0;
                self.rto = RTO_MS;
                self.rto_at = None;
            }
            return;
        }
        if s.flags.contains(SYN) {
            // A duplicate SYN-ACK: acknowledge it again.
            self.ack_owed = true;
            return;
        }
        // ACK.
        if seq_lt(self.snd_una, s.ack) && seq_le(s.ack, self.snd_max) {
            self.snd_una = s.ack;
            self.retries = 0;
            self.rto = RTO_MS;
            self.rto_at = (self.snd_una != self.snd_max).then_some(now + self.rto);
            if self.fin_queued && s.ack == self.data_end().wrapping_add(1) {
                self.fin_acked = true;
            }
            if seq_lt(self.snd_nxt, self.snd_una) {
                self.snd_nxt = self.snd_una;
            }
        }
        if s.ack == self.snd_una {
            self.snd_wnd = s.window as u32;
        }
        // Text and FIN.
        let plen = s.payload.len() as u32;
        if plen > 0 || s.flags.contains(FIN) {
            self.ack_owed = true;
            let off = self.rcv_nxt.wrapping_sub(s.seq);
            if !self.peer_fin && seq_le(s.seq, self.rcv_nxt) && off <= plen {
                self.received.extend_from_slice(&s.payload[off as usize..]);
                self.rcv_nxt = s.seq.wrapping_add(plen);
                if s.flags.contains(FIN) {
                    self.peer_fin = true;
                    self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                }
            }
        }
    }
}

struct Outcome {
    frames: usize,
    lost: u64,
    duplicated: u64,
}

/// Run `n` clients in `mode` over a link with the given loss/dup percentages and seed.
/// RFC 9293 §3.7.1 (Eff.snd.MSS) on every server segment, first sends and retransmissions
/// under loss alike: at most the client's MSS less our options (12 bytes of timestamps), and
/// a frame no larger than that MSS implies (its MTU: MSS + 40, IPv6 + 60, plus Ethernet).
/// On IPv6 the SYN cookie's smallest MSS is 1220 (Linux `msstab`: IPV6_MIN_MTU - 60), so a
/// client claiming less, below what every IPv6 link carries (RFC 8200 §5), gets 1220.
#[track_caller]
fn check_eff_snd_mss(s: &Seg) {
    let options = if s.options.timestamps.is_some() {
        12
    } else {
        0
    };
    let (ip, mss) = if s.src.is_ipv6() {
        (40, CLIENT_MSS.max(1220))
    } else {
        (20, CLIENT_MSS)
    };
    assert!(
        s.payload.len() as u32 <= mss - options,
        "segment over Eff.snd.MSS: {s:?}"
    );
    assert!(
        s.frame_len as u32 <= 14 + ip + 20 + mss,
        "frame over the client's MTU: {} {s:?}",
        s.frame_len
    );
}

fn run(mode: Mode, seed: u64, n: usize, loss: u64, dup: u64) -> Outcome {
    let params = Params {
        time_wait_ms: 5_000,
        ..Params::default()
    };
    let mut cfg = config(params, mode);
    cfg.capacity = 256;
    cfg.buffers = n;
    let mut net = Net::with_config(cfg);
    let mut link = Link {
        rng: Rng::new(seed),
        loss,
        dup,
        jitter: 4,
        flight: BTreeMap::new(),
        n: 0,
        lost: 0,
        duplicated: 0,
    };
    let mut rng = Rng::new(seed);
    let start = net.clock.ms;
    let mut clients: Vec<Client> = (0..n)
        .map(|i| {
            let mut peer = if i % 4 == 3 {
                Peer::v6(10_000 + i as u16)
            } else {
                Peer::v4(10_000 + i as u16)
            };
            peer.syn_options = TcpOptions {
                mss: Some(CLIENT_MSS as u16),
                timestamps: (i % 2 == 0).then_some((0, 0)),
                sack_permitted: true,
                ..TcpOptions::default()
            };
            peer.iss = rng.next_u32();
            peer.window = 65_535;
            let len = 1 + rng.below(3_000) as usize;
            let data = match mode {
                Mode::Http => {
                    b"GET /sim HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n".to_vec()
                }
                _ => (0..len).map(|_| rng.byte()).collect(),
            };
            Client::new(peer, mode, data, start + rng.below(200))
        })
        .collect();
    let port_of = |port: u16| (port - 10_000) as usize;

    let limit = start + 600_000;
    let mut now = start;
    loop {
        // Deliver what is due.
        while let Some(p) = link.pop_due(now) {
            match p {
                Packet::ToServer(frame) => {
                    for s in net.inject(&frame) {
                        check_eff_snd_mss(&s);
                        let i = port_of(s.dst_port);
                        link.put(now, Packet::ToClient(i, s));
                    }
                }
                Packet::ToClient(i, s) => {
                    if let Some(rst) = clients[i].on_seg(now, &s) {
                        link.put(now, Packet::ToServer(rst));
                    }
                }
            }
        }
        // Clients act.
        for c in clients.iter_mut() {
            for f in c.poll(now) {
                link.put(now, Packet::ToServer(f));
            }
        }
        let all_done = clients.iter().all(Client::finished);
        if all_done && link.flight.is_empty() && net.core().active() == 0 {
            break;
        }
        if now >= limit {
            for (i, c) in clients.iter().enumerate().filter(|(_, c)| !c.finished()) {
                eprintln!(
                    "client {i}: {:?} sent {}/{} una {} nxt {} max {} fin_q {} fin_acked {} peer_fin {} got {} retries {}",
                    c.phase,
                    c.snd_nxt.wrapping_sub(c.base),
                    c.data.len(),
                    c.snd_una.wrapping_sub(c.base),
                    c.snd_nxt.wrapping_sub(c.base),
                    c.snd_max.wrapping_sub(c.base),
                    c.fin_queued,
                    c.fin_acked,
                    c.peer_fin,
                    c.received.len(),
                    c.retries
                );
            }
            panic!(
                "simulation did not settle: {:?} {:?}",
                net.states(),
                net.stack.counters().to_json()
            );
        }
        // Next event.
        let mut next = now + 1_000;
        if let Some(t) = link.next_at() {
            next = next.min(t);
        }
        for c in &clients {
            if let Some(t) = c.timer() {
                next = next.min(t);
            }
        }
        if let Some(t) = net.core().next_deadline_ms() {
            next = next.min(t);
        }
        let next = next.max(now + 1);
        for s in net.advance(next - now) {
            check_eff_snd_mss(&s);
            let i = port_of(s.dst_port);
            link.put(next, Packet::ToClient(i, s));
        }
        now = next;
    }

    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.phase, Phase::Done, "client {i} ({mode:?}, seed {seed})");
        assert!(c.fin_acked && c.peer_fin, "client {i}: both FINs exchanged");
        match mode {
            Mode::Echo => assert_eq!(c.received, c.data, "client {i}: echo complete"),
            Mode::Http => {
                let text = String::from_utf8_lossy(&c.received);
                assert!(
                    text.starts_with("HTTP/1.1 200 OK\r\n"),
                    "client {i}: {text}"
                );
                assert!(text.contains("Connection: close") && text.ends_with("synack\n"));
            }
            _ => assert!(c.received.is_empty()),
        }
    }
    net.assert_clean();
    // Every client's connection closed normally. Beyond those, a duplicate of a
    // handshake-completing segment that arrives after the server forgot the connection
    // carries a still-valid cookie and opens it again (stateless LISTEN cannot tell): such
    // connections end by the closed client's RST or by our retransmission limit.
    let c = net.stack.counters();
    let extra = c.get(Event::Established) - n as u64;
    assert_eq!(c.get(Event::Closed), n as u64, "{:?}", c.to_json());
    assert_eq!(
        c.get(Event::Reset) + c.get(Event::TimedOut),
        extra,
        "{:?}",
        c.to_json()
    );
    if extra > 0 {
        assert!(clients.iter().map(|c| c.resets_sent).sum::<u64>() > 0);
    }
    Outcome {
        frames: net.sent,
        lost: link.lost,
        duplicated: link.duplicated,
    }
}

/// RFC 9293 §3.5/§3.6 under loss: the client closes first (discard mode).
#[test]
fn sim_discard_client_closes_first() {
    for seed in [1, 0xdead_beef] {
        let o = run(Mode::Discard, seed, 40, 8, 3);
        assert!(o.lost > 0 && o.duplicated > 0 && o.frames > 0);
    }
}

/// The server closes first (`close` mode: FIN-WAIT-1/2, TIME-WAIT) under loss.
#[test]
fn sim_server_closes_first() {
    for seed in [2, 0x1234_5678_9abc] {
        run(Mode::Close, seed, 40, 8, 3);
    }
}

/// RFC 862 echo under loss: every byte comes back exactly once, in order.
#[test]
fn sim_echo() {
    for seed in [3, 0xfeed_f00d] {
        run(Mode::Echo, seed, 40, 8, 3);
    }
}

/// HTTP with `Connection: close` under loss: one full response, then the server's FIN.
#[test]
fn sim_http_connection_close() {
    for seed in [4, 0x0bad_cafe] {
        run(Mode::Http, seed, 40, 8, 3);
    }
}

/// A clean link: the same scenarios without loss, as a baseline for the harness itself.
#[test]
fn sim_clean_link_all_modes() {
    for mode in [Mode::Discard, Mode::Close, Mode::Echo, Mode::Http] {
        let o = run(mode, 5, 20, 0, 0);
        assert_eq!((o.lost, o.duplicated), (0, 0));
    }
}
