//! Operator tooling, all off the hot path: the Prometheus text endpoint, the pcapng capture
//! writer, and the per-second live view.

#![forbid(unsafe_code)]

use crate::counters::{DropReason, Event};
use crate::engine::Captured;
use crate::io::bpf::BpfCounters;
use crate::io::{PortStats, XdpMode};
use anyhow::{Context, Result};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Render a report in the Prometheus text exposition format (version 0.0.4).
pub fn prometheus_text(rep: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    process_metrics(&mut out, rep);
    worker_gauges(&mut out, &rep.workers);
    worker_counters(&mut out, &rep.workers);
    if let Some(p) = &rep.xdp_program {
        xdp_program_metrics(&mut out, p);
    }
    family(
        &mut out,
        "synack_capture_lost_total",
        "counter",
        "Captured frames lost to a full capture queue.",
    );
    let _ = writeln!(out, "synack_capture_lost_total {}", rep.capture_lost);
    out
}

/// The `# HELP` and `# TYPE` lines that open one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The process-wide gauges: up, uptime, native XDP.
fn process_metrics(out: &mut String, rep: &Report) {
    family(out, "synack_up", "gauge", "1 while the endpoint runs.");
    let _ = writeln!(out, "synack_up 1");
    family(
        out,
        "synack_uptime_seconds",
        "gauge",
        "Seconds since start.",
    );
    let _ = writeln!(out, "synack_uptime_seconds {:.3}", rep.uptime_secs);
    family(
        out,
        "synack_xdp_native",
        "gauge",
        "1 when the XDP program runs in native (driver) mode, 0 in generic mode.",
    );
    let native = u8::from(rep.xdp_mode == XdpMode::Native);
    let _ = writeln!(out, "synack_xdp_native {native}");
}

/// One gauge family with a sample per worker, `name{worker="Q"} value`.
fn worker_gauge(
    out: &mut String,
    name: &str,
    help: &str,
    workers: &[WorkerReport],
    value: impl Fn(&WorkerReport) -> String,
) {
    family(out, name, "gauge", help);
    for w in workers {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.queue, value(w));
    }
}

/// The per-worker gauges: connections, zero-copy, busy ratio.
fn worker_gauges(out: &mut String, workers: &[WorkerReport]) {
    worker_gauge(
        out,
        "synack_active_connections",
        "Connections in the table.",
        workers,
        |w| w.active.to_string(),
    );
    worker_gauge(
        out,
        "synack_xdp_zerocopy",
        "1 when the worker's AF_XDP socket is in zero-copy mode, 0 in copy mode.",
        workers,
        |w| u8::from(w.zerocopy).to_string(),
    );
    worker_gauge(
        out,
        "synack_busy_ratio",
        "Share of loop time spent on non-empty batches.",
        workers,
        |w| format!("{:.6}", w.busy_fraction),
    );
}

/// One counter family with a sample per worker and label value,
/// `name{worker="Q",label="L"} value`.
fn worker_counter<'a>(
    out: &mut String,
    (name, label, help): (&str, &str, &str),
    workers: &'a [WorkerReport],
    samples: impl Fn(&'a WorkerReport) -> Vec<(&'static str, u64)>,
) {
    family(out, name, "counter", help);
    for w in workers {
        for (l, v) in samples(w) {
            let _ = writeln!(out, "{name}{{worker=\"{}\",{label}=\"{l}\"}} {v}", w.queue);
        }
    }
}

/// The per-worker counters: events, drops by reason, AF_XDP socket statistics.
fn worker_counters(out: &mut String, workers: &[WorkerReport]) {
    let events = (
        "synack_events_total",
        "event",
        "Things that happened, by kind.",
    );
    worker_counter(out, events, workers, |w| {
        let get = |e: &Event| w.counters.events.get(e.label()).copied().unwrap_or(0);
        Event::ALL.iter().map(|e| (e.label(), get(e))).collect()
    });
    let drops = (
        "synack_drops_total",
        "reason",
        "Frames dropped or refused, by reason.",
    );
    worker_counter(out, drops, workers, |w| {
        let get = |r: &DropReason| w.counters.drops.get(r.label()).copied().unwrap_or(0);
        DropReason::ALL
            .iter()
            .map(|r| (r.label(), get(r)))
            .collect()
    });
    let socket = (
        "synack_xdp_socket",
        "stat",
        "AF_XDP socket statistics (XDP_STATISTICS and TX kicks).",
    );
    worker_counter(out, socket, workers, |w| {
        xdp_socket_stats(&w.xdp_socket).to_vec()
    });
}

/// A port's socket statistics by name, for the metrics.
fn xdp_socket_stats(s: &PortStats) -> [(&'static str, u64); 9] {
    [
        ("rx_dropped", s.rx_dropped),
        ("rx_invalid_descs", s.rx_invalid_descs),
        ("tx_invalid_descs", s.tx_invalid_descs),
        ("rx_ring_full", s.rx_ring_full),
        ("rx_fill_ring_empty_descs", s.rx_fill_ring_empty_descs),
        ("tx_ring_empty_descs", s.tx_ring_empty_descs),
        ("tx_kicks", s.tx_kicks),
        ("tx_kick_errors", s.tx_kick_errors),
        ("tx_ring_full", s.tx_ring_full),
    ]
}

/// The XDP program's verdicts and its SYN offload's counters (all CPUs).
fn xdp_program_metrics(out: &mut String, p: &BpfCounters) {
    family(
        out,
        "synack_xdp_program_total",
        "counter",
        "Verdicts of the XDP program, all CPUs.",
    );
    for (name, v) in [
        ("redirected", p.redirected),
        ("passed", p.passed),
        ("redirect_failed", p.redirect_failed),
        ("arp_redirected", p.arp_redirected),
        ("ndp_redirected", p.ndp_redirected),
        ("vlan_passed", p.vlan_passed),
    ] {
        let _ = writeln!(out, "synack_xdp_program_total{{verdict=\"{name}\"}} {v}");
    }
    family(
        out,
        "synack_xdp_offload_total",
        "counter",
        "The XDP SYN offload: SYNs answered and sent on, stateless ACKs dropped and sent on, resets sent and held back by the rate.",
    );
    for (name, v) in xdp_offload_counters(p) {
        let _ = writeln!(out, "synack_xdp_offload_total{{event=\"{name}\"}} {v}");
    }
}

/// The SYN offload's counters by name, for the metrics and the live view.
fn xdp_offload_counters(p: &BpfCounters) -> [(&'static str, u64); 7] {
    [
        ("syn_acks_sent", p.syn_acks_sent),
        ("syns_to_userspace", p.syns_to_userspace),
        ("acks_dropped", p.acks_dropped),
        ("rsts_sent", p.rsts_sent),
        ("rsts_rate_limited", p.rsts_rate_limited),
        ("cookie_acks_to_userspace", p.cookie_acks_to_userspace),
        (
            "cookie_followers_to_userspace",
            p.cookie_followers_to_userspace,
        ),
    ]
}

/// Serve `GET /metrics` on `addr` from a thread, rendering the latest report each time.
/// Returns once the listener is bound (so a bad address fails the start).
pub fn serve_metrics(
    addr: SocketAddr,
    latest: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("ops.metrics: cannot listen on {addr}"))?;
    Ok(std::thread::Builder::new()
        .name("synack-metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(200)) else {
                    continue;
                };
                let resp = if req.url() == "/metrics" || req.url().starts_with("/metrics?") {
                    let body = latest.lock().map(|s| s.clone()).unwrap_or_default();
                    let header = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"text/plain; version=0.0.4"[..],
                    )
                    .expect("static header");
                    tiny_http::Response::from_string(body).with_header(header)
                } else {
                    tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
                };
                let _ = req.respond(resp);
            }
        })?)
}

/// Write captured frames to a pcapng file from a thread until the channel closes. Each
/// worker is one interface in the file; a dropped frame carries its reason as the packet
/// comment (`tshark -r FILE -T fields -e frame.comment`).
pub fn spawn_capture_writer(
    path: &Path,
    workers: usize,
    rx: crossbeam::channel::Receiver<Captured>,
) -> Result<std::thread::JoinHandle<Result<u64>>> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("ops.capture: creating {}", path.display()))?;
    let mut writer = PcapNgWriter::new(std::io::BufWriter::new(file))
        .context("ops.capture: writing the pcapng header")?;
    for _ in 0..workers.max(1) {
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            // The writer stores timestamps in nanoseconds (pcap-file 2): say so, or readers
            // assume the default microseconds.
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        };
        writer
            .write_pcapng_block(idb)
            .context("ops.capture: writing an interface block")?;
    }
    Ok(std::thread::Builder::new()
        .name("synack-capture".into())
        .spawn(move || {
            let mut written = 0u64;
            for c in rx.iter() {
                let options = match c.reason {
                    Some(r) => vec![EnhancedPacketOption::Comment(Cow::Owned(format!(
                        "dropped: {}",
                        r.label()
                    )))],
                    None => vec![],
                };
                let block = EnhancedPacketBlock {
                    interface_id: u32::from(c.worker),
                    timestamp: Duration::from_nanos(c.unix_ns),
                    original_len: c.data.len() as u32,
                    data: Cow::Borrowed(&c.data),
                    options,
                };
                writer
                    .write_pcapng_block(block)
                    .context("ops.capture: writing a packet")?;
                written += 1;
            }
            use std::io::Write;
            writer.get_mut().flush().context("ops.capture: flushing")?;
            Ok(written)
        })?)
}

/// Per-second rates between two reports.
pub struct Rates<'a> {
    /// Earlier report.
    pub prev: &'a Report,
    /// Later report.
    pub cur: &'a Report,
}

impl Rates<'_> {
    fn dt(&self) -> f64 {
        (self.cur.uptime_secs - self.prev.uptime_secs).max(1e-9)
    }

    fn worker_event(&self, w: usize, e: Event) -> f64 {
        let get = |r: &Report| {
            r.workers
                .get(w)
                .and_then(|x| x.counters.events.get(e.label()).copied())
                .unwrap_or(0)
        };
        get(self.cur).saturating_sub(get(self.prev)) as f64 / self.dt()
    }

    fn worker_drops(&self, w: usize, pick: impl Fn(&str) -> bool) -> f64 {
        let sum = |r: &Report| {
            r.workers
                .get(w)
                .map(|x| {
                    x.counters
                        .drops
                        .iter()
                        .filter(|(k, _)| pick(k))
                        .map(|(_, v)| *v)
                        .sum::<u64>()
                })
                .unwrap_or(0)
        };
        sum(self.cur).saturating_sub(sum(self.prev)) as f64 / self.dt()
    }

    /// The live table: one row per worker and a total, then non-zero drop reasons.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>6} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>4}",
            "core",
            "rx_pps",
            "tx_pps",
            "syn/s",
            "cookie_ok",
            "cookie_bad",
            "estab/s",
            "closed/s",
            "active",
            "busy%",
            "xsk"
        );
        let mut tot = [0f64; 8];
        for (i, w) in self.cur.workers.iter().enumerate() {
            let row = [
                self.worker_event(i, Event::RxFrames),
                self.worker_event(i, Event::TxFrames),
                self.worker_event(i, Event::SynReceived),
                self.worker_event(i, Event::CookieOk),
                self.worker_drops(i, |k| k.starts_with("cookie_")),
                self.worker_event(i, Event::Established),
                self.worker_event(i, Event::Closed),
                w.active as f64,
            ];
            for (t, v) in tot.iter_mut().zip(row) {
                *t += v;
            }
            let _ = writeln!(
                s,
                "{:>6} {:>10.0} {:>10.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>5.1}% {:>4}",
                format!("cpu{}", w.cpu),
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                row[7],
                w.busy_fraction * 100.0,
                if w.zerocopy { "zc" } else { "copy" }
            );
        }
        if self.cur.workers.len() > 1 {
            let _ = writeln!(
                s,
                "{:>6} {:>10.0} {:>10.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
                "total", tot[0], tot[1], tot[2], tot[3], tot[4], tot[5], tot[6], tot[7]
            );
        }
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .filter_map(|r| {
                let v: f64 = (0..self.cur.workers.len())
                    .map(|i| self.worker_drops(i, |k| k == r.label()))
                    .sum();
                (v > 0.0).then(|| format!("{}={:.0}/s", r.label(), v))
            })
            .collect();
        if !drops.is_empty() {
            let _ = writeln!(s, "  drops: {}", drops.join(" "));
        }
        if let (Some(prev), Some(cur)) = (&self.prev.xdp_program, &self.cur.xdp_program) {
            let dt = (self.cur.uptime_secs - self.prev.uptime_secs).max(1e-9);
            let rates: Vec<String> = xdp_offload_counters(cur)
                .iter()
                .zip(xdp_offload_counters(prev))
                .filter(|((_, c), (_, p))| c > p)
                .map(|((name, c), (_, p))| format!("{name}={:.0}/s", (c - p) as f64 / dt))
                .collect();
            if !rates.is_empty() {
                let _ = writeln!(s, "  xdp: {}", rates.join(" "));
            }
        }
        s
    }
}

/// One worker's part of the stats JSON.
#[derive(Debug, Serialize)]
pub struct WorkerReport {
    /// CPU the worker is pinned to.
    pub cpu: usize,
    /// NIC queue its socket is bound to.
    pub queue: u32,
    /// Whether its AF_XDP socket is in zero-copy mode (XDP_OPTIONS); false is copy mode.
    pub zerocopy: bool,
    /// Connections in its table.
    pub active: u64,
    /// Share of loop time spent on non-empty batches, 0..1.
    pub busy_fraction: f64,
    /// Its counters.
    pub counters: crate::counters::CountersJson,
    /// Its AF_XDP socket statistics.
    pub xdp_socket: PortStats,
}

/// The stats JSON document (rewritten atomically every interval and at exit).
#[derive(Debug, Serialize)]
pub struct Report {
    /// Interface served.
    pub interface: String,
    /// XDP attach mode actually in use.
    pub xdp_mode: XdpMode,
    /// Seconds since start.
    pub uptime_secs: f64,
    /// Connections in all tables.
    pub active: u64,
    /// Counters summed over workers.
    pub total: crate::counters::CountersJson,
    /// Whether the XDP program answers SYNs itself (`xdp.syn_offload`).
    pub xdp_syn_offload: bool,
    /// Counters of the XDP program (per-CPU values summed).
    pub xdp_program: Option<BpfCounters>,
    /// Captured frames lost to a full capture queue.
    pub capture_lost: u64,
    /// Per worker.
    pub workers: Vec<WorkerReport>,
}

/// Write `value` as JSON to `path` atomically (temporary file, then rename).
pub fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec_pretty(value)?;
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;

    fn report(secs: f64, syn: u64, bad: u64) -> Report {
        let mut c = Counters::default();
        c.add(Event::SynReceived, syn);
        for _ in 0..bad {
            c.drop(DropReason::CookieInvalid);
        }
        Report {
            interface: "x".into(),
            xdp_mode: crate::io::XdpMode::Native,
            uptime_secs: secs,
            active: 3,
            total: c.to_json(),
            xdp_syn_offload: false,
            xdp_program: None,
            capture_lost: 0,
            workers: vec![WorkerReport {
                cpu: 0,
                queue: 0,
                zerocopy: false,
                active: 3,
                busy_fraction: 0.5,
                counters: c.to_json(),
                xdp_socket: Default::default(),
            }],
        }
    }

    #[test]
    fn prometheus_has_every_reason_and_event() {
        let text = prometheus_text(&report(1.0, 5, 2));
        assert!(text.contains("synack_events_total{worker=\"0\",event=\"syn_received\"} 5"));
        assert!(text.contains("synack_drops_total{worker=\"0\",reason=\"cookie_invalid\"} 2"));
        assert!(text.contains("synack_active_connections{worker=\"0\"} 3"));
        assert!(text.contains("synack_xdp_zerocopy{worker=\"0\"} 0"));
        for r in DropReason::ALL {
            assert!(text.contains(&format!("reason=\"{}\"", r.label())));
        }
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn table_shows_rates_and_drops() {
        let a = report(1.0, 10, 0);
        let b = report(3.0, 30, 4);
        let t = Rates { prev: &a, cur: &b }.table();
        assert!(t.contains("cpu0"), "{t}");
        assert!(t.lines().nth(1).unwrap().ends_with("copy"), "{t}");
        assert!(t.contains("cookie_invalid=2/s"), "{t}");
        let row = t.lines().nth(1).unwrap();
        assert!(row.split_whitespace().nth(3) == Some("10"), "{row}");
    }

    /// The XDP SYN offload's counters reach the live view (as rates) and Prometheus.
    #[test]
    fn xdp_offload_counters_in_table_and_metrics() {
        let mut a = report(1.0, 10, 0);
        let mut b = report(3.0, 30, 4);
        a.xdp_program = Some(BpfCounters::default());
        b.xdp_program = Some(BpfCounters {
            syn_acks_sent: 2000,
            acks_dropped: 40,
            rsts_sent: 20,
            ..BpfCounters::default()
        });
        let t = Rates { prev: &a, cur: &b }.table();
        assert!(
            t.contains("xdp: syn_acks_sent=1000/s acks_dropped=20/s rsts_sent=10/s"),
            "{t}"
        );
        let m = prometheus_text(&b);
        assert!(
            m.contains("synack_xdp_offload_total{event=\"syn_acks_sent\"} 2000"),
            "{m}"
        );
        assert!(m.contains("synack_xdp_offload_total{event=\"rsts_rate_limited\"} 0"));
    }
}
