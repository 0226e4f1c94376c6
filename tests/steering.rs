//! Steering between workers: the cross-core handoff keeps its memory fixed whatever the
//! imbalance between workers (in memory), and on an interface without RSS (a veth, in a
//! namespace of its own) the software steering falls back to a random key and an even
//! table (root).

mod common;
mod support;

use std::net::IpAddr;
use std::sync::Arc;

use support::*;
use synack::counters::{DropReason, Event};
use synack::engine::rss::{resolve, KeyChoice, Rss, MICROSOFT_KEY, SYMMETRIC_KEY};
use synack::engine::{HandoffQueue, Stack, StackConfig, Steering, Worker, WorkerConfig};
use synack::io::ethtool;
use synack::io::memory::MemoryPort;
use synack::table::Core;
use synack::tcp::cookie::CookieJar;
use synack::tcp::responder::Mode;
use synack::tcp::{Clock, Params};

const QUEUE: usize = 16;
const BATCH: usize = 64;

fn clock() -> Clock {
    Clock {
        ms: 1_000_000,
        unix_secs: UNIX_START,
    }
}

fn worker(me: usize, queues: &[Arc<HandoffQueue>], rss: &Rss) -> Worker<MemoryPort> {
    let core = Core::new(
        &config(Params::default(), Mode::Discard),
        CookieJar::new(SECRET),
        &clock(),
    );
    let stack = Stack::with_config(
        core,
        StackConfig {
            steering: Some(Steering {
                rss: rss.clone(),
                me,
                workers: 2,
            }),
            ..StackConfig::serving(&[IpAddr::V4(SERVER_V4)])
        },
    );
    Worker::with_config(
        stack,
        MemoryPort::new(1024, FRAME, 1024),
        WorkerConfig {
            handoff: queues.to_vec(),
            index: me,
            ..WorkerConfig::batches(BATCH)
        },
    )
}

/// Every buffer is in some pool or some inbox, and no pool holds more than its bound.
#[track_caller]
fn assert_conserved(queues: &[Arc<HandoffQueue>]) {
    let total: usize = queues.iter().map(|q| q.spare() + q.queued()).sum();
    assert_eq!(
        total,
        queues.len() * QUEUE,
        "a handoff buffer was made or lost"
    );
    for q in queues {
        assert!(q.spare() <= QUEUE, "pool grew to {}", q.spare());
    }
}

/// Skewed two-worker run: worker 0 receives every frame and worker 1 owns every flow (the
/// worst imbalance). The buffers worker 0 hands over come back to worker 0's pool, so
/// worker 1's pool never grows past its bound and nothing is allocated after start; when
/// worker 1 falls behind, worker 0 runs out of buffers and counts `handoff_full` drops
/// instead of allocating more.
#[test]
fn handoff_pool_bounded_under_skewed_two_worker_load() {
    let rss = Rss::new(&MICROSOFT_KEY, 2);
    let queues: Vec<Arc<HandoffQueue>> =
        (0..2).map(|_| Arc::new(HandoffQueue::new(QUEUE))).collect();
    let mut w0 = worker(0, &queues, &rss);
    let mut w1 = worker(1, &queues, &rss);
    // SYNs of flows that worker 1 owns.
    let syns: Vec<Vec<u8>> = (1024u16..)
        .map(Peer::v4)
        .filter(|p| {
            let (IpAddr::V4(a), IpAddr::V4(s)) = (p.addr, p.server) else {
                unreachable!()
            };
            rss.owner_v4(a, s, p.port, p.server_port) == 1
        })
        .take(BATCH)
        .map(|p| {
            let mut o = p.syn_options;
            o.timestamps = Some((1, 0));
            p.frame(SYN, p.iss, 0, b"", o)
        })
        .collect();
    let clk = clock();
    let mut synacks = 0;
    for round in 0..200 {
        for f in &syns {
            assert!(w0.port.inject(f));
        }
        w0.poll(&clk);
        assert_conserved(&queues);
        // Worker 1 serves only one round in four: worker 0 runs dry in between.
        if round % 4 == 3 {
            w1.poll(&clk);
            assert_conserved(&queues);
            assert_eq!(queues[0].spare(), QUEUE, "every buffer back with its owner");
        }
        assert!(
            w0.port.take_sent().is_empty(),
            "worker 0 answers nothing itself"
        );
        synacks += w1.port.take_sent().len() as u64;
    }
    let c0 = w0.stack.counters();
    let c1 = w1.stack.counters();
    let sent = c0.get(Event::HandoffOut);
    assert_eq!(
        sent,
        50 * QUEUE as u64,
        "one pool's worth per round of worker 1"
    );
    assert_eq!(
        c0.dropped(DropReason::HandoffFull),
        200 * BATCH as u64 - sent
    );
    assert_eq!(c1.get(Event::HandoffIn), sent);
    assert_eq!(c1.get(Event::SynAckSent), sent);
    assert_eq!(synacks, sent);
    assert_eq!(
        queues[1].spare(),
        QUEUE,
        "worker 1 hands nothing over: its pool is full"
    );
}

/// ETHTOOL_GRSSH on a veth (no `get_rxfh`: `ethtool -x` fails with "Operation not
/// supported"): `read_rss` reports EOPNOTSUPP, and the default `rss_key = "nic"` resolves to
/// a random key (a new one each start) and an even table; 3 workers get 43 entries each.
/// A missing interface is an error of another kind, not "no RSS".
#[test]
fn ethtool_grssh_veth_without_rss_falls_back_to_random_key_and_even_table() {
    if !common::require_root("ethtool_grssh_veth_without_rss_falls_back") {
        return;
    }
    let lab = common::Lab::new("rss", 2);
    let out = lab.ns_exec(&lab.server_ns, &["ethtool", "-x", &lab.server_if]);
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("not supported"),
        "ethtool -x on a veth was expected to fail as unsupported: {text}"
    );
    let read = || lab.in_ns(&lab.server_ns, || ethtool::read_rss(&lab.server_if));
    let first = read();
    let e = first.as_ref().expect_err("a veth has no RSS table");
    assert!(ethtool::is_unsupported(e), "{e}");
    let a = resolve(KeyChoice::Nic, first, 3);
    let b = resolve(KeyChoice::Nic, read(), 3);
    for r in [&a, &b] {
        assert_eq!((r.key_from, r.table_from), ("random", "even"));
        assert!(r.nic_unused.is_some());
        assert_eq!(r.rss.reta().len(), 129);
        for w in 0..3u16 {
            assert_eq!(r.rss.reta().iter().filter(|&&x| x == w).count(), 43);
        }
        assert_ne!(r.rss.key(), &SYMMETRIC_KEY);
    }
    assert_ne!(a.rss.key(), b.rss.key(), "a new key per start");
    // A configured key stays as given on the veth.
    let fixed = resolve(KeyChoice::Fixed(MICROSOFT_KEY), read(), 3);
    assert_eq!(
        (fixed.rss.key(), fixed.table_from),
        (&MICROSOFT_KEY, "even")
    );
    let missing = lab.in_ns(&lab.server_ns, || ethtool::read_rss("nosuchif0"));
    let e = missing.expect_err("no such interface");
    assert!(!ethtool::is_unsupported(&e), "{e}");
}
