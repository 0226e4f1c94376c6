//! One server core behind a frame-level [`Stack`] on a virtual clock ([`Net`]), with the
//! checks every frame must pass whoever sends it (a scenario, a property test or a
//! fuzzer): no panic, at most one drop counter per frame (`ChallengeAckLimited` aside),
//! every reply a well-formed frame from one of our addresses (checksums included), and
//! on demand that nothing leaked (no connection, no buffer, no timer entry).
//!
//! Per-state fixtures ([`established`], [`close_wait`], [`last_ack`], [`fin_wait_1`],
//! [`fin_wait_2`], [`closing`], [`time_wait`]) drive a fresh connection into one state and
//! assert that it got there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use super::frame::{parse_reply, Reply, Seg};
use super::peer::Peer;
use super::{none, one, ACK, FIN, PSH, SYN};
use crate::counters::{DropReason, Event};
use crate::engine::{Outcome, Stack, StackConfig};
use crate::table::{Core, CoreConfig, Key};
use crate::tcp::conn::{Conn, State};
use crate::tcp::cookie::CookieJar;
use crate::tcp::responder::{HttpResponses, Mode};
use crate::tcp::{Clock, Flow, Params};
use crate::wire::{ArpOperation, NdpRepr};

/// The server's MAC in every scenario.
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The secret of the default cookie jar.
pub const SECRET: [u8; 16] = *b"synack-tcptests!";
/// The default server addresses (RFC 2544 / RFC 5180 benchmarking ranges, never routed).
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The server's IPv6 address.
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
/// Frame buffers are this large (an AF_XDP frame); longer input is cut here.
pub const FRAME: usize = 2048;
/// The virtual clock's start (ms).
pub const START_MS: u64 = 1_000_000;
/// A wall clock well inside a cookie counter period, at [`START_MS`].
pub const UNIX_START: u64 = 1_700_000_000;

/// Whether `SYNACK_FUZZ_TRACE` is set: print every frame and reply (to replay a crash).
pub fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SYNACK_FUZZ_TRACE").is_some())
}

/// One server core behind a frame-level [`Stack`], with a virtual clock.
pub struct Net {
    /// The stack under test.
    pub stack: Stack,
    /// The virtual clock.
    pub clock: Clock,
    /// Buffers the pool started with (to check for leaks).
    pub buffers: usize,
    /// How many TCP segments the server sent (for traces and property checks).
    pub sent: usize,
    addrs: Vec<IpAddr>,
    standalone: Option<[u8; 6]>,
    ports: Vec<u16>,
    buf: Vec<u8>,
    out: Vec<u8>,
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

    /// A server from all its parts.
    pub fn build(cfg: CoreConfig, jar: CookieJar, stack: StackConfig) -> Net {
        let clock = Clock {
            ms: START_MS,
            unix_secs: UNIX_START,
        };
        let core = Core::new(&cfg, jar, &clock);
        Net {
            addrs: stack.addrs.clone(),
            standalone: stack.standalone,
            stack: Stack::with_config(core, stack),
            clock,
            buffers: cfg.buffers,
            sent: 0,
            ports: cfg.listeners.iter().map(|&(p, _)| p).collect(),
            buf: vec![0; FRAME],
            out: vec![0; FRAME],
        }
    }

    /// A server on port 80 in `mode` with `params` (small table and pool).
    pub fn new(params: Params, mode: Mode) -> Net {
        Self::with_config(config(params, mode))
    }

    /// Drops counted so far, `ChallengeAckLimited` aside (RFC 5961 §7 rate limiting is
    /// counted on top of whatever else happened to the segment).
    pub fn drops_counted(&self) -> u64 {
        let c = self.stack.counters();
        c.total_drops() - c.dropped(DropReason::ChallengeAckLimited)
    }

    /// Hand one frame (cut at [`FRAME`] bytes) to the stack; return every TCP segment it
    /// sent in reply, in order. Panics (a finding) if the frame counted more than one drop
    /// or a reply is not what a correct endpoint emits.
    #[track_caller]
    pub fn inject(&mut self, frame: &[u8]) -> Vec<Seg> {
        let n = frame.len().min(FRAME);
        self.buf[..n].copy_from_slice(&frame[..n]);
        // Bytes past the frame are stale: a reply may use them, a parse must not.
        self.buf[n..].fill(0xa5);
        let before = self.drops_counted();
        let outcome = self.stack.handle(&self.clock, &mut self.buf, n);
        let counted = self.drops_counted() - before;
        assert!(counted <= 1, "one frame counted {counted} drops");
        let mut out = Vec::new();
        match outcome {
            Outcome::Done => {}
            Outcome::Reply(len) => {
                assert!(len <= FRAME, "reply of {len} bytes in a {FRAME}-byte frame");
                let buf = std::mem::take(&mut self.buf);
                out.extend(self.check_reply(&buf[..len], "reply"));
                self.buf = buf;
            }
            Outcome::Handoff(w) => panic!("handoff to worker {w} without steering"),
        }
        out.extend(self.pending());
        self.sent += out.len();
        out
    }

    /// Emit what waits in the stack (timer output, replies beyond the first) and check it.
    fn pending(&mut self) -> Vec<Seg> {
        let txs: Vec<_> = self.stack.take_pending().collect();
        let mut out = Vec::with_capacity(txs.len());
        let mut buf = std::mem::take(&mut self.out);
        for tx in &txs {
            let n = self
                .stack
                .emit(tx, &mut buf)
                .expect("a pending segment did not fit a frame");
            out.extend(self.check_reply(&buf[..n], "pending"));
        }
        self.out = buf;
        out
    }

    /// Check one frame the server sent and return its TCP segment, if it is one: a valid
    /// frame from one of our addresses, a SYN only as a SYN-ACK from a listening port (we
    /// never open connections); or an ARP reply / solicited neighbour advertisement
    /// (RFC 4861 §7.2.4, hop limit 255) for one of our addresses from our MAC.
    #[track_caller]
    fn check_reply(&self, frame: &[u8], what: &str) -> Option<Seg> {
        let reply = parse_reply(frame).unwrap_or_else(|e| panic!("malformed {what}: {e}"));
        if tracing() {
            eprintln!("  {what}: {reply:?}");
        }
        let mac = self.standalone;
        match reply {
            Reply::Tcp(s) => {
                assert!(
                    self.addrs.contains(&s.src),
                    "{what} from {} not ours",
                    s.src
                );
                if s.flags.contains(SYN) {
                    assert!(s.flags.contains(ACK), "a SYN without ACK: {s:?}");
                    assert!(self.ports.contains(&s.src_port), "SYN-ACK from {s:?}");
                }
                Some(s)
            }
            Reply::Arp { eth, arp } => {
                assert_eq!(arp.operation, ArpOperation::Reply, "ARP {what} op");
                assert!(
                    self.addrs.contains(&arp.sender_ip.into()),
                    "ARP for {arp:?}"
                );
                assert_eq!(Some(arp.sender_mac), mac, "ARP {what} with a MAC not ours");
                assert_eq!(Some(eth.src), mac, "ARP {what} from a MAC not ours");
                None
            }
            Reply::Neighbor {
                eth,
                hop_limit,
                ndp,
            } => {
                let NdpRepr::NeighborAdvert { target, .. } = ndp else {
                    panic!("ICMPv6 {what} is not an advertisement: {ndp:?}");
                };
                assert!(self.addrs.contains(&target.into()), "NA for {target}");
                assert_eq!(hop_limit, 255, "RFC 4861 §7.1: hop limit 255");
                assert_eq!(Some(eth.src), mac, "NA from a MAC not ours");
                None
            }
        }
    }

    /// Move the virtual clock `ms` forward (wall clock too) and run due timers.
    pub fn advance(&mut self, ms: u64) -> Vec<Seg> {
        self.clock.ms += ms;
        self.clock.unix_secs = UNIX_START + (self.clock.ms - START_MS) / 1000;
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

    /// Close every connection (as on shutdown); return what that sends.
    pub fn close_all(&mut self) -> Vec<Seg> {
        let clock = self.clock;
        self.stack.core.close_all(&clock);
        let out = self.pending();
        self.sent += out.len();
        out
    }

    /// [`Self::close_all`], let up to `secs` seconds of timers run (stopping once nothing
    /// is left), and check that nothing is: no connection, the pool full again, the timer
    /// wheel empty.
    #[track_caller]
    pub fn drain_and_check(&mut self, secs: usize) {
        self.close_all();
        for _ in 0..secs {
            if self.core().active() == 0 && self.core().sh.wheel.is_empty() {
                break;
            }
            self.advance(1_000);
        }
        self.assert_clean();
        assert_eq!(self.core().sh.wheel.len(), 0, "timer entries left");
    }

    /// The core.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Preset;

    /// RFC 7323 §1.3 / §2.2 and RFC 2018 §2: each preset client completes the handshake,
    /// and the SYN-ACK offers timestamps only where the SYN did; window scaling and SACK
    /// only where the SYN offered them with timestamps, whose TSval carries them in a
    /// cookie (Linux `cookie_init_timestamp`).
    #[test]
    fn presets_handshake_and_get_only_what_they_offered_rfc7323_1_3() {
        for preset in Preset::ALL {
            let mut net = Net::new(Params::default(), Mode::Echo);
            let mut peer = Peer::v4(40_100).preset(preset);
            let (synack, out) = peer.connect(&mut net);
            none(out);
            let offered = preset.syn_options(0);
            let o = synack.options;
            assert_eq!(
                o.timestamps.is_some(),
                offered.timestamps.is_some(),
                "{preset:?}"
            );
            let ts = offered.timestamps.is_some();
            assert_eq!(
                o.window_scale.is_some(),
                ts && offered.window_scale.is_some()
            );
            assert_eq!(o.sack_permitted, ts && offered.sack_permitted, "{preset:?}");
            assert_eq!(peer.ts, offered.timestamps.is_some());
            let echo = peer.tx(&mut net, ACK | PSH, b"ping");
            assert_eq!(one(echo).payload, b"ping", "{preset:?}");
        }
        assert_eq!(Preset::Linux.window(), 502);
        assert_eq!(Preset::Windows.window(), 251);
        assert_eq!(Preset::Bare.window(), 65_535);
    }
}
