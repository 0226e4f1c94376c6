//! The settings table: one entry per setting (every leaf of [`Config`], by dotted path)
//! with its allowed values, an example, its flag and what it does. Everything that says
//! what a setting accepts is derived from here:
//!
//! - validation of ranges, powers of two and lists of values ([`check`]), and the named
//!   form and cross-field checks the entries point to;
//! - the hint of every [`super::ConfigError`] ([`hint`], [`flag_hint`]);
//! - the comments of `config/default.toml` ([`default_toml`]; a test keeps the file equal
//!   to it, and `synack check-config --print-default` prints it).
//!
//! Defaults are not written here: they are the `Default` impls of the schema
//! ([`super`]), read by serializing [`Config::default`].
//!
//! The flags of `synack lab` and `synack gen` that set no config setting have their own
//! short table, [`FLAG_RULES`], with the same [`Allowed`] rules and hint format.

use crate::forms::{alternatives, Named};
use crate::io::afxdp::{FRAME_COUNTS, FRAME_SIZES, RING_SIZES};
use crate::io::{XdpAttach, XdpMode, ZeroCopy};

use super::checks::{
    available_cpus, check_addresses, check_content_type, check_interface, check_listeners,
    check_path, check_workers,
};
use super::{Config, FullPolicy, ListenMode, SynOffloadMode, View};

/// A check of one setting that needs the whole config (a form, or a rule across
/// settings). The error is the problem; the caller names the setting and adds its hint.
pub type Check = fn(&Config) -> Result<(), String>;

/// What values a setting or flag accepts.
#[derive(Clone, Copy)]
pub enum Allowed {
    /// An integer in `min..=max`, with its unit (or "").
    Range(u64, u64, &'static str),
    /// An integer of at least this, with its unit (or "").
    AtLeast(u64, &'static str),
    /// A power of two in `min..=max`.
    Pow2(u64, u64),
    /// One of these integers.
    OneOf(&'static [u64]),
    /// One of these names: a [`Named`] type's, which its parser enforces.
    Names(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
    /// A form, described in words, that the value's parser enforces (a hex key, an
    /// address, any string).
    Parsed(&'static str),
    /// A form, described in words, enforced by this check.
    Form(&'static str, Check),
    /// A number of seconds above 0 and at most this (fractions allowed).
    Seconds(u64),
}

impl Allowed {
    /// The allowed values in words: `0..=600 seconds`, `auto, native or generic`.
    pub fn describe(&self) -> String {
        match *self {
            Allowed::Range(min, max, "") => format!("{min}..={max}"),
            Allowed::Range(min, max, unit) => format!("{min}..={max} {unit}"),
            Allowed::AtLeast(min, "") => format!("at least {min}"),
            Allowed::AtLeast(min, unit) => format!("at least {min} {unit}"),
            Allowed::Pow2(min, max) => format!("a power of two in {min}..={max}"),
            Allowed::OneOf(list) => {
                let names: Vec<String> = list.iter().map(u64::to_string).collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                alternatives(&names)
            }
            Allowed::Names(names) => alternatives(names),
            Allowed::Bool => "true or false".to_owned(),
            Allowed::Parsed(what) | Allowed::Form(what, _) => what.to_owned(),
            Allowed::Seconds(max) => format!("more than 0 and at most {max} seconds"),
        }
    }

    /// Check an integer against a numeric rule; other rules accept any integer.
    pub fn check_u64(&self, v: u64) -> Result<(), String> {
        match *self {
            Allowed::Range(min, max, _) | Allowed::Pow2(min, max) if v < min || v > max => {
                Err(format!("{v} is out of range {min}..={max}"))
            }
            Allowed::AtLeast(min, _) if v < min => Err(format!("{v} is less than {min}")),
            Allowed::Pow2(..) if !v.is_power_of_two() => Err(format!("{v} is not a power of two")),
            Allowed::OneOf(list) if !list.contains(&v) => Err(format!("{v} is not allowed")),
            _ => Ok(()),
        }
    }

    /// Check a number of seconds against [`Allowed::Seconds`].
    pub fn check_f64(&self, v: f64) -> Result<(), String> {
        match *self {
            Allowed::Seconds(max) if !(v > 0.0 && v <= max as f64) => {
                Err(format!("{v} is not more than 0 and at most {max}"))
            }
            _ => Ok(()),
        }
    }
}

/// Whether a setting has a default, must be given, or may be left out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// It has a default (shown in `config/default.toml`).
    Default,
    /// It must be given (its default is empty; `default.toml` shows an example as a
    /// `#> ` line).
    Required,
    /// It may be left out (`default.toml` shows a commented example).
    Optional,
    /// A field of each table of a list (`listen.port`), documented with the list.
    InList,
}

/// The command-line flag of a setting (or a flag-only option).
#[derive(Clone, Copy)]
pub struct Flag {
    /// `--listen`.
    pub name: &'static str,
    /// The flag's own form when it differs from the setting's (one item of a list);
    /// empty: the setting's allowed values.
    pub form: &'static str,
    /// An example value.
    pub example: &'static str,
    /// Added after the example: "repeat the flag for more".
    pub note: &'static str,
}

/// One setting of the config file.
#[derive(Clone, Copy)]
pub struct Setting {
    /// Dotted path: `tcp.time_wait_secs`; fields of listeners are `listen.port`.
    pub path: &'static str,
    /// What values it accepts.
    pub allowed: Allowed,
    /// A condition added to the allowed values, often across settings ("at most
    /// xdp.ring_size"), checked by `also`.
    pub note: &'static str,
    /// An example value, as TOML.
    pub example: &'static str,
    /// Default, required or optional.
    pub presence: Presence,
    /// The flag that overrides it.
    pub flag: Option<Flag>,
    /// The check of `note`, run after every earlier setting has passed.
    pub also: Option<Check>,
    /// What it does: the comment above it in `config/default.toml`.
    pub doc: &'static str,
}

const fn leaf(path: &'static str, allowed: Allowed, example: &'static str) -> Setting {
    Setting {
        path,
        allowed,
        note: "",
        example,
        presence: Presence::Default,
        flag: None,
        also: None,
        doc: "",
    }
}

impl Setting {
    const fn doc(self, doc: &'static str) -> Self {
        Setting { doc, ..self }
    }
    const fn note(self, note: &'static str) -> Self {
        Setting { note, ..self }
    }
    const fn also(self, note: &'static str, check: Check) -> Self {
        Setting {
            note,
            also: Some(check),
            ..self
        }
    }
    const fn presence(self, presence: Presence) -> Self {
        Setting { presence, ..self }
    }
    const fn flag(self, name: &'static str, example: &'static str) -> Self {
        self.flag_as(name, "", example, "")
    }
    const fn flag_as(
        self,
        name: &'static str,
        form: &'static str,
        example: &'static str,
        note: &'static str,
    ) -> Self {
        Setting {
            flag: Some(Flag {
                name,
                form,
                example,
                note,
            }),
            ..self
        }
    }

    /// The key within its section: `time_wait_secs`.
    pub fn key(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }

    /// The section: `tcp`, or "" for the top level (`listen.port` is in `listen`).
    pub fn section(&self) -> &'static str {
        self.path.rsplit_once('.').map_or("", |(s, _)| s)
    }

    /// The allowed values with the note: `1..=256, at most xdp.ring_size`.
    pub fn allowed_text(&self) -> String {
        let a = self.allowed.describe();
        if self.note.is_empty() {
            a
        } else {
            format!("{a}, {}", self.note)
        }
    }
}

/// Sections in file order, with the title of their comment header.
pub const SECTIONS: [(&str, &str); 6] = [
    ("", "Top level: what to serve"),
    ("xdp", "AF_XDP"),
    ("tcp", "TCP"),
    ("http", "HTTP listeners"),
    ("steering", "Steering"),
    ("ops", "Operations"),
];

use Allowed::{Bool, Form, Names, OneOf, Parsed, Pow2, Range};
use Presence::{InList, Optional, Required};

/// Every setting, in the order of `config/default.toml` (and of validation). Laid out by
/// hand as a table (rustfmt leaves it alone: its lines hold long strings).
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    // --- top level ---
    leaf(
        "interface",
        Form(
            "the NIC's kernel name: 1 to 15 bytes, no '/', ':' or whitespace",
            |c| check_interface(&c.interface),
        ),
        "\"synack-srv\"",
    )
        .presence(Required)
        .flag("--interface", "eth1")
        .doc("The NIC (or veth) to attach the XDP program and AF_XDP sockets to."),
    leaf(
        "addresses",
        Form(
            "unicast IPv4 and IPv6 addresses, at least one, each once (no 0.0.0.0, ::, multicast or broadcast)",
            |c| check_addresses(&c.addresses),
        ),
        "[\"198.18.0.1\", \"2001:2::1\"]",
    )
        .presence(Required)
        .flag_as(
            "--address",
            "a unicast IPv4 or IPv6 address",
            "198.18.0.1",
            " (repeat the flag for more)",
        )
        .doc("Addresses we answer for, IPv4 and/or IPv6. Packets to other addresses pass to the \
            kernel."),
    leaf(
        "workers",
        Form(
            "CPU ids this process may run on, each once, as a list like \"0\", \"0-1\" or \"0,2-3\" or an array like [0, 1]",
            |c| check_workers(&c.workers, &available_cpus()),
        ),
        "\"0-1\"",
    )
        .flag_as(
            "--workers",
            "a list of CPU ids this process may run on like 0, 0-1 or 0,2-3",
            "0-1",
            "",
        )
        .doc("CPU ids to run one worker each on (one per NIC queue)."),
    leaf(
        "listen",
        Form(
            "[[listen]] tables (or inline tables), at least one, each port once",
            |c| check_listeners(&c.listen),
        ),
        "[{ port = 80, mode = \"http\" }, { port = 7, mode = \"echo\" }]",
    )
        .presence(Required)
        .flag_as(
            "--listen",
            "PORT[:MODE] with a unique PORT {listen.port} and MODE {listen.mode}",
            "80:http",
            " (repeat the flag for more)",
        )
        .doc("Listening ports, and what happens on an accepted connection (`mode`): discard \
            reads and throws away (RFC 863), echo sends every byte back (RFC 862), http answers \
            each request with the [http] response, close closes (FIN) right after the handshake."),
    leaf("listen.port", Range(1, 65535, ""), "80")
        .presence(InList)
        .note("each port once")
        .doc("the listener's TCP port."),
    leaf("listen.mode", Names(ListenMode::NAMES), "\"echo\"")
        .presence(InList)
        .note("default discard")
        .doc("what the listener does with a connection."),
    // --- [xdp] ---
    leaf("xdp.mode", Names(XdpMode::NAMES), "\"auto\"")
        .flag("--xdp-mode", "native")
        .doc("How the XDP program attaches: auto (native, falling back to generic), native \
            (driver mode) or generic (skb mode, works everywhere, slower)."),
    leaf("xdp.syn_offload", Names(SynOffloadMode::NAMES), "\"auto\"")
        .flag("--syn-offload", "off")
        .doc("Answer SYNs in the XDP program itself (XDP_TX), with the same SYN cookie and \
            SYN-ACK the workers send, and drop (and reset, rate-limited) stateless ACKs whose \
            cookie fails, so a SYN or forged-ACK flood never costs an AF_XDP copy. SYNs whose \
            4-tuple has a connection still go to the workers. auto: on wherever the program \
            attaches, except a veth in native mode, whose XDP_TX frames reach the peer only if \
            the peer runs an XDP program; off with a warning if the kernel refuses a part of it. \
            on: refuse to start without it. Frames answered in XDP never reach ops.capture."),
    leaf("xdp.attach", Names(XdpAttach::NAMES), "\"exclusive\"")
        .flag("--xdp-attach", "dispatcher")
        .doc("When the interface already has an XDP program (one runs at a time): exclusive \
            refuses to start and names it (id, name, mode) with the choices; replace detaches \
            it, with a warning naming it, and attaches synack's; dispatcher attaches synack's \
            through libxdp's multi-program dispatcher (libxdp1 at run time, a bpffs at \
            /sys/fs/bpf or LIBXDP_BPFFS), next to the programs xdp-loader or other libxdp users \
            put there: frames synack does not claim go on to them, and on exit only synack's \
            is removed."),
    leaf("xdp.frame_size", OneOf(&[FRAME_SIZES[0] as u64, FRAME_SIZES[1] as u64]), "2048")
        .doc("UMEM frame size in bytes. A full segment (tcp.mss and 114 header bytes) must fit \
            after the kernel's 256-byte XDP headroom."),
    leaf("xdp.frame_count", Pow2(*FRAME_COUNTS.start() as u64, *FRAME_COUNTS.end() as u64), "4096")
        .doc("UMEM frames per worker socket."),
    leaf("xdp.ring_size", Pow2(*RING_SIZES.start() as u64, *RING_SIZES.end() as u64), "2048")
        .also("at most xdp.frame_count / 2", super::check_ring_fits_frames)
        .doc("Entries in each fill, completion, RX and TX ring."),
    leaf("xdp.batch_size", Range(1, 256, ""), "64")
        .also("at most xdp.ring_size", super::check_batch_fits_ring)
        .doc("Frames handled per poll-loop iteration."),
    leaf("xdp.busy_poll", Bool, "false")
        .doc("Busy-poll the socket (SO_PREFER_BUSY_POLL): lower latency, a core spins."),
    leaf("xdp.zerocopy", Names(ZeroCopy::NAMES), "\"auto\"")
        .doc("AF_XDP zero-copy: auto (zero-copy where the driver has it, copy otherwise; the \
            mode in use is logged and reported per worker), require (refuse to start, naming the \
            driver, when the kernel gives copy mode) or off (always copy). veth and generic XDP \
            are copy mode only."),
    leaf("xdp.worker_priority", Range(0, 99, ""), "50")
        .note("0 keeps the default policy, 1..=99 is a SCHED_FIFO priority")
        .doc("Scheduling of the worker threads. A real-time worker is not preempted by ordinary \
            threads on its CPU while it has frames, and still gives the CPU back whenever its \
            rings are empty (the NAPI thread that feeds it then runs). Needs CAP_SYS_NICE."),
    leaf("xdp.standalone", Bool, "false")
        .doc("Answer ARP and IPv6 neighbour solicitations for `addresses` ourselves. Needed when \
            the kernel does not own the addresses (they are not configured on the interface)."),
    // --- [tcp] ---
    leaf("tcp.mss", Range(536, 9000, "bytes"), "1460")
        .also(
            "and a full segment (mss + 114 header bytes) must fit in xdp.frame_size after the \
             256-byte XDP headroom",
            super::check_mss_fits,
        )
        .doc("Our MSS, announced in SYN-ACKs."),
    leaf("tcp.window_scale", Range(0, 14, ""), "7")
        .note("RFC 7323 §2.3")
        .doc("Our window scale shift."),
    leaf("tcp.window", Range(1, 65535 << 14, "bytes"), "262144")
        .also(
            "at most 65535 << tcp.window_scale (RFC 7323 §2.3: the scale shifts the 16-bit \
             window field)",
            super::check_window_fits,
        )
        .doc("Our receive window."),
    leaf("tcp.timestamps", Bool, "true")
        .doc("Offer and use TCP timestamps (RFC 7323): PAWS and RTT measurement."),
    leaf("tcp.fin_with_ack", Bool, "true")
        .doc("When the client closes first and nothing is left to send, put our FIN on the ACK \
            of theirs (three segments). false: ACK and FIN go apart, the classic four-segment \
            close (RFC 9293 §3.6, figure 12)."),
    leaf("tcp.time_wait_secs", Range(0, 600, "seconds"), "60")
        .doc("TIME-WAIT duration (RFC 9293 §3.10.7.4 asks for 2×MSL)."),
    leaf("tcp.idle_timeout_secs", Range(0, 604_800, "seconds"), "300")
        .note("0 = never")
        .doc("Close connections idle this long."),
    // RFC 6298 §2.1: "... the sender SHOULD set RTO <- 1 second" (the default); lower
    // values are allowed for labs with a known short RTT.
    leaf("tcp.rto_initial_ms", Range(200, 60_000, "ms"), "1000")
        .doc("Initial retransmission timeout (RFC 6298 §2.1: 1 second)."),
    // RFC 6298 §2.5: "A maximum value MAY be placed on RTO provided it is at least 60
    // seconds." (the default); lower maxima trade that for faster failure.
    leaf("tcp.rto_max_ms", Range(200, 120_000, "ms"), "60000")
        .also("at least tcp.rto_initial_ms", super::check_rto_max)
        .doc("Largest retransmission timeout (RFC 6298 §2.5 allows a maximum of at least 60000)."),
    leaf("tcp.max_retries", Range(1, 30, ""), "6")
        .doc("Retransmissions before a connection is aborted."),
    leaf("tcp.persist_timeout_secs", Range(0, 86_400, "seconds"), "120")
        .note("0 = probe as long as the peer answers (RFC 1122 §4.2.2.17)")
        .doc("How long the peer's window may stay zero while we hold data for it before we reset \
            the connection (RFC 6429; a peer that answers every probe with a zero window would \
            otherwise hold its buffer forever, the sockstress attack)."),
    leaf("tcp.close_timeout_secs", Range(1, 3_600, "seconds"), "60")
        .doc("From our close (idle timeout, shutdown, Connection: close, or after the client's \
            FIN) until our FIN is acknowledged, when data it waits behind does not drain; then \
            we reset the connection."),
    leaf("tcp.table_capacity", Range(1, 1 << 24, "connections per worker"), "262144")
        .doc("Connection-table slots per worker."),
    leaf("tcp.table_full", Names(FullPolicy::NAMES), "\"rst\"")
        .doc("A new connection when the table is full gets: rst (refused, client fails fast) or \
            drop (silence, client retries later)."),
    leaf("tcp.challenge_ack_limit", Range(1, u32::MAX as u64, "per core per second"), "1000")
        .doc("Challenge ACKs per core per second (RFC 5961 §7)."),
    leaf("tcp.reset_limit", Range(0, u32::MAX as u64, "per core per second"), "1000")
        .note("0 never resets")
        .doc("Resets per core per second sent from LISTEN: to an ACK whose SYN cookie fails (a \
            peer of a restarted server), a SYN-ACK to a listener, a refusal when the table is \
            full (table_full = \"rst\"). Beyond it such segments are only dropped (counted as \
            rst_limited). With xdp.syn_offload on, the XDP program resets failed cookie ACKs \
            itself with the same budget per CPU (counted as rsts_rate_limited)."),
    leaf("tcp.verify_checksums", Bool, "true")
        .doc("Verify IPv4 and TCP checksums of received frames."),
    leaf(
        "tcp.cookie_secret",
        Parsed("exactly 32 hex digits"),
        "\"00112233445566778899aabbccddeeff\"",
    )
        .presence(Optional)
        .flag_as(
            "--cookie-secret",
            "",
            "00112233445566778899aabbccddeeff",
            " (the file is safer: command lines are visible to other users)",
        )
        .doc("SYN-cookie secret. Left out: a random secret per start. Set it to keep cookies \
            valid across restarts or to share it between nodes behind ECMP."),
    leaf("tcp.buffers", Range(1, 1 << 20, "buffers per worker"), "4096")
        .doc("Echo/HTTP buffers per worker."),
    // The window we accept is the one we advertise (RFC 9293 §3.10.7.4, RFC 7323 §2.3):
    // buffered modes advertise the free buffer unscaled, so it fits 16 bits.
    leaf("tcp.buffer_size", Range(512, u16::MAX as u64, "bytes"), "4096")
        .doc("Size of one echo/HTTP buffer. Echo and http offer the free buffer as an unscaled \
            receive window, which a 16-bit window field holds (RFC 7323 §2.3)."),
    // --- [http] ---
    leaf("http.status", Range(100, 599, ""), "200")
        .doc("Status code of the fixed response."),
    leaf("http.body", Parsed("a string"), "\"synack\\n\"")
        .doc("Response body."),
    leaf(
        "http.content_type",
        Form(
            "a non-empty media type of visible ASCII without CR/LF",
            |c| check_content_type(&c.http.content_type),
        ),
        "\"text/plain\"",
    )
        .doc("Content-Type header of the response."),
    leaf("http.header_timeout_secs", Range(0, 3_600, "seconds"), "20")
        .note("0 = no limit")
        .doc("How long a request head may take to arrive, counted from its first byte (leading \
            empty lines included); then 408 Request Timeout and close (the slowloris bound)."),
    // --- [steering] ---
    leaf(
        "steering.rss_key",
        Parsed("\"nic\", \"random\", or a key of 80 hex digits or 40 colon-separated bytes as ethtool -x prints them"),
        "\"nic\"",
    )
        .doc("Where the Toeplitz RSS key and indirection table of the software steering come \
            from, so that it agrees with the NIC (with more than one worker). nic: the \
            interface's own key and whole table, read at start as `ethtool -x` shows them (any \
            table size, any worker count); on an interface without RSS (veth) a random key per \
            start and an even table. random: a random key per start and an even table, whatever \
            the NIC has. A fixed key: the NIC's table is still used if it has one; only for a \
            key you also gave the NIC (`ethtool -X <if> hkey ...`): a public key lets spoofed \
            sources be aimed at one core."),
    leaf("steering.handoff_queue", Range(16, 65536, "entries"), "1024")
        .doc("Entries in each worker's queue of segments handed over from other cores."),
    // --- [ops] ---
    leaf(
        "ops.ready_file",
        Form(
            "a file path",
            |c| check_path(c.ops.ready_file.as_deref()),
        ),
        "\"/run/synack.ready\"",
    )
        .presence(Optional)
        .flag("--ready-file", "/run/synack.ready")
        .doc("File created once every worker is up, for scripts to wait on."),
    leaf(
        "ops.stats_json",
        Form(
            "a file path",
            |c| check_path(c.ops.stats_json.as_deref()),
        ),
        "\"/run/synack-stats.json\"",
    )
        .presence(Optional)
        .also("other than ops.ready_file", super::check_stats_not_ready)
        .flag("--stats-json", "/run/synack-stats.json")
        .doc("File rewritten every stats_interval_ms with the counters as JSON."),
    leaf("ops.stats_interval_ms", Range(100, 60_000, "ms"), "1000")
        .doc("Period of the stats file, the stats log line and the metrics."),
    leaf("ops.metrics", Parsed("an address:port"), "\"127.0.0.1:9100\"")
        .presence(Optional)
        .flag("--metrics", "127.0.0.1:9100")
        .doc("Serve Prometheus metrics (text format) over HTTP at http://ADDR:PORT/metrics. Keep \
            it on loopback or a management network."),
    leaf(
        "ops.capture",
        Form(
            "a pcapng file path",
            |c| check_path(c.ops.capture.as_deref()),
        ),
        "\"/tmp/synack.pcapng\"",
    )
        .presence(Optional)
        .flag("--capture", "/tmp/synack.pcapng")
        .doc("Capture received frames to a pcapng file (open it with Wireshark or tshark). A \
            writer thread does the I/O; a poll loop never waits for it (frames it cannot take \
            are counted as capture_lost)."),
    leaf("ops.capture_mode", Parsed("dropped, all or sample:N (N >= 1)"), "\"sample:100\"")
        .flag("--capture-mode", "sample:100")
        .doc("Which frames to capture: dropped (each with its drop reason as the packet \
            comment), all, or sample:N (one received frame in N)."),
    leaf("ops.view", Names(View::NAMES), "\"table\"")
        .doc("The per-second view on stdout: log (a stats log line), table (a per-core table \
            like xdp-bench), json-lines (one JSON object a second) or quiet. Flags: --table, \
            --json-lines, --quiet."),
];

/// A flag of `synack lab` or `synack gen` that sets no config setting.
#[derive(Clone, Copy)]
pub struct FlagRule {
    /// The flag, its example and note.
    pub flag: Flag,
    /// What values it accepts.
    pub allowed: Allowed,
}

const fn flag_rule(
    name: &'static str,
    allowed: Allowed,
    example: &'static str,
    note: &'static str,
) -> FlagRule {
    FlagRule {
        flag: Flag {
            name,
            form: "",
            example,
            note,
        },
        allowed,
    }
}

/// The flags of `synack lab` and `synack gen` that set no config setting: one line each,
/// laid out by hand as a table.
#[rustfmt::skip]
pub const FLAG_RULES: &[FlagRule] = &[
    flag_rule("--connections", Range(1, 100_000, ""), "2000", ""),
    flag_rule("--flood-packets", Range(0, 10_000_000, ""), "200000", " (0 skips the flood)"),
    flag_rule("--flood-secs", Range(1, 60, "seconds"), "5", ""),
    flag_rule("--nodes", Range(2, 8, "server nodes"), "2", " (or --nodes alone for 2)"),
    flag_rule("--target", Parsed("IP:PORT"), "198.18.0.1:80", " or [2001:2::1]:80"),
    flag_rule("--source", Parsed("a CIDR block, a range FIRST-LAST or one address, of the target's family"), "198.19.0.0/24", ""),
    flag_rule("--source-ports", Parsed("LOW-HIGH with 1 <= LOW <= HIGH, or one port"), "1024-65535", ""),
    flag_rule("--target-mac", Parsed("six hex bytes"), "02:00:00:00:00:01", ""),
    flag_rule("--count", Range(1, 100_000_000, "connections"), "100000", ""),
    flag_rule("--packets", Range(1, 1_000_000_000, "frames"), "2000000", ""),
    flag_rule("--duration", Allowed::Seconds(600), "10", ""),
    flag_rule("--secs", Allowed::Seconds(600), "5", ""),
    flag_rule("--drain-ms", Range(0, 60_000, "ms"), "2000", ""),
    flag_rule("--burst", Allowed::AtLeast(1, "frame"), "20000", ""),
    flag_rule("--batch", Range(1, 2048, ""), "64", ""),
    flag_rule("--max-in-flight", Range(1, 4_000_000, "connections"), "65536", ""),
    flag_rule("--frames", Pow2(1024, 262_144), "32768", ""),
    flag_rule("--concurrency", Range(1, 1_000_000, "connections"), "1000", ""),
    flag_rule("--interval-ms", Range(1, 600_000, "ms"), "100", ""),
    flag_rule("--request", Range(1, 1400, "bytes (one segment)"), "'GET / HTTP/1.1\\r\\n\\r\\n'", ""),
    flag_rule("--cpu", Parsed("a CPU id of this machine"), "1", ""),
    flag_rule("--log-level", Parsed("error, warn, info, debug, trace or off, or a filter like synack=debug,info"), "debug", ""),
];

/// The setting at `path`.
pub fn setting(path: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.path == path)
}

/// The hint of [`super::ConfigError::Invalid`] for `path`: its allowed values and an
/// example; for a section, how to write it; else where to look.
pub fn hint(path: &str) -> String {
    if let Some(s) = setting(path) {
        let mut h = format!("use {}, e.g. {} = {}", s.allowed_text(), s.key(), s.example);
        if let Some(f) = s.flag.filter(|_| s.presence == Required) {
            h.push_str(&format!(" or {} {}", f.name, f.example));
        }
        if s.presence == Optional {
            h.push_str(", or leave it out");
        }
        return h;
    }
    if let Some(first) = SETTINGS.iter().find(|s| s.section() == path) {
        return format!(
            "write the section as a table: [{path}] followed by its keys, e.g. {} = {}",
            first.key(),
            first.example
        );
    }
    "see config/default.toml for every setting, its allowed values and an example".to_owned()
}

/// The hint of [`super::ConfigError::Flag`] for `flag`.
pub fn flag_hint(flag: &str) -> String {
    let found = SETTINGS
        .iter()
        .find_map(|s| {
            s.flag
                .filter(|f| f.name == flag)
                .map(|f| (f, s.allowed_text()))
        })
        .or_else(|| flag_rule_of(flag).map(|r| (r.flag, r.allowed.describe())));
    match found {
        Some((f, allowed)) => {
            let form = if f.form.is_empty() {
                allowed
            } else {
                expand(f.form)
            };
            format!("give {form}, e.g. {} {}{}", f.name, f.example, f.note)
        }
        None => "see synack --help".to_owned(),
    }
}

/// `text` with each `{path}` of a setting replaced by its allowed values, so that a
/// flag's own form can name them without a second copy.
fn expand(text: &str) -> String {
    SETTINGS.iter().fold(text.to_owned(), |t, s| {
        t.replace(&format!("{{{}}}", s.path), &s.allowed.describe())
    })
}

/// The `--help` text of a flag-only option: what it does, then its allowed values from
/// its rule.
pub fn flag_help(flag: &str, what: &str) -> String {
    match flag_rule_of(flag) {
        Some(r) => format!("{what} Allowed: {}.", r.allowed.describe()),
        None => what.to_owned(),
    }
}

/// The rule of a flag-only option.
pub fn flag_rule_of(flag: &str) -> Option<&'static FlagRule> {
    FLAG_RULES.iter().find(|r| r.flag.name == flag)
}

/// Check every setting of `cfg` in table order: the numeric rules against the values
/// (`values` is `cfg` as TOML), the forms, then each entry's cross-setting check. The
/// first problem is returned with the setting's path.
pub fn check(cfg: &Config, values: &toml::Table) -> Result<(), (&'static str, String)> {
    for s in SETTINGS {
        for v in lookup(values, s.path) {
            if let Some(n) = v.as_integer() {
                let n = u64::try_from(n).map_err(|_| (s.path, format!("{n} is negative")))?;
                s.allowed.check_u64(n).map_err(|p| (s.path, p))?;
            }
        }
        if let Form(_, f) = s.allowed {
            f(cfg).map_err(|p| (s.path, p))?;
        }
        if let Some(f) = s.also {
            f(cfg).map_err(|p| (s.path, p))?;
        }
    }
    Ok(())
}

/// The values at a dotted path; a list of tables gives the field of each.
fn lookup<'a>(table: &'a toml::Table, path: &str) -> Vec<&'a toml::Value> {
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    match (table.get(head), rest) {
        (None, _) => Vec::new(),
        (Some(v), "") => vec![v],
        (Some(toml::Value::Table(t)), rest) => lookup(t, rest),
        (Some(toml::Value::Array(list)), rest) => list
            .iter()
            .filter_map(toml::Value::as_table)
            .flat_map(|t| lookup(t, rest))
            .collect(),
        (Some(_), _) => Vec::new(),
    }
}

/// Comment lines at the top of `config/default.toml`.
const PREAMBLE: &str = "\
# synack configuration reference, generated from the settings table (src/config/rules.rs);
# `synack check-config --print-default` prints it, and a test keeps this file equal to it.
#
# Every setting is shown at its default value, with what it does and what it accepts.
# Copy this file, uncomment the three required settings (lines starting with \"#> \"),
# and change what you need; settings you leave out keep these defaults. Unknown keys are
# errors. Check a file with:   synack check-config --config FILE
# Command-line flags override the file (see `synack run --help`); a repeated flag such as
# --listen or --address replaces the file's whole list.
";

/// Width of the generated comment lines.
const WIDTH: usize = 90;

/// `config/default.toml`: every setting of the table at its default (from
/// [`Config::default`]), its documentation, allowed values and flag as comments.
pub fn default_toml() -> String {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    let mut out = String::from(PREAMBLE);
    for (section, title) in SECTIONS {
        let header = format!("# --- {title} ");
        out.push_str(&format!("\n{header:-<WIDTH$}\n"));
        if !section.is_empty() {
            out.push_str(&format!("[{section}]\n"));
        }
        for s in SETTINGS.iter().filter(|s| s.section() == section) {
            render(&mut out, s, &defaults);
        }
    }
    out
}

/// One setting: doc, allowed values and flag as wrapped comments, then the value line.
fn render(out: &mut String, s: &Setting, defaults: &toml::Table) {
    let mut about = format!("Allowed: {}.", s.allowed_text());
    if let Some(f) = s.flag {
        about.push_str(&format!(" Flag: {}.", f.name));
    }
    let parts: Vec<&Setting> = SETTINGS
        .iter()
        .filter(|p| p.presence == InList && p.section() == s.path)
        .collect();
    for line in [s.doc.to_owned(), about].iter().flat_map(|p| wrap(p)) {
        out.push_str(&line);
    }
    for p in parts {
        for line in wrap(&format!(
            "Each {}: {} Allowed: {}.",
            p.key(),
            p.doc,
            p.allowed_text()
        )) {
            out.push_str(&line);
        }
    }
    let value = lookup(defaults, s.path).first().map(|v| match v {
        // One line, as written by hand (toml writes a string with a newline as a
        // multi-line string).
        toml::Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    });
    match (s.presence, value) {
        (InList, _) => {}
        (Optional, _) | (_, None) => out.push_str(&format!("#{} = {}\n", s.key(), s.example)),
        (Required, Some(v)) => out.push_str(&format!(
            "{} = {v}\n#> {} = {}\n",
            s.key(),
            s.key(),
            s.example
        )),
        (Presence::Default, Some(v)) => out.push_str(&format!("{} = {v}\n", s.key())),
    }
}

/// `text` as `# ` comment lines of at most [`WIDTH`] characters (a longer word stays
/// whole), each ending in a newline.
fn wrap(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.chars().count() + 1 + word.chars().count() > WIDTH {
            lines.push(std::mem::replace(&mut line, String::from("#")) + "\n");
        }
        line.push(' ');
        line.push_str(word);
    }
    if line.len() > 1 {
        lines.push(line + "\n");
    }
    lines
}
