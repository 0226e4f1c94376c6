//! LISTEN without state: a SYN is answered with a cookie SYN-ACK and forgotten; the ACK
//! that carries the cookie back creates the connection (RFC 4987 §3.6, Linux syncookies).
//!
//! Like quinn-proto's `Incoming`, each function returns a value the caller must act on:
//! [`on_syn`] the SYN-ACK to send, [`on_cookie_ack`] either the [`Negotiated`] parameters
//! of a new connection or the [`DropReason`] to count.

use super::conn::Negotiated;
use super::cookie::{self, CookieError, CookieJar, TsCookieOptions};
use super::responder::Mode;
use super::{Clock, Flow, Params, Payload, Segment};
use crate::counters::DropReason;
use crate::wire::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};

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
            clock.tick(),
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
/// decodes. Returns the negotiated parameters for the new TCB.
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
            Some(o) => (Some(tsval), Some(o)),
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
