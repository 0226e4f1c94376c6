//! LISTEN without state: a SYN is answered with a cookie SYN-ACK and forgotten; the ACK
//! that carries the cookie back creates the connection (RFC 4987 §3.6, Linux syncookies).
//!
//! Like quinn-proto's `Incoming`, each function returns a value the caller must act on:
//! [`on_syn`] the SYN-ACK to send, [`on_cookie_ack`] either the [`Negotiated`] parameters
//! of a new connection or the [`DropReason`] to count. [`classify`] decides which of them
//! a segment for no connection gets, in the order of RFC 9293 §3.10.7.2; [`ResetLimiter`]
//! is the per-core budget of the resets LISTEN sends.

use super::conn::Negotiated;
use super::cookie::{self, CookieError, CookieJar, TsCookieOptions};
use super::responder::Mode;
use super::{Clock, Flow, Params, Payload, Segment, TsVal};
use crate::counters::DropReason;
use crate::wire::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};

/// What LISTEN does with a segment that matches no connection.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenStep {
    /// A SYN: answer with a cookie SYN-ACK ([`on_syn`]).
    Syn,
    /// An ACK: check the cookie ([`on_cookie_ack`]); if it fails, reset.
    CookieAck,
    /// An acknowledgment of a SYN we never sent: `<SEQ=SEG.ACK><CTL=RST>`.
    Reset,
    /// Discard, counted with this reason.
    Drop(DropReason),
}

/// RFC 9293 §3.10.7.2 (LISTEN), its checks in order, as Linux's `tcp_rcv_state_process`
/// (`case TCP_LISTEN`) orders them:
///
/// 1. "An incoming RST segment could not be valid ... An incoming RST should be ignored."
///    A SYN with RST is discarded as an RST (Linux: `if (th->rst) goto discard`).
/// 2. "Any acknowledgment is bad if it arrives on a connection still in the LISTEN state.
///    An acceptable reset segment should be formed for any arriving ACK-bearing segment."
///    With SYN cookies an ACK is first checked for a cookie; a SYN-ACK is reset at once.
/// 3. "If the SYN bit is set ...": a cookie SYN-ACK; but a SYN with FIN is discarded
///    (Linux: `if (th->fin) goto discard`), since no sane stack sends one and it is the
///    mark of a scanner probing for a reply.
/// 4. "Any other control or text-bearing segment (not containing SYN) must have an ACK
///    and thus would be discarded by the ACK processing."
pub fn classify(flags: TcpFlags) -> ListenStep {
    if flags.contains(TcpFlags::RST) {
        ListenStep::Drop(if flags.contains(TcpFlags::SYN) {
            DropReason::SynWithRst
        } else {
            DropReason::RstNoConnection
        })
    } else if flags.contains(TcpFlags::ACK) {
        if flags.contains(TcpFlags::SYN) {
            ListenStep::Reset
        } else {
            ListenStep::CookieAck
        }
    } else if flags.contains(TcpFlags::SYN) {
        if flags.contains(TcpFlags::FIN) {
            ListenStep::Drop(DropReason::SynWithFin)
        } else {
            ListenStep::Syn
        }
    } else {
        ListenStep::Drop(DropReason::NoConnection)
    }
}

/// The per-core budget of resets sent from LISTEN (for an ACK whose cookie fails, a
/// SYN-ACK to a listener, a refusal when the table is full): a token bucket of `rate`
/// tokens a second holding at most one second's worth, refilled from the time passed in.
///
/// Linux sends these resets unlimited (`tcp_v4_send_reset`); a budget keeps a flood of
/// forged ACKs from turning synack into a reflector at line rate, while a peer of a
/// restarted server (a handful of ACKs for connections we forgot) is still reset at once.
#[derive(Debug, Clone)]
pub struct ResetLimiter {
    /// Resets a second (0: never reset).
    rate: u32,
    /// Available budget in thousandths of a reset.
    milli_tokens: u64,
    /// When the bucket was last refilled (monotonic ms).
    last_ms: u64,
}

impl ResetLimiter {
    /// A full bucket of `rate` resets a second, as of `now_ms`.
    pub fn new(rate: u32, now_ms: u64) -> Self {
        ResetLimiter {
            rate,
            milli_tokens: u64::from(rate) * 1000,
            last_ms: now_ms,
        }
    }

    /// Refill for the time passed up to `now_ms`; whether a reset may go out now.
    #[must_use]
    pub fn ready(&mut self, now_ms: u64) -> bool {
        let full = u64::from(self.rate) * 1000;
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        // `rate` thousandths of a token per ms is `rate` tokens a second.
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(u64::from(self.rate)))
            .min(full);
        self.milli_tokens >= 1000
    }

    /// Spend one reset from the budget (after [`ready`](Self::ready) said yes).
    pub fn take(&mut self) {
        self.milli_tokens = self.milli_tokens.saturating_sub(1000);
    }

    /// [`ready`](Self::ready) and, if so, [`take`](Self::take).
    #[must_use = "a reset the budget refused must not be sent"]
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let ok = self.ready(now_ms);
        if ok {
            self.take();
        }
        ok
    }
}

/// Most bytes a client can send after its SYN before it hears from us again: the window
/// of our SYN-ACK (never scaled, RFC 7323 §2.2) and a FIN.
const MAX_AHEAD: u32 = u16::MAX as u32 + 1;

/// Whether an ACK whose cookie failed may be a later segment of a handshake we answered
/// recently, sent after a first segment (the completing ACK, or the first data) that was
/// lost: SEG.ACK − 1 is a cookie of ours for this flow, but SEG.SEQ − 1 is `1..=MAX_AHEAD`
/// past the client's ISN. Such a segment is dropped without a reset, so the client's
/// retransmission of the first segment still opens the connection; with SYN cookies there
/// is no request sock to tell the two apart, which is why Linux resets it (its cookies are
/// a fallback, ours are the only path).
///
/// The cookie is linear in the ISN (Linux `secure_tcp_syn_cookie` adds it), so the ISN a
/// cookie stands for is `cookie − generate(flow, 0, mss, counter)`, for each of the four
/// MSS indices and the `MAX_AGE` counters still valid. A forged ACK passes this by chance
/// with probability about 2⁻¹³; it then gets no reset, as before this check existed.
pub fn later_segment_of_handshake(
    jar: &CookieJar,
    clock: &Clock,
    flow: &Flow,
    seg: &TcpRepr<'_>,
) -> bool {
    let cookie = seg.ack.sub(1).0;
    let first_isn = seg.seq.sub(1).0;
    let cf = flow.cookie_flow();
    let now = cookie::counter_from_unix_secs(clock.unix_secs);
    (0..cookie::MAX_AGE).any(|age| {
        (0..4u8).any(|mss_index| {
            let base = jar.generate(&cf, 0, mss_index, now.wrapping_sub(age));
            let isn = cookie.wrapping_sub(base);
            (1..=MAX_AHEAD).contains(&first_isn.wrapping_sub(isn))
        })
    })
}

/// RFC 9293 §3.7.1: without an MSS option, assume 536 (IPv4) or 1220 (IPv6) bytes.
pub fn default_mss(v6: bool) -> u16 {
    if v6 {
        1220
    } else {
        536
    }
}

/// The MSS we advertise: ours, less the extra 20 bytes of an IPv6 header.
pub fn our_mss(params: &Params, v6: bool) -> u16 {
    if v6 {
        params.mss.saturating_sub(20)
    } else {
        params.mss
    }
}

/// The window shift we offer for a listener's mode: buffered modes never offer more than
/// their buffer, which fits 16 bits, so they use shift 0 and the window never shrinks by
/// rounding.
pub fn rcv_wscale(params: &Params, mode: Mode) -> u8 {
    if mode.buffered() {
        0
    } else {
        params.window_scale
    }
}

/// RFC 9293 §3.10.7.2 LISTEN, third check ("If the SYN bit is set ..."), answered with a
/// cookie instead of a TCB: `<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>` where ISS is the cookie.
///
/// Options follow Linux's `tcp_make_synack`: MSS always; window scale and SACK-permitted
/// only when the SYN offered them *and* timestamps carry them through the cookie (the
/// options are encoded in the low 6 bits of our TSval, `cookie_init_timestamp`). Without
/// timestamps the connection runs without window scaling and SACK. The window field of a
/// SYN-ACK is never scaled (RFC 7323 §2.2).
pub fn on_syn(
    jar: &CookieJar,
    clock: &Clock,
    params: &Params,
    flow: &Flow,
    seg: &TcpRepr<'_>,
    mode: Mode,
    window: u32,
) -> Segment {
    let v6 = flow.is_v6();
    let client_mss = seg.options.mss.unwrap_or_else(|| default_mss(v6));
    let mss_index = cookie::mss_index(client_mss, v6);
    let counter = cookie::counter_from_unix_secs(clock.unix_secs);
    let iss = jar.generate(&flow.cookie_flow(), seg.seq.0, mss_index, counter);
    let mut options = TcpOptions {
        mss: Some(our_mss(params, v6)),
        ..TcpOptions::default()
    };
    if let (true, Some((tsval, _))) = (params.timestamps, seg.options.timestamps) {
        let wscale = rcv_wscale(params, mode);
        let ts = cookie::ts_encode(
            clock.tick().tsval().0,
            TsCookieOptions {
                snd_wscale: seg.options.window_scale,
                sack_ok: seg.options.sack_permitted,
                ecn_ok: false,
            },
        );
        options.timestamps = Some((ts, tsval));
        options.sack_permitted = seg.options.sack_permitted;
        options.window_scale = seg.options.window_scale.map(|_| wscale);
    }
    Segment {
        flags: TcpFlags::SYN | TcpFlags::ACK,
        seq: SeqNumber(iss),
        ack: seg.seq.add(1),
        window: window.min(u16::MAX as u32) as u16,
        options,
        payload: Payload::Empty,
    }
}

/// RFC 9293 §3.10.7.2 LISTEN with an ACK: with SYN cookies, the ACK completing a handshake
/// we answered. Verifies it like Linux's `cookie_v4_check`: not with SYN or RST, the ACK
/// number is cookie+1, the hash and the minute counter are valid, and the echoed timestamp
/// decodes. Returns the negotiated parameters for the new TCB; on
/// [`CookieInvalid`](DropReason::CookieInvalid) or [`CookieExpired`](DropReason::CookieExpired)
/// the caller resets, as Linux does when `cookie_v4_check` hands the listener back to
/// `tcp_rcv_state_process` (an ACK in LISTEN: `tcp_v4_send_reset`).
pub fn on_cookie_ack(
    jar: &CookieJar,
    clock: &Clock,
    params: &Params,
    flow: &Flow,
    seg: &TcpRepr<'_>,
    mode: Mode,
) -> Result<Negotiated, DropReason> {
    if !seg.flags.contains(TcpFlags::ACK) || seg.flags.intersects(TcpFlags::SYN | TcpFlags::RST) {
        return Err(DropReason::NoConnection);
    }
    let v6 = flow.is_v6();
    let client_isn = seg.seq.sub(1);
    let iss = seg.ack.sub(1);
    let counter = cookie::counter_from_unix_secs(clock.unix_secs);
    let mss_index = jar
        .check(&flow.cookie_flow(), client_isn.0, iss.0, counter)
        .map_err(|e| match e {
            CookieError::Invalid => DropReason::CookieInvalid,
            CookieError::Expired => DropReason::CookieExpired,
        })?;
    let mss = cookie::mss_from_index(mss_index, v6).min(our_mss(params, v6));
    let (ts_recent, ts_opts) = match (params.timestamps, seg.options.timestamps) {
        (true, Some((tsval, tsecr))) => match cookie::ts_decode(tsecr) {
            Some(o) => (Some(TsVal(tsval)), Some(o)),
            None => return Err(DropReason::CookieInvalid),
        },
        _ => (None, None),
    };
    Ok(Negotiated {
        iss,
        irs: client_isn,
        mss,
        snd_wscale: ts_opts.and_then(|o| o.snd_wscale),
        rcv_wscale: rcv_wscale(params, mode),
        sack: ts_opts.is_some_and(|o| o.sack_ok),
        ts_recent,
        mode,
    })
}
