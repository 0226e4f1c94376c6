//! Criterion benchmarks of the hot path, per frame (`Throughput::Elements`).
//!
//! Every measured frame is first copied into a 2 KiB frame buffer, as the NIC's DMA would
//! have written it (a reply is written in place over it); `parts/rx_copy_74` measures that
//! copy alone so it can be subtracted. Frames come from `common`: a 74-byte Linux SYN
//! (MSS, SACK_PERM, TS, NOP, WS) and 54-byte bare (or 66-byte timestamped) ACKs, built with
//! the wire Reprs, over distinct client addresses and ports, with cookies and sequence
//! numbers taken from what a reference stack really answered.
//!
//! Groups: `parts` (wire parse, cookie, checksum, Toeplitz, rx copy), `syn_to_synack`,
//! `cookie_ack_to_established`, `lifecycle`, `table` (1 M entries) and `pipeline`
//! (`Worker<MemoryPort>::poll`, batches of 64). Each bench checks the stack's counters
//! afterwards, so a run where frames were dropped instead of handled fails loudly.

mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use synack::counters::{DropReason, Event};
use synack::engine::rss::{Rss, MICROSOFT_KEY};
use synack::engine::{Stack, StackConfig, Worker};
use synack::io::memory::MemoryPort;
use synack::io::{Frame, Port};
use synack::table::{ConnTable, Key, V4Key};
use synack::tcp::conn::{Conn, Negotiated};
use synack::tcp::cookie::{self, CookieFlow, CookieJar};
use synack::tcp::responder::Mode;
use synack::tcp::{Flow, Params, Tick, TsVal};
use synack::wire::{checksum, EthernetFrame, Ipv4Packet, Ipv4Repr, SeqNumber, TcpPacket, TcpRepr};

use common::{clock, Lifecycles};

/// Distinct flows the per-frame benches cycle through (a power of two).
const FLOWS: usize = 1 << 14;
/// A UMEM-sized frame buffer.
const FRAME: usize = 2048;

/// Assert that nothing was dropped and `event` happened at least `min` times.
fn check(stack: &Stack, what: &str, event: Event, min: u64) {
    let c = stack.counters();
    let drops: Vec<_> = DropReason::ALL
        .iter()
        .filter(|r| c.dropped(**r) > 0)
        .map(|r| (r.label(), c.dropped(*r)))
        .collect();
    assert!(drops.is_empty(), "{what}: frames dropped: {drops:?}");
    assert!(
        c.get(event) >= min,
        "{what}: {} = {} < {min}",
        event.label(),
        c.get(event)
    );
}

fn parts(c: &mut Criterion) {
    let mut g = c.benchmark_group("parts");
    g.throughput(Throughput::Elements(1));
    let syns = common::syns(FLOWS as u32);
    let mut buf = vec![0u8; FRAME];

    // The copy every measured frame starts with (the NIC's DMA in real life).
    let mut i = 0;
    g.bench_function("rx_copy_74", |b| {
        b.iter(|| {
            let f = syns.get(i & (FLOWS - 1));
            i += 1;
            buf[..f.len()].copy_from_slice(f);
            black_box(&mut buf);
        })
    });

    // Ethernet → IPv4 → TCP views and Reprs with both checksums verified, as Stack::handle.
    let mut i = 0;
    g.bench_function("wire_parse_syn", |b| {
        b.iter(|| {
            let f = black_box(syns.get(i & (FLOWS - 1)));
            i += 1;
            let eth = EthernetFrame::new_checked(f).ok()?;
            let ip = Ipv4Packet::new_checked(eth.into_payload()).ok()?;
            let ipr = Ipv4Repr::parse(&ip, true).ok()?;
            let tcp = TcpPacket::new_checked(ip.into_payload()).ok()?;
            let repr =
                TcpRepr::parse(&tcp, &IpAddr::V4(ipr.src), &IpAddr::V4(ipr.dst), true).ok()?;
            Some(black_box(repr.seq))
        })
    });

    // The 40-byte TCP header of the SYN plus the pseudo-header, as TcpRepr::emit does.
    let seg40: Vec<u8> = syns.get(0)[34..74].to_vec();
    let (src, dst) = (Ipv4Addr::new(198, 18, 0, 16), common::SERVER);
    g.bench_function("checksum_40", |b| {
        b.iter(|| {
            let s = checksum::combine(
                checksum::pseudo_header_v4(black_box(&src), &dst, 6, 40),
                checksum::sum(black_box(&seg40)),
            );
            black_box(checksum::finish(s))
        })
    });

    let jar = CookieJar::new(common::SECRET);
    let flows: Vec<CookieFlow> = (0..FLOWS as u32)
        .map(|i| {
            let (a, p) = common::client(i);
            CookieFlow {
                src: a.into(),
                dst: common::SERVER.into(),
                src_port: p,
                dst_port: common::PORT,
            }
        })
        .collect();
    let counter = cookie::counter_from_unix_secs(common::UNIX_SECS);
    let mut i = 0;
    g.bench_function("cookie_generate", |b| {
        b.iter(|| {
            let k = i & (FLOWS - 1);
            i += 1;
            black_box(jar.generate(&flows[k], k as u32, 3, counter))
        })
    });
    let cookies: Vec<u32> = (0..FLOWS)
        .map(|k| jar.generate(&flows[k], k as u32, 3, counter))
        .collect();
    let mut i = 0;
    g.bench_function("cookie_check", |b| {
        b.iter(|| {
            let k = i & (FLOWS - 1);
            i += 1;
            let r = jar.check(&flows[k], k as u32, cookies[k], counter);
            debug_assert_eq!(r, Ok(3));
            black_box(r)
        })
    });

    let rss = Rss::new(&MICROSOFT_KEY, 2);
    let mut i = 0;
    g.bench_function("toeplitz_v4", |b| {
        b.iter(|| {
            let (a, p) = common::client((i & (FLOWS - 1)) as u32);
            i += 1;
            black_box(
                rss.toeplitz()
                    .hash_v4(black_box(a), common::SERVER, p, common::PORT),
            )
        })
    });
    g.finish();
}

/// One SYN through `Stack::handle`: parse, cookie, SYN-ACK written over the frame, by the
/// in-place rewrite (`v4_74B`, the default) and by the general path (`v4_74B_general`:
/// `Tx` queued, then `emit_frame`), which writes the same bytes.
fn syn_to_synack(c: &mut Criterion) {
    let mut g = c.benchmark_group("syn_to_synack");
    g.throughput(Throughput::Elements(1));
    let syns = common::syns(FLOWS as u32);
    for (label, in_place) in [("v4_74B", true), ("v4_74B_general", false)] {
        let mut stack = Stack::with_config(
            common::core(1024, |_| {}),
            StackConfig {
                rewrite_syn_in_place: in_place,
                ..StackConfig::serving(&[IpAddr::V4(common::SERVER)])
            },
        );
        let clk = clock(0);
        let mut buf = vec![0u8; FRAME];
        let mut i = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                let f = syns.get(i & (FLOWS - 1));
                i += 1;
                buf[..f.len()].copy_from_slice(f);
                black_box(stack.handle(&clk, &mut buf, f.len()))
            })
        });
        check(&stack, "syn_to_synack", Event::SynAckSent, i as u64);
        assert_eq!(stack.core.active(), 0, "a SYN created state");
        let rewritten = if in_place { i as u64 } else { 0 };
        assert_eq!(stack.synacks_in_place(), rewritten, "{label}: path taken");
    }
    g.finish();
}

/// Forget every connection of `stack` (slab positions `0..capacity`) and let the wheel
/// drop their now stale entries: advances the virtual clock `ms` past every deadline.
fn recycle(stack: &mut Stack, capacity: usize, ms: &mut u64) {
    for pos in 0..capacity as u32 {
        let _ = stack.core.v4.remove(pos);
    }
    *ms += 400_000;
    stack.on_timers(&clock(*ms));
    assert_eq!(stack.core.active(), 0);
    assert!(!stack.has_pending(), "recycling sent segments");
}

/// The ACK that completes a cookie handshake, through `Stack::handle`: cookie check, TCB
/// created and inserted, idle timer scheduled. The table is sized for `n` connections;
/// when full it is emptied outside the measured time, so every measured ACK inserts.
fn cookie_ack_to_established(c: &mut Criterion) {
    let mut g = c.benchmark_group("cookie_ack_to_established");
    g.throughput(Throughput::Elements(1));
    for (n, ts) in [(1usize << 16, false), (1 << 16, true), (1 << 20, false)] {
        let acks = common::cookie_acks(n as u32, ts);
        let label = format!(
            "{}_{}B",
            if n >= 1 << 20 { "1M" } else { "64K" },
            acks.frame_len()
        );
        let mut stack = common::stack(n, |_| {});
        let mut buf = vec![0u8; FRAME];
        let mut ms = 0u64;
        let mut next = 0usize;
        let mut done = 0u64;
        g.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                let mut left = iters as usize;
                let mut spent = Duration::ZERO;
                while left > 0 {
                    let room = n - stack.core.active();
                    if room == 0 {
                        recycle(&mut stack, n, &mut ms);
                        continue;
                    }
                    let k = left.min(room);
                    let clk = clock(ms);
                    let t = Instant::now();
                    for _ in 0..k {
                        let f = acks.get(next);
                        next = if next + 1 == n { 0 } else { next + 1 };
                        buf[..f.len()].copy_from_slice(f);
                        let _ = black_box(stack.handle(&clk, &mut buf, f.len()));
                    }
                    spent += t.elapsed();
                    left -= k;
                    done += k as u64;
                }
                spent
            })
        });
        check(
            &stack,
            "cookie_ack_to_established",
            Event::Established,
            done,
        );
    }
    g.finish();
}

/// Drive connections `i..` of `lc` through `stack`, 4 frames each; every 16 connections
/// (one 64-frame batch) the virtual clock advances 1 ms and timers run, as in
/// `Worker::poll`.
struct LifecycleDriver<'a> {
    lc: &'a Lifecycles,
    stack: Stack,
    buf: Vec<u8>,
    i: usize,
    ms: u64,
}

impl LifecycleDriver<'_> {
    #[inline(always)]
    fn one(&mut self) {
        if self.i.is_multiple_of(16) {
            self.ms += 1;
            self.stack.on_timers(&clock(self.ms));
        }
        let clk = clock(self.ms);
        for f in self.lc.steps(self.i % self.lc.count()) {
            self.buf[..f.len()].copy_from_slice(f);
            let _ = black_box(self.stack.handle(&clk, &mut self.buf, f.len()));
        }
        self.i += 1;
    }
}

/// A whole connection through the Stack: SYN, ACK, FIN+ACK, final ACK (the server sends
/// SYN-ACK and FIN+ACK). One iteration = one connection = 4 client frames.
fn lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("lifecycle");
    g.throughput(Throughput::Elements(4));
    for (ts, idle) in [(true, false), (true, true), (false, false)] {
        let lc = common::lifecycles(FLOWS as u32, ts);
        let label = format!(
            "{}_idle_{}",
            if ts { "ts" } else { "bare" },
            if idle { "300s" } else { "off" }
        );
        let stack = common::stack(FLOWS, |p| {
            if !idle {
                p.idle_timeout_ms = 0;
            }
        });
        let mut d = LifecycleDriver {
            lc: &lc,
            stack,
            buf: vec![0u8; FRAME],
            i: 0,
            ms: 0,
        };
        g.bench_function(BenchmarkId::from_parameter(&label), |b| b.iter(|| d.one()));
        check(&d.stack, "lifecycle", Event::Closed, d.i as u64);
        assert_eq!(d.stack.core.active(), 0, "lifecycle left connections");
        eprintln!(
            "lifecycle/{label}: {} connections, wheel holds {} entries at the end",
            d.i,
            d.stack.core.sh.wheel.len()
        );
    }
    g.finish();
}

/// The key and a plain ESTABLISHED TCB of client `i`.
fn entry(i: u32) -> (V4Key, Conn) {
    let (remote, remote_port) = common::client(i);
    let flow = Flow::V4 {
        local: common::SERVER,
        remote,
        local_port: common::PORT,
        remote_port,
    };
    let n = Negotiated {
        iss: SeqNumber(common::isn(i) ^ 0x5555_5555),
        irs: SeqNumber(common::isn(i)),
        mss: 1460,
        snd_wscale: Some(7),
        rcv_wscale: 7,
        sack: true,
        ts_recent: Some(TsVal(common::tsval(i))),
        mode: Mode::Discard,
    };
    (
        V4Key::of(&flow).expect("v4 flow"),
        Conn::established(&n, 502, 0, Tick(0)),
    )
}

/// ConnTable at 1 M IPv4 entries: lookups (hit, miss) in shuffled order, and insert /
/// remove keeping the table between 1 M - 4096 and 1 M.
fn table(c: &mut Criterion) {
    const N: usize = 1 << 20;
    const CHUNK: usize = 4096;
    let mut g = c.benchmark_group("table");
    g.throughput(Throughput::Elements(1));
    let mut t: ConnTable<V4Key> = ConnTable::with_capacity(N);
    let keys: Vec<V4Key> = (0..N as u32).map(|i| entry(i).0).collect();
    for i in 0..N as u32 {
        let (k, conn) = entry(i);
        t.insert(k, conn);
    }
    let order = common::shuffled(N, 1);
    let misses: Vec<V4Key> = (N as u32..2 * N as u32).map(|i| entry(i).0).collect();

    let mut i = 0;
    g.bench_function("lookup_hit_1M", |b| {
        b.iter(|| {
            let k = &keys[order[i & (N - 1)] as usize];
            i += 1;
            black_box(t.find(k)).expect("present")
        })
    });
    let mut i = 0;
    g.bench_function("lookup_miss_1M", |b| {
        b.iter(|| {
            let k = &misses[i & (N - 1)];
            i += 1;
            assert!(black_box(t.find(k)).is_none());
        })
    });

    // Remove `CHUNK` entries (positions looked up outside the timing), then put them back.
    let mut cursor = 0usize;
    g.bench_function("remove_1M", |b| {
        b.iter_custom(|iters| {
            let mut left = iters as usize;
            let mut spent = Duration::ZERO;
            let mut pos = Vec::with_capacity(CHUNK);
            while left > 0 {
                let k = left.min(CHUNK);
                let ids: Vec<u32> = (0..k).map(|j| order[(cursor + j) & (N - 1)]).collect();
                pos.clear();
                pos.extend(
                    ids.iter()
                        .map(|&id| t.find(&keys[id as usize]).expect("present")),
                );
                let s = Instant::now();
                for &p in &pos {
                    black_box(t.remove(p));
                }
                spent += s.elapsed();
                for &id in &ids {
                    let (key, conn) = entry(id);
                    t.insert(key, conn);
                }
                cursor += k;
                left -= k;
            }
            spent
        })
    });
    // Remove `CHUNK` entries outside the timing, then insert them back measured.
    g.bench_function("insert_1M", |b| {
        b.iter_custom(|iters| {
            let mut left = iters as usize;
            let mut spent = Duration::ZERO;
            while left > 0 {
                let k = left.min(CHUNK);
                let ids: Vec<u32> = (0..k).map(|j| order[(cursor + j) & (N - 1)]).collect();
                for &id in &ids {
                    let p = t.find(&keys[id as usize]).expect("present");
                    let _ = t.remove(p);
                }
                let entries: Vec<(V4Key, Conn)> = ids.iter().map(|&id| entry(id)).collect();
                let s = Instant::now();
                for (key, conn) in entries {
                    black_box(t.insert(key, conn));
                }
                spent += s.elapsed();
                cursor += k;
                left -= k;
            }
            spent
        })
    });
    g.finish();
    assert_eq!(t.len(), N, "table lost entries");
}

/// A worker on an in-memory port; 64-frame batches injected (the NIC's DMA), polled, and
/// the sent frames completed, all measured. `port_only` measures the port's share alone.
fn pipeline(c: &mut Criterion) {
    const BATCH: usize = 64;
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    let worker = |params: fn(&mut Params)| {
        let stack = common::stack(FLOWS, params);
        Worker::new(stack, MemoryPort::new(4 * BATCH, FRAME, 4 * BATCH), BATCH)
    };

    let syns = common::syns(FLOWS as u32);
    let mut port = MemoryPort::new(4 * BATCH, FRAME, 4 * BATCH);
    let mut frames = [Frame { addr: 0, len: 0 }; BATCH];
    let mut k = 0usize;
    g.bench_function("port_only", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                port.inject(syns.get(k & (FLOWS - 1)));
                k += 1;
            }
            let n = port.recv(&mut frames);
            for f in &frames[..n] {
                port.release(f.addr);
            }
            port.flush();
        })
    });

    let mut w = worker(|_| {});
    let mut k = 0usize;
    let mut ms = 0;
    g.bench_function("syn_flood", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                w.port.inject(syns.get(k & (FLOWS - 1)));
                k += 1;
            }
            ms += 1;
            black_box(w.poll(&clock(ms)));
            w.port.for_each_sent(|f| {
                black_box(f);
            });
        })
    });
    check(&w.stack, "pipeline/syn_flood", Event::SynAckSent, k as u64);
    assert_eq!(w.stack.counters().get(Event::TxFrames), k as u64);

    let lc = common::lifecycles(FLOWS as u32, true);
    let mut w = worker(|p| p.idle_timeout_ms = 0);
    let mut k = 0usize;
    let mut ms = 0;
    g.bench_function("lifecycle_ts_idle_off", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                if let Some((conn, step)) = common::pipelined(k, lc.count()) {
                    w.port.inject(lc.steps(conn)[step]);
                }
                k += 1;
            }
            ms += 1;
            black_box(w.poll(&clock(ms)));
            w.port.for_each_sent(|f| {
                black_box(f);
            });
        })
    });
    // Up to 48 connections are still in flight when the bench stops.
    check(
        &w.stack,
        "pipeline/lifecycle",
        Event::Closed,
        (k / 4).saturating_sub(48) as u64,
    );
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = parts, syn_to_synack, cookie_ack_to_established, lifecycle, table, pipeline
}
criterion_main!(benches);
