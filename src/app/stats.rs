//! The stats the control thread publishes: the report of every worker, the stats view,
//! the stats JSON and the Prometheus metrics.

use super::control::ControlLoop;
use super::workers::Running;
use crate::config::{Config, View};
use crate::counters::{Counters, Event};
use crate::io::bpf::XdpProgram;
use crate::io::XdpMode;
use crate::ops::{write_json_atomic, Report, WorkerReport};
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

pub(super) fn report(
    cfg: &Config,
    mode: XdpMode,
    start: Instant,
    workers: &[Running],
    prog: &XdpProgram,
) -> (Report, Counters) {
    let mut total = Counters::default();
    let mut reports = Vec::new();
    let mut active = 0;
    let mut capture_lost = 0;
    for w in workers {
        capture_lost += w.published.capture_lost.load(Ordering::Relaxed);
        let c = w.published.counters();
        total.merge(&c);
        let busy = w.published.busy_ns.load(Ordering::Relaxed) as f64;
        let looped = w.published.loop_ns.load(Ordering::Relaxed) as f64;
        let a = w.published.active.load(Ordering::Relaxed);
        active += a;
        reports.push(WorkerReport {
            cpu: w.cpu,
            queue: w.queue,
            zerocopy: w.zerocopy,
            active: a,
            busy_fraction: if looped > 0.0 { busy / looped } else { 0.0 },
            counters: c.to_json(),
            xdp_socket: w.published.port_stats(),
        });
    }
    (
        Report {
            interface: cfg.interface.clone(),
            xdp_mode: mode,
            uptime_secs: start.elapsed().as_secs_f64(),
            active,
            total: total.to_json(),
            xdp_syn_offload: prog.syn_offload_enabled(),
            xdp_program: prog.counters().ok(),
            capture_lost,
            workers: reports,
        },
        total,
    )
}

impl ControlLoop {
    pub(super) fn report(&self) -> (Report, Counters) {
        let p = &self.plan;
        report(&p.cfg, p.mode, self.start, &self.running, &p.prog)
    }

    /// Serve Prometheus metrics (`ops.metrics`) from a thread of its own.
    pub(super) fn serve_metrics(
        &self,
        stop: &Arc<AtomicBool>,
    ) -> Result<Option<std::thread::JoinHandle<()>>> {
        let Some(addr) = self.plan.cfg.ops.metrics else {
            return Ok(None);
        };
        if let Ok(mut m) = self.latest_metrics.lock() {
            *m = crate::ops::prometheus_text(&self.report().0);
        }
        let t = crate::ops::serve_metrics(addr, self.latest_metrics.clone(), stop.clone())?;
        info!(%addr, "serving Prometheus metrics at /metrics");
        Ok(Some(t))
    }

    /// Every `ops.stats_interval_ms`: the stats view, the stats JSON and the metrics.
    pub(super) fn tick_stats(&mut self) {
        if Instant::now() < self.next {
            return;
        }
        self.next += self.interval;
        let (rep, total) = self.report();
        let cfg = &self.plan.cfg;
        let dt = self.last_t.elapsed().as_secs_f64().max(1e-9);
        let last = &self.last;
        let rate = |e: Event| (total.get(e) - last.get(e)) as f64 / dt;
        match cfg.ops.view {
            View::Log => info!(
                rx_pps = rate(Event::RxFrames) as u64,
                tx_pps = rate(Event::TxFrames) as u64,
                syn_s = rate(Event::SynReceived) as u64,
                established_s = rate(Event::Established) as u64,
                closed_s = rate(Event::Closed) as u64,
                drops_s = ((total.total_drops() - last.total_drops()) as f64 / dt) as u64,
                active = rep.active,
                "stats"
            ),
            View::Table => {
                let table = crate::ops::Rates {
                    prev: &self.last_rep,
                    cur: &rep,
                }
                .table();
                print!("{table}");
            }
            View::JsonLines => {
                if let Ok(line) = serde_json::to_string(&rep) {
                    println!("{line}");
                }
            }
            View::Quiet => {}
        }
        if let Some(path) = &cfg.ops.stats_json {
            if let Err(e) = write_json_atomic(path, &rep) {
                warn!("stats json: {e:#}");
            }
        }
        if cfg.ops.metrics.is_some() {
            if let Ok(mut m) = self.latest_metrics.lock() {
                *m = crate::ops::prometheus_text(&rep);
            }
        }
        self.last = total;
        self.last_rep = rep;
        self.last_t = Instant::now();
    }
}
