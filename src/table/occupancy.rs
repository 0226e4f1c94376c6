//! The occupancy filter of the XDP SYN offload, from the workers' side.
//!
//! The XDP program answers a SYN itself only when no worker may hold state for its 4-tuple
//! (otherwise RFC 5961 §4 challenge ACKs and the TIME-WAIT rules must stay with the worker).
//! It learns that from a counting filter: an array of `u64` cells shared with the program
//! (an mmapped `BPF_F_MMAPABLE` map, `io::occupancy`), cell = the hash of the tuple. Every
//! table adds 1 when it creates a connection and subtracts 1 when it removes one, so a cell
//! is 0 only when no connection hashing there exists; a collision only sends a SYN to its
//! worker (a false positive), never the other way round.
//!
//! The hash is [`cookie::flow_hash`] (Linux's `cookie_hash` layout, SipHash-2-4) under a key
//! of its own, with counter 0; the C program computes the same (`occupied()` in
//! `src/bpf/synack.bpf.c`), and `tests/xdp_occupancy.rs` pins the two together.

use crate::tcp::{cookie, Flow};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Shared cells of the filter (the mmapped map, or plain memory in tests).
pub type Cells = Arc<dyn AsRef<[AtomicU64]> + Send + Sync>;

/// A handle on the filter: the cells and the key of the hash.
#[derive(Clone)]
pub struct Occupancy {
    cells: Cells,
    key: (u64, u64),
    mask: usize,
}

impl std::fmt::Debug for Occupancy {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Occupancy")
            .field("cells", &(self.mask + 1))
            .finish_non_exhaustive()
    }
}

impl Occupancy {
    /// A handle on `cells` (a power of two in number) hashed with `key`; `None` when the
    /// number of cells is not a power of two.
    pub fn new(cells: Cells, key: (u64, u64)) -> Option<Occupancy> {
        let n = cells.as_ref().as_ref().len();
        n.is_power_of_two().then_some(Occupancy {
            cells,
            key,
            mask: n - 1,
        })
    }

    /// The cell of a connection's 4-tuple.
    #[inline]
    pub fn cell(&self, flow: &Flow) -> usize {
        cookie::flow_hash(self.key, &flow.cookie_flow(), 0) as usize & self.mask
    }

    /// The count in `flow`'s cell.
    pub fn get(&self, flow: &Flow) -> u64 {
        self.slot(flow).load(Ordering::Relaxed)
    }

    /// A connection for `flow` was created.
    #[inline]
    pub fn add(&self, flow: &Flow) {
        self.slot(flow).fetch_add(1, Ordering::Release);
    }

    /// A connection for `flow` was removed.
    #[inline]
    pub fn remove(&self, flow: &Flow) {
        // Never below 0: an underflow would read as "occupied" forever, harmless but wrong.
        let _ = self
            .slot(flow)
            .fetch_update(Ordering::Release, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    fn slot(&self, flow: &Flow) -> &AtomicU64 {
        &self.cells.as_ref().as_ref()[self.cell(flow)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn flow(port: u16) -> Flow {
        Flow::V4 {
            local: Ipv4Addr::new(198, 18, 0, 1),
            remote: Ipv4Addr::new(198, 18, 0, 2),
            local_port: 80,
            remote_port: port,
        }
    }

    #[test]
    fn counts_up_and_down_and_never_below_zero() {
        let cells: Cells = Arc::new((0..1024).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let occ = Occupancy::new(cells, (1, 2)).unwrap();
        let f = flow(40000);
        occ.add(&f);
        occ.add(&f);
        assert_eq!(occ.get(&f), 2);
        occ.remove(&f);
        occ.remove(&f);
        occ.remove(&f);
        assert_eq!(occ.get(&f), 0);
        assert!(occ.cell(&f) < 1024);
    }

    /// The hash is Linux's `cookie_hash` (the cookie's own, counter 0): the cookie made with
    /// ISN 0 and MSS index 0 splits into it, for IPv4 and IPv6; and it is pinned to known
    /// values. The C program's `flow_hash` gives the same cells
    /// (`occupied_tuples_go_to_userspace_and_the_c_and_rust_hashes_agree` in
    /// tests/xdp_offload.rs) and the same cookies (the byte-identical SYN-ACK test there).
    #[test]
    fn hash_is_the_cookie_hash_and_pinned() {
        let jar = cookie::CookieJar::new(*b"occupancy pinned");
        let (k0, k1) = jar.raw_keys();
        let v6 = Flow::V6 {
            local: "2001:2::1".parse().unwrap(),
            remote: "2001:2::2".parse().unwrap(),
            local_port: 80,
            remote_port: 40000,
        };
        for f in [flow(40000), v6] {
            let cf = f.cookie_flow();
            let c = 12345;
            let made = jar.generate(&cf, 0, 0, c);
            let h0 = cookie::flow_hash(k0, &cf, 0);
            let h1 = cookie::flow_hash(k1, &cf, c);
            assert_eq!(made, h0.wrapping_add(c << 24).wrapping_add(h1 & 0xff_ffff));
        }
        let key = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let pinned = [
            cookie::flow_hash(key, &flow(40000).cookie_flow(), 0),
            cookie::flow_hash(key, &v6.cookie_flow(), 0),
        ];
        // From an independent SipHash-2-4 (a Python transcription of the reference, checked
        // against the reference vector for key 00..0f and the empty message) over the same
        // 16- and 40-byte messages.
        assert_eq!(pinned, [0x0529_2f7f, 0xfc7a_1cfb], "{pinned:08x?}");
    }

    #[test]
    fn refuses_a_size_that_is_not_a_power_of_two() {
        let cells: Cells = Arc::new((0..1000).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        assert!(Occupancy::new(cells, (1, 2)).is_none());
    }
}
