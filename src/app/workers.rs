//! The workers: one AF_XDP socket, one `Stack` and one pinned thread each.

use super::DRAIN;
use crate::config::Config;
use crate::engine::{
    self, rss, Capture, Control, HandoffQueue, Published, Stack, StackConfig, Steering, Worker,
    WorkerConfig,
};
use crate::io::afxdp::{AfXdpConfig, AfXdpPort};
use crate::io::bpf::XdpProgram;
use crate::io::XdpMode;
use crate::table::occupancy::Occupancy;
use crate::table::{Core, CoreConfig};
use crate::tcp::cookie::CookieJar;
use crate::tcp::Clock;
use anyhow::{Context, Result};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

pub(super) struct Running {
    pub(super) cpu: usize,
    pub(super) queue: u32,
    pub(super) zerocopy: bool,
    pub(super) published: Arc<Published>,
}

/// What every worker is built from.
pub(super) struct WorkerShared<'a> {
    pub(super) cfg: &'a Config,
    pub(super) core_cfg: &'a CoreConfig,
    pub(super) jar: &'a CookieJar,
    pub(super) occupancy: &'a Option<Occupancy>,
    pub(super) mode: XdpMode,
    pub(super) mac: [u8; 6],
    pub(super) clock0: &'a Clock,
    pub(super) start: Instant,
    pub(super) steering: Option<&'a rss::Resolved>,
    pub(super) queues: &'a [Arc<HandoffQueue>],
    pub(super) capture: Option<(
        engine::CaptureMode,
        &'a crossbeam::channel::Sender<engine::Captured>,
    )>,
    pub(super) stop: &'a Arc<AtomicBool>,
}

/// Open worker `i`'s AF_XDP socket on queue `i`, register it with the XDP program, build
/// its stack and start its thread pinned to `cpu`.
pub(super) fn spawn_worker(
    sh: &WorkerShared<'_>,
    prog: &mut XdpProgram,
    i: usize,
    cpu: usize,
) -> Result<(
    std::thread::JoinHandle<Worker<AfXdpPort>>,
    crossbeam::channel::Sender<Control>,
    Running,
)> {
    let cfg = sh.cfg;
    let queue = i as u32;
    let port = AfXdpPort::open(
        &cfg.interface,
        queue,
        &AfXdpConfig {
            frame_size: cfg.xdp.frame_size,
            frame_count: cfg.xdp.frame_count,
            ring_size: cfg.xdp.ring_size,
            busy_poll: cfg.xdp.busy_poll,
            mode: sh.mode,
            zerocopy: cfg.xdp.zerocopy,
        },
    )
    .with_context(|| {
        format!(
            "worker {i} on CPU {cpu}: opening the AF_XDP socket on {} queue {queue}",
            cfg.interface
        )
    })?;
    prog.register_socket(queue, port.fd())?;
    let zerocopy = port.zerocopy();
    info!(worker = i, cpu, queue, zerocopy, "AF_XDP socket bound");
    let mut core = Core::new(sh.core_cfg, sh.jar.clone(), sh.clock0);
    core.set_occupancy(sh.occupancy.clone());
    let stack = Stack::with_config(
        core,
        StackConfig {
            addrs: cfg.addresses.clone(),
            verify_checksums: cfg.tcp.verify_checksums,
            standalone: cfg.xdp.standalone.then_some(sh.mac),
            steering: sh.steering.map(|steering| Steering {
                rss: steering.rss.clone(),
                me: i,
                workers: cfg.workers.len(),
            }),
            rewrite_syn_in_place: true,
        },
    );
    let (ctl_tx, ctl_rx) = crossbeam::channel::bounded(16);
    let mut worker = Worker::with_config(
        stack,
        port,
        WorkerConfig {
            batch_size: cfg.xdp.batch_size,
            handoff: sh.queues.to_vec(),
            index: i,
            capture: sh
                .capture
                .map(|(mode, tx)| Capture::new(mode, tx.clone(), i as u16)),
            control: Some(ctl_rx),
            clock_origin: sh.start,
        },
    );
    let run = Running {
        cpu,
        queue,
        zerocopy,
        published: worker.published().clone(),
    };
    let stop = sh.stop.clone();
    let priority = cfg.xdp.worker_priority;
    let handle = std::thread::Builder::new()
        .name(format!("synack-w{i}"))
        .spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                warn!(cpu, "could not pin worker {i} to its CPU");
            }
            if priority > 0 {
                match crate::io::sys::set_fifo_priority(priority) {
                    Ok(()) => info!(worker = i, priority, "worker runs SCHED_FIFO"),
                    Err(e) => warn!(
                        worker = i,
                        priority,
                        error = %e,
                        "xdp.worker_priority: SCHED_FIFO refused (needs CAP_SYS_NICE)"
                    ),
                }
            }
            worker.run(&stop, DRAIN);
            worker
        })
        .context("spawning a worker thread")?;
    Ok((handle, ctl_tx, run))
}
