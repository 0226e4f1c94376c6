//! Frame I/O: where frames come from and go to. The only layer with `unsafe`.
//!
//! The engine sees one trait, [`Port`]: a batch of received frames that it may rewrite in
//! place and send back (zero-copy reply), extra TX frames on demand, and a `flush` that
//! kicks the kernel, reaps completions and refills the fill ring. Two implementations:
//! [`afxdp`] (an AF_XDP socket on one NIC queue, UMEM and rings through `xdpilone`) and
//! [`memory`] (in-process rings for tests and benches).

pub mod afxdp;
pub mod bpf;
pub mod ethtool;
pub mod flood;
pub mod memory;
pub mod occupancy;
pub mod sys;
pub mod test_run;
pub mod xdp_attached;

use serde::{Deserialize, Serialize};

/// How the XDP program is attached. `Auto` tries native (driver) mode and falls back to
/// generic (skb) mode; the mode actually in use is reported after attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native first, generic if the driver refuses.
    #[default]
    Auto,
    /// Driver mode (XDP_FLAGS_DRV_MODE).
    Native,
    /// Generic mode (XDP_FLAGS_SKB_MODE), works on any interface.
    Generic,
}

/// What to do when the interface already has an XDP program (`xdp.attach`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttach {
    /// Refuse to start, naming the other program and the choices.
    #[default]
    Exclusive,
    /// Detach the other program (with a warning naming it) and attach ours.
    Replace,
}

/// A frame owned by the engine between `recv` and `send`/`release`: its offset in the
/// frame memory and its length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame's first byte in the port's frame memory (a UMEM address).
    pub addr: u64,
    /// Length of the frame in bytes.
    pub len: u32,
}

/// Socket-level statistics a port reports (XDP_STATISTICS for AF_XDP, plus our own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortStats {
    /// Frames the kernel dropped for lack of an RX descriptor or a bad descriptor.
    pub rx_dropped: u64,
    /// Invalid RX descriptors.
    pub rx_invalid_descs: u64,
    /// Invalid TX descriptors.
    pub tx_invalid_descs: u64,
    /// Times the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when the kernel needed a frame.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the TX ring was empty when the kernel looked for work.
    pub tx_ring_empty_descs: u64,
    /// `sendto()` kicks issued for TX.
    pub tx_kicks: u64,
    /// `sendto()` kicks that failed (other than EAGAIN/EBUSY/ENOBUFS).
    pub tx_kick_errors: u64,
    /// Frames we wanted to send but found no room for on the TX ring.
    pub tx_ring_full: u64,
}

/// A batch-oriented frame port, polled by one engine worker.
///
/// The protocol: `recv` hands out received frames; for each, the engine either rewrites
/// it in place and calls `send` (its ownership goes to the TX ring), or calls `release`
/// (it goes back to the fill ring). Extra replies take a frame from `alloc_tx`. `flush`
/// is called once per loop iteration.
pub trait Port {
    /// Usable bytes in one frame (frame size minus headroom).
    fn frame_capacity(&self) -> usize;

    /// Move up to `out.len()` received frames into `out`; returns how many.
    fn recv(&mut self, out: &mut [Frame]) -> usize;

    /// The whole writable buffer of a frame this port handed out (from `recv` or
    /// `alloc_tx`), `frame_capacity()` bytes long; the received bytes are its prefix.
    fn buffer(&mut self, addr: u64) -> &mut [u8];

    /// A free frame for an extra transmission, or `None` when none is free.
    fn alloc_tx(&mut self) -> Option<u64>;

    /// Queue a frame for transmission with `len` bytes. Returns `false` (and takes the
    /// frame back into the free pool) when the TX ring is full.
    fn send(&mut self, addr: u64, len: u32) -> bool;

    /// Give a received frame back without sending it.
    fn release(&mut self, addr: u64);

    /// Kick TX, reap completions into the free pool, refill the fill ring.
    fn flush(&mut self);

    /// Socket statistics.
    fn stats(&self) -> PortStats;

    /// Wait up to `timeout` for frames to arrive (called after a run of empty polls, so an
    /// idle worker does not spin). The default sleeps.
    fn wait(&mut self, timeout: std::time::Duration) {
        std::thread::sleep(timeout);
    }
}
