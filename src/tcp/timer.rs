//! Timers: what a connection waits for, and the per-core hashed timer wheel that holds them.
//!
//! A connection has at most one live wheel entry, for its earliest deadline; when that
//! entry fires the table asks the connection which [`Timer`]s are due, runs them and
//! schedules the next. Moving a deadline later costs nothing (the entry fires early and is
//! rescheduled); moving it earlier adds an entry and leaves the old one stale (recognised by
//! its deadline no longer matching). So an ACK that extends the idle timer never touches
//! the wheel.

use super::Tick;
use strum::EnumCount as _;

/// The timers a connection can run, each carrying its own deadline (a 32-bit ms tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount)]
pub enum Timer {
    /// Retransmission (RFC 6298) or zero-window probe (RFC 9293 §3.8.6.1) of unacknowledged
    /// data or FIN.
    Retransmit {
        /// When it fires.
        at: Tick,
    },
    /// TIME-WAIT ends: the connection is forgotten (RFC 9293 §3.10.8).
    TimeWait {
        /// When it fires.
        at: Tick,
    },
    /// No segment for the idle timeout: the server closes (or aborts) the connection.
    Idle {
        /// When it fires.
        at: Tick,
    },
    /// An http request head is still incomplete: 408 and close (slowloris bound).
    Header {
        /// When it fires.
        at: Tick,
    },
}

impl Timer {
    /// The deadline this timer carries.
    pub fn at(&self) -> Tick {
        match *self {
            Timer::Retransmit { at }
            | Timer::TimeWait { at }
            | Timer::Idle { at }
            | Timer::Header { at } => at,
        }
    }

    /// The longest time ahead each kind can be set on the wheel, given the parameters:
    /// the wheel's horizon is the largest of these, so every kind fits in one turn. The
    /// idle timer is not kept on the wheel (the table sweeps for it), so its horizon is 0.
    /// One per kind: the length is the derived number of kinds, so a new kind does not
    /// compile until it has its horizon here.
    pub fn horizons(p: &super::Params) -> [u32; Self::COUNT] {
        [p.rto_max_ms, p.time_wait_ms, 0, p.header_timeout_ms]
    }
}

/// One wheel entry: slab index, its generation, and the deadline it was scheduled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Slab index of the connection (with its family bit, see `table`).
    pub slot: u32,
    /// Generation of the slot when scheduled: a reused slot does not inherit timers.
    pub gen: u32,
    /// The deadline tick this entry stands for.
    pub at: Tick,
}

/// A hashed timer wheel with a fixed tick. Entries further ahead than one turn stay in
/// their slot and are skipped (left in place) until their turn comes.
#[derive(Debug)]
pub struct Wheel {
    slots: Vec<Vec<Entry>>,
    mask: u64,
    tick_ms: u32,
    /// The wheel tick (time / tick_ms) processed last; its slot may still hold entries due
    /// later in the same tick.
    cursor: u64,
    len: usize,
}

impl Wheel {
    /// Milliseconds per wheel tick: fine enough for a 200 ms minimum RTO.
    pub const TICK_MS: u32 = 8;

    /// A wheel whose one turn covers `horizon_ms` (rounded up to a power of two of ticks),
    /// starting at monotonic time `now_ms`.
    pub fn new(horizon_ms: u32, now_ms: u64) -> Self {
        let ticks = (horizon_ms / Self::TICK_MS + 2)
            .next_power_of_two()
            .clamp(64, 1 << 17) as usize;
        Wheel {
            slots: (0..ticks).map(|_| Vec::new()).collect(),
            mask: ticks as u64 - 1,
            tick_ms: Self::TICK_MS,
            cursor: now_ms / Self::TICK_MS as u64,
            len: 0,
        }
    }

    /// A wheel sized for the largest timer horizon of `params`.
    pub fn for_params(params: &super::Params, now_ms: u64) -> Self {
        let horizon = Timer::horizons(params).into_iter().max().unwrap_or(0);
        Self::new(horizon, now_ms)
    }

    /// Number of entries held (live and stale).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the wheel holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots (one turn = slots × tick).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Schedule an entry for `entry.at` (a 32-bit tick of `now_ms`'s clock).
    pub fn schedule(&mut self, now_ms: u64, entry: Entry) {
        // Expand the 32-bit deadline to the 64-bit clock near `now_ms`.
        let delta = i64::from(entry.at.diff(Tick::from_ms(now_ms)));
        let at_ms = (now_ms as i64 + delta.max(0)) as u64;
        // Never into a slot the cursor has passed: due entries go to the cursor's slot.
        let tick = (at_ms / self.tick_ms as u64).max(self.cursor);
        self.slots[(tick & self.mask) as usize].push(entry);
        self.len += 1;
    }

    /// Take every entry whose deadline has passed at `now_ms`, calling `fire` on each.
    /// Entries in the visited slots that are not yet due (a later turn) are kept.
    pub fn advance(&mut self, now_ms: u64, mut fire: impl FnMut(Entry)) {
        let target = now_ms / self.tick_ms as u64;
        if target < self.cursor {
            return;
        }
        // The cursor's own slot is visited again next time: entries due later within the
        // same tick wait there. Visiting more than one turn would see slots twice.
        let steps = (target - self.cursor + 1).min(self.slots.len() as u64);
        let now = Tick::from_ms(now_ms);
        for i in 0..steps {
            let idx = ((self.cursor + i) & self.mask) as usize;
            let slot = &mut self.slots[idx];
            let mut j = 0;
            while j < slot.len() {
                if now.reached(slot[j].at) {
                    let e = slot.swap_remove(j);
                    self.len -= 1;
                    fire(e);
                } else {
                    j += 1;
                }
            }
        }
        self.cursor = target;
    }

    /// The earliest tick boundary at which `advance` may have work: the caller's poll loop
    /// can sleep until then. `None` when the wheel is empty.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        for i in 0..self.slots.len() as u64 {
            let tick = self.cursor + i;
            if !self.slots[(tick & self.mask) as usize].is_empty() {
                return Some(tick * self.tick_ms as u64);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(slot: u32, at: u32) -> Entry {
        Entry {
            slot,
            gen: 0,
            at: Tick(at),
        }
    }

    #[test]
    fn fires_at_deadline_not_before() {
        let mut w = Wheel::new(10_000, 1_000);
        w.schedule(1_000, e(1, 1_500));
        let mut fired = vec![];
        w.advance(1_499, |x| fired.push(x.slot));
        assert!(fired.is_empty());
        w.advance(1_500, |x| fired.push(x.slot));
        assert_eq!(fired, vec![1]);
        assert!(w.is_empty());
    }

    #[test]
    fn beyond_one_turn_waits_for_its_turn() {
        let mut w = Wheel::new(1_000, 0);
        let turn = w.slots() as u64 * Wheel::TICK_MS as u64;
        w.schedule(0, e(7, (turn * 2 + 100) as u32));
        let mut fired = 0;
        let mut t = 0;
        while t < turn * 2 + 100 {
            w.advance(t, |_| fired += 1);
            t += 50;
        }
        assert_eq!(fired, 0);
        w.advance(turn * 2 + 104, |_| fired += 1);
        assert_eq!(fired, 1);
    }

    #[test]
    fn past_deadline_fires_on_next_advance() {
        let mut w = Wheel::new(1_000, 5_000);
        w.advance(5_000, |_| {});
        w.schedule(5_000, e(3, 4_000));
        let mut fired = vec![];
        w.advance(5_001, |x| fired.push(x.slot));
        assert_eq!(fired, vec![3]);
    }

    #[test]
    fn large_jump_fires_everything_due() {
        let mut w = Wheel::new(1_000, 0);
        for i in 0..100 {
            w.schedule(0, e(i, 10 * i));
        }
        let mut n = 0;
        w.advance(1_000_000, |_| n += 1);
        assert_eq!(n, 100);
        assert_eq!(w.next_deadline_ms(), None);
    }

    #[test]
    fn sized_from_timer_horizons() {
        let p = super::super::Params {
            time_wait_ms: 60_000,
            ..Default::default()
        };
        let w = Wheel::for_params(&p, 0);
        let turn = w.slots() as u64 * Wheel::TICK_MS as u64;
        assert!(turn >= p.time_wait_ms as u64 && turn >= p.rto_max_ms as u64);
    }

    #[test]
    fn wraps_around_the_32_bit_tick() {
        let start = u32::MAX as u64 - 100;
        let mut w = Wheel::new(10_000, start);
        w.schedule(start, e(9, (start as u32).wrapping_add(300)));
        let mut fired = vec![];
        w.advance(start + 299, |x| fired.push(x.slot));
        assert!(fired.is_empty());
        w.advance(start + 300, |x| fired.push(x.slot));
        assert_eq!(fired, vec![9]);
    }
}
