//! `BPF_PROG_TEST_RUN` for XDP programs: run a loaded program on a frame we give it, without
//! a NIC, and read back its verdict and the frame it left; or, with
//! `BPF_F_TEST_XDP_LIVE_FRAMES`, have the kernel transmit every `XDP_TX` frame out of the
//! ingress interface (the mechanism of xdp-trafficgen; kernel `bpf_test_run_xdp_live` in
//! `net/bpf/test_run.c`).
//!
//! Two users: tests that check what the XDP program answers to known inputs, and the flood
//! generator, which turns one template frame into millions of frames a second from one core.
//! The kernel's per-call setup is fixed (~20 ms here for live frames), so a live caller
//! should ask for hundreds of thousands of repeats per call.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `enum bpf_cmd`: BPF_PROG_TEST_RUN (`include/uapi/linux/bpf.h`).
const BPF_PROG_TEST_RUN: libc::c_long = 10;
/// Run the program on the CPU given in `cpu` (non-live runs only).
pub const BPF_F_TEST_RUN_ON_CPU: u32 = 1 << 0;
/// Live frames: `XDP_TX` frames leave through the ingress interface, `XDP_REDIRECT` is
/// carried out; nothing is copied back.
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// The `test` member of `union bpf_attr` (80 bytes with its tail padding).
#[repr(C, align(8))]
#[derive(Default)]
struct TestAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `struct xdp_md` as the test run takes it for its context: `data` 0, `data_end` the frame
/// length, and the ingress interface and rx queue the program sees.
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// One test run of an XDP program.
#[derive(Debug, Clone, Default)]
pub struct XdpTestRun<'a> {
    /// The frame the program starts from (each repetition starts from it again).
    pub frame: &'a [u8],
    /// How many times to run (0 and 1 both mean once).
    pub repeat: u32,
    /// `BPF_F_TEST_XDP_LIVE_FRAMES`, `BPF_F_TEST_RUN_ON_CPU` or 0.
    pub flags: u32,
    /// Frames per batch with live frames (kernel default 64 when 0).
    pub batch_size: u32,
    /// `ctx->ingress_ifindex` (and, for live frames, the interface `XDP_TX` sends from);
    /// 0 for none.
    pub ingress_ifindex: u32,
    /// `ctx->rx_queue_index` (must exist on `ingress_ifindex`).
    pub rx_queue_index: u32,
    /// Room for the frame the program leaves (ignored with live frames, which copy nothing
    /// back). Defaults to the input length plus 256 bytes when 0.
    pub out_capacity: usize,
}

/// What a test run returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpTestResult {
    /// The program's verdict of the last run (`XDP_DROP` 1, `XDP_PASS` 2, `XDP_TX` 3,
    /// `XDP_REDIRECT` 4).
    pub retval: u32,
    /// Mean time per run in nanoseconds, as the kernel measured it.
    pub duration_ns: u32,
    /// The frame as the program left it (empty for live frames).
    pub frame: Vec<u8>,
}

impl XdpTestRun<'_> {
    /// Run `prog` (an XDP program's fd) once per `repeat` through `bpf(BPF_PROG_TEST_RUN)`.
    pub fn run(&self, prog: BorrowedFd<'_>) -> io::Result<XdpTestResult> {
        let live = self.flags & BPF_F_TEST_XDP_LIVE_FRAMES != 0;
        let len = u32::try_from(self.frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
        let mut out = if live {
            Vec::new()
        } else {
            let cap = match self.out_capacity {
                0 => self.frame.len() + 256,
                n => n,
            };
            vec![0u8; cap]
        };
        let ctx = XdpMd {
            data_end: len,
            ingress_ifindex: self.ingress_ifindex,
            rx_queue_index: self.rx_queue_index,
            ..XdpMd::default()
        };
        let mut attr = TestAttr {
            prog_fd: prog.as_raw_fd() as u32,
            data_size_in: len,
            data_in: self.frame.as_ptr() as u64,
            repeat: self.repeat,
            ctx_size_in: std::mem::size_of::<XdpMd>() as u32,
            ctx_in: &ctx as *const XdpMd as u64,
            flags: self.flags,
            batch_size: self.batch_size,
            ..TestAttr::default()
        };
        if !live {
            attr.data_size_out = out.len() as u32;
            attr.data_out = out.as_mut_ptr() as u64;
        }
        // SAFETY: `attr` is a valid, fully initialised `bpf_attr.test` whose pointers refer
        // to `self.frame` (read), `ctx` (read) and `out` (written, at most data_size_out
        // bytes); all three outlive the call, and the size passed is the struct's.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_TEST_RUN,
                &mut attr as *mut TestAttr,
                std::mem::size_of::<TestAttr>() as libc::c_uint,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        out.truncate(attr.data_size_out as usize);
        Ok(XdpTestResult {
            retval: attr.retval,
            duration_ns: attr.duration,
            frame: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_attr_test_layout_matches_the_kernel_uapi() {
        // include/uapi/linux/bpf.h: batch_size is the last member, at offset 72.
        assert_eq!(std::mem::size_of::<TestAttr>(), 80);
        assert_eq!(std::mem::offset_of!(TestAttr, data_in), 16);
        assert_eq!(std::mem::offset_of!(TestAttr, repeat), 32);
        assert_eq!(std::mem::offset_of!(TestAttr, ctx_in), 48);
        assert_eq!(std::mem::offset_of!(TestAttr, flags), 64);
        assert_eq!(std::mem::offset_of!(TestAttr, batch_size), 72);
        assert_eq!(std::mem::size_of::<XdpMd>(), 24);
    }
}
