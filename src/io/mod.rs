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
pub mod libxdp;
pub mod memory;
pub mod occupancy;
pub mod sys;
pub mod test_run;
pub mod xdp_attached;

use serde::Serialize;

use crate::forms::named_enum;

named_enum! {
    /// How the XDP program is attached. `Auto` tries native (driver) mode and falls back to
    /// generic (skb) mode; the mode actually in use is reported after attach.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum XdpMode: "an XDP mode" {
        /// Native first, generic if the driver refuses.
        #[default]
        Auto = "auto",
        /// Driver mode (XDP_FLAGS_DRV_MODE).
        Native = "native",
        /// Generic mode (XDP_FLAGS_SKB_MODE), works on any interface.
        Generic = "generic",
    }
}

named_enum! {
    /// What to do when the interface already has an XDP program (`xdp.attach`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum XdpAttach: "an attach policy" {
        /// Refuse to start, naming the other program and the choices.
        #[default]
        Exclusive = "exclusive",
        /// Detach the other program (with a warning naming it) and attach ours.
        Replace = "replace",
        /// Join libxdp's multi-program dispatcher (`io::libxdp`): programs loaded through
        /// libxdp or xdp-loader stay, and frames synack passes go on to them.
        Dispatcher = "dispatcher",
    }
}

named_enum! {
    /// Whether an AF_XDP socket must, may or must not use zero-copy (the driver's own
    /// buffers as UMEM, no copy per frame). Copy mode is what generic XDP and veth give.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum ZeroCopy: "a zero-copy setting" {
        /// Bind without a mode flag: the kernel uses zero-copy where the driver has it,
        /// copy otherwise; the mode it chose is reported.
        #[default]
        Auto = "auto",
        /// Bind with XDP_ZEROCOPY; refuse to start (naming the driver) if the kernel
        /// cannot.
        Require = "require",
        /// Bind with XDP_COPY.
        Off = "off",
    }
}

/// Which received frames a worker copies to the capture thread (`ops.capture_mode`):
/// `dropped`, `all` or `sample:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMode {
    /// Frames dropped, with their reason.
    #[default]
    Dropped,
    /// Every received frame.
    All,
    /// One received frame in N (N >= 1).
    Sample(u32),
}

impl std::str::FromStr for CaptureMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "dropped" => Ok(CaptureMode::Dropped),
            "all" => Ok(CaptureMode::All),
            other => match other.strip_prefix("sample:").map(|n| n.parse::<u32>()) {
                Some(Ok(n)) if n >= 1 => Ok(CaptureMode::Sample(n)),
                Some(_) => Err(format!("{other:?} does not sample one frame in N >= 1")),
                None => Err(format!("{other:?} is not a capture mode")),
            },
        }
    }
}

impl std::fmt::Display for CaptureMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureMode::Dropped => f.write_str("dropped"),
            CaptureMode::All => f.write_str("all"),
            CaptureMode::Sample(n) => write!(f, "sample:{n}"),
        }
    }
}

crate::forms::serde_via_str!(CaptureMode);

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
/// it in place and calls `send` (its ownership goes to the port's open TX batch), or calls
/// `release` (it goes back to the fill ring). Extra replies take a frame from `alloc_tx`.
/// `flush` is called once per loop iteration: it commits the TX batch to the ring in one
/// step (one producer-index store, one `sendto()` kick for the batch), like xdpilone's
/// `WriteTx` and libxdp's `xsk_ring_prod__reserve`/`__submit`. [`TxBatch`] is the same
/// transaction as a value: committed explicitly, rolled back when dropped.
pub trait Port {
    /// Usable bytes in one frame (frame size minus headroom).
    fn frame_capacity(&self) -> usize;

    /// Move up to `out.len()` received frames into `out`; returns how many.
    fn recv(&mut self, out: &mut [Frame]) -> usize;

    /// The whole writable buffer of a frame this port handed out (from `recv` or
    /// `alloc_tx`), `frame_capacity()` bytes long; the received bytes are its prefix.
    fn buffer(&mut self, addr: u64) -> &mut [u8];

    /// A free frame for an extra transmission, or `None` when none is free.
    #[must_use = "an allocated frame is lost unless it is sent or released"]
    fn alloc_tx(&mut self) -> Option<u64>;

    /// Stage a frame of `len` bytes in the open TX batch; nothing reaches the ring until
    /// [`Port::commit_tx`] (or `flush`). Returns `false` (and takes the frame back into the
    /// free pool) when the TX ring has no room for it beside the frames already staged.
    #[must_use = "`false` means the frame was not sent (count it)"]
    fn send(&mut self, addr: u64, len: u32) -> bool;

    /// Publish every staged frame to the TX ring in one commit; returns how many. Does not
    /// kick the kernel: `flush` does (after committing).
    fn commit_tx(&mut self) -> usize;

    /// Take every staged frame back into the free pool without sending it; returns how many.
    fn rollback_tx(&mut self) -> usize;

    /// Received frames waiting on the RX ring that `recv` has not taken yet (a worker must
    /// not sleep while this is non-zero).
    fn rx_ready(&mut self) -> usize;

    /// Give a frame back without sending it: a received one (it returns to the fill ring),
    /// or one from `alloc_tx`.
    fn release(&mut self, addr: u64);

    /// Commit the TX batch, kick TX, reap completions into the free pool, refill the fill
    /// ring.
    fn flush(&mut self);

    /// Socket statistics.
    fn stats(&self) -> PortStats;

    /// Wait up to `timeout` for frames to arrive (called after a run of empty polls, so an
    /// idle worker does not spin). The default sleeps.
    fn wait(&mut self, timeout: std::time::Duration) {
        std::thread::sleep(timeout);
    }
}

/// One TX transaction on a port: reserve frames ([`TxBatch::alloc`]), write them, stage
/// them ([`TxBatch::send`]); the staged frames reach the TX ring together at
/// [`TxBatch::commit`] (one ring commit for the batch). Dropped without a commit, it rolls
/// back: the staged frames return to the free pool (xdpilone's `WriteTx`). Either way, a
/// frame reserved through it and never sent is given back to the port
/// ([`Port::release`]), so a transaction cannot leak a frame. The transaction owns whatever
/// the port has staged while it lives.
#[must_use = "a TX batch that is not committed is rolled back"]
pub struct TxBatch<'p, P: Port + ?Sized> {
    port: &'p mut P,
    /// Frames reserved by `alloc` and not yet sent (no allocation until the first).
    reserved: Vec<u64>,
}

impl<'p, P: Port + ?Sized> TxBatch<'p, P> {
    /// Open a transaction on `port`.
    pub fn new(port: &'p mut P) -> Self {
        TxBatch {
            port,
            reserved: Vec::new(),
        }
    }

    /// Reserve a free frame to write a transmission into.
    #[must_use = "a reserved frame is only sent by `send`"]
    pub fn alloc(&mut self) -> Option<u64> {
        let addr = self.port.alloc_tx()?;
        self.reserved.push(addr);
        Some(addr)
    }

    /// The writable buffer of a frame reserved with [`TxBatch::alloc`].
    pub fn buffer(&mut self, addr: u64) -> &mut [u8] {
        self.port.buffer(addr)
    }

    /// Stage a written frame of `len` bytes; `false` when the ring has no room (the frame
    /// went back to the free pool).
    #[must_use = "a refused frame was not sent"]
    pub fn send(&mut self, addr: u64, len: u32) -> bool {
        // Usually the frame just reserved: search from the end.
        if let Some(i) = self.reserved.iter().rposition(|&a| a == addr) {
            self.reserved.swap_remove(i);
        }
        self.port.send(addr, len)
    }

    /// Publish the staged frames in one commit and kick the kernel; returns how many.
    /// Frames reserved and not sent are given back.
    pub fn commit(self) -> usize {
        let n = self.port.commit_tx();
        self.port.flush();
        n
    }
}

impl<P: Port + ?Sized> Drop for TxBatch<'_, P> {
    fn drop(&mut self) {
        self.port.rollback_tx();
        for addr in self.reserved.drain(..) {
            self.port.release(addr);
        }
    }
}
