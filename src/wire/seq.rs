//! TCP sequence numbers: 32-bit serial numbers compared modulo 2^32.
//!
//! RFC 9293 §3.4: "It is essential to remember that the actual sequence number space is
//! finite, though very large. This space ranges from 0 to 2^32 - 1. Since the space is
//! finite, all arithmetic dealing with sequence numbers must be performed modulo 2^32."
//!
//! Ordering follows RFC 1982 serial number arithmetic: `a < b` iff the wrapping distance
//! `b - a` is in `1..2^31`. That relation is not transitive, so [`SeqNumber`] deliberately
//! has no `PartialOrd`: comparisons are the explicit [`lt`](SeqNumber::lt) family, and
//! windows are tested with [`in_range`](SeqNumber::in_range).

/// A TCP sequence or acknowledgment number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

/// Modular arithmetic and RFC 1982 order for a `u32` newtype `$t(pub u32)`: `add`/`sub`
/// of a distance, the signed `diff`, the explicit `lt`/`le`/`gt`/`ge` and `max`/`min`.
/// One definition for every 32-bit serial number of the crate: sequence numbers here,
/// the millisecond tick and the RFC 7323 timestamps in `tcp::time`.
macro_rules! serial_number {
    ($t:ident) => {
        // `add`/`sub` take a `u32` distance, not another serial number (adding two of them
        // is meaningless), so they are not `ops::Add`/`ops::Sub`.
        #[allow(clippy::should_implement_trait)]
        impl $t {
            /// `self + n` modulo 2^32.
            #[inline(always)]
            pub fn add(self, n: u32) -> $t {
                $t(self.0.wrapping_add(n))
            }

            /// `self - n` modulo 2^32.
            #[inline(always)]
            pub fn sub(self, n: u32) -> $t {
                $t(self.0.wrapping_sub(n))
            }

            /// Signed distance `self - other`, in `-2^31..2^31`: positive iff `self` is
            /// after `other`. Inverse of `add`: `b.add(a.diff(b) as u32) == a`.
            #[inline(always)]
            pub fn diff(self, other: $t) -> i32 {
                self.0.wrapping_sub(other.0) as i32
            }

            /// `self` is strictly before `o` (RFC 1982 §3.2).
            #[inline(always)]
            pub fn lt(self, o: $t) -> bool {
                self.diff(o) < 0
            }

            /// `self` is before or equal to `o`.
            #[inline(always)]
            pub fn le(self, o: $t) -> bool {
                self.diff(o) <= 0
            }

            /// `self` is strictly after `o`.
            #[inline(always)]
            pub fn gt(self, o: $t) -> bool {
                self.diff(o) > 0
            }

            /// `self` is after or equal to `o`.
            #[inline(always)]
            pub fn ge(self, o: $t) -> bool {
                self.diff(o) >= 0
            }

            /// The later of the two (`self` if equal).
            #[inline(always)]
            pub fn max(self, o: $t) -> $t {
                if o.gt(self) {
                    o
                } else {
                    self
                }
            }

            /// The earlier of the two (`self` if equal).
            #[inline(always)]
            pub fn min(self, o: $t) -> $t {
                if o.lt(self) {
                    o
                } else {
                    self
                }
            }
        }

        impl core::fmt::Display for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&self.0, f)
            }
        }
    };
}
pub(crate) use serial_number;

serial_number!(SeqNumber);

impl SeqNumber {
    /// `start <= self < end` in modular order: `self` lies in the half-open window that
    /// starts at `start` and is `end - start` long (RFC 9293 §3.4, e.g. "RCV.NXT =<
    /// SEG.SEQ < RCV.NXT+RCV.WND"). An empty window (`start == end`) contains nothing.
    #[inline(always)]
    pub fn in_range(self, start: SeqNumber, end: SeqNumber) -> bool {
        self.0.wrapping_sub(start.0) < end.0.wrapping_sub(start.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    /// RFC 9293 §3.4: arithmetic is modulo 2^32.
    #[test]
    fn rfc9293_s3_4_wrapping_add_sub() {
        assert_eq!(s(u32::MAX).add(1), s(0));
        assert_eq!(s(0).sub(1), s(u32::MAX));
        assert_eq!(s(10).add(u32::MAX), s(9));
        assert_eq!(s(5).diff(s(u32::MAX - 4)), 10);
        assert_eq!(s(u32::MAX - 4).diff(s(5)), -10);
    }

    /// RFC 1982 §3.2: ordering across the wrap.
    #[test]
    fn rfc1982_s3_2_ordering_across_wrap() {
        let a = s(0xffff_fff0);
        let b = s(0x10);
        assert!(a.lt(b) && a.le(b) && b.gt(a) && b.ge(a));
        assert!(!b.lt(a) && !a.gt(b));
        assert!(a.le(a) && a.ge(a) && !a.lt(a) && !a.gt(a));
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert_eq!(b.max(a), b);
        assert_eq!(b.min(a), a);
        // Just under half the space ahead is still "after".
        assert!(s(0).lt(s(0x7fff_ffff)));
        // Exactly half the space away: diff is i32::MIN, both see the other as "before".
        // RFC 1982 §3.2 leaves this case undefined; we only require determinism.
        assert_eq!(s(0).diff(s(0x8000_0000)), i32::MIN);
    }

    /// RFC 9293 §3.10.7.4: "RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND", across the wrap.
    #[test]
    fn rfc9293_s3_4_window_membership() {
        let start = s(u32::MAX - 9);
        let end = start.add(20);
        assert!(start.in_range(start, end));
        assert!(s(0).in_range(start, end));
        assert!(end.sub(1).in_range(start, end));
        assert!(!end.in_range(start, end));
        assert!(!start.sub(1).in_range(start, end));
        assert!(!start.in_range(start, start), "empty window");
    }
}
