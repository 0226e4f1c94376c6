//! What a worker publishes for the stats thread: its counters, gauges and port statistics
//! as relaxed atomics, written by the worker every ~100 ms and read without a lock.

use crate::counters::{Counters, DropReason, Event};
use crate::io::PortStats;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters and gauges a worker publishes for the stats thread (relaxed atomics, written
/// by the worker every ~100 ms and read by the stats thread; no lock).
#[derive(Debug)]
pub struct Published {
    /// Drop counters.
    pub drops: Vec<AtomicU64>,
    /// Event counters.
    pub events: Vec<AtomicU64>,
    /// Connections in the table.
    pub active: AtomicU64,
    /// Nanoseconds spent on loop iterations that had work.
    pub busy_ns: AtomicU64,
    /// Nanoseconds of loop time in all.
    pub loop_ns: AtomicU64,
    /// Port statistics, flattened in [`PortStats`] field order.
    pub port: [AtomicU64; 9],
    /// Captured frames lost because the capture channel was full.
    pub capture_lost: AtomicU64,
}

impl Default for Published {
    fn default() -> Self {
        Published {
            drops: (0..DropReason::COUNT).map(|_| AtomicU64::new(0)).collect(),
            events: (0..Event::COUNT).map(|_| AtomicU64::new(0)).collect(),
            active: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            loop_ns: AtomicU64::new(0),
            port: Default::default(),
            capture_lost: AtomicU64::new(0),
        }
    }
}

impl Published {
    /// Snapshot the counters.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for (d, a) in c.drops.iter_mut().zip(&self.drops) {
            *d = a.load(Ordering::Relaxed);
        }
        for (e, a) in c.events.iter_mut().zip(&self.events) {
            *e = a.load(Ordering::Relaxed);
        }
        c
    }

    /// Snapshot the port statistics.
    pub fn port_stats(&self) -> PortStats {
        let v: Vec<u64> = self
            .port
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        PortStats {
            rx_dropped: v[0],
            rx_invalid_descs: v[1],
            tx_invalid_descs: v[2],
            rx_ring_full: v[3],
            rx_fill_ring_empty_descs: v[4],
            tx_ring_empty_descs: v[5],
            tx_kicks: v[6],
            tx_kick_errors: v[7],
            tx_ring_full: v[8],
        }
    }

    /// Publish the loop's time: `busy` on batches with work, `looped` in all.
    pub(super) fn store_loop(&self, busy: Duration, looped: Duration) {
        self.busy_ns
            .store(busy.as_nanos() as u64, Ordering::Relaxed);
        self.loop_ns
            .store(looped.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(super) fn store(&self, c: &Counters, active: usize, port: &PortStats) {
        for (a, v) in self.drops.iter().zip(c.drops.iter()) {
            a.store(*v, Ordering::Relaxed);
        }
        for (a, v) in self.events.iter().zip(c.events.iter()) {
            a.store(*v, Ordering::Relaxed);
        }
        self.active.store(active as u64, Ordering::Relaxed);
        let p = [
            port.rx_dropped,
            port.rx_invalid_descs,
            port.tx_invalid_descs,
            port.rx_ring_full,
            port.rx_fill_ring_empty_descs,
            port.tx_ring_empty_descs,
            port.tx_kicks,
            port.tx_kick_errors,
            port.tx_ring_full,
        ];
        for (a, v) in self.port.iter().zip(p) {
            a.store(v, Ordering::Relaxed);
        }
    }
}
