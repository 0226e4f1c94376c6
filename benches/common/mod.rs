//! Fixtures shared by the bench binaries: realistic frames built with
//! [`synack::wire::TcpFrame`] from the test kit's [`Preset::Linux`] client, stacks
//! configured as the server runs them, and full connection lifecycles derived by
//! running each flow once through a reference stack (so every precomputed ACK carries the
//! cookie and the sequence numbers the server really produced).
//!
//! Addresses: server 198.18.0.1:80, clients spread over 198.18.0.16 .. 198.19.134.175
//! (inside 198.18.0.0/15) and the Linux ephemeral port range. Nothing here touches a NIC.
//! Replies are read with the kit's parser ([`parse_frame`]); per-flow numbers come from
//! its splitmix64 ([`mix`]).
#![allow(dead_code)] // each bench binary uses a different part of this module

use std::net::{IpAddr, Ipv4Addr};

use synack::engine::{Outcome, Stack};
use synack::table::{Core, CoreConfig};
use synack::tcp::cookie::CookieJar;
use synack::tcp::responder::Mode;
use synack::tcp::{Clock, Params};
use synack::testkit::{mix, parse_frame, Preset};
use synack::wire::{SeqNumber, TcpFlags, TcpFrame, TcpOptions, TcpRepr};

/// Our (server) MAC.
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The client's (or its router's) MAC.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Our address.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The listening port (discard mode).
pub const PORT: u16 = 80;
/// A fixed cookie secret, so the reference stack and the measured one agree.
pub const SECRET: [u8; 16] = *b"synack-benchmark";
/// Wall-clock seconds of every bench clock (the cookie counter never changes mid-run).
pub const UNIX_SECS: u64 = 1_700_000_040;
/// Monotonic ms at which bench clocks start.
pub const START_MS: u64 = 10_000_000;
/// Distinct client addresses before the port changes.
const ADDRS: u32 = 100_000;
/// First client address (198.18.0.16).
const CLIENT_BASE: u32 = 0xc612_0010;

/// The bench clock at `ms` past the start.
pub fn clock(ms: u64) -> Clock {
    Clock {
        ms: START_MS + ms,
        unix_secs: UNIX_SECS,
    }
}

/// Client `i`'s address and port: distinct for every `i` below 2.8 M.
pub fn client(i: u32) -> (Ipv4Addr, u16) {
    let addr = Ipv4Addr::from(CLIENT_BASE + i % ADDRS);
    let port = 32768 + (i / ADDRS) as u16;
    (addr, port)
}

/// A permutation of `0..n` (Fisher–Yates with splitmix), to visit keys in cache-hostile
/// order.
pub fn shuffled(n: usize, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = (mix(seed ^ i as u64) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Build one client → server IPv4 TCP frame (checksums filled, no padding: a bare ACK is
/// 54 bytes, as the frames the figures were measured with).
pub fn client_frame(
    i: u32,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    options: TcpOptions,
) -> Vec<u8> {
    let (src, port) = client(i);
    let frame = TcpFrame {
        src_mac: CLIENT_MAC,
        dst_mac: SERVER_MAC,
        vlan: None,
        src: src.into(),
        dst: SERVER.into(),
        ttl: 64,
        tcp: TcpRepr {
            src_port: port,
            dst_port: PORT,
            seq: SeqNumber(seq),
            ack: SeqNumber(ack),
            flags,
            window,
            options,
            payload: &[],
        },
    };
    let mut buf = frame.to_vec().expect("IPv4 to IPv4");
    buf.truncate(frame.unpadded_len());
    buf
}

/// Client `i`'s initial sequence number.
pub fn isn(i: u32) -> u32 {
    mix(u64::from(i)) as u32
}

/// Client `i`'s first TSval.
pub fn tsval(i: u32) -> u32 {
    (mix(u64::from(i) ^ 0xabcdef) >> 40) as u32
}

/// The 74-byte SYN a Linux client sends: MSS 1460, SACK_PERM, TS, NOP, WS 7, window 64240.
pub fn syn(i: u32) -> Vec<u8> {
    let linux = Preset::Linux;
    let options = linux.syn_options(tsval(i));
    let f = client_frame(i, isn(i), 0, TcpFlags::SYN, linux.syn_window(), options);
    debug_assert_eq!(f.len(), 74);
    f
}

/// The server as it runs: discard on port 80, FIN piggybacked on the ACK of the peer's
/// FIN, checksums verified, one IPv4 address. `tweak` edits the parameters.
pub fn stack(capacity: usize, tweak: impl FnOnce(&mut Params)) -> Stack {
    Stack::new(core(capacity, tweak), &[IpAddr::V4(SERVER)])
}

/// The core of [`stack`], for a stack set up otherwise (steering).
pub fn core(capacity: usize, tweak: impl FnOnce(&mut Params)) -> Core {
    let mut params = Params::default();
    tweak(&mut params);
    let cfg = CoreConfig {
        params,
        capacity,
        buffers: 16,
        buffer_size: 4096,
        listeners: vec![(PORT, Mode::Discard)],
        ..CoreConfig::default()
    };
    Core::new(&cfg, CookieJar::new(SECRET), &clock(0))
}

/// Parse a server frame: (flags, seq, ack, TSval) of its TCP segment.
pub fn reply_fields(frame: &[u8]) -> (TcpFlags, u32, u32, Option<u32>) {
    let s = parse_frame(frame);
    (s.flags, s.seq, s.ack, s.tsval())
}

/// Hand a frame to `stack` in a 2 KiB buffer (a UMEM frame); returns the reply frame.
pub fn exchange(stack: &mut Stack, clk: &Clock, frame: &[u8]) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    buf[..frame.len()].copy_from_slice(frame);
    match stack.handle(clk, &mut buf, frame.len()) {
        Outcome::Reply(n) => Some(buf[..n].to_vec()),
        Outcome::Done => None,
        Outcome::Handoff(w) => panic!("unexpected handoff to {w}"),
    }
}

/// Equal-length frames stored back to back (one allocation, however many frames).
#[derive(Clone, Default)]
pub struct Frames {
    data: Vec<u8>,
    len: usize,
}

impl Frames {
    /// Append a frame (all frames of a set have one length).
    pub fn push(&mut self, frame: &[u8]) {
        assert!(
            self.len == 0 || self.len == frame.len(),
            "frames of one set differ in length"
        );
        self.len = frame.len();
        self.data.extend_from_slice(frame);
    }

    /// Frame `i`.
    #[inline(always)]
    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[i * self.len..(i + 1) * self.len]
    }

    /// Number of frames.
    pub fn count(&self) -> usize {
        self.data.len().checked_div(self.len).unwrap_or(0)
    }

    /// Length of each frame.
    pub fn frame_len(&self) -> usize {
        self.len
    }
}

/// SYNs of clients `0..n`.
pub fn syns(n: u32) -> Frames {
    let mut f = Frames::default();
    for i in 0..n {
        f.push(&syn(i));
    }
    f
}

/// The client frames of connections `0..n`, one set per step: SYN, the ACK completing
/// the cookie handshake, FIN+ACK, and the ACK of the server's FIN.
#[derive(Clone, Default)]
pub struct Lifecycles {
    /// 74-byte SYNs.
    pub syn: Frames,
    /// Cookie ACKs (54 bytes bare, 66 with timestamps).
    pub ack: Frames,
    /// The client's FIN+ACKs.
    pub fin: Frames,
    /// The ACKs of the server's FIN.
    pub last: Frames,
}

impl Lifecycles {
    /// The four steps of connection `i`, in order.
    #[inline(always)]
    pub fn steps(&self, i: usize) -> [&[u8]; 4] {
        [
            self.syn.get(i),
            self.ack.get(i),
            self.fin.get(i),
            self.last.get(i),
        ]
    }

    /// Number of connections.
    pub fn count(&self) -> usize {
        self.syn.count()
    }
}

/// Linux's raw window after the handshake with WS 7 (502), or the unscaled one.
fn client_window(ts: bool) -> u16 {
    if ts {
        Preset::Linux.window()
    } else {
        Preset::Linux.syn_window()
    }
}

/// The options a client's later segment carries: with `ts`, the TS option Linux sends
/// (TSval advanced by `k`, TSecr = the server's last TSval): a 66-byte frame; without, none:
/// the bare 54-byte frame.
fn later_opts(i: u32, ts: bool, k: u32, ecr: Option<u32>) -> TcpOptions {
    TcpOptions {
        timestamps: ts.then(|| (tsval(i).wrapping_add(k), ecr.unwrap_or(0))),
        ..TcpOptions::default()
    }
}

/// Answer client `i`'s SYN on `reference` and build the ACK that completes the cookie
/// handshake. Returns (ACK frame, our ISS, our TSval). Panics unless the answer is a
/// SYN-ACK for that SYN.
pub fn cookie_ack(reference: &mut Stack, i: u32, ts: bool) -> (Vec<u8>, u32, Option<u32>) {
    let synack = exchange(reference, &clock(0), &syn(i)).expect("SYN must be answered");
    let (flags, iss, ack, s_ts) = reply_fields(&synack);
    assert_eq!(flags, TcpFlags::SYN | TcpFlags::ACK, "client {i}: SYN-ACK");
    assert_eq!(
        ack,
        isn(i).wrapping_add(1),
        "client {i}: SYN-ACK acks the SYN"
    );
    let c = isn(i).wrapping_add(1);
    let frame = client_frame(
        i,
        c,
        iss.wrapping_add(1),
        TcpFlags::ACK,
        client_window(ts),
        later_opts(i, ts, 1, s_ts),
    );
    (frame, iss, s_ts)
}

/// Cookie ACKs of clients `0..n` (the SYNs answered by a reference stack).
pub fn cookie_acks(n: u32, ts: bool) -> Frames {
    let mut reference = stack(16, |_| {});
    let mut f = Frames::default();
    for i in 0..n {
        f.push(&cookie_ack(&mut reference, i, ts).0);
    }
    f
}

/// Derive the lifecycles of clients `0..n` by running each through a reference stack and
/// checking every answer: SYN → SYN-ACK, ACK → nothing (ESTABLISHED), FIN+ACK → FIN+ACK
/// (LAST-ACK, fin_with_ack), last ACK → nothing (CLOSED, the entry is gone). With `ts` the
/// client echoes timestamps as Linux does; without, its ACKs are bare 54-byte frames.
pub fn lifecycles(n: u32, ts: bool) -> Lifecycles {
    let mut reference = stack(1024, |_| {});
    let clk = clock(0);
    let mut out = Lifecycles::default();
    for i in 0..n {
        let (ack, iss, s_ts) = cookie_ack(&mut reference, i, ts);
        assert!(
            exchange(&mut reference, &clk, &ack).is_none(),
            "client {i}: ACK answered"
        );
        assert_eq!(reference.core.active(), 1, "client {i}: not established");
        let c = isn(i).wrapping_add(1);
        let window = client_window(ts);
        let fin = client_frame(
            i,
            c,
            iss.wrapping_add(1),
            TcpFlags::FIN | TcpFlags::ACK,
            window,
            later_opts(i, ts, 2, s_ts),
        );
        let finack = exchange(&mut reference, &clk, &fin).expect("FIN must be answered");
        let (flags, fseq, fack, f_ts) = reply_fields(&finack);
        assert_eq!(
            flags,
            TcpFlags::FIN | TcpFlags::ACK,
            "client {i}: server FIN+ACK"
        );
        assert_eq!(fack, c.wrapping_add(1), "client {i}: server acks our FIN");
        let last = client_frame(
            i,
            c.wrapping_add(1),
            fseq.wrapping_add(1),
            TcpFlags::ACK,
            window,
            later_opts(i, ts, 3, f_ts),
        );
        assert!(
            exchange(&mut reference, &clk, &last).is_none(),
            "client {i}: last ACK answered"
        );
        assert_eq!(
            reference.core.active(),
            0,
            "client {i}: connection not removed"
        );
        out.syn.push(&syn(i));
        out.ack.push(&ack);
        out.fin.push(&fin);
        out.last.push(&last);
    }
    assert_eq!(
        reference.counters().total_drops(),
        0,
        "reference stack dropped frames"
    );
    out
}

/// The order frames of `lc` arrive in at a busy server: a batch of 64 carries the SYNs of
/// 16 connections, the ACKs of the 16 before them, the FINs of the 16 before those and the
/// last ACKs of the 16 before those (every flow's frames in order, four stages in flight).
/// Returns (connection, step) for the `k`th frame, or `None` in the first three batches
/// for the later steps of connections that never sent a SYN. (Such orphans are not
/// harmless: a final ACK, whose SEQ and ACK are both one past the handshake's, passes the
/// cookie check like Linux's and opens a connection the client never meant to.)
#[inline(always)]
pub fn pipelined(k: usize, conns: usize) -> Option<(usize, usize)> {
    let batch = k / 64;
    let step = (k % 64) / 16;
    if step > batch {
        return None;
    }
    let conn = (16 * (batch - step) + k % 16) % conns;
    Some((conn, step))
}

/// Resident set size of this process in bytes ([`synack::io::sys::resident_bytes`]).
pub fn rss_bytes() -> usize {
    synack::io::sys::resident_bytes(std::process::id()).unwrap_or(0) as usize
}
