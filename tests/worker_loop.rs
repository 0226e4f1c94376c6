//! The worker's run loop on a port whose RX ring fills while the worker looks away: frames
//! that arrive after `recv` looked (reported by `rx_ready`) must be taken by the next
//! poll, never slept on, and every SYN-ACK goes out in a batch of its poll.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;
use synack::counters::Event;
use synack::engine::Worker;
use synack::io::memory::MemoryPort;
use synack::io::{Frame, Port, PortStats};
use synack::tcp::responder::Mode;
use synack::tcp::Params;

/// A memory port whose `recv` hides its frames for the first `hide` calls (they arrived
/// "after the worker looked"), and that counts the waits made while frames were ready.
struct LatePort {
    inner: MemoryPort,
    hide: u32,
    waits_with_frames: u32,
    waits: u32,
    flushes: u32,
    stop: Arc<AtomicBool>,
    sent: usize,
    want: usize,
}

impl Port for LatePort {
    fn frame_capacity(&self) -> usize {
        self.inner.frame_capacity()
    }
    fn recv(&mut self, out: &mut [Frame]) -> usize {
        if self.hide > 0 {
            self.hide -= 1;
            return 0;
        }
        self.inner.recv(out)
    }
    fn buffer(&mut self, addr: u64) -> &mut [u8] {
        self.inner.buffer(addr)
    }
    fn alloc_tx(&mut self) -> Option<u64> {
        self.inner.alloc_tx()
    }
    fn send(&mut self, addr: u64, len: u32) -> bool {
        self.inner.send(addr, len)
    }
    fn commit_tx(&mut self) -> usize {
        self.inner.commit_tx()
    }
    fn rollback_tx(&mut self) -> usize {
        self.inner.rollback_tx()
    }
    fn rx_ready(&mut self) -> usize {
        self.inner.rx_ready()
    }
    fn release(&mut self, addr: u64) {
        self.inner.release(addr)
    }
    fn flush(&mut self) {
        self.inner.flush();
        self.sent += self.inner.take_sent().len();
        self.flushes += 1;
        // Bounded: stop once every SYN was answered, or after 10 000 iterations.
        if self.sent >= self.want || self.flushes >= 10_000 {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
    fn stats(&self) -> PortStats {
        self.inner.stats()
    }
    fn wait(&mut self, _timeout: Duration) {
        self.waits += 1;
        if self.inner.rx_ready() > 0 {
            self.waits_with_frames += 1;
        }
    }
}

#[test]
fn worker_never_waits_while_the_rx_ring_holds_frames() {
    const SYNS: usize = 100;
    let stop = Arc::new(AtomicBool::new(false));
    let mut inner = MemoryPort::new(256, FRAME, 256);
    for i in 0..SYNS {
        let peer = Peer::v4(20_000 + i as u16);
        let frame = peer.frame(SYN, peer.iss, 0, &[], peer.syn_options);
        assert!(inner.inject(&frame));
    }
    let port = LatePort {
        inner,
        // Far more empty polls than the worker spins before it would wait.
        hide: 2_000,
        waits_with_frames: 0,
        waits: 0,
        flushes: 0,
        stop: stop.clone(),
        sent: 0,
        want: SYNS,
    };
    let stack = Net::new(Params::default(), Mode::Discard).stack;
    let mut w = Worker::new(stack, port, 64);
    w.run(&stop, Duration::ZERO);
    assert_eq!(
        w.port.waits_with_frames, 0,
        "waited with frames on the ring"
    );
    assert_eq!(
        w.port.waits, 0,
        "the ring was never empty, so no wait at all"
    );
    assert_eq!(w.port.sent, SYNS, "every SYN answered");
    assert_eq!(w.stack.counters().get(Event::SynAckSent), SYNS as u64);
    assert!(
        w.port.inner.tx_commits() <= 3,
        "100 SYN-ACKs in batches of 64: {} commits",
        w.port.inner.tx_commits()
    );
}
