//! A fixed-work driver for `valgrind --tool=callgrind`: no timing loop, no criterion, the
//! same frames and stacks as the criterion benches. Usage (after `cargo bench --no-run`):
//!
//! ```text
//! valgrind --tool=callgrind target/release/deps/profile-* syn 200000
//! valgrind --tool=callgrind target/release/deps/profile-* lifecycle 50000
//! valgrind --tool=callgrind target/release/deps/profile-* cookie_ack 200000
//! valgrind --tool=callgrind target/release/deps/profile-* poll_syn 200000
//! valgrind --tool=callgrind target/release/deps/profile-* poll_lifecycle 200000
//! ```
//!
//! `poll_*` run the whole `Worker::poll` loop over an in-memory port, 64-frame batches
//! (the `pipeline/*` criterion benches): SYNs, or frames of pipelined connections.
//!
//! Frames are prepared before the measured part; compare against the `setup` run (same
//! preparation, nothing handled) to subtract it, or use callgrind's `--toggle-collect`
//! on `profile::measured`.

mod common;

use std::hint::black_box;
use synack::counters::Event;
use synack::engine::Worker;
use synack::io::memory::MemoryPort;

/// Frames per `Worker::poll` batch in the `poll_*` workloads (as `pipeline/*`).
const BATCH: usize = 64;

/// `n` frame slots through `Worker::poll` in batches of [`BATCH`], `frame(k)` being the
/// k-th frame (or none); returns the frames polled, after checking each was answered or
/// counted as `event`-bearing work (every injected frame is polled).
fn poll_frames<'a>(
    n: usize,
    params: fn(&mut synack::tcp::Params),
    flows: usize,
    frame: impl Fn(usize) -> Option<&'a [u8]>,
    event: Event,
) -> u64 {
    let mut injected = 0u64;
    let mut polled = 0u64;
    let stack = common::stack(flows, params);
    let mut w = Worker::new(stack, MemoryPort::new(4 * BATCH, 2048, 4 * BATCH), BATCH);
    let mut ms = 0;
    for start in (0..n).step_by(BATCH) {
        for k in start..(start + BATCH).min(n) {
            if let Some(f) = frame(k) {
                injected += u64::from(w.port.inject(f));
            }
        }
        ms += 1;
        polled += black_box(w.poll(&common::clock(ms))) as u64;
        w.port.for_each_sent(|f| {
            black_box(f);
        });
    }
    assert!(w.stack.counters().get(event) > 0, "no {event:?} counted");
    assert_eq!(polled, injected, "every injected frame is polled");
    polled
}

/// The measured part: kept out of line so `--toggle-collect=*measured*` can isolate it.
#[inline(never)]
fn measured(
    what: &str,
    n: usize,
    syns: &common::Frames,
    lc: &common::Lifecycles,
    acks: &common::Frames,
) -> u64 {
    let mut buf = vec![0u8; 2048];
    match what {
        "syn" => {
            let mut stack = common::stack(1024, |_| {});
            let clk = common::clock(0);
            for i in 0..n {
                let f = syns.get(i % syns.count());
                buf[..f.len()].copy_from_slice(f);
                let _ = black_box(stack.handle(&clk, &mut buf, f.len()));
            }
            stack.counters().get(Event::SynAckSent)
        }
        "cookie_ack" => {
            let mut stack = common::stack(n, |_| {});
            let clk = common::clock(0);
            for i in 0..n {
                let f = acks.get(i);
                buf[..f.len()].copy_from_slice(f);
                let _ = black_box(stack.handle(&clk, &mut buf, f.len()));
            }
            stack.counters().get(Event::Established)
        }
        "lifecycle" => {
            let mut stack = common::stack(lc.count(), |p| p.idle_timeout_ms = 0);
            let mut ms = 0;
            for i in 0..n {
                if i.is_multiple_of(16) {
                    ms += 1;
                    stack.on_timers(&common::clock(ms));
                }
                let clk = common::clock(ms);
                for f in lc.steps(i % lc.count()) {
                    buf[..f.len()].copy_from_slice(f);
                    let _ = black_box(stack.handle(&clk, &mut buf, f.len()));
                }
            }
            stack.counters().get(Event::Closed)
        }
        "poll_syn" => poll_frames(
            n,
            |_| {},
            1024,
            |k| Some(syns.get(k % syns.count())),
            Event::SynAckSent,
        ),
        "poll_lifecycle" => poll_frames(
            n,
            |p| p.idle_timeout_ms = 0,
            lc.count(),
            |k| common::pipelined(k, lc.count()).map(|(c, step)| lc.steps(c)[step]),
            Event::Closed,
        ),
        _ => 0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let what = args.first().map_or("syn", String::as_str).to_string();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let flows = 4096;
    let (mut syns, mut lc, mut acks) = (
        common::Frames::default(),
        common::Lifecycles::default(),
        common::Frames::default(),
    );
    match what.as_str() {
        "syn" | "poll_syn" => syns = common::syns(flows),
        "lifecycle" | "poll_lifecycle" => lc = common::lifecycles(flows, true),
        "cookie_ack" => acks = common::cookie_acks(n as u32, false),
        "setup" => {}
        other => {
            eprintln!(
                "profile: unknown workload {other:?}; use syn, cookie_ack, lifecycle, poll_syn, poll_lifecycle or setup"
            );
            std::process::exit(2);
        }
    }
    let done = measured(&what, n, &syns, &lc, &acks);
    println!("profile {what}: {n} iterations, counter {done}");
    // The pipelined lifecycles skip the later steps of the first three batches.
    let expected = match what.as_str() {
        "poll_lifecycle" => (0..n)
            .filter(|&k| common::pipelined(k, lc.count()).is_some())
            .count(),
        _ => n,
    };
    if what != "setup" {
        assert_eq!(
            done, expected as u64,
            "the workload did not complete every iteration"
        );
    }
}
