//! Cross-core handoff: a frame received by a worker that does not own its flow (RSS
//! steering, [`super::Steering`]) is copied into a buffer from that worker's pool and
//! pushed to the owner's inbox, bounded lock-free queues (crossbeam `ArrayQueue`) that
//! move a box, never block and never allocate after start.

use crossbeam::queue::ArrayQueue;
use std::sync::Arc;

/// Largest frame a handoff queue carries (a full 1500-byte MTU frame with a VLAN tag fits).
pub const HANDOFF_MAX: usize = 2048;

/// A frame copied for its owner core.
pub struct Handoff {
    /// The worker whose pool the buffer goes back to.
    pub(super) from: u16,
    /// Bytes of `data` in use.
    pub(super) len: u16,
    /// The frame.
    pub(super) data: [u8; HANDOFF_MAX],
}

/// One worker's side of the cross-core handoff: its inbox (frames other workers received
/// for its flows) and the pool of buffers it copies its own handoffs into.
///
/// Memory is fixed at construction: `capacity` buffers per worker, all allocated here and
/// never again. A buffer leaves its pool with a handoff and the receiver gives it back to
/// the same pool once it has copied the frame out, so whatever the imbalance between
/// workers (one receiving every frame, another owning every flow), no pool holds more than
/// `capacity` buffers and no worker allocates on the hot path. A worker whose buffers are
/// all in flight drops the frame (counted as `handoff_full`), as it does when the owner's
/// inbox is full.
pub struct HandoffQueue {
    /// Frames for this worker's flows, from the others.
    pub(super) inbox: ArrayQueue<Box<Handoff>>,
    /// Buffers this worker copies its own handoffs into.
    pub(super) pool: ArrayQueue<Box<Handoff>>,
}

impl HandoffQueue {
    /// An inbox of `capacity` entries and a pool of `capacity` buffers (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let pool = ArrayQueue::new(capacity);
        for _ in 0..capacity {
            let _ = pool.push(Box::new(Handoff {
                from: 0,
                len: 0,
                data: [0; HANDOFF_MAX],
            }));
        }
        HandoffQueue {
            inbox: ArrayQueue::new(capacity),
            pool,
        }
    }

    /// Entries the inbox holds at most, and buffers in the pool when none is in flight.
    pub fn capacity(&self) -> usize {
        self.pool.capacity()
    }

    /// Buffers in this worker's pool now (at most [`capacity`](Self::capacity)).
    pub fn spare(&self) -> usize {
        self.pool.len()
    }

    /// Frames waiting in the inbox now.
    pub fn queued(&self) -> usize {
        self.inbox.len()
    }

    /// Whether no frame waits in the inbox.
    pub fn is_empty(&self) -> bool {
        self.inbox.is_empty()
    }
}

/// Give a handoff buffer back to the pool of the worker that filled it (it came from
/// there, so there is room).
pub(super) fn give_back(peers: &[Arc<HandoffQueue>], h: Box<Handoff>) {
    if let Some(q) = peers.get(usize::from(h.from)) {
        let _ = q.pool.push(h);
    }
}
