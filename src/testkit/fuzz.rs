//! The one stateful fuzzer. Its input is a sequence of byte records (raw frames, clock
//! steps, `close_all`, and *templates*: valid segments of client `k` built from a few
//! input-chosen fields, so that the fuzzer reaches ESTABLISHED and the closing states
//! without guessing cookies; optionally mangled by [`Mutation`]s and re-checksummed).
//! [`Session`] interprets them against one [`Net`], which checks every frame.
//!
//! Three drivers share it, so a property test is a fuzz target and the other way round:
//! the cargo-fuzz targets (`fuzz/fuzz_targets/`) feed it libFuzzer's bytes, the hardening
//! run (`tests/harden.rs`) feeds it records drawn from a seeded [`Rng`] by [`generate`],
//! and `tests/tcp_props.rs` feeds it proptest's. [`Frames`] is the single-frame target.

use std::net::Ipv4Addr;

use super::frame::{fix_checksums, tcp_header_mut, Seg};
use super::net::{tracing, Net, SERVER_MAC, SERVER_V4};
use super::peer::{Peer, CLIENT_MAC, CLIENT_V4};
use crate::rng::Rng;
use crate::table::CoreConfig;
use crate::tcp::responder::{HttpResponses, Mode};
use crate::tcp::Params;
use crate::wire::{
    ArpOperation, ArpRepr, EtherType, EthernetRepr, SeqNumber, TcpFlags, TcpOptions,
};

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
/// Number of modelled clients; a template's client byte is taken modulo this.
pub const CLIENTS: usize = 12;

/// Short timers so that the final drain is cheap, a small table and pool so that
/// exhaustion is reachable.
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

/// The server every fuzzer runs: standalone (answers ARP and NDP as [`SERVER_MAC`]) on
/// 198.18.0.2 and 2001:2::2, listeners [`LISTENERS`], 32 connections, 8 buffers.
pub fn server(verify_checksums: bool) -> Net {
    let cfg = CoreConfig {
        params: params(),
        capacity: 32,
        buffers: 8,
        buffer_size: 4096,
        http: HttpResponses::new(200, "text/plain", "synack\n"),
        listeners: LISTENERS.to_vec(),
        ..CoreConfig::default()
    };
    Net::with_stack(cfg, |s| {
        s.verify_checksums = verify_checksums;
        s.standalone = Some(SERVER_MAC);
    })
}

/// The `frames` target: one frame into two long-lived servers, one with checksum
/// verification off (so the input reaches the IP, TCP, cookie and state-machine layers
/// without computing checksums) and one with it on, as deployed. Should a frame ever open
/// a connection (a forged cookie), it is closed and drained at once, and nothing may leak,
/// so every input starts from an empty table.
pub struct Frames([Net; 2]);

impl Default for Frames {
    fn default() -> Self {
        Frames([server(false), server(true)])
    }
}

impl Frames {
    /// Run one input.
    pub fn run(&mut self, data: &[u8]) {
        for net in &mut self.0 {
            net.inject(data);
            if net.core().active() > 0 {
                net.drain_and_check(DRAIN_STEPS);
            }
        }
    }
}

/// Record tags (the tag byte is taken modulo 8, so every byte is some record).
pub mod tag {
    /// `len: u16 BE` then `len` bytes (fewer if the input ends): one raw frame.
    pub const FRAME: u8 = 0;
    /// `ms: u16 BE`: advance the clock and run timers.
    pub const ADVANCE: u8 = 1;
    /// `close_all` (shutdown of every connection).
    pub const CLOSE_ALL: u8 = 2;
    /// `client, kind, arg: u16 BE, extra`: one valid segment of a client (also 4 and 5);
    /// see [`kind`](super::kind). Beyond the SYN, `extra` bit 6 leaves the timestamps out
    /// and bit 7 adds URG.
    pub const TEMPLATE: u8 = 3;
    /// A template, then a count byte `n` and `n % 5` [`Mutation`](super::Mutation)s of 4 bytes each
    /// (`op, at: u16 BE, value`; `Extend` takes `value` more bytes), then a byte whose
    /// bit 0 asks for the checksums to be recomputed ([`fix_checksums`](super::fix_checksums)).
    pub const MANGLED: u8 = 6;
    /// A template, then `at, value`: byte `at % len` of its frame overwritten (checksums
    /// stay stale).
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

/// One edit of a frame. Offsets are taken modulo the frame's length, so every value is
/// some edit; the TCP edits find the header with the wire views (any VLAN, IPv4 or IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// XOR a byte with a non-zero mask.
    Flip(usize, u8),
    /// Overwrite a byte.
    Set(usize, u8),
    /// Cut the frame at an offset (modulo length + 1).
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Rewrite the TCP flags and move SEG.SEQ by a signed delta.
    TcpFlagsSeq(u8, i16),
    /// Rewrite the TCP data offset (in words) and one byte of the options and payload.
    TcpOptions(u8, usize, u8),
}

impl Mutation {
    /// The mutation a record's 4 bytes (`op, at, value`) describe; `Extend` takes `value`
    /// bytes from `more`.
    pub fn decode(op: u8, at: u16, value: u8, more: &mut impl FnMut(usize) -> Vec<u8>) -> Self {
        let i = usize::from(at);
        match op % 6 {
            0 => Mutation::Flip(i, value | 1),
            1 => Mutation::Set(i, value),
            2 => Mutation::Truncate(i),
            3 => Mutation::Extend(more(usize::from(value))),
            4 => Mutation::TcpFlagsSeq(value, at as i16 / 32),
            _ => Mutation::TcpOptions(value >> 4, i, value % 9),
        }
    }

    /// Apply this edit to `f`.
    pub fn apply(&self, f: &mut Vec<u8>) {
        match *self {
            Mutation::Flip(i, b) if !f.is_empty() => {
                let n = f.len();
                f[i % n] ^= b;
            }
            Mutation::Set(i, b) if !f.is_empty() => {
                let n = f.len();
                f[i % n] = b;
            }
            Mutation::Truncate(i) => f.truncate(i % (f.len() + 1)),
            Mutation::Extend(ref bytes) => f.extend_from_slice(bytes),
            Mutation::TcpFlagsSeq(flags, delta) => {
                if let Some(mut tcp) = tcp_header_mut(f) {
                    tcp.set_flags(TcpFlags(flags));
                    let seq = tcp.seq_number().0.wrapping_add(delta as i32 as u32);
                    tcp.set_seq_number(SeqNumber(seq));
                }
            }
            Mutation::TcpOptions(words, i, b) => {
                if let Some(mut tcp) = tcp_header_mut(f) {
                    tcp.set_header_len(usize::from(words) * 4);
                    // Past the 20 fixed bytes: the options, then the payload.
                    let seg = tcp.into_inner();
                    if seg.len() > 20 {
                        let n = seg.len() - 20;
                        seg[20 + i % n] = b;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Apply `ms` in order.
pub fn mutate(mut f: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        m.apply(&mut f);
    }
    f
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

/// Client `k` of the stateful target: IPv6 for every third, port 30000 + k, server port
/// by `k` over [`LISTENERS`], its TSval clock 7 s + k s ahead of the server's.
pub fn client(k: usize) -> Peer {
    let port = 30_000 + k as u16;
    let mut p = if k.is_multiple_of(3) {
        Peer::v6(port)
    } else {
        Peer::v4(port)
    };
    p.server_port = LISTENERS[k % LISTENERS.len()].0;
    p.ts_offset = 7_000 + k as u32 * 1_000;
    p.iss = 0;
    p.syn_options = TcpOptions::default();
    p
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

/// The stateful target: one fresh server and [`CLIENTS`] client models.
pub struct Session {
    /// The server under test.
    pub net: Net,
    /// The client models.
    pub clients: Vec<Peer>,
    /// What the server sent in answer to the latest record.
    pub sent: Vec<Seg>,
    /// Records run so far.
    pub records: u64,
    scratch: Vec<u8>,
}

impl Session {
    /// A fresh server ([`server`]) and clients.
    pub fn new(verify_checksums: bool) -> Session {
        Session {
            net: server(verify_checksums),
            clients: (0..CLIENTS).map(client).collect(),
            sent: Vec::with_capacity(16),
            records: 0,
            scratch: Vec::new(),
        }
    }

    /// The `stack` target: one whole input against a fresh server with checksum
    /// verification off (so raw records reach the deep layers), then the end-of-input
    /// invariants ([`Self::finish`]).
    pub fn run(data: &[u8]) {
        let mut s = Session::new(false);
        s.feed(data);
        s.finish();
    }

    /// Run every record of `data`.
    pub fn feed(&mut self, data: &[u8]) {
        let mut rest = data;
        while let Some((&t, tail)) = rest.split_first() {
            rest = self.record(t, tail);
        }
    }

    /// `close_all`, [`DRAIN_STEPS`] seconds of timers, and nothing may be left.
    pub fn finish(mut self) {
        if tracing() {
            eprintln!("end: states {:?}", self.net.states());
        }
        self.net.drain_and_check(DRAIN_STEPS);
    }

    /// Run one record with tag `t`; returns the bytes after it.
    pub fn record<'a>(&mut self, t: u8, rest: &'a [u8]) -> &'a [u8] {
        let mut r = Reader(rest);
        self.records += 1;
        self.sent = match t % 8 {
            tag::FRAME => {
                let n = usize::from(r.u16());
                let frame = r.take(n);
                if tracing() {
                    eprintln!("frame {} bytes", frame.len());
                }
                self.net.inject(frame)
            }
            tag::ADVANCE => {
                let ms = r.u16();
                if tracing() {
                    eprintln!("advance {ms} ms");
                }
                self.net.advance(u64::from(ms))
            }
            tag::CLOSE_ALL => {
                if tracing() {
                    eprintln!("close_all");
                }
                self.net.close_all()
            }
            t => {
                let (k, kind, arg, extra) = (r.u8(), r.u8(), r.u16(), r.u8());
                let k = usize::from(k) % CLIENTS;
                let mut frame = self.template(k, kind, arg, extra);
                if t == tag::MUTATED {
                    let (at, value) = (r.u8(), r.u8());
                    let at = usize::from(at) % frame.len();
                    frame[at] = value;
                } else if t == tag::MANGLED {
                    for _ in 0..r.u8() % 5 {
                        let (op, at, value) = (r.u8(), r.u16(), r.u8());
                        Mutation::decode(op, at, value, &mut |n| r.take(n).to_vec())
                            .apply(&mut frame);
                    }
                    if r.u8() & 1 == 1 {
                        fix_checksums(&mut frame);
                    }
                }
                self.net.inject(&frame)
            }
        };
        for c in &mut self.clients {
            c.absorb(&self.sent);
        }
        r.0
    }

    /// Build the frame of one template record for client `k` (and update its model as
    /// sending it does).
    fn template(&mut self, k: usize, kind: u8, arg: u16, extra: u8) -> Vec<u8> {
        let c = &mut self.clients[k];
        let tsval = c.tsval(&self.net);
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
                c.syn_options = TcpOptions {
                    mss: (extra & 1 != 0).then_some(1460),
                    window_scale: (extra & 2 != 0).then_some(7),
                    sack_permitted: extra & 4 != 0,
                    timestamps: (extra & 8 != 0).then_some((tsval, 0)),
                    ..TcpOptions::default()
                };
                options = c.syn_options;
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
        if tracing() {
            eprintln!("client {k} ({}): <{flags:?} SEQ={seq} ACK={ack}>", c.port);
        }
        let frame = c.frame(flags, seq, ack, data, options);
        if advance {
            let len = data.len() as u32 + u32::from(flags.contains(TcpFlags::FIN));
            c.snd_nxt = c.snd_nxt.wrapping_add(len);
        }
        frame
    }
}

/// Encoders of the stateful target's records (for seeds, tests and [`generate`]).
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

    /// One encoded [`Mutation`](super::Mutation) of a mangled record (an `Extend` is
    /// followed by its `value` bytes).
    pub fn mutation(op: u8, at: u16, value: u8) -> [u8; 4] {
        let a = at.to_be_bytes();
        [op, a[0], a[1], value]
    }

    /// A mangled record: `template` (a [`template`] record) with `n` encoded mutations
    /// `ms` and, if `fix`, checksums recomputed after them.
    pub fn mangled(template: &[u8], n: u8, ms: &[u8], fix: bool) -> Vec<u8> {
        let mut v = template.to_vec();
        v[0] = tag::MANGLED;
        v.push(n);
        v.extend_from_slice(ms);
        v.push(u8::from(fix));
        v
    }

    /// A raw frame.
    pub fn frame(bytes: &[u8]) -> Vec<u8> {
        let n = (bytes.len() as u16).to_be_bytes();
        let mut v = vec![tag::FRAME, n[0], n[1]];
        v.extend_from_slice(bytes);
        v
    }
}

/// An ARP request from the clients for `target` (ours or not), as a raw frame.
fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    let eth = EthernetRepr {
        src: CLIENT_MAC,
        dst: [0xff; 6],
        vlan: None,
        ethertype: EtherType::ARP,
    };
    let arp = ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: CLIENT_MAC,
        sender_ip: CLIENT_V4,
        target_mac: [0; 6],
        target_ip: target,
    };
    let mut f = vec![0; eth.header_len() + ArpRepr::LEN];
    eth.emit(&mut f);
    arp.emit(&mut f[eth.header_len()..]);
    f
}

/// The kinds of a client's valid step, by weight (as a hardening run sends them).
const STEPS: [u8; 8] = [
    kind::SYN,
    kind::ACK,
    kind::ACK,
    kind::DATA,
    kind::DATA,
    kind::FIN,
    kind::RST,
    kind::WINDOW,
];

/// A valid step of client `k` drawn from `rng`: every fifth client's SYN is bare, the
/// others offer every option; data is a GET or a POST; RSTs are at SND.NXT.
fn valid_step(rng: &mut Rng, k: u8) -> Vec<u8> {
    let kind = STEPS[rng.below(8) as usize];
    let (arg, extra) = match kind {
        kind::SYN => (
            rng.next_u64() as u16,
            if k.is_multiple_of(5) { 0 } else { 0x0f },
        ),
        kind::DATA => (0, (rng.below(2) as u8) << 5),
        kind::WINDOW => (rng.below(3) as u16 * 300, 0),
        _ => (0, 0),
    };
    rec::template(k, kind, arg, extra)
}

/// Append one record drawn from `rng` to `out`, in the proportions of a hardening run:
/// 30 % a client's valid step, 55 % a client's segment (any kind, any fields) mangled by
/// 1–4 mutations with the checksums fixed half of the time (so the deeper layers are
/// reached), 7 % random bytes (half of them behind the Ethernet and IP header of a
/// client's segment, re-checksummed), 4 % clock jumps up to 3 s, 4 % ARP requests (for
/// us or someone else, sometimes corrupted).
pub fn generate_one(rng: &mut Rng, out: &mut Vec<u8>) {
    let k = rng.below(CLIENTS as u64) as u8;
    let roll = rng.below(100);
    if roll < 30 {
        out.extend(valid_step(rng, k));
    } else if roll < 85 {
        let n = 1 + rng.below(4) as u8;
        let mut ms = Vec::new();
        for _ in 0..n {
            let (op, at, value) = (rng.byte(), rng.next_u64() as u16, rng.byte());
            ms.extend(rec::mutation(op, at, value));
            if op % 6 == 3 {
                ms.extend(rng.bytes(usize::from(value)));
            }
        }
        let t = rec::template(k, rng.byte(), rng.next_u64() as u16, rng.byte());
        out.extend(rec::mangled(&t, n, &ms, rng.chance(50)));
    } else if roll < 92 && rng.chance(50) {
        let n = rng.below(200) as usize;
        out.extend(rec::frame(&rng.bytes(n)));
    } else if roll < 92 {
        let n = rng.below(200) as u8;
        let mut ms = [rec::mutation(2, 34, 0), rec::mutation(3, 0, n)].concat();
        ms.extend(rng.bytes(usize::from(n)));
        let t = rec::template(k, kind::DATA, 0, 0);
        out.extend(rec::mangled(&t, 2, &ms, true));
    } else if roll < 96 {
        out.extend(rec::advance(rng.below(3_000) as u16));
    } else {
        let target = if rng.chance(50) {
            SERVER_V4
        } else {
            Ipv4Addr::new(198, 18, 0, 9)
        };
        let mut f = arp_request(target);
        if rng.chance(30) {
            let at = rng.below(f.len() as u64) as usize;
            f[at] = rng.byte();
        }
        out.extend(rec::frame(&f));
    }
}

/// `n` records drawn from `rng` ([`generate_one`]).
pub fn generate(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 16);
    for _ in 0..n {
        generate_one(rng, &mut out);
    }
    out
}
