//! Hardening, in memory (no root): the stateful fuzzer of the fuzz targets, a forged-cookie ACK flood,
//! RFC 5961 blind injection, table exhaustion, a stalled TX ring and cookie secret rotation.
//!
//! The long runs use the same code with larger counts: `scripts/harden.sh` sets
//! `SYNACK_FUZZ_INPUTS` (10^8) and `SYNACK_FLOOD_FRAMES` (10^7) and runs in release mode.
//! CI runs the bounded defaults below.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;
use support::*;
use synack::counters::{DropReason, Event};
use synack::engine::{Stack, Worker};
use synack::io::memory::MemoryPort;
use synack::table::{Core, CoreConfig};
use synack::tcp::cookie::CookieJar;
use synack::tcp::responder::Mode;
use synack::tcp::{Clock, Params};
use synack::wire::TcpOptions;

/// Resident set size of this process in bytes (Linux /proc/self/statm).
fn rss_bytes() -> u64 {
    synack::io::sys::resident_bytes(std::process::id()).unwrap_or(0)
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The stateful fuzzer of the fuzz targets ([`Session`], `synack::testkit::fuzz`) fed
/// with `inputs` records drawn from a seeded [`Rng`] ([`fuzz::generate_one`]): 12 clients
/// run real handshakes, data and closes against one standalone server (checksums
/// verified, as deployed) while most records are their segments mangled (bit flips, byte
/// writes, truncation, extension, TCP flag, sequence and option rewrites) with the
/// checksums fixed half of the time so the deeper layers are reached, plus random bytes,
/// ARP requests and clock jumps. Checks (in [`Net::inject`]): no panic, a frame
/// increments at most one drop counter, every reply is a valid frame from our addresses;
/// at the end, after closing and letting timers run, no connection, buffer or timer entry
/// is left. Returns (inputs, inputs per second).
fn fuzz_stack(inputs: u64, seed: u64) -> (u64, f64) {
    let mut rng = Rng::new(seed);
    let mut session = Session::new(true);
    let mut chunk = Vec::new();
    let start = Instant::now();
    let mut left = inputs;
    while left > 0 {
        let n = left.min(4096);
        chunk.clear();
        for _ in 0..n {
            fuzz::generate_one(&mut rng, &mut chunk);
        }
        session.feed(&chunk);
        left -= n;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(session.records, inputs);
    session.finish();
    (inputs, inputs as f64 / secs)
}

/// The fuzz smoke run (CI); `SYNACK_FUZZ_INPUTS=100000000` for the long run.
#[test]
fn fuzz_stateful_frames_no_panic_no_leak() {
    let n = env_count("SYNACK_FUZZ_INPUTS", 60_000);
    let seeds = env_count("SYNACK_FUZZ_SEEDS", 3);
    let mut total = 0;
    let mut rate = 0.0;
    for seed in 0..seeds {
        let (k, r) = fuzz_stack(n / seeds.max(1), seed);
        total += k;
        rate = r;
    }
    println!("fuzz: {total} inputs, 0 panics, {rate:.0} inputs/s");
}

/// A flood of ACKs with random (forged) cookies from random clients: no connection is
/// created, memory does not move, and every frame is counted as cookie_invalid or
/// cookie_expired. `SYNACK_FLOOD_FRAMES=10000000` for the long run.
#[test]
fn forged_cookie_ack_flood_creates_nothing() {
    let n = env_count("SYNACK_FLOOD_FRAMES", 100_000);
    let mut net = Net::new(Params::default(), Mode::Discard);
    let mut rng = Rng::new(0x0dd_c0ffee);
    let mem_before = net.core().v4.memory_bytes() + net.core().v6.memory_bytes();
    let rss_before = rss_bytes();
    let mut peer = Peer::v4(1);
    let start = Instant::now();
    let mut resets = 0u64;
    for i in 0..n {
        peer.port = 1024 + (i % 60_000) as u16;
        // Sources in 198.19.0.0/16: never one of the server's own addresses.
        peer.addr = Ipv4Addr::from(0xc613_0000u32 | (rng.next_u32() & 0xffff)).into();
        let opts = if i % 2 == 0 {
            TcpOptions {
                timestamps: Some((rng.next_u32(), rng.next_u32())),
                ..TcpOptions::default()
            }
        } else {
            TcpOptions::default()
        };
        let ack = rng.next_u32();
        let f = peer.frame(ACK, rng.next_u32(), ack, b"", opts);
        // RFC 9293 §3.10.7.2: at most a reset <SEQ=SEG.ACK><CTL=RST>, within the budget.
        let out = net.inject(&f);
        if !out.is_empty() {
            one(out).expect(RST, ack, 0);
            resets += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    let c = &net.core().sh.counters;
    assert_eq!(net.core().active(), 0);
    assert_eq!(c.get(Event::Established), 0);
    assert_eq!(
        c.dropped(DropReason::CookieInvalid) + c.dropped(DropReason::CookieExpired),
        n
    );
    // The virtual clock stands still: one second's budget of resets (tcp.reset_limit,
    // default 1000), the rest counted as limited.
    assert!(
        resets <= 1000 && (n < 2000 || resets == 1000),
        "{resets} resets"
    );
    assert_eq!(c.get(Event::RstSent), resets);
    assert!(c.get(Event::RstLimited) + resets <= n);
    assert!(n < 2000 || c.get(Event::RstLimited) >= n - 1000 - n / 100);
    let mem_after = net.core().v4.memory_bytes() + net.core().v6.memory_bytes();
    assert_eq!(mem_before, mem_after, "table memory moved");
    assert_eq!(net.core().sh.wheel.len(), 0);
    println!(
        "forged ACK flood: {n} frames, 0 connections, invalid={} expired={}, table memory {mem_before} -> {mem_after} bytes, RSS {rss_before} -> {rss_after} bytes, {:.0} frames/s",
        c.dropped(DropReason::CookieInvalid),
        c.dropped(DropReason::CookieExpired),
        n as f64 / secs
    );
}

/// RFC 5961 §3–5: blind RST, SYN and data injected with in-window and out-of-window
/// sequence numbers against established connections tear nothing down and corrupt no
/// stream; challenge ACKs stay within the per-connection limit (one per 500 ms, Linux
/// `__tcp_oow_rate_limited`) and the per-core budget (§7, at most `limit + ceil(limit/2) - 1`
/// in a second, Linux `tcp_send_challenge_ack`). The virtual clock stands still, so with 8
/// connections and a budget below 8 both limits act.
#[test]
fn blind_injection_rfc5961_tears_nothing_down() {
    let limit = 4;
    let mut net = Net::new(
        Params {
            challenge_ack_limit: limit,
            ..Params::default()
        },
        Mode::Echo,
    );
    let mut peers: Vec<Peer> = (0..8).map(|i| Peer::v4(41_000 + i)).collect();
    for p in &mut peers {
        p.connect(&mut net);
    }
    let mut rng = Rng::new(5961);
    let n = env_count("SYNACK_INJECT_FRAMES", 50_000);
    let mut attacker_frames = 0;
    for _ in 0..n {
        let p = &peers[rng.below(peers.len() as u64) as usize];
        let rcv_nxt = p.snd_nxt; // the server's RCV.NXT
                                 // In the window but never exactly RCV.NXT (a blind attacker cannot know it; an
                                 // exact hit is what RFC 5961 §3.2 still accepts), or anywhere.
        let seq = if rng.chance(50) {
            rcv_nxt.wrapping_add(1 + rng.below(60_000) as u32)
        } else {
            rng.next_u32()
        };
        let seq = if seq == rcv_nxt {
            seq.wrapping_add(1)
        } else {
            seq
        };
        let ack = rng.next_u32();
        let (flags, payload): (_, &[u8]) = match rng.below(4) {
            0 => (RST, b""),
            1 => (RST | ACK, b""),
            2 => (SYN, b""),
            _ => (ACK | PSH, b"INJECTED"),
        };
        let f = p.frame(flags, seq, ack, payload, TcpOptions::default());
        net.inject(&f);
        attacker_frames += 1;
    }
    let c = net.core().sh.counters.clone();
    assert_eq!(c.get(Event::Reset), 0, "a blind RST reset a connection");
    assert_eq!(net.core().active(), peers.len());
    let budget_max = u64::from(limit + limit.div_ceil(2) - 1);
    assert!(
        c.get(Event::ChallengeAck) <= budget_max,
        "challenge ACKs over the per-core budget {budget_max}: {}",
        c.get(Event::ChallengeAck)
    );
    assert!(c.dropped(DropReason::ChallengeAckLimited) > 0);
    assert!(c.get(Event::AckRateLimited) > 0);
    // Every stream is intact: the next real bytes are echoed exactly, nothing injected.
    net.advance(1_000);
    for p in &mut peers {
        let out = p.tx(&mut net, ACK | PSH, b"real");
        let data: Vec<u8> = out.iter().flat_map(|s| s.payload.clone()).collect();
        assert_eq!(data, b"real", "stream corrupted");
        p.absorb(&out);
    }
    println!(
        "blind injection: {attacker_frames} frames, 0 connections affected, {} challenge ACKs \
         ({} skipped by the per-connection limit, {} by the per-core budget)",
        c.get(Event::ChallengeAck),
        c.get(Event::AckRateLimited),
        c.dropped(DropReason::ChallengeAckLimited)
    );
}

/// At capacity N, connection N+1 is refused by policy while the N keep working; the idle
/// timeout frees the entries and new connections are accepted again.
#[test]
fn table_exhaustion_refuses_then_recovers() {
    let mut net = Net::new(
        Params {
            idle_timeout_ms: 10_000,
            time_wait_ms: 1_000,
            ..Params::default()
        },
        Mode::Echo,
    );
    let cap = net.core().v4.len() + 64; // config() capacity
    let mut peers: Vec<Peer> = (0..cap as u16).map(|i| Peer::v4(42_000 + i)).collect();
    for p in &mut peers {
        p.connect(&mut net);
    }
    assert_eq!(net.core().active(), cap);
    let mut extra = Peer::v4(43_000);
    extra.syn(&mut net);
    let refused = extra.tx(&mut net, ACK, b"");
    one(refused).expect_flags(RST);
    assert_eq!(net.dropped(DropReason::TableFull), 1);
    // The existing ones still work (the pool has 8 buffers: try 8 of them).
    for p in peers.iter_mut().take(8) {
        let out = p.tx(&mut net, ACK | PSH, b"ok");
        assert!(out.iter().any(|s| s.payload == b"ok"));
        p.absorb(&out);
    }
    // Idle timeout: the server closes them all (FIN), the clients answer, entries go.
    let fins = net.advance_by_steps(12_000, 500);
    assert!(fins.len() >= cap);
    for p in &mut peers {
        p.absorb(
            &fins
                .iter()
                .filter(|s| s.dst_port == p.port)
                .cloned()
                .collect::<Vec<_>>(),
        );
        p.tx(&mut net, ACK | FIN, b"");
    }
    net.advance_by_steps(5_000, 500);
    assert_eq!(net.core().active(), 0);
    let mut late = Peer::v4(43_001);
    late.connect(&mut net);
    assert_eq!(net.core().active(), 1);
}

/// A TX ring that never completes: replies are counted as tx_full drops, the loop never
/// blocks, frames are not leaked, and service resumes once completions flow again.
#[test]
fn stalled_tx_ring_drops_counted_no_deadlock() {
    let clock = Clock {
        ms: 1_000_000,
        unix_secs: UNIX_START,
    };
    let cfg: CoreConfig = config(Params::default(), Mode::Discard);
    let stack = Stack::new(
        Core::new(&cfg, CookieJar::new(SECRET), &clock),
        &[SERVER_V4.into()],
    );
    let mut worker = Worker::new(stack, MemoryPort::new(256, 2048, 32), 64);
    let mut net = Net::new(Params::default(), Mode::Discard); // only to build frames
    let mut syns = Vec::new();
    for i in 0..200u16 {
        let mut p = Peer::v4(44_000 + i);
        let mut o = p.syn_options;
        o.timestamps = Some((p.tsval(&net), 0));
        p.iss = 7;
        syns.push(p.frame(SYN, 7, 0, b"", o));
    }
    let _ = &mut net;
    // No take_sent: completions never come back.
    for f in &syns {
        worker.port.inject(f);
        worker.poll(&clock);
    }
    let c = worker.stack.counters();
    assert_eq!(c.get(Event::TxFrames), 32, "the ring holds 32");
    assert!(
        c.dropped(DropReason::TxFull) >= 150,
        "tx_full {}",
        c.dropped(DropReason::TxFull)
    );
    // Completions resume: every frame comes back and new SYNs are answered.
    assert_eq!(worker.port.take_sent().len(), 32);
    assert_eq!(worker.port.free_frames(), 256);
    worker.port.inject(&syns[0]);
    worker.poll(&clock);
    assert_eq!(worker.port.take_sent().len(), 1);
}

/// Cookie secret rotation and two nodes sharing a secret: a cookie from node A is accepted
/// by node B within two periods and refused after; after a rotation the previous secret's
/// cookies are accepted until it is forgotten.
#[test]
fn cookie_secret_rotation_and_shared_nodes() {
    let cfg = || config(Params::default(), Mode::Discard);
    let addrs: [IpAddr; 1] = [SERVER_V4.into()];
    // Node A makes a cookie; node B (same secret) checks the ACK at +0 s, +61 s, +125 s.
    for (delay_ms, accepted) in [(0u64, true), (61_000, true), (125_000, false)] {
        let mut a = Net::with_jar(cfg(), CookieJar::new(SECRET), &addrs);
        let mut b = Net::with_jar(cfg(), CookieJar::new(SECRET), &addrs);
        let mut p = Peer::v4(45_000);
        p.syn(&mut a);
        b.advance(delay_ms);
        p.tx(&mut b, ACK, b"");
        assert_eq!(b.core().active() == 1, accepted, "delay {delay_ms} ms");
        if !accepted {
            assert_eq!(b.dropped(DropReason::CookieExpired), 1);
        }
    }
    // Rotation on one node.
    let mut n = Net::with_jar(cfg(), CookieJar::new(SECRET), &addrs);
    let mut old = Peer::v4(45_001);
    old.syn(&mut n);
    n.stack.core.sh.jar.rotate(*b"another-secret!!");
    old.tx(&mut n, ACK, b"");
    assert_eq!(
        n.core().active(),
        1,
        "previous secret still accepted after rotation"
    );
    let mut stale = Peer::v4(45_002);
    n.stack.core.sh.jar.rotate(*b"third-secret-xyz");
    n.stack.core.sh.jar.forget_previous();
    // A cookie of the first secret is now two rotations old: refused.
    let mut a = Net::with_jar(cfg(), CookieJar::new(SECRET), &addrs);
    stale.syn(&mut a);
    stale.tx(&mut n, ACK, b"");
    assert_eq!(n.core().active(), 1);
    assert_eq!(
        n.dropped(DropReason::CookieInvalid) + n.dropped(DropReason::CookieExpired),
        1
    );
}
