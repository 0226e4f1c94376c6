//! Command-line overrides: the flags of `synack run` and `check-config` over a config,
//! the options of `synack lab`, and the checks of the flags of `synack gen`. Each value is
//! checked against the same rules as the file ([`super::rules`]), and an error names the
//! flag with the table's hint.

use std::net::IpAddr;
use std::path::PathBuf;

use super::checks::{
    available_cpus, check_addresses, check_interface, check_listeners, check_path, check_workers,
    parse_cpu_list, parse_listener,
};
use super::rules::flag_rule_of;
use super::{Config, ConfigError, SynOffloadMode, View};
use crate::forms::parse_hex;
use crate::io::{CaptureMode, XdpAttach, XdpMode};

/// Values given on the command line: the enum-valued ones already parsed by their one
/// `FromStr` (clap calls it), the others as text. [`Overrides::apply`] checks each against
/// the same rules as the file (errors name the flag) and writes it over the file's
/// value; a repeatable flag replaces the file's whole list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--interface NAME`.
    pub interface: Option<String>,
    /// `--address IP`, repeatable.
    pub addresses: Vec<String>,
    /// `--listen PORT[:MODE]`, repeatable.
    pub listen: Vec<String>,
    /// `--workers CPU_LIST`.
    pub workers: Option<String>,
    /// `--xdp-mode auto|native|generic`.
    pub xdp_mode: Option<XdpMode>,
    /// `--syn-offload auto|on|off`.
    pub syn_offload: Option<SynOffloadMode>,
    /// `--xdp-attach exclusive|replace|dispatcher`.
    pub xdp_attach: Option<XdpAttach>,
    /// `--cookie-secret HEX`.
    pub cookie_secret: Option<String>,
    /// `--ready-file PATH`.
    pub ready_file: Option<PathBuf>,
    /// `--stats-json PATH`.
    pub stats_json: Option<PathBuf>,
    /// `--metrics ADDR:PORT`.
    pub metrics: Option<String>,
    /// `--capture PATH`.
    pub capture: Option<PathBuf>,
    /// `--capture-mode MODE`.
    pub capture_mode: Option<CaptureMode>,
    /// `--quiet` / `--json-lines` / `--table`.
    pub view: Option<View>,
}

impl Overrides {
    /// Write the flags over `cfg`. Call [`Config::validate`] afterwards for the settings
    /// no flag touched and for cross-field rules.
    pub fn apply(&self, cfg: &mut Config) -> Result<(), ConfigError> {
        let flag = ConfigError::flag;
        if let Some(name) = &self.interface {
            check_interface(name).map_err(|p| flag("--interface", p))?;
            cfg.interface = name.clone();
        }
        if !self.addresses.is_empty() {
            let list = self
                .addresses
                .iter()
                .map(|a| {
                    a.trim()
                        .parse()
                        .map_err(|_| format!("{a:?} is not an IP address"))
                })
                .collect::<Result<Vec<IpAddr>, _>>()
                .and_then(|list| check_addresses(&list).map(|()| list))
                .map_err(|p| flag("--address", p))?;
            cfg.addresses = list;
        }
        if !self.listen.is_empty() {
            let list = self
                .listen
                .iter()
                .map(|l| parse_listener(l))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|list| check_listeners(&list).map(|()| list))
                .map_err(|p| flag("--listen", p))?;
            cfg.listen = list;
        }
        if let Some(w) = &self.workers {
            cfg.workers = workers("--workers", w)?;
        }
        if let Some(m) = self.xdp_mode {
            cfg.xdp.mode = m;
        }
        if let Some(m) = self.syn_offload {
            cfg.xdp.syn_offload = m;
        }
        if let Some(a) = self.xdp_attach {
            cfg.xdp.attach = a;
        }
        if let Some(s) = &self.cookie_secret {
            let key = parse_hex::<16>(s, false).map_err(|p| flag("--cookie-secret", p))?;
            cfg.tcp.cookie_secret = Some(key);
        }
        self.apply_ops(cfg)
    }

    /// The `[ops]` flags.
    fn apply_ops(&self, cfg: &mut Config) -> Result<(), ConfigError> {
        let flag = ConfigError::flag;
        if let Some(p) = &self.ready_file {
            check_path(Some(p)).map_err(|e| flag("--ready-file", e))?;
            cfg.ops.ready_file = Some(p.clone());
        }
        if let Some(p) = &self.stats_json {
            check_path(Some(p)).map_err(|e| flag("--stats-json", e))?;
            if cfg.ops.ready_file.as_deref() == Some(p) {
                return Err(flag(
                    "--stats-json",
                    "is the same file as the ready file".to_owned(),
                ));
            }
            cfg.ops.stats_json = Some(p.clone());
        }
        if let Some(m) = &self.metrics {
            let addr = m
                .trim()
                .parse()
                .map_err(|_| flag("--metrics", format!("{m:?} is not an address:port")))?;
            cfg.ops.metrics = Some(addr);
        }
        if let Some(p) = &self.capture {
            check_path(Some(p)).map_err(|e| flag("--capture", e))?;
            cfg.ops.capture = Some(p.clone());
        }
        if let Some(m) = self.capture_mode {
            cfg.ops.capture_mode = m;
        }
        if let Some(v) = self.view {
            cfg.ops.view = v;
        }
        Ok(())
    }
}

/// A CPU list flag: parsed, each CPU available to this process, each once.
fn workers(name: &str, w: &str) -> Result<Vec<usize>, ConfigError> {
    parse_cpu_list(w)
        .and_then(|list| check_workers(&list, &available_cpus()).map(|()| list))
        .map_err(|p| ConfigError::flag(name, p))
}

/// A bad value of `flag` as clap reports it (the flag's `FromStr` failed): the one-line
/// error with the table's hint. `arg` is clap's name of the argument, such as
/// `--xdp-mode <MODE>`.
pub fn flag_error(arg: &str, problem: impl Into<String>) -> ConfigError {
    let flag = arg.split([' ', '=']).next().unwrap_or(arg);
    ConfigError::flag(flag, problem)
}

/// Check the number given to a flag-only option against its rule (the flag's entry in
/// [`super::rules::FLAG_RULES`]).
pub fn check_flag(flag: &str, v: u64) -> Result<u64, ConfigError> {
    match flag_rule_of(flag) {
        Some(r) => r.allowed.check_u64(v).map(|()| v),
        None => Err(format!("{flag} has no rule")),
    }
    .map_err(|p| ConfigError::flag(flag, p))
}

/// Check a number of seconds given to a flag-only option against its rule.
pub fn check_flag_secs(flag: &str, v: f64) -> Result<f64, ConfigError> {
    match flag_rule_of(flag) {
        Some(r) => r.allowed.check_f64(v).map(|()| v),
        None => Err(format!("{flag} has no rule")),
    }
    .map_err(|p| ConfigError::flag(flag, p))
}

/// Options of `synack lab`, the self-contained veth demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabOptions {
    /// Client connections to open and close (`--connections`). Default: 2000.
    pub connections: u32,
    /// SYN-flood packets to send at most; 0 skips the flood (`--flood-packets`).
    /// Default: 200000.
    pub flood_packets: u64,
    /// Longest the flood may run, in seconds (`--flood-secs`). Default: 5.
    pub flood_secs: u64,
    /// XDP attach mode for the server side. Default: `auto`.
    pub xdp_mode: XdpMode,
    /// The server's `xdp.syn_offload` (`--syn-offload`). Default: `auto` (off on the lab's
    /// native veth).
    pub syn_offload: SynOffloadMode,
    /// Server worker CPUs. Default: `[0]`; [`LabOverrides::resolve`] makes it the first
    /// two CPUs this process may use when it may use two (a 2-queue veth, two workers).
    pub workers: Vec<usize>,
    /// Leave the namespaces and veth pair in place afterwards. Default: false.
    pub keep: bool,
    /// Server nodes behind an ECMP router (`--nodes`); 0 runs the single-server lab.
    /// Default: 0.
    pub nodes: u32,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            connections: 2000,
            flood_packets: 200_000,
            flood_secs: 5,
            xdp_mode: XdpMode::Auto,
            syn_offload: SynOffloadMode::Auto,
            workers: vec![0],
            keep: false,
            nodes: 0,
        }
    }
}

/// Values of `synack lab` flags; see [`LabOverrides::resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabOverrides {
    /// `--connections N`.
    pub connections: Option<String>,
    /// `--flood-packets N`.
    pub flood_packets: Option<String>,
    /// `--flood-secs S`.
    pub flood_secs: Option<String>,
    /// `--xdp-mode auto|native|generic`.
    pub xdp_mode: Option<XdpMode>,
    /// `--syn-offload auto|on|off`.
    pub syn_offload: Option<SynOffloadMode>,
    /// `--workers CPU_LIST`.
    pub workers: Option<String>,
    /// `--keep`.
    pub keep: bool,
    /// `--nodes N` (the multi-node ECMP lab).
    pub nodes: Option<String>,
}

impl LabOverrides {
    /// Parse and check the flags over [`LabOptions::default`].
    pub fn resolve(&self) -> Result<LabOptions, ConfigError> {
        let mut o = LabOptions::default();
        fn num(flag: &'static str, s: &str) -> Result<u64, ConfigError> {
            let n: u64 = s
                .trim()
                .parse()
                .map_err(|_| ConfigError::flag(flag, format!("{s:?} is not a whole number")))?;
            check_flag(flag, n)
        }
        if let Some(s) = &self.nodes {
            o.nodes = num("--nodes", s)? as u32;
            // Every phase of the multi-node lab runs this many (four phases).
            o.connections = 1000;
        }
        if let Some(s) = &self.connections {
            // The rule's range keeps the value within u32.
            o.connections = num("--connections", s)? as u32;
        }
        if let Some(s) = &self.flood_packets {
            o.flood_packets = num("--flood-packets", s)?;
        }
        if let Some(s) = &self.flood_secs {
            o.flood_secs = num("--flood-secs", s)?;
        }
        if let Some(m) = self.xdp_mode {
            o.xdp_mode = m;
        }
        if let Some(m) = self.syn_offload {
            o.syn_offload = m;
        }
        if let Some(w) = &self.workers {
            o.workers = workers("--workers", w)?;
        } else {
            // Two workers on two CPUs where there are two: the lab's veth then gets two
            // queues, and flows that land on the wrong worker are handed off.
            let cpus = available_cpus();
            if cpus.len() >= 2 {
                o.workers = cpus[..2].to_vec();
            }
        }
        o.keep = self.keep;
        Ok(o)
    }
}
