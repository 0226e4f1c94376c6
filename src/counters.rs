//! Per-core counters indexed by `Copy` enums: the hot path's only error channel.
//!
//! Every frame that is not answered or accepted ends in exactly one [`DropReason`], and
//! every notable event increments one [`Event`]. Both index a flat `[u64; N]` array, so
//! counting is one add with no allocation, no string and no branch on the reason.
//! This module sits below every layer (it imports nothing from the crate) so that `wire`,
//! `tcp`, `table`, `engine` and `io` can all count into the same structure.

#![forbid(unsafe_code)]

use serde::Serialize;

macro_rules! counter_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in index order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// Number of variants: the length of the counter array.
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name used in stats JSON, logs and metrics.
            pub const fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }
    };
}

/// The counter enums of other layers (the generator's drop reasons) are declared with the
/// same macro, so their `ALL`, `COUNT` and labels are derived from the one variant list.
pub(crate) use counter_enum;

counter_enum! {
    /// Why a received frame was dropped (or a connection refused). One counter each.
    #[must_use = "a drop reason is counted, or the drop is invisible"]
    DropReason {
        /// Frame shorter than the headers it claims, or a length field that lies.
        Malformed => "malformed",
        /// Ethertype we do not handle (not IPv4, IPv6, ARP; or more than one VLAN tag).
        UnsupportedL2 => "unsupported_l2",
        /// IPv4 header checksum wrong.
        BadIpChecksum => "bad_ip_checksum",
        /// TCP checksum wrong.
        BadTcpChecksum => "bad_tcp_checksum",
        /// IPv4 fragment (first or later): we never reassemble.
        Fragment => "fragment",
        /// IPv6 packet with an extension header before TCP.
        Ipv6ExtHeader => "ipv6_ext_header",
        /// Not TCP (and not ARP/NDP that we answer).
        NotTcp => "not_tcp",
        /// TCP to an address or port we do not serve.
        NotOurs => "not_ours",
        /// TCP option block with an impossible length.
        BadTcpOptions => "bad_tcp_options",
        /// Source address that can never originate a connection (multicast, broadcast, ours).
        BadSource => "bad_source",
        /// ACK in LISTEN whose cookie hash does not verify.
        CookieInvalid => "cookie_invalid",
        /// ACK in LISTEN whose cookie counter is older than two periods (or in the future).
        CookieExpired => "cookie_expired",
        /// SYN with FIN to a listener (Linux `tcp_rcv_state_process`: discarded).
        SynWithFin => "syn_fin",
        /// SYN with RST to a listener (RFC 9293 §3.10.7.2: an RST is ignored in LISTEN).
        SynWithRst => "syn_rst",
        /// Segment without a known connection that is neither a SYN nor a cookie ACK.
        NoConnection => "no_connection",
        /// RST for which no connection exists (RFC 9293 §3.10.7.1: discard).
        RstNoConnection => "rst_no_connection",
        /// Segment outside the receive window (RFC 9293 §3.10.7.4 first check).
        OutOfWindow => "out_of_window",
        /// Segment failing PAWS (RFC 7323 §5).
        PawsRejected => "paws_rejected",
        /// In a synchronized state, a segment without ACK (RFC 9293 §3.10.7.4 fifth check).
        NoAck => "no_ack",
        /// ACK for data we never sent (RFC 9293 §3.10.7.4, RFC 5961 §5.2).
        UnacceptableAck => "unacceptable_ack",
        /// RST in the window but not exactly at RCV.NXT (answered by a challenge ACK).
        RstInWindow => "rst_in_window",
        /// RST outside the window (RFC 5961 §3.2: silently dropped).
        RstOutOfWindow => "rst_out_of_window",
        /// Segment arriving out of order: dropped and answered with a duplicate ACK.
        OutOfOrder => "out_of_order",
        /// Data we have no buffer for (echo/http pool empty): not acknowledged.
        NoBuffer => "no_buffer",
        /// The connection table is full: new connection refused.
        TableFull => "table_full",
        /// A challenge ACK that the per-core rate limit suppressed (RFC 5961 §7).
        ChallengeAckLimited => "challenge_ack_limited",
        /// A new connection over an L2 path the full link table could not take.
        LinkTableFull => "link_table_full",
        /// A reply that could not get a TX frame.
        TxFull => "tx_full",
        /// A frame for another core that did not fit its handoff queue.
        HandoffFull => "handoff_full",
        /// A reply frame larger than the frame size.
        TooBig => "too_big",
    }
}

counter_enum! {
    /// Things that happened, one counter each.
    Event {
        /// Frames taken from the RX ring.
        RxFrames => "rx_frames",
        /// Frames put on the TX ring.
        TxFrames => "tx_frames",
        /// SYNs answered with a cookie SYN-ACK.
        SynReceived => "syn_received",
        /// SYN-ACKs sent.
        SynAckSent => "synack_sent",
        /// Cookie ACKs that verified.
        CookieOk => "cookie_ok",
        /// Connections entered into the table (ESTABLISHED).
        Established => "established",
        /// Connections removed after a normal close.
        Closed => "closed",
        /// Connections removed by a valid RST.
        Reset => "reset",
        /// Connections removed after retransmissions ran out (we sent RST).
        TimedOut => "timed_out",
        /// Connections closed by the idle timeout.
        IdleClosed => "idle_closed",
        /// Connections reset because the peer's window stayed zero for
        /// `tcp.persist_timeout_secs` (RFC 6429).
        PersistTimedOut => "persist_timeout",
        /// Connections reset because our FIN was not acknowledged within
        /// `tcp.close_timeout_secs` of our close.
        CloseTimedOut => "close_timeout",
        /// HTTP request heads incomplete after `http.header_timeout_secs`: 408 and close.
        HttpHeaderTimeout => "http_header_timeout",
        /// Connections entering TIME-WAIT.
        TimeWait => "time_wait",
        /// A TIME-WAIT connection reopened by a new SYN (RFC 9293 §3.10.7.4, RFC 6191).
        TimeWaitReused => "time_wait_reused",
        /// RSTs sent (refusals, resets).
        RstSent => "rst_sent",
        /// Resets from LISTEN that the per-core reset budget suppressed.
        RstLimited => "rst_limited",
        /// Challenge ACKs sent (RFC 5961).
        ChallengeAck => "challenge_ack",
        /// ACKs owed to unacceptable segments or as challenges that the per-connection
        /// limit skipped (Linux `tcp_oow_rate_limited`: one per 500 ms per connection).
        AckRateLimited => "ack_rate_limited",
        /// Segments retransmitted by the RTO.
        Retransmit => "retransmit",
        /// Payload bytes accepted in order.
        RxBytes => "rx_bytes",
        /// Payload bytes accepted after we closed: acknowledged and discarded (RFC 9112
        /// §9.6), never given to the responder. Also counted in `rx_bytes`.
        RxAfterCloseBytes => "rx_after_close_bytes",
        /// Payload bytes sent, retransmissions included.
        TxBytes => "tx_bytes",
        /// HTTP requests answered.
        HttpRequests => "http_requests",
        /// Frames handed to another core.
        HandoffOut => "handoff_out",
        /// Frames received from another core.
        HandoffIn => "handoff_in",
        /// ARP requests or IPv6 neighbour solicitations answered.
        NeighborReplies => "neighbor_replies",
    }
}

/// One core's counters. Plain `u64`s: only the owning core writes them; the stats thread
/// reads a snapshot the worker publishes (see `engine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Indexed by `Event as usize`.
    pub events: [u64; Event::COUNT],
    /// The most recent drop reason (lets a capture hook label a dropped frame without
    /// scanning the array).
    pub last_drop: Option<DropReason>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            drops: [0; DropReason::COUNT],
            events: [0; Event::COUNT],
            last_drop: None,
        }
    }
}

impl Counters {
    /// Count one dropped frame.
    #[inline(always)]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
        self.last_drop = Some(reason);
    }

    /// Count one event.
    #[inline(always)]
    pub fn event(&mut self, event: Event) {
        self.events[event as usize] += 1;
    }

    /// Add `n` to an event counter (bytes, batches).
    #[inline(always)]
    pub fn add(&mut self, event: Event, n: u64) {
        self.events[event as usize] += n;
    }

    /// Read one drop counter.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Read one event counter.
    pub fn get(&self, event: Event) -> u64 {
        self.events[event as usize]
    }

    /// Sum of all drop counters.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Add another core's counters into this one (for totals).
    pub fn merge(&mut self, other: &Counters) {
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
        for (a, b) in self.events.iter_mut().zip(other.events.iter()) {
            *a += b;
        }
    }

    /// Labelled view for JSON export: `{"drops": {...}, "events": {...}}`.
    pub fn to_json(&self) -> CountersJson {
        CountersJson {
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.label(), self.dropped(*r)))
                .collect(),
            events: Event::ALL
                .iter()
                .map(|e| (e.label(), self.get(*e)))
                .collect(),
        }
    }
}

/// Serializable, labelled form of [`Counters`] (control path only: it allocates).
#[derive(Debug, Clone, Serialize)]
pub struct CountersJson {
    /// Drop reason label → count.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
    /// Event label → count.
    pub events: std::collections::BTreeMap<&'static str, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_indices_dense() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(seen.insert(r.label()));
        }
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
            assert!(seen.insert(e.label()));
        }
    }

    #[test]
    fn counting_and_merge() {
        let mut a = Counters::default();
        a.drop(DropReason::TableFull);
        a.event(Event::Established);
        a.add(Event::RxBytes, 10);
        let mut b = Counters::default();
        b.drop(DropReason::TableFull);
        b.merge(&a);
        assert_eq!(b.dropped(DropReason::TableFull), 2);
        assert_eq!(b.get(Event::RxBytes), 10);
        assert_eq!(b.total_drops(), 2);
        assert_eq!(a.to_json().drops["table_full"], 1);
    }
}
