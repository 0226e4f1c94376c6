//! `synack gen --live-flood`: a SYN flood that out-runs the server, from one core.
//!
//! The XDP program of [`crate::io::flood`] is run with `BPF_PROG_TEST_RUN` and live frames
//! out of the generator's interface: each run rewrites a Linux-like SYN (MSS 1460, SACK,
//! timestamps, window scale 7, so cookies carry timestamps) into a SYN from the next
//! source of 198.19.0.0/16 and sends it, paced inside the program to `--rate` and bounded
//! by `--packets` and `--secs`. The reply counter of the same object, attached to the same
//! interface, counts the SYN-ACKs (and RSTs) that come back and drops them, so the client
//! kernel never answers them. The report says what was offered and what was answered.
//!
//! The target must route 198.19.0.0/16 back to this interface (a Linux target:
//! `ip route add 198.19.0.0/16 via <our address>`; synack answers on L2 and needs none).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::gen::run::resolve_mac;
use crate::io::flood::{
    ifindex, FloodCounts, FloodProgram, FloodSettings, ReplyCounter, ReplyCounts,
};
use crate::io::sys::interface_mac;
use crate::io::XdpMode;
use crate::lab::{syn_frame, FLOOD_NET};
use crate::ops::write_json_atomic;

/// Burst (frames a run may go ahead of the schedule) when none is given: covers the ~20 ms
/// between two live calls at 2.5 M/s, so the rate is held across the gaps.
pub const DEFAULT_BURST_SECS: f64 = 0.02;

/// Everything `synack gen --live-flood` needs.
#[derive(Debug, Clone)]
pub struct LiveFloodOptions {
    /// Interface to send from (its kernel must reach the target on-link, for the MAC).
    pub interface: String,
    /// Target address and port (IPv4).
    pub target: SocketAddrV4,
    /// Target MAC; `None` resolves it through the neighbour table.
    pub target_mac: Option<[u8; 6]>,
    /// SYNs per second; `None` = flat out.
    pub rate: Option<f64>,
    /// Frames a run may go ahead of the schedule; `None` = [`DEFAULT_BURST_SECS`] of rate.
    pub burst: Option<u64>,
    /// Most SYNs to send.
    pub packets: u64,
    /// Longest time to send.
    pub secs: Duration,
    /// How long to keep counting replies after the last SYN.
    pub drain: Duration,
    /// Attach the reply counter (off: someone else counts, e.g. a counter already
    /// attached to the interface).
    pub count_replies: bool,
    /// XDP mode of the reply counter.
    pub counter_mode: XdpMode,
    /// CPU to pin the generator to.
    pub cpu: Option<usize>,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
}

/// The report of a live flood.
#[derive(Debug, Clone, Serialize)]
pub struct LiveFloodReport {
    /// "live-flood".
    pub mode: &'static str,
    /// Target address:port.
    pub target: String,
    /// Interface sent from.
    pub interface: String,
    /// CPU the generator was pinned to.
    pub cpu: Option<usize>,
    /// The rate asked for, SYNs per second (`None`: flat out).
    pub rate_target: Option<f64>,
    /// Burst allowed, frames.
    pub burst: u64,
    /// The packet bound.
    pub packets_limit: u64,
    /// The time bound, seconds.
    pub secs_limit: f64,
    /// SYNs sent (the program's XDP_TX count): what was offered.
    pub sent: u64,
    /// Seconds spent sending: the program's first run to its last frame (plus one interval).
    pub send_secs: f64,
    /// Seconds from the first live call to the end of the last.
    pub call_secs: f64,
    /// `sent / send_secs`.
    pub offered_per_sec: f64,
    /// `offered_per_sec / rate_target - 1` (how far the rate was from the target).
    pub rate_error: Option<f64>,
    /// The generator's counts (sent, dropped by pacing, by the bounds).
    pub generator: FloodCounts,
    /// Live calls and program runs.
    pub calls: u64,
    /// Program runs in all.
    pub runs: u64,
    /// XDP mode of the reply counter (`None` when not attached).
    pub counter_mode: Option<XdpMode>,
    /// Replies counted from the first SYN to the end of the drain.
    pub replies: Option<ReplyCounts>,
    /// `replies.synack / send_secs`.
    pub answered_per_sec: Option<f64>,
    /// `replies.synack / sent`.
    pub answered_fraction: Option<f64>,
}

impl LiveFloodReport {
    /// The human table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut line = |k: &str, v: String| t.push_str(&format!("  {k:<22} {v}\n"));
        line("mode", format!("{} -> {}", self.mode, self.target));
        line(
            "where",
            format!(
                "{}, cpu {}",
                self.interface,
                self.cpu.map_or("any".into(), |c| c.to_string())
            ),
        );
        line(
            "rate",
            match self.rate_target {
                Some(r) => format!("{r:.0}/s asked, burst {}", self.burst),
                None => "flat out".into(),
            },
        );
        line(
            "offered",
            format!(
                "{} SYNs in {:.3} s ({:.0}/s{})",
                self.sent,
                self.send_secs,
                self.offered_per_sec,
                self.rate_error.map_or(String::new(), |e| format!(
                    ", {:+.1}% of the rate",
                    e * 100.0
                ))
            ),
        );
        if let (Some(r), Some(a), Some(f)) =
            (&self.replies, self.answered_per_sec, self.answered_fraction)
        {
            line(
                "answered",
                format!("{} SYN-ACKs ({a:.0}/s, {:.1}%)", r.synack, f * 100.0),
            );
            line("other replies", format!("rst {} other {}", r.rst, r.other));
        }
        line(
            "program",
            format!(
                "{} calls, {} runs; paced {} bounded {}",
                self.calls, self.runs, self.generator.paced, self.generator.bounded
            ),
        );
        t
    }
}

/// The template SYN, from our MAC to the target's; the program rewrites its source.
fn template(opts: &LiveFloodOptions) -> Result<Vec<u8>> {
    let local_mac = interface_mac(&opts.interface)?;
    let remote_mac = match opts.target_mac {
        Some(m) => m,
        None => resolve_mac((*opts.target.ip()).into(), &opts.interface)?,
    };
    let mut frame = vec![0u8; 128];
    let len = syn_frame(
        &mut frame,
        local_mac,
        remote_mac,
        Ipv4Addr::from(u32::from(FLOOD_NET) | 1),
        *opts.target.ip(),
        1024,
        opts.target.port(),
        1,
    );
    frame.truncate(len);
    Ok(frame)
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_ne_bytes(b)
}

/// Send the flood and count the replies.
pub fn run(opts: &LiveFloodOptions, stop: &AtomicBool) -> Result<LiveFloodReport> {
    if let Some(cpu) = opts.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            bail!("could not pin the generator to CPU {cpu}: does it exist?");
        }
    }
    let frame = template(opts)?;
    let index = ifindex(&opts.interface)?;
    let mut prog = FloodProgram::load().context("loading the flood generator")?;
    let counter = if opts.count_replies {
        Some(
            ReplyCounter::attach(&opts.interface, opts.counter_mode, FLOOD_NET, 16)
                .context("attaching the reply counter (--no-reply-counter to skip)")?,
        )
    } else {
        None
    };
    let burst = opts.burst.unwrap_or_else(|| match opts.rate {
        Some(r) => (r * DEFAULT_BURST_SECS).ceil().max(1.0) as u64,
        None => 1,
    });
    let r = random_u64();
    let settings = FloodSettings {
        rate: opts.rate,
        burst,
        max_packets: opts.packets,
        duration: opts.secs,
        // Any start in the 4-billion-tuple cycle; the program wraps it.
        first_index: r >> 32,
        seed: r as u32,
        net: FLOOD_NET,
    };
    let before = match &counter {
        Some(c) => Some(c.counts()?),
        None => None,
    };
    tracing::info!(interface = %opts.interface, target = %opts.target, rate = ?opts.rate,
        packets = opts.packets, secs = opts.secs.as_secs_f64(), "live flood starting");
    let outcome = prog
        .run_live(&frame, index, &settings, stop)
        .with_context(|| format!("live flood out of {}", opts.interface))?;
    let drain_end = Instant::now() + opts.drain;
    while Instant::now() < drain_end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let replies = match (&counter, before) {
        (Some(c), Some(b)) => Some(c.counts()?.since(&b)),
        _ => None,
    };
    let sent = outcome.counts.sent;
    let secs = outcome.sending_secs.max(1e-9);
    let offered = sent as f64 / secs;
    let report = LiveFloodReport {
        mode: "live-flood",
        target: opts.target.to_string(),
        interface: opts.interface.clone(),
        cpu: opts.cpu,
        rate_target: opts.rate,
        burst,
        packets_limit: opts.packets,
        secs_limit: opts.secs.as_secs_f64(),
        sent,
        send_secs: outcome.sending_secs,
        call_secs: outcome.secs,
        offered_per_sec: offered,
        rate_error: opts.rate.map(|r| offered / r - 1.0),
        generator: outcome.counts,
        calls: outcome.calls,
        runs: outcome.runs,
        counter_mode: counter.as_ref().map(|c| c.mode()),
        answered_per_sec: replies.map(|r| r.synack as f64 / secs),
        answered_fraction: replies.map(|r| r.synack as f64 / sent.max(1) as f64),
        replies,
    };
    if let Some(path) = &opts.json {
        write_json_atomic(path, &report)
            .with_context(|| format!("writing --json {}", path.display()))?;
    }
    Ok(report)
}
