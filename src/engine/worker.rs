//! [`Worker`]: a [`Stack`] around an [`io::Port`](Port), the per-core poll loop. Batches
//! of up to 64 frames, one clock reading per batch, timers fired from the loop, handoff of
//! foreign flows to their owner through bounded lock-free queues ([`super::handoff`]),
//! capture, reload instructions, and counters published for the stats thread.

use super::capture::Capture;
use super::handoff::{give_back, HandoffQueue, HANDOFF_MAX};
use super::published::Published;
use super::stack::{Outcome, Stack};
use crate::counters::{Counters, DropReason, Event};
use crate::io::{Frame, Port};
use crate::tcp::conn::State;
use crate::tcp::Clock;
use crossbeam::channel::Receiver;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Empty polls before an idle worker waits on its port.
const IDLE_SPINS: u32 = 256;

/// Instructions from the control thread, applied between batches (reload without a restart).
#[derive(Debug, Clone)]
pub enum Control {
    /// New listening ports and modes.
    Listeners(Vec<(u16, crate::tcp::responder::Mode)>),
    /// New fixed HTTP responses.
    Http(crate::tcp::responder::HttpResponses),
    /// New cookie secret; cookies of the old one stay valid until `ForgetPreviousSecret`.
    RotateSecret([u8; 16]),
    /// Stop accepting cookies made with the secret before the last rotation.
    ForgetPreviousSecret,
}

/// How a [`Worker`] is set up besides its stack and port: built once (by `app` from the
/// configuration, or by a test) and handed to [`Worker::with_config`].
pub struct WorkerConfig {
    /// Frames taken per `recv` (`xdp.batch_size`; at least 1).
    pub batch_size: usize,
    /// Every worker's handoff queues, `handoff[i]` being worker i's inbox; empty when there
    /// is no other worker to hand off to.
    pub handoff: Vec<Arc<HandoffQueue>>,
    /// This worker's index among `handoff` (and among the workers).
    pub index: usize,
    /// Frame capture hook.
    pub capture: Option<Capture>,
    /// Reload instructions from the control thread.
    pub control: Option<Receiver<Control>>,
    /// The instant the clock reads 0 ms (`Clock::ms`, hence every TSval we send). All
    /// workers of a process share one, which the XDP SYN offload also uses for the TSval of
    /// the SYN-ACKs it sends (`io::bpf::clock_origin_ns`).
    pub clock_origin: Instant,
}

impl WorkerConfig {
    /// A worker on its own (no handoff, capture or control) taking batches of
    /// `batch_size`, its clock starting now.
    pub fn batches(batch_size: usize) -> WorkerConfig {
        WorkerConfig {
            batch_size,
            handoff: Vec::new(),
            index: 0,
            capture: None,
            control: None,
            clock_origin: Instant::now(),
        }
    }
}

/// One worker: a stack, a port, and the handoff queues.
pub struct Worker<P: Port> {
    /// The frame-level endpoint.
    pub stack: Stack,
    /// The frame port.
    pub port: P,
    batch: Vec<Frame>,
    batch_size: usize,
    /// Our inbox and buffer pool; boxes move through the queues, so a handoff moves a
    /// pointer, not 2 KiB.
    inbox: Option<Arc<HandoffQueue>>,
    peers: Vec<Arc<HandoffQueue>>,
    /// Our index among `peers`.
    me: u16,
    /// What the stats thread reads.
    published: Arc<Published>,
    capture: Option<Capture>,
    control: Option<Receiver<Control>>,
    clock_origin: Instant,
}

impl<P: Port> Worker<P> {
    /// A worker on its own polling `port` in batches of `batch_size`
    /// ([`WorkerConfig::batches`]).
    pub fn new(stack: Stack, port: P, batch_size: usize) -> Self {
        Self::with_config(stack, port, WorkerConfig::batches(batch_size))
    }

    /// A worker polling `port` as `cfg` says.
    pub fn with_config(stack: Stack, port: P, cfg: WorkerConfig) -> Self {
        let batch_size = cfg.batch_size.max(1);
        Worker {
            stack,
            port,
            batch: vec![Frame { addr: 0, len: 0 }; batch_size],
            batch_size,
            inbox: cfg.handoff.get(cfg.index).cloned(),
            me: cfg.index as u16,
            peers: cfg.handoff,
            published: Arc::new(Published::default()),
            capture: cfg.capture,
            control: cfg.control,
            clock_origin: cfg.clock_origin,
        }
    }

    /// What this worker publishes for the stats thread (shared with it).
    pub fn published(&self) -> &Arc<Published> {
        &self.published
    }

    /// One loop iteration: receive a batch, handle it, take handed-off frames, run timers,
    /// send, flush. Returns the number of frames handled.
    pub fn poll(&mut self, clock: &Clock) -> usize {
        let n = self.port.recv(&mut self.batch[..self.batch_size]);
        self.stack.core.sh.counters.add(Event::RxFrames, n as u64);
        for i in 0..n {
            let Frame { addr, len } = self.batch[i];
            let buf = self.port.buffer(addr);
            let lost = &self.published.capture_lost;
            if let Some(cap) = &mut self.capture {
                // Before handling: a reply overwrites the frame in place.
                cap.before(&buf[..len as usize], &self.stack.core.sh.counters, lost);
            }
            let outcome = self.stack.handle(clock, buf, len as usize);
            if let Some(cap) = &self.capture {
                cap.after(&self.stack.core.sh.counters, lost);
            }
            match outcome {
                Outcome::Reply(len) => self.send(addr, len),
                Outcome::Done => self.port.release(addr),
                Outcome::Handoff(owner) => {
                    self.handoff(owner, addr, len as usize);
                    self.port.release(addr);
                }
            }
            self.send_pending();
        }
        let mut handled = n;
        handled += self.take_handoffs(clock);
        self.stack.on_timers(clock);
        self.send_pending();
        self.port.flush();
        handled
    }

    fn send(&mut self, addr: u64, len: usize) {
        send(&mut self.port, &mut self.stack.core.sh.counters, addr, len);
    }

    /// Send the segments that wait for frames of their own.
    fn send_pending(&mut self) {
        if !self.stack.has_pending() {
            return;
        }
        let (pending, frames, counters) = self.stack.drain_pending();
        for tx in pending {
            let Some(addr) = self.port.alloc_tx() else {
                counters.drop(DropReason::TxFull);
                continue;
            };
            match frames.emit(&tx, self.port.buffer(addr)) {
                Some(len) => send(&mut self.port, counters, addr, len),
                None => {
                    self.port.release(addr);
                    counters.drop(DropReason::TooBig);
                }
            }
        }
    }

    /// Copy a frame into the owner's inbox, in a buffer from our pool (never blocks and
    /// never allocates: a full inbox or an empty pool is a counted drop).
    fn handoff(&mut self, owner: usize, addr: u64, len: usize) {
        let counters = &mut self.stack.core.sh.counters;
        let (Some(queue), Some(mine), true) =
            (self.peers.get(owner), &self.inbox, len <= HANDOFF_MAX)
        else {
            counters.drop(DropReason::HandoffFull);
            return;
        };
        let Some(mut h) = mine.pool.pop() else {
            counters.drop(DropReason::HandoffFull);
            return;
        };
        h.from = self.me;
        h.len = len as u16;
        h.data[..len].copy_from_slice(&self.port.buffer(addr)[..len]);
        match queue.inbox.push(h) {
            Ok(()) => counters.event(Event::HandoffOut),
            Err(h) => {
                counters.drop(DropReason::HandoffFull);
                let _ = mine.pool.push(h);
            }
        }
    }

    /// Handle frames other workers received for our flows: each is copied into a TX frame
    /// and handled there in place, as if it had arrived here.
    fn take_handoffs(&mut self, clock: &Clock) -> usize {
        let Some(inbox) = self.inbox.clone() else {
            return 0;
        };
        let mut n = 0;
        while n < self.batch_size {
            let Some(h) = inbox.inbox.pop() else { break };
            n += 1;
            self.stack.core.sh.counters.event(Event::HandoffIn);
            let Some(addr) = self.port.alloc_tx() else {
                self.stack.core.sh.counters.drop(DropReason::TxFull);
                give_back(&self.peers, h);
                continue;
            };
            let len = h.len as usize;
            let buf = self.port.buffer(addr);
            let len = len.min(buf.len());
            buf[..len].copy_from_slice(&h.data[..len]);
            give_back(&self.peers, h);
            match self.stack.handle_handed_off(clock, buf, len) {
                Outcome::Reply(len) => self.send(addr, len),
                _ => self.port.release(addr),
            }
            self.send_pending();
        }
        n
    }

    /// Publish counters for the stats thread.
    pub fn publish(&self) {
        self.published.store(
            &self.stack.core.sh.counters,
            self.stack.core.active(),
            &self.port.stats(),
        );
    }

    /// Apply pending control messages (reload).
    fn apply_control(&mut self) {
        let Some(rx) = &self.control else { return };
        while let Ok(msg) = rx.try_recv() {
            let core = &mut self.stack.core;
            match msg {
                Control::Listeners(l) => core.set_listeners(&l),
                Control::Http(h) => core.sh.http = h,
                Control::RotateSecret(s) => core.sh.jar.rotate(s),
                Control::ForgetPreviousSecret => core.sh.jar.forget_previous(),
            }
        }
    }

    /// Whether every connection left is in TIME-WAIT, which needs nothing from us.
    fn only_time_wait_left(&self) -> bool {
        let states = self.stack.core.states();
        states[..State::TimeWait as usize].iter().all(|&n| n == 0)
    }

    /// Run until `stop` is set, then close every connection and keep serving for up to
    /// `drain` so the closes complete. Empty polls spin briefly, then wait on the port.
    pub fn run(&mut self, stop: &AtomicBool, drain: Duration) {
        let start = Instant::now();
        let mut last_publish = Instant::now();
        let mut idle_polls = 0u32;
        let mut stopping: Option<Instant> = None;
        let mut last_drain_check = start;
        let mut busy = Duration::ZERO;
        loop {
            let t0 = Instant::now();
            let clock = wall_clock(self.clock_origin);
            let n = self.poll(&clock);
            self.apply_control();
            let t1 = Instant::now();
            if n > 0 {
                busy += t1 - t0;
                idle_polls = 0;
            } else {
                idle_polls = idle_polls.saturating_add(1);
                // Never sleep while frames wait on the RX ring (they arrived after `recv`
                // looked): the next poll takes them.
                if idle_polls > IDLE_SPINS && self.port.rx_ready() == 0 {
                    self.port.wait(Duration::from_millis(1));
                }
            }
            if t1 - last_publish >= Duration::from_millis(100) {
                self.publish();
                self.published.store_loop(busy, start.elapsed());
                last_publish = t1;
            }
            match stopping {
                None if stop.load(Ordering::Relaxed) => {
                    self.stack.core.close_all(&wall_clock(self.clock_origin));
                    self.send_pending();
                    self.port.flush();
                    stopping = Some(Instant::now());
                }
                // TIME-WAIT needs nothing from us: stop once every other state is gone
                // (counting states walks the slab, so only on idle polls, every 20 ms).
                Some(t)
                    if t.elapsed() >= drain
                        || (idle_polls > 0
                            && t1 - last_drain_check >= Duration::from_millis(20)
                            && {
                                last_drain_check = t1;
                                self.only_time_wait_left()
                            }) =>
                {
                    break
                }
                _ => {}
            }
        }
        self.publish();
        self.published.store_loop(busy, start.elapsed());
    }
}

/// A clock source for the loop: real time, or a fixed reading for tests.
pub fn wall_clock(start: Instant) -> Clock {
    Clock {
        ms: start.elapsed().as_millis() as u64,
        unix_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

/// Put a written frame on the TX ring, counted as sent (`tx_frames`) or as a full ring.
fn send<P: Port>(port: &mut P, counters: &mut Counters, addr: u64, len: usize) {
    if port.send(addr, len as u32) {
        counters.event(Event::TxFrames);
    } else {
        counters.drop(DropReason::TxFull);
    }
}
