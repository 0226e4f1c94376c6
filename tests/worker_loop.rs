//! The worker's run loop on a port whose RX ring fills while the worker looks away: frames
//! that arrive after `recv` looked (reported by `rx_ready`) must be taken by the next
//! poll, never slept on, and every SYN-ACK goes out in a batch of its poll. And the
//! worker's capture hook on an in-memory port: which frames it copies, and what.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;
use synack::counters::{DropReason, Event};
use synack::engine::{Capture, CaptureMode, Captured, Worker, WorkerConfig};
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

/// A server with the ESTABLISHED connection of `established` on a worker whose capture hook in
/// `mode` sends to a channel of `room` records; polls `frames` in one batch.
fn captured(mode: CaptureMode, room: usize, frames: &[Vec<u8>]) -> (Vec<Captured>, u64) {
    let (net, _) = established(Params::default());
    let (tx, rx) = crossbeam::channel::bounded(room);
    let mut w = Worker::with_config(
        net.stack,
        MemoryPort::new(64, FRAME, 64),
        WorkerConfig {
            capture: Some(Capture::new(mode, tx, 3)),
            ..WorkerConfig::batches(64)
        },
    );
    for f in frames {
        assert!(w.port.inject(f));
    }
    assert_eq!(w.poll(&net.clock), frames.len());
    w.publish();
    let lost = w.published().capture_lost.load(Ordering::Relaxed);
    (rx.try_iter().collect(), lost)
}

/// Frames of the connection of `established`: an out-of-window segment (dropped, yet
/// answered in place by an ACK, RFC 9293 §3.10.7.4), a SYN with a bad TCP checksum
/// (dropped), a SYN for another connection (answered, not dropped).
fn capture_frames() -> Vec<Vec<u8>> {
    let (net, peer) = established(Params::default());
    let out_of_window = peer.frame(
        ACK,
        peer.snd_nxt.wrapping_add(1 << 30),
        peer.rcv_nxt,
        b"x",
        peer.opts(&net),
    );
    let other = Peer::v4(40_100);
    let mut bad = other.frame(SYN, other.iss, 0, &[], other.syn_options);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let good = Peer::v4(40_200);
    let syn = good.frame(SYN, good.iss, 0, &[], good.syn_options);
    vec![out_of_window, bad, syn]
}

/// `dropped`: exactly the dropped frames, each as it was received (not the reply written
/// over it in place), with its reason and the worker's index.
#[test]
fn capture_dropped_sends_each_dropped_frame_as_received_with_its_reason() {
    let frames = capture_frames();
    let (got, lost) = captured(CaptureMode::Dropped, 16, &frames);
    assert_eq!(lost, 0);
    let summary: Vec<_> = got.iter().map(|c| (c.worker, c.reason)).collect();
    assert_eq!(
        summary,
        vec![
            (3, Some(DropReason::OutOfWindow)),
            (3, Some(DropReason::BadTcpChecksum))
        ]
    );
    assert_eq!(
        got[0].data, frames[0],
        "the received bytes, not the ACK over them"
    );
    assert_eq!(got[1].data, frames[1]);
}

/// `all` and `sample:2`: every frame, or every second one, before handling and without a
/// reason; a channel with room for one loses the rest, counted, and the loop goes on.
#[test]
fn capture_all_and_sample_take_frames_before_handling_and_count_losses() {
    let frames = capture_frames();
    let (all, lost) = captured(CaptureMode::All, 16, &frames);
    assert_eq!(lost, 0);
    assert_eq!(
        all.iter().map(|c| &c.data).collect::<Vec<_>>(),
        frames.iter().collect::<Vec<_>>()
    );
    assert!(all.iter().all(|c| c.reason.is_none()));
    let (sampled, _) = captured(CaptureMode::Sample(2), 16, &frames);
    assert_eq!(sampled.len(), 1);
    assert_eq!(sampled[0].data, frames[1]);
    let (one, lost) = captured(CaptureMode::All, 1, &frames);
    assert_eq!((one.len(), lost), (1, 2));
}
