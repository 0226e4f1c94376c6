//! Configuration: the TOML file, command-line overrides and validation.
//!
//! The control path turns text into a [`Config`] in three steps, each of which can fail
//! with a [`ConfigError`] whose one-line message names the setting (as a path such as
//! `tcp.time_wait_secs`, or as a flag such as `--listen`) and says how to fix it:
//!
//! 1. [`Config::parse_toml`]: TOML syntax, types and unknown keys (serde with
//!    `deny_unknown_fields`; every section and field has a default, so a partial file is
//!    fine).
//! 2. [`Overrides::apply`]: command-line flags replace single values and whole lists.
//! 3. [`Config::validate`]: ranges, forms and cross-field rules.
//!
//! [`Config::from_toml_str`] and [`Config::load`] do steps 1 and 3. The reference for every
//! setting, with its default, is `config/default.toml` ([`DEFAULT_CONFIG`]); the defaults
//! are also written on each field below and in the `Default` impls.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::engine::rss::KeyChoice;
use crate::io::{XdpAttach, XdpMode, ZeroCopy};

/// The configuration reference, embedded: every setting at its default, with comments.
/// It leaves `interface`, `addresses` and `listen` empty, so it parses into
/// [`Config::default`] but does not validate until those are given.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

/// Linux `IFNAMSIZ` minus the terminating NUL.
const IFNAME_MAX: usize = 15;
/// Bytes the kernel reserves at the front of every XDP frame (`XDP_PACKET_HEADROOM`).
const XDP_HEADROOM: u32 = 256;
/// Largest header stack in front of a TCP payload we receive: Ethernet (14), IPv6 (40),
/// TCP with a full option block (60).
const MAX_HEADERS: u32 = 14 + 40 + 60;
/// Highest CPU id accepted in a CPU list (Linux `CPU_SETSIZE`), so `0-999999999` cannot
/// allocate a huge vector before validation rejects it.
const MAX_CPU_ID: usize = 1023;

// ---------------------------------------------------------------------------------------
// The settings
// ---------------------------------------------------------------------------------------

/// The whole configuration of one `synack run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The NIC to attach to. Required (file or `--interface`); a valid Linux interface
    /// name: 1..=15 bytes, no `/`, `:` or whitespace. Default: empty (unset).
    pub interface: String,
    /// Addresses we answer for; at least one; no unspecified, multicast or broadcast
    /// address, no duplicates. Default: empty (unset).
    pub addresses: Vec<IpAddr>,
    /// CPU ids to run one worker each on, from a list like `"0"`, `"0-1"`, `"0,2-3"` (or
    /// an array `[0, 2]`); each must be a CPU this process may run on; no duplicates.
    /// Default: `[0]`.
    #[serde(deserialize_with = "de_cpu_list")]
    pub workers: Vec<usize>,
    /// Listening ports, at least one; ports unique and non-zero. Default: empty (unset).
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
    /// TCP port, 1..=65535. Required.
    pub port: u16,
    /// What to do with the connection's data. Default: `discard`.
    #[serde(default)]
    pub mode: ListenMode,
}

/// The application behind a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenMode {
    /// Accept data and throw it away (RFC 863).
    #[default]
    Discard,
    /// Send every byte back (RFC 862).
    Echo,
    /// Answer each request with the fixed [`HttpSettings`] response.
    Http,
    /// Complete the handshake, then close (FIN) at once.
    Close,
}

impl ListenMode {
    /// The name used in TOML and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            ListenMode::Discard => "discard",
            ListenMode::Echo => "echo",
            ListenMode::Http => "http",
            ListenMode::Close => "close",
        }
    }
}

/// AF_XDP socket and UMEM settings (per worker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XdpSettings {
    /// How the XDP program attaches: `auto`, `native` or `generic`. Default: `auto`.
    pub mode: XdpMode,
    /// What to do when the interface already has an XDP program: `exclusive` (refuse to
    /// start, naming it), `replace` (detach it with a warning, attach ours) or `dispatcher`
    /// (join libxdp's multi-program dispatcher, next to it). Default: `exclusive`.
    pub attach: XdpAttach,
    /// UMEM frame size in bytes: 2048 or 4096. Default: 2048.
    pub frame_size: u32,
    /// UMEM frames per worker socket: a power of two in 64..=1048576. Default: 4096.
    pub frame_count: u32,
    /// Entries in each of the fill, completion, RX and TX rings: a power of two in
    /// 64..=16384 and at most `frame_count / 2`. Default: 2048.
    pub ring_size: u32,
    /// Frames handled per poll-loop iteration: 1..=256, at most `ring_size`. Default: 64.
    pub batch_size: usize,
    /// Ask the kernel to busy-poll the socket (`SO_PREFER_BUSY_POLL`). Default: false.
    pub busy_poll: bool,
    /// AF_XDP zero-copy: `auto` (whatever the driver gives, reported), `require` (refuse
    /// to start in copy mode) or `off` (bind with XDP_COPY). Default: `auto`.
    pub zerocopy: ZeroCopy,
    /// SCHED_FIFO priority of the worker threads, 1..=99; 0 keeps the default policy.
    /// Default: 0.
    pub worker_priority: u8,
    /// Answer ARP and IPv6 neighbour solicitations ourselves, for addresses the kernel
    /// does not own. Default: false.
    pub standalone: bool,
    /// Answer SYNs (and check stateless cookie ACKs) in the XDP program itself: `auto` (on
    /// wherever the program attaches, except a veth in native mode, whose XDP_TX frames
    /// reach the peer only if the peer runs an XDP program; off with a warning if the
    /// kernel refuses a part of it), `on` (refuse to start without it) or `off`.
    /// Default: `auto`.
    pub syn_offload: SynOffloadMode,
}

/// `xdp.syn_offload`: whether the XDP program answers SYNs itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SynOffloadMode {
    /// On wherever the program attaches; off (with a warning) if it cannot be set up.
    #[default]
    Auto,
    /// On; starting fails if it cannot be set up.
    On,
    /// Off: every segment for us goes to the workers.
    Off,
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
    /// Our MSS: 536..=9000, and a full segment (Ethernet + IPv6 + TCP with options) must
    /// fit in `xdp.frame_size` minus the 256-byte XDP headroom. Default: 1460.
    pub mss: u16,
    /// Our receive window in bytes: 1..=1073725440, at most `65535 << window_scale`.
    /// Default: 262144.
    pub window: u32,
    /// Our window scale shift: 0..=14 (RFC 7323 §2.3). Default: 7.
    pub window_scale: u8,
    /// Offer and use TCP timestamps (RFC 7323). Default: true.
    pub timestamps: bool,
    /// When the client closes first and nothing is left to send, put our FIN on the ACK of
    /// theirs (three segments). `false` sends the ACK and the FIN apart: the classic
    /// four-segment close (RFC 9293 §3.6, figure 12). Default: true.
    pub fin_with_ack: bool,
    /// TIME-WAIT duration in seconds: 0..=600 (RFC 9293 §3.10.7.4 asks for 2×MSL).
    /// Default: 60.
    pub time_wait_secs: u64,
    /// Close connections idle this many seconds; 0 = never; at most 604800.
    /// Default: 300.
    pub idle_timeout_secs: u64,
    /// Initial retransmission timeout in ms: 200..=60000 (RFC 6298 §2.1). Default: 1000.
    pub rto_initial_ms: u64,
    /// Upper bound of the retransmission timeout in ms: `rto_initial_ms..=120000`
    /// (RFC 6298 §2.5). Default: 60000.
    pub rto_max_ms: u64,
    /// Retransmissions before a connection is aborted: 1..=30. Default: 6.
    pub max_retries: u32,
    /// Seconds the peer's window may stay zero while we hold data before the connection
    /// is reset (RFC 6429 allows the abort; sockstress is the attack); 0 = probe as long
    /// as the peer answers (RFC 1122 §4.2.2.17); at most 86400. Default: 120.
    pub persist_timeout_secs: u64,
    /// Seconds from our close (idle timeout, shutdown, `Connection: close`, after the
    /// peer's FIN) until our FIN must be acknowledged when data is in the way, before the
    /// connection is reset: 1..=3600. Default: 60.
    pub close_timeout_secs: u64,
    /// Connection-table slots per worker: 1..=16777216. Default: 262144.
    pub table_capacity: usize,
    /// What a SYN or cookie ACK gets when the table is full: `rst` or `drop`.
    /// Default: `rst`.
    pub table_full: FullPolicy,
    /// Challenge ACKs per core per second: 1..=4294967295 (RFC 5961 §7). Default: 1000.
    pub challenge_ack_limit: u32,
    /// Resets per core per second sent from LISTEN (to an ACK whose cookie fails, a
    /// SYN-ACK to a listener, a refusal when the table is full): 0..=4294967295, 0 never
    /// resets. Default: 1000.
    pub reset_limit: u32,
    /// Verify IPv4 and TCP checksums of received frames. Default: true.
    pub verify_checksums: bool,
    /// SYN-cookie secret: exactly 32 hex digits. Default: absent (random per start).
    #[serde(
        deserialize_with = "de_hex16",
        serialize_with = "ser_hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub cookie_secret: Option<[u8; 16]>,
    /// Echo/HTTP buffers per worker: 1..=1048576. Default: 4096.
    pub buffers: usize,
    /// Size of one echo/HTTP buffer in bytes: 512..=65535. Default: 4096. Echo and http
    /// offer the buffer's free space as their receive window with window shift 0, so it
    /// must fit the 16-bit window field (RFC 7323 §2.3): the window we advertise is the
    /// one we accept.
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

/// What to do with a new connection when the connection table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FullPolicy {
    /// Refuse with a RST, so the client fails fast.
    #[default]
    Rst,
    /// Drop silently, so the client retransmits later.
    Drop,
}

/// The fixed response of `http` listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Status code: 100..=599. Default: 200.
    pub status: u16,
    /// Response body. Default: `"synack\n"`.
    pub body: String,
    /// `Content-Type` header value: non-empty visible ASCII, no CR/LF.
    /// Default: `"text/plain"`.
    pub content_type: String,
    /// Seconds a request head may take to arrive, from its first byte (slowloris): then
    /// 408 and close. 0 = no limit; at most 3600. Default: 20.
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
    /// Where the Toeplitz RSS key (and the indirection table) come from: `"nic"` reads
    /// both from the interface (`ethtool -x`), falling back to a random key and an even
    /// table where it has no RSS; `"random"` takes a random key per start and an even
    /// table; 80 hex digits, or 40 colon-separated bytes as `ethtool -x` prints them, fix
    /// the key (the NIC's table is still used if it has one). Default: `"nic"`.
    #[serde(deserialize_with = "de_rss_key", serialize_with = "ser_rss_key")]
    pub rss_key: KeyChoice,
    /// Entries in each worker's queue of segments handed over from other cores:
    /// 16..=65536. Default: 1024.
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
    /// File created once every worker is up (for scripts to wait on). Default: absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_file: Option<PathBuf>,
    /// File rewritten every `stats_interval_ms` with the counters as JSON.
    /// Default: absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_json: Option<PathBuf>,
    /// Period of the stats file and log line in ms: 100..=60000. Default: 1000.
    pub stats_interval_ms: u64,
    /// Serve Prometheus metrics over HTTP on this address (e.g. "127.0.0.1:9100").
    /// Default: absent (no metrics endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Write captured frames to this pcapng file (readable by Wireshark/tshark).
    /// Default: absent (no capture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<PathBuf>,
    /// Which frames to capture: "dropped" (with the drop reason as packet comment), "all",
    /// or "sample:N" (one received frame in N). Default: "dropped".
    pub capture_mode: String,
    /// The per-second live view on stdout: "table" (a per-core table), "log" (a log line),
    /// "json-lines" (one JSON object a second, for machines) or "quiet". Default: "log".
    pub view: View,
}

/// The per-second live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum View {
    /// A compact per-core table, like xdp-bench.
    Table,
    /// One `stats` log line.
    #[default]
    Log,
    /// One JSON object per line.
    JsonLines,
    /// Nothing.
    Quiet,
}

/// Parse a capture mode: `dropped`, `all` or `sample:N` with N ≥ 1.
pub fn parse_capture_mode(s: &str) -> Result<crate::engine::CaptureMode, String> {
    use crate::engine::CaptureMode;
    match s.trim() {
        "dropped" => Ok(CaptureMode::Dropped),
        "all" => Ok(CaptureMode::All),
        other => match other.strip_prefix("sample:").map(|n| n.parse::<u32>()) {
            Some(Ok(n)) if n >= 1 => Ok(CaptureMode::Sample(n)),
            _ => Err(format!(
                "{other:?} is not dropped, all or sample:N with N >= 1"
            )),
        },
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
            capture_mode: "dropped".to_owned(),
            view: View::Log,
        }
    }
}

/// Options of `synack lab`, the self-contained veth demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabOptions {
    /// Client connections to open and close: 1..=100000. Default: 2000.
    pub connections: u32,
    /// SYN-flood packets to send at most: 0..=10000000 (0 skips the flood).
    /// Default: 200000.
    pub flood_packets: u64,
    /// Longest the flood may run, in seconds: 1..=60. Default: 5.
    pub flood_secs: u64,
    /// XDP attach mode for the server side. Default: `auto`.
    pub xdp_mode: XdpMode,
    /// Server worker CPUs. Default: `[0]`; [`LabOverrides::resolve`] makes it the first
    /// two CPUs this process may use when it may use two (a 2-queue veth, two workers).
    pub workers: Vec<usize>,
    /// Leave the namespaces and veth pair in place afterwards. Default: false.
    pub keep: bool,
    /// Server nodes behind an ECMP router (`--nodes`, 2..=8); 0 runs the single-server
    /// lab. Default: 0.
    pub nodes: u32,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            connections: 2000,
            flood_packets: 200_000,
            flood_secs: 5,
            xdp_mode: XdpMode::Auto,
            workers: vec![0],
            keep: false,
            nodes: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// A configuration problem. Every message is one line that names the setting and says
/// how to fix it; the binary prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}; check the path given to --config", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("TOML syntax error at line {line}, column {column}: {message}; fix the syntax (config/default.toml shows every setting)")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// A key that is no setting (misspelt, or in the wrong section).
    #[error("{key}: unknown key; the keys allowed here are {expected} (config/default.toml lists every setting)")]
    UnknownKey {
        /// Full path of the unknown key, like `tcp.msss`.
        key: String,
        /// The keys allowed in that section.
        expected: String,
    },
    /// A setting in the file (or the default) has a wrong type or value.
    #[error("{field}: {problem}; {hint}")]
    Invalid {
        /// Path of the setting, like `tcp.time_wait_secs`.
        field: String,
        /// What is wrong with the value.
        problem: String,
        /// Allowed range or form, with an example.
        hint: &'static str,
    },
    /// A command-line flag has a wrong value.
    #[error("{flag}: {problem}; {hint}")]
    Flag {
        /// The flag, like `--listen`.
        flag: &'static str,
        /// What is wrong with the value.
        problem: String,
        /// Allowed form, with an example.
        hint: &'static str,
    },
}

impl ConfigError {
    /// The setting path or flag this error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } => Some(key),
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::Flag { flag, .. } => Some(flag),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    fn invalid(field: &str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.to_owned(),
            problem: problem.into(),
            hint: field_hint(field),
        }
    }

    fn flag(flag: &'static str, problem: impl Into<String>) -> Self {
        ConfigError::Flag {
            flag,
            problem: problem.into(),
            hint: flag_hint(flag),
        }
    }

    /// Turn a serde error from deserializing a `toml::Table` into a path-naming error.
    /// toml records the key path of such errors and prints it as a last line
    /// "in `a.b`" (only when, as here, no source text is attached).
    fn from_serde(err: &toml::de::Error) -> Self {
        let text = err.to_string();
        let text = text.trim_end();
        let (message, path) = match text.rsplit_once("\nin `") {
            Some((m, p)) => (m.trim(), p.trim_end_matches('`').to_owned()),
            None => (text, String::new()),
        };
        let join = |base: &str, key: &str| {
            if base.is_empty() {
                key.to_owned()
            } else {
                format!("{base}.{key}")
            }
        };
        if let Some(rest) = message.strip_prefix("unknown field `") {
            if let Some((key, tail)) = rest.split_once('`') {
                let expected = tail
                    .trim_start_matches(',')
                    .trim()
                    .trim_start_matches("expected one of ")
                    .trim_start_matches("expected ")
                    .replace('`', "");
                return ConfigError::UnknownKey {
                    key: join(&path, key),
                    expected,
                };
            }
        }
        if let Some(rest) = message.strip_prefix("missing field `") {
            if let Some((key, _)) = rest.split_once('`') {
                let field = join(&path, key);
                return ConfigError::invalid(&field, "is required but missing");
            }
        }
        let field = if path.is_empty() {
            "(top level)"
        } else {
            &path
        };
        ConfigError::invalid(field, message.replace('\n', " "))
    }
}

/// Allowed range or form of each setting, with an example: the second half of every
/// [`ConfigError::Invalid`] message.
fn field_hint(field: &str) -> &'static str {
    match field {
        "interface" => "give the NIC's kernel name (1 to 15 bytes, no '/', ':' or whitespace), e.g. interface = \"eth1\" in the file or --interface eth1",
        "addresses" => "list the unicast IPv4/IPv6 addresses to serve, e.g. addresses = [\"198.18.0.1\", \"2001:2::1\"] or --address 198.18.0.1",
        "workers" => "give CPU ids this process may run on, as a list like \"0\", \"0-1\" or \"0,2-3\" or an array like [0, 1], e.g. workers = \"0-1\"",
        "listen" => "add [[listen]] tables with unique ports, e.g. [[listen]] port = 80, mode = \"http\", or --listen 80:http",
        "listen.port" => "use a port 1..=65535, unique across listeners, e.g. port = 80",
        "listen.mode" => "use discard, echo, http or close, e.g. mode = \"echo\"",
        "xdp" => "write the section as a table: [xdp] followed by its keys, e.g. frame_size = 2048",
        "tcp" => "write the section as a table: [tcp] followed by its keys, e.g. mss = 1460",
        "http" => "write the section as a table: [http] followed by its keys, e.g. status = 200",
        "steering" => "write the section as a table: [steering] followed by its keys, e.g. handoff_queue = 1024",
        "ops" => "write the section as a table: [ops] followed by its keys, e.g. stats_interval_ms = 1000",
        "xdp.mode" => "use auto, native or generic, e.g. mode = \"auto\"",
        "xdp.syn_offload" => "use auto, on or off, e.g. syn_offload = \"auto\"",
        "xdp.attach" => "use exclusive, replace or dispatcher, e.g. attach = \"exclusive\"",
        "xdp.frame_size" => "use 2048 or 4096, e.g. frame_size = 2048",
        "xdp.frame_count" => "use a power of two in 64..=1048576, e.g. frame_count = 4096",
        "xdp.ring_size" => "use a power of two in 64..=16384 and at most xdp.frame_count / 2, e.g. ring_size = 2048",
        "xdp.batch_size" => "use 1..=256 and at most xdp.ring_size, e.g. batch_size = 64",
        "xdp.busy_poll" => "use true or false, e.g. busy_poll = false",
        "xdp.worker_priority" => "use 0 (default policy) or a SCHED_FIFO priority 1..=99, e.g. worker_priority = 50",
        "xdp.zerocopy" => "use auto, require or off, e.g. zerocopy = \"auto\"",
        "xdp.standalone" => "use true or false, e.g. standalone = false",
        "tcp.mss" => "use 536..=9000, with mss + 114 header bytes + 256 XDP headroom <= xdp.frame_size, e.g. mss = 1460",
        "tcp.window" => "use 1..=1073725440 bytes and at most 65535 << tcp.window_scale, e.g. window = 262144",
        "tcp.window_scale" => "use a shift of 0..=14 (RFC 7323 §2.3), e.g. window_scale = 7",
        "tcp.timestamps" => "use true or false, e.g. timestamps = true",
        "tcp.fin_with_ack" => "use true or false, e.g. fin_with_ack = true",
        "tcp.time_wait_secs" => "use 0..=600 seconds, e.g. time_wait_secs = 60",
        "tcp.idle_timeout_secs" => "use 0 (never) up to 604800 seconds, e.g. idle_timeout_secs = 300",
        "tcp.rto_initial_ms" => "use 200..=60000 ms (RFC 6298 §2.1 suggests 1000), e.g. rto_initial_ms = 1000",
        "tcp.rto_max_ms" => "use tcp.rto_initial_ms..=120000 ms (RFC 6298 §2.5: at least 60000 is allowed), e.g. rto_max_ms = 60000",
        "tcp.max_retries" => "use 1..=30, e.g. max_retries = 6",
        "tcp.persist_timeout_secs" => "use 0 (probe a zero window as long as the peer answers) up to 86400 seconds, e.g. persist_timeout_secs = 120",
        "tcp.close_timeout_secs" => "use 1..=3600 seconds, e.g. close_timeout_secs = 60",
        "tcp.table_capacity" => "use 1..=16777216 connections per worker, e.g. table_capacity = 262144",
        "tcp.table_full" => "use rst or drop, e.g. table_full = \"rst\"",
        "tcp.challenge_ack_limit" => "use 1..=4294967295 challenge ACKs per core per second (RFC 5961 §7), e.g. challenge_ack_limit = 1000",
        "tcp.reset_limit" => "use 0 (never reset) up to 4294967295 resets per core per second from LISTEN, e.g. reset_limit = 1000",
        "tcp.verify_checksums" => "use true or false, e.g. verify_checksums = true",
        "tcp.cookie_secret" => "use exactly 32 hex digits, e.g. cookie_secret = \"00112233445566778899aabbccddeeff\", or leave it out for a random secret per start",
        "tcp.buffers" => "use 1..=1048576 buffers per worker, e.g. buffers = 4096",
        "tcp.buffer_size" => "use 512..=65535 bytes: echo and http offer the free buffer as an unscaled receive window, and a 16-bit window field holds at most 65535 (RFC 7323 §2.3), e.g. buffer_size = 4096",
        "http.status" => "use a status code 100..=599, e.g. status = 200",
        "http.body" => "use a string, e.g. body = \"synack\\n\"",
        "http.header_timeout_secs" => "use 0 (no limit) up to 3600 seconds, e.g. header_timeout_secs = 20",
        "http.content_type" => "use a non-empty media type of visible ASCII without CR/LF, e.g. content_type = \"text/plain\"",
        "steering.rss_key" => "use \"nic\" (the interface's key and table, the default), \"random\" (a new key per start), or a fixed key of 80 hex digits or 40 colon-separated bytes as ethtool -x prints them, e.g. rss_key = \"nic\"",
        "steering.handoff_queue" => "use 16..=65536 entries, e.g. handoff_queue = 1024",
        "ops.ready_file" => "use a file path, e.g. ready_file = \"/run/synack.ready\", or leave it out",
        "ops.stats_json" => "use a file path other than ops.ready_file, e.g. stats_json = \"/run/synack-stats.json\", or leave it out",
        "ops.stats_interval_ms" => "use 100..=60000 ms, e.g. stats_interval_ms = 1000",
        "ops.metrics" => "use an address:port to serve Prometheus metrics on, e.g. metrics = \"127.0.0.1:9100\", or leave it out",
        "ops.capture" => "use a pcapng file path, e.g. capture = \"/tmp/synack.pcapng\", or leave it out",
        "ops.capture_mode" => "use dropped, all or sample:N (N >= 1), e.g. capture_mode = \"sample:100\"",
        "ops.view" => "use table, log, json-lines or quiet, e.g. view = \"table\"",
        _ => "see config/default.toml for every setting, its allowed values and an example",
    }
}

/// Allowed form of each command-line flag, with an example.
fn flag_hint(flag: &str) -> &'static str {
    match flag {
        "--interface" => "give the NIC's kernel name (1 to 15 bytes, no '/', ':' or whitespace), e.g. --interface eth1",
        "--address" => "give a unicast IPv4 or IPv6 address, e.g. --address 198.18.0.1 (repeat the flag for more)",
        "--listen" => "give PORT[:MODE] with a unique PORT 1..=65535 and MODE discard, echo, http or close, e.g. --listen 80:http (repeat the flag for more)",
        "--workers" => "give CPU ids this process may run on as a list like 0, 0-1 or 0,2-3, e.g. --workers 0-1",
        "--xdp-mode" => "give auto, native or generic, e.g. --xdp-mode native",
        "--syn-offload" => "give auto, on or off, e.g. --syn-offload off",
        "--xdp-attach" => "give exclusive, replace or dispatcher, e.g. --xdp-attach dispatcher",
        "--cookie-secret" => "give exactly 32 hex digits, e.g. --cookie-secret 00112233445566778899aabbccddeeff (the file is safer: command lines are visible to other users)",
        "--ready-file" => "give a file path, e.g. --ready-file /run/synack.ready",
        "--stats-json" => "give a file path other than the ready file, e.g. --stats-json /run/synack-stats.json",
        "--connections" => "give a whole number 1..=100000, e.g. --connections 2000",
        "--flood-packets" => "give a whole number 0..=10000000 (0 skips the flood), e.g. --flood-packets 200000",
        "--flood-secs" => "give a whole number of seconds 1..=60, e.g. --flood-secs 5",
        "--nodes" => "give a whole number of server nodes 2..=8, e.g. --nodes 2 (or --nodes alone for 2)",
        "--metrics" => "give an address:port, e.g. --metrics 127.0.0.1:9100",
        "--capture" => "give a pcapng file path, e.g. --capture /tmp/synack.pcapng",
        "--capture-mode" => "give dropped, all or sample:N (N >= 1), e.g. --capture-mode sample:100",
        "--log-level" => "give error, warn, info, debug, trace or off, or a filter like synack=debug,info",
        _ => "see synack --help",
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

    /// Check every rule that the types alone do not enforce. The first problem found is
    /// returned, naming its setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let inv = ConfigError::invalid;
        check_interface(&self.interface).map_err(|p| inv("interface", p))?;
        check_addresses(&self.addresses).map_err(|p| inv("addresses", p))?;
        check_workers(&self.workers, &available_cpus()).map_err(|p| inv("workers", p))?;
        check_listeners(&self.listen).map_err(|p| inv("listen", p))?;

        let x = &self.xdp;
        if x.frame_size != 2048 && x.frame_size != 4096 {
            return Err(inv(
                "xdp.frame_size",
                format!("{} is not allowed", x.frame_size),
            ));
        }
        check_pow2(u64::from(x.frame_count), 64, 1 << 20).map_err(|p| inv("xdp.frame_count", p))?;
        check_pow2(u64::from(x.ring_size), 64, 16384).map_err(|p| inv("xdp.ring_size", p))?;
        if x.ring_size > x.frame_count / 2 {
            // Fill and TX rings are both full at worst: half the frames each.
            return Err(inv(
                "xdp.ring_size",
                format!(
                    "{} is more than half of xdp.frame_count ({}), so the fill and TX rings could starve each other",
                    x.ring_size, x.frame_count
                ),
            ));
        }
        check_range(x.batch_size as u64, 1, 256).map_err(|p| inv("xdp.batch_size", p))?;
        check_range(u64::from(x.worker_priority), 0, 99)
            .map_err(|p| inv("xdp.worker_priority", p))?;
        if x.batch_size > x.ring_size as usize {
            return Err(inv(
                "xdp.batch_size",
                format!(
                    "{} is larger than xdp.ring_size ({})",
                    x.batch_size, x.ring_size
                ),
            ));
        }

        let t = &self.tcp;
        check_range(u64::from(t.mss), 536, 9000).map_err(|p| inv("tcp.mss", p))?;
        let usable = x.frame_size - XDP_HEADROOM;
        if u32::from(t.mss) + MAX_HEADERS > usable {
            return Err(inv(
                "tcp.mss",
                format!(
                    "{} does not fit: a full segment needs {} bytes but an xdp.frame_size of {} leaves {}",
                    t.mss,
                    u32::from(t.mss) + MAX_HEADERS,
                    x.frame_size,
                    usable
                ),
            ));
        }
        // RFC 7323 §2.3: "Thus, the shift count MUST be limited to 14 (which allows
        // windows of 2^30 = 1 GiB)."
        check_range(u64::from(t.window_scale), 0, 14).map_err(|p| inv("tcp.window_scale", p))?;
        check_range(u64::from(t.window), 1, 65535 << 14).map_err(|p| inv("tcp.window", p))?;
        // RFC 7323 §2.3: "Since the max window is 2^S (where S is the scaling shift
        // count) times at most 2^16 - 1 (the maximum unscaled window), ..." so a larger
        // window could never be advertised.
        let max_window = 65535u64 << t.window_scale;
        if u64::from(t.window) > max_window {
            return Err(inv(
                "tcp.window",
                format!(
                    "{} cannot be advertised with tcp.window_scale = {} (largest is {max_window}); raise window_scale or lower window",
                    t.window, t.window_scale
                ),
            ));
        }
        check_range(t.time_wait_secs, 0, 600).map_err(|p| inv("tcp.time_wait_secs", p))?;
        check_range(t.idle_timeout_secs, 0, 604_800)
            .map_err(|p| inv("tcp.idle_timeout_secs", p))?;
        // RFC 6298 §2.1: "... the sender SHOULD set RTO <- 1 second" (the default); lower
        // values are allowed for labs with a known short RTT.
        check_range(t.rto_initial_ms, 200, 60_000).map_err(|p| inv("tcp.rto_initial_ms", p))?;
        // RFC 6298 §2.5: "A maximum value MAY be placed on RTO provided it is at least
        // 60 seconds." (the default); lower maxima trade that for faster failure.
        check_range(t.rto_max_ms, t.rto_initial_ms, 120_000)
            .map_err(|p| inv("tcp.rto_max_ms", p))?;
        check_range(u64::from(t.max_retries), 1, 30).map_err(|p| inv("tcp.max_retries", p))?;
        check_range(t.persist_timeout_secs, 0, 86_400)
            .map_err(|p| inv("tcp.persist_timeout_secs", p))?;
        check_range(t.close_timeout_secs, 1, 3_600)
            .map_err(|p| inv("tcp.close_timeout_secs", p))?;
        check_range(t.table_capacity as u64, 1, 1 << 24)
            .map_err(|p| inv("tcp.table_capacity", p))?;
        check_range(u64::from(t.challenge_ack_limit), 1, u64::from(u32::MAX))
            .map_err(|p| inv("tcp.challenge_ack_limit", p))?;
        check_range(t.buffers as u64, 1, 1 << 20).map_err(|p| inv("tcp.buffers", p))?;
        // The window we accept is the one we advertise (RFC 9293 §3.10.7.4, RFC 7323 §2.3):
        // buffered modes advertise the free buffer unscaled, so it fits 16 bits.
        check_range(t.buffer_size as u64, 512, u64::from(u16::MAX))
            .map_err(|p| inv("tcp.buffer_size", p))?;

        check_range(u64::from(self.http.status), 100, 599).map_err(|p| inv("http.status", p))?;
        check_content_type(&self.http.content_type).map_err(|p| inv("http.content_type", p))?;
        check_range(self.http.header_timeout_secs, 0, 3_600)
            .map_err(|p| inv("http.header_timeout_secs", p))?;

        check_range(self.steering.handoff_queue as u64, 16, 65536)
            .map_err(|p| inv("steering.handoff_queue", p))?;

        let o = &self.ops;
        check_path(o.ready_file.as_deref()).map_err(|p| inv("ops.ready_file", p))?;
        check_path(o.stats_json.as_deref()).map_err(|p| inv("ops.stats_json", p))?;
        if o.ready_file.is_some() && o.ready_file == o.stats_json {
            return Err(inv(
                "ops.stats_json",
                "is the same file as ops.ready_file".to_owned(),
            ));
        }
        check_range(o.stats_interval_ms, 100, 60_000)
            .map_err(|p| inv("ops.stats_interval_ms", p))?;
        check_path(o.capture.as_deref()).map_err(|p| inv("ops.capture", p))?;
        parse_capture_mode(&o.capture_mode).map_err(|p| inv("ops.capture_mode", p))?;
        Ok(())
    }
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

fn check_range(v: u64, min: u64, max: u64) -> Result<(), String> {
    if v < min || v > max {
        Err(format!("{v} is out of range {min}..={max}"))
    } else {
        Ok(())
    }
}

fn check_pow2(v: u64, min: u64, max: u64) -> Result<(), String> {
    check_range(v, min, max)?;
    if v.is_power_of_two() {
        Ok(())
    } else {
        Err(format!("{v} is not a power of two"))
    }
}

/// Linux `dev_valid_name`: 1..=15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
fn check_interface(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is required but not set".to_owned());
    }
    if name.len() > IFNAME_MAX {
        return Err(format!(
            "{name:?} is {} bytes long, more than {IFNAME_MAX}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not an interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        return Err(format!("{name:?} contains the character {c:?}"));
    }
    Ok(())
}

fn check_address(a: IpAddr) -> Result<(), String> {
    if a.is_unspecified() {
        return Err(format!("{a} is the unspecified address"));
    }
    if a.is_multicast() {
        return Err(format!("{a} is a multicast address"));
    }
    if let IpAddr::V4(v4) = a {
        if v4.is_broadcast() {
            return Err(format!("{a} is the broadcast address"));
        }
    }
    Ok(())
}

fn check_addresses(list: &[IpAddr]) -> Result<(), String> {
    if list.is_empty() {
        return Err("is required but empty".to_owned());
    }
    let mut seen = HashSet::new();
    for &a in list {
        check_address(a)?;
        if !seen.insert(a) {
            return Err(format!("{a} is listed twice"));
        }
    }
    Ok(())
}

fn check_listeners(list: &[Listener]) -> Result<(), String> {
    if list.is_empty() {
        return Err("is required but empty: nothing would be served".to_owned());
    }
    let mut seen = HashSet::new();
    for l in list {
        if l.port == 0 {
            return Err("port 0 is not a port one can connect to".to_owned());
        }
        if !seen.insert(l.port) {
            return Err(format!("port {} is listed twice", l.port));
        }
    }
    Ok(())
}

/// CPUs this process may run on: its affinity mask, or `0..available_parallelism`.
pub fn available_cpus() -> Vec<usize> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(|c| c.id).collect(),
        _ => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

fn check_workers(list: &[usize], available: &[usize]) -> Result<(), String> {
    if list.is_empty() {
        return Err("is empty: at least one worker CPU is needed".to_owned());
    }
    let mut seen = HashSet::new();
    for &cpu in list {
        if !available.contains(&cpu) {
            return Err(format!(
                "CPU {cpu} is not available to this process (usable: {})",
                format_cpu_list(available)
            ));
        }
        if !seen.insert(cpu) {
            return Err(format!("CPU {cpu} is listed twice"));
        }
    }
    Ok(())
}

fn check_content_type(ct: &str) -> Result<(), String> {
    if ct.is_empty() {
        return Err("is empty".to_owned());
    }
    // Anything else could end the header early (CR/LF) or break it.
    if let Some(c) = ct.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!("{ct:?} contains the character {c:?}"));
    }
    Ok(())
}

fn check_path(p: Option<&Path>) -> Result<(), String> {
    match p {
        Some(p) if p.as_os_str().is_empty() => Err("is an empty path".to_owned()),
        Some(p) if p.as_os_str().to_string_lossy().ends_with('/') => {
            Err(format!("{} names a directory, not a file", p.display()))
        }
        // These files are replaced by rename: never over a device, pipe or directory
        // (a stats file of /dev/null would replace the device with a regular file).
        Some(p) if std::fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_file()) => {
            Err(format!("{} exists and is not a regular file", p.display()))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// Text forms shared by the file and the command line
// ---------------------------------------------------------------------------------------

/// Parse a CPU list like `0`, `0-1` or `0,2-3` (spaces around items allowed), in order.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("{s:?} has an empty item"));
        }
        let cpu = |t: &str| -> Result<usize, String> {
            let n: usize = t
                .trim()
                .parse()
                .map_err(|_| format!("{t:?} in {s:?} is not a CPU number"))?;
            if n > MAX_CPU_ID {
                return Err(format!(
                    "CPU {n} is above the highest possible id {MAX_CPU_ID}"
                ));
            }
            Ok(n)
        };
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (cpu(a)?, cpu(b)?);
                if a > b {
                    return Err(format!("range {item:?} runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(cpu(item)?),
        }
    }
    Ok(out)
}

/// Format CPU ids compactly, like the kernel does: `0-3,6`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// Parse a listener as written on the command line: `PORT` or `PORT:MODE`.
pub fn parse_listener(s: &str) -> Result<Listener, String> {
    let (port, mode) = match s.split_once(':') {
        Some((p, m)) => (p, Some(m)),
        None => (s, None),
    };
    let port: u16 = port
        .trim()
        .parse()
        .map_err(|_| format!("{port:?} in {s:?} is not a port number"))?;
    if port == 0 {
        return Err("port 0 is not a port one can connect to".to_owned());
    }
    let mode = match mode.map(str::trim) {
        None => ListenMode::default(),
        Some("discard") => ListenMode::Discard,
        Some("echo") => ListenMode::Echo,
        Some("http") => ListenMode::Http,
        Some("close") => ListenMode::Close,
        Some(other) => return Err(format!("{other:?} in {s:?} is not a listener mode")),
    };
    Ok(Listener { port, mode })
}

/// Parse an XDP attach mode: `auto`, `native` or `generic`.
pub fn parse_xdp_mode(s: &str) -> Result<XdpMode, String> {
    match s.trim() {
        "auto" => Ok(XdpMode::Auto),
        "native" => Ok(XdpMode::Native),
        "generic" => Ok(XdpMode::Generic),
        other => Err(format!("{other:?} is not an XDP mode")),
    }
}

/// Parse `xdp.attach` as a flag gives it: `exclusive`, `replace` or `dispatcher`.
pub fn parse_xdp_attach(s: &str) -> Result<XdpAttach, String> {
    match s.trim() {
        "exclusive" => Ok(XdpAttach::Exclusive),
        "replace" => Ok(XdpAttach::Replace),
        "dispatcher" => Ok(XdpAttach::Dispatcher),
        other => Err(format!("{other:?} is not an XDP attach policy")),
    }
}

/// Parse `xdp.syn_offload` as a flag gives it: `auto`, `on` or `off`.
pub fn parse_syn_offload(s: &str) -> Result<SynOffloadMode, String> {
    match s.trim() {
        "auto" => Ok(SynOffloadMode::Auto),
        "on" => Ok(SynOffloadMode::On),
        "off" => Ok(SynOffloadMode::Off),
        other => Err(format!("{other:?} is not a SYN offload setting")),
    }
}

/// Parse exactly `N` bytes of hex. With `colons`, bytes may also be written as
/// colon-separated pairs (`6d:5a:...`, as `ethtool -x` prints).
pub fn parse_hex<const N: usize>(s: &str, colons: bool) -> Result<[u8; N], String> {
    let s = s.trim();
    let digits: String = if colons && s.contains(':') {
        let groups: Vec<&str> = s.split(':').collect();
        if groups.len() != N || groups.iter().any(|g| g.len() != 2) {
            return Err(format!(
                "has {} colon-separated groups, not {N} two-digit bytes",
                groups.len()
            ));
        }
        groups.concat()
    } else {
        s.to_owned()
    };
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("contains {c:?}, which is not a hex digit"));
    }
    if digits.len() != 2 * N {
        return Err(format!("has {} hex digits, not {}", digits.len(), 2 * N));
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = digits.get(2 * i..2 * i + 2).unwrap_or("00");
        *byte = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ser_hex_opt<S: Serializer, const N: usize>(
    v: &Option<[u8; N]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(bytes) => s.serialize_str(&to_hex(bytes)),
        None => s.serialize_none(),
    }
}

fn de_hex16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 16]>, D::Error> {
    let s = String::deserialize(d)?;
    parse_hex::<16>(&s, false)
        .map(Some)
        .map_err(de::Error::custom)
}

fn de_rss_key<'de, D: Deserializer<'de>>(d: D) -> Result<KeyChoice, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim() {
        "nic" => Ok(KeyChoice::Nic),
        "random" => Ok(KeyChoice::Random),
        hex => parse_hex::<40>(hex, true)
            .map(KeyChoice::Fixed)
            .map_err(|e| {
                de::Error::custom(format!("is not \"nic\" or \"random\", and as a key it {e}"))
            }),
    }
}

fn ser_rss_key<S: Serializer>(v: &KeyChoice, s: S) -> Result<S::Ok, S::Error> {
    match v {
        KeyChoice::Nic => s.serialize_str("nic"),
        KeyChoice::Random => s.serialize_str("random"),
        KeyChoice::Fixed(key) => s.serialize_str(&to_hex(key)),
    }
}

/// `workers` in TOML: a CPU-list string, a single integer, or an array of integers.
fn de_cpu_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
    struct CpuList;
    impl<'de> Visitor<'de> for CpuList {
        type Value = Vec<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a CPU list string like \"0,2-3\" or an array of CPU ids")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            parse_cpu_list(s).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            usize::try_from(n)
                .map(|n| vec![n])
                .map_err(|_| E::custom(format!("{n} is not a CPU id")))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            usize::try_from(n)
                .map(|n| vec![n])
                .map_err(|_| E::custom(format!("{n} is not a CPU id")))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(n) = seq.next_element::<usize>()? {
                out.push(n);
            }
            Ok(out)
        }
    }
    d.deserialize_any(CpuList)
}

// ---------------------------------------------------------------------------------------
// Command-line overrides
// ---------------------------------------------------------------------------------------

/// Values given on the command line, still as text. [`Overrides::apply`] parses them,
/// checks each against the same rules as the file (errors name the flag), and writes
/// them over the file's values; a repeatable flag replaces the file's whole list.
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
    pub xdp_mode: Option<String>,
    /// `--syn-offload auto|on|off`.
    pub syn_offload: Option<String>,
    /// `--xdp-attach exclusive|replace|dispatcher`.
    pub xdp_attach: Option<String>,
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
    pub capture_mode: Option<String>,
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
            let mut list = Vec::with_capacity(self.addresses.len());
            for a in &self.addresses {
                let ip: IpAddr = a
                    .trim()
                    .parse()
                    .map_err(|_| flag("--address", format!("{a:?} is not an IP address")))?;
                list.push(ip);
            }
            check_addresses(&list).map_err(|p| flag("--address", p))?;
            cfg.addresses = list;
        }
        if !self.listen.is_empty() {
            let list = self
                .listen
                .iter()
                .map(|l| parse_listener(l))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|p| flag("--listen", p))?;
            check_listeners(&list).map_err(|p| flag("--listen", p))?;
            cfg.listen = list;
        }
        if let Some(w) = &self.workers {
            let list = parse_cpu_list(w).map_err(|p| flag("--workers", p))?;
            check_workers(&list, &available_cpus()).map_err(|p| flag("--workers", p))?;
            cfg.workers = list;
        }
        if let Some(m) = &self.xdp_mode {
            cfg.xdp.mode = parse_xdp_mode(m).map_err(|p| flag("--xdp-mode", p))?;
        }
        if let Some(m) = &self.syn_offload {
            cfg.xdp.syn_offload = parse_syn_offload(m).map_err(|p| flag("--syn-offload", p))?;
        }
        if let Some(m) = &self.xdp_attach {
            cfg.xdp.attach = parse_xdp_attach(m).map_err(|p| flag("--xdp-attach", p))?;
        }
        if let Some(s) = &self.cookie_secret {
            let key = parse_hex::<16>(s, false).map_err(|p| flag("--cookie-secret", p))?;
            cfg.tcp.cookie_secret = Some(key);
        }
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
        if let Some(m) = &self.capture_mode {
            parse_capture_mode(m).map_err(|e| flag("--capture-mode", e))?;
            cfg.ops.capture_mode = m.trim().to_owned();
        }
        if let Some(v) = self.view {
            cfg.ops.view = v;
        }
        Ok(())
    }
}

/// Values of `synack lab` flags, still as text; see [`LabOverrides::resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabOverrides {
    /// `--connections N`.
    pub connections: Option<String>,
    /// `--flood-packets N`.
    pub flood_packets: Option<String>,
    /// `--flood-secs S`.
    pub flood_secs: Option<String>,
    /// `--xdp-mode auto|native|generic`.
    pub xdp_mode: Option<String>,
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
        let flag = ConfigError::flag;
        let mut o = LabOptions::default();
        fn num(flag: &'static str, s: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
            let n: u64 = s
                .trim()
                .parse()
                .map_err(|_| ConfigError::flag(flag, format!("{s:?} is not a whole number")))?;
            check_range(n, min, max).map_err(|p| ConfigError::flag(flag, p))?;
            Ok(n)
        }
        if let Some(s) = &self.nodes {
            o.nodes = num("--nodes", s, 2, 8)? as u32;
            // Every phase of the multi-node lab runs this many (four phases).
            o.connections = 1000;
        }
        if let Some(s) = &self.connections {
            // Range keeps the value within u32.
            o.connections = num("--connections", s, 1, 100_000)? as u32;
        }
        if let Some(s) = &self.flood_packets {
            o.flood_packets = num("--flood-packets", s, 0, 10_000_000)?;
        }
        if let Some(s) = &self.flood_secs {
            o.flood_secs = num("--flood-secs", s, 1, 60)?;
        }
        if let Some(m) = &self.xdp_mode {
            o.xdp_mode = parse_xdp_mode(m).map_err(|p| flag("--xdp-mode", p))?;
        }
        if let Some(w) = &self.workers {
            let list = parse_cpu_list(w).map_err(|p| flag("--workers", p))?;
            check_workers(&list, &available_cpus()).map_err(|p| flag("--workers", p))?;
            o.workers = list;
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

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = include_str!("../config/lab.toml");

    fn err(toml: &str) -> ConfigError {
        match Config::from_toml_str(toml) {
            Ok(c) => panic!("accepted {toml:?}: {c:?}"),
            Err(e) => e,
        }
    }

    /// The top-level keys of a valid document, one line each.
    const TOP: [(&str, &str); 4] = [
        ("interface", "interface = \"synack-srv\""),
        ("addresses", "addresses = [\"198.18.0.1\"]"),
        ("workers", "workers = [0]"),
        ("listen", "listen = [{ port = 80, mode = \"http\" }]"),
    ];

    /// A valid document with top-level key `key`'s line replaced by `line` (or with
    /// `line` added, when `key` is not one of [`TOP`]).
    fn top_with(key: &str, line: &str) -> String {
        let mut lines: Vec<&str> = TOP
            .iter()
            .map(|&(k, l)| if k == key { line } else { l })
            .collect();
        if !TOP.iter().any(|&(k, _)| k == key) {
            lines.insert(0, line);
        }
        lines.join("\n")
    }

    /// A valid document plus `line` in `[section]` (or at the top when `section` is "").
    fn lab_with(section: &str, line: &str) -> String {
        if section.is_empty() {
            format!("{line}\n{}", top_with("", ""))
        } else {
            format!("{}\n[{section}]\n{line}\n", top_with("", ""))
        }
    }

    #[test]
    fn default_toml_parses_into_the_documented_defaults() {
        let cfg = Config::parse_toml(DEFAULT_CONFIG).expect("default.toml parses");
        assert_eq!(cfg, Config::default());
        // The values written in the field docs.
        assert_eq!(cfg.workers, vec![0]);
        assert_eq!(cfg.xdp.mode, XdpMode::Auto);
        assert_eq!(cfg.xdp.attach, XdpAttach::Exclusive);
        assert_eq!((cfg.xdp.frame_size, cfg.xdp.frame_count), (2048, 4096));
        assert_eq!((cfg.xdp.ring_size, cfg.xdp.batch_size), (2048, 64));
        assert!(!cfg.xdp.busy_poll && !cfg.xdp.standalone);
        assert_eq!(cfg.xdp.zerocopy, ZeroCopy::Auto);
        assert_eq!(cfg.xdp.worker_priority, 0);
        let t = &cfg.tcp;
        assert_eq!((t.mss, t.window, t.window_scale), (1460, 262_144, 7));
        assert!(t.timestamps && t.verify_checksums);
        assert_eq!((t.time_wait_secs, t.idle_timeout_secs), (60, 300));
        assert_eq!(
            (t.rto_initial_ms, t.rto_max_ms, t.max_retries),
            (1000, 60_000, 6)
        );
        assert_eq!((t.table_capacity, t.table_full), (262_144, FullPolicy::Rst));
        assert_eq!(t.challenge_ack_limit, 1000);
        assert_eq!((t.persist_timeout_secs, t.close_timeout_secs), (120, 60));
        assert_eq!(cfg.http.header_timeout_secs, 20);
        assert_eq!(t.cookie_secret, None);
        assert_eq!((t.buffers, t.buffer_size), (4096, 4096));
        assert_eq!(cfg.http.status, 200);
        assert_eq!(cfg.http.body, "synack\n");
        assert_eq!(cfg.http.content_type, "text/plain");
        assert_eq!(cfg.steering.rss_key, KeyChoice::Nic);
        assert_eq!(cfg.steering.handoff_queue, 1024);
        assert_eq!(cfg.ops, OpsSettings::default());
        assert_eq!(cfg.ops.stats_interval_ms, 1000);
    }

    #[test]
    fn default_toml_alone_demands_the_interface() {
        let e = err(DEFAULT_CONFIG);
        assert_eq!(e.field(), Some("interface"));
        assert!(e.to_string().contains("--interface eth1"), "{e}");
    }

    #[test]
    fn default_toml_with_its_commented_lab_values_validates() {
        // The commented-out example in default.toml must itself be valid.
        let unset = ["interface = \"\"", "addresses = []", "listen = []"];
        let uncommented: String = DEFAULT_CONFIG
            .lines()
            .filter(|l| !unset.contains(l))
            .map(|l| l.strip_prefix("#> ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = Config::from_toml_str(&uncommented).expect("uncommented example is valid");
        assert_eq!(cfg.interface, "synack-srv");
        assert_eq!(cfg.listen.len(), 4);
    }

    #[test]
    fn lab_toml_is_the_veth_lab_server() {
        let cfg = Config::from_toml_str(LAB).expect("lab.toml is valid");
        assert_eq!(cfg.interface, "synack-srv");
        assert_eq!(
            cfg.addresses,
            vec![
                "198.18.0.1".parse::<IpAddr>().unwrap(),
                "2001:2::1".parse().unwrap()
            ]
        );
        let want = [
            (80, ListenMode::Http),
            (7, ListenMode::Echo),
            (9, ListenMode::Discard),
            (13, ListenMode::Close),
        ];
        let got: Vec<_> = cfg.listen.iter().map(|l| (l.port, l.mode)).collect();
        assert_eq!(got, want);
        assert_eq!(cfg.workers, vec![0]);
        // Everything else at its default.
        assert_eq!(cfg.tcp, TcpSettings::default());
        assert_eq!(cfg.xdp, XdpSettings::default());
    }

    /// Every field, an invalid value: the error names the field path and carries a hint
    /// with an example. (section, line, expected path)
    #[test]
    fn every_field_rejects_an_invalid_value_naming_it() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "interface = \"eth/1\"", "interface"),
            ("", "interface = \"a-very-long-ifname\"", "interface"),
            ("", "interface = \"eth 1\"", "interface"),
            ("", "interface = 7", "interface"),
            ("", "addresses = [\"224.0.0.1\"]", "addresses"),
            ("", "addresses = [\"0.0.0.0\"]", "addresses"),
            ("", "addresses = [\"::\"]", "addresses"),
            ("", "addresses = [\"ff02::1\"]", "addresses"),
            ("", "addresses = [\"255.255.255.255\"]", "addresses"),
            (
                "",
                "addresses = [\"198.18.0.1\", \"198.18.0.1\"]",
                "addresses",
            ),
            ("", "addresses = [\"not-an-ip\"]", "addresses"),
            ("", "addresses = []", "addresses"),
            ("", "workers = \"9999\"", "workers"),
            ("", "workers = \"0,0\"", "workers"),
            ("", "workers = \"3-1\"", "workers"),
            ("", "workers = \"0,,1\"", "workers"),
            ("", "workers = []", "workers"),
            ("", "workers = [-1]", "workers"),
            ("", "workers = true", "workers"),
            ("", "listen = []", "listen"),
            ("", "listen = [{ port = 0 }]", "listen"),
            ("", "listen = [[80, \"http\"]]", "listen"),
            ("", "listen = \"80\"", "listen"),
            (
                "",
                "listen = [{ port = 80 }, { port = 80, mode = \"echo\" }]",
                "listen",
            ),
            ("", "listen = [{ port = 70000 }]", "listen.port"),
            ("", "listen = [{ mode = \"echo\" }]", "listen.port"),
            (
                "",
                "listen = [{ port = 80, mode = \"bogus\" }]",
                "listen.mode",
            ),
            ("xdp", "mode = \"fast\"", "xdp.mode"),
            ("xdp", "attach = \"share\"", "xdp.attach"),
            ("xdp", "frame_size = 3000", "xdp.frame_size"),
            ("xdp", "frame_count = 1000", "xdp.frame_count"),
            ("xdp", "frame_count = 32", "xdp.frame_count"),
            ("xdp", "ring_size = 100", "xdp.ring_size"),
            ("xdp", "ring_size = 4096", "xdp.ring_size"),
            ("xdp", "batch_size = 0", "xdp.batch_size"),
            ("xdp", "batch_size = 257", "xdp.batch_size"),
            ("xdp", "busy_poll = \"yes\"", "xdp.busy_poll"),
            ("xdp", "zerocopy = \"yes\"", "xdp.zerocopy"),
            ("xdp", "worker_priority = 100", "xdp.worker_priority"),
            ("", "xdp = 5", "xdp"),
            ("", "tcp = \"fast\"", "tcp"),
            ("", "http = []", "http"),
            ("", "steering = 1", "steering"),
            ("", "ops = true", "ops"),
            ("xdp", "standalone = 1", "xdp.standalone"),
            ("xdp", "syn_offload = \"yes\"", "xdp.syn_offload"),
            ("tcp", "mss = 500", "tcp.mss"),
            ("tcp", "mss = 9000", "tcp.mss"),
            ("tcp", "mss = 70000", "tcp.mss"),
            ("tcp", "window = 0", "tcp.window"),
            ("tcp", "window = 1073741824", "tcp.window"),
            ("tcp", "window_scale = 15", "tcp.window_scale"),
            ("tcp", "timestamps = \"on\"", "tcp.timestamps"),
            ("tcp", "fin_with_ack = 1", "tcp.fin_with_ack"),
            ("tcp", "time_wait_secs = 601", "tcp.time_wait_secs"),
            ("tcp", "time_wait_secs = -1", "tcp.time_wait_secs"),
            ("tcp", "idle_timeout_secs = 604801", "tcp.idle_timeout_secs"),
            ("tcp", "rto_initial_ms = 100", "tcp.rto_initial_ms"),
            ("tcp", "rto_max_ms = 500", "tcp.rto_max_ms"),
            ("tcp", "rto_max_ms = 120001", "tcp.rto_max_ms"),
            ("tcp", "max_retries = 0", "tcp.max_retries"),
            ("tcp", "max_retries = 31", "tcp.max_retries"),
            (
                "tcp",
                "persist_timeout_secs = 86401",
                "tcp.persist_timeout_secs",
            ),
            ("tcp", "close_timeout_secs = 0", "tcp.close_timeout_secs"),
            ("tcp", "close_timeout_secs = 3601", "tcp.close_timeout_secs"),
            ("tcp", "table_capacity = 0", "tcp.table_capacity"),
            ("tcp", "table_capacity = 16777217", "tcp.table_capacity"),
            ("tcp", "table_full = \"reject\"", "tcp.table_full"),
            ("tcp", "challenge_ack_limit = 0", "tcp.challenge_ack_limit"),
            ("tcp", "reset_limit = -1", "tcp.reset_limit"),
            ("tcp", "reset_limit = 4294967296", "tcp.reset_limit"),
            ("tcp", "verify_checksums = 0", "tcp.verify_checksums"),
            ("tcp", "cookie_secret = \"xyz\"", "tcp.cookie_secret"),
            (
                "tcp",
                "cookie_secret = \"0011223344556677\"",
                "tcp.cookie_secret",
            ),
            ("tcp", "buffers = 0", "tcp.buffers"),
            ("tcp", "buffer_size = 511", "tcp.buffer_size"),
            ("tcp", "buffer_size = 65536", "tcp.buffer_size"),
            ("http", "status = 99", "http.status"),
            ("http", "status = 600", "http.status"),
            (
                "http",
                "header_timeout_secs = 3601",
                "http.header_timeout_secs",
            ),
            ("http", "body = 5", "http.body"),
            ("http", "content_type = \"\"", "http.content_type"),
            (
                "http",
                "content_type = \"text/plain\\r\\nX-Evil: 1\"",
                "http.content_type",
            ),
            ("steering", "rss_key = \"6d5a\"", "steering.rss_key"),
            ("steering", "rss_key = \"6d:5a\"", "steering.rss_key"),
            ("steering", "rss_key = \"nics\"", "steering.rss_key"),
            ("steering", "handoff_queue = 15", "steering.handoff_queue"),
            (
                "steering",
                "handoff_queue = 65537",
                "steering.handoff_queue",
            ),
            ("ops", "ready_file = \"\"", "ops.ready_file"),
            ("ops", "ready_file = 3", "ops.ready_file"),
            ("ops", "stats_json = \"/tmp/\"", "ops.stats_json"),
            (
                "ops",
                "ready_file = \"/tmp/a\"\nstats_json = \"/tmp/a\"",
                "ops.stats_json",
            ),
            ("ops", "stats_interval_ms = 99", "ops.stats_interval_ms"),
            ("ops", "stats_interval_ms = 60001", "ops.stats_interval_ms"),
            ("ops", "metrics = \"nowhere\"", "ops.metrics"),
            ("ops", "metrics = 9100", "ops.metrics"),
            ("ops", "capture = \"\"", "ops.capture"),
            ("ops", "stats_json = \"/dev/null\"", "ops.stats_json"),
            ("ops", "ready_file = \"/tmp\"", "ops.ready_file"),
            ("ops", "capture_mode = \"sample:0\"", "ops.capture_mode"),
            ("ops", "capture_mode = \"some\"", "ops.capture_mode"),
            ("ops", "view = \"fancy\"", "ops.view"),
        ];
        // The table covers every setting: collect all leaf paths of a config with every
        // optional value set, and require a case for each.
        let mut full = Config::from_toml_str(&top_with("", "")).expect("base is valid");
        full.tcp.cookie_secret = Some([1; 16]);
        full.steering.rss_key = KeyChoice::Fixed([1; 40]);
        full.ops.ready_file = Some("/tmp/r".into());
        full.ops.stats_json = Some("/tmp/s".into());
        full.ops.metrics = Some("127.0.0.1:9100".parse().unwrap());
        full.ops.capture = Some("/tmp/c.pcapng".into());
        let table = toml::Table::try_from(&full).expect("config serializes");
        let mut leaves = Vec::new();
        for (k, v) in &table {
            match v {
                toml::Value::Table(t) => leaves.extend(t.keys().map(|f| format!("{k}.{f}"))),
                toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
                    leaves.push(k.clone());
                    if let Some(toml::Value::Table(t)) = a.first() {
                        leaves.extend(t.keys().map(|f| format!("{k}.{f}")));
                    }
                }
                _ => leaves.push(k.clone()),
            }
        }
        assert_eq!(leaves.len(), 50, "{leaves:?}");
        for leaf in &leaves {
            assert!(
                cases.iter().any(|&(_, _, p)| p == leaf),
                "no invalid-value case for {leaf}"
            );
            assert_ne!(
                field_hint(leaf),
                field_hint("?"),
                "no specific hint for {leaf}"
            );
        }

        for &(section, line, path) in cases {
            let doc = if section.is_empty() {
                top_with(path.split('.').next().unwrap_or(path), line)
            } else {
                lab_with(section, line)
            };
            let e = err(&doc);
            let msg = e.to_string();
            assert_eq!(e.field(), Some(path), "{line}: {msg}");
            assert!(msg.starts_with(&format!("{path}: ")), "{line}: {msg}");
            assert!(msg.contains("e.g."), "no hint for {line}: {msg}");
            assert!(!msg.contains('\n'), "multi-line message for {line}: {msg}");
            assert!(
                !matches!(e, ConfigError::Invalid { hint, .. } if hint == field_hint("?")),
                "generic hint for {path}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        for (doc, key) in [
            (lab_with("tcp", "msss = 1460"), "tcp.msss"),
            (lab_with("", "colour = \"blue\""), "colour"),
            (lab_with("bogus", "x = 1"), "bogus"),
            (
                top_with("listen", "listen = [{ port = 80, mod = \"echo\" }]"),
                "listen.mod",
            ),
        ] {
            let e = err(&doc);
            assert!(matches!(e, ConfigError::UnknownKey { .. }), "{e}");
            assert_eq!(e.field(), Some(key), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("{key}: unknown key")), "{msg}");
        }
        let msg = err(&lab_with("tcp", "msss = 1460")).to_string();
        assert!(
            msg.contains("mss") && msg.contains("time_wait_secs"),
            "lists allowed keys: {msg}"
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = err("interface = \"eth1\"\naddresses = [\"198.18.0.1\"\n");
        match e {
            ConfigError::Syntax { line, .. } => assert!(line >= 2, "line {line}"),
            other => panic!("{other}"),
        }
        let e = err("interface = eth1\n");
        assert!(
            e.to_string()
                .starts_with("TOML syntax error at line 1, column "),
            "{e}"
        );
    }

    #[test]
    fn workers_accepts_strings_integers_and_arrays() {
        for (line, want) in [
            ("workers = \"0\"", vec![0]),
            ("workers = 0", vec![0]),
            ("workers = [0]", vec![0]),
        ] {
            let cfg = Config::from_toml_str(&top_with("workers", line))
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(cfg.workers, want);
        }
        assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpu_list(" 1 - 2 , 5"), Ok(vec![1, 2, 5]));
        assert!(parse_cpu_list("0-99999999").is_err());
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert_eq!(format_cpu_list(&[3, 0, 1, 2, 6]), "0-3,6");
        assert_eq!(check_workers(&[1], &[0, 1]), Ok(()));
        assert!(check_workers(&[2], &[0, 1])
            .unwrap_err()
            .contains("usable: 0-1"));
    }

    #[test]
    fn hex_keys_and_secret_round_trip() {
        let secret = "00112233445566778899AABBCCDDEEFF";
        let cfg = Config::from_toml_str(&lab_with("tcp", &format!("cookie_secret = \"{secret}\"")))
            .unwrap();
        let key = cfg.tcp.cookie_secret.unwrap();
        assert_eq!(key[0], 0x00);
        assert_eq!(key[15], 0xff);
        // The secret stays out of Debug and check-config output.
        assert!(!format!("{cfg:?}").contains("255"));
        assert!(!cfg
            .to_toml_redacted()
            .to_lowercase()
            .contains(&secret.to_lowercase()));

        let ethtool = vec!["6d:5a"; 20].join(":");
        let k = parse_hex::<40>(&ethtool, true).unwrap();
        assert_eq!(k, crate::engine::rss::SYMMETRIC_KEY);
        assert_eq!(
            parse_hex::<40>(&"6d5a".repeat(20), true).unwrap(),
            crate::engine::rss::SYMMETRIC_KEY
        );
        assert!(parse_hex::<40>(&"6d5a".repeat(19), true).is_err());
        assert!(parse_hex::<16>("0011:2233", false).is_err());
        assert!(parse_hex::<40>(&"6d5".repeat(20), true).is_err());
    }

    #[test]
    fn resolved_config_round_trips_through_toml() {
        let mut cfg = Config::from_toml_str(LAB).unwrap();
        cfg.steering.rss_key = KeyChoice::Fixed([0xab; 40]);
        cfg.ops.ready_file = Some("/tmp/ready".into());
        let text = cfg.to_toml_redacted();
        let back = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, cfg);
    }

    #[test]
    fn tcp_window_must_be_advertisable_rfc7323_2_3() {
        // RFC 7323 §2.3: the scale applies to the 16-bit window field.
        let e = err(&lab_with("tcp", "window_scale = 0"));
        assert_eq!(e.field(), Some("tcp.window"), "{e}");
        assert!(
            Config::from_toml_str(&lab_with("tcp", "window_scale = 0\nwindow = 65535")).is_ok()
        );
        assert!(
            Config::from_toml_str(&lab_with("tcp", "window_scale = 14\nwindow = 1073725440"))
                .is_ok()
        );
    }

    #[test]
    fn mss_must_fit_the_frame() {
        assert!(Config::from_toml_str(&lab_with("tcp", "mss = 1678")).is_ok());
        assert_eq!(err(&lab_with("tcp", "mss = 1679")).field(), Some("tcp.mss"));
        let big = format!(
            "{}\n[xdp]\nframe_size = 4096\n[tcp]\nmss = 3726\n",
            top_with("", "")
        );
        assert!(Config::from_toml_str(&big).is_ok());
    }

    #[test]
    fn overrides_replace_lists_and_name_the_flag() {
        let mut cfg = Config::from_toml_str(LAB).unwrap();
        let ov = Overrides {
            interface: Some("veth9".into()),
            addresses: vec!["198.18.0.9".into()],
            listen: vec!["8080".into(), "8081:echo".into()],
            workers: Some("0".into()),
            xdp_mode: Some("generic".into()),
            syn_offload: Some("off".into()),
            xdp_attach: Some("dispatcher".into()),
            cookie_secret: Some("ff".repeat(16)),
            ready_file: Some("/tmp/r".into()),
            stats_json: Some("/tmp/s.json".into()),
            metrics: Some("127.0.0.1:9100".into()),
            capture: Some("/tmp/c.pcapng".into()),
            capture_mode: Some("sample:10".into()),
            view: Some(View::Quiet),
        };
        ov.apply(&mut cfg).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.ops.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(cfg.ops.capture_mode, "sample:10");
        assert_eq!(cfg.ops.view, View::Quiet);
        assert_eq!(cfg.xdp.syn_offload, SynOffloadMode::Off);
        assert_eq!(cfg.xdp.attach, XdpAttach::Dispatcher);
        let bad = Overrides {
            syn_offload: Some("maybe".into()),
            ..Default::default()
        };
        assert_eq!(
            bad.apply(&mut cfg).unwrap_err().field(),
            Some("--syn-offload")
        );
        let bad = Overrides {
            xdp_attach: Some("share".into()),
            ..Default::default()
        };
        assert_eq!(
            bad.apply(&mut cfg).unwrap_err().field(),
            Some("--xdp-attach")
        );
        let bad = Overrides {
            capture_mode: Some("sample:0".into()),
            ..Default::default()
        };
        assert_eq!(
            bad.apply(&mut cfg).unwrap_err().field(),
            Some("--capture-mode")
        );
        let bad = Overrides {
            metrics: Some("localhost".into()),
            ..Default::default()
        };
        assert_eq!(bad.apply(&mut cfg).unwrap_err().field(), Some("--metrics"));
        assert_eq!(cfg.interface, "veth9");
        assert_eq!(cfg.addresses, vec!["198.18.0.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            cfg.listen,
            vec![
                Listener {
                    port: 8080,
                    mode: ListenMode::Discard
                },
                Listener {
                    port: 8081,
                    mode: ListenMode::Echo
                }
            ]
        );
        assert_eq!(cfg.xdp.mode, XdpMode::Generic);
        assert_eq!(cfg.tcp.cookie_secret, Some([0xff; 16]));

        let bad: &[(Overrides, &str)] = &[
            (
                Overrides {
                    listen: vec!["0".into()],
                    ..Default::default()
                },
                "--listen",
            ),
            (
                Overrides {
                    listen: vec!["80:bogus".into()],
                    ..Default::default()
                },
                "--listen",
            ),
            (
                Overrides {
                    listen: vec!["80".into(), "80:echo".into()],
                    ..Default::default()
                },
                "--listen",
            ),
            (
                Overrides {
                    workers: Some("9999".into()),
                    ..Default::default()
                },
                "--workers",
            ),
            (
                Overrides {
                    cookie_secret: Some("xyz".into()),
                    ..Default::default()
                },
                "--cookie-secret",
            ),
            (
                Overrides {
                    xdp_mode: Some("fast".into()),
                    ..Default::default()
                },
                "--xdp-mode",
            ),
            (
                Overrides {
                    addresses: vec!["224.0.0.1".into()],
                    ..Default::default()
                },
                "--address",
            ),
            (
                Overrides {
                    addresses: vec!["1.2.3".into()],
                    ..Default::default()
                },
                "--address",
            ),
            (
                Overrides {
                    interface: Some("".into()),
                    ..Default::default()
                },
                "--interface",
            ),
            (
                Overrides {
                    ready_file: Some("".into()),
                    ..Default::default()
                },
                "--ready-file",
            ),
            (
                Overrides {
                    ready_file: Some("/tmp/x".into()),
                    stats_json: Some("/tmp/x".into()),
                    ..Default::default()
                },
                "--stats-json",
            ),
        ];
        for (ov, flag) in bad {
            let mut cfg = Config::from_toml_str(LAB).unwrap();
            let e = ov.apply(&mut cfg).expect_err(flag);
            assert_eq!(e.field(), Some(*flag), "{e}");
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("{flag}: ")) && msg.contains("e.g."),
                "{msg}"
            );
        }
    }

    #[test]
    fn lab_overrides_check_bounds() {
        let cpus = available_cpus();
        assert_eq!(
            LabOverrides::default().resolve().unwrap(),
            LabOptions {
                workers: if cpus.len() >= 2 {
                    cpus[..2].to_vec()
                } else {
                    vec![0]
                },
                ..LabOptions::default()
            }
        );
        let o = LabOverrides {
            connections: Some("10".into()),
            flood_packets: Some("0".into()),
            flood_secs: Some("1".into()),
            xdp_mode: Some("native".into()),
            workers: Some("0".into()),
            keep: true,
            nodes: None,
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (o.connections, o.flood_packets, o.flood_secs, o.keep),
            (10, 0, 1, true)
        );
        // --nodes: 2..=8, and 1000 connections per phase unless --connections is given.
        let nodes = |n: &str, c: Option<&str>| {
            LabOverrides {
                nodes: Some(n.into()),
                connections: c.map(Into::into),
                ..Default::default()
            }
            .resolve()
        };
        let o = nodes("2", None).unwrap();
        assert_eq!((o.nodes, o.connections), (2, 1000));
        assert_eq!(nodes("8", Some("50")).unwrap().connections, 50);
        for bad in ["1", "9", "two"] {
            let e = nodes(bad, None).unwrap_err().to_string();
            assert!(e.contains("--nodes") && e.contains("2..=8"), "{e}");
        }
        for (ov, flag) in [
            (
                LabOverrides {
                    connections: Some("0".into()),
                    ..Default::default()
                },
                "--connections",
            ),
            (
                LabOverrides {
                    connections: Some("ten".into()),
                    ..Default::default()
                },
                "--connections",
            ),
            (
                LabOverrides {
                    flood_packets: Some("10000001".into()),
                    ..Default::default()
                },
                "--flood-packets",
            ),
            (
                LabOverrides {
                    flood_secs: Some("61".into()),
                    ..Default::default()
                },
                "--flood-secs",
            ),
            (
                LabOverrides {
                    xdp_mode: Some("fast".into()),
                    ..Default::default()
                },
                "--xdp-mode",
            ),
            (
                LabOverrides {
                    workers: Some("9999".into()),
                    ..Default::default()
                },
                "--workers",
            ),
        ] {
            let e = ov.resolve().expect_err(flag);
            assert_eq!(e.field(), Some(flag), "{e}");
        }
    }
}
