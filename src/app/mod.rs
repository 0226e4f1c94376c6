//! The control path of `synack run`: attach the XDP program, open one AF_XDP socket per
//! worker, pin the workers, report readiness and statistics, stop cleanly on a signal.
//!
//! One file per capability: [`plan`] turns a `Config` into what the run needs (the attached
//! XDP program, the per-core configuration, the cookie jar, the SYN offload), [`workers`]
//! opens the sockets and starts the pinned workers, [`control`] is the control thread's
//! loop while they run, with SIGHUP [`reload`] and the [`stats`] it publishes.

#![forbid(unsafe_code)]

mod control;
mod plan;
mod reload;
mod stats;
mod workers;

pub use plan::{core_config, syn_answers};

use crate::config::{Config, LabOptions};
use crate::engine::{self, HandoffQueue};
use crate::tcp::Clock;
use anyhow::{Context, Result};
use control::ControlLoop;
use plan::{nic_steering, setup, switch_on_syn_offload};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use workers::{spawn_worker, WorkerShared};

/// How long workers keep serving after a stop signal so that our FINs complete.
pub const DRAIN: Duration = Duration::from_secs(2);

/// Re-reads the configuration on SIGHUP (the file and the same command-line flags).
pub type Reloader = Box<dyn Fn() -> std::result::Result<Config, String> + Send>;

/// Run the endpoint until SIGINT/SIGTERM; on SIGHUP apply `reload`'s configuration.
pub fn run(cfg: Config, reload: Option<Reloader>) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    run_until(cfg, stop, hup, reload)
}

/// Run the endpoint until `stop` is set; apply `reload` whenever `hup` is set.
///
/// The phases, one function each: set up the XDP program and the per-core configuration
/// ([`setup`]), start the capture writer and the workers ([`spawn_worker`]), switch the SYN
/// offload on, serve metrics and say `ready`, then run the control loop ([`ControlLoop`]: SIGHUP
/// reloads, secret rotation, stats) until a stop, and shut down ([`ControlLoop::shutdown`]).
pub fn run_until(
    cfg: Config,
    stop: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    reload: Option<Reloader>,
) -> Result<()> {
    let start = Instant::now();
    let mut plan = setup(cfg)?;
    let capture_mode = plan.cfg.ops.capture_mode;
    let (capture_tx, capture_writer) = match &plan.cfg.ops.capture {
        Some(path) => {
            let (tx, rx) = crossbeam::channel::bounded(65_536);
            let writer = crate::ops::spawn_capture_writer(path, plan.cfg.workers.len(), rx)?;
            info!(path = %path.display(), mode = %plan.cfg.ops.capture_mode, "capturing frames");
            (Some(tx), Some(writer))
        }
        None => (None, None),
    };
    let n = plan.cfg.workers.len();
    let queues: Vec<Arc<HandoffQueue>> = if n > 1 {
        (0..n)
            .map(|_| Arc::new(HandoffQueue::new(plan.cfg.steering.handoff_queue)))
            .collect()
    } else {
        Vec::new()
    };
    let steering = (n > 1).then(|| nic_steering(&plan.cfg, n));
    let clock0 = engine::wall_clock(start);
    let (mut handles, mut controls, mut running) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &cpu) in plan.cfg.workers.clone().iter().enumerate() {
        let shared = WorkerShared {
            cfg: &plan.cfg,
            core_cfg: &plan.core_cfg,
            jar: &plan.jar,
            occupancy: &plan.occupancy,
            mode: plan.mode,
            mac: plan.mac,
            clock0: &clock0,
            start,
            steering: steering.as_ref(),
            queues: &queues,
            capture: capture_tx.as_ref().map(|tx| (capture_mode, tx)),
            stop: &stop,
        };
        let (handle, ctl, run) = spawn_worker(&shared, &mut plan.prog, i, cpu)?;
        handles.push(handle);
        controls.push(ctl);
        running.push(run);
    }
    drop(capture_tx);
    if let Err(e) = switch_on_syn_offload(&mut plan, start) {
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }
    let mut ctl = ControlLoop::new(plan, start, running, controls);
    let metrics_thread = ctl.serve_metrics(&stop)?;
    info!(
        workers = ?ctl.plan.cfg.workers.iter().enumerate().map(|(i, c)| format!("cpu{c}=queue{i}")).collect::<Vec<_>>(),
        "ready"
    );
    if let Some(path) = &ctl.plan.cfg.ops.ready_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing ops.ready_file {}", path.display()))?;
    }
    while !stop.load(Ordering::Relaxed) && !handles.iter().any(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20).min(ctl.interval));
        if hup.swap(false, Ordering::Relaxed) {
            match reload.as_ref().map(|f| f()) {
                None => warn!("SIGHUP: no config to reload from (started without --config)"),
                Some(Err(e)) => warn!("SIGHUP: config not reloaded: {e}"),
                Some(Ok(new)) => ctl.apply_reload(new),
            }
        }
        ctl.tick_secrets();
        ctl.tick_stats();
    }
    stop.store(true, Ordering::Relaxed);
    info!("stopping: closing connections");
    ctl.shutdown(handles, capture_writer, metrics_thread)
}

/// Run the veth lab demo.
pub fn lab(opts: LabOptions) -> Result<()> {
    crate::lab::run(opts)
}

/// A clock reading for callers outside the loop (tests, the lab).
pub fn clock_now(start: Instant) -> Clock {
    engine::wall_clock(start)
}
