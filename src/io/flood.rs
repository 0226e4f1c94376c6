//! The flood generator and the reply counter (`src/bpf/flood.bpf.c`), through aya.
//!
//! [`FloodProgram`]: an XDP program that `BPF_PROG_TEST_RUN` with
//! `BPF_F_TEST_XDP_LIVE_FRAMES` runs millions of times a second from one core (see
//! [`crate::io::test_run`]). Each run rewrites the template SYN into a SYN from the next
//! source of 198.19.0.0/16 and returns `XDP_TX`, so the kernel sends it out of the
//! interface given as `ingress_ifindex`; pacing and the packet and time bounds are enforced
//! inside the program, so no call overshoots them. [`FloodProgram::run_live`] loops calls
//! until the bounds are reached.
//!
//! [`ReplyCounter`]: an XDP program attached to the generator's interface that counts the
//! TCP frames of the flood prefix by kind (SYN-ACK, RST, SYN, other) and drops them: the
//! client kernel never sees the server's SYN-ACKs (so sends no RST back), and counting them
//! costs the server nothing.
//!
//! Control path only: errors are `anyhow` with context naming the interface and a remedy.

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::{Xdp, XdpMode as AyaXdpMode};
use aya::Ebpf;
use serde::Serialize;

use crate::io::test_run::{XdpTestResult, XdpTestRun, BPF_F_TEST_XDP_LIVE_FRAMES};
use crate::io::XdpMode;

/// The compiled object (built by `build.rs`), 8-byte aligned for the ELF parser.
static FLOOD_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flood.bpf.o"));

/// The generator's XDP function in the object.
const GEN_PROGRAM: &str = "flood_gen";
/// The counter's XDP function in the object.
const COUNT_PROGRAM: &str = "flood_count";

/// Length of the template frame the generator rewrites (`lab::syn_frame`: Ethernet,
/// 20-byte IPv4 header, TCP with MSS, SACK-permitted, timestamps, NOP, window scale).
pub const TEMPLATE_LEN: usize = 74;

/// Fewest runs per live call: each call has a fixed cost (~20 ms here), so short calls
/// waste the core (AFXDP-NOTES: 4,096 runs a call give only ~0.2 M/s).
pub const MIN_RUNS_PER_CALL: u32 = 250_000;
/// Most runs per live call (a call that only drops runs at tens of millions a second).
const MAX_RUNS_PER_CALL: u32 = 16_000_000;
/// How long one live call should last, so that `stop` and the bounds are seen promptly.
const CALL_TARGET: Duration = Duration::from_millis(100);

/// `struct flood_config` of the C source.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct RawConfig {
    interval_ps: u64,
    burst_ps: u64,
    max_packets: u64,
    deadline_ns: u64,
    first_index: u64,
    net: u32,
    seed: u32,
}

/// `struct flood_state` of the C source.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct RawState {
    sent: u64,
    paced: u64,
    bounded: u64,
    bad_frame: u64,
    tat_ps: u64,
    start_ns: u64,
    last_ns: u64,
}

/// `struct flood_template` of the C source: the template frame, padded to 80 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct RawTemplate {
    bytes: [u8; TEMPLATE_LEN + 6],
}

impl Default for RawTemplate {
    fn default() -> Self {
        RawTemplate {
            bytes: [0; TEMPLATE_LEN + 6],
        }
    }
}

// SAFETY: a byte array: every byte pattern is a valid value, no padding.
unsafe impl aya::Pod for RawTemplate {}
// SAFETY: both are #[repr(C)] structs of plain integers with no padding (u64 fields, then
// two u32 that fill the last 8 bytes), so every byte pattern is a valid value and the
// layout is the one the C source declares.
unsafe impl aya::Pod for RawConfig {}
// SAFETY: as above: seven u64 fields, no padding.
unsafe impl aya::Pod for RawState {}

/// How fast and how much the generator sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodSettings {
    /// Frames per second; `None` = as fast as the kernel takes them.
    pub rate: Option<f64>,
    /// How far a frame may run ahead of the rate's schedule, in frames. It has to cover
    /// the gap between two calls (their fixed cost) or the rate falls short of the target.
    pub burst: u64,
    /// Frames to send in all.
    pub max_packets: u64,
    /// Longest time to send.
    pub duration: Duration,
    /// Source index of the first frame (so that runs can use different tuples).
    pub first_index: u64,
    /// Mixed into every ISN.
    pub seed: u32,
    /// The /16 the sources come from (`lab::FLOOD_NET`): frame `i` comes from host
    /// `i % 65534 + 1` and port `1024 + (i / 65534) % 64000`, as `lab::flood_source(i)`.
    pub net: Ipv4Addr,
}

/// What the generator did (the program's state map).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FloodCounts {
    /// Frames sent (`XDP_TX`).
    pub sent: u64,
    /// Runs dropped because they were over the rate.
    pub paced: u64,
    /// Runs dropped because the packet bound or the deadline was reached.
    pub bounded: u64,
    /// Runs dropped because the frame did not have the template's layout.
    pub bad_frame: u64,
    /// Nanoseconds from the first run to the last frame sent (0 when none was).
    pub sending_ns: u64,
}

/// The outcome of [`FloodProgram::run_live`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FloodOutcome {
    /// The program's counts.
    pub counts: FloodCounts,
    /// Seconds from the first call to the end of the last one.
    pub secs: f64,
    /// Seconds the program was sending: from its first run to its last frame, plus one
    /// frame interval at the rate (so that `sent / sending_secs` is the rate offered).
    pub sending_secs: f64,
    /// Calls of `BPF_PROG_TEST_RUN`.
    pub calls: u64,
    /// Program runs in all (sent and dropped).
    pub runs: u64,
}

/// The loaded generator (not attached anywhere: it is run through `BPF_PROG_TEST_RUN`).
pub struct FloodProgram {
    ebpf: Ebpf,
}

impl std::fmt::Debug for FloodProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloodProgram").finish_non_exhaustive()
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns()`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The interface index of `ifname` in this thread's network namespace.
pub fn ifindex(ifname: &str) -> anyhow::Result<u32> {
    let c_name =
        CString::new(ifname).map_err(|_| anyhow!("interface name {ifname:?} contains a NUL"))?;
    // SAFETY: `c_name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        bail!("interface {ifname} not found in this network namespace: check `ip link show`");
    }
    Ok(index)
}

/// Load the object's maps and one of its programs.
fn load(program: &str) -> anyhow::Result<Ebpf> {
    let root_hint = "run as root (needs CAP_BPF and CAP_NET_ADMIN)";
    let mut ebpf = Ebpf::load(FLOOD_OBJECT)
        .with_context(|| format!("loading the flood object's maps failed: {root_hint}"))?;
    xdp(&mut ebpf, program)?
        .load()
        .with_context(|| format!("the kernel refused the XDP program {program}: {root_hint}"))?;
    Ok(ebpf)
}

fn xdp<'a>(ebpf: &'a mut Ebpf, program: &str) -> anyhow::Result<&'a mut Xdp> {
    ebpf.program_mut(program)
        .ok_or_else(|| anyhow!("the flood object has no program {program}"))?
        .try_into()
        .with_context(|| format!("{program} is not an XDP program"))
}

impl FloodProgram {
    /// Load the generator (root).
    pub fn load() -> anyhow::Result<FloodProgram> {
        Ok(FloodProgram {
            ebpf: load(GEN_PROGRAM)?,
        })
    }

    /// Set the rate and bounds, the frame every run starts from (a [`TEMPLATE_LEN`]-byte
    /// SYN; the program refuses, and counts as `bad_frame`, any other layout) and reset the
    /// counts; the deadline starts now.
    pub fn configure(&mut self, s: &FloodSettings, template: &[u8]) -> anyhow::Result<()> {
        if template.len() != TEMPLATE_LEN {
            bail!(
                "the flood template is {} bytes, the program rewrites {TEMPLATE_LEN}-byte SYNs",
                template.len()
            );
        }
        let mut tpl = RawTemplate::default();
        tpl.bytes[..TEMPLATE_LEN].copy_from_slice(template);
        {
            let map = self.ebpf.map_mut("flood_tpl").context("no map flood_tpl")?;
            let mut m: Array<&mut MapData, RawTemplate> = map.try_into().context("flood_tpl")?;
            m.set(0, tpl, 0).context("writing flood_tpl")?;
        }
        let interval_ps = match s.rate {
            Some(r) if r > 0.0 => (1e12 / r).round().max(1.0) as u64,
            _ => 0,
        };
        let raw = RawConfig {
            interval_ps,
            burst_ps: interval_ps.saturating_mul(s.burst.max(1)),
            max_packets: s.max_packets,
            deadline_ns: monotonic_ns().saturating_add(s.duration.as_nanos() as u64),
            first_index: s.first_index,
            net: u32::from(s.net) & 0xffff_0000,
            seed: s.seed,
        };
        {
            let map = self.ebpf.map_mut("flood_cfg").context("no map flood_cfg")?;
            let mut cfg: Array<&mut MapData, RawConfig> = map.try_into().context("flood_cfg")?;
            cfg.set(0, raw, 0).context("writing flood_cfg")?;
        }
        let map = self.ebpf.map_mut("flood_st").context("no map flood_st")?;
        let mut st: Array<&mut MapData, RawState> = map.try_into().context("flood_st")?;
        st.set(0, RawState::default(), 0)
            .context("resetting flood_st")
    }

    /// The counts so far.
    pub fn counts(&self) -> anyhow::Result<FloodCounts> {
        let map = self.ebpf.map("flood_st").context("no map flood_st")?;
        let st: Array<&MapData, RawState> = map.try_into().context("flood_st")?;
        let raw = st.get(&0, 0).context("reading flood_st")?;
        Ok(FloodCounts {
            sent: raw.sent,
            paced: raw.paced,
            bounded: raw.bounded,
            bad_frame: raw.bad_frame,
            sending_ns: raw.last_ns.saturating_sub(raw.start_ns),
        })
    }

    /// Run the generator through `BPF_PROG_TEST_RUN` (tests: without live frames, the
    /// rewritten frame comes back).
    pub fn test_run(&mut self, run: &XdpTestRun<'_>) -> anyhow::Result<XdpTestResult> {
        let program = xdp(&mut self.ebpf, GEN_PROGRAM)?;
        let fd = program.fd().context("the flood program has no fd")?;
        run.run(fd.as_fd())
            .context("BPF_PROG_TEST_RUN of the flood program failed (needs root)")
    }

    /// Configure with `s`, then send `template` (a [`TEMPLATE_LEN`]-byte SYN) out of
    /// interface `ifindex` with live frames until `s.max_packets` are sent, `s.duration`
    /// has passed, or `stop` is set. Calls of at least [`MIN_RUNS_PER_CALL`] runs, sized to
    /// last about 100 ms each.
    pub fn run_live(
        &mut self,
        template: &[u8],
        ifindex: u32,
        s: &FloodSettings,
        stop: &AtomicBool,
    ) -> anyhow::Result<FloodOutcome> {
        self.configure(s, template)?;
        let t0 = Instant::now();
        let mut repeat = MIN_RUNS_PER_CALL;
        let (mut calls, mut runs) = (0u64, 0u64);
        let mut counts = FloodCounts::default();
        while counts.sent < s.max_packets
            && t0.elapsed() < s.duration
            && !stop.load(Ordering::Relaxed)
        {
            let t = Instant::now();
            self.test_run(&XdpTestRun {
                frame: template,
                repeat,
                flags: BPF_F_TEST_XDP_LIVE_FRAMES,
                batch_size: 64,
                ingress_ifindex: ifindex,
                ..XdpTestRun::default()
            })
            .with_context(|| format!("live-frames test run on ifindex {ifindex}"))?;
            let took = t.elapsed().as_secs_f64().max(1e-6);
            calls += 1;
            runs += u64::from(repeat);
            counts = self.counts()?;
            if counts.bad_frame > 0 {
                bail!("the flood program refused the template frame (not the SYN layout)");
            }
            // Size the next call to last about CALL_TARGET at the rate this one ran.
            let next = f64::from(repeat) * CALL_TARGET.as_secs_f64() / took;
            repeat = (next as u64).clamp(u64::from(MIN_RUNS_PER_CALL), u64::from(MAX_RUNS_PER_CALL))
                as u32;
        }
        let interval = s.rate.filter(|r| *r > 0.0).map_or(0.0, |r| 1.0 / r);
        Ok(FloodOutcome {
            counts,
            sending_secs: counts.sending_ns as f64 / 1e9 + interval,
            secs: t0.elapsed().as_secs_f64(),
            calls,
            runs,
        })
    }
}

/// Indices of `count_counters` (`enum count_index` in the C source).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
enum CountIndex {
    SynAck = 0,
    Rst = 1,
    Syn = 2,
    Other = 3,
}

/// TCP frames of the flood prefix seen by the counter, by kind (all dropped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReplyCounts {
    /// SYN-ACKs.
    pub synack: u64,
    /// RSTs (with or without ACK).
    pub rst: u64,
    /// SYNs without ACK.
    pub syn: u64,
    /// Any other TCP frame.
    pub other: u64,
}

impl ReplyCounts {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &ReplyCounts) -> ReplyCounts {
        ReplyCounts {
            synack: self.synack.saturating_sub(earlier.synack),
            rst: self.rst.saturating_sub(earlier.rst),
            syn: self.syn.saturating_sub(earlier.syn),
            other: self.other.saturating_sub(earlier.other),
        }
    }
}

/// The counter, attached to an interface. Dropping it detaches the program.
pub struct ReplyCounter {
    ebpf: Ebpf,
    mode: XdpMode,
}

impl std::fmt::Debug for ReplyCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyCounter")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ReplyCounter {
    /// Attach the counter to `ifname` (this thread's namespace) for TCP frames to or from
    /// `prefix`/`len`. `Auto` tries native mode first, then generic.
    pub fn attach(
        ifname: &str,
        mode: XdpMode,
        prefix: Ipv4Addr,
        len: u8,
    ) -> anyhow::Result<ReplyCounter> {
        if len > 32 {
            bail!("prefix length {len}: give 0..=32");
        }
        ifindex(ifname)?;
        let mut ebpf = load(COUNT_PROGRAM)?;
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        };
        {
            let map = ebpf.map_mut("count_cfg").context("no map count_cfg")?;
            let mut cfg: Array<&mut MapData, u32> = map.try_into().context("count_cfg")?;
            // Both as they sit in the header (network order in memory).
            let net = u32::from(prefix) & mask;
            cfg.set(0, net.to_be(), 0).context("writing the prefix")?;
            cfg.set(1, mask.to_be(), 0).context("writing the mask")?;
        }
        let program = xdp(&mut ebpf, COUNT_PROGRAM)?;
        let tries: &[XdpMode] = match mode {
            XdpMode::Auto => &[XdpMode::Native, XdpMode::Generic],
            XdpMode::Native => &[XdpMode::Native],
            XdpMode::Generic => &[XdpMode::Generic],
        };
        let mut last = None;
        for &m in tries {
            let flags = match m {
                XdpMode::Generic => AyaXdpMode::Skb,
                _ => AyaXdpMode::Driver,
            };
            match program.attach(ifname, flags) {
                Ok(_) => return Ok(ReplyCounter { ebpf, mode: m }),
                Err(e) => last = Some((m, e)),
            }
        }
        let (m, e) = last.expect("at least one mode was tried");
        Err(anyhow::Error::new(e).context(format!(
            "attaching the reply counter ({m:?} XDP) to {ifname}: is another XDP program \
             attached (`ip link set dev {ifname} xdp off`)? are you root?"
        )))
    }

    /// The mode in use: `Native` or `Generic`.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// The counts so far, summed over CPUs.
    pub fn counts(&self) -> anyhow::Result<ReplyCounts> {
        let map = self
            .ebpf
            .map("count_counters")
            .context("no map count_counters")?;
        let c: PerCpuArray<&MapData, u64> = map.try_into().context("count_counters")?;
        let read = |i: CountIndex| -> anyhow::Result<u64> {
            Ok(c.get(&(i as u32), 0)
                .with_context(|| format!("reading counter {i:?}"))?
                .iter()
                .sum())
        };
        Ok(ReplyCounts {
            synack: read(CountIndex::SynAck)?,
            rst: read(CountIndex::Rst)?,
            syn: read(CountIndex::Syn)?,
            other: read(CountIndex::Other)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded object names both programs and every map the loader uses (no root).
    #[test]
    fn object_has_programs_and_maps() {
        assert_eq!(&FLOOD_OBJECT[..4], b"\x7fELF");
        let has = |name: &str| {
            let needle = [name.as_bytes(), b"\0"].concat();
            FLOOD_OBJECT
                .windows(needle.len())
                .any(|w| w == needle.as_slice())
        };
        for name in [
            GEN_PROGRAM,
            COUNT_PROGRAM,
            "flood_cfg",
            "flood_st",
            "count_cfg",
            "count_counters",
        ] {
            assert!(has(name), "symbol {name} missing from the flood object");
        }
    }

    #[test]
    fn raw_layouts_match_the_c_structs() {
        assert_eq!(std::mem::size_of::<RawConfig>(), 48);
        assert_eq!(std::mem::offset_of!(RawConfig, net), 40);
        assert_eq!(std::mem::size_of::<RawState>(), 56);
    }
}
