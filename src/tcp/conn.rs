//! The transmission control block and the synchronized states of RFC 9293 §3.10.7.4.
//!
//! A [`Conn`] exists only from the moment a cookie ACK verifies (ESTABLISHED) until the
//! connection is forgotten; LISTEN and SYN-RECEIVED keep no state (see [`super::listen`]).
//! [`Conn::on_segment`] runs the RFC's checks in their order, one function each: PAWS,
//! sequence, RST, SYN, ACK, text, FIN; then lets the responder send. Every function either
//! changes the TCB or queues segments into [`Ctx::out`]; none reads a clock.

use super::responder::{self, BufferPool, HttpResponses, Mode, Wait, NO_BUF};
use super::timer::Timer;
use super::{Params, Payload, Segment, Tick, TsVal};
use crate::counters::{Counters, DropReason, Event};
use crate::wire::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};
use strum::EnumCount as _;

/// Connection states that have a TCB (RFC 9293 §3.3.2). LISTEN, SYN-RECEIVED and CLOSED
/// have none: SYN cookies keep the first two stateless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumCount)]
#[repr(u8)]
pub enum State {
    /// Data flows both ways.
    Established,
    /// We sent FIN; it is not yet acknowledged.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer sent FIN; we may still send.
    CloseWait,
    /// Both sent FIN at once; ours is not yet acknowledged.
    Closing,
    /// We sent FIN after the peer's; waiting for its ACK.
    LastAck,
    /// Both FINs acknowledged; absorbing stray segments for 2*MSL.
    TimeWait,
}

impl State {
    /// Every state, for per-state gauges (its length is the derived number of states, so
    /// a new state does not compile until it is listed here).
    pub const ALL: [State; State::COUNT] = [
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// Stable label.
    pub fn label(self) -> &'static str {
        match self {
            State::Established => "established",
            State::FinWait1 => "fin_wait_1",
            State::FinWait2 => "fin_wait_2",
            State::CloseWait => "close_wait",
            State::Closing => "closing",
            State::LastAck => "last_ack",
            State::TimeWait => "time_wait",
        }
    }

    /// We have sent our FIN (its sequence number is the last one we used).
    pub fn fin_sent(self) -> bool {
        matches!(
            self,
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait
        )
    }

    /// The peer's FIN has been received: no more text will be accepted.
    pub fn fin_received(self) -> bool {
        matches!(
            self,
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait
        )
    }
}

/// FIN-WAIT-2 lifetime when no idle timeout is configured (Linux `tcp_fin_timeout`).
pub const FIN_TIMEOUT_MS: u32 = 60_000;

/// TCB flag bits.
mod flag {
    /// Timestamps negotiated (RFC 7323).
    pub const TS: u8 = 1;
    /// SACK permitted by the peer (RFC 2018). We never need to send SACK blocks (we drop
    /// out-of-order data), but we keep the bit to report it.
    pub const SACK: u8 = 2;
    /// The responder wants to close once its queued data is sent.
    pub const CLOSE: u8 = 4;
    /// The retransmission timer runs (`rto_at` valid).
    pub const RTO: u8 = 8;
    /// Without RTO: `rto_at` is the request-header deadline (http, ESTABLISHED).
    pub const HEAD: u8 = 16;
    /// `last_oow_ack` holds the tick of an ACK sent under the per-connection limit.
    pub const OOW: u8 = 32;
}

/// One connection's TCB. Kept small (64 bytes, one cache line): the table holds a million of
/// them per core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// SND.UNA: oldest unacknowledged sequence number.
    pub snd_una: SeqNumber,
    /// SND.NXT: next sequence number to send.
    pub snd_nxt: SeqNumber,
    /// SND.WL1: segment sequence number used for the last window update.
    pub snd_wl1: SeqNumber,
    /// RCV.NXT: next sequence number expected.
    pub rcv_nxt: SeqNumber,
    /// SND.WND in bytes (the peer's window, scaled).
    pub snd_wnd: u32,
    /// Largest window the peer has offered (RFC 5961 §5.2 MAX.SND.WND).
    pub max_snd_wnd: u32,
    /// Sequence space of ours the peer has acknowledged (data and FIN), saturating (Linux
    /// `tp->bytes_acked`): an old ACK may lie at most this far below SND.UNA.
    pub bytes_acked: u32,
    /// Tick of the last ACK sent under the per-connection limit (Linux
    /// `tp->last_oow_ack_time`); meaningful when the `OOW` flag is set.
    pub last_oow_ack: Tick,
    /// TS.Recent (RFC 7323 §4.3).
    pub ts_recent: TsVal,
    /// Tick of the last acceptable segment (idle timer).
    pub last_active: Tick,
    /// Retransmission deadline, the end of TIME-WAIT, or the request-header deadline.
    pub rto_at: Tick,
    /// The deadline the table scheduled on the wheel for this connection.
    pub timer_at: Tick,
    /// Pool buffer (echo, http) or [`NO_BUF`].
    pub buf: u32,
    /// Send MSS (from the cookie, capped by ours).
    pub mss: u16,
    /// Link-layer path index in the core's neighbour table.
    pub link: u16,
    /// Connection state.
    pub state: State,
    /// Responder mode of the listening port.
    pub mode: Mode,
    /// Flag bits (see `flag`).
    flags: u8,
    /// Shift applied to the peer's window field (RFC 7323 §2.3 Snd.Wind.Shift).
    pub snd_wscale: u8,
    /// Shift we apply to our window field (Rcv.Wind.Shift).
    pub rcv_wscale: u8,
    /// Consecutive retransmissions of the current data.
    pub retries: u8,
    /// Whether the table has a live wheel entry for `timer_at`.
    pub scheduled: bool,
}

/// What the table must do with a connection after an event.
#[must_use = "a removed connection must leave the table (and its timers and buffer)"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it.
    Keep,
    /// Forget it; the event says why (Closed, Reset, TimedOut, IdleClosed).
    Remove(Event),
}

/// Linux `sysctl_tcp_invalid_ratelimit` (HZ/2): at most one ACK per connection in this many
/// milliseconds in reply to unacceptable segments and as challenge ACKs
/// ([`Conn::oow_rate_limited`]).
pub const INVALID_RATELIMIT_MS: u32 = 500;

/// Per-core challenge ACK budget (RFC 5961 §7: "limit the number of challenge ACKs ... per
/// time unit"), randomised as Linux `tcp_send_challenge_ack` does since CVE-2016-5696: a
/// fixed, shared limit is a side channel (an off-path host counts the challenge ACKs it gets
/// back to learn whether its spoofed probes hit an in-window sequence number). Linux:
///
/// ```text
/// now = jiffies / HZ;
/// if (now != READ_ONCE(net->ipv4.tcp_challenge_timestamp)) {
///     u32 half = (ack_limit + 1) >> 1;
///     WRITE_ONCE(net->ipv4.tcp_challenge_timestamp, now);
///     WRITE_ONCE(net->ipv4.tcp_challenge_count,
///                get_random_u32_inclusive(half, ack_limit + half - 1));
/// }
/// ```
///
/// The random draw is keyed SipHash of the second number with [`Params::challenge_ack_key`]
/// (drawn by the caller from the OS at start), so this layer reads no RNG and a test with a
/// fixed key replays exactly. It runs after the per-connection limit
/// ([`Conn::oow_rate_limited`]), as in Linux.
#[derive(Debug, Clone, Default)]
pub struct ChallengeLimiter {
    /// The second (`now / 1000`) the budget was drawn for.
    second: u32,
    /// Challenge ACKs left in that second.
    left: u32,
    /// Whether `second` holds a draw yet.
    drawn: bool,
}

impl ChallengeLimiter {
    /// Whether one more challenge ACK may go out at `now` (ms tick): each new second draws
    /// a budget uniform in `[half, limit + half - 1]`, `half = ceil(limit / 2)`, so the
    /// mean is `limit` and no second's budget is predictable.
    #[must_use = "a challenge ACK the budget refused must not be sent"]
    pub fn allow(&mut self, now: Tick, limit: u32, key: &[u8; 16]) -> bool {
        use std::hash::Hasher;
        let second = now.0 / 1000;
        if !self.drawn || second != self.second {
            let mut h = siphasher::sip::SipHasher24::new_with_key(key);
            h.write_u32(second);
            let half = u64::from(limit).div_ceil(2);
            let draw = half + h.finish() % u64::from(limit.max(1));
            self.left = draw.min(u64::from(u32::MAX)) as u32;
            self.second = second;
            self.drawn = true;
        }
        if self.left > 0 {
            self.left -= 1;
            true
        } else {
            false
        }
    }
}

/// Everything an event handler may touch besides the TCB.
pub struct Ctx<'a> {
    /// The 32-bit ms tick of the batch.
    pub now: Tick,
    /// Protocol parameters.
    pub params: &'a Params,
    /// Echo/http buffers.
    pub pool: &'a mut BufferPool,
    /// Fixed HTTP responses.
    pub http: &'a HttpResponses,
    /// This core's counters.
    pub counters: &'a mut Counters,
    /// This core's challenge ACK budget.
    pub limiter: &'a mut ChallengeLimiter,
    /// Segments to send on this connection, in order.
    pub out: &'a mut Vec<Segment>,
}

/// What a handshake negotiated, carried from the cookie into a new TCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Our ISS (the cookie).
    pub iss: SeqNumber,
    /// The client's ISN.
    pub irs: SeqNumber,
    /// Send MSS.
    pub mss: u16,
    /// Peer's window shift, if window scaling was negotiated.
    pub snd_wscale: Option<u8>,
    /// Our window shift used in the SYN-ACK.
    pub rcv_wscale: u8,
    /// SACK permitted.
    pub sack: bool,
    /// Timestamps negotiated: the peer's TSval from the ACK.
    pub ts_recent: Option<TsVal>,
    /// The responder mode.
    pub mode: Mode,
}

impl Conn {
    /// The TCB of a connection whose handshake just completed (RFC 9293 §3.10.7.3: in
    /// SYN-RECEIVED, an acceptable ACK "enter[s] ESTABLISHED state"). `window` is the raw
    /// window field of the completing ACK.
    pub fn established(n: &Negotiated, window: u16, link: u16, now: Tick) -> Conn {
        let snd_wscale = n.snd_wscale.unwrap_or(0);
        let rcv_wscale = if n.snd_wscale.is_some() {
            n.rcv_wscale
        } else {
            0
        };
        let mut flags = 0;
        if n.ts_recent.is_some() {
            flags |= flag::TS;
        }
        if n.sack {
            flags |= flag::SACK;
        }
        let snd_wnd = (window as u32) << snd_wscale;
        Conn {
            snd_una: n.iss.add(1),
            snd_nxt: n.iss.add(1),
            snd_wl1: n.irs.add(1),
            rcv_nxt: n.irs.add(1),
            snd_wnd,
            max_snd_wnd: snd_wnd,
            bytes_acked: 0,
            last_oow_ack: Tick(0),
            ts_recent: n.ts_recent.unwrap_or_default(),
            last_active: now,
            rto_at: Tick(0),
            timer_at: now,
            buf: NO_BUF,
            mss: n.mss,
            link,
            state: State::Established,
            mode: n.mode,
            flags,
            snd_wscale,
            rcv_wscale,
            retries: 0,
            scheduled: false,
        }
    }

    /// Whether timestamps are in use.
    pub fn timestamps(&self) -> bool {
        self.flags & flag::TS != 0
    }

    /// Whether the peer permitted SACK.
    pub fn sack_permitted(&self) -> bool {
        self.flags & flag::SACK != 0
    }

    /// Whether the retransmission timer runs.
    pub fn rto_armed(&self) -> bool {
        self.flags & flag::RTO != 0
    }

    /// RCV.WND in bytes: what we can take now, exactly as our window field offers it.
    /// RFC 7323 §2.3: the field is the window "shifted right by Rcv.Wind.Shift" in 16 bits,
    /// so without window scaling the window is at most 65,535 bytes, and with it a multiple
    /// of 2^Rcv.Wind.Shift. The sequence check (RFC 9293 §3.10.7.4) uses this same value:
    /// we never accept a byte beyond the window we advertised (Linux `tcp_sequence` checks
    /// against `tcp_receive_window`, the advertised window, likewise).
    pub fn rcv_wnd(&self, params: &Params, pool: &BufferPool) -> u32 {
        let room = match self.mode {
            Mode::Discard | Mode::Close => params.window,
            Mode::Echo => pool.tx_free(self.buf) as u32,
            Mode::Http => pool.rx_free(self.buf) as u32,
        };
        (room >> self.rcv_wscale).min(u16::MAX as u32) << self.rcv_wscale
    }

    /// Eff.snd.MSS (RFC 9293 §3.7.1): "Eff.snd.MSS = min(SendMSS+20, MMS_S) - TCPhdrsize -
    /// IPoptionsize", where "TCPhdrsize is the size of the fixed TCP header and any
    /// options". RFC 6691 §2: the MSS the peer sends does not count TCP options, so ours come
    /// off it: with timestamps (12 bytes) a data segment carries 1448 bytes to a peer that
    /// said 1460. `mss` is already the smaller of the peer's MSS and ours, and ours fits
    /// the interface MTU (the caller lowers `Params::mss` to it).
    pub fn eff_snd_mss(&self) -> u32 {
        let options = if self.timestamps() {
            TcpOptions {
                timestamps: Some((0, 0)),
                ..TcpOptions::default()
            }
            .buffer_len() as u32
        } else {
            0
        };
        (self.mss as u32).saturating_sub(options).max(1)
    }

    /// Bytes of data queued and not yet acknowledged (sent or not).
    fn queued(&self, pool: &BufferPool) -> u32 {
        pool.tx_len(self.buf) as u32
    }

    /// Sequence number our FIN occupies (meaningful once the responder closes).
    fn fin_seq(&self, pool: &BufferPool) -> SeqNumber {
        self.snd_una.add(self.queued(pool))
    }

    /// The window field for an outgoing segment (RFC 7323 §2.3: shifted right by
    /// Rcv.Wind.Shift; [`Self::rcv_wnd`] already fits 16 bits after the shift).
    fn window_field(&self, ctx: &Ctx<'_>) -> u16 {
        (self.rcv_wnd(ctx.params, ctx.pool) >> self.rcv_wscale) as u16
    }

    /// A segment from this TCB with the given flags, sequence number and payload, carrying
    /// ACK of RCV.NXT and, when negotiated, a timestamp (RFC 7323 §3.2: "once TSopt has been
    /// successfully negotiated ... MUST be sent in every non-<RST> segment").
    fn segment(&self, ctx: &Ctx<'_>, flags: TcpFlags, seq: SeqNumber, payload: Payload) -> Segment {
        let mut options = TcpOptions::default();
        if self.timestamps() && !flags.contains(TcpFlags::RST) {
            options.timestamps = Some((ctx.now.tsval().0, self.ts_recent.0));
        }
        Segment {
            flags: flags | TcpFlags::ACK,
            seq,
            ack: self.rcv_nxt,
            window: self.window_field(ctx),
            options,
            payload,
        }
    }

    /// Queue a bare ACK (<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>).
    fn send_ack(&self, ctx: &mut Ctx<'_>) {
        let seg = self.segment(ctx, TcpFlags::ACK, self.snd_nxt, Payload::Empty);
        ctx.out.push(seg);
    }

    /// Linux `__tcp_oow_rate_limited`: whether an ACK owed now must be skipped because one
    /// went out less than [`INVALID_RATELIMIT_MS`] ago on this connection; if not, the
    /// ACK about to be sent is recorded. Counted as [`Event::AckRateLimited`].
    ///
    /// ```text
    /// if (val) {
    ///     s32 elapsed = (s32)(tcp_jiffies32 - val);
    ///     if (0 <= elapsed &&
    ///         elapsed < READ_ONCE(net->ipv4.sysctl_tcp_invalid_ratelimit)) {
    ///         NET_INC_STATS(net, mib_idx);
    ///         return true;    /* rate-limited: don't send yet! */
    ///     }
    /// }
    /// WRITE_ONCE(*last_oow_ack_time, tcp_jiffies32);
    /// ```
    fn oow_rate_limited(&mut self, ctx: &mut Ctx<'_>) -> bool {
        if self.flags & flag::OOW != 0 {
            let elapsed = ctx.now.diff(self.last_oow_ack);
            if (0..INVALID_RATELIMIT_MS as i32).contains(&elapsed) {
                ctx.counters.event(Event::AckRateLimited);
                return true;
            }
        }
        self.last_oow_ack = ctx.now;
        self.flags |= flag::OOW;
        false
    }

    /// The ACK owed to an unacceptable segment (PAWS, out of window, TIME-WAIT, a SYN in
    /// TIME-WAIT that may not reopen), throttled per connection as Linux
    /// `tcp_oow_rate_limited` does, so two endpoints that disagree cannot run an ACK loop
    /// at line rate: "Data packets without SYNs are not likely part of an ACK loop."
    /// Segments that carry data or FIN (and no SYN) are always answered: the ACK tells a
    /// peer retransmitting old data what we have.
    fn send_oow_ack(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) {
        let loop_candidate = seg.segment_len() == 0 || seg.flags.contains(TcpFlags::SYN);
        if loop_candidate && self.oow_rate_limited(ctx) {
            return;
        }
        self.send_ack(ctx);
    }

    /// RFC 5961 §3.2, §4.2, §5.2: a challenge ACK, within the per-connection limit first and
    /// then the per-core randomised budget (§7), as Linux `tcp_send_challenge_ack`: "First
    /// check our per-socket dupack rate limit ... Then check host-wide RFC 5961 rate limit".
    fn challenge_ack(&mut self, ctx: &mut Ctx<'_>) {
        if self.oow_rate_limited(ctx) {
            return;
        }
        let p = ctx.params;
        if ctx
            .limiter
            .allow(ctx.now, p.challenge_ack_limit, &p.challenge_ack_key)
        {
            ctx.counters.event(Event::ChallengeAck);
            self.send_ack(ctx);
        } else {
            ctx.counters.drop(DropReason::ChallengeAckLimited);
        }
    }

    /// The timer this connection keeps on the wheel, if any: retransmission (or window
    /// probe) while something is unacknowledged, or the end of TIME-WAIT. At most one runs.
    pub fn wheel_timer(&self) -> Option<Timer> {
        if self.state == State::TimeWait {
            Some(Timer::TimeWait { at: self.rto_at })
        } else if self.rto_armed() {
            Some(Timer::Retransmit { at: self.rto_at })
        } else if self.flags & flag::HEAD != 0 {
            Some(Timer::Header { at: self.rto_at })
        } else {
            None
        }
    }

    /// The idle timer. It is not on the wheel: the table sweeps its slab for idle
    /// connections, so a connection that closes normally leaves no timer entry behind
    /// (wheel memory then follows live connections, not the connection rate × timeout).
    /// FIN-WAIT-2 always has one (Linux's `tcp_fin_timeout`, 60 s when no idle timeout is
    /// set); TIME-WAIT has its own wheel timer instead.
    pub fn idle_timer(&self, params: &Params) -> Option<Timer> {
        let limit = match (self.state, params.idle_timeout_ms) {
            (State::TimeWait, _) => return None,
            (State::FinWait2, 0) => FIN_TIMEOUT_MS,
            (_, 0) => return None,
            (_, ms) => ms,
        };
        Some(Timer::Idle {
            at: self.last_active.add(limit),
        })
    }

    /// The deadline of [`Self::wheel_timer`], if any.
    pub fn next_deadline(&self) -> Option<Tick> {
        self.wheel_timer().map(|t| t.at())
    }

    /// Handle one segment for this connection: RFC 9293 §3.10.7.4 "Otherwise", in order.
    pub fn on_segment(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> Verdict {
        if self.state == State::TimeWait {
            return self.on_time_wait(ctx, seg);
        }
        // RFC 7323 §5.3 R1: PAWS before the sequence check.
        if !self.check_paws(ctx, seg) {
            return Verdict::Keep;
        }
        // First: sequence number.
        let Some(accept) = self.check_sequence(ctx, seg) else {
            return Verdict::Keep;
        };
        // Second: RST.
        if seg.flags.contains(TcpFlags::RST) {
            return self.on_rst(ctx, seg);
        }
        // Fourth: SYN (the third, security, does not apply).
        if seg.flags.contains(TcpFlags::SYN) {
            // RFC 5961 §4.2: "the receiver MUST send an ACK (challenge ACK) to the remote
            // peer", whatever the sequence number.
            self.challenge_ack(ctx);
            return Verdict::Keep;
        }
        // Fifth: ACK. RFC 9293 §3.10.7.4: "if the ACK bit is off, drop the segment and return".
        if !seg.flags.contains(TcpFlags::ACK) {
            ctx.counters.drop(DropReason::NoAck);
            return Verdict::Keep;
        }
        let wnd_before = self.rcv_wnd(ctx.params, ctx.pool);
        match self.on_ack(ctx, seg) {
            AckResult::Continue => {}
            AckResult::Drop => return Verdict::Keep,
            AckResult::Remove(e) => return Verdict::Remove(e),
        }
        self.last_active = ctx.now;
        // RFC 7323 §4.3: update TS.Recent when the segment covers Last.ACK.sent.
        if let (true, Some((tsval, _))) = (self.timestamps(), seg.options.timestamps) {
            let tsval = TsVal(tsval);
            if !seg.seq.gt(self.rcv_nxt) && tsval.ge(self.ts_recent) {
                self.ts_recent = tsval;
            }
        }
        // Seventh: segment text; eighth: FIN.
        let mut need_ack = !accept.in_order && seg.segment_len() > 0;
        if accept.in_order {
            need_ack |= self.on_text(ctx, seg, accept.skip);
        } else if seg.segment_len() > 0 && seg.seq.gt(self.rcv_nxt) {
            // (Text at RCV.NXT that is not in order was refused by a zero window and
            // already counted as NoBuffer: one reason per frame.)
            ctx.counters.drop(DropReason::OutOfOrder);
        }
        // RFC 9293 §3.8.6.2.2: the window is updated once it can open by "min(Fr *
        // RCV.BUFF, Eff.snd.MSS)" (Fr = 1/2). When an ACK of our data (echo, http) frees
        // that much of a window that was smaller, say so: a peer that saw it closed would
        // otherwise wait for its persist timer (Linux tcp_cleanup_rbuf does the same).
        let threshold = self.eff_snd_mss().min(ctx.pool.size() as u32 / 2).max(1);
        need_ack |= wnd_before < threshold && self.rcv_wnd(ctx.params, ctx.pool) >= threshold;
        let before = ctx.out.len();
        self.transmit(ctx);
        if need_ack && ctx.out.len() == before {
            self.send_ack(ctx);
        }
        self.track_waits(ctx);
        match self.wait_exceeded(ctx) {
            Some(why) => self.abort(ctx, why),
            None => Verdict::Keep,
        }
    }

    /// RFC 7323 §5.3 R1: "If there is a Timestamps option in the arriving segment, SEG.TSval
    /// < TS.Recent, and if TS.Recent is valid, then treat the arriving segment as not
    /// acceptable: Send an acknowledgment in reply as specified in RFC 793 page 69 and drop
    /// the segment." RSTs are exempt (R1 note), as Linux does.
    fn check_paws(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> bool {
        if !self.timestamps() || seg.flags.contains(TcpFlags::RST) {
            return true;
        }
        match seg.options.timestamps {
            Some((tsval, _)) if TsVal(tsval).lt(self.ts_recent) => {
                ctx.counters.drop(DropReason::PawsRejected);
                if seg.flags.contains(TcpFlags::SYN) {
                    // Linux tcp_validate_incoming: `if (th->syn) goto syn_challenge;`
                    // (RFC 5961 §4.2: a SYN gets a challenge ACK whatever it carries).
                    self.challenge_ack(ctx);
                } else {
                    self.send_oow_ack(ctx, seg);
                }
                false
            }
            _ => true,
        }
    }

    /// RFC 9293 §3.10.7.4 first check, the acceptability table. Returns how much of the
    /// segment's front is already received (`skip`) and whether its first new byte is at
    /// RCV.NXT; `None` when the segment was unacceptable (an ACK was sent unless RST).
    fn check_sequence(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> Option<Accept> {
        let len = seg.segment_len();
        let wnd = self.rcv_wnd(ctx.params, ctx.pool);
        let rcv_end = self.rcv_nxt.add(wnd);
        let acceptable = match (len, wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, _) => seg.seq.in_range(self.rcv_nxt, rcv_end),
            (_, 0) => false,
            (_, _) => {
                seg.seq.in_range(self.rcv_nxt, rcv_end)
                    || seg.seq.add(len - 1).in_range(self.rcv_nxt, rcv_end)
            }
        };
        if acceptable {
            let skip = if seg.seq.lt(self.rcv_nxt) {
                self.rcv_nxt.diff(seg.seq) as u32
            } else {
                0
            };
            return Some(Accept {
                skip,
                in_order: !seg.seq.gt(self.rcv_nxt),
            });
        }
        // "If the RCV.WND is zero, no segments will be acceptable, but special allowance
        // should be made to accept valid ACKs, URGs, and RSTs": a segment at RCV.NXT with
        // data we cannot take still has its ACK processed; the data is dropped.
        if wnd == 0 && seg.seq == self.rcv_nxt && !seg.flags.contains(TcpFlags::RST) {
            ctx.counters.drop(DropReason::NoBuffer);
            return Some(Accept {
                skip: 0,
                in_order: false,
            });
        }
        if seg.flags.contains(TcpFlags::RST) {
            // RFC 5961 §3.2: an out-of-window RST is silently discarded.
            ctx.counters.drop(DropReason::RstOutOfWindow);
        } else if seg.flags.contains(TcpFlags::SYN) {
            // RFC 5961 §4.2: a SYN gets a challenge ACK "irrespective of the sequence
            // number" (Linux tcp_validate_incoming: `if (th->syn) goto syn_challenge;`).
            ctx.counters.drop(DropReason::OutOfWindow);
            self.challenge_ack(ctx);
        } else {
            // "If an incoming segment is not acceptable, an acknowledgment should be sent in
            // reply (unless the RST bit is set ...)".
            ctx.counters.drop(DropReason::OutOfWindow);
            self.send_oow_ack(ctx, seg);
        }
        None
    }

    /// RFC 5961 §3.2: "If the RST bit is set and the sequence number exactly matches the next
    /// expected sequence number (RCV.NXT), then TCP MUST reset the connection ... Otherwise
    /// (the sequence number is in the window) TCP MUST send an ACK (challenge ACK)".
    fn on_rst(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> Verdict {
        if seg.seq == self.rcv_nxt {
            Verdict::Remove(Event::Reset)
        } else {
            ctx.counters.drop(DropReason::RstInWindow);
            self.challenge_ack(ctx);
            Verdict::Keep
        }
    }

    /// The lowest acceptable SEG.ACK: RFC 5961 §5.2 "(SND.UNA - MAX.SND.WND) =< SEG.ACK",
    /// with Linux `tcp_ack`'s clamp to what was ever sent:
    ///
    /// ```text
    /// /* do not accept ACK for bytes we never sent. */
    /// max_window = min_t(u64, tp->max_window, tp->bytes_acked);
    /// /* RFC 5961 5.2 [Blind Data Injection Attack].[Mitigation] */
    /// if (before(ack, prior_snd_una - max_window)) {
    /// ```
    ///
    /// Without the clamp a young connection (SND.UNA just past our ISS, a large peer window)
    /// would accept ACKs for sequence numbers below our ISS, which no peer can have seen.
    pub fn lowest_acceptable_ack(&self) -> SeqNumber {
        self.snd_una.sub(self.max_snd_wnd.min(self.bytes_acked))
    }

    /// RFC 9293 §3.10.7.4 fifth check, with RFC 5961 §5.2's stricter acceptance.
    fn on_ack(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> AckResult {
        let ack = seg.ack;
        // RFC 5961 §5.2: "(SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT" or the ACK is
        // unacceptable: "discard the segment and send an ACK back" (limited like a
        // challenge ACK, as Linux does).
        if ack.gt(self.snd_nxt) || ack.lt(self.lowest_acceptable_ack()) {
            ctx.counters.drop(DropReason::UnacceptableAck);
            self.challenge_ack(ctx);
            return AckResult::Drop;
        }
        // RFC 9293 §3.10.7.4: "If the ACK is a duplicate (SEG.ACK < SND.UNA), it can be
        // ignored": an old ACK updates nothing, not even the send window (the window update
        // below is only for "SND.UNA =< SEG.ACK =< SND.NXT"); its text and FIN still count.
        if ack.lt(self.snd_una) {
            return AckResult::Continue;
        }
        // "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK."
        let advanced = ack.gt(self.snd_una);
        if advanced {
            let acked = ack.diff(self.snd_una) as u32;
            let data = acked.min(self.queued(ctx.pool));
            ctx.pool.tx_consume(self.buf, data as usize);
            self.snd_una = ack;
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            let recovering = self.retries > 0;
            if self.snd_una == self.snd_nxt {
                self.retries = 0;
                self.flags &= !flag::RTO;
            } else if recovering {
                // RFC 6582 §3.2 step 5 (a partial ACK during recovery): "retransmit the first
                // unacknowledged segment" now, so the rest of a lost flight follows one
                // segment per ACK instead of one per RTO. `retries` stays 1 until all is
                // acknowledged, marking the recovery.
                self.retries = 1;
                self.arm_rto(ctx.now, ctx.params);
                self.retransmit_first(ctx);
            } else {
                self.arm_rto(ctx.now, ctx.params);
            }
        }
        // "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated. If
        // (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK))": we use Linux's
        // equivalent tcp_may_update_window, which needs no SND.WL2. Its last term (`!nwin`)
        // matters: a peer that stops reading closes its window with a segment of the same
        // SEG.SEQ and SEG.ACK, and that zero window must be taken.
        let wnd = (seg.window as u32) << self.snd_wscale;
        let same_seq_update = seg.seq == self.snd_wl1 && (wnd > self.snd_wnd || wnd == 0);
        if advanced || seg.seq.gt(self.snd_wl1) || same_seq_update {
            self.snd_wnd = wnd;
            self.snd_wl1 = seg.seq;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
        }
        // RFC 1122 §4.2.2.17: "probing of zero windows MUST be allowed to continue
        // indefinitely as long as the receiving TCP continues to send acknowledgments in
        // response to the probes". An answer to a probe keeps the backoff but never lets
        // the retry count reach the abort.
        if !advanced && self.snd_wnd == 0 && self.queued(ctx.pool) > 0 && self.retries > 0 {
            self.retries = self.retries.min(ctx.params.max_retries.saturating_sub(1));
        }
        let fin_acked = self.state.fin_sent() && self.snd_una == self.snd_nxt;
        match self.state {
            // "In addition to the processing for the ESTABLISHED state, if the FIN segment
            // is now acknowledged, then enter FIN-WAIT-2 and continue processing."
            State::FinWait1 if fin_acked => self.state = State::FinWait2,
            // "If the ACK acknowledges our FIN, then enter the TIME-WAIT state; otherwise,
            // ignore the segment."
            State::Closing if fin_acked => {
                self.enter_time_wait(ctx);
                return AckResult::Drop;
            }
            // "If our FIN is now acknowledged, delete the TCB, enter the CLOSED state."
            State::LastAck if fin_acked => return AckResult::Remove(Event::Closed),
            _ => {}
        }
        // Once our FIN is out nothing may follow it (RFC 9293 §3.10.4).
        if advanced && !self.state.fin_sent() {
            let served = responder::on_send_space(self.mode, ctx.pool, ctx.http, self.buf, ctx.now);
            ctx.counters
                .add(Event::HttpRequests, served.responses.into());
            ctx.counters
                .add(Event::RxAfterCloseBytes, served.discarded.into());
            if served.close {
                self.flags |= flag::CLOSE;
            }
        }
        AckResult::Continue
    }

    /// RFC 9293 §3.10.7.4 seventh and eighth checks: take in-order text, then the FIN.
    /// Returns whether an ACK is owed.
    fn on_text(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>, skip: u32) -> bool {
        let skip = skip as usize;
        let data = seg
            .payload
            .get(skip.min(seg.payload.len())..)
            .unwrap_or(&[]);
        let mut owed = false;
        let mut all_taken = true;
        if !data.is_empty() {
            owed = true;
            match self.state {
                // "ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2: ... deliver the segment text".
                State::Established | State::FinWait1 | State::FinWait2 => {
                    all_taken = self.deliver(ctx, data);
                }
                // "This should not occur since a FIN has been received from the remote side.
                // Ignore the segment text." (CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT)
                _ => {}
            }
        }
        // Eighth: FIN, only when everything before it was taken.
        if seg.flags.contains(TcpFlags::FIN) && all_taken && !self.state.fin_received() {
            owed = true;
            self.rcv_nxt = self.rcv_nxt.add(1);
            match self.state {
                // "Enter the CLOSE-WAIT state." The responder then finishes and closes.
                State::Established => {
                    self.state = State::CloseWait;
                    self.flags |= flag::CLOSE;
                    if !ctx.params.fin_with_ack {
                        // The four-segment close: ACK the FIN now, our FIN follows apart.
                        self.send_ack(ctx);
                        owed = false;
                    }
                }
                // "If our FIN has been ACKed ... enter TIME-WAIT ... Otherwise, enter the
                // CLOSING state." (ours was acked above if it was: state is FIN-WAIT-2)
                State::FinWait1 => self.state = State::Closing,
                State::FinWait2 => {
                    self.send_ack(ctx);
                    self.enter_time_wait(ctx);
                    owed = false;
                }
                _ => {}
            }
        }
        owed
    }

    /// Give in-order data to the responder. Returns whether all of it was taken.
    fn deliver(&mut self, ctx: &mut Ctx<'_>, data: &[u8]) -> bool {
        if self.flags & flag::CLOSE != 0 {
            // We closed (a closing response, the idle timeout, shutdown): RFC 9293 §3.10.4
            // allows no SEND after CLOSE, so the responder never sees this; RFC 9112 §9.6
            // has a closing server go on reading, so it is acknowledged and discarded, not
            // reset (Linux resets: LINUX_MIB_TCPABORTONDATA), and counted.
            self.rcv_nxt = self.rcv_nxt.add(data.len() as u32);
            ctx.counters.add(Event::RxBytes, data.len() as u64);
            ctx.counters
                .add(Event::RxAfterCloseBytes, data.len() as u64);
            return true;
        }
        if self.mode.buffered() && self.buf == NO_BUF {
            match ctx.pool.alloc() {
                Some(b) => self.buf = b,
                None => {
                    ctx.counters.drop(DropReason::NoBuffer);
                    return false;
                }
            }
        }
        let taken = responder::on_data(self.mode, ctx.pool, ctx.http, self.buf, data, ctx.now);
        ctx.counters
            .add(Event::HttpRequests, taken.responses.into());
        ctx.counters
            .add(Event::RxAfterCloseBytes, taken.discarded.into());
        self.rcv_nxt = self.rcv_nxt.add(taken.bytes as u32);
        ctx.counters.add(Event::RxBytes, taken.bytes as u64);
        if taken.close {
            self.flags |= flag::CLOSE;
        }
        if taken.bytes < data.len() {
            ctx.counters.drop(DropReason::NoBuffer);
            return false;
        }
        true
    }

    /// Send what the responder queued, within the peer's window and our MSS, then our FIN
    /// once everything is sent and the responder closes.
    pub fn transmit(&mut self, ctx: &mut Ctx<'_>) {
        self.send_from_nxt(ctx, usize::MAX);
        // RFC 9293 §3.8.6.1: with data waiting and a zero window, the retransmission timer
        // doubles as the persist timer, so the window gets probed.
        if self.snd_wnd == 0 && self.snd_nxt.lt(self.fin_seq(ctx.pool)) && !self.rto_armed() {
            self.arm_rto(ctx.now, ctx.params);
        }
    }

    /// Send at most `max_segments` segments from SND.NXT: queued data within the window,
    /// then the FIN (for the first time, or again after a retransmission rewound SND.NXT).
    /// Every data segment holds at most [`Self::eff_snd_mss`] bytes, first sends and
    /// retransmissions alike (a retransmission from SND.UNA may coalesce what first went
    /// out as several smaller segments, never into a larger one).
    fn send_from_nxt(&mut self, ctx: &mut Ctx<'_>, max_segments: usize) {
        let end = self.fin_seq(ctx.pool);
        let wnd_end = self.snd_una.add(self.snd_wnd);
        let mss = self.eff_snd_mss();
        let mut sent = 0;
        while sent < max_segments && self.snd_nxt.lt(end) && self.snd_nxt.lt(wnd_end) {
            let offset = self.snd_nxt.diff(self.snd_una) as u32;
            let len = (end.diff(self.snd_nxt) as u32)
                .min(wnd_end.diff(self.snd_nxt) as u32)
                .min(mss);
            let payload = Payload::Buffer {
                buf: self.buf,
                offset,
                len,
            };
            let mut flags = TcpFlags::ACK;
            if self.snd_nxt.add(len) == end {
                flags |= TcpFlags::PSH;
            }
            let seg = self.segment(ctx, flags, self.snd_nxt, payload);
            ctx.out.push(seg);
            ctx.counters.add(Event::TxBytes, len as u64);
            self.snd_nxt = self.snd_nxt.add(len);
            sent += 1;
        }
        let fin_due = self.state.fin_sent() || self.close_ready(ctx.pool);
        let fin_open = !matches!(self.state, State::FinWait2 | State::TimeWait);
        if sent < max_segments && fin_due && fin_open && self.snd_nxt == end {
            let seg = self.segment(ctx, TcpFlags::FIN, end, Payload::Empty);
            ctx.out.push(seg);
            self.snd_nxt = end.add(1);
            // RFC 9293 §3.10.4 CLOSE: ESTABLISHED → FIN-WAIT-1, CLOSE-WAIT → LAST-ACK.
            self.state = match self.state {
                State::Established => State::FinWait1,
                State::CloseWait => State::LastAck,
                s => s,
            };
            sent += 1;
        }
        if sent > 0 && !self.rto_armed() {
            self.arm_rto(ctx.now, ctx.params);
        }
    }

    /// The responder closes (RFC 9293 §3.10.4 CLOSE) and has answered everything it
    /// received before: no complete request still waits for send space (RFC 9112 §9.3.2:
    /// pipelined requests are all answered, in order, before our FIN).
    fn close_ready(&self, pool: &BufferPool) -> bool {
        self.flags & flag::CLOSE != 0 && !responder::blocked(self.mode, pool, self.buf)
    }

    /// RFC 6298 §5.1/§5.5: (re)start the timer with the current, backed-off RTO.
    fn arm_rto(&mut self, now: Tick, params: &Params) {
        let rto = (params.rto_initial_ms as u64) << self.retries.min(20);
        let rto = rto.min(params.rto_max_ms as u64) as u32;
        self.rto_at = now.add(rto);
        self.flags |= flag::RTO;
    }

    /// Enter TIME-WAIT for 2*MSL (RFC 9293 §3.10.7.4 "start the time-wait timer").
    fn enter_time_wait(&mut self, ctx: &mut Ctx<'_>) {
        self.state = State::TimeWait;
        self.flags &= !flag::RTO;
        self.rto_at = ctx.now.add(ctx.params.time_wait_ms);
        ctx.pool.release(self.buf);
        self.buf = NO_BUF;
        ctx.counters.event(Event::TimeWait);
    }

    /// TIME-WAIT (RFC 9293 §3.10.7.4): "The only thing that can arrive in this state is a
    /// retransmission of the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
    /// A new SYN is handled by the table before this (it may reopen the tuple).
    ///
    /// RSTs are ignored: that is RFC 1337's remedy for TIME-WAIT assassination (Linux with
    /// `tcp_rfc1337 = 1`). Linux's default, `tcp_rfc1337 = 0`, lets an RST at RCV.NXT end
    /// TIME-WAIT early; we keep the tuple for the full 2*MSL, so an old duplicate cannot
    /// reach a new incarnation on it. Every ACK sent here goes through the per-connection
    /// limit (Linux `tcp_timewait_check_oow_rate_limit`).
    fn on_time_wait(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr<'_>) -> Verdict {
        if seg.flags.contains(TcpFlags::RST) {
            ctx.counters.drop(DropReason::RstInWindow);
            return Verdict::Keep;
        }
        if seg.flags.contains(TcpFlags::FIN) && seg.seq.add(seg.segment_len()) == self.rcv_nxt {
            self.rto_at = ctx.now.add(ctx.params.time_wait_ms);
            self.send_oow_ack(ctx, seg);
        } else if seg.segment_len() > 0 {
            ctx.counters.drop(DropReason::OutOfWindow);
            self.send_oow_ack(ctx, seg);
        }
        Verdict::Keep
    }

    /// Whether a SYN may reopen this TIME-WAIT tuple (RFC 9293 §3.10.7.4 note, RFC 6191
    /// §2), Linux `tcp_timewait_state_process`:
    ///
    /// ```text
    /// if (th->syn && !th->rst && !th->ack && !paws_reject &&
    ///     (after(TCP_SKB_CB(skb)->seq, tcptw->tw_rcv_nxt) ||
    ///      (tmp_opt.saw_tstamp &&
    ///       (s32)(tcptw->tw_ts_recent - tmp_opt.rcv_tsval) < 0))) {
    /// ```
    ///
    /// PAWS (a TSval older than TS.Recent) always refuses; otherwise a sequence number
    /// beyond RCV.NXT or a newer TSval is enough. Timestamps count only when the old
    /// connection used them (Linux parses them only with `tw_ts_recent_stamp` set).
    pub fn syn_may_reopen(&self, seg: &TcpRepr<'_>) -> bool {
        let tsval = match (self.timestamps(), seg.options.timestamps) {
            (true, Some((tsval, _))) => Some(TsVal(tsval)),
            _ => None,
        };
        let paws_reject = tsval.is_some_and(|v| v.lt(self.ts_recent));
        let ts_newer = tsval.is_some_and(|v| v.gt(self.ts_recent));
        !paws_reject && (seg.seq.gt(self.rcv_nxt) || ts_newer)
    }

    /// Answer a SYN that may not reopen a TIME-WAIT tuple: an ACK (Linux TCP_TW_ACK), at
    /// most one per [`INVALID_RATELIMIT_MS`] on this tuple.
    pub fn answer_stale_syn(&mut self, ctx: &mut Ctx<'_>) {
        if !self.oow_rate_limited(ctx) {
            self.send_ack(ctx);
        }
    }

    /// Close from our side (idle timeout, shutdown): FIN after the queued data.
    pub fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.flags |= flag::CLOSE;
        self.transmit(ctx);
        self.track_waits(ctx);
    }

    /// Start or end the waits that are bounded in time, and the request-header timer:
    /// - persist: the peer's window is zero while we hold data (RFC 9293 §3.8.6.1);
    /// - close: we decided to close and our FIN is not yet acknowledged (it may sit
    ///   behind data the peer does not take);
    /// - request head: an http request head is arriving (slowloris). Its deadline uses
    ///   `rto_at` while nothing of ours is outstanding; while something is, the
    ///   retransmission timer runs and the header timer is set again once all is acked.
    fn track_waits(&mut self, ctx: &mut Ctx<'_>) {
        let now = Some(ctx.now);
        let persisting = self.snd_wnd == 0 && self.queued(ctx.pool) > 0;
        ctx.pool
            .set_wait(self.buf, Wait::Persist, now.filter(|_| persisting));
        let closing = self.flags & flag::CLOSE != 0
            && !matches!(self.state, State::FinWait2 | State::TimeWait);
        ctx.pool
            .set_wait(self.buf, Wait::Close, now.filter(|_| closing));
        self.flags &= !flag::HEAD;
        let timeout = ctx.params.header_timeout_ms;
        if self.rto_armed()
            || timeout == 0
            || self.state != State::Established
            || self.flags & flag::CLOSE != 0
        {
            return;
        }
        if let Some(since) = responder::head_since(self.mode, ctx.pool, self.buf) {
            self.rto_at = since.add(timeout);
            self.flags |= flag::HEAD;
        }
    }

    /// Which bounded wait has run out, if any. RFC 6429 (and RFC 9293 §3.8.6.1) lets a
    /// sender abort a connection that stays in the persist condition, so that a peer
    /// answering every probe with a zero window cannot hold its buffer forever
    /// (sockstress); the close bound is the same for a connection we are closing, like
    /// Linux's `tcp_orphan_retries` for orphaned sockets.
    fn wait_exceeded(&self, ctx: &Ctx<'_>) -> Option<Event> {
        let over = |w: Wait, limit: u32| {
            limit > 0
                && ctx
                    .pool
                    .wait_since(self.buf, w)
                    .is_some_and(|t| ctx.now.reached(t.add(limit)))
        };
        if over(Wait::Close, ctx.params.close_timeout_ms) {
            Some(Event::CloseTimedOut)
        } else if over(Wait::Persist, ctx.params.persist_timeout_ms) {
            Some(Event::PersistTimedOut)
        } else {
            None
        }
    }

    /// Give the connection up with a RST and forget it, for reason `why`. The RST carries
    /// SND.NXT unless that lies beyond the peer's window (a zero-window probe it did not
    /// take): then the window's right edge, or the peer would discard it as out of
    /// window (RFC 5961 §3.2) and keep its side open. This is Linux's
    /// `tcp_acceptable_seq` in `tcp_send_active_reset`.
    fn abort(&self, ctx: &mut Ctx<'_>, why: Event) -> Verdict {
        let wnd_end = self.snd_una.add(self.snd_wnd);
        let seq = if self.snd_nxt.gt(wnd_end) {
            wnd_end
        } else {
            self.snd_nxt
        };
        let seg = Segment::control(TcpFlags::RST | TcpFlags::ACK, seq, self.rcv_nxt, 0);
        ctx.out.push(seg);
        ctx.counters.event(Event::RstSent);
        Verdict::Remove(why)
    }

    /// The request-header timer ran out (RFC 9110 §15.5.9, 408): answer 408 when it fits
    /// and close. A head that completed meanwhile only re-arms the timers.
    fn on_header_timeout(&mut self, ctx: &mut Ctx<'_>) -> Verdict {
        self.flags &= !flag::HEAD;
        let limit = ctx.params.header_timeout_ms;
        let due = responder::head_since(self.mode, ctx.pool, self.buf)
            .is_some_and(|t| limit > 0 && ctx.now.reached(t.add(limit)));
        if !due || self.state != State::Established || self.flags & flag::CLOSE != 0 {
            self.track_waits(ctx);
            return Verdict::Keep;
        }
        ctx.counters.event(Event::HttpHeaderTimeout);
        responder::time_out(ctx.pool, ctx.http, self.buf);
        self.close(ctx);
        Verdict::Keep
    }

    /// Run the wheel timer if it is due at `ctx.now`.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Verdict {
        match self.wheel_timer() {
            Some(t) if ctx.now.reached(t.at()) => match t {
                Timer::TimeWait { .. } => Verdict::Remove(Event::Closed),
                Timer::Retransmit { .. } => self.retransmit(ctx).unwrap_or(Verdict::Keep),
                Timer::Header { .. } => self.on_header_timeout(ctx),
                Timer::Idle { .. } => Verdict::Keep,
            },
            _ => Verdict::Keep,
        }
    }

    /// Run the idle timer if it is due at `ctx.now` (called by the table's sweep).
    pub fn on_idle(&mut self, ctx: &mut Ctx<'_>) -> Verdict {
        let due = self
            .idle_timer(ctx.params)
            .is_some_and(|t| ctx.now.reached(t.at()));
        if !due {
            return Verdict::Keep;
        }
        match self.state {
            State::Established | State::CloseWait => {
                ctx.counters.event(Event::IdleClosed);
                self.last_active = ctx.now;
                self.close(ctx);
                Verdict::Keep
            }
            // Nothing of ours is outstanding and the peer stays silent: forget it
            // (Linux's tcp_fin_timeout for FIN-WAIT-2).
            State::FinWait2 => Verdict::Remove(Event::IdleClosed),
            // FIN-WAIT-1, CLOSING, LAST-ACK: the retransmission timer ends those.
            _ => Verdict::Keep,
        }
    }

    /// RFC 6298 §5.4–5.6: "Retransmit the earliest segment that has not been acknowledged",
    /// back off the timer, and resume sending from there as ACKs arrive (go-back-N); after
    /// `max_retries`, send RST and give up (RFC 9293 §3.8.3 R2). With a zero window the
    /// same timer sends a one-byte window probe (RFC 9293 §3.8.6.1).
    fn retransmit(&mut self, ctx: &mut Ctx<'_>) -> Option<Verdict> {
        if let Some(why) = self.wait_exceeded(ctx) {
            return Some(self.abort(ctx, why));
        }
        if self.retries >= ctx.params.max_retries {
            return Some(self.abort(ctx, Event::TimedOut));
        }
        self.retries += 1;
        ctx.counters.event(Event::Retransmit);
        self.flags &= !flag::RTO;
        let queued = self.queued(ctx.pool);
        if self.snd_wnd == 0 && queued > 0 {
            let payload = Payload::Buffer {
                buf: self.buf,
                offset: 0,
                len: 1,
            };
            let seg = self.segment(ctx, TcpFlags::ACK, self.snd_una, payload);
            ctx.out.push(seg);
            if self.snd_nxt == self.snd_una {
                self.snd_nxt = self.snd_una.add(1);
            }
        } else {
            self.retransmit_first(ctx);
        }
        self.arm_rto(ctx.now, ctx.params);
        None
    }

    /// RFC 6298 §5.4: "Retransmit the earliest segment that has not been acknowledged":
    /// one segment from SND.UNA (data, or the FIN). SND.NXT stays the highest sequence
    /// number sent: it bounds an acceptable ACK (RFC 9293 §3.10.7.4), and a receiver that
    /// kept the later segments acknowledges them all at once; it also keeps our FIN from
    /// being taken as acknowledged by an ACK of the data before it.
    fn retransmit_first(&mut self, ctx: &mut Ctx<'_>) {
        let snd_nxt = self.snd_nxt;
        self.snd_nxt = self.snd_una;
        // Even a peer window smaller than what is outstanding gets one segment.
        let saved = self.snd_wnd;
        self.snd_wnd = self.snd_wnd.max(self.eff_snd_mss());
        self.send_from_nxt(ctx, 1);
        self.snd_wnd = saved;
        self.snd_nxt = self.snd_nxt.max(snd_nxt);
    }

    /// Give back the connection's buffer (when it is removed).
    pub fn release(&mut self, pool: &mut BufferPool) {
        pool.release(self.buf);
        self.buf = NO_BUF;
    }
}

struct Accept {
    skip: u32,
    in_order: bool,
}

enum AckResult {
    Continue,
    Drop,
    Remove(Event),
}

#[cfg(test)]
mod tests {
    use super::{ChallengeLimiter, Tick};

    /// Allowed challenge ACKs in each of `seconds` seconds, asking `ask` times a second.
    fn budgets(key: [u8; 16], limit: u32, seconds: u32, ask: u32) -> Vec<u32> {
        let mut l = ChallengeLimiter::default();
        (0..seconds)
            .map(|s| {
                (0..ask)
                    .filter(|_| l.allow(Tick(s * 1000 + 7), limit, &key))
                    .count() as u32
            })
            .collect()
    }

    /// Linux `tcp_send_challenge_ack`: each second's budget is uniform in
    /// `[half, limit + half - 1]`, so its mean is `limit`; it changes from second to second
    /// and with the key (an observer cannot predict it without the key).
    #[test]
    fn tcp_send_challenge_ack_budget_randomised_per_second() {
        let limit = 1000;
        let b = budgets([7; 16], limit, 200, 2000);
        assert!(b.iter().all(|&n| (500..=1499).contains(&n)), "{b:?}");
        let mean = b.iter().sum::<u32>() as f64 / b.len() as f64;
        assert!((900.0..1100.0).contains(&mean), "mean {mean}");
        let distinct: std::collections::BTreeSet<_> = b.iter().collect();
        assert!(distinct.len() > 150, "{} distinct budgets", distinct.len());
        assert_ne!(
            b,
            budgets([8; 16], limit, 200, 2000),
            "the key changes the draws"
        );
        assert_eq!(
            b,
            budgets([7; 16], limit, 200, 2000),
            "same key, same draws"
        );
    }

    /// The TCB stays one cache line (the table holds a million per core).
    #[test]
    fn tcb_fits_a_cache_line() {
        assert!(std::mem::size_of::<super::Conn>() <= 64);
        assert!(std::mem::size_of::<Option<super::Conn>>() <= 64);
    }

    /// The extremes: a limit of 1 allows exactly one a second; the largest limit does not
    /// overflow.
    #[test]
    fn tcp_send_challenge_ack_budget_limits() {
        assert_eq!(budgets([0; 16], 1, 5, 10), vec![1; 5]);
        let mut l = ChallengeLimiter::default();
        assert!((0..1000).all(|_| l.allow(Tick(0), u32::MAX, &[1; 16])));
    }
}
