//! Configuration: the schema with its defaults (here), the settings table with every
//! setting's rules ([`rules`]), and the command-line overrides ([`cli`]).
//!
//! The control path turns text into a [`Config`] in three steps, each of which can fail
//! with a [`ConfigError`] whose one-line message names the setting (as a path such as
//! `tcp.time_wait_secs`, or as a flag such as `--listen`) and says how to fix it, with the
//! hint of the setting's entry in the table:
//!
//! 1. [`Config::parse_toml`]: TOML syntax, types and unknown keys (serde with
//!    `deny_unknown_fields`; every section and field has a default, so a partial file is
//!    fine). Enum-valued settings parse through their one `FromStr` ([`crate::forms`]).
//! 2. [`Overrides::apply`]: command-line flags replace single values and whole lists.
//! 3. [`Config::validate`]: the table's ranges, forms and cross-field rules.
//!
//! [`Config::from_toml_str`] and [`Config::load`] do steps 1 and 3. The reference for every
//! setting, with its default, is `config/default.toml` ([`DEFAULT_CONFIG`]), generated from
//! the table ([`rules::default_toml`]); the defaults are the `Default` impls below.

#![forbid(unsafe_code)]

pub mod checks;
pub mod cli;
mod error;
pub mod rules;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::forms::named_enum;
pub use crate::io::ethtool::KeyChoice;
pub use crate::io::CaptureMode;
use crate::io::{XdpAttach, XdpMode, ZeroCopy};
pub use checks::{available_cpus, format_cpu_list, parse_cpu_list, parse_listener};
pub use cli::{check_flag, check_flag_secs, flag_error, LabOptions, LabOverrides, Overrides};
pub use error::ConfigError;

/// The configuration reference, embedded: every setting at its default, with comments
/// ([`rules::default_toml`] writes it). It leaves `interface`, `addresses` and `listen`
/// empty, so it parses into [`Config::default`] but does not validate until those are
/// given.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// Bytes the kernel reserves at the front of every XDP frame (`XDP_PACKET_HEADROOM`).
const XDP_HEADROOM: u32 = 256;
/// Largest header stack in front of a TCP payload we receive: Ethernet (14), IPv6 (40),
/// TCP with a full option block (60).
const MAX_HEADERS: u32 = 14 + 40 + 60;

// ---------------------------------------------------------------------------------------
// The settings
// ---------------------------------------------------------------------------------------

/// The whole configuration of one `synack run`. What each field accepts, its default and
/// what it does in detail are in the settings table ([`rules::SETTINGS`], rendered as
/// `config/default.toml`); the defaults are the `Default` impls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The NIC to attach to.
    pub interface: String,
    /// Addresses we answer for.
    pub addresses: Vec<IpAddr>,
    /// CPU ids to run one worker each on.
    #[serde(deserialize_with = "checks::de_cpu_list")]
    pub workers: Vec<usize>,
    /// Listening ports.
    pub listen: Vec<Listener>,
    /// AF_XDP socket and UMEM settings.
    pub xdp: XdpSettings,
    /// TCP behaviour.
    pub tcp: TcpSettings,
    /// The fixed response of `http` listeners.
    pub http: HttpSettings,
    /// RSS and cross-core handoff.
    pub steering: SteeringSettings,
    /// Readiness and statistics files for operators and scripts.
    pub ops: OpsSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interface: String::new(),
            addresses: Vec::new(),
            workers: vec![0],
            listen: Vec::new(),
            xdp: XdpSettings::default(),
            tcp: TcpSettings::default(),
            http: HttpSettings::default(),
            steering: SteeringSettings::default(),
            ops: OpsSettings::default(),
        }
    }
}

/// One listening port and what it does with accepted connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// TCP port.
    pub port: u16,
    /// What to do with the connection's data.
    #[serde(default)]
    pub mode: ListenMode,
}

/// The application behind a listener: the one listener-mode type, defined where the
/// responder implements it.
pub use crate::tcp::responder::Mode as ListenMode;

/// AF_XDP socket and UMEM settings (per worker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XdpSettings {
    /// How the XDP program attaches.
    pub mode: XdpMode,
    /// What to do when the interface already has an XDP program.
    pub attach: XdpAttach,
    /// UMEM frame size in bytes.
    pub frame_size: u32,
    /// UMEM frames per worker socket.
    pub frame_count: u32,
    /// Entries in each of the fill, completion, RX and TX rings.
    pub ring_size: u32,
    /// Frames handled per poll-loop iteration.
    pub batch_size: usize,
    /// Ask the kernel to busy-poll the socket (`SO_PREFER_BUSY_POLL`).
    pub busy_poll: bool,
    /// AF_XDP zero-copy.
    pub zerocopy: ZeroCopy,
    /// SCHED_FIFO priority of the worker threads; 0 keeps the default policy.
    pub worker_priority: u8,
    /// Answer ARP and IPv6 neighbour solicitations ourselves, for addresses the kernel does
    /// not own.
    pub standalone: bool,
    /// Answer SYNs (and check stateless cookie ACKs) in the XDP program itself.
    pub syn_offload: SynOffloadMode,
}

named_enum! {
    /// `xdp.syn_offload`: whether the XDP program answers SYNs itself.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum SynOffloadMode: "a SYN offload setting" {
        /// On wherever the program attaches; off (with a warning) if it cannot be set up.
        #[default]
        Auto = "auto",
        /// On; starting fails if it cannot be set up.
        On = "on",
        /// Off: every segment for us goes to the workers.
        Off = "off",
    }
}

impl Default for XdpSettings {
    fn default() -> Self {
        XdpSettings {
            mode: XdpMode::Auto,
            attach: XdpAttach::Exclusive,
            frame_size: 2048,
            frame_count: 4096,
            ring_size: 2048,
            batch_size: 64,
            busy_poll: false,
            zerocopy: ZeroCopy::Auto,
            worker_priority: 0,
            standalone: false,
            syn_offload: SynOffloadMode::Auto,
        }
    }
}

/// TCP behaviour.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpSettings {
    /// Our MSS.
    pub mss: u16,
    /// Our receive window in bytes.
    pub window: u32,
    /// Our window scale shift.
    pub window_scale: u8,
    /// Offer and use TCP timestamps (RFC 7323).
    pub timestamps: bool,
    /// When the client closes first and nothing is left to send, put our FIN on the ACK of
    /// theirs (three segments).
    pub fin_with_ack: bool,
    /// TIME-WAIT duration in seconds.
    pub time_wait_secs: u64,
    /// Close connections idle this many seconds.
    pub idle_timeout_secs: u64,
    /// Initial retransmission timeout in ms.
    pub rto_initial_ms: u64,
    /// Upper bound of the retransmission timeout in ms.
    pub rto_max_ms: u64,
    /// Retransmissions before a connection is aborted.
    pub max_retries: u32,
    /// Seconds the peer's window may stay zero while we hold data before the connection is
    /// reset.
    pub persist_timeout_secs: u64,
    /// Seconds from our close until our FIN must be acknowledged when data is in the way,
    /// before the connection is reset.
    pub close_timeout_secs: u64,
    /// Connection-table slots per worker.
    pub table_capacity: usize,
    /// What a SYN or cookie ACK gets when the table is full.
    pub table_full: FullPolicy,
    /// Challenge ACKs per core per second.
    pub challenge_ack_limit: u32,
    /// Resets per core per second sent from LISTEN (to an ACK whose cookie fails, a SYN-ACK
    /// to a listener, a refusal when the table is full).
    pub reset_limit: u32,
    /// Verify IPv4 and TCP checksums of received frames.
    pub verify_checksums: bool,
    /// SYN-cookie secret.
    #[serde(
        deserialize_with = "checks::de_hex16",
        serialize_with = "checks::ser_hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub cookie_secret: Option<[u8; 16]>,
    /// Echo/HTTP buffers per worker.
    pub buffers: usize,
    /// Size of one echo/HTTP buffer in bytes.
    pub buffer_size: usize,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            mss: 1460,
            window: 262_144,
            window_scale: 7,
            timestamps: true,
            fin_with_ack: true,
            time_wait_secs: 60,
            idle_timeout_secs: 300,
            rto_initial_ms: 1000,
            rto_max_ms: 60_000,
            max_retries: 6,
            persist_timeout_secs: 120,
            close_timeout_secs: 60,
            table_capacity: 262_144,
            table_full: FullPolicy::Rst,
            challenge_ack_limit: 1000,
            reset_limit: 1000,
            verify_checksums: true,
            cookie_secret: None,
            buffers: 4096,
            buffer_size: 4096,
        }
    }
}

/// Hand-written so that the cookie secret never reaches a log line.
impl fmt::Debug for TcpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSettings")
            .field("mss", &self.mss)
            .field("window", &self.window)
            .field("window_scale", &self.window_scale)
            .field("timestamps", &self.timestamps)
            .field("fin_with_ack", &self.fin_with_ack)
            .field("time_wait_secs", &self.time_wait_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("rto_initial_ms", &self.rto_initial_ms)
            .field("rto_max_ms", &self.rto_max_ms)
            .field("max_retries", &self.max_retries)
            .field("persist_timeout_secs", &self.persist_timeout_secs)
            .field("close_timeout_secs", &self.close_timeout_secs)
            .field("table_capacity", &self.table_capacity)
            .field("table_full", &self.table_full)
            .field("challenge_ack_limit", &self.challenge_ack_limit)
            .field("reset_limit", &self.reset_limit)
            .field("verify_checksums", &self.verify_checksums)
            .field("cookie_secret", &self.cookie_secret.map(|_| "<redacted>"))
            .field("buffers", &self.buffers)
            .field("buffer_size", &self.buffer_size)
            .finish()
    }
}

named_enum! {
    /// What to do with a new connection when the connection table is full.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum FullPolicy: "a table-full policy" {
        /// Refuse with a RST, so the client fails fast.
        #[default]
        Rst = "rst",
        /// Drop silently, so the client retransmits later.
        Drop = "drop",
    }
}

/// The fixed response of `http` listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Status code.
    pub status: u16,
    /// Response body.
    pub body: String,
    /// `Content-Type` header value.
    pub content_type: String,
    /// Seconds a request head may take to arrive, from its first byte (slowloris).
    pub header_timeout_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            status: 200,
            body: "synack\n".to_owned(),
            content_type: "text/plain".to_owned(),
            header_timeout_secs: 20,
        }
    }
}

/// RSS and cross-core handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SteeringSettings {
    /// Where the Toeplitz RSS key (and the indirection table) come from.
    pub rss_key: KeyChoice,
    /// Entries in each worker's queue of segments handed over from other cores.
    pub handoff_queue: usize,
}

impl Default for SteeringSettings {
    fn default() -> Self {
        SteeringSettings {
            rss_key: KeyChoice::Nic,
            handoff_queue: 1024,
        }
    }
}

/// Readiness and statistics files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSettings {
    /// File created once every worker is up (for scripts to wait on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_file: Option<PathBuf>,
    /// File rewritten every `stats_interval_ms` with the counters as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_json: Option<PathBuf>,
    /// Period of the stats file and log line in ms.
    pub stats_interval_ms: u64,
    /// Address and port to serve Prometheus metrics on over HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Write captured frames to this pcapng file (readable by Wireshark/tshark).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<PathBuf>,
    /// Which frames to capture.
    pub capture_mode: CaptureMode,
    /// The per-second live view on stdout.
    pub view: View,
}

named_enum! {
    /// The per-second live view.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum View: "a view" {
        /// A compact per-core table, like xdp-bench.
        Table = "table",
        /// One `stats` log line.
        #[default]
        Log = "log",
        /// One JSON object per line.
        JsonLines = "json-lines",
        /// Nothing.
        Quiet = "quiet",
    }
}

impl Default for OpsSettings {
    fn default() -> Self {
        OpsSettings {
            ready_file: None,
            stats_json: None,
            stats_interval_ms: 1000,
            metrics: None,
            capture: None,
            capture_mode: CaptureMode::Dropped,
            view: View::Log,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------------------

impl Config {
    /// Parse and validate a TOML document.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let cfg = Config::parse_toml(s)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read, parse and validate a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let cfg = Config::read(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read and parse a TOML file without validating it (overrides may still follow).
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse_toml(&text)
    }

    /// Parse a TOML document without validating it: syntax, types and unknown keys only.
    /// Missing settings take their defaults.
    pub fn parse_toml(s: &str) -> Result<Config, ConfigError> {
        // Two steps, so that type errors carry the key path: the parser's own errors
        // carry a source span instead (turned into line and column here).
        let table: toml::Table = s.parse().map_err(|e: toml::de::Error| {
            let (line, column) = line_column(s, e.span().map_or(0, |r| r.start));
            ConfigError::Syntax {
                line,
                column,
                message: e.message().replace('\n', " "),
            }
        })?;
        check_shapes(&table)?;
        Config::deserialize(table).map_err(|e| ConfigError::from_serde(&e))
    }

    /// The resolved configuration as TOML, for `check-config`. The cookie secret is left
    /// out (replaced by a comment) so that it does not end up in terminals and CI logs.
    pub fn to_toml_redacted(&self) -> String {
        let mut shown = self.clone();
        let secret = shown.tcp.cookie_secret.take().is_some();
        let mut out = toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        if secret {
            out.push_str("\n# tcp.cookie_secret is set (not shown)\n");
        }
        out
    }

    /// Check every rule that the types alone do not enforce, in the order of the
    /// settings table ([`rules::check`]). The first problem found is returned, naming its
    /// setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let values = toml::Table::try_from(self)
            .map_err(|e| ConfigError::invalid("(top level)", e.to_string()))?;
        rules::check(self, &values).map_err(|(path, problem)| ConfigError::invalid(path, problem))
    }
}

// The cross-setting checks of the settings table (`Setting::also`), each named by its
// entry's note.

/// `xdp.ring_size`: the fill and TX rings are both full at worst, half the frames each.
fn check_ring_fits_frames(c: &Config) -> Result<(), String> {
    let x = &c.xdp;
    if x.ring_size > x.frame_count / 2 {
        return Err(format!(
            "{} is more than half of xdp.frame_count ({}), so the fill and TX rings could starve each other",
            x.ring_size, x.frame_count
        ));
    }
    Ok(())
}

/// `xdp.batch_size`: one batch fits in a ring.
fn check_batch_fits_ring(c: &Config) -> Result<(), String> {
    let x = &c.xdp;
    if x.batch_size > x.ring_size as usize {
        return Err(format!(
            "{} is larger than xdp.ring_size ({})",
            x.batch_size, x.ring_size
        ));
    }
    Ok(())
}

/// `tcp.rto_max_ms`: the bound of the backed-off RTO (RFC 6298 §5.5) is not below its
/// start.
fn check_rto_max(c: &Config) -> Result<(), String> {
    let t = &c.tcp;
    if t.rto_max_ms < t.rto_initial_ms {
        return Err(format!(
            "{} is below tcp.rto_initial_ms ({})",
            t.rto_max_ms, t.rto_initial_ms
        ));
    }
    Ok(())
}

/// `ops.stats_json`: not the ready file (scripts wait for one and read the other).
fn check_stats_not_ready(c: &Config) -> Result<(), String> {
    if c.ops.ready_file.is_some() && c.ops.ready_file == c.ops.stats_json {
        return Err("is the same file as ops.ready_file".to_owned());
    }
    Ok(())
}

/// `tcp.mss`: a full segment (Ethernet + IPv6 + TCP with options) fits in a frame after
/// the XDP headroom.
fn check_mss_fits(c: &Config) -> Result<(), String> {
    let (mss, frame) = (u32::from(c.tcp.mss), c.xdp.frame_size);
    let usable = frame.saturating_sub(XDP_HEADROOM);
    if mss + MAX_HEADERS > usable {
        return Err(format!(
            "{mss} does not fit: a full segment needs {} bytes but an xdp.frame_size of {frame} leaves {usable}",
            mss + MAX_HEADERS
        ));
    }
    Ok(())
}

/// `tcp.window`: RFC 7323 §2.3: "Since the max window is 2^S (where S is the scaling
/// shift count) times at most 2^16 - 1 (the maximum unscaled window), ..." so a larger
/// window could never be advertised.
fn check_window_fits(c: &Config) -> Result<(), String> {
    let t = &c.tcp;
    let max_window = 65535u64 << t.window_scale.min(14);
    if u64::from(t.window) > max_window {
        return Err(format!(
            "{} cannot be advertised with tcp.window_scale = {} (largest is {max_window}); raise window_scale or lower window",
            t.window, t.window_scale
        ));
    }
    Ok(())
}

/// Sections and listeners must be tables. serde would also build a struct from an array,
/// by position (`tcp = [1460]`), which is never what the writer meant.
fn check_shapes(table: &toml::Table) -> Result<(), ConfigError> {
    for section in ["xdp", "tcp", "http", "steering", "ops"] {
        match table.get(section) {
            None | Some(toml::Value::Table(_)) => {}
            Some(other) => {
                return Err(ConfigError::invalid(
                    section,
                    format!("is a {}, not a table", other.type_str()),
                ))
            }
        }
    }
    if let Some(toml::Value::Array(list)) = table.get("listen") {
        if let Some(other) = list.iter().find(|v| !v.is_table()) {
            return Err(ConfigError::invalid(
                "listen",
                format!("has a {} where a listener table belongs", other.type_str()),
            ));
        }
    }
    Ok(())
}

/// 1-based line and column of byte `offset` in `s`.
fn line_column(s: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(s.len());
    let before = s.get(..offset).unwrap_or(s);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
