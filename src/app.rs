//! The control path of `synack run`: attach the XDP program, open one AF_XDP socket per
//! worker, pin the workers, report readiness and statistics, stop cleanly on a signal.

#![forbid(unsafe_code)]

use crate::config::{Config, FullPolicy, LabOptions, SynOffloadMode, View};
use crate::counters::{Counters, DropReason, Event};
use crate::engine::{
    self, rss, Capture, Control, HandoffQueue, Published, Stack, StackConfig, Steering, Worker,
    WorkerConfig,
};
use crate::io::afxdp::{AfXdpConfig, AfXdpPort};
use crate::io::bpf::{clock_origin_ns, Filter, SynAnswer, SynOffload, XdpProgram};
use crate::io::sys::{interface_mac, interface_mtu};
use crate::io::XdpMode;
use crate::ops::{write_json_atomic, Report, WorkerReport};
use crate::table::occupancy::Occupancy;
use crate::table::{Core, CoreConfig};
use crate::tcp::cookie::{self, CookieJar};
use crate::tcp::responder::HttpResponses;
use crate::tcp::{Clock, Params};
use anyhow::{Context, Result};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long workers keep serving after a stop signal so that our FINs complete.
pub const DRAIN: Duration = Duration::from_secs(2);

/// The per-core settings a config resolves to.
pub fn core_config(cfg: &Config) -> CoreConfig {
    let t = &cfg.tcp;
    let ms = |secs: u64| (secs.saturating_mul(1000)).min(u32::MAX as u64 / 2) as u32;
    CoreConfig {
        params: Params {
            mss: t.mss,
            window: t.window,
            window_scale: t.window_scale,
            timestamps: t.timestamps,
            time_wait_ms: ms(t.time_wait_secs),
            idle_timeout_ms: ms(t.idle_timeout_secs),
            rto_initial_ms: t.rto_initial_ms as u32,
            rto_max_ms: t.rto_max_ms as u32,
            max_retries: t.max_retries.min(u8::MAX as u32) as u8,
            challenge_ack_limit: t.challenge_ack_limit,
            // Drawn per start in `run_until` (the config stays a pure function).
            challenge_ack_key: [0; 16],
            fin_with_ack: t.fin_with_ack,
            rst_when_full: t.table_full == FullPolicy::Rst,
            persist_timeout_ms: ms(t.persist_timeout_secs),
            close_timeout_ms: ms(t.close_timeout_secs),
            header_timeout_ms: ms(cfg.http.header_timeout_secs),
        },
        capacity: t.table_capacity,
        buffers: t.buffers,
        buffer_size: t.buffer_size,
        http: HttpResponses::new(cfg.http.status, &cfg.http.content_type, &cfg.http.body),
        reset_limit: t.reset_limit,
        listeners: cfg.listen.iter().map(|l| (l.port, l.mode)).collect(),
    }
}

/// What the XDP program's SYN-ACK carries for each listener: the window, MSS and window
/// shift `tcp::listen::on_syn` uses for that port's mode, so both paths send one answer.
pub fn syn_answers(core: &CoreConfig) -> Vec<SynAnswer> {
    core.listeners
        .iter()
        .map(|&(port, mode)| SynAnswer {
            port,
            window: crate::table::syn_window(&core.params, core.buffer_size, mode)
                .min(u32::from(u16::MAX)) as u16,
            mss: core.params.mss,
            window_scale: crate::tcp::listen::rcv_wscale(&core.params, mode),
            timestamps: core.params.timestamps,
        })
        .collect()
}

/// Publish the jar's keys and the minute counter of now to the XDP program.
fn publish_cookies(prog: &mut XdpProgram, jar: &CookieJar) -> Result<()> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    prog.publish_cookies(
        jar.raw_keys(),
        jar.previous_raw_keys(),
        cookie::counter_from_unix_secs(secs),
        true,
    )
}

/// Set up the XDP SYN offload's keys and occupancy filter (it is switched on once the
/// workers run, [`enable_syn_offload`]). `None` when it is off, or when `auto` and the
/// kernel refused a part of it.
fn prepare_syn_offload(
    cfg: &Config,
    prog: &mut XdpProgram,
    jar: &CookieJar,
) -> Result<Option<Occupancy>> {
    if cfg.xdp.syn_offload == SynOffloadMode::Off {
        return Ok(None);
    }
    if cfg.xdp.syn_offload == SynOffloadMode::Auto
        && prog.mode() == XdpMode::Native
        && is_paired_virtual(&cfg.interface)
    {
        // veth: XDP_TX frames in native mode are flushed to the peer promptly only when the
        // peer has an XDP program (kernel veth_xdp_flush); without one they are dropped
        // (no NAPI) or wait in the peer's ring until other traffic wakes it.
        info!(
            interface = %cfg.interface,
            "xdp.syn_offload = \"auto\": off on a veth in native mode (its XDP_TX frames reach \
             the peer only when the peer has an XDP program); set syn_offload = \"on\" if it \
             has one, or use xdp.mode = \"generic\""
        );
        return Ok(None);
    }
    let mut setup = || -> Result<Occupancy> {
        publish_cookies(prog, jar)?;
        let (cells, key) = prog.occupancy()?;
        Occupancy::new(Arc::new(cells), key)
            .context("the XDP occupancy map does not have a power-of-two size")
    };
    match (setup(), cfg.xdp.syn_offload) {
        (Ok(occ), _) => Ok(Some(occ)),
        (Err(e), SynOffloadMode::On) => Err(e.context(
            "xdp.syn_offload = \"on\": the SYN offload could not be set up (use \"auto\" or \"off\")",
        )),
        (Err(e), _) => {
            warn!("xdp.syn_offload = \"auto\": SYN offload off: {e:#}");
            Ok(None)
        }
    }
}

/// Whether `ifname` is a veth (its driver, as `ethtool -i` reports it).
fn is_paired_virtual(ifname: &str) -> bool {
    crate::io::ethtool::driver_name(ifname).as_deref() == Some("veth")
}

/// Switch the SYN offload on with the listeners of `core` and the workers' clock origin.
fn enable_syn_offload(prog: &mut XdpProgram, core: &CoreConfig, origin: Instant) -> Result<()> {
    prog.set_syn_offload(&SynOffload {
        listeners: syn_answers(core),
        clock_origin_ns: clock_origin_ns(origin),
        // One budget for both paths: tcp.reset_limit resets per second and CPU (RFC 9293
        // §3.10.7.2 RSTs for ACKs whose cookie fails), a burst of one second's worth.
        rst_per_sec: core.reset_limit,
    })
}

/// The steering of `n > 1` workers: key and indirection table from the interface's RSS
/// (or as `steering.rss_key` says), logged with where they came from.
fn nic_steering(cfg: &Config, n: usize) -> rss::Resolved {
    let nic = crate::io::ethtool::read_rss(&cfg.interface);
    let resolved = rss::resolve(cfg.steering.rss_key, nic, n);
    info!(
        interface = %cfg.interface,
        key = resolved.key_from,
        table = resolved.table_from,
        entries = resolved.rss.reta().len(),
        "RSS steering"
    );
    if let Some(why) = &resolved.nic_unused {
        info!(
            interface = %cfg.interface,
            "the interface's RSS is not used ({why}): software steering with a {} key and an \
             even table; frames that land on another worker are handed over",
            resolved.key_from
        );
    }
    if resolved.unserved_entries > 0 {
        warn!(
            interface = %cfg.interface,
            entries = resolved.unserved_entries,
            "the RSS indirection table sends flows to queues without a worker: run \
             `ethtool -X {} equal {n}`",
            cfg.interface
        );
    }
    resolved
}

struct Running {
    cpu: usize,
    queue: u32,
    zerocopy: bool,
    published: Arc<Published>,
}

fn report(
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

/// What SIGHUP may change without a restart, and the messages that change it.
fn reload_messages(old: &Config, new: &Config) -> (Vec<Control>, Vec<String>) {
    let mut msgs = Vec::new();
    let mut ignored = Vec::new();
    if old.listen != new.listen {
        msgs.push(Control::Listeners(
            new.listen.iter().map(|l| (l.port, l.mode)).collect(),
        ));
    }
    if old.http != new.http {
        msgs.push(Control::Http(HttpResponses::new(
            new.http.status,
            &new.http.content_type,
            &new.http.body,
        )));
    }
    if old.tcp.cookie_secret != new.tcp.cookie_secret {
        if let Some(s) = new.tcp.cookie_secret {
            msgs.push(Control::RotateSecret(s));
        } else {
            ignored.push("tcp.cookie_secret (removing it keeps the current secret)".to_owned());
        }
    }
    let mut restart = |name: &str, same: bool| {
        if !same {
            ignored.push(format!("{name} (needs a restart)"));
        }
    };
    restart("interface", old.interface == new.interface);
    restart("addresses", old.addresses == new.addresses);
    restart("workers", old.workers == new.workers);
    restart("xdp", old.xdp == new.xdp);
    restart("steering", old.steering == new.steering);
    restart("ops", old.ops == new.ops);
    let mut old_tcp = old.tcp.clone();
    old_tcp.cookie_secret = new.tcp.cookie_secret;
    restart("tcp (except cookie_secret)", old_tcp == new.tcp);
    (msgs, ignored)
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

/// What `run_until` sets up before any worker starts: the resolved config, the attached
/// XDP program, the per-core configuration fitted to the link, the cookie jar and the SYN
/// offload's occupancy filter.
struct RunPlan {
    cfg: Config,
    prog: XdpProgram,
    mode: XdpMode,
    mac: [u8; 6],
    core_cfg: CoreConfig,
    jar: CookieJar,
    occupancy: Option<Occupancy>,
}

/// Attach the XDP program for `cfg` and build the per-core configuration.
fn setup(cfg: Config) -> Result<RunPlan> {
    let jar = match cfg.tcp.cookie_secret {
        Some(s) => CookieJar::new(s),
        None => CookieJar::random(),
    };
    info!(
        config = %cfg.to_toml_redacted().lines().filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; "),
        "resolved configuration"
    );
    let mut prog = XdpProgram::attach_with(
        &cfg.interface,
        cfg.xdp.mode,
        cfg.xdp.attach,
        &xdp_filter(&cfg),
    )?;
    let mode = prog.mode();
    let mac = interface_mac(&cfg.interface)?;
    let core_cfg = link_core_config(&cfg)?;
    let occupancy = prepare_syn_offload(&cfg, &mut prog, &jar)?;
    info!(
        interface = %cfg.interface,
        xdp_mode = ?mode,
        addresses = ?cfg.addresses,
        listeners = ?core_cfg.listeners,
        "XDP program attached"
    );
    Ok(RunPlan {
        cfg,
        prog,
        mode,
        mac,
        core_cfg,
        jar,
        occupancy,
    })
}

/// What the XDP program steers to the sockets: TCP to our addresses and ports (and, in
/// standalone mode, neighbour discovery for our addresses).
fn xdp_filter(cfg: &Config) -> Filter {
    let (mut ipv4, mut ipv6) = (Vec::new(), Vec::new());
    for a in &cfg.addresses {
        match a {
            IpAddr::V4(a) => ipv4.push(*a),
            IpAddr::V6(a) => ipv6.push(*a),
        }
    }
    Filter {
        ipv4,
        ipv6,
        ports: cfg.listen.iter().map(|l| l.port).collect(),
        standalone: cfg.xdp.standalone,
    }
}

/// The per-core configuration of `cfg` for its interface: the MSS lowered to fit the MTU
/// and the random key of the challenge ACK budget.
fn link_core_config(cfg: &Config) -> Result<CoreConfig> {
    // RFC 9293 §3.7.1: no segment larger than the link carries. Like Linux's advmss from
    // the route MTU, the MSS we advertise and send with is lowered to fit the interface.
    let mtu = interface_mtu(&cfg.interface)?;
    let link_mss = crate::tcp::mss_for_mtu(mtu);
    anyhow::ensure!(
        link_mss >= 536,
        "interface {}: MTU {mtu} is below the 576 bytes TCP needs (RFC 9293 §3.7.1); raise it",
        cfg.interface
    );
    let mut core_cfg = core_config(cfg);
    // The key of the per-second challenge ACK budget draw (tcp::conn::ChallengeLimiter):
    // the tcp layer reads no RNG, so the randomness comes in here.
    getrandom::fill(&mut core_cfg.params.challenge_ack_key)
        .map_err(|e| anyhow::anyhow!("challenge ACK key: the OS random source failed: {e}"))?;
    if core_cfg.params.mss > link_mss {
        warn!(
            "tcp.mss {} lowered to {link_mss} to fit the MTU {mtu} of {}",
            core_cfg.params.mss, cfg.interface
        );
        core_cfg.params.mss = link_mss;
    }
    Ok(core_cfg)
}

/// What every worker is built from.
struct WorkerShared<'a> {
    cfg: &'a Config,
    core_cfg: &'a CoreConfig,
    jar: &'a CookieJar,
    occupancy: &'a Option<Occupancy>,
    mode: XdpMode,
    mac: [u8; 6],
    clock0: &'a Clock,
    start: Instant,
    steering: Option<&'a rss::Resolved>,
    queues: &'a [Arc<HandoffQueue>],
    capture: Option<(
        engine::CaptureMode,
        &'a crossbeam::channel::Sender<engine::Captured>,
    )>,
    stop: &'a Arc<AtomicBool>,
}

/// Open worker `i`'s AF_XDP socket on queue `i`, register it with the XDP program, build
/// its stack and start its thread pinned to `cpu`.
fn spawn_worker(
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

/// Once the workers run: hand SYNs to the XDP program (`xdp.syn_offload`). `on` fails
/// the start if it cannot; `auto` goes on without it.
fn switch_on_syn_offload(plan: &mut RunPlan, start: Instant) -> Result<()> {
    if plan.occupancy.is_none() {
        return Ok(());
    }
    match (
        enable_syn_offload(&mut plan.prog, &plan.core_cfg, start),
        plan.cfg.xdp.syn_offload,
    ) {
        (Ok(()), _) => info!("SYN offload on: the XDP program answers SYNs"),
        (Err(e), SynOffloadMode::On) => return Err(e.context("xdp.syn_offload = \"on\"")),
        (Err(e), _) => warn!("xdp.syn_offload = \"auto\": SYN offload off: {e:#}"),
    }
    Ok(())
}

/// The control thread's state while the workers run.
struct ControlLoop {
    plan: RunPlan,
    start: Instant,
    running: Vec<Running>,
    controls: Vec<crossbeam::channel::Sender<Control>>,
    /// The control thread's copy of the workers' jars: it follows every rotation, so the
    /// XDP program always holds the keys the workers hold.
    ctl_jar: CookieJar,
    forget_secret_at: Option<Instant>,
    last_cookie_publish: Instant,
    interval: Duration,
    next: Instant,
    last: Counters,
    last_rep: Report,
    last_t: Instant,
    latest_metrics: Arc<std::sync::Mutex<String>>,
}

impl ControlLoop {
    fn new(
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

    fn report(&self) -> (Report, Counters) {
        let p = &self.plan;
        report(&p.cfg, p.mode, self.start, &self.running, &p.prog)
    }

    /// Serve Prometheus metrics (`ops.metrics`) from a thread of its own.
    fn serve_metrics(&self, stop: &Arc<AtomicBool>) -> Result<Option<std::thread::JoinHandle<()>>> {
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

    /// SIGHUP: apply what can change while running (listeners, HTTP response, cookie
    /// secret); say what needs a restart.
    fn apply_reload(&mut self, new: Config) {
        let (msgs, ignored) = reload_messages(&self.plan.cfg, &new);
        for name in &ignored {
            warn!("SIGHUP: not applied: {name}");
        }
        let p = &mut self.plan;
        if new.listen != p.cfg.listen {
            let ports: Vec<u16> = new.listen.iter().map(|l| l.port).collect();
            if let Err(e) = p.prog.set_ports(&ports) {
                warn!("SIGHUP: updating the XDP port map: {e:#}");
            }
            p.core_cfg.listeners = core_config(&new).listeners;
            if p.prog.syn_offload_enabled() {
                if let Err(e) = enable_syn_offload(&mut p.prog, &p.core_cfg, self.start) {
                    warn!("SIGHUP: updating the XDP listeners: {e:#}");
                }
            }
        }
        for m in &msgs {
            if let Control::RotateSecret(s) = m {
                // Old cookies stay valid for one validity period (two minutes).
                self.forget_secret_at = Some(Instant::now() + Duration::from_secs(120));
                self.ctl_jar.rotate(*s);
                if p.occupancy.is_some() {
                    if let Err(e) = publish_cookies(&mut p.prog, &self.ctl_jar) {
                        warn!("SIGHUP: publishing the new secret to XDP: {e:#}");
                    }
                }
            }
            for c in &self.controls {
                let _ = c.send(m.clone());
            }
        }
        info!(
            changes = msgs.len(),
            "SIGHUP: configuration reloaded; established connections kept"
        );
        p.cfg.listen = new.listen;
        p.cfg.http = new.http;
        p.cfg.tcp.cookie_secret = new.tcp.cookie_secret;
    }

    /// Forget the previous cookie secret when its period is over, and keep the XDP
    /// program's keys and minute counter current (published at most once a second; the
    /// map is written only when something changed).
    fn tick_secrets(&mut self) {
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

    /// Every `ops.stats_interval_ms`: the stats view, the stats JSON and the metrics.
    fn tick_stats(&mut self) {
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

    /// Join the workers (their drain sends our FINs), the capture writer and the metrics
    /// thread; write the last stats and log the summary; detach the XDP program.
    fn shutdown(
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

/// Run the veth lab demo.
pub fn lab(opts: LabOptions) -> Result<()> {
    crate::lab::run(opts)
}

/// A clock reading for callers outside the loop (tests, the lab).
pub fn clock_now(start: Instant) -> Clock {
    engine::wall_clock(start)
}
