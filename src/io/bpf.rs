//! Loader for the XDP steering program (`src/bpf/synack.bpf.c`), through aya.
//!
//! The program redirects TCP for our (address, port) pairs into the AF_XDP socket of the
//! receiving queue and passes everything else to the kernel. It is attached through a
//! `bpf_link`, so it detaches when [`XdpProgram`] is dropped and also when the process dies
//! (even on SIGKILL: the kernel closes the link's file descriptor).
//!
//! With the SYN offload on ([`XdpProgram::set_syn_offload`]) the program also answers
//! SYNs for tuples without state with a cookie SYN-ACK itself and cookie-checks stateless
//! ACKs (see the C source); the control thread keeps its keys and minute counter current
//! ([`XdpProgram::publish_cookies`]) and the workers keep its occupancy filter current
//! ([`XdpProgram::occupancy`], [`crate::io::occupancy`]).
//!
//! Control path only: errors are `anyhow` with context naming the interface and a remedy.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use aya::maps::{Array, HashMap, MapData, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode as AyaXdpMode};
use aya::Ebpf;
use serde::Serialize;

use crate::io::occupancy::OccupancyMap;
use crate::io::test_run::{XdpTestResult, XdpTestRun};
use crate::io::{libxdp, xdp_attached, XdpAttach, XdpMode};

/// The compiled program (built by `build.rs`), 8-byte aligned for the ELF parser.
static PROGRAM_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/synack.bpf.o"));

/// The same program built with `SYNACK_FIXED_LEN`: it never resizes a frame, so a libxdp
/// dispatcher slot that must not change packet data accepts it (see `set_len` in the C
/// source). Its maps are the same.
static PROGRAM_OBJECT_FIXED: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/synack_fixed.bpf.o"));

/// Name of the XDP function in the object.
const PROGRAM_NAME: &str = "synack_xdp";

/// Capacity of `xsks_map` (one slot per rx queue) in the C source.
const MAX_QUEUES: u32 = 64;

/// Capacity of `addrs_v4` and `addrs_v6` in the C source.
const MAX_ADDRS: usize = 256;

/// Value stored for an address of ours (bit 0 = ours; other bits reserved).
const ADDR_OURS: u8 = 1;

/// Cells of the occupancy filter (`OCC_CELLS` in the C source).
pub const OCCUPANCY_CELLS: usize = 1 << 20;

/// Indices of the per-CPU `counters` map (`enum counter_index` in the C source).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
enum CounterIndex {
    Redirected = 0,
    Passed = 1,
    RedirectFailed = 2,
    ArpRedirected = 3,
    NdpRedirected = 4,
    SynAcksSent = 5,
    SynsToUserspace = 6,
    AcksDropped = 7,
    RstsSent = 8,
    RstsRateLimited = 9,
    CookieAcksToUserspace = 10,
    VlanPassed = 11,
    CookieFollowersToUserspace = 12,
}

/// One secret's two Linux cookie keys (`syncookie_secret[0]`, `syncookie_secret[1]`), each
/// as the `(k0, k1)` words of a SipHash key (`tcp::cookie::CookieJar::raw_keys`).
pub type SipKeyPair = ((u64, u64), (u64, u64));

/// `struct cookie_state` of the C source (one entry of the `cookie_state` array).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct StateValue {
    cur: [u64; 4],
    prev: [u64; 4],
    has_prev: u32,
    counter: u32,
    origin_ns: u64,
    occ: [u64; 2],
    enabled: u32,
    clock_flags: u32,
    rst_cost_ns: u64,
    tai_minus_unix_ns: u64,
}

/// `CLOCK_FOLLOW` in the C source.
const CLOCK_FOLLOW: u32 = 1;

/// CLOCK_TAI minus CLOCK_REALTIME in ns, rounded to whole seconds (the kernel's TAI offset),
/// so that the program's `bpf_ktime_get_tai_ns() - offset` reads the workers' Unix time.
fn tai_minus_unix_ns() -> u64 {
    let read = |clock: libc::clockid_t| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    let d = read(libc::CLOCK_TAI) - read(libc::CLOCK_REALTIME);
    ((d + 500_000_000).div_euclid(1_000_000_000) * 1_000_000_000) as u64
}

// SAFETY: plain integers, `repr(C)` without padding holes (every field is spelled out).
unsafe impl aya::Pod for StateValue {}

/// `struct listener` of the C source (the `listeners` array, indexed by port).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ListenerValue {
    window: u16,
    mss: u16,
    wscale: u8,
    flags: u8,
    _pad: u16,
}

// SAFETY: plain integers, `repr(C)`, the padding spelled out as a field.
unsafe impl aya::Pod for ListenerValue {}

/// `LISTENER_OFFLOAD` / `LISTENER_TIMESTAMPS` in the C source.
const LISTENER_OFFLOAD: u8 = 1;
const LISTENER_TIMESTAMPS: u8 = 2;

/// What the XDP program's SYN-ACK for one listening port carries: exactly what
/// `tcp::listen::on_syn` sends for that port's mode (the control path computes it from the
/// same functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAnswer {
    /// The listening port.
    pub port: u16,
    /// The SYN-ACK's window field.
    pub window: u16,
    /// Our MSS for IPv4 (IPv6 announces 20 less, as `tcp::listen::our_mss`).
    pub mss: u16,
    /// The window shift offered when the SYN offers one and timestamps carry it.
    pub window_scale: u8,
    /// Whether timestamps are used when the client offers them.
    pub timestamps: bool,
}

/// How the SYN offload runs (see [`XdpProgram::set_syn_offload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynOffload {
    /// One entry per listening port.
    pub listeners: Vec<SynAnswer>,
    /// CLOCK_MONOTONIC nanoseconds of the instant userspace's TSval clock reads 0 (see
    /// [`clock_origin_ns`]).
    pub clock_origin_ns: u64,
    /// Resets per second and CPU for ACKs whose cookie fails (0: none).
    pub rst_per_sec: u32,
}

/// The CLOCK_MONOTONIC nanoseconds of `origin`, rounded so that the XDP program's clock
/// (`bpf_ktime_get_ns() - result`, in ms) never runs ahead of `origin.elapsed()`: the TSval
/// of an XDP SYN-ACK is then never above the TSval userspace puts on later segments (RFC
/// 7323 §5.3 PAWS at the peer). `Instant` is CLOCK_MONOTONIC on Linux, as is
/// `bpf_ktime_get_ns`; the reading after `Instant::now()` can only be later, so the origin
/// found is at or after the true one (by well under a microsecond).
pub fn clock_origin_ns(origin: Instant) -> u64 {
    let before = Instant::now();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    now_ns.saturating_sub(before.saturating_duration_since(origin).as_nanos() as u64)
}

/// What the XDP program steers into the AF_XDP sockets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Our IPv4 addresses: TCP to these (and to one of `ports`) is redirected.
    pub ipv4: Vec<Ipv4Addr>,
    /// Our IPv6 addresses.
    pub ipv6: Vec<Ipv6Addr>,
    /// Our TCP ports.
    pub ports: Vec<u16>,
    /// Standalone mode: the endpoint also answers ARP requests and IPv6 neighbour
    /// solicitations for its addresses, so those are redirected too.
    pub standalone: bool,
}

/// Counters of the XDP program, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BpfCounters {
    /// TCP frames redirected into an AF_XDP socket.
    pub redirected: u64,
    /// Frames given to the kernel (XDP_PASS) for any reason, including failed redirects.
    pub passed: u64,
    /// Frames for us that found no socket on their rx queue (passed to the kernel instead).
    pub redirect_failed: u64,
    /// ARP requests for our addresses redirected (standalone mode).
    pub arp_redirected: u64,
    /// IPv6 neighbour solicitations for our addresses redirected (standalone mode).
    pub ndp_redirected: u64,
    /// SYNs answered by the program itself with a cookie SYN-ACK (SYN offload).
    pub syn_acks_sent: u64,
    /// SYNs for us sent on to userspace: offload off, the tuple may have state, or the
    /// SYN was not one the program judges (IP options, bad checksum or options, data).
    pub syns_to_userspace: u64,
    /// ACKs for tuples without state whose cookie failed: dropped in XDP.
    pub acks_dropped: u64,
    /// Resets sent from XDP for those ACKs (RFC 9293 §3.10.7.2).
    pub rsts_sent: u64,
    /// Resets not sent because the per-CPU rate was used up.
    pub rsts_rate_limited: u64,
    /// ACKs for tuples without state whose cookie verified: sent on to userspace.
    pub cookie_acks_to_userspace: u64,
    /// 802.1ad frames and frames with two tags, passed to the kernel (userspace refuses
    /// them).
    pub vlan_passed: u64,
    /// Segments of a tuple without state within about a second of a valid cookie ACK of
    /// that tuple (its data or FIN, before the worker marked the connection in the
    /// occupancy filter): sent to userspace instead of being reset.
    pub cookie_followers_to_userspace: u64,
}

/// The loaded and attached XDP program. Dropping it detaches the program.
pub struct XdpProgram {
    /// With `xdp.attach = "dispatcher"`: the program as libxdp attached it (its maps are
    /// those of `ebpf`). Declared first, so it detaches before the maps close.
    _component: Option<libxdp::Component>,
    /// Owns the program, its maps and the link (the link detaches when this drops).
    ebpf: Ebpf,
    /// The mode actually in use: `Native` or `Generic`, never `Auto`.
    mode: XdpMode,
    /// Interface the program is attached to (for error messages).
    ifname: String,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl XdpProgram {
    /// Load, fill the maps, attach through a bpf_link. `Auto` tries native (DRV_MODE) then
    /// falls back to generic (SKB_MODE) and logs which one is in use.
    ///
    /// The interface is looked up in the network namespace of the calling thread. An XDP
    /// program already on the interface makes this fail, naming it (see [`Self::attach_with`]).
    pub fn attach(ifname: &str, mode: XdpMode, filter: &Filter) -> anyhow::Result<XdpProgram> {
        Self::attach_with(ifname, mode, XdpAttach::Exclusive, filter)
    }

    /// [`Self::attach`], with `policy` deciding about an XDP program already attached to
    /// the interface: `Exclusive` fails with a message naming it (id, name, mode) and the
    /// choices; `Replace` detaches it, with a warning naming it, then attaches ours;
    /// `Dispatcher` attaches ours through libxdp's multi-program dispatcher
    /// ([`crate::io::libxdp`]), next to the programs already in it, and detaches only ours
    /// when dropped.
    pub fn attach_with(
        ifname: &str,
        mode: XdpMode,
        policy: XdpAttach,
        filter: &Filter,
    ) -> anyhow::Result<XdpProgram> {
        let ifindex = xdp_attached::ifindex(ifname)?;
        make_room(ifname, ifindex, policy)?;
        let mut ebpf = create_maps(PROGRAM_OBJECT, filter, ifname)?;
        let mut component = None;
        let used = if policy == XdpAttach::Dispatcher {
            let maps = map_fds(&ebpf)?;
            with_fallback(ifname, mode, |m| {
                component = Some(attach_dispatched(&maps, ifname, ifindex, m)?);
                Ok(())
            })?
        } else {
            load_program(&mut ebpf, ifname)?;
            let program = xdp_program(&mut ebpf)?;
            with_fallback(ifname, mode, |m| attach_one(program, ifname, m))?
        };
        tracing::info!(interface = ifname, mode = ?used, "XDP program attached");
        Ok(XdpProgram {
            _component: component,
            ebpf,
            mode: used,
            ifname: ifname.to_string(),
        })
    }

    /// The mode actually in use: `Native` or `Generic` (`Auto` for a program loaded with
    /// [`XdpProgram::load_detached`]).
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Load the program and fill its maps without attaching it anywhere, so that tests and
    /// tools can run it with `BPF_PROG_TEST_RUN` ([`XdpProgram::test_run`]) without a NIC.
    pub fn load_detached(filter: &Filter) -> anyhow::Result<XdpProgram> {
        Self::load_detached_object(PROGRAM_OBJECT, filter)
    }

    /// [`Self::load_detached`] for the build that never resizes frames (the one attached to
    /// libxdp dispatcher slots that must not change packet data), so tests can run it.
    pub fn load_detached_fixed_length(filter: &Filter) -> anyhow::Result<XdpProgram> {
        Self::load_detached_object(PROGRAM_OBJECT_FIXED, filter)
    }

    fn load_detached_object(object: &[u8], filter: &Filter) -> anyhow::Result<XdpProgram> {
        let mut ebpf = create_maps(object, filter, "(detached)")?;
        load_program(&mut ebpf, "(detached)")?;
        Ok(XdpProgram {
            _component: None,
            ebpf,
            mode: XdpMode::Auto,
            ifname: "(detached)".to_string(),
        })
    }

    /// Run the loaded program on a frame through `BPF_PROG_TEST_RUN` (see
    /// [`crate::io::test_run`]).
    pub fn test_run(&mut self, run: &XdpTestRun<'_>) -> anyhow::Result<XdpTestResult> {
        let program = xdp_program(&mut self.ebpf)?;
        let fd = program.fd().context("the XDP program has no fd")?;
        run.run(fd.as_fd())
            .context("BPF_PROG_TEST_RUN of the XDP program failed (needs root)")
    }

    /// Replace the set of redirected ports (reload). Ports added start reaching the
    /// sockets, ports removed go back to the kernel, without detaching the program.
    pub fn set_ports(&mut self, ports: &[u16]) -> anyhow::Result<()> {
        let map = self.ebpf.map_mut("ports").context("no map ports")?;
        let mut map: Array<&mut MapData, u8> = map.try_into().context("ports")?;
        for p in 0..=u16::MAX {
            let want = u8::from(ports.contains(&p));
            if map.get(&u32::from(p), 0).unwrap_or(0) != want {
                map.set(u32::from(p), want, 0)
                    .with_context(|| format!("updating port {p} in the XDP ports map"))?;
            }
        }
        Ok(())
    }

    /// Direct frames received on rx queue `queue` to the AF_XDP socket `fd`.
    pub fn register_socket(&mut self, queue: u32, fd: RawFd) -> anyhow::Result<()> {
        if queue >= MAX_QUEUES {
            bail!(
                "queue {queue} of {} is beyond the {MAX_QUEUES} queues the XDP program supports",
                self.ifname
            );
        }
        let map = self
            .ebpf
            .map_mut("xsks_map")
            .ok_or_else(|| anyhow!("XDP object has no map xsks_map"))?;
        let mut xsks: XskMap<&mut MapData> = map.try_into().context("xsks_map is not an XSKMAP")?;
        xsks.set(queue, fd, 0).with_context(|| {
            format!(
                "registering AF_XDP socket fd {fd} for {} queue {queue} in xsks_map",
                self.ifname
            )
        })
    }

    /// The program's counters, per-CPU values summed.
    pub fn counters(&self) -> anyhow::Result<BpfCounters> {
        let map = self
            .ebpf
            .map("counters")
            .ok_or_else(|| anyhow!("XDP object has no map counters"))?;
        let counters: PerCpuArray<&MapData, u64> =
            map.try_into().context("counters is not a per-CPU array")?;
        let read = |idx: CounterIndex| -> anyhow::Result<u64> {
            let values = counters
                .get(&(idx as u32), 0)
                .with_context(|| format!("reading XDP counter {idx:?} on {}", self.ifname))?;
            Ok(values.iter().sum())
        };
        Ok(BpfCounters {
            redirected: read(CounterIndex::Redirected)?,
            passed: read(CounterIndex::Passed)?,
            redirect_failed: read(CounterIndex::RedirectFailed)?,
            arp_redirected: read(CounterIndex::ArpRedirected)?,
            ndp_redirected: read(CounterIndex::NdpRedirected)?,
            syn_acks_sent: read(CounterIndex::SynAcksSent)?,
            syns_to_userspace: read(CounterIndex::SynsToUserspace)?,
            acks_dropped: read(CounterIndex::AcksDropped)?,
            rsts_sent: read(CounterIndex::RstsSent)?,
            rsts_rate_limited: read(CounterIndex::RstsRateLimited)?,
            cookie_acks_to_userspace: read(CounterIndex::CookieAcksToUserspace)?,
            vlan_passed: read(CounterIndex::VlanPassed)?,
            cookie_followers_to_userspace: read(CounterIndex::CookieFollowersToUserspace)?,
        })
    }

    fn state(&self) -> anyhow::Result<StateValue> {
        let map = self
            .ebpf
            .map("cookie_state")
            .context("no map cookie_state")?;
        let array: Array<&MapData, StateValue> = map.try_into().context("cookie_state")?;
        array.get(&0, 0).context("reading cookie_state")
    }

    fn set_state(&mut self, value: StateValue) -> anyhow::Result<()> {
        let map = self
            .ebpf
            .map_mut("cookie_state")
            .context("no map cookie_state")?;
        let mut array: Array<&mut MapData, StateValue> = map.try_into().context("cookie_state")?;
        array.set(0, value, 0).context("writing cookie_state")
    }

    /// Turn the SYN offload on with these listeners (also on reload, with the new ones):
    /// SYNs for tuples without state are answered in XDP from now on. The cookie keys must
    /// be published too ([`XdpProgram::publish_cookies`]), before or after.
    pub fn set_syn_offload(&mut self, offload: &SynOffload) -> anyhow::Result<()> {
        let mut want = vec![ListenerValue::default(); 65536];
        for l in &offload.listeners {
            want[usize::from(l.port)] = ListenerValue {
                window: l.window,
                mss: l.mss,
                wscale: l.window_scale,
                flags: LISTENER_OFFLOAD | if l.timestamps { LISTENER_TIMESTAMPS } else { 0 },
                _pad: 0,
            };
        }
        {
            let map = self.ebpf.map_mut("listeners").context("no map listeners")?;
            let mut array: Array<&mut MapData, ListenerValue> =
                map.try_into().context("listeners")?;
            for (port, value) in want.iter().enumerate() {
                let key = port as u32;
                if array.get(&key, 0).unwrap_or_default() != *value {
                    array
                        .set(key, *value, 0)
                        .with_context(|| format!("writing port {port} in the listeners map"))?;
                }
            }
        }
        let mut st = self.state()?;
        st.origin_ns = offload.clock_origin_ns;
        st.rst_cost_ns = match offload.rst_per_sec {
            0 => 0,
            r => 1_000_000_000 / u64::from(r),
        };
        st.enabled = 1;
        self.set_state(st)
    }

    /// Turn the SYN offload off: every segment for us goes to userspace again.
    pub fn disable_syn_offload(&mut self) -> anyhow::Result<()> {
        let mut st = self.state()?;
        st.enabled = 0;
        self.set_state(st)
    }

    /// Whether the SYN offload is on.
    pub fn syn_offload_enabled(&self) -> bool {
        self.state().is_ok_and(|s| s.enabled != 0)
    }

    /// Publish the cookie keys (current, and the previous one while a rotation keeps it
    /// valid) and the minute counter (`tcp::cookie::counter_from_unix_secs`). The control
    /// thread calls this every second and after every secret rotation, so the program
    /// makes and accepts exactly the cookies the workers do.
    ///
    /// With `follow_clock` the program computes the counter itself from CLOCK_TAI and the
    /// TAI - UTC offset published here, so it turns at the same instant as the workers'
    /// (`counter` is then only the value of now); without, it uses `counter` as given (tests
    /// that fix the clock).
    pub fn publish_cookies(
        &mut self,
        current: SipKeyPair,
        previous: Option<SipKeyPair>,
        counter: u32,
        follow_clock: bool,
    ) -> anyhow::Result<()> {
        let words = |k: SipKeyPair| [k.0 .0, k.0 .1, k.1 .0, k.1 .1];
        let mut st = self.state()?;
        let (cur, prev) = (words(current), previous.map(words).unwrap_or_default());
        let has_prev = u32::from(previous.is_some());
        let (flags, tai) = if follow_clock {
            (CLOCK_FOLLOW, tai_minus_unix_ns())
        } else {
            (0, 0)
        };
        if st.cur == cur
            && st.prev == prev
            && st.has_prev == has_prev
            && st.counter == counter
            && st.clock_flags == flags
            && st.tai_minus_unix_ns == tai
        {
            return Ok(());
        }
        st.cur = cur;
        st.prev = prev;
        st.has_prev = has_prev;
        st.counter = counter;
        st.clock_flags = flags;
        st.tai_minus_unix_ns = tai;
        self.set_state(st)
    }

    /// The occupancy filter, mapped for the workers, and the SipHash key of its hash
    /// (`table::occupancy`). Each call maps the same cells again.
    pub fn occupancy(&self) -> anyhow::Result<(OccupancyMap, (u64, u64))> {
        let map = self.ebpf.map("occupancy").context("no map occupancy")?;
        let data: &MapData = match map {
            aya::maps::Map::Array(d) => d,
            _ => bail!("occupancy is not an array map"),
        };
        let cells = OccupancyMap::map(data.fd().as_fd(), OCCUPANCY_CELLS)
            .context("mmap of the XDP occupancy map (needs BPF_F_MMAPABLE)")?;
        let st = self.state()?;
        Ok((cells, (st.occ[0], st.occ[1])))
    }
}

/// Parse the embedded object, create its maps and fill them from `filter` (the program
/// is loaded by [`load_program`], or by libxdp in [`attach_dispatched`]).
fn create_maps(object: &[u8], filter: &Filter, ifname: &str) -> anyhow::Result<Ebpf> {
    if filter.ipv4.len() > MAX_ADDRS || filter.ipv6.len() > MAX_ADDRS {
        bail!("at most {MAX_ADDRS} IPv4 and {MAX_ADDRS} IPv6 addresses can be served");
    }
    let mut ebpf = Ebpf::load(object).map_err(|e| {
        let hint = if errno_in_chain(&e) == Some(libc::EPERM) {
            ": permission denied, run as root (needs CAP_BPF and CAP_NET_ADMIN)"
        } else {
            ""
        };
        anyhow::Error::new(e).context(format!(
            "loading the XDP program's maps for {ifname} failed{hint}"
        ))
    })?;
    fill_maps(&mut ebpf, filter).with_context(|| format!("filling XDP maps for {ifname}"))?;
    seed_state(&mut ebpf).with_context(|| format!("seeding the XDP cookie state for {ifname}"))?;
    Ok(ebpf)
}

/// Load the object's XDP program into the kernel through aya.
fn load_program(ebpf: &mut Ebpf, ifname: &str) -> anyhow::Result<()> {
    let program = xdp_program(ebpf)?;
    program.load().map_err(|e| {
        let hint = if errno_in_chain(&e) == Some(libc::EPERM) {
            ": permission denied, run as root (needs CAP_BPF and CAP_NET_ADMIN)"
        } else {
            ""
        };
        anyhow::Error::new(e).context(format!(
            "the kernel refused to load the XDP program for {ifname}{hint}"
        ))
    })
}

/// Attach in `mode`; `Auto` tries native then falls back to generic, logging why. Returns
/// the mode in use.
fn with_fallback(
    ifname: &str,
    mode: XdpMode,
    mut attach: impl FnMut(XdpMode) -> anyhow::Result<()>,
) -> anyhow::Result<XdpMode> {
    match mode {
        XdpMode::Native | XdpMode::Generic => attach(mode).map(|()| mode),
        XdpMode::Auto => match attach(XdpMode::Native) {
            Ok(()) => Ok(XdpMode::Native),
            Err(native_err) => {
                tracing::warn!(
                    interface = ifname,
                    error = format!("{native_err:#}"),
                    "native XDP refused, falling back to generic (skb) mode"
                );
                attach(XdpMode::Generic)
                    .with_context(|| format!("native mode had failed too: {native_err:#}"))?;
                Ok(XdpMode::Generic)
            }
        },
    }
}

/// Every map of the object with its fd, for libxdp's copy of the object to use.
fn map_fds(ebpf: &Ebpf) -> anyhow::Result<Vec<(String, BorrowedFd<'_>)>> {
    use aya::maps::Map;
    ebpf.maps()
        .map(|(name, map)| {
            let data = match map {
                Map::Array(d)
                | Map::HashMap(d)
                | Map::PerCpuArray(d)
                | Map::PerCpuHashMap(d)
                | Map::LruHashMap(d)
                | Map::XskMap(d) => d,
                _ => bail!("map {name} has a type the dispatcher attachment does not share"),
            };
            Ok((name.to_string(), data.fd().as_fd()))
        })
        .collect()
}

/// Attach through libxdp's dispatcher in `mode` (`Native` or `Generic`) and log the chain.
/// When the kernel refuses the program (EINVAL: Linux 6.13+ refuses a component that
/// resizes frames in the slot of a libxdp dispatcher that does not), attach the build that
/// never resizes frames instead, with a warning.
fn attach_dispatched(
    maps: &[(String, BorrowedFd<'_>)],
    ifname: &str,
    ifindex: u32,
    mode: XdpMode,
) -> anyhow::Result<libxdp::Component> {
    let context = || {
        format!(
            "attaching XDP ({mode:?}) to {ifname} through libxdp's dispatcher (an existing \
             dispatcher in the other mode refuses; `xdp-loader status {ifname}` shows it)"
        )
    };
    let component = match libxdp::Component::attach(PROGRAM_OBJECT, maps, ifindex, mode) {
        Ok(c) => c,
        Err(e) if errno_in_chain(e.as_ref()) == Some(libc::EINVAL) => {
            tracing::warn!(
                interface = ifname,
                error = format!("{e:#}"),
                "libxdp's dispatcher refused synack's XDP program (Linux 6.13+ refuses a \
                 component that resizes frames in the slots of older libxdp dispatchers): \
                 attaching its build that never resizes frames, so the SYN offload answers \
                 only SYNs whose SYN-ACK has their length and drops forged ACKs whose reset \
                 has another length without it"
            );
            libxdp::Component::attach(PROGRAM_OBJECT_FIXED, maps, ifindex, mode)
                .with_context(|| format!("after the first build was refused: {e:#}"))
                .with_context(context)?
        }
        Err(e) => return Err(e.context(context())),
    };
    let chain = component.chain()?;
    let programs: Vec<String> = chain
        .programs
        .iter()
        .map(|p| format!("{} (id {}, priority {})", p.name, p.id, p.priority))
        .collect();
    if chain.legacy {
        tracing::warn!(
            interface = ifname,
            "libxdp attached synack's XDP program alone, without its dispatcher (the kernel \
             refused its freplace programs; libxdp's warnings above say why): other libxdp \
             programs cannot join it on {ifname}, and it stays attached if synack is killed"
        );
    } else {
        tracing::info!(
            interface = ifname,
            chain = programs.join(", "),
            "joined libxdp's XDP dispatcher: frames synack passes go on to the next program"
        );
    }
    Ok(component)
}

/// The XDP function of the object, as aya's `Xdp`.
fn xdp_program(ebpf: &mut Ebpf) -> anyhow::Result<&mut Xdp> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or_else(|| anyhow!("XDP object has no program {PROGRAM_NAME}"))?
        .try_into()
        .context("program synack_xdp is not an XDP program")
}

/// Apply `policy` to the XDP programs already attached to `ifname`.
fn make_room(ifname: &str, ifindex: u32, policy: XdpAttach) -> anyhow::Result<()> {
    let others = xdp_attached::query(ifindex)
        .with_context(|| format!("asking the kernel which XDP program {ifname} has"))?;
    if policy == XdpAttach::Dispatcher {
        return dispatcher_room(ifname, ifindex, &others);
    }
    if others.is_empty() {
        return Ok(());
    }
    if policy == XdpAttach::Exclusive {
        bail!("{}", xdp_attached::conflict_message(ifname, &others));
    }
    for p in &others {
        tracing::warn!(
            interface = ifname,
            "xdp.attach = \"replace\": detaching the XDP program already there ({p}); it no \
             longer sees any traffic on {ifname}"
        );
        xdp_attached::detach(ifindex, p)
            .with_context(|| format!("detaching {p} from {ifname} (xdp.attach = \"replace\")"))?;
    }
    Ok(())
}

/// `xdp.attach = "dispatcher"`: a libxdp dispatcher may be there (synack joins it); a
/// synack program that no process holds any more (left by a synack that was killed) is
/// removed; anything else is refused with the choices.
fn dispatcher_room(
    ifname: &str,
    ifindex: u32,
    others: &[xdp_attached::AttachedProgram],
) -> anyhow::Result<()> {
    libxdp::check_bpffs()?;
    for p in others {
        match p.name.as_deref() {
            Some(libxdp::DISPATCHER_NAME) => remove_stale_components(ifname, ifindex)?,
            Some(PROGRAM_NAME) if xdp_attached::holders(p.id).is_empty() => {
                tracing::warn!(
                    interface = ifname,
                    "removing synack's XDP program left attached on {ifname} ({p}) by a synack \
                     that did not exit (no process holds it)"
                );
                xdp_attached::detach(ifindex, p)
                    .with_context(|| format!("detaching the leftover {p} from {ifname}"))?;
            }
            Some(PROGRAM_NAME) => bail!(
                "another synack (pid {:?}) serves {ifname} ({p}); stop it first, or run on \
                 another interface",
                xdp_attached::holders(p.id)
            ),
            _ => bail!(
                "{}",
                xdp_attached::dispatcher_conflict_message(ifname, others)
            ),
        }
    }
    Ok(())
}

/// Remove synack programs from the dispatcher chain of `ifname` that no process holds
/// (their synack was killed: libxdp keeps the components pinned in bpffs); refuse when a
/// live synack holds one.
fn remove_stale_components(ifname: &str, ifindex: u32) -> anyhow::Result<()> {
    let Some(chain) = libxdp::chain(ifindex)? else {
        return Ok(());
    };
    for p in chain.programs.iter().filter(|p| p.name == PROGRAM_NAME) {
        let pids = xdp_attached::holders(p.id);
        if !pids.is_empty() {
            bail!(
                "another synack (pid {pids:?}) already serves {ifname} through libxdp's \
                 dispatcher (program id {}); stop it first, or run on another interface",
                p.id
            );
        }
        tracing::warn!(
            interface = ifname,
            "removing synack's XDP program id {} from the dispatcher chain of {ifname}: no \
             process holds it (left by a synack that was killed)",
            p.id
        );
        libxdp::detach_program(ifindex, p.id)
            .with_context(|| format!("removing the leftover program id {} from {ifname}", p.id))?;
    }
    Ok(())
}

/// Attach in one mode; the error says what to do.
fn attach_one(program: &mut Xdp, ifname: &str, mode: XdpMode) -> anyhow::Result<()> {
    let aya_mode = match mode {
        XdpMode::Generic => AyaXdpMode::Skb,
        XdpMode::Native | XdpMode::Auto => AyaXdpMode::Driver,
    };
    program.attach(ifname, aya_mode).map(|_| ()).map_err(|e| {
        let errno = errno_in_chain(&e);
        let hint = match (mode, errno) {
            (_, Some(libc::EPERM)) | (_, Some(libc::EACCES)) => {
                "permission denied: run as root (needs CAP_NET_ADMIN and CAP_BPF)".to_string()
            }
            (_, Some(libc::EBUSY)) | (_, Some(libc::EEXIST)) => format!(
                "another XDP program is already attached to {ifname}: remove it with \
                 `ip link set dev {ifname} xdp off` (or xdpgeneric off)"
            ),
            (XdpMode::Generic, _) => format!("generic XDP refused on {ifname}"),
            (_, Some(libc::ERANGE)) => format!(
                "native XDP refused on {ifname} (MTU too large for veth: use --xdp-mode generic \
                 or lower the MTU)"
            ),
            (_, Some(libc::EOPNOTSUPP)) => format!(
                "native XDP refused: the driver of {ifname} has no XDP support, use \
                 --xdp-mode generic"
            ),
            _ => format!(
                "native XDP refused on {ifname} (MTU too large for veth, or no driver support: \
                 use --xdp-mode generic or lower the MTU)"
            ),
        };
        anyhow::Error::new(e).context(format!("attaching XDP ({mode:?}) to {ifname}: {hint}"))
    })
}

/// Write the filter into the program's maps.
fn fill_maps(ebpf: &mut Ebpf, filter: &Filter) -> anyhow::Result<()> {
    {
        let map = ebpf.map_mut("addrs_v4").context("no map addrs_v4")?;
        let mut v4: HashMap<&mut MapData, u32, u8> = map.try_into().context("addrs_v4")?;
        for a in &filter.ipv4 {
            // Key is the address as it sits in the header (network order in memory).
            v4.insert(u32::from_ne_bytes(a.octets()), ADDR_OURS, 0)
                .with_context(|| format!("adding {a} to addrs_v4"))?;
        }
    }
    {
        let map = ebpf.map_mut("addrs_v6").context("no map addrs_v6")?;
        let mut v6: HashMap<&mut MapData, [u8; 16], u8> = map.try_into().context("addrs_v6")?;
        for a in &filter.ipv6 {
            v6.insert(a.octets(), ADDR_OURS, 0)
                .with_context(|| format!("adding {a} to addrs_v6"))?;
        }
    }
    {
        let map = ebpf.map_mut("ports").context("no map ports")?;
        let mut ports: Array<&mut MapData, u8> = map.try_into().context("ports")?;
        for p in &filter.ports {
            ports
                .set(u32::from(*p), 1, 0)
                .with_context(|| format!("adding port {p} to ports"))?;
        }
    }
    {
        let map = ebpf.map_mut("settings").context("no map settings")?;
        let mut settings: Array<&mut MapData, u32> = map.try_into().context("settings")?;
        settings
            .set(0, u32::from(filter.standalone), 0)
            .context("setting standalone flag")?;
    }
    Ok(())
}

/// A fresh random key for the occupancy hash, offload off.
fn seed_state(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let mut seed = [0u8; 16];
    getrandom::fill(&mut seed).map_err(|e| anyhow!("getrandom: {e}"))?;
    let map = ebpf
        .map_mut("cookie_state")
        .context("no map cookie_state")?;
    let mut array: Array<&mut MapData, StateValue> = map.try_into().context("cookie_state")?;
    let value = StateValue {
        occ: [
            u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(seed[8..].try_into().expect("8 bytes")),
        ],
        ..StateValue::default()
    };
    array.set(0, value, 0).context("writing cookie_state")
}

/// The first OS error code found in an error's source chain.
fn errno_in_chain(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded object is a BPF ELF that names the program and every map the loader
    /// uses, so a rename in the C source fails here instead of at attach time (no root).
    #[test]
    fn object_has_program_and_maps() {
        assert_eq!(&PROGRAM_OBJECT[..4], b"\x7fELF");
        // e_machine (offset 18, little endian on x86_64/aarch64 hosts) = EM_BPF (247).
        assert_eq!(
            u16::from_le_bytes([PROGRAM_OBJECT[18], PROGRAM_OBJECT[19]]),
            247
        );
        let has = |name: &str| {
            let needle = [name.as_bytes(), b"\0"].concat();
            PROGRAM_OBJECT
                .windows(needle.len())
                .any(|w| w == needle.as_slice())
        };
        for name in [
            PROGRAM_NAME,
            "xsks_map",
            "addrs_v4",
            "addrs_v6",
            "ports",
            "settings",
            "counters",
            "cookie_state",
            "listeners",
            "occupancy",
            "rst_bucket",
        ] {
            assert!(has(name), "symbol {name} missing from the XDP object");
        }
    }

    /// The value layouts match the C structs (`struct cookie_state`, `struct listener`).
    #[test]
    fn map_value_layouts_match_the_c_source() {
        assert_eq!(std::mem::size_of::<StateValue>(), 120);
        assert_eq!(std::mem::offset_of!(StateValue, has_prev), 64);
        assert_eq!(std::mem::offset_of!(StateValue, origin_ns), 72);
        assert_eq!(std::mem::offset_of!(StateValue, occ), 80);
        assert_eq!(std::mem::offset_of!(StateValue, enabled), 96);
        assert_eq!(std::mem::offset_of!(StateValue, rst_cost_ns), 104);
        assert_eq!(std::mem::offset_of!(StateValue, tai_minus_unix_ns), 112);
        assert_eq!(std::mem::size_of::<ListenerValue>(), 8);
    }

    /// The build for dispatcher slots that must not change packet data is the same program
    /// and maps without a call of bpf_xdp_adjust_tail (helper 65, `BPF_FUNC_xdp_adjust_tail`:
    /// the instruction `call 65` is 85 00 00 00 41 00 00 00), which the full build has.
    #[test]
    fn fixed_length_object_is_the_same_program_without_adjust_tail() {
        let adjust_tail = [0x85u8, 0, 0, 0, 0x41, 0, 0, 0];
        let calls = |obj: &[u8]| obj.windows(8).filter(|w| *w == adjust_tail).count();
        assert!(calls(PROGRAM_OBJECT) > 0);
        assert_eq!(calls(PROGRAM_OBJECT_FIXED), 0);
        for name in [
            PROGRAM_NAME,
            "xsks_map",
            "cookie_state",
            "occupancy",
            "counters",
        ] {
            let needle = [name.as_bytes(), b"\0"].concat();
            assert!(
                PROGRAM_OBJECT_FIXED
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice()),
                "symbol {name} missing from the fixed-length XDP object"
            );
        }
    }

    #[test]
    fn xdp_program_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<XdpProgram>();
    }
}
