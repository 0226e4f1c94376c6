//! Setup: from a `Config` to the [`RunPlan`] the workers are built from (the attached XDP
//! program, the per-core configuration fitted to the link, the cookie jar, the SYN
//! offload's keys and occupancy filter).

use crate::config::{Config, FullPolicy, SynOffloadMode};
use crate::engine::rss;
use crate::io::bpf::{clock_origin_ns, Filter, SynAnswer, SynOffload, XdpProgram};
use crate::io::sys::{interface_mac, interface_mtu};
use crate::io::XdpMode;
use crate::table::occupancy::Occupancy;
use crate::table::CoreConfig;
use crate::tcp::cookie::{self, CookieJar};
use crate::tcp::responder::HttpResponses;
use crate::tcp::Params;
use anyhow::{Context, Result};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

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
pub(super) fn publish_cookies(prog: &mut XdpProgram, jar: &CookieJar) -> Result<()> {
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
pub(super) fn prepare_syn_offload(
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
pub(super) fn is_paired_virtual(ifname: &str) -> bool {
    crate::io::ethtool::driver_name(ifname).as_deref() == Some("veth")
}

/// Switch the SYN offload on with the listeners of `core` and the workers' clock origin.
pub(super) fn enable_syn_offload(
    prog: &mut XdpProgram,
    core: &CoreConfig,
    origin: Instant,
) -> Result<()> {
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
pub(super) fn nic_steering(cfg: &Config, n: usize) -> rss::Resolved {
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

/// What `run_until` sets up before any worker starts: the resolved config, the attached
/// XDP program, the per-core configuration fitted to the link, the cookie jar and the SYN
/// offload's occupancy filter.
pub(super) struct RunPlan {
    pub(super) cfg: Config,
    pub(super) prog: XdpProgram,
    pub(super) mode: XdpMode,
    pub(super) mac: [u8; 6],
    pub(super) core_cfg: CoreConfig,
    pub(super) jar: CookieJar,
    pub(super) occupancy: Option<Occupancy>,
}

/// Attach the XDP program for `cfg` and build the per-core configuration.
pub(super) fn setup(cfg: Config) -> Result<RunPlan> {
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
pub(super) fn xdp_filter(cfg: &Config) -> Filter {
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
pub(super) fn link_core_config(cfg: &Config) -> Result<CoreConfig> {
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

/// Once the workers run: hand SYNs to the XDP program (`xdp.syn_offload`). `on` fails
/// the start if it cannot; `auto` goes on without it.
pub(super) fn switch_on_syn_offload(plan: &mut RunPlan, start: Instant) -> Result<()> {
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
