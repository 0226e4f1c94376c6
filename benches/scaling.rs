//! One worker against two: the whole in-memory pipeline (`Worker<MemoryPort>::poll`,
//! batches of 64), each worker on its own thread (pinned to its own core when the machine
//! has that many) with its own `MemoryPort`, frames injected before the clock starts.
//! Prints total frames/s per setup (medians) and the median 2-worker / 1-worker ratio of
//! runs made in pairs.
//!
//! Setups:
//! - `syn_steered`: a SYN flood split by the RSS owner of each flow (what a NIC with RSS
//!   delivers); the handoff queues are connected but stay idle.
//! - `syn_spread`: the same SYNs dealt round-robin to the two ports regardless of owner,
//!   so half of them go through `WorkerConfig::handoff` queues to the other worker.
//! - `lifecycle_steered`: whole connections (SYN, ACK, FIN+ACK, ACK with timestamps, idle
//!   timer off), four stages in flight per batch, split by owner.
//!
//! Not a criterion bench (threads, fixed work): run by `cargo bench --bench scaling`,
//! `key: value` lines for `scripts/bench.sh`. Optional argument: frames per setup. Under
//! `cargo test` (no `--bench`) it runs one small pair per setup, as a check.

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use synack::counters::{DropReason, Event};
use synack::engine::rss::{Rss, MICROSOFT_KEY};
use synack::engine::{HandoffQueue, Stack, StackConfig, Steering, Worker, WorkerConfig};
use synack::io::memory::MemoryPort;

/// Frames per 64-frame batch.
const BATCH: usize = 64;
/// Frame buffer size: SYN-ACKs and handed-off SYNs are 74 bytes.
const FRAME: usize = 256;
/// Handoff queue depth per worker.
const QUEUE: usize = 4096;
/// Pairs of runs (one worker, then two); the medians of the rates and of the pairs'
/// ratios are reported.
const RUNS: usize = 9;

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    SynSteered,
    SynSpread,
    LifecycleSteered,
}

/// Frames for each worker, in arrival order.
fn deal(
    setup: Setup,
    workers: usize,
    total: usize,
    syns: &common::Frames,
    lc: &common::Lifecycles,
) -> Vec<Vec<Vec<u8>>> {
    let rss = Rss::new(&MICROSOFT_KEY, workers);
    let owner = |i: usize| {
        let (a, p) = common::client(i as u32);
        rss.owner_v4(a, common::SERVER, p, common::PORT)
    };
    let mut out = vec![Vec::new(); workers];
    for k in 0..total {
        match setup {
            Setup::SynSteered => {
                let i = k % syns.count();
                out[owner(i)].push(syns.get(i).to_vec());
            }
            Setup::SynSpread => {
                let i = k % syns.count();
                out[k % workers].push(syns.get(i).to_vec());
            }
            Setup::LifecycleSteered => {
                if let Some((conn, step)) = common::pipelined(k, lc.count()) {
                    out[owner(conn)].push(lc.steps(conn)[step].to_vec());
                }
            }
        }
    }
    out
}

struct Result {
    secs: f64,
    frames: usize,
    handoffs: u64,
    handoff_drops: u64,
    replies: u64,
    closed: u64,
}

fn run(setup: Setup, workers: usize, per_port: &[Vec<Vec<u8>>]) -> Result {
    let rss = Rss::new(&MICROSOFT_KEY, workers);
    let queues: Vec<Arc<HandoffQueue>> = (0..workers)
        .map(|_| Arc::new(HandoffQueue::new(QUEUE)))
        .collect();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut ws = Vec::new();
    for (me, frames) in per_port.iter().enumerate() {
        let stack = Stack::with_config(
            common::core(1 << 18, |p| p.idle_timeout_ms = 0),
            StackConfig {
                steering: (workers > 1).then(|| Steering {
                    rss: rss.clone(),
                    me,
                    workers,
                }),
                ..StackConfig::serving(&[IpAddr::V4(common::SERVER)])
            },
        );
        // Room for every injected frame, plus spare frames for handed-in copies.
        let pool = frames.len() + frames.len() / workers + 2 * QUEUE;
        let mut port = MemoryPort::new(pool, FRAME, pool);
        for f in frames {
            assert!(port.inject(f), "port full while injecting");
        }
        let handoff = if workers > 1 {
            queues.clone()
        } else {
            Vec::new()
        };
        ws.push(Worker::with_config(
            stack,
            port,
            WorkerConfig {
                handoff,
                index: me,
                ..WorkerConfig::batches(BATCH)
            },
        ));
    }
    let barrier = Arc::new(Barrier::new(workers + 1));
    let rx_done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = ws
        .into_iter()
        .enumerate()
        .map(|(me, mut w)| {
            let (barrier, rx_done, queue) = (barrier.clone(), rx_done.clone(), queues[me].clone());
            let core = cores.get(me % cores.len().max(1)).copied();
            std::thread::spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(c);
                }
                let clk = common::clock(0);
                let mut my_rx_done = false;
                barrier.wait();
                loop {
                    let n = w.poll(&clk);
                    if !my_rx_done && w.port.rx_pending() == 0 {
                        my_rx_done = true;
                        rx_done.fetch_add(1, Ordering::AcqRel);
                    }
                    // Once every port's RX is empty nobody pushes handoffs any more.
                    if n == 0 && rx_done.load(Ordering::Acquire) == workers && queue.is_empty() {
                        break;
                    }
                }
                let end = Instant::now();
                (end, w)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut end = start;
    let mut r = Result {
        secs: 0.0,
        frames: per_port.iter().map(Vec::len).sum(),
        handoffs: 0,
        handoff_drops: 0,
        replies: 0,
        closed: 0,
    };
    for h in handles {
        let (e, w) = h.join().expect("worker thread panicked");
        end = end.max(e);
        let c = w.stack.counters();
        r.handoffs += c.get(Event::HandoffOut);
        r.handoff_drops += c.dropped(DropReason::HandoffFull);
        r.replies += c.get(Event::TxFrames);
        r.closed += c.get(Event::Closed);
        if setup != Setup::LifecycleSteered {
            assert_eq!(
                c.total_drops(),
                c.dropped(DropReason::HandoffFull),
                "unexpected drops"
            );
        }
    }
    r.secs = (end - start).as_secs_f64().max(1e-9);
    r
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and then one
    // small pair per setup checks that the drivers run without unexpected drops.
    let bench = std::env::args().any(|a| a == "--bench");
    let (default_total, runs) = if bench { (1 << 19, RUNS) } else { (1 << 14, 1) };
    let total: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(default_total);
    let flows = 1 << 16;
    let syns = common::syns(flows as u32);
    let lc = common::lifecycles(flows as u32, true);
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    println!("scaling_frames_per_setup: {total}");
    println!("scaling_cores_visible: {cores}");
    for (name, setup) in [
        ("syn_steered", Setup::SynSteered),
        ("syn_spread", Setup::SynSpread),
        ("lifecycle_steered", Setup::LifecycleSteered),
    ] {
        let dealt = [1, 2].map(|workers| deal(setup, workers, total, &syns, &lc));
        let (mut rates, mut ratios) = ([Vec::new(), Vec::new()], Vec::new());
        let mut last = None;
        // One worker and two in turn, so that a slower stretch of a shared host falls on
        // both sides of a pair rather than on one block of runs.
        for _ in 0..runs {
            let mut pair = [0.0; 2];
            for workers in [1, 2] {
                let r = run(setup, workers, &dealt[workers - 1]);
                pair[workers - 1] = r.frames as f64 / r.secs;
                rates[workers - 1].push(pair[workers - 1]);
                last = Some(r);
            }
            ratios.push(pair[1] / pair[0]);
            std::thread::sleep(Duration::from_millis(20));
        }
        let (one, two) = (median(rates[0].clone()), median(rates[1].clone()));
        let r = last.expect("ran");
        println!("scaling_{name}_1w_mfps: {:.3}", one / 1e6);
        println!("scaling_{name}_2w_mfps: {:.3}", two / 1e6);
        println!("scaling_{name}_ratio: {:.2}", median(ratios));
        println!(
            "scaling_{name}_2w_last_run: handoffs {} handoff_drops {} replies {} closed {}",
            r.handoffs, r.handoff_drops, r.replies, r.closed
        );
    }
}
