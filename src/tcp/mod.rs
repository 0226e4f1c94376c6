//! The TCP protocol core, sans-IO: SYN cookies, the RFC 9293 state machine, responders and
//! timers. Nothing here reads a clock or touches a socket: the caller passes a [`Clock`]
//! reading in, hands over parsed segments, and takes [`Tx`] segments and the next timer
//! deadline out. That keeps every path testable with a virtual clock.
//!
//! - [`cookie`]: Linux-compatible SYN cookies (the LISTEN state keeps no memory).
//! - [`listen`]: the stateless LISTEN answer, a value the caller must act on.
//! - [`conn`]: the transmission control block and one function per RFC 9293 §3.10.7 step.
//! - [`responder`]: what the server does with a connection (discard, echo, http, close).
//! - [`timer`]: timer kinds with their deadlines, and the per-core timer wheel.
//! - [`time`]: the millisecond [`Tick`] and the RFC 7323 [`TsVal`], compared modulo 2^32.

#![forbid(unsafe_code)]

pub mod conn;
pub mod cookie;
pub mod listen;
pub mod responder;
pub mod time;
pub mod timer;

pub use time::{Tick, TsVal};

use crate::wire::{SeqNumber, TcpFlags, TcpOptions};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A reading of the caller's clocks, taken once per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Monotonic milliseconds (any origin). Drives timers and TSval.
    pub ms: u64,
    /// Wall-clock seconds since the Unix epoch. Drives the SYN cookie minute counter, so
    /// that nodes sharing a secret agree on it.
    pub unix_secs: u64,
}

impl Clock {
    /// The 32-bit millisecond tick stored in connection fields (wraps every 49.7 days;
    /// [`Tick`] compares modulo 2^32).
    #[inline(always)]
    pub fn tick(&self) -> Tick {
        Tick::from_ms(self.ms)
    }
}

/// The largest IPv4 MSS a link of `mtu` bytes carries (RFC 9293 §3.7.1, RFC 879: the MTU
/// less a 20-byte IPv4 header and a 20-byte TCP header; IPv6 takes 20 more, see
/// `listen::our_mss`). `Params::mss` must not exceed it, or full segments leave as frames
/// larger than the link takes.
pub fn mss_for_mtu(mtu: u32) -> u16 {
    mtu.saturating_sub(40).min(u16::MAX as u32) as u16
}

/// Protocol parameters for one core (resolved from the config).
#[derive(Debug, Clone)]
pub struct Params {
    /// Our MSS (advertised; also the cap on what we send).
    pub mss: u16,
    /// Receive window we offer, in bytes, for modes that do not buffer (discard, close).
    pub window: u32,
    /// Our window scale shift (RFC 7323 §2.3), offered when the client offers one.
    pub window_scale: u8,
    /// Whether we use timestamps when the client offers them (RFC 7323).
    pub timestamps: bool,
    /// TIME-WAIT length (2*MSL), milliseconds.
    pub time_wait_ms: u32,
    /// Idle timeout, milliseconds; 0 = never.
    pub idle_timeout_ms: u32,
    /// Initial retransmission timeout (RFC 6298 §2.1), milliseconds.
    pub rto_initial_ms: u32,
    /// Upper bound of the backed-off RTO (RFC 6298 §2.5), milliseconds.
    pub rto_max_ms: u32,
    /// Retransmissions before we give up, send RST and remove the connection.
    pub max_retries: u8,
    /// Challenge ACKs allowed per second on one core, on average (RFC 5961 §7; Linux
    /// `tcp_challenge_ack_limit`): each second's budget is drawn from
    /// `[limit/2, limit*3/2)` (see [`conn::ChallengeLimiter`]).
    pub challenge_ack_limit: u32,
    /// Key of the per-second random draw of the challenge ACK budget. The caller fills it
    /// from the OS random source at start (this layer reads no RNG); the default, all
    /// zeros, keeps tests deterministic.
    pub challenge_ack_key: [u8; 16],
    /// When we close after the peer's FIN with nothing left to send, put our FIN on the
    /// ACK of theirs (three segments instead of four). `false` gives the four-segment close.
    pub fin_with_ack: bool,
    /// Refuse with RST (true) or silently drop (false) when the table is full.
    pub rst_when_full: bool,
    /// Longest time the peer's window may stay zero while we hold data before we reset
    /// the connection (RFC 6429), milliseconds; 0 = probe as long as it answers.
    pub persist_timeout_ms: u32,
    /// Longest time from our decision to close until our FIN is acknowledged, when data
    /// is in the way, before we reset the connection, milliseconds.
    pub close_timeout_ms: u32,
    /// Longest time an http request head may take to arrive before 408 and close,
    /// milliseconds; 0 = no limit.
    pub header_timeout_ms: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            mss: 1460,
            window: 262_144,
            window_scale: 7,
            timestamps: true,
            time_wait_ms: 60_000,
            idle_timeout_ms: 300_000,
            rto_initial_ms: 1_000,
            rto_max_ms: 60_000,
            max_retries: 6,
            challenge_ack_limit: 1_000,
            challenge_ack_key: [0; 16],
            fin_with_ack: true,
            rst_when_full: true,
            persist_timeout_ms: 120_000,
            close_timeout_ms: 60_000,
            header_timeout_ms: 20_000,
        }
    }
}

/// The addresses and ports of a connection, from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// IPv4 four-tuple.
    V4 {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        remote: Ipv4Addr,
        /// Our port.
        local_port: u16,
        /// The peer's port.
        remote_port: u16,
    },
    /// IPv6 four-tuple.
    V6 {
        /// Our address.
        local: Ipv6Addr,
        /// The peer's address.
        remote: Ipv6Addr,
        /// Our port.
        local_port: u16,
        /// The peer's port.
        remote_port: u16,
    },
}

impl Flow {
    /// Our port.
    pub fn local_port(&self) -> u16 {
        match *self {
            Flow::V4 { local_port, .. } | Flow::V6 { local_port, .. } => local_port,
        }
    }

    /// The peer's port.
    pub fn remote_port(&self) -> u16 {
        match *self {
            Flow::V4 { remote_port, .. } | Flow::V6 { remote_port, .. } => remote_port,
        }
    }

    /// Whether this is an IPv6 flow.
    pub fn is_v6(&self) -> bool {
        matches!(self, Flow::V6 { .. })
    }

    /// Our address.
    pub fn local(&self) -> std::net::IpAddr {
        match *self {
            Flow::V4 { local, .. } => local.into(),
            Flow::V6 { local, .. } => local.into(),
        }
    }

    /// The peer's address.
    pub fn remote(&self) -> std::net::IpAddr {
        match *self {
            Flow::V4 { remote, .. } => remote.into(),
            Flow::V6 { remote, .. } => remote.into(),
        }
    }

    /// The cookie hash input: the client (remote) is the SYN's source.
    pub fn cookie_flow(&self) -> cookie::CookieFlow {
        cookie::CookieFlow {
            src: self.remote(),
            dst: self.local(),
            src_port: self.remote_port(),
            dst_port: self.local_port(),
        }
    }
}

/// Where the payload of an outgoing segment lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// No payload.
    Empty,
    /// `len` bytes at `offset` in send buffer `buf` of the core's buffer pool.
    Buffer {
        /// Buffer index in the pool.
        buf: u32,
        /// Offset of the first byte in that buffer's send data.
        offset: u32,
        /// Number of bytes.
        len: u32,
    },
}

impl Payload {
    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        match *self {
            Payload::Empty => 0,
            Payload::Buffer { len, .. } => len as usize,
        }
    }

    /// Whether there is no payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which link-layer path an outgoing segment takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Reverse the Ethernet header (MACs, VLAN) of the frame being answered.
    Reply,
    /// A path interned in the core's neighbour table (timer-driven sends).
    Path(u16),
}

/// One TCP segment to transmit.
#[must_use = "a segment is only sent once queued or written"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.SEQ.
    pub seq: SeqNumber,
    /// SEG.ACK (meaningful when `flags` has ACK).
    pub ack: SeqNumber,
    /// SEG.WND as it goes on the wire (already shifted by our window scale).
    pub window: u16,
    /// Options (MSS/WS/SACK_PERM on SYN-ACK; TS whenever negotiated).
    pub options: TcpOptions,
    /// Data carried.
    pub payload: Payload,
}

/// A segment with where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tx {
    /// Addresses and ports (from our side).
    pub flow: Flow,
    /// Link-layer path.
    pub link: Link,
    /// The segment.
    pub seg: Segment,
}

impl Segment {
    /// A segment with only control bits, no options or data.
    pub fn control(flags: TcpFlags, seq: SeqNumber, ack: SeqNumber, window: u16) -> Self {
        Segment {
            flags,
            seq,
            ack,
            window,
            options: TcpOptions::default(),
            payload: Payload::Empty,
        }
    }
}

/// RFC 9293 §3.10.7.1: the RST for a segment that reached no connection. "If the incoming
/// segment has an ACK field, the reset takes its sequence number from the ACK field of the
/// segment, otherwise the reset has sequence number zero and the ACK field is set to the sum
/// of the sequence number and segment length of the incoming segment."
pub fn reset_for(seg: &crate::wire::TcpRepr<'_>) -> Segment {
    if seg.flags.contains(TcpFlags::ACK) {
        Segment::control(TcpFlags::RST, seg.ack, SeqNumber(0), 0)
    } else {
        Segment::control(
            TcpFlags::RST | TcpFlags::ACK,
            SeqNumber(0),
            seg.seq.add(seg.segment_len()),
            0,
        )
    }
}
