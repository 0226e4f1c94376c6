//! Loader for the XDP steering program (`src/bpf/synack.bpf.c`), through aya.
//!
//! The program redirects TCP for our (address, port) pairs into the AF_XDP socket of the
//! receiving queue and passes everything else to the kernel. It is attached through a
//! `bpf_link`, so it detaches when [`XdpProgram`] is dropped and also when the process dies
//! (even on SIGKILL: the kernel closes the link's file descriptor).
//!
//! Control path only: errors are `anyhow` with context naming the interface and a remedy.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, RawFd};

use anyhow::{anyhow, bail, Context};
use aya::maps::{Array, HashMap, MapData, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode as AyaXdpMode};
use aya::Ebpf;
use serde::Serialize;

use crate::io::test_run::{XdpTestResult, XdpTestRun};
use crate::io::{xdp_attached, XdpAttach, XdpMode};

/// The compiled program (built by `build.rs`), 8-byte aligned for the ELF parser.
static PROGRAM_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/synack.bpf.o"));

/// Name of the XDP function in the object.
const PROGRAM_NAME: &str = "synack_xdp";

/// Capacity of `xsks_map` (one slot per rx queue) in the C source.
const MAX_QUEUES: u32 = 64;

/// Capacity of `addrs_v4` and `addrs_v6` in the C source.
const MAX_ADDRS: usize = 256;

/// Value stored for an address of ours (bit 0 = ours; other bits reserved).
const ADDR_OURS: u8 = 1;

/// Indices of the per-CPU `counters` map (`enum counter_index` in the C source).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
enum CounterIndex {
    Redirected = 0,
    Passed = 1,
    RedirectFailed = 2,
    ArpRedirected = 3,
    NdpRedirected = 4,
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
}

/// The loaded and attached XDP program. Dropping it detaches the program.
pub struct XdpProgram {
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
    /// choices; `Replace` detaches it, with a warning naming it, then attaches ours.
    pub fn attach_with(
        ifname: &str,
        mode: XdpMode,
        policy: XdpAttach,
        filter: &Filter,
    ) -> anyhow::Result<XdpProgram> {
        let ifindex = xdp_attached::ifindex(ifname)?;
        make_room(ifname, ifindex, policy)?;
        let mut ebpf = load_object(filter, ifname)?;
        let program = xdp_program(&mut ebpf)?;
        let used = match mode {
            XdpMode::Native => {
                attach_one(program, ifname, XdpMode::Native)?;
                XdpMode::Native
            }
            XdpMode::Generic => {
                attach_one(program, ifname, XdpMode::Generic)?;
                XdpMode::Generic
            }
            XdpMode::Auto => match attach_one(program, ifname, XdpMode::Native) {
                Ok(()) => XdpMode::Native,
                Err(native_err) => {
                    tracing::warn!(
                        interface = ifname,
                        error = format!("{native_err:#}"),
                        "native XDP refused, falling back to generic (skb) mode"
                    );
                    attach_one(program, ifname, XdpMode::Generic)
                        .with_context(|| format!("native mode had failed too: {native_err:#}"))?;
                    XdpMode::Generic
                }
            },
        };
        tracing::info!(interface = ifname, mode = ?used, "XDP program attached");
        Ok(XdpProgram {
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
        let mut ebpf = load_object(filter, "(detached)")?;
        xdp_program(&mut ebpf)?;
        Ok(XdpProgram {
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
        })
    }
}

/// Parse the embedded object, create its maps and fill them from `filter`.
fn load_object(filter: &Filter, ifname: &str) -> anyhow::Result<Ebpf> {
    if filter.ipv4.len() > MAX_ADDRS || filter.ipv6.len() > MAX_ADDRS {
        bail!("at most {MAX_ADDRS} IPv4 and {MAX_ADDRS} IPv6 addresses can be served");
    }
    let mut ebpf = Ebpf::load(PROGRAM_OBJECT).map_err(|e| {
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
    let program = xdp_program(&mut ebpf)?;
    program.load().map_err(|e| {
        let hint = if errno_in_chain(&e) == Some(libc::EPERM) {
            ": permission denied, run as root (needs CAP_BPF and CAP_NET_ADMIN)"
        } else {
            ""
        };
        anyhow::Error::new(e).context(format!(
            "the kernel refused to load the XDP program for {ifname}{hint}"
        ))
    })?;
    Ok(ebpf)
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
        ] {
            assert!(has(name), "symbol {name} missing from the XDP object");
        }
    }

    #[test]
    fn xdp_program_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<XdpProgram>();
    }
}
