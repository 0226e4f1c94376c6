//! The generator's poll loop over an [`io::Port`](crate::io::Port): one receive batch into
//! the [`Client`], due timers, a paced batch of new SYNs, every queued segment written
//! into a TX frame, then one `flush` (one kick) for the lot.

use crate::gen::client::{Client, Out};
use crate::io::{Frame, Port};
use crate::table::L2Path;

/// How fast and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// New connections (or flood SYNs) per second; `None` = as fast as the port takes them.
    pub rate: Option<u64>,
    /// Most connections to start in the run.
    pub count: u64,
    /// Most connections open at once (ignored by the flood, which keeps no state).
    pub max_in_flight: usize,
    /// Most SYNs started per loop iteration, and the receive batch size.
    pub batch: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            rate: None,
            count: 1000,
            max_in_flight: 65_536,
            batch: 64,
        }
    }
}

/// The client, its port and the path to the target.
pub struct Driver<P: Port> {
    /// The state machine.
    pub client: Client,
    /// The frame port.
    pub port: P,
    /// Our MAC and the target's.
    pub l2: L2Path,
    pace: Pace,
    rx: Vec<Frame>,
    /// Segments that found no TX frame or ring slot yet, sent first next time.
    backlog: Vec<Out>,
    first_open_us: Option<u64>,
    /// Frames received.
    pub rx_frames: u64,
    /// Frames put on the TX ring.
    pub tx_frames: u64,
    /// Times a segment had to wait for a TX frame or ring slot.
    pub tx_waits: u64,
}

impl<P: Port> Driver<P> {
    /// A driver sending on `port` along `l2`.
    pub fn new(client: Client, port: P, l2: L2Path, pace: Pace) -> Self {
        let batch = pace.batch.max(1);
        Driver {
            client,
            port,
            l2,
            pace: Pace { batch, ..pace },
            rx: vec![Frame { addr: 0, len: 0 }; batch],
            backlog: Vec::with_capacity(batch * 4),
            first_open_us: None,
            rx_frames: 0,
            tx_frames: 0,
            tx_waits: 0,
        }
    }

    /// When the first SYN was started, µs.
    pub fn first_open_us(&self) -> Option<u64> {
        self.first_open_us
    }

    /// Whether every connection allowed by `count` (or every tuple) has been started.
    pub fn all_started(&self) -> bool {
        self.client.stats().attempted >= self.pace.count || self.client.tuples_left() == 0
    }

    /// Whether nothing is open or waiting to be sent.
    pub fn idle(&self) -> bool {
        self.client.in_flight() == 0 && self.backlog.is_empty() && !self.client.has_out()
    }

    /// New connections allowed now.
    fn open_budget(&self, now_us: u64) -> u64 {
        let stats = self.client.stats();
        let mut budget = self
            .pace
            .count
            .saturating_sub(stats.attempted)
            .min(self.pace.batch as u64);
        if !self.client.config().syn_flood {
            let room = self
                .pace
                .max_in_flight
                .saturating_sub(self.client.in_flight());
            budget = budget.min(room as u64);
        }
        if let Some(rate) = self.pace.rate {
            let since = now_us.saturating_sub(self.first_open_us.unwrap_or(now_us));
            // Allowed by now: one at once, then `rate` per second.
            let allowed = 1 + (u128::from(rate) * u128::from(since) / 1_000_000) as u64;
            budget = budget.min(allowed.saturating_sub(stats.attempted));
        }
        budget
    }

    /// One iteration at `now_us`; `open` says whether new connections may start.
    /// Returns the number of frames received.
    pub fn poll(&mut self, now_us: u64, open: bool) -> usize {
        let n = self.port.recv(&mut self.rx);
        self.rx_frames += n as u64;
        for i in 0..n {
            let Frame { addr, len } = self.rx[i];
            let buf = self.port.buffer(addr);
            let len = (len as usize).min(buf.len());
            self.client.on_frame(now_us, &buf[..len]);
            self.port.release(addr);
        }
        self.client.on_timers(now_us);
        // New SYNs only when the last batch went out whole: a backlog means the TX ring
        // or the frame pool is the bottleneck, and more SYNs would only wait longer.
        if open && self.backlog.is_empty() {
            let budget = self.open_budget(now_us);
            for _ in 0..budget {
                if !self.client.open(now_us) {
                    break;
                }
                self.first_open_us.get_or_insert(now_us);
            }
        }
        self.send_out();
        self.port.flush();
        n
    }

    /// Write the backlog, then the client's new segments, into TX frames.
    fn send_out(&mut self) {
        let mut queue = std::mem::take(&mut self.backlog);
        queue.extend(self.client.take_out());
        let mut sent = 0;
        for out in queue.iter() {
            let Some(addr) = self.port.alloc_tx() else {
                break;
            };
            let buf = self.port.buffer(addr);
            match self.client.emit(out, &self.l2, buf) {
                Some(len) => {
                    if !self.port.send(addr, len as u32) {
                        // The port took the frame back; retry this segment next time.
                        break;
                    }
                    self.tx_frames += 1;
                }
                // Cannot be framed (a family mismatch): nothing to retry.
                None => self.port.release(addr),
            }
            sent += 1;
        }
        if sent < queue.len() {
            self.tx_waits += 1;
        }
        queue.drain(..sent);
        self.backlog = queue;
    }
}
