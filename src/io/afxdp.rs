//! An AF_XDP socket on one NIC queue, as an [`io::Port`](crate::io::Port).
//!
//! Frame memory (the UMEM) is an anonymous mmap this port allocates; the four rings (fill,
//! completion, RX, TX) are managed through `xdpilone`. Every UMEM chunk is in exactly one
//! place at a time, tracked in a per-chunk [`Owner`] byte:
//!
//! ```text
//!   free pool ──alloc_tx──▶ engine ──send──▶ TX batch ──commit──▶ TX ring ──completion──▶ free pool
//!   fill ring ──RX ring──▶ engine ──release──▶ (pending) ──flush──▶ fill ring (or free pool)
//!   free pool ──flush (beyond the TX reserve)──▶ fill ring
//! ```
//!
//! The owner byte makes the safe API sound: [`Port::buffer`] hands out a slice only for a
//! chunk the engine owns (never one the kernel may be writing), and `&mut self` means at most
//! one such slice is alive at a time.
//!
//! Every frame handed to the engine starts [`DATA_OFFSET`] bytes into its chunk, where the
//! kernel puts received data (XDP_PACKET_HEADROOM, with no extra UMEM headroom); TX frames
//! from [`Port::alloc_tx`] use the same offset, so `frame_capacity()` is uniform.
//!
//! TX is batched: `send` stages a descriptor, and `commit_tx` (first thing in `flush`) writes
//! the whole batch into the TX ring with one reservation and one producer-index store, so
//! the kernel sees a poll's replies at once. Copy mode (generic XDP, veth) needs a `sendto()`
//! kick for every TX batch: see [`AfXdpPort::flush`]. All `unsafe` of the crate's AF_XDP path is in this file.

use std::ffi::CString;
use std::num::NonZeroU32;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use anyhow::{bail, Context};
use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

use crate::io::{Frame, Port, PortStats, XdpMode, ZeroCopy};

/// Offset of the first data byte in a chunk: the kernel's XDP_PACKET_HEADROOM (256), since
/// the UMEM is registered with no extra headroom.
pub const DATA_OFFSET: u64 = 256;

/// `SOL_XDP` socket level.
const SOL_XDP: libc::c_int = 283;
/// `XDP_OPTIONS` (getsockopt): `struct xdp_options { __u32 flags; }`.
const XDP_OPTIONS: libc::c_int = 8;
/// `XDP_OPTIONS_ZEROCOPY`: the socket is bound in zero-copy mode.
const XDP_OPTIONS_ZEROCOPY: u32 = 1 << 0;
/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+): frames one copy-mode `sendto()` may send.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
/// TX budget we ask for (capped at the TX ring size).
const TX_BUDGET: u32 = 2048;
/// `SO_BUSY_POLL`: microseconds to busy-poll the device queue.
const SO_BUSY_POLL: libc::c_int = 46;
/// `SO_PREFER_BUSY_POLL`.
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
/// `SO_BUSY_POLL_BUDGET`: packets per busy-poll round.
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
/// Busy-poll time (µs) and budget when busy polling is configured.
const BUSY_POLL_USECS: libc::c_int = 20;
const BUSY_POLL_BUDGET: libc::c_int = 64;
/// Upper bound of `sendto()` kicks in one `flush`.
const MAX_KICKS: u32 = 64;
/// Longest idle wait while TX completions are outstanding (they refill the fill ring).
const INFLIGHT_WAIT: std::time::Duration = std::time::Duration::from_micros(50);

/// Frames the free pool keeps for `alloc_tx` (extra replies, timer output, handoffs)
/// before the rest goes to the fill ring: a quarter of a ring, at most an eighth of the
/// frames. A reply to a received frame reuses that frame, so the fill ring, not TX, needs
/// the bulk: with half the frames held back (as before), a SYN flood ran the fill ring dry.
fn tx_reserve(ring_size: u32, frame_count: u32) -> usize {
    (ring_size as usize / 4).min(frame_count as usize / 8)
}

/// UMEM chunk sizes accepted: aligned mode needs a power of two no larger than a page.
/// The config's `xdp.frame_size` rule is this list.
pub const FRAME_SIZES: [u32; 2] = [2048, 4096];
/// Ring sizes accepted (each a power of two); the config's `xdp.ring_size` rule.
pub const RING_SIZES: std::ops::RangeInclusive<u32> = 64..=16384;
/// UMEM chunk counts accepted; the config's `xdp.frame_count` rule.
pub const FRAME_COUNTS: std::ops::RangeInclusive<u32> = 64..=(1 << 20);

/// Settings of one AF_XDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// Size of one UMEM chunk: 2048 or 4096 (aligned mode needs a power of two ≤ page size).
    pub frame_size: u32,
    /// Number of UMEM chunks, e.g. 4096.
    pub frame_count: u32,
    /// Entries of each ring (RX, TX, fill, completion); a power of two.
    pub ring_size: u32,
    /// Set SO_PREFER_BUSY_POLL / SO_BUSY_POLL / SO_BUSY_POLL_BUDGET and poll on every flush.
    pub busy_poll: bool,
    /// The XDP mode actually in use. `Generic` binds in copy mode (XDP_COPY); `Native` lets
    /// the kernel pick zero-copy where the driver has it (veth: copy, always).
    pub mode: XdpMode,
    /// Zero-copy policy: `Auto` takes what the kernel gives, `Require` fails to open in copy
    /// mode (naming the driver), `Off` binds with XDP_COPY.
    pub zerocopy: ZeroCopy,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        Self {
            frame_size: 2048,
            frame_count: 4096,
            ring_size: 2048,
            busy_poll: false,
            mode: XdpMode::Auto,
            zerocopy: ZeroCopy::Auto,
        }
    }
}

/// Where a UMEM chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// In the free pool, or released by the engine and waiting for the fill ring.
    Free,
    /// On the fill ring or in the kernel's RX path.
    Kernel,
    /// Staged in the TX batch, or on the TX ring waiting for its completion.
    Tx,
    /// Handed to the engine (from `recv` or `alloc_tx`).
    User,
}

/// The anonymous mapping that backs the UMEM. Unmapped on drop, after the socket closed.
struct FrameMem {
    ptr: NonNull<u8>,
    len: usize,
}

impl FrameMem {
    fn new(len: usize) -> anyhow::Result<FrameMem> {
        // SAFETY: an anonymous private mapping with no fixed address; the arguments are valid
        // and the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("mmap of {len} bytes of UMEM failed"));
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).context("mmap returned NULL")?;
        Ok(FrameMem { ptr, len })
    }
}

impl Drop for FrameMem {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `new`, unmapped only here.
        // The kernel pins the pages it uses, so unmapping after the socket is gone is sound.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The bookkeeping half of the port: chunk owners, free pool, geometry.
struct Frames {
    mem: FrameMem,
    frame_size: u32,
    shift: u32,
    count: u32,
    owner: Vec<Owner>,
    /// Chunk base addresses free for TX (or for the fill ring, beyond `tx_reserve`).
    free: Vec<u64>,
    /// Chunk bases released by the engine, for the fill ring at the next flush.
    pending_fill: Vec<u64>,
    /// RX or completion descriptors from the kernel that made no sense (counted, skipped).
    bad_descs: u64,
    /// Chunks staged or on the TX ring: completions still to come.
    tx_inflight: usize,
}

impl Frames {
    /// Every chunk of `mem` free; the pool pops from the end, so high chunks are pushed
    /// first and low ones go out first.
    fn new(mem: FrameMem, cfg: &AfXdpConfig) -> Frames {
        let count = cfg.frame_count;
        let mut frames = Frames {
            mem,
            frame_size: cfg.frame_size,
            shift: cfg.frame_size.trailing_zeros(),
            count,
            owner: vec![Owner::Free; count as usize],
            free: Vec::with_capacity(count as usize),
            pending_fill: Vec::with_capacity(count as usize),
            bad_descs: 0,
            tx_inflight: 0,
        };
        for c in (0..count as usize).rev() {
            let base = frames.base(c);
            frames.free.push(base);
        }
        frames
    }

    fn capacity(&self) -> usize {
        self.frame_size as usize - DATA_OFFSET as usize
    }

    /// Chunk index of a UMEM address, if inside the UMEM.
    fn chunk(&self, addr: u64) -> Option<usize> {
        let idx = addr >> self.shift;
        (idx < u64::from(self.count)).then_some(idx as usize)
    }

    fn base(&self, chunk: usize) -> u64 {
        (chunk as u64) << self.shift
    }

    /// Chunk index of an engine frame address (`base + DATA_OFFSET` of a chunk it owns).
    fn user_chunk(&self, addr: u64) -> Option<usize> {
        let c = self.chunk(addr)?;
        (addr == self.base(c) + DATA_OFFSET && self.owner[c] == Owner::User).then_some(c)
    }

    /// Take an RX descriptor from the kernel; `None` if it is bogus (counted, and the chunk,
    /// if it was the kernel's, goes back to the free pool).
    fn accept_rx(&mut self, desc: XdpDesc) -> Option<Frame> {
        let Some(c) = self.chunk(desc.addr) else {
            self.bad_descs += 1;
            return None;
        };
        if self.owner[c] != Owner::Kernel {
            self.bad_descs += 1;
            return None;
        }
        let base = self.base(c);
        let off = desc.addr - base;
        let len = u64::from(desc.len);
        if off + len > u64::from(self.frame_size) || len > self.capacity() as u64 {
            self.bad_descs += 1;
            self.owner[c] = Owner::Free;
            self.free.push(base);
            return None;
        }
        if off != DATA_OFFSET {
            // Not produced by our program (it never moves the data start), but a different
            // headroom must not break the uniform layout: move the bytes to DATA_OFFSET.
            let chunk = self.chunk_bytes(c);
            chunk.copy_within(off as usize..(off + len) as usize, DATA_OFFSET as usize);
        }
        self.owner[c] = Owner::User;
        Some(Frame {
            addr: base + DATA_OFFSET,
            len: desc.len,
        })
    }

    /// The whole chunk `c` as bytes. Only called for chunks the kernel does not own.
    fn chunk_bytes(&mut self, c: usize) -> &mut [u8] {
        debug_assert!(matches!(self.owner[c], Owner::Kernel | Owner::User));
        let start = self.base(c) as usize;
        // SAFETY: `c < count`, so `start + frame_size <= count * frame_size == mem.len`; the
        // caller owns the chunk (the kernel has released it through the RX ring, or it was
        // never given to the kernel), and `&mut self` rules out any other live slice.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.mem.ptr.as_ptr().add(start),
                self.frame_size as usize,
            )
        }
    }

    /// A TX completion: the chunk goes back to the free pool.
    fn complete(&mut self, addr: u64) {
        match self.chunk(addr) {
            Some(c) if self.owner[c] == Owner::Tx => {
                self.owner[c] = Owner::Free;
                self.tx_inflight -= 1;
                let base = self.base(c);
                self.free.push(base);
            }
            _ => self.bad_descs += 1,
        }
    }
}

/// An AF_XDP socket bound to one (interface, queue), with its own UMEM.
pub struct AfXdpPort {
    // Field order is drop order: rings and sockets first, the UMEM mapping last.
    rx: RingRx,
    tx: RingTx,
    device: DeviceQueue,
    user: User,
    _umem: Umem,
    frames: Frames,
    /// Frames kept in the free pool for `alloc_tx` when refilling the fill ring.
    tx_reserve: usize,
    busy_poll: bool,
    zerocopy: bool,
    fd: RawFd,
    ifname: String,
    queue: u32,
    /// Descriptors staged by `send`, written to the TX ring by `commit_tx`.
    staged: Vec<XdpDesc>,
    /// Free TX ring entries at the last look (refreshed when the batch reaches it).
    tx_room: usize,
    /// Entries of the TX ring.
    tx_size: usize,
    tx_kicks: u64,
    tx_kick_errors: u64,
    tx_ring_full: u64,
}

impl std::fmt::Debug for AfXdpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfXdpPort")
            .field("ifname", &self.ifname)
            .field("queue", &self.queue)
            .field("fd", &self.fd)
            .field("free", &self.frames.free.len())
            .finish_non_exhaustive()
    }
}

// SAFETY: every pointer inside (the UMEM mapping, the ring mappings held by xdpilone's
// `Umem`, rings and queues) refers to memory owned by this value alone, and all socket file
// descriptors are shared only among its own fields. No reference to any of it escapes except
// through `&mut self`, so moving the whole port to another thread is sound.
unsafe impl Send for AfXdpPort {}

fn os_err(e: xdpilone::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.get_raw().abs())
}

impl AfXdpPort {
    /// Create the UMEM (an anonymous mmap), a socket bound to (ifname, queue) with
    /// need_wakeup, fill the fill ring with half the frames and keep the rest as the TX free
    /// pool. The interface is looked up in the calling thread's network namespace.
    pub fn open(ifname: &str, queue: u32, cfg: &AfXdpConfig) -> anyhow::Result<AfXdpPort> {
        check_geometry(cfg)?;
        let c_name = CString::new(ifname)
            .map_err(|_| anyhow::anyhow!("interface name {ifname:?} contains a NUL byte"))?;
        let mem = FrameMem::new(cfg.frame_size as usize * cfg.frame_count as usize)?;
        let umem = new_umem(ifname, cfg, &mem)?;

        let mut info = IfInfo::invalid();
        info.from_name(&c_name)
            .map_err(os_err)
            .with_context(|| format!("interface {ifname} not found (in this network namespace)"))?;
        info.set_queue(queue);
        let sock = Socket::with_shared(&info, &umem)
            .map_err(os_err)
            .with_context(|| format!("AF_XDP socket for {ifname}"))?;
        let device = umem
            .fq_cq(&sock)
            .map_err(os_err)
            .with_context(|| format!("fill/completion rings for {ifname} queue {queue}"))?;
        let (user, rx, tx) = rx_tx_rings(ifname, queue, cfg, &umem, &sock)?;
        bind(ifname, queue, cfg, &umem, &user)?;
        let fd = user.as_raw_fd();
        let zerocopy = bound_zerocopy(fd)
            .with_context(|| format!("reading XDP_OPTIONS of the socket on {ifname}"))?;
        if cfg.zerocopy == ZeroCopy::Require && !zerocopy {
            return Err(require_failed(ifname, queue));
        }

        let mut port = AfXdpPort {
            rx,
            tx,
            device,
            user,
            _umem: umem,
            frames: Frames::new(mem, cfg),
            tx_reserve: tx_reserve(cfg.ring_size, cfg.frame_count),
            busy_poll: cfg.busy_poll,
            zerocopy,
            fd,
            ifname: ifname.to_string(),
            queue,
            staged: Vec::with_capacity(cfg.ring_size as usize),
            tx_room: 0,
            tx_size: cfg.ring_size as usize,
            tx_kicks: 0,
            tx_kick_errors: 0,
            tx_ring_full: 0,
        };
        port.start(cfg);
        Ok(port)
    }

    /// Socket options, then half the frames to the fill ring (bounded by its size); the
    /// rest stay free for TX.
    fn start(&mut self, cfg: &AfXdpConfig) {
        self.set_tx_budget(cfg.ring_size);
        if cfg.busy_poll {
            self.set_busy_poll();
        }
        let half = (cfg.frame_count / 2).min(cfg.ring_size) as usize;
        let moved = self.fill_from_free(half);
        tracing::debug!(
            interface = self.ifname,
            queue = self.queue,
            fill = moved,
            free = self.frames.free.len(),
            "AF_XDP socket bound"
        );
    }

    /// The socket's file descriptor, for [`XdpProgram::register_socket`](crate::io::bpf::XdpProgram::register_socket).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Whether the kernel bound this socket in zero-copy mode (XDP_OPTIONS_ZEROCOPY), read
    /// once after bind.
    pub fn zerocopy(&self) -> bool {
        self.zerocopy
    }

    /// Frames currently in the free pool (for tests and stats).
    pub fn free_frames(&self) -> usize {
        self.frames.free.len()
    }

    /// Raise the copy-mode TX budget per `sendto()` (default 32).
    fn set_tx_budget(&mut self, ring_size: u32) {
        let budget = TX_BUDGET.min(ring_size);
        match setsockopt_u32(self.fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, budget) {
            Ok(()) => tracing::debug!(budget, "XDP_MAX_TX_SKB_BUDGET set"),
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
                tracing::debug!("XDP_MAX_TX_SKB_BUDGET not supported by this kernel")
            }
            Err(e) => tracing::warn!(error = %e, budget, "XDP_MAX_TX_SKB_BUDGET refused"),
        }
    }

    fn set_busy_poll(&mut self) {
        for (name, opt, val) in [
            ("SO_PREFER_BUSY_POLL", SO_PREFER_BUSY_POLL, 1),
            ("SO_BUSY_POLL", SO_BUSY_POLL, BUSY_POLL_USECS),
            ("SO_BUSY_POLL_BUDGET", SO_BUSY_POLL_BUDGET, BUSY_POLL_BUDGET),
        ] {
            if let Err(e) = setsockopt_u32(self.fd, libc::SOL_SOCKET, opt, val as u32) {
                tracing::warn!(
                    interface = %self.ifname,
                    option = name,
                    error = %e,
                    "busy polling option refused"
                );
            }
        }
    }

    /// Move up to `n` frames from the free pool to the fill ring; returns how many moved.
    fn fill_from_free(&mut self, n: usize) -> usize {
        let n = n.min(self.frames.free.len());
        if n == 0 {
            return 0;
        }
        let mut writer = self.device.fill(n as u32);
        // Bound the iterator to the reserved count: xdpilone drops an item otherwise.
        let k = (writer.capacity() as usize).min(n);
        let Frames {
            free, owner, shift, ..
        } = &mut self.frames;
        let start = free.len() - k;
        let shift = *shift;
        let inserted = writer.insert(free.drain(start..).inspect(|&a| {
            owner[(a >> shift) as usize] = Owner::Kernel;
        }));
        writer.commit();
        debug_assert_eq!(inserted as usize, k);
        k
    }

    /// Released frames to the fill ring first; those that do not fit go to the free pool.
    fn fill_from_pending(&mut self) {
        let n = self.frames.pending_fill.len();
        if n == 0 {
            return;
        }
        let mut writer = self.device.fill(n as u32);
        let k = (writer.capacity() as usize).min(n);
        let Frames {
            pending_fill,
            owner,
            shift,
            free,
            ..
        } = &mut self.frames;
        let shift = *shift;
        writer.insert(pending_fill.drain(..k).inspect(|&a| {
            owner[(a >> shift) as usize] = Owner::Kernel;
        }));
        writer.commit();
        drop(writer);
        // Fill ring full: the rest waits in the free pool (owner already `Free`).
        free.append(pending_fill);
    }

    /// Completed TX frames and released RX frames back to the fill ring (beyond the TX
    /// reserve kept in the free pool).
    fn recycle(&mut self) {
        self.reap_completions();
        self.fill_from_pending();
        let spare = self.frames.free.len().saturating_sub(self.tx_reserve);
        if spare > 0 {
            self.fill_from_free(spare);
        }
    }

    /// Free TX ring entries (the consumer head is re-read when the cached view is short).
    fn tx_free(&mut self) -> usize {
        // Committed minus consumed, from the shared heads: a stale consumer head only
        // underestimates the room.
        self.tx_size.saturating_sub(self.tx.pending() as usize)
    }

    /// Reap TX completions into the free pool.
    fn reap_completions(&mut self) {
        let mut reader = self.device.complete(u32::MAX);
        while let Some(addr) = reader.read() {
            self.frames.complete(addr);
        }
        reader.release();
    }

    /// One `sendto()` kick; `true` if TX may make progress by kicking again.
    fn kick_tx(&mut self) -> bool {
        self.tx_kicks += 1;
        // SAFETY: a zero-length, non-blocking sendto on our own AF_XDP socket with NULL
        // buffer and address: the kernel reads nothing from user memory.
        let r = unsafe {
            libc::sendto(
                self.fd,
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r >= 0 {
            return true;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            // The kernel's batch budget ran out, the completion ring is full, or another
            // thread is in the xmit path: normal under load, reap and kick again.
            Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => true,
            Some(e) => {
                self.tx_kick_errors += 1;
                tracing::debug!(errno = e, interface = %self.ifname, "TX kick failed");
                false
            }
            None => false,
        }
    }

    /// Wake the kernel's RX side (fill ring need_wakeup) or drive busy polling.
    fn wake_rx(&mut self) {
        // SAFETY: a zero-length, non-blocking recvfrom on our own socket with NULL buffer
        // and address: the kernel writes nothing to user memory.
        unsafe {
            libc::recvfrom(
                self.fd,
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }
}

impl Port for AfXdpPort {
    fn frame_capacity(&self) -> usize {
        self.frames.capacity()
    }

    fn recv(&mut self, out: &mut [Frame]) -> usize {
        if out.is_empty() {
            return 0;
        }
        let want = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let mut reader = self.rx.receive(want);
        let mut n = 0;
        // `receive` peeks at most `want` descriptors, so `n` never exceeds `out.len()`.
        while let Some(desc) = reader.read() {
            if let Some(frame) = self.frames.accept_rx(desc) {
                out[n] = frame;
                n += 1;
            }
        }
        reader.release();
        n
    }

    fn buffer(&mut self, addr: u64) -> &mut [u8] {
        let Some(c) = self.frames.user_chunk(addr) else {
            panic!("AfXdpPort::buffer({addr:#x}): not a frame the engine owns");
        };
        let cap = self.frames.capacity();
        &mut self.frames.chunk_bytes(c)[DATA_OFFSET as usize..DATA_OFFSET as usize + cap]
    }

    fn alloc_tx(&mut self) -> Option<u64> {
        let base = self.frames.free.pop()?;
        let c = (base >> self.frames.shift) as usize;
        self.frames.owner[c] = Owner::User;
        Some(base + DATA_OFFSET)
    }

    fn send(&mut self, addr: u64, len: u32) -> bool {
        let Some(c) = self.frames.user_chunk(addr) else {
            debug_assert!(
                false,
                "AfXdpPort::send({addr:#x}): not a frame the engine owns"
            );
            return false;
        };
        let base = self.frames.base(c);
        if len as usize > self.frames.capacity() {
            self.frames.owner[c] = Owner::Free;
            self.frames.free.push(base);
            return false;
        }
        if self.staged.len() >= self.tx_room {
            self.tx_room = self.tx_free();
        }
        if self.staged.len() >= self.tx_room {
            self.tx_ring_full += 1;
            self.frames.owner[c] = Owner::Free;
            self.frames.free.push(base);
            return false;
        }
        self.staged.push(XdpDesc {
            addr,
            len,
            options: 0,
        });
        self.frames.owner[c] = Owner::Tx;
        self.frames.tx_inflight += 1;
        true
    }

    fn commit_tx(&mut self) -> usize {
        let n = self.staged.len();
        if n == 0 {
            return 0;
        }
        let mut k = 0;
        // `send` never stages more than the ring had free, so all of them fit. xdpilone
        // serves a reservation from its cached consumer head and re-reads the head only
        // when that shows no room, so a second round may be needed; bound the iterator to
        // the reservation (xdpilone drops an item handed beyond it).
        for _ in 0..2 {
            let mut writer = self.tx.transmit((n - k) as u32);
            let m = (writer.capacity() as usize).min(n - k);
            if m == 0 {
                break;
            }
            writer.insert(self.staged.drain(..m));
            writer.commit();
            k += m;
            if k == n {
                break;
            }
        }
        self.tx_room = self.tx_room.saturating_sub(k);
        let lost = self.rollback_tx();
        self.tx_ring_full += lost as u64;
        k
    }

    fn rollback_tx(&mut self) -> usize {
        let n = self.staged.len();
        for d in self.staged.drain(..) {
            if let Some(c) = self.frames.chunk(d.addr) {
                self.frames.owner[c] = Owner::Free;
                self.frames.tx_inflight -= 1;
                let base = self.frames.base(c);
                self.frames.free.push(base);
            }
        }
        n
    }

    fn rx_ready(&mut self) -> usize {
        self.rx.available() as usize
    }

    fn release(&mut self, addr: u64) {
        let Some(c) = self.frames.user_chunk(addr) else {
            debug_assert!(
                false,
                "AfXdpPort::release({addr:#x}): not a frame the engine owns"
            );
            return;
        };
        self.frames.owner[c] = Owner::Free;
        let base = self.frames.base(c);
        self.frames.pending_fill.push(base);
    }

    fn flush(&mut self) {
        self.commit_tx();
        // Copy mode: every TX batch needs a sendto(); one sendto sends at most the TX skb
        // budget, so kick while frames are pending, reaping completions in between (a full
        // completion ring stalls TX).
        let mut kicks = 0;
        while self.tx.pending() > 0 && self.tx.needs_wakeup() && kicks < MAX_KICKS {
            kicks += 1;
            let again = self.kick_tx();
            self.reap_completions();
            if !again {
                break;
            }
        }
        self.recycle();
        if self.busy_poll || self.device.needs_wakeup() {
            self.wake_rx();
        }
    }

    /// Sleep in ppoll(2) until the RX ring has frames or `timeout` passes, so an idle
    /// worker gives its CPU back yet wakes at once when traffic resumes.
    ///
    /// Completions are reaped and the fill ring refilled first, and while TX frames are
    /// still to complete the sleep is cut to [`INFLIGHT_WAIT`]: their chunks are the fill
    /// ring's supply. A worker that slept a whole millisecond on them let the kernel drop
    /// every frame of that millisecond for lack of fill descriptors (seen on the veth lab
    /// under a flood: `rx_fill_ring_empty_descs` growing, `rx_ring_full` 0, worker idle);
    /// no RX frame can arrive to wake it then.
    fn wait(&mut self, timeout: std::time::Duration) {
        self.recycle();
        if self.rx_ready() > 0 {
            return;
        }
        let timeout = if self.frames.tx_inflight > 0 {
            timeout.min(INFLIGHT_WAIT)
        } else {
            timeout
        };
        let mut pfd = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: `pfd` and `ts` are valid for the duration of the call, nfds is 1, and a
        // null signal mask leaves the mask unchanged.
        let _ = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    }

    fn stats(&self) -> PortStats {
        let k = self.user.statistics_v2().unwrap_or_default();
        PortStats {
            rx_dropped: k.rx_dropped,
            rx_invalid_descs: k.rx_invalid_descs + self.frames.bad_descs,
            tx_invalid_descs: k.tx_invalid_descs,
            rx_ring_full: k.rx_ring_full,
            rx_fill_ring_empty_descs: k.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: k.tx_ring_empty_descs,
            tx_kicks: self.tx_kicks,
            tx_kick_errors: self.tx_kick_errors,
            tx_ring_full: self.tx_ring_full,
        }
    }
}

/// The UMEM and ring geometry the kernel accepts (and aligned chunks need).
fn check_geometry(cfg: &AfXdpConfig) -> anyhow::Result<()> {
    if !FRAME_SIZES.contains(&cfg.frame_size) {
        bail!(
            "AF_XDP frame_size must be one of {FRAME_SIZES:?}, not {}",
            cfg.frame_size
        );
    }
    if !cfg.ring_size.is_power_of_two() || !RING_SIZES.contains(&cfg.ring_size) {
        bail!(
            "AF_XDP ring_size must be a power of two in {RING_SIZES:?}, not {}",
            cfg.ring_size
        );
    }
    if !FRAME_COUNTS.contains(&cfg.frame_count) {
        bail!(
            "AF_XDP frame_count must be in {FRAME_COUNTS:?}, not {}",
            cfg.frame_count
        );
    }
    Ok(())
}

/// Register `mem` as the UMEM (the first AF_XDP socket, shared by the rings), with a hint
/// for the usual failures.
fn new_umem(ifname: &str, cfg: &AfXdpConfig, mem: &FrameMem) -> anyhow::Result<Umem> {
    let umem_cfg = UmemConfig {
        fill_size: cfg.ring_size,
        complete_size: cfg.ring_size,
        frame_size: cfg.frame_size,
        headroom: 0,
        flags: 0,
    };
    let area = NonNull::slice_from_raw_parts(mem.ptr, mem.len);
    // SAFETY: `area` is a page-aligned mapping of `frame_size * frame_count` bytes that
    // lives in `frames.mem`, which the port drops after the `Umem` and all rings.
    let umem = unsafe { Umem::new(umem_cfg, area) };
    umem.map_err(os_err).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => {
                "run as root (AF_XDP needs CAP_NET_RAW, and the locked-memory limit \
                 must cover the UMEM)"
            }
            Some(libc::EAFNOSUPPORT) => "the kernel has no AF_XDP (CONFIG_XDP_SOCKETS)",
            Some(libc::ENOMEM) => "not enough lockable memory: lower frame_count",
            _ => "see the error",
        };
        anyhow::Error::new(e).context(format!(
            "creating the AF_XDP socket and UMEM for {ifname}: {hint}"
        ))
    })
}

/// The bind flags for the zero-copy policy and XDP mode: need_wakeup always, XDP_ZEROCOPY
/// when required, XDP_COPY when off or in generic mode (which is copy mode only).
fn bind_flags(ifname: &str, cfg: &AfXdpConfig) -> anyhow::Result<u16> {
    let mut flags = SocketConfig::XDP_BIND_NEED_WAKEUP;
    match (cfg.zerocopy, cfg.mode) {
        (ZeroCopy::Require, XdpMode::Generic) => bail!(
            "xdp.zerocopy = \"require\", but the XDP program runs in generic mode on \
             {ifname} (driver {}), which is copy mode only: use a NIC driver with native \
             XDP and AF_XDP zero-copy (xdp.mode = \"native\"), or set xdp.zerocopy = \
             \"auto\"",
            driver_name(ifname)
        ),
        (ZeroCopy::Require, _) => flags |= SocketConfig::XDP_BIND_ZEROCOPY,
        (ZeroCopy::Off, _) | (_, XdpMode::Generic) => flags |= SocketConfig::XDP_BIND_COPY,
        (ZeroCopy::Auto, _) => {}
    }
    Ok(flags)
}

/// The RX and TX rings of the socket, created and mapped.
fn rx_tx_rings(
    ifname: &str,
    queue: u32,
    cfg: &AfXdpConfig,
    umem: &Umem,
    sock: &Socket,
) -> anyhow::Result<(User, RingRx, RingTx)> {
    let ring = NonZeroU32::new(cfg.ring_size);
    let socket_cfg = SocketConfig {
        rx_size: ring,
        tx_size: ring,
        bind_flags: bind_flags(ifname, cfg)?,
    };
    let user = umem
        .rx_tx(sock, &socket_cfg)
        .map_err(os_err)
        .with_context(|| format!("RX/TX rings for {ifname} queue {queue}"))?;
    let rx = user
        .map_rx()
        .map_err(os_err)
        .context("mapping the RX ring")?;
    let tx = user
        .map_tx()
        .map_err(os_err)
        .context("mapping the TX ring")?;
    Ok((user, rx, tx))
}

/// Bind the socket to its queue, with a hint for the usual failures.
fn bind(
    ifname: &str,
    queue: u32,
    cfg: &AfXdpConfig,
    umem: &Umem,
    user: &User,
) -> anyhow::Result<()> {
    umem.bind(user).map_err(os_err).map_err(|e| {
        if cfg.zerocopy == ZeroCopy::Require && e.raw_os_error() == Some(libc::EOPNOTSUPP) {
            return require_failed(ifname, queue);
        }
        let hint = match e.raw_os_error() {
            Some(libc::EBUSY) => "the queue already has an AF_XDP socket bound",
            Some(libc::EINVAL) => {
                "the queue does not exist (a veth needs `numrxqueues N numtxqueues N` at \
                 creation) or the ring/frame sizes are invalid"
            }
            Some(libc::EPERM) => "run as root",
            Some(libc::EOPNOTSUPP) => "the driver does not support this bind mode",
            _ => "see the error",
        };
        anyhow::Error::new(e).context(format!(
            "binding the AF_XDP socket to {ifname} queue {queue} failed: {hint}"
        ))
    })
}

/// The error of `xdp.zerocopy = "require"` when the kernel offers only copy mode.
fn require_failed(ifname: &str, queue: u32) -> anyhow::Error {
    anyhow::anyhow!(
        "xdp.zerocopy = \"require\", but the kernel gives only copy mode for AF_XDP on \
         {ifname} queue {queue} (driver {}): use a NIC whose driver has AF_XDP zero-copy in \
         native XDP mode (e.g. ice, i40e, ixgbe, mlx5_core), or set xdp.zerocopy = \"auto\"",
        driver_name(ifname)
    )
}

/// `getsockopt(SOL_XDP, XDP_OPTIONS)`: whether a bound AF_XDP socket is in zero-copy mode.
fn bound_zerocopy(fd: RawFd) -> std::io::Result<bool> {
    let mut flags: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `flags` is a live u32 (`struct xdp_options` is one __u32) and `len` says so;
    // the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&mut flags as *mut u32).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(flags & XDP_OPTIONS_ZEROCOPY != 0)
}

/// The kernel driver of an interface for messages (`"unknown"` when it cannot be read).
pub fn driver_name(ifname: &str) -> String {
    super::ethtool::driver_name(ifname).unwrap_or_else(|| "unknown".to_owned())
}

fn setsockopt_u32(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    val: u32,
) -> std::io::Result<()> {
    // SAFETY: `val` is a live u32 and the length passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&val as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    //! The chunk bookkeeping, without a NIC: `Frames` over an anonymous mapping. The rings
    //! themselves are exercised on a real veth in `tests/afxdp_port.rs`.
    use super::*;

    const FS: u32 = 2048;

    fn frames(count: u32) -> Frames {
        Frames {
            mem: FrameMem::new((FS * count) as usize).expect("mmap"),
            frame_size: FS,
            shift: FS.trailing_zeros(),
            count,
            owner: vec![Owner::Kernel; count as usize],
            free: Vec::new(),
            pending_fill: Vec::new(),
            bad_descs: 0,
            tx_inflight: 0,
        }
    }

    fn desc(addr: u64, len: u32) -> XdpDesc {
        XdpDesc {
            addr,
            len,
            options: 0,
        }
    }

    #[test]
    fn rx_descriptor_at_data_offset_is_handed_out() {
        let mut f = frames(8);
        let got = f.accept_rx(desc(2 * 2048 + DATA_OFFSET, 60));
        assert_eq!(
            got,
            Some(Frame {
                addr: 2 * 2048 + DATA_OFFSET,
                len: 60
            })
        );
        assert_eq!(f.owner[2], Owner::User);
        assert_eq!(f.user_chunk(2 * 2048 + DATA_OFFSET), Some(2));
        assert_eq!(f.capacity(), 2048 - 256);
    }

    #[test]
    fn bogus_rx_descriptors_are_counted_not_handed_out() {
        let mut f = frames(8);
        // Beyond the UMEM.
        assert_eq!(f.accept_rx(desc(8 * 2048 + DATA_OFFSET, 60)), None);
        // A chunk the kernel does not own (ours, or on the TX ring).
        f.owner[1] = Owner::User;
        f.owner[3] = Owner::Tx;
        assert_eq!(f.accept_rx(desc(2048 + DATA_OFFSET, 60)), None);
        assert_eq!(f.accept_rx(desc(3 * 2048 + DATA_OFFSET, 60)), None);
        assert_eq!(f.owner[1], Owner::User);
        assert_eq!(f.owner[3], Owner::Tx);
        // Longer than the chunk: the kernel gave it back, so it returns to the free pool.
        assert_eq!(f.accept_rx(desc(4 * 2048 + DATA_OFFSET, 1800)), None);
        assert_eq!(f.owner[4], Owner::Free);
        assert_eq!(f.free, vec![4 * 2048]);
        assert_eq!(f.bad_descs, 4);
    }

    #[test]
    fn rx_data_at_another_offset_is_moved_to_data_offset() {
        let mut f = frames(4);
        let base = 2048u64;
        let payload: Vec<u8> = (0..100u8).collect();
        f.owner[1] = Owner::User; // write the fixture as the kernel would have
        f.chunk_bytes(1)[300..400].copy_from_slice(&payload);
        f.owner[1] = Owner::Kernel;
        let got = f.accept_rx(desc(base + 300, 100)).expect("accepted");
        assert_eq!(got.addr, base + DATA_OFFSET);
        assert_eq!(&f.chunk_bytes(1)[256..356], payload.as_slice());
    }

    #[test]
    fn completions_return_tx_frames_only() {
        let mut f = frames(4);
        f.owner[2] = Owner::Tx;
        f.tx_inflight = 1;
        f.complete(2 * 2048 + DATA_OFFSET);
        assert_eq!(f.tx_inflight, 0);
        assert_eq!(f.owner[2], Owner::Free);
        assert_eq!(f.free, vec![2 * 2048]);
        // A completion for a frame not on the TX ring changes nothing.
        f.complete(2 * 2048 + DATA_OFFSET);
        f.complete(9 * 2048);
        assert_eq!(f.free.len(), 1);
        assert_eq!(f.bad_descs, 2);
    }

    #[test]
    fn only_engine_owned_frames_at_data_offset_are_user_frames() {
        let mut f = frames(4);
        f.owner[0] = Owner::User;
        assert_eq!(f.user_chunk(DATA_OFFSET), Some(0));
        assert_eq!(f.user_chunk(0), None, "chunk base is not a frame address");
        assert_eq!(f.user_chunk(2048 + DATA_OFFSET), None, "kernel-owned");
        assert_eq!(
            f.user_chunk(4 * 2048 + DATA_OFFSET),
            None,
            "outside the UMEM"
        );
    }

    #[test]
    fn driver_of_loopback_is_read_and_a_missing_interface_is_unknown() {
        // Loopback has no ethtool driver info on every kernel; the call must not fail
        // either way, and a name that does not exist gives "unknown".
        let lo = driver_name("lo");
        assert!(!lo.is_empty());
        assert_eq!(driver_name("nosuchif0"), "unknown");
        assert_eq!(driver_name("a-name-that-is-too-long"), "unknown");
    }

    #[test]
    fn tx_reserve_leaves_the_bulk_to_the_fill_ring() {
        assert_eq!(tx_reserve(2048, 4096), 512);
        assert_eq!(tx_reserve(512, 1024), 128);
        assert_eq!(tx_reserve(2048, 1024), 128);
        assert!(tx_reserve(64, 64) >= 8);
    }

    #[test]
    fn port_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<AfXdpPort>();
    }
}
