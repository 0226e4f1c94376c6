//! The XDP program's occupancy filter, mapped into our address space.
//!
//! `occupancy` in `src/bpf/synack.bpf.c` is a `BPF_F_MMAPABLE` array of `u64` cells: a
//! counting filter over 4-tuple hashes (`table::occupancy`). Workers add 1 when they create
//! a connection and subtract 1 when they remove it, with atomic operations on the shared
//! pages, so the XDP program sees at once which tuples may have state, without a syscall
//! per connection. This module owns the `mmap` and hands out the cells as a safe
//! `&[AtomicU64]`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// The cells of an mmapped `BPF_F_MMAPABLE` array map of `u64` values. Unmapped on drop;
/// the mapping keeps the map alive in the kernel even after its fd is closed.
#[derive(Debug)]
pub struct OccupancyMap {
    ptr: NonNull<AtomicU64>,
    cells: usize,
    bytes: usize,
}

// SAFETY: the mapping is shared memory accessed only through `AtomicU64`, which is `Sync`;
// the pointer is valid until `drop`, which needs ownership.
unsafe impl Send for OccupancyMap {}
// SAFETY: as above: every access goes through atomics.
unsafe impl Sync for OccupancyMap {}

impl OccupancyMap {
    /// Map the `cells` u64 values of the array map `fd` read-write and shared.
    pub fn map(fd: BorrowedFd<'_>, cells: usize) -> io::Result<OccupancyMap> {
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let bytes = (cells * 8).div_ceil(page) * page;
        // SAFETY: a fresh shared mapping of the map's value area (offset 0, as the kernel's
        // array_map_mmap defines it); the kernel checks the length against the map's size.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<AtomicU64>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(OccupancyMap { ptr, cells, bytes })
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.cells
    }

    /// Whether there are no cells.
    pub fn is_empty(&self) -> bool {
        self.cells == 0
    }
}

impl AsRef<[AtomicU64]> for OccupancyMap {
    fn as_ref(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` points to `bytes >= cells * 8` bytes of page-aligned shared memory
        // that stays mapped while `self` lives; `AtomicU64` has the size and alignment of
        // `u64`, and all accesses (ours and the kernel's) are word-sized.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.cells) }
    }
}

impl Drop for OccupancyMap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region `map` created; no reference into it can
        // outlive `self` (they borrow it).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.bytes);
        }
    }
}
