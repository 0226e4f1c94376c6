//! Steering between workers (in memory): the cross-core handoff keeps its memory fixed
//! whatever the imbalance between workers.

mod support;

use std::net::IpAddr;
use std::sync::Arc;

use support::*;
use synack::counters::{DropReason, Event};
use synack::engine::rss::{Rss, MICROSOFT_KEY};
use synack::engine::{HandoffQueue, Stack, Steering, Worker};
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
    let mut stack = Stack::new(core, &[IpAddr::V4(SERVER_V4)]);
    stack.steering = Some(Steering {
        rss: rss.clone(),
        me,
        workers: 2,
    });
    let mut w = Worker::new(stack, MemoryPort::new(1024, FRAME, 1024), BATCH);
    w.set_handoff(queues, me);
    w
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
