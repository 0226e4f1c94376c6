//! The control thread's loop while the workers run: cookie secrets kept in step with the
//! XDP program, and the shutdown. SIGHUP is in [`super::reload`], the stats in
//! [`super::stats`].

use super::plan::{publish_cookies, RunPlan};
use super::stats::report;
use super::workers::Running;
use crate::counters::{Counters, DropReason, Event};
use crate::engine::{Control, Worker};
use crate::io::afxdp::AfXdpPort;
use crate::ops::{write_json_atomic, Report};
use crate::tcp::cookie::CookieJar;
use anyhow::Result;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The control thread's state while the workers run.
pub(super) struct ControlLoop {
    pub(super) plan: RunPlan,
    pub(super) start: Instant,
    pub(super) running: Vec<Running>,
    pub(super) controls: Vec<crossbeam::channel::Sender<Control>>,
    /// The control thread's copy of the workers' jars: it follows every rotation, so the
    /// XDP program always holds the keys the workers hold.
    pub(super) ctl_jar: CookieJar,
    pub(super) forget_secret_at: Option<Instant>,
    pub(super) last_cookie_publish: Instant,
    pub(super) interval: Duration,
    pub(super) next: Instant,
    pub(super) last: Counters,
    pub(super) last_rep: Report,
    pub(super) last_t: Instant,
    pub(super) latest_metrics: Arc<std::sync::Mutex<String>>,
}

impl ControlLoop {
    pub(super) fn new(
        plan: RunPlan,
        start: Instant,
        running: Vec<Running>,
        controls: Vec<crossbeam::channel::Sender<Control>>,
    ) -> ControlLoop {
        let interval = Duration::from_millis(plan.cfg.ops.stats_interval_ms);
        let last_rep = report(&plan.cfg, plan.mode, start, &running, &plan.prog).0;
        ControlLoop {
            ctl_jar: plan.jar.clone(),
            plan,
            start,
            running,
            controls,
            forget_secret_at: None,
            last_cookie_publish: Instant::now(),
            interval,
            next: Instant::now() + interval,
            last: Counters::default(),
            last_rep,
            last_t: Instant::now(),
            latest_metrics: Arc::new(std::sync::Mutex::new(String::new())),
        }
    }

    /// Forget the previous cookie secret when its period is over, and keep the XDP
    /// program's keys and minute counter current (published at most once a second; the
    /// map is written only when something changed).
    pub(super) fn tick_secrets(&mut self) {
        if self.forget_secret_at.is_some_and(|t| Instant::now() >= t) {
            self.forget_secret_at = None;
            for c in &self.controls {
                let _ = c.send(Control::ForgetPreviousSecret);
            }
            self.ctl_jar.forget_previous();
            info!("previous cookie secret forgotten");
        }
        if self.plan.occupancy.is_some()
            && self.last_cookie_publish.elapsed() >= Duration::from_secs(1)
        {
            self.last_cookie_publish = Instant::now();
            if let Err(e) = publish_cookies(&mut self.plan.prog, &self.ctl_jar) {
                warn!("publishing SYN cookie keys to XDP: {e:#}");
            }
        }
    }

    /// Join the workers (their drain sends our FINs), the capture writer and the metrics
    /// thread; write the last stats and log the summary; detach the XDP program.
    pub(super) fn shutdown(
        self,
        handles: Vec<std::thread::JoinHandle<Worker<AfXdpPort>>>,
        capture_writer: Option<std::thread::JoinHandle<Result<u64>>>,
        metrics_thread: Option<std::thread::JoinHandle<()>>,
    ) -> Result<()> {
        let mut failed = None;
        for h in handles {
            match h.join() {
                // Dropping the worker closes its capture sender.
                Ok(worker) => drop(worker),
                Err(_) => failed = Some("a worker thread panicked"),
            }
        }
        if let Some(w) = capture_writer {
            match w.join() {
                Ok(Ok(n)) => info!(frames = n, "capture written"),
                Ok(Err(e)) => warn!("capture: {e:#}"),
                Err(_) => warn!("capture writer panicked"),
            }
        }
        if let Some(t) = metrics_thread {
            let _ = t.join();
        }
        let (rep, total) = self.report();
        if let Some(path) = &self.plan.cfg.ops.stats_json {
            write_json_atomic(path, &rep)?;
        }
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .filter(|r| total.dropped(**r) > 0)
            .map(|r| format!("{}={}", r.label(), total.dropped(*r)))
            .collect();
        info!(
            uptime_secs = format!("{:.1}", rep.uptime_secs),
            rx_frames = total.get(Event::RxFrames),
            tx_frames = total.get(Event::TxFrames),
            syn = total.get(Event::SynReceived),
            established = total.get(Event::Established),
            closed = total.get(Event::Closed),
            active = rep.active,
            drops = %drops.join(" "),
            "summary"
        );
        drop(self);
        if let Some(msg) = failed {
            anyhow::bail!(msg);
        }
        Ok(())
    }
}
