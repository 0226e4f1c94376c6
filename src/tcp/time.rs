//! The two 32-bit clocks a connection keeps, each a newtype compared modulo 2^32 like
//! sequence numbers ([`crate::wire::SeqNumber`], RFC 1982 §3.2), so that no deadline or
//! timestamp is ever compared with a plain `<` that breaks at the wrap:
//!
//! - [`Tick`]: our millisecond clock as a TCB stores it (timer deadlines, last activity,
//!   rate limits); it wraps every 49.7 days.
//! - [`TsVal`]: an RFC 7323 timestamp value (SEG.TSval, SEG.TSecr, TS.Recent). RFC 7323
//!   §5.2: "the 'timestamps' are 32-bit unsigned integers in a modular 32-bit space.
//!   Thus, 'less than' is defined the same way it is for TCP sequence numbers"; PAWS
//!   (§5.3 R1) and the TS.Recent update (§4.3) compare through it.
//!
//! The wire keeps both as `u32` (`TcpOptions::timestamps`); this layer wraps them where it
//! reads them.

use crate::wire::seq::serial_number;

/// A 32-bit millisecond tick: the low 32 bits of [`super::Clock::ms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tick(pub u32);

serial_number!(Tick);

impl Tick {
    /// The tick of monotonic millisecond `ms` (its low 32 bits).
    #[inline(always)]
    pub fn from_ms(ms: u64) -> Tick {
        Tick(ms as u32)
    }

    /// Whether this tick is at or after `deadline` (the deadline has come).
    #[inline(always)]
    pub fn reached(self, deadline: Tick) -> bool {
        self.ge(deadline)
    }

    /// The TSval we send at this tick: our timestamp clock is the millisecond tick
    /// (RFC 7323 §5.4: a clock of 1 ms to 1 s a tick).
    #[inline(always)]
    pub fn tsval(self) -> TsVal {
        TsVal(self.0)
    }
}

/// An RFC 7323 timestamp value (TSval, TSecr, TS.Recent), ordered modulo 2^32 (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TsVal(pub u32);

serial_number!(TsVal);

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7323 §5.2: timestamps order as sequence numbers do, across the wrap; a TSval
    /// just past 2^32 is newer than TS.Recent just before it (PAWS must not reject it).
    #[test]
    fn rfc7323_s5_2_timestamps_compare_modulo_2_32() {
        let recent = TsVal(u32::MAX - 5);
        let newer = recent.add(10);
        assert_eq!(newer, TsVal(4));
        assert!(recent.lt(newer) && newer.gt(recent) && newer.ge(recent));
        assert!(
            !newer.lt(recent),
            "PAWS keeps a segment from after the wrap"
        );
        assert!(recent.sub(1).lt(recent), "an older TSval is rejected");
        assert!(recent.le(recent) && !recent.lt(recent));
        assert_eq!(newer.diff(recent), 10);
    }

    /// A deadline set before the 32-bit tick wraps comes due after it, not 49.7 days late.
    #[test]
    fn tick_deadline_reached_across_the_wrap() {
        let now = Tick::from_ms(u64::from(u32::MAX) - 100);
        let deadline = now.add(300);
        assert_eq!(deadline, Tick(199));
        assert!(!now.reached(deadline));
        assert!(!Tick(198).reached(deadline));
        assert!(Tick(199).reached(deadline) && Tick(500).reached(deadline));
        assert_eq!(Tick::from_ms((1 << 32) + 7), Tick(7));
        assert_eq!(Tick(7).tsval(), TsVal(7));
    }
}
