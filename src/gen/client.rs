//! The generator's client state machine, sans-IO: frames and `now` (microseconds) in,
//! [`Out`] segments out.
//!
//! One connection per source tuple, keyed by (source address, source port) in a hashbrown
//! map. The path, from the client's side of RFC 9293 §3.10.7:
//!
//! ```text
//! SYN-SENT ──SYN-ACK──▶ ESTABLISHED ──(reply | no request) client-first──▶ FIN-WAIT-1 ──▶ FIN-WAIT-2 ──FIN──▶ done
//!                            └──server FIN (server-first, or the server closed anyway)──▶ LAST-ACK ──ACK──▶ done
//! ```
//!
//! "done" forgets the connection at once: each tuple is used once per run, so there is no
//! client TIME-WAIT (the 2·MSL wait protects a *reused* tuple from old duplicates; a tuple
//! that is never reused needs none). The SYN is retransmitted after `syn_rto_us` (doubling,
//! at most `syn_retries` times); nothing else is retransmitted, so on a lossy path a lost
//! request or FIN ends as a timeout failure, counted as such.
//!
//! `--syn-flood` keeps no state at all: the ISS is a keyed hash of the tuple, so a SYN-ACK
//! is recognised as the answer to one of our SYNs by its acknowledgment number alone.

use crate::engine::emit_frame;
use crate::gen::SourceRange;
use crate::rng::mix;
use crate::table::L2Path;
use crate::tcp::{Flow, Link, Payload, Segment, Tx};
use crate::wire::{
    ArpOperation, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, SeqNumber, TcpFlags, TcpOptions, TcpPacket, TcpRepr,
};
use hashbrown::HashMap;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;

/// IP protocol number of TCP.
const PROTO_TCP: u8 = 6;

/// Which side closes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseOrder {
    /// We send FIN once the handshake (and the reply, if a request was sent) is done.
    #[default]
    ClientFirst,
    /// We wait for the server's FIN, then answer with ours.
    ServerFirst,
}

/// Steady concurrency: connections stay open until the run ends (or the server closes
/// them), each idle or sending the request every `interval_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Time from one request to the next on a connection, µs; `None` keeps it idle.
    pub interval_us: Option<u64>,
}

/// What the generator does, per connection.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The address connected to.
    pub target: IpAddr,
    /// The port connected to.
    pub target_port: u16,
    /// The source tuples.
    pub sources: SourceRange,
    /// Bytes sent once established (e.g. an HTTP GET), or none.
    pub request: Option<Vec<u8>>,
    /// Reply bytes that make a reply complete (at least 1).
    pub expect_bytes: u32,
    /// Who closes first.
    pub close: CloseOrder,
    /// Send SYNs only and count SYN-ACKs; keep no state.
    pub syn_flood: bool,
    /// MSS option on our SYN.
    pub mss: u16,
    /// Receive window we advertise (unscaled: we offer no window scale).
    pub window: u16,
    /// First SYN retransmission timeout, microseconds (RFC 6298 §2.1: 1 s).
    pub syn_rto_us: u64,
    /// SYN retransmissions before the attempt fails.
    pub syn_retries: u8,
    /// A connection past SYN-SENT that sees no progress for this long fails.
    pub idle_timeout_us: u64,
    /// Key of the ISS hash.
    pub iss_secret: u64,
    /// Steady concurrency: hold connections open instead of closing after the handshake
    /// (and the reply); `None` for the connection-rate modes.
    pub hold: Option<Hold>,
}

impl ClientConfig {
    /// Defaults for a target: client-first close, no request, 1 s SYN RTO, 2 retries,
    /// 3 s idle timeout.
    pub fn new(target: IpAddr, target_port: u16, sources: SourceRange) -> Self {
        ClientConfig {
            target,
            target_port,
            sources,
            request: None,
            expect_bytes: 1,
            close: CloseOrder::ClientFirst,
            syn_flood: false,
            mss: 1460,
            window: 65_535,
            syn_rto_us: 1_000_000,
            syn_retries: 2,
            idle_timeout_us: 3_000_000,
            iss_secret: 0x5eed_5eed_5eed_5eed,
            hold: None,
        }
    }
}

crate::counters::counter_enum! {
    /// Why the generator dropped a received frame. `Copy`, indexes [`GenStats::drops`].
    GenDrop {
        /// Did not parse (truncated, bad checksum, bad options, fragment).
        Malformed => "malformed",
        /// Not TCP, and not an ARP request for a source address.
        NotTcp => "not_tcp",
        /// TCP not from the target to one of our tuples.
        NotOurs => "not_ours",
        /// No connection for the tuple (late after a timeout, or a duplicate).
        NoConnection => "no_connection",
        /// SYN-SENT: an ACK that does not acknowledge our SYN (answered with RST).
        BadAck => "bad_ack",
        /// A segment that does not fit the connection's state.
        Unexpected => "unexpected",
        /// Data not at RCV.NXT (answered with a duplicate ACK).
        OutOfOrder => "out_of_order",
    }
}

/// Counts of what happened, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GenStats {
    /// Connections (or flood SYNs) started: first SYNs sent.
    pub attempted: u64,
    /// SYNs sent, retransmissions included.
    pub syn_sent: u64,
    /// SYN retransmissions.
    pub syn_retransmits: u64,
    /// SYN-ACKs that acknowledged one of our SYNs.
    pub synack_received: u64,
    /// Connections that reached ESTABLISHED.
    pub established: u64,
    /// Complete replies to the request.
    pub replies: u64,
    /// Connections that closed cleanly (and got their reply, when a request was sent).
    pub completed: u64,
    /// Connections the server reset.
    pub failed_reset: u64,
    /// Connections that ran out of SYN retries or went idle.
    pub failed_timeout: u64,
    /// Connections closed cleanly without a complete reply to the request.
    pub failed_no_reply: u64,
    /// Connections still open when the run ended.
    pub unfinished: u64,
    /// ARP requests for a source address answered.
    pub arp_replies: u64,
    /// Requests sent (steady mode sends one every interval on each connection).
    pub requests: u64,
    /// Received frames, by drop reason (index: [`GenDrop`]).
    pub drops: [u64; GenDrop::COUNT],
}

impl GenStats {
    /// Connections that failed, for any reason.
    pub fn failed(&self) -> u64 {
        self.failed_reset + self.failed_timeout + self.failed_no_reply
    }

    /// The drop counters by name.
    pub fn drops_by_name(&self) -> Vec<(&'static str, u64)> {
        GenDrop::ALL
            .iter()
            .map(|d| (d.label(), self.drops[*d as usize]))
            .collect()
    }
}

/// A source tuple: the key of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Source address.
    pub addr: IpAddr,
    /// Source port.
    pub port: u16,
}

/// Something to transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// A TCP segment from tuple `key` to the target.
    Tcp {
        /// Source tuple.
        key: Key,
        /// Control bits.
        flags: TcpFlags,
        /// SEG.SEQ.
        seq: SeqNumber,
        /// SEG.ACK.
        ack: SeqNumber,
        /// Carries the request as its text.
        request: bool,
    },
    /// An ARP reply for one of our source addresses.
    ArpReply {
        /// The source address asked for.
        ip: Ipv4Addr,
        /// The requester's MAC.
        to_mac: [u8; 6],
        /// The requester's address.
        to_ip: Ipv4Addr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SynSent,
    Established,
    FinWait1,
    FinWait2,
    LastAck,
}

#[derive(Debug, Clone, Copy)]
struct Conn {
    state: State,
    iss: SeqNumber,
    snd_nxt: SeqNumber,
    rcv_nxt: SeqNumber,
    /// When the first SYN left, µs.
    t_syn: u64,
    /// The one pending deadline, µs.
    deadline: u64,
    retries: u8,
    /// Reply bytes received (since the last request, in steady mode).
    got: u32,
    replied: bool,
    /// Steady mode: when the last request left, µs.
    t_req: u64,
    /// Steady mode: a request is waiting for its reply.
    awaiting: bool,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Completed,
    Reset,
    /// Closed cleanly, but the request got no complete reply.
    NoReply,
}

/// The client state machine.
pub struct Client {
    cfg: ClientConfig,
    conns: HashMap<Key, Conn>,
    /// (deadline µs, tuple); stale entries (the connection's deadline moved) are skipped.
    timers: BinaryHeap<Reverse<(u64, Key)>>,
    next_tuple: u64,
    out: Vec<Out>,
    stats: GenStats,
    /// SYN → SYN-ACK, µs.
    handshake: Histogram<u64>,
    /// SYN → clean close, µs.
    lifetime: Histogram<u64>,
    /// µs of the last completion, for the completion rate.
    last_done_us: u64,
    /// Request → complete reply, µs (steady mode).
    request: Histogram<u64>,
    /// Steady mode: the run is ending; held connections are being closed.
    closing: bool,
}

/// A histogram of microseconds from 1 µs to 10 min with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that satisfy hdrhistogram's rules (low >= 1, high >= 2 * low).
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

impl Client {
    /// A client with nothing sent yet.
    pub fn new(mut cfg: ClientConfig) -> Client {
        cfg.expect_bytes = cfg.expect_bytes.max(1);
        Client {
            cfg,
            conns: HashMap::new(),
            timers: BinaryHeap::new(),
            next_tuple: 0,
            out: Vec::with_capacity(256),
            stats: GenStats::default(),
            handshake: new_histogram(),
            lifetime: new_histogram(),
            last_done_us: 0,
            request: new_histogram(),
            closing: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The counts so far.
    pub fn stats(&self) -> &GenStats {
        &self.stats
    }

    /// SYN → SYN-ACK latencies, µs.
    pub fn handshake_histogram(&self) -> &Histogram<u64> {
        &self.handshake
    }

    /// SYN → clean close latencies, µs.
    pub fn lifetime_histogram(&self) -> &Histogram<u64> {
        &self.lifetime
    }

    /// Request → complete reply latencies, µs (steady mode).
    pub fn request_histogram(&self) -> &Histogram<u64> {
        &self.request
    }

    /// Connections in ESTABLISHED now (steady mode: the connections held open).
    pub fn active(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.state == State::Established)
            .count()
    }

    /// Steady mode, end of the run: send FIN on every held connection (RFC 9293 §3.10.4
    /// CLOSE in ESTABLISHED) and close the ones still opening as soon as they are up.
    pub fn close_all(&mut self, now_us: u64) {
        self.closing = true;
        let keys: Vec<Key> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state == State::Established)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let Some(mut conn) = self.conns.get(&key).copied() else {
                continue;
            };
            self.send_fin(key, &mut conn, State::FinWait1);
            self.set_deadline(key, &mut conn, now_us + self.cfg.idle_timeout_us);
            self.conns.insert(key, conn);
        }
    }

    /// The hold settings, unless the run is ending.
    fn holding(&self) -> Option<Hold> {
        self.cfg.hold.filter(|_| !self.closing)
    }

    /// Queue the request (PSH|ACK at `snd_nxt`) and advance `snd_nxt` past it; false when
    /// the run sends none.
    fn push_request(&mut self, key: Key, conn: &mut Conn) -> bool {
        let Some(len) = self.cfg.request.as_ref().map(|r| r.len() as u32) else {
            return false;
        };
        self.out.push(Out::Tcp {
            key,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            seq: conn.snd_nxt,
            ack: conn.rcv_nxt,
            request: true,
        });
        conn.snd_nxt = conn.snd_nxt.add(len);
        true
    }

    /// Steady mode: send the request on a held connection and wait for its reply.
    fn send_request(&mut self, now_us: u64, key: Key, conn: &mut Conn) {
        if !self.push_request(key, conn) {
            return;
        }
        conn.t_req = now_us;
        conn.awaiting = true;
        conn.got = 0;
        self.stats.requests += 1;
    }

    /// Steady mode: the next deadline of a held connection: the reply's idle timeout while
    /// a request waits, else the next request (none when idle).
    fn hold_deadline(&mut self, now_us: u64, key: Key, conn: &mut Conn, hold: Hold) {
        if conn.awaiting {
            self.set_deadline(key, conn, now_us + self.cfg.idle_timeout_us);
        } else if let (Some(every), Some(_)) = (hold.interval_us, &self.cfg.request) {
            self.set_deadline(key, conn, (conn.t_req + every).max(now_us));
        } else {
            conn.deadline = u64::MAX; // idle: no timer
        }
    }

    /// When the last connection completed, µs (0 if none has).
    pub fn last_done_us(&self) -> u64 {
        self.last_done_us
    }

    /// Connections open now.
    pub fn in_flight(&self) -> usize {
        self.conns.len()
    }

    /// Tuples not used yet.
    pub fn tuples_left(&self) -> u64 {
        self.cfg.sources.len().saturating_sub(self.next_tuple)
    }

    /// Segments waiting to be sent.
    pub fn has_out(&self) -> bool {
        !self.out.is_empty()
    }

    /// Take the segments to send, in order.
    pub fn take_out(&mut self) -> std::vec::Drain<'_, Out> {
        self.out.drain(..)
    }

    /// End of run: whatever is still open counts as unfinished and is forgotten.
    pub fn finish(&mut self) {
        self.stats.unfinished += self.conns.len() as u64;
        self.conns.clear();
        self.timers.clear();
    }

    fn iss(&self, key: &Key) -> SeqNumber {
        let a = match key.addr {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let v = u128::from(a);
                (v as u64) ^ ((v >> 64) as u64)
            }
        };
        SeqNumber(mix(self.cfg.iss_secret ^ (a << 16) ^ u64::from(key.port)) as u32)
    }

    fn drop(&mut self, d: GenDrop) {
        self.stats.drops[d as usize] += 1;
    }

    fn set_deadline(&mut self, key: Key, conn: &mut Conn, at: u64) {
        conn.deadline = at;
        self.timers.push(Reverse((at, key)));
    }

    fn tcp(&mut self, key: Key, flags: TcpFlags, seq: SeqNumber, ack: SeqNumber) {
        self.out.push(Out::Tcp {
            key,
            flags,
            seq,
            ack,
            request: false,
        });
    }

    /// Start the next tuple: send its SYN (and, unless flooding, remember it). Returns
    /// `false` when every tuple has been used.
    ///
    /// RFC 9293 §3.10.1: "A SYN segment of the form <SEQ=ISS><CTL=SYN> is sent. Set SND.UNA
    /// to ISS, SND.NXT to ISS+1, enter SYN-SENT state".
    pub fn open(&mut self, now_us: u64) -> bool {
        let Some((addr, port)) = self.cfg.sources.tuple(self.next_tuple) else {
            return false;
        };
        self.next_tuple += 1;
        let key = Key { addr, port };
        let iss = self.iss(&key);
        self.tcp(key, TcpFlags::SYN, iss, SeqNumber(0));
        self.stats.attempted += 1;
        self.stats.syn_sent += 1;
        if self.cfg.syn_flood {
            return true;
        }
        let mut conn = Conn {
            state: State::SynSent,
            iss,
            snd_nxt: iss.add(1),
            rcv_nxt: SeqNumber(0),
            t_syn: now_us,
            deadline: 0,
            retries: 0,
            got: 0,
            replied: false,
            t_req: 0,
            awaiting: false,
        };
        self.set_deadline(key, &mut conn, now_us + self.cfg.syn_rto_us);
        self.conns.insert(key, conn);
        true
    }

    /// Handle one received frame.
    pub fn on_frame(&mut self, now_us: u64, frame: &[u8]) {
        let eth = match EthernetFrame::new_checked(frame) {
            Ok(f) => f,
            Err(_) => return self.drop(GenDrop::Malformed),
        };
        let src_mac = eth.src_addr();
        match eth.ethertype() {
            EtherType::IPV4 => self.on_ipv4(now_us, eth.payload()),
            EtherType::IPV6 => self.on_ipv6(now_us, eth.payload()),
            EtherType::ARP => self.on_arp(eth.payload(), src_mac),
            _ => self.drop(GenDrop::NotTcp),
        }
    }

    /// RFC 826: answer a request for one of our source addresses.
    fn on_arp(&mut self, payload: &[u8], _src_mac: [u8; 6]) {
        let arp = match ArpRepr::parse(payload) {
            Ok(a) => a,
            Err(_) => return self.drop(GenDrop::Malformed),
        };
        if arp.operation != ArpOperation::Request
            || !self.cfg.sources.has_addr(&IpAddr::V4(arp.target_ip))
        {
            return self.drop(GenDrop::NotOurs);
        }
        self.stats.arp_replies += 1;
        self.out.push(Out::ArpReply {
            ip: arp.target_ip,
            to_mac: arp.sender_mac,
            to_ip: arp.sender_ip,
        });
    }

    fn on_ipv4(&mut self, now_us: u64, bytes: &[u8]) {
        let p = match Ipv4Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(_) => return self.drop(GenDrop::Malformed),
        };
        let ip = match Ipv4Repr::parse(&p, true) {
            Ok(r) => r,
            Err(_) => return self.drop(GenDrop::Malformed),
        };
        if ip.protocol != PROTO_TCP {
            return self.drop(GenDrop::NotTcp);
        }
        let l4 = p.header_len();
        let Some(tcp) = bytes.get(l4..l4 + ip.payload_len) else {
            return self.drop(GenDrop::Malformed);
        };
        self.on_tcp(now_us, IpAddr::V4(ip.src), IpAddr::V4(ip.dst), tcp);
    }

    fn on_ipv6(&mut self, now_us: u64, bytes: &[u8]) {
        let p = match Ipv6Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(_) => return self.drop(GenDrop::Malformed),
        };
        let ip = match Ipv6Repr::parse(&p) {
            Ok(r) => r,
            Err(_) => return self.drop(GenDrop::Malformed),
        };
        if ip.next_header != PROTO_TCP {
            return self.drop(GenDrop::NotTcp);
        }
        let l4 = Ipv6Repr::HEADER_LEN;
        let Some(tcp) = bytes.get(l4..l4 + ip.payload_len) else {
            return self.drop(GenDrop::Malformed);
        };
        self.on_tcp(now_us, IpAddr::V6(ip.src), IpAddr::V6(ip.dst), tcp);
    }

    fn on_tcp(&mut self, now_us: u64, src: IpAddr, dst: IpAddr, bytes: &[u8]) {
        let p = match TcpPacket::new_checked(bytes) {
            Ok(p) => p,
            Err(_) => return self.drop(GenDrop::Malformed),
        };
        let seg = match TcpRepr::parse(&p, &src, &dst, true) {
            Ok(s) => s,
            Err(_) => return self.drop(GenDrop::Malformed),
        };
        if src != self.cfg.target
            || seg.src_port != self.cfg.target_port
            || !self.cfg.sources.has_addr(&dst)
            || !self.cfg.sources.has_port(seg.dst_port)
        {
            return self.drop(GenDrop::NotOurs);
        }
        let key = Key {
            addr: dst,
            port: seg.dst_port,
        };
        if self.cfg.syn_flood {
            return self.on_flood_reply(&key, &seg);
        }
        let Some(mut conn) = self.conns.get(&key).copied() else {
            return self.drop(GenDrop::NoConnection);
        };
        let end = match conn.state {
            State::SynSent => self.syn_sent(now_us, key, &mut conn, &seg),
            _ => self.synchronized(now_us, key, &mut conn, &seg),
        };
        match end {
            Some(e) => self.end(now_us, key, &conn, e),
            None => {
                if let Some(c) = self.conns.get_mut(&key) {
                    *c = conn;
                }
            }
        }
    }

    /// Flood mode: a SYN-ACK whose ACK is our keyed ISS + 1 answers one of our SYNs.
    fn on_flood_reply(&mut self, key: &Key, seg: &TcpRepr<'_>) {
        let ours = seg.ack == self.iss(key).add(1);
        if seg.flags.contains(TcpFlags::SYN | TcpFlags::ACK) && ours {
            self.stats.synack_received += 1;
        } else if seg.flags.contains(TcpFlags::RST) && ours {
            self.stats.failed_reset += 1;
        } else {
            self.drop(GenDrop::Unexpected);
        }
    }

    /// RFC 9293 §3.10.7.3, SYN-SENT.
    fn syn_sent(
        &mut self,
        now_us: u64,
        key: Key,
        conn: &mut Conn,
        seg: &TcpRepr<'_>,
    ) -> Option<End> {
        let has_ack = seg.flags.contains(TcpFlags::ACK);
        // RFC 9293 §3.10.7.3: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless
        // the RST bit is set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>".
        if has_ack && seg.ack != conn.snd_nxt {
            self.drop(GenDrop::BadAck);
            if !seg.flags.contains(TcpFlags::RST) {
                self.tcp(key, TcpFlags::RST, seg.ack, SeqNumber(0));
            }
            return None;
        }
        if seg.flags.contains(TcpFlags::RST) {
            // RFC 9293 §3.10.7.3: "If the ACK was acceptable, then signal to the user
            // 'error: connection reset', drop the segment, enter CLOSED state". Without
            // an ACK: "drop the segment and return".
            if has_ack {
                return Some(End::Reset);
            }
            self.drop(GenDrop::Unexpected);
            return None;
        }
        if !(seg.flags.contains(TcpFlags::SYN) && has_ack) {
            // A bare SYN (simultaneous open) or a segment without SYN: not a server reply.
            self.drop(GenDrop::Unexpected);
            return None;
        }
        // RFC 9293 §3.10.7.3: "RCV.NXT is set to SEG.SEQ+1, IRS is set to SEG.SEQ. SND.UNA
        // should be advanced to equal SEG.ACK ... If SND.UNA > ISS (our SYN has been ACKed),
        // change the connection state to ESTABLISHED, form an ACK segment
        // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
        conn.rcv_nxt = seg.seq.add(1);
        conn.state = State::Established;
        self.stats.synack_received += 1;
        self.stats.established += 1;
        let _ = self
            .handshake
            .record(now_us.saturating_sub(conn.t_syn).max(1));
        self.tcp(key, TcpFlags::ACK, conn.snd_nxt, conn.rcv_nxt);
        if let Some(hold) = self.holding() {
            // Steady mode: keep it open; the first request (if any) goes at once.
            if hold.interval_us.is_some() {
                self.send_request(now_us, key, conn);
            }
            self.hold_deadline(now_us, key, conn, hold);
            return None;
        }
        if !self.push_request(key, conn) && self.cfg.close == CloseOrder::ClientFirst {
            self.send_fin(key, conn, State::FinWait1);
        }
        self.set_deadline(key, conn, now_us + self.cfg.idle_timeout_us);
        None
    }

    /// Send our FIN (RFC 9293 §3.10.4 CLOSE: "form a FIN segment and send it") and move to
    /// `next` (FIN-WAIT-1 when we close first, LAST-ACK after the server's FIN).
    fn send_fin(&mut self, key: Key, conn: &mut Conn, next: State) {
        self.tcp(
            key,
            TcpFlags::FIN | TcpFlags::ACK,
            conn.snd_nxt,
            conn.rcv_nxt,
        );
        conn.snd_nxt = conn.snd_nxt.add(1);
        conn.state = next;
    }

    /// RFC 9293 §3.10.7.4, the synchronized states, for what a client needs: RST, a
    /// retransmitted SYN-ACK, ACK of our FIN, in-order text, the server's FIN.
    fn synchronized(
        &mut self,
        now_us: u64,
        key: Key,
        conn: &mut Conn,
        seg: &TcpRepr<'_>,
    ) -> Option<End> {
        if let ControlFlow::Break(end) = self.check_control(key, conn, seg) {
            return end;
        }
        if let Some(end) = self.ack_of_our_fin(conn, seg) {
            return Some(end);
        }
        let text = self.accept_text(key, conn, seg)?;
        let hold = self.holding();
        self.note_reply(now_us, conn, hold.is_some());
        if seg.flags.contains(TcpFlags::FIN) {
            if let Some(end) = self.on_fin(key, conn) {
                return Some(end);
            }
        } else if text > 0 {
            self.ack_text(key, conn, hold.is_none());
        }
        match hold {
            Some(h) if conn.state == State::Established => self.hold_deadline(now_us, key, conn, h),
            _ => self.set_deadline(key, conn, now_us + self.cfg.idle_timeout_us),
        }
        None
    }

    /// The control checks of RFC 9293 §3.10.7.4 before the ACK: a RST, a SYN, no ACK.
    /// `Break` ends the segment's processing (with how the connection ended, if it did).
    fn check_control(
        &mut self,
        key: Key,
        conn: &Conn,
        seg: &TcpRepr<'_>,
    ) -> ControlFlow<Option<End>> {
        // RFC 9293 §3.10.7.4 second check (RFC 5961 §3.2): a RST is accepted when its
        // sequence number is exactly RCV.NXT; in the window otherwise it asks for a
        // challenge ACK, which a generator can skip: the server will send an exact one.
        if seg.flags.contains(TcpFlags::RST) {
            if seg.seq == conn.rcv_nxt {
                return ControlFlow::Break(Some(End::Reset));
            }
            self.drop(GenDrop::Unexpected);
            return ControlFlow::Break(None);
        }
        if seg.flags.contains(TcpFlags::SYN) {
            // Our ACK of the SYN-ACK was lost and the server retransmitted: RFC 9293
            // §3.10.7.4 first check, an unacceptable segment gets <SEQ=SND.NXT><ACK=RCV.NXT>.
            self.drop(GenDrop::Unexpected);
            self.tcp(key, TcpFlags::ACK, conn.snd_nxt, conn.rcv_nxt);
            return ControlFlow::Break(None);
        }
        if !seg.flags.contains(TcpFlags::ACK) {
            // RFC 9293 §3.10.7.4 fifth check: "if the ACK bit is off, drop the segment".
            self.drop(GenDrop::Unexpected);
            return ControlFlow::Break(None);
        }
        ControlFlow::Continue(())
    }

    /// RFC 9293 §3.10.7.4 fifth check, for our FIN: acknowledged when SEG.ACK reaches
    /// SND.NXT after it was sent. In LAST-ACK that ends the connection.
    fn ack_of_our_fin(&self, conn: &mut Conn, seg: &TcpRepr<'_>) -> Option<End> {
        let fin_acked = seg.ack == conn.snd_nxt;
        match conn.state {
            // FIN-WAIT-1: "if the FIN segment is now acknowledged, then enter FIN-WAIT-2
            // and continue processing in that state."
            State::FinWait1 if fin_acked => conn.state = State::FinWait2,
            // LAST-ACK: "The only thing that can arrive in this state is an acknowledgment of
            // our FIN. If our FIN is now acknowledged, delete the TCB".
            State::LastAck if fin_acked => return Some(self.clean_close(conn)),
            _ => {}
        }
        None
    }

    /// RFC 9293 §3.10.7.4 seventh check, segment text: in order only. Returns the text
    /// length taken, or `None` for a segment out of order (dropped, answered with a
    /// duplicate ACK).
    fn accept_text(&mut self, key: Key, conn: &mut Conn, seg: &TcpRepr<'_>) -> Option<u32> {
        let text = seg.payload.len() as u32;
        if text > 0 || seg.flags.contains(TcpFlags::FIN) {
            if seg.seq != conn.rcv_nxt {
                self.drop(GenDrop::OutOfOrder);
                self.tcp(key, TcpFlags::ACK, conn.snd_nxt, conn.rcv_nxt);
                return None;
            }
            conn.rcv_nxt = conn.rcv_nxt.add(text);
            conn.got = conn.got.saturating_add(text);
        }
        Some(text)
    }

    /// Count a reply once the expected bytes have arrived: in steady mode each awaited
    /// reply (with its request latency), otherwise the connection's one reply.
    fn note_reply(&mut self, now_us: u64, conn: &mut Conn, steady: bool) {
        if conn.got < self.cfg.expect_bytes {
            return;
        }
        if steady && conn.awaiting {
            conn.awaiting = false;
            conn.replied = true;
            self.stats.replies += 1;
            let _ = self
                .request
                .record(now_us.saturating_sub(conn.t_req).max(1));
        } else if !steady && !conn.replied && self.cfg.request.is_some() {
            conn.replied = true;
            self.stats.replies += 1;
        }
    }

    /// RFC 9293 §3.10.7.4 eighth check, the server's FIN: "advance RCV.NXT over the FIN,
    /// and send an acknowledgment for the FIN." Returns how the connection ended, if it did.
    fn on_fin(&mut self, key: Key, conn: &mut Conn) -> Option<End> {
        conn.rcv_nxt = conn.rcv_nxt.add(1);
        match conn.state {
            // The server closed first: acknowledge its FIN on ours (CLOSE-WAIT →
            // LAST-ACK in one segment: a CLOSE-WAIT client has nothing left to send).
            State::Established => self.send_fin(key, conn, State::LastAck),
            // FIN-WAIT-2: "Enter the TIME-WAIT state" — the tuple is never reused, so
            // acknowledge and forget (no client TIME-WAIT).
            State::FinWait2 => {
                self.tcp(key, TcpFlags::ACK, conn.snd_nxt, conn.rcv_nxt);
                return Some(self.clean_close(conn));
            }
            // FIN-WAIT-1 with our FIN not yet acknowledged: simultaneous close
            // (CLOSING); what is left is the ACK of our FIN, as in LAST-ACK.
            State::FinWait1 => {
                self.tcp(key, TcpFlags::ACK, conn.snd_nxt, conn.rcv_nxt);
                conn.state = State::LastAck;
            }
            State::LastAck | State::SynSent => {
                self.tcp(key, TcpFlags::ACK, conn.snd_nxt, conn.rcv_nxt);
            }
        }
        None
    }

    /// Acknowledge in-order text; once a one-shot connection has its reply and we close
    /// first, close it (FIN-WAIT-1).
    fn ack_text(&mut self, key: Key, conn: &mut Conn, one_shot: bool) {
        self.tcp(key, TcpFlags::ACK, conn.snd_nxt, conn.rcv_nxt);
        if one_shot
            && conn.replied
            && conn.state == State::Established
            && self.cfg.close == CloseOrder::ClientFirst
        {
            self.send_fin(key, conn, State::FinWait1);
        }
    }

    /// A clean close: completed, unless a request went unanswered.
    fn clean_close(&self, conn: &Conn) -> End {
        if self.cfg.request.is_some() && !conn.replied {
            End::NoReply
        } else {
            End::Completed
        }
    }

    fn end(&mut self, now_us: u64, key: Key, conn: &Conn, how: End) {
        self.conns.remove(&key);
        match how {
            End::Completed => {
                self.stats.completed += 1;
                self.last_done_us = now_us;
                let _ = self
                    .lifetime
                    .record(now_us.saturating_sub(conn.t_syn).max(1));
            }
            End::Reset => self.stats.failed_reset += 1,
            End::NoReply => self.stats.failed_no_reply += 1,
        }
    }

    /// Run due timers: SYN retransmissions and idle timeouts.
    pub fn on_timers(&mut self, now_us: u64) {
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now_us {
                break;
            }
            self.timers.pop();
            let Some(mut conn) = self.conns.get(&key).copied() else {
                continue;
            };
            if conn.deadline != at {
                continue; // superseded
            }
            if conn.state == State::SynSent && conn.retries < self.cfg.syn_retries {
                // RFC 6298 §5.5: "The host MUST set RTO <- RTO * 2 ("back off the timer")".
                conn.retries += 1;
                self.stats.syn_sent += 1;
                self.stats.syn_retransmits += 1;
                self.tcp(key, TcpFlags::SYN, conn.iss, SeqNumber(0));
                let rto = self.cfg.syn_rto_us << conn.retries;
                self.set_deadline(key, &mut conn, now_us + rto);
                if let Some(c) = self.conns.get_mut(&key) {
                    *c = conn;
                }
                continue;
            }
            if let Some(hold) = self.holding() {
                if conn.state == State::Established && !conn.awaiting {
                    // Steady mode: time for the next request on this held connection.
                    self.send_request(now_us, key, &mut conn);
                    self.hold_deadline(now_us, key, &mut conn, hold);
                    if let Some(c) = self.conns.get_mut(&key) {
                        *c = conn;
                    }
                    continue;
                }
            }
            if conn.state != State::SynSent {
                // Tell the server to let go of its half of the connection.
                self.tcp(key, TcpFlags::RST, conn.snd_nxt, SeqNumber(0));
            }
            self.conns.remove(&key);
            self.stats.failed_timeout += 1;
        }
    }

    /// Write `out` as a complete Ethernet frame into `buf`, on the path `l2` (our MAC, the
    /// target's MAC). Returns its length, or `None` when it does not fit.
    #[must_use = "`None` means no frame was written"]
    pub fn emit(&self, out: &Out, l2: &L2Path, buf: &mut [u8]) -> Option<usize> {
        match *out {
            Out::Tcp {
                key,
                flags,
                seq,
                ack,
                request,
            } => {
                let flow = match (key.addr, self.cfg.target) {
                    (IpAddr::V4(local), IpAddr::V4(remote)) => Flow::V4 {
                        local,
                        remote,
                        local_port: key.port,
                        remote_port: self.cfg.target_port,
                    },
                    (IpAddr::V6(local), IpAddr::V6(remote)) => Flow::V6 {
                        local,
                        remote,
                        local_port: key.port,
                        remote_port: self.cfg.target_port,
                    },
                    _ => return None,
                };
                let options = if flags.contains(TcpFlags::SYN) {
                    TcpOptions {
                        mss: Some(self.cfg.mss),
                        ..TcpOptions::default()
                    }
                } else {
                    TcpOptions::default()
                };
                let window = if flags.contains(TcpFlags::RST) {
                    0
                } else {
                    self.cfg.window
                };
                let tx = Tx {
                    flow,
                    link: Link::Reply,
                    seg: Segment {
                        flags,
                        seq,
                        ack,
                        window,
                        options,
                        payload: Payload::Empty,
                    },
                };
                let payload = match (&self.cfg.request, request) {
                    (Some(r), true) => r.as_slice(),
                    _ => &[],
                };
                emit_frame(&tx, l2, payload, buf)
            }
            Out::ArpReply { ip, to_mac, to_ip } => {
                let eth = EthernetRepr {
                    src: l2.local_mac,
                    dst: to_mac,
                    vlan: None,
                    ethertype: EtherType::ARP,
                };
                let hl = eth.header_len();
                let total = hl + ArpRepr::LEN;
                if buf.len() < total.max(60) {
                    return None;
                }
                eth.emit(buf);
                ArpRepr {
                    operation: ArpOperation::Reply,
                    sender_mac: l2.local_mac,
                    sender_ip: ip,
                    target_mac: to_mac,
                    target_ip: to_ip,
                }
                .emit(&mut buf[hl..total]);
                buf[total..60].fill(0);
                Some(60)
            }
        }
    }
}
