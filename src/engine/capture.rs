//! Frame capture: a worker copies received frames (all, one in N, or the dropped ones with
//! their reason) to a bounded crossbeam channel that the pcapng writer thread drains
//! (`ops`); a full channel loses the frame, counted, and never blocks the poll loop.

use crate::counters::{Counters, DropReason};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Which received frames a worker copies to the capture thread (defined in `io`, where
/// the config can name it without importing the engine).
pub use crate::io::CaptureMode;

/// A received frame copied for the capture thread.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Worker that received it.
    pub worker: u16,
    /// Arrival time, ns since the Unix epoch.
    pub unix_ns: u64,
    /// Why it was dropped, if it was.
    pub reason: Option<DropReason>,
    /// The frame bytes as received.
    pub data: Vec<u8>,
}

/// A worker's capture hook: frames go to a bounded channel that a writer thread drains;
/// a full channel loses the frame (counted), it never blocks the loop.
#[derive(Debug)]
pub struct Capture {
    /// What to capture.
    pub mode: CaptureMode,
    /// To the writer thread.
    pub tx: crossbeam::channel::Sender<Captured>,
    /// This worker's index (stored in each record).
    pub worker: u16,
    seen: u64,
    /// `dropped` mode: the bytes of the frame being handled, as received (a reply may
    /// overwrite them in place), and the drop count before it was handled.
    kept: Vec<u8>,
    drops_before: u64,
}

impl Capture {
    /// A hook for `worker` sending to `tx`.
    pub fn new(mode: CaptureMode, tx: crossbeam::channel::Sender<Captured>, worker: u16) -> Self {
        Capture {
            mode,
            tx,
            worker,
            seen: 0,
            kept: Vec::with_capacity(4096),
            drops_before: 0,
        }
    }

    /// Before `frame` is handled: send it if the mode takes every frame or this one in N;
    /// in `dropped` mode keep its bytes aside (a dropped frame may still be answered in
    /// place, e.g. the ACK for an unacceptable segment) and note the drop count.
    #[inline]
    pub(super) fn before(&mut self, frame: &[u8], counters: &Counters, lost: &AtomicU64) {
        match self.mode {
            CaptureMode::All => self.send(None, frame, lost),
            CaptureMode::Sample(k) => {
                self.seen += 1;
                if self.seen.is_multiple_of(u64::from(k.max(1))) {
                    self.send(None, frame, lost);
                }
            }
            CaptureMode::Dropped => {
                self.kept.clear();
                self.kept.extend_from_slice(frame);
                self.drops_before = counters.total_drops();
            }
        }
    }

    /// After the frame was handled: in `dropped` mode, send the kept bytes with the reason
    /// if it was dropped.
    #[inline]
    pub(super) fn after(&self, counters: &Counters, lost: &AtomicU64) {
        if self.mode == CaptureMode::Dropped && counters.total_drops() != self.drops_before {
            self.send(counters.last_drop, &self.kept, lost);
        }
    }

    fn send(&self, reason: Option<DropReason>, data: &[u8], lost: &AtomicU64) {
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let rec = Captured {
            worker: self.worker,
            unix_ns,
            reason,
            data: data.to_vec(),
        };
        if self.tx.try_send(rec).is_err() {
            lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}
