//! The control path of `synack gen`: attach the XDP program for the source range, open
//! the AF_XDP socket, find the target's MAC, run the [`Driver`] loop pinned to one CPU,
//! and report (a human table on stdout, JSON on request).

use crate::gen::client::{Client, ClientConfig, CloseOrder, GenStats, Hold};
use crate::gen::driver::{Driver, Pace};
use crate::gen::SourceRange;
use crate::io::afxdp::{AfXdpConfig, AfXdpPort};
use crate::io::bpf::{Filter, XdpProgram};
use crate::io::sys::interface_mac;
use crate::io::{Port, PortStats, XdpMode};
use crate::ops::write_json_atomic;
use crate::table::L2Path;
use crate::wire::{format_mac, parse_mac};
use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything `synack gen` needs.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Interface to send on (the generator's veth end, or a NIC).
    pub interface: String,
    /// NIC queue to bind to (replies must arrive on it).
    pub queue: u32,
    /// Target MAC; `None` resolves it through the kernel's neighbour table.
    pub target_mac: Option<[u8; 6]>,
    /// Per-connection behaviour.
    pub client: ClientConfig,
    /// Rate, count, in-flight bound, batch.
    pub pace: Pace,
    /// Longest time new connections are started.
    pub duration: Duration,
    /// Longest time open connections may still finish after that.
    pub drain: Duration,
    /// CPU to pin the loop to.
    pub cpu: Option<usize>,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// UMEM frames.
    pub frame_count: u32,
    /// Ring entries.
    pub ring_size: u32,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// From an HDR histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Rates per second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rates {
    /// Connections (or SYNs) started per second, over the opening window.
    pub attempted_per_sec: f64,
    /// SYN-ACKs received per second, over the opening window.
    pub synack_per_sec: f64,
    /// Connections completed per second, from the first SYN to the last completion.
    pub completed_per_sec: f64,
    /// Connections failed per second, over the whole run.
    pub failed_per_sec: f64,
}

/// Steady concurrency: what was held (`--concurrency`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SteadyReport {
    /// Connections to keep open.
    pub connections: usize,
    /// Time between requests on a connection, ms (`None`: idle connections).
    pub interval_ms: Option<u64>,
    /// Seconds until the target was first reached (from the first SYN).
    pub ramp_secs: Option<f64>,
    /// Connections established, sampled every 100 ms after the ramp: mean, min, max.
    pub active_mean: f64,
    /// Fewest established in a sample after the ramp.
    pub active_min: usize,
    /// Most established in a sample.
    pub active_max: usize,
    /// Samples after the ramp.
    pub samples: u64,
    /// Connections opened per second over the hold window (the first ones and their
    /// replacements).
    pub opens_per_sec: f64,
    /// Connections that ended per second over the hold window (closed by the server, reset,
    /// timed out), each replaced.
    pub closes_per_sec: f64,
    /// Request → complete reply latency, µs.
    pub request_us: Percentiles,
}

/// Samples of the established count during a steady run.
#[derive(Debug, Default)]
struct ActiveSamples {
    ramp_us: Option<u64>,
    sum: u64,
    n: u64,
    min: usize,
    max: usize,
    next_us: u64,
}

impl ActiveSamples {
    /// Every 100 ms: the established count; samples before the target is reached are the
    /// ramp and only count towards the maximum.
    fn sample(&mut self, now_us: u64, first_us: Option<u64>, active: usize, target: usize) {
        if now_us < self.next_us {
            return;
        }
        self.next_us = now_us + 100_000;
        self.max = self.max.max(active);
        if self.ramp_us.is_none() && active >= target {
            self.ramp_us = Some(now_us.saturating_sub(first_us.unwrap_or(now_us)));
        }
        if self.ramp_us.is_some() {
            self.min = if self.n == 0 {
                active
            } else {
                self.min.min(active)
            };
            self.sum += active as u64;
            self.n += 1;
        }
    }
}

/// The report `synack gen` prints and writes.
#[derive(Debug, Clone, Serialize)]
pub struct GenReport {
    /// "syn-flood", "connect", "request" or "steady".
    pub mode: &'static str,
    /// `--rate`, new connections (or SYNs) per second.
    pub rate_target: Option<u64>,
    /// `attempted_per_sec / rate_target - 1`: how far the opening rate was from `--rate`.
    pub rate_error: Option<f64>,
    /// Steady concurrency (`--concurrency`).
    pub steady: Option<SteadyReport>,
    /// Target address:port.
    pub target: String,
    /// Interface used.
    pub interface: String,
    /// XDP mode in use.
    pub xdp_mode: XdpMode,
    /// CPU the loop was pinned to.
    pub cpu: Option<usize>,
    /// Who closed first.
    pub close: CloseOrder,
    /// Source addresses × ports.
    pub source_tuples: u64,
    /// Seconds from the first SYN to the end of the opening window.
    pub open_secs: f64,
    /// Seconds from the first SYN to the end of the run.
    pub elapsed_secs: f64,
    /// Share of loop time spent in iterations that had work, 0..1.
    pub busy_fraction: f64,
    /// Counts.
    pub stats: GenStats,
    /// Rates per second.
    pub rates: Rates,
    /// SYN → SYN-ACK latency, µs (first SYN, so a retransmission shows as +1 s).
    pub handshake_us: Percentiles,
    /// SYN → clean close latency, µs.
    pub lifetime_us: Percentiles,
    /// Frames received and sent.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// AF_XDP socket statistics.
    pub xdp_socket: PortStats,
}

/// The human table being written: one `  key  value` line at a time.
#[derive(Default)]
struct Lines(String);

impl Lines {
    fn line(&mut self, k: &str, v: String) {
        self.0.push_str(&format!("  {k:<26} {v}\n"));
    }
}

impl GenReport {
    /// The human table.
    pub fn table(&self) -> String {
        let mut t = Lines::default();
        self.run_lines(&mut t);
        if let Some(st) = &self.steady {
            steady_lines(&mut t, st, &self.stats);
        }
        self.outcome_lines(&mut t);
        self.latency_lines(&mut t);
        self.frames_line(&mut t);
        t.0
    }

    /// What ran where, for how long, and how many were started.
    fn run_lines(&self, t: &mut Lines) {
        t.line("mode", format!("{} -> {}", self.mode, self.target));
        let cpu = self.cpu.map_or("any".into(), |c| c.to_string());
        t.line(
            "where",
            format!("{} ({:?} XDP), cpu {cpu}", self.interface, self.xdp_mode),
        );
        t.line(
            "time",
            format!(
                "{:.3} s opening, {:.3} s in all, loop busy {:.0}%",
                self.open_secs,
                self.elapsed_secs,
                self.busy_fraction * 100.0
            ),
        );
        let off_rate = self
            .rate_error
            .map_or(String::new(), |e| format!(", {:+.1}% of --rate", e * 100.0));
        t.line(
            "attempted",
            format!(
                "{} ({:.0}/s{off_rate})",
                self.stats.attempted, self.rates.attempted_per_sec
            ),
        );
    }

    /// SYN-ACKs, established, replies, completed, failed and retransmitted.
    fn outcome_lines(&self, t: &mut Lines) {
        let s = &self.stats;
        t.line(
            "SYN-ACKs received",
            format!("{} ({:.0}/s)", s.synack_received, self.rates.synack_per_sec),
        );
        if self.mode != "syn-flood" {
            t.line("established", s.established.to_string());
            if self.mode == "request" {
                t.line("replies", s.replies.to_string());
            }
            t.line(
                "completed",
                format!("{} ({:.0}/s)", s.completed, self.rates.completed_per_sec),
            );
        }
        t.line(
            "failed",
            format!(
                "{} (reset {}, timeout {}, no reply {}), unfinished {}",
                s.failed(),
                s.failed_reset,
                s.failed_timeout,
                s.failed_no_reply,
                s.unfinished
            ),
        );
        t.line(
            "SYN retransmits",
            format!("{} of {} SYNs sent", s.syn_retransmits, s.syn_sent),
        );
    }

    /// Handshake and connection latency percentiles, when there are samples.
    fn latency_lines(&self, t: &mut Lines) {
        let h = &self.handshake_us;
        if h.count > 0 {
            t.line(
                "handshake us p50/90/99/99.9",
                format!(
                    "{}/{}/{}/{} (max {}, n {})",
                    h.p50, h.p90, h.p99, h.p999, h.max, h.count
                ),
            );
        }
        let l = &self.lifetime_us;
        if l.count > 0 {
            t.line(
                "connection us p50/90/99",
                format!("{}/{}/{} (max {})", l.p50, l.p90, l.p99, l.max),
            );
        }
    }

    /// Frames, socket drops and the generator's own drops by reason.
    fn frames_line(&self, t: &mut Lines) {
        let drops: Vec<String> = self
            .stats
            .drops_by_name()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        t.line(
            "frames",
            format!(
                "rx {} tx {}; xsk rx_dropped {} fill_empty {}; drops [{}]",
                self.rx_frames,
                self.tx_frames,
                self.xdp_socket.rx_dropped,
                self.xdp_socket.rx_fill_ring_empty_descs,
                drops.join(" ")
            ),
        );
    }
}

/// What a steady run held, its opens and closes, and its request latency.
fn steady_lines(t: &mut Lines, st: &SteadyReport, s: &GenStats) {
    let ramp = st
        .ramp_secs
        .map_or("never reached".into(), |r| format!("{r:.3} s"));
    t.line(
        "held",
        format!(
            "{} wanted; established mean {:.1} min {} max {} ({} samples, ramp {ramp})",
            st.connections, st.active_mean, st.active_min, st.active_max, st.samples,
        ),
    );
    t.line(
        "opens, closes",
        format!(
            "{:.1}/s, {:.1}/s; requests {} replies {}",
            st.opens_per_sec, st.closes_per_sec, s.requests, s.replies
        ),
    );
    let r = &st.request_us;
    if r.count > 0 {
        t.line(
            "request us p50/90/99",
            format!(
                "{}/{}/{} (max {}, n {})",
                r.p50, r.p90, r.p99, r.max, r.count
            ),
        );
    }
}

/// The target's MAC from the kernel's neighbour table (in this network namespace). When it
/// is not there, a UDP datagram to the target's discard port makes the kernel resolve it
/// (ARP or NDP); the answer is awaited for up to 2 s. The AF_XDP socket cannot see that
/// answer itself: the XDP program steers only ARP *requests* for our addresses to it.
pub fn resolve_mac(target: IpAddr, ifname: &str) -> Result<[u8; 6]> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut poked = false;
    loop {
        if let Some(mac) = neighbour(target, ifname) {
            return Ok(mac);
        }
        if Instant::now() >= deadline {
            bail!(
                "no neighbour entry for {target} on {ifname}: is the target on-link from \
                 {ifname}? give it with --target-mac"
            );
        }
        if !poked {
            poked = true;
            let bind = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let sock = UdpSocket::bind(bind).context("UDP socket to resolve the target MAC")?;
            let _ = sock.send_to(b"synack gen: resolving the target MAC", (target, 9));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn neighbour(target: IpAddr, ifname: &str) -> Option<[u8; 6]> {
    let out = std::process::Command::new("ip")
        .args(["neigh", "show", &target.to_string(), "dev", ifname])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "198.18.0.1 lladdr 02:..:.. REACHABLE"
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "lladdr" {
            return words.next().and_then(parse_mac);
        }
    }
    None
}

/// The XDP filter for a source range: replies to our source addresses and ports come to
/// the AF_XDP socket; standalone mode brings ARP requests for the source addresses too.
pub fn source_filter(sources: &SourceRange) -> Filter {
    Filter {
        ipv4: sources
            .addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                _ => None,
            })
            .collect(),
        ipv6: sources
            .addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(a) => Some(*a),
                _ => None,
            })
            .collect(),
        ports: (sources.ports.0..=sources.ports.1).collect(),
        standalone: true,
    }
}

/// Run the generator until the count is started and finished, or the duration and drain
/// have passed, or `stop` is set.
pub fn run(opts: &GenOptions, stop: Arc<AtomicBool>) -> Result<GenReport> {
    pin_to_cpu(opts.cpu)?;
    let (prog, port) = open_socket(opts)?;
    let mode = prog.mode();
    let l2 = target_path(opts, mode)?;
    let mut driver = Driver::new(Client::new(opts.client.clone()), port, l2, opts.pace);
    let run = RunLoop::drive(opts, &mut driver, &stop);
    let report = report(opts, mode, &driver, &run);
    if let Some(path) = &opts.json {
        write_json_atomic(path, &report)
            .with_context(|| format!("writing --json {}", path.display()))?;
    }
    drop(driver);
    drop(prog);
    Ok(report)
}

/// Pin the calling thread (the generator's loop) to `cpu`, if given.
fn pin_to_cpu(cpu: Option<usize>) -> Result<()> {
    if let Some(cpu) = cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            bail!("could not pin the generator to CPU {cpu}: does it exist?");
        }
    }
    Ok(())
}

/// Attach the XDP program for the source range and open the AF_XDP socket it redirects to.
fn open_socket(opts: &GenOptions) -> Result<(XdpProgram, AfXdpPort)> {
    let filter = source_filter(&opts.client.sources);
    let mut prog = XdpProgram::attach(&opts.interface, opts.xdp_mode, &filter)
        .with_context(|| format!("attaching the XDP program to {}", opts.interface))?;
    let port = AfXdpPort::open(
        &opts.interface,
        opts.queue,
        &AfXdpConfig {
            frame_size: 2048,
            frame_count: opts.frame_count,
            ring_size: opts.ring_size,
            busy_poll: false,
            mode: prog.mode(),
            zerocopy: crate::io::ZeroCopy::Auto,
        },
    )
    .with_context(|| {
        format!(
            "opening the AF_XDP socket on {} queue {}",
            opts.interface, opts.queue
        )
    })?;
    prog.register_socket(opts.queue, port.fd())?;
    Ok((prog, port))
}

/// The link-layer path to the target (our MAC, its MAC given or resolved), logged with the
/// rest of what the generator is about to do.
fn target_path(opts: &GenOptions, mode: XdpMode) -> Result<L2Path> {
    let local_mac = interface_mac(&opts.interface)?;
    let remote_mac = match opts.target_mac {
        Some(m) => m,
        None => resolve_mac(opts.client.target, &opts.interface)?,
    };
    tracing::info!(
        interface = %opts.interface,
        xdp_mode = ?mode,
        target = %format!("{}:{}", opts.client.target, opts.client.target_port),
        target_mac = %format_mac(&remote_mac),
        tuples = opts.client.sources.len(),
        "generator ready"
    );
    Ok(L2Path {
        local_mac,
        remote_mac,
        vlan: None,
    })
}

/// The generator's loop and what it measured: when the opening window ended, what a steady
/// run sampled, how busy the loop was. Times are µs since `start`.
struct RunLoop {
    start: Instant,
    /// When new connections stopped being started.
    open_end: Option<u64>,
    /// When the loop ended.
    end_us: u64,
    samples: ActiveSamples,
    /// Steady mode: the counts when the opening window ended (before the final closes).
    at_open_end: Option<GenStats>,
    last_rx: u64,
    idle_polls: u32,
    busy: Duration,
}

impl RunLoop {
    /// Poll `driver` until the run is over (see [`RunLoop::done`]), then finish the client.
    fn drive<P: Port>(opts: &GenOptions, driver: &mut Driver<P>, stop: &AtomicBool) -> RunLoop {
        let mut run = RunLoop {
            start: Instant::now(),
            open_end: None,
            end_us: 0,
            samples: ActiveSamples::default(),
            at_open_end: None,
            last_rx: 0,
            idle_polls: 0,
            busy: Duration::ZERO,
        };
        loop {
            let t0 = Instant::now();
            let now = run.us(t0);
            let opening = run.opening(now, opts, driver, stop);
            if opts.client.hold.is_some() {
                run.steady(now, opening, opts, driver);
            }
            run.poll(t0, now, opening, driver);
            if run.done(now, opts, driver, stop) {
                break;
            }
        }
        run.end_us = run.us(Instant::now());
        driver.client.finish();
        run
    }

    fn us(&self, t: Instant) -> u64 {
        t.duration_since(self.start).as_micros() as u64
    }

    /// Whether new connections may still be started at `now` (not stopped, within the
    /// duration, not all started); the first time not, the opening window ends.
    fn opening<P: Port>(
        &mut self,
        now: u64,
        opts: &GenOptions,
        driver: &Driver<P>,
        stop: &AtomicBool,
    ) -> bool {
        let opening = self.open_end.is_none()
            && !stop.load(Ordering::Relaxed)
            && now < opts.duration.as_micros() as u64
            && !driver.all_started();
        if !opening && self.open_end.is_none() {
            self.open_end = Some(now);
        }
        opening
    }

    /// Steady mode: sample the established count while opening; when opening ends, keep
    /// the counts of the hold window and close every connection.
    fn steady<P: Port>(
        &mut self,
        now: u64,
        opening: bool,
        opts: &GenOptions,
        driver: &mut Driver<P>,
    ) {
        if opening {
            let first = driver.first_open_us();
            let active = driver.client.active();
            self.samples
                .sample(now, first, active, opts.pace.max_in_flight);
        } else if self.at_open_end.is_none() {
            self.at_open_end = Some(driver.client.stats().clone());
            driver.client.close_all(now);
        }
    }

    /// One poll of the driver; the loop was busy when it received or sent anything.
    fn poll<P: Port>(&mut self, t0: Instant, now: u64, opening: bool, driver: &mut Driver<P>) {
        let before_tx = driver.tx_frames;
        let n = driver.poll(now, opening);
        let t1 = Instant::now();
        if n > 0 || driver.tx_frames > before_tx {
            self.busy += t1 - t0;
            self.idle_polls = 0;
        } else {
            self.idle_polls = self.idle_polls.saturating_add(1);
        }
        if n > 0 {
            self.last_rx = now;
        }
    }

    /// Whether the run is over once the opening window has ended: a flood when no reply
    /// came for 200 ms, otherwise when every connection is done, or after the drain time,
    /// or 100 ms after `stop`. Waits up to 1 ms for frames after 64 idle polls.
    fn done<P: Port>(
        &self,
        now: u64,
        opts: &GenOptions,
        driver: &mut Driver<P>,
        stop: &AtomicBool,
    ) -> bool {
        let Some(end) = self.open_end else {
            return false;
        };
        let flood = opts.client.syn_flood;
        let quiet = now.saturating_sub(self.last_rx.max(end)) > 200_000;
        let drain_us = opts.drain.as_micros() as u64;
        if (flood && quiet) || (!flood && driver.idle()) || now >= end + drain_us {
            return true;
        }
        if stop.load(Ordering::Relaxed) && now >= end + 100_000 {
            return true;
        }
        if self.idle_polls > 64 {
            driver.port.wait(Duration::from_millis(1));
        }
        false
    }

    /// Seconds from the first SYN to the end of the opening window, and to the end.
    fn windows(&self, first_us: u64) -> (f64, f64) {
        let open_end = self.open_end.unwrap_or(self.end_us);
        let open_secs = open_end.saturating_sub(first_us) as f64 / 1e6;
        let elapsed_secs = self.end_us.saturating_sub(first_us) as f64 / 1e6;
        (open_secs, elapsed_secs)
    }
}

/// `n` per second over `secs` (0 for an empty window).
fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// The report of a finished run.
fn report<P: Port>(
    opts: &GenOptions,
    mode: XdpMode,
    driver: &Driver<P>,
    run: &RunLoop,
) -> GenReport {
    let first = driver.first_open_us().unwrap_or(0);
    let (open_secs, elapsed_secs) = run.windows(first);
    let stats = driver.client.stats().clone();
    let done_secs = driver.client.last_done_us().saturating_sub(first) as f64 / 1e6;
    let steady = opts
        .client
        .hold
        .map(|hold| steady_report(opts, hold, driver, run, open_secs));
    let attempted_per_sec = per_sec(stats.attempted, open_secs);
    GenReport {
        rate_target: opts.pace.rate,
        rate_error: opts.pace.rate.map(|r| attempted_per_sec / r as f64 - 1.0),
        steady,
        mode: mode_name(opts),
        target: match opts.client.target {
            IpAddr::V4(a) => format!("{a}:{}", opts.client.target_port),
            IpAddr::V6(a) => format!("[{a}]:{}", opts.client.target_port),
        },
        interface: opts.interface.clone(),
        xdp_mode: mode,
        cpu: opts.cpu,
        close: opts.client.close,
        source_tuples: opts.client.sources.len(),
        open_secs,
        elapsed_secs,
        busy_fraction: run.busy.as_secs_f64() / run.start.elapsed().as_secs_f64().max(1e-9),
        rates: Rates {
            attempted_per_sec,
            synack_per_sec: per_sec(stats.synack_received, open_secs),
            completed_per_sec: per_sec(stats.completed, done_secs),
            failed_per_sec: per_sec(stats.failed(), elapsed_secs),
        },
        handshake_us: Percentiles::of(driver.client.handshake_histogram()),
        lifetime_us: Percentiles::of(driver.client.lifetime_histogram()),
        rx_frames: driver.rx_frames,
        tx_frames: driver.tx_frames,
        xdp_socket: driver.port.stats(),
        stats,
    }
}

/// The report's mode: "syn-flood", "steady", "request" or "connect".
fn mode_name(opts: &GenOptions) -> &'static str {
    if opts.client.syn_flood {
        "syn-flood"
    } else if opts.client.hold.is_some() {
        "steady"
    } else if opts.client.request.is_some() {
        "request"
    } else {
        "connect"
    }
}

/// What a steady run held: the established samples after the ramp, and the opens and
/// closes of the hold window (counted when it ended, before the final closes).
fn steady_report<P: Port>(
    opts: &GenOptions,
    hold: Hold,
    driver: &Driver<P>,
    run: &RunLoop,
    open_secs: f64,
) -> SteadyReport {
    let at_end = run
        .at_open_end
        .clone()
        .unwrap_or_else(|| driver.client.stats().clone());
    let samples = &run.samples;
    SteadyReport {
        connections: opts.pace.max_in_flight,
        interval_ms: hold.interval_us.map(|us| us / 1000),
        ramp_secs: samples.ramp_us.map(|us| us as f64 / 1e6),
        active_mean: if samples.n > 0 {
            samples.sum as f64 / samples.n as f64
        } else {
            0.0
        },
        active_min: samples.min,
        active_max: samples.max,
        samples: samples.n,
        opens_per_sec: per_sec(at_end.attempted, open_secs),
        closes_per_sec: per_sec(at_end.completed + at_end.failed(), open_secs),
        request_us: Percentiles::of(driver.client.request_histogram()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_covers_the_source_range() {
        let r = SourceRange::parse("198.19.0.0/30", "1024-1030").unwrap();
        let f = source_filter(&r);
        assert_eq!(f.ipv4.len(), 2);
        assert_eq!(f.ports.len(), 7);
        assert!(f.standalone);
    }
}
