//! The `synack` command: `run`, `check-config`, `lab` and `gen`.
//!
//! Exit codes: 0 success; 2 a usage or configuration error (one line on stderr naming
//! the setting or flag and how to fix it); 1 a runtime error (the endpoint failed), with
//! its cause chain.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use synack::config::rules::flag_help;
use synack::config::LabOptions;
use synack::config::{CaptureMode, SynOffloadMode};
use synack::forms::Named;
use synack::io::{XdpAttach, XdpMode};
use tracing_subscriber::EnvFilter;

use synack::config::{
    check_flag, check_flag_secs, Config, ConfigError, LabOverrides, Overrides, DEFAULT_CONFIG,
};

/// Exit code for invalid settings and flags (the same as clap's usage errors).
const EXIT_CONFIG: u8 = 2;
/// Exit code for runtime failures.
const EXIT_RUNTIME: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "synack",
    version,
    about = "A kernel-bypass TCP endpoint: AF_XDP rings, per-core connection tables, SYN cookies.",
    long_about = "A kernel-bypass TCP endpoint: AF_XDP rings, RSS-steered per-core connection \
tables, SYN cookies and the RFC 9293 handshake and teardown.\n\n\
Settings come from a TOML file (--config; config/default.toml documents every one) with \
command-line flags on top. Invalid settings exit with code 2 and a message naming the \
setting; runtime failures exit with code 1.",
    after_help = "Examples:\n  \
synack check-config --config config/lab.toml\n  \
synack run --config config/lab.toml --workers 0-1 --stats-json /tmp/synack.json\n  \
synack run --interface eth1 --address 198.18.0.1 --listen 80:http --listen 7:echo\n  \
sudo synack lab --connections 2000 --flood-packets 200000"
)]
struct Cli {
    /// Log level (error, warn, info, debug, trace, off) or a filter like `synack=debug`.
    /// Overrides RUST_LOG; default: info. Logs go to stderr.
    #[arg(long, value_name = "LEVEL", global = true)]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the endpoint until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Validate a config file (with any overrides) and print the resolved config as TOML.
    CheckConfig(CheckArgs),
    /// Build a veth lab in private network namespaces, run the endpoint in it, and
    /// drive connections and a bounded SYN flood against it (needs root).
    Lab(LabArgs),
    /// Connection-rate generator on AF_XDP: open connections to a target from a source
    /// range (or flood SYNs), bounded by --count and --duration; report rates and
    /// handshake latency percentiles (needs root).
    Gen(GenArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// TOML config file. Without it the built-in defaults are used, and then at least
    /// --interface, --address and --listen are needed.
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: OverrideArgs,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// TOML config file to check.
    #[arg(
        long,
        short,
        value_name = "PATH",
        required_unless_present = "print_default"
    )]
    config: Option<PathBuf>,
    /// Print the configuration reference (config/default.toml, generated from the
    /// settings table: every setting at its default, with its allowed values) and exit.
    #[arg(long, conflicts_with = "config")]
    print_default: bool,
    #[command(flatten)]
    overrides: OverrideArgs,
}

/// Flags that override the file. Values are checked by `synack::config`, so that a bad
/// value gets the same one-line message as a bad setting in the file.
#[derive(Args, Debug)]
struct OverrideArgs {
    /// NIC to attach to (replaces `interface`), e.g. eth1.
    #[arg(long, value_name = "NAME")]
    interface: Option<String>,
    /// Address to serve, repeatable (replaces the file's `addresses`), e.g. 198.18.0.1.
    #[arg(long = "address", value_name = "IP")]
    addresses: Vec<String>,
    #[arg(long, value_name = "PORT[:MODE]", help = format!(
        "Listener PORT[:MODE], MODE one of {} (default {}); repeatable (replaces the file's `listen`), e.g. 80:http.",
        synack::forms::alternatives(synack::config::ListenMode::NAMES),
        synack::config::ListenMode::default()
    ))]
    listen: Vec<String>,
    /// Worker CPUs as a list like 0, 0-1 or 0,2-3 (replaces `workers`).
    #[arg(long, value_name = "CPU_LIST")]
    workers: Option<String>,
    /// XDP attach mode (replaces `xdp.mode`).
    #[arg(long, value_name = "MODE", value_parser = named::<XdpMode>())]
    xdp_mode: Option<XdpMode>,
    /// Answer SYNs in the XDP program (replaces `xdp.syn_offload`).
    #[arg(long, value_name = "MODE", value_parser = named::<SynOffloadMode>())]
    syn_offload: Option<SynOffloadMode>,
    /// When the interface already has an XDP program: exclusive, replace, or dispatcher to
    /// join libxdp's multi-program dispatcher (replaces `xdp.attach`).
    #[arg(long, value_name = "POLICY", value_parser = named::<XdpAttach>())]
    xdp_attach: Option<XdpAttach>,
    /// SYN-cookie secret, 32 hex digits (replaces `tcp.cookie_secret`). Visible in the
    /// process list: prefer the config file.
    #[arg(long, value_name = "HEX")]
    cookie_secret: Option<String>,
    /// File to create once all workers are up (replaces `ops.ready_file`).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// File to rewrite with the counters as JSON (replaces `ops.stats_json`).
    #[arg(long, value_name = "PATH")]
    stats_json: Option<PathBuf>,
    /// Serve Prometheus metrics on ADDR:PORT (replaces `ops.metrics`), e.g. 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<String>,
    /// Capture frames to a pcapng file (replaces `ops.capture`).
    #[arg(long, value_name = "PATH")]
    capture: Option<PathBuf>,
    /// What to capture: dropped (default), all, or sample:N (replaces `ops.capture_mode`).
    #[arg(long, value_name = "MODE")]
    capture_mode: Option<CaptureMode>,
    /// Print a per-core table every second instead of a log line (`ops.view = "table"`).
    #[arg(long, conflicts_with_all = ["quiet", "json_lines"])]
    table: bool,
    /// No per-second output (`ops.view = "quiet"`).
    #[arg(long, conflicts_with = "json_lines")]
    quiet: bool,
    /// One JSON object per second on stdout, for machines (`ops.view = "json-lines"`).
    #[arg(long)]
    json_lines: bool,
}

impl From<OverrideArgs> for Overrides {
    fn from(a: OverrideArgs) -> Self {
        Overrides {
            interface: a.interface,
            addresses: a.addresses,
            listen: a.listen,
            workers: a.workers,
            xdp_mode: a.xdp_mode,
            syn_offload: a.syn_offload,
            xdp_attach: a.xdp_attach,
            cookie_secret: a.cookie_secret,
            ready_file: a.ready_file,
            stats_json: a.stats_json,
            metrics: a.metrics,
            capture: a.capture,
            capture_mode: a.capture_mode,
            view: if a.table {
                Some(synack::config::View::Table)
            } else if a.quiet {
                Some(synack::config::View::Quiet)
            } else if a.json_lines {
                Some(synack::config::View::JsonLines)
            } else {
                None
            },
        }
    }
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct LabArgs {
    /// The lab library for scripts: build, pin or remove a named veth lab (without one,
    /// `synack lab` runs the demo).
    #[command(subcommand)]
    action: Option<LabAction>,
    #[arg(long, value_name = "N", help = flag_help("--connections", &format!("Client connections to open and close [default: {}].", LabOptions::default().connections)))]
    connections: Option<String>,
    #[arg(long, value_name = "N", help = flag_help("--flood-packets", &format!("Most SYN-flood packets to send; 0 skips the flood [default: {}].", LabOptions::default().flood_packets)))]
    flood_packets: Option<String>,
    #[arg(long, value_name = "S", help = flag_help("--flood-secs", &format!("Longest the flood may run [default: {}].", LabOptions::default().flood_secs)))]
    flood_secs: Option<String>,
    /// XDP attach mode of the server [default: auto].
    #[arg(long, value_name = "MODE", value_parser = named::<XdpMode>())]
    xdp_mode: Option<XdpMode>,
    /// Server worker CPUs, a list like 0, 0-1 or 0,2-3; more than one gives the veth as
    /// many queues [default: the first two CPUs available, or the one].
    #[arg(long, value_name = "CPU_LIST")]
    workers: Option<String>,
    /// Keep the namespaces and veth pair afterwards, for inspection.
    #[arg(long)]
    keep: bool,
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "2",
          help = flag_help("--nodes", "Run N server nodes behind a router namespace with a resilient ECMP nexthop group instead of one server; `--nodes` alone means 2. Connections then default to 1000 per phase."))]
    nodes: Option<String>,
}

#[derive(Subcommand, Debug)]
enum LabAction {
    /// Build namespaces NAME-c and NAME-s joined by veth NAMEc–NAMEs (198.18.0.2 and
    /// 2001:2::2 on the client, 198.18.0.1 and 2001:2::1 on the server, checksum offload
    /// off, static neighbours) and print CNS SNS VC VS CLIENT SERVER CLIENT6 SERVER6 CMAC
    /// SMAC as shell assignments, for `eval`. A lab of the same name is removed first;
    /// on failure nothing is left.
    Up(LabUpArgs),
    /// Remove lab NAME (both namespaces and the veth); no error when it is not there.
    Down(LabNameArg),
    /// Pin the threaded NAPI of an existing lab's veth ends (e.g. once an XDP program gave
    /// the server end NAPI).
    PinNapi(LabPinArgs),
}

#[derive(Args, Debug)]
struct LabNameArg {
    /// The lab's name: 1..=14 letters and digits, e.g. sw$$.
    #[arg(long, value_name = "NAME")]
    name: synack::lab::cli::LabName,
}

#[derive(Args, Debug)]
struct LabUpArgs {
    #[command(flatten)]
    name: LabNameArg,
    /// RX/TX queues of each veth end, 1..=64.
    #[arg(long, value_name = "Q", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    queues: u32,
    /// GRO on (which gives a veth NAPI) at client, server or both ends; `--gro` = both.
    #[arg(long, value_name = "END", num_args = 0..=1, default_missing_value = "both")]
    gro: Option<synack::lab::cli::Gro>,
    /// SIDE:CPU[:FIFO]: threaded NAPI of that end pinned to CPU, at SCHED_FIFO FIFO;
    /// repeatable. The end needs NAPI (--gro) first.
    #[arg(long, value_name = "SIDE:CPU[:FIFO]")]
    napi: Vec<synack::lab::cli::NapiPin>,
    /// Route this prefix (inside 198.18.0.0/15, e.g. flood sources 198.19.0.0/16) from the
    /// server namespace back to the client; repeatable.
    #[arg(long, value_name = "PREFIX")]
    route_back: Vec<synack::lab::cli::LabNet>,
}

#[derive(Args, Debug)]
struct LabPinArgs {
    #[command(flatten)]
    name: LabNameArg,
    /// SIDE:CPU[:FIFO], as for `synack lab up --napi`; repeatable.
    #[arg(long, value_name = "SIDE:CPU[:FIFO]", required = true)]
    napi: Vec<synack::lab::cli::NapiPin>,
}

/// `synack lab up|down|pin-napi`: print what the library returns (shell assignments and
/// `#` lines) on stdout; errors exit 1.
fn lab_action(action: LabAction) -> ExitCode {
    use synack::lab::cli;
    if !synack::io::sys::is_root() {
        return fail_runtime(&anyhow::anyhow!(
            "synack lab needs root (CAP_NET_ADMIN) for network namespaces: run it with sudo"
        ));
    }
    let out = match action {
        LabAction::Up(a) => cli::up(&cli::UpOptions {
            name: a.name.name,
            queues: a.queues,
            gro: a.gro,
            napi: a.napi,
            route_back: a.route_back,
        }),
        LabAction::Down(a) => cli::down(&a.name).map(|()| String::new()),
        LabAction::PinNapi(a) => cli::pin_existing(&a.name.name, &a.napi),
    };
    match out {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail_runtime(&e),
    }
}

impl From<LabArgs> for LabOverrides {
    fn from(a: LabArgs) -> Self {
        LabOverrides {
            connections: a.connections,
            flood_packets: a.flood_packets,
            flood_secs: a.flood_secs,
            xdp_mode: a.xdp_mode,
            workers: a.workers,
            keep: a.keep,
            nodes: a.nodes,
        }
    }
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
synack gen --interface veth-c --target 198.18.0.1:9 --count 100000 --duration 10 --cpu 1\n  \
synack gen --interface veth-c --target 198.18.0.1:80 --syn-flood --count 2000000 --duration 5\n  \
synack gen --interface veth-c --target 198.18.0.1:80 --http-get / --count 50000 --json gen.json\n  \
synack gen --interface veth-c --target 198.18.0.1:80 --concurrency 1000 --http-get / --interval-ms 100 --duration 30\n  \
synack gen --interface veth-c --target 198.18.0.1:80 --live-flood --rate 1200000 --packets 6000000 --secs 4 --cpu 1\n\n\
The target must route the source range back to this interface, e.g. on a Linux target:\n  \
ip route add 198.19.0.0/24 via <this interface's address>\n\
(synack itself answers on L2 to the frame's source MAC and needs no route).")]
struct GenArgs {
    /// Interface to send on (its kernel must reach the target on-link, for the MAC).
    #[arg(long, value_name = "NAME")]
    interface: String,
    /// Target IP:PORT, e.g. 198.18.0.1:80 or [2001:2::1]:80.
    #[arg(long, value_name = "IP:PORT")]
    target: String,
    /// Source addresses: CIDR (198.19.0.0/24), range (198.19.0.1-198.19.0.9) or one
    /// address; at most 256. The target must route them back to this interface.
    #[arg(long, value_name = "ADDRS", default_value = "198.19.0.0/24")]
    source: String,
    /// Source ports, LOW-HIGH.
    #[arg(long, value_name = "LOW-HIGH", default_value = "1024-65535")]
    source_ports: String,
    /// New connections (or SYNs) per second; 0 = as fast as possible.
    #[arg(long, value_name = "N", default_value_t = 0)]
    rate: u64,
    #[arg(long, visible_alias = "packets", value_name = "N", default_value_t = 100_000,
          help = flag_help("--count", "Most connections (or SYNs) to start (alias --packets, whose rule applies with --live-flood)."))]
    count: u64,
    #[arg(long, visible_alias = "secs", value_name = "S", default_value_t = 10.0,
          help = flag_help("--duration", "Longest time to start new connections (or send) (alias --secs)."))]
    duration: f64,
    #[arg(long, value_name = "MS", default_value_t = 2000,
          help = flag_help("--drain-ms", "Longest time open connections may still finish afterwards."))]
    drain_ms: u64,
    /// Send SYNs only and count the SYN-ACKs (no state, no handshake completion).
    #[arg(long)]
    syn_flood: bool,
    /// SYN flood from an XDP program run with BPF_PROG_TEST_RUN live frames (millions a
    /// second from one core, paced to --rate inside the program, bounded by --packets and
    /// --secs), SYN-ACKs counted and dropped by an XDP counter on the interface. IPv4.
    #[arg(long, conflicts_with_all = ["syn_flood", "request", "http_get"])]
    live_flood: bool,
    /// --live-flood: frames that may go ahead of the rate's schedule [default: 20 ms of
    /// the rate, which covers the gap between two live calls].
    #[arg(long, value_name = "N", requires = "live_flood")]
    burst: Option<u64>,
    #[arg(long, value_name = "N", conflicts_with_all = ["syn_flood", "live_flood", "server_first"],
          help = flag_help("--concurrency", "Steady concurrency: keep N connections open for --duration, replacing any that close; report the established count, opens and closes per second and latency."))]
    concurrency: Option<usize>,
    #[arg(long, value_name = "MS", requires = "concurrency",
          help = flag_help("--interval-ms", "With --concurrency: send the request (--request or --http-get) on each connection every MS milliseconds and time the reply; without it connections stay idle."))]
    interval_ms: Option<u64>,
    /// --live-flood: do not attach the reply counter.
    #[arg(long, requires = "live_flood")]
    no_reply_counter: bool,
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["http_get", "syn_flood"],
          help = flag_help("--request", "Bytes to send once established; \\r \\n \\t escapes are understood."))]
    request: Option<String>,
    /// Shorthand for --request "GET PATH HTTP/1.1\r\nHost: TARGET\r\n\r\n" (keep-alive;
    /// add --server-first for "Connection: close" and let the server close).
    #[arg(long, value_name = "PATH", conflicts_with = "syn_flood")]
    http_get: Option<String>,
    /// Reply bytes that make a reply complete [default: 1].
    #[arg(long, value_name = "N", default_value_t = 1)]
    expect_bytes: u32,
    /// Let the server close first (wait for its FIN); default: the client closes first.
    #[arg(long)]
    server_first: bool,
    /// CPU to pin the generator to.
    #[arg(long, value_name = "CPU")]
    cpu: Option<usize>,
    /// XDP attach mode. On veth use generic with RPS so that receive work runs on the
    /// generator's CPU.
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = named::<XdpMode>())]
    xdp_mode: XdpMode,
    /// Target MAC (aa:bb:cc:dd:ee:ff); default: the kernel's neighbour entry.
    #[arg(long, value_name = "MAC")]
    target_mac: Option<String>,
    /// NIC queue to bind to.
    #[arg(long, value_name = "Q", default_value_t = 0)]
    queue: u32,
    #[arg(long, value_name = "N", default_value_t = 64,
          help = flag_help("--batch", "Most SYNs started per loop iteration (one TX kick per iteration)."))]
    batch: usize,
    #[arg(long, value_name = "N", default_value_t = 65_536,
          help = flag_help("--max-in-flight", "Most connections open at once."))]
    max_in_flight: usize,
    #[arg(long, value_name = "N", default_value_t = 32768,
          help = flag_help("--frames", "UMEM frames, 2 KiB each. A flood at full speed needs many in flight, or replies are dropped for want of fill-ring frames."))]
    frames: u32,
    /// Write the report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

/// clap's parser of an enum-valued setting: the type's one `FromStr` (an error becomes the
/// one-line message of [`clap_error`]), with its names as the possible values in `--help`.
#[derive(Clone)]
struct NamedParser<T>(std::marker::PhantomData<T>);

fn named<T>() -> NamedParser<T> {
    NamedParser(std::marker::PhantomData)
}

impl<T> clap::builder::TypedValueParser for NamedParser<T>
where
    T: Named + std::str::FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        (|s: &str| s.parse::<T>()).parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            T::NAMES
                .iter()
                .map(|n| clap::builder::PossibleValue::new(*n)),
        ))
    }
}

/// A clap error: a flag whose value its parser refused gets the one-line message naming
/// the flag with the settings table's hint (exit 2); anything else (usage, `--help`)
/// is printed by clap.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::ValueValidation {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            let problem = std::error::Error::source(&e)
                .map_or_else(|| e.kind().to_string(), ToString::to_string);
            return fail_config(&synack::config::flag_error(arg, problem).to_string());
        }
    }
    e.exit()
}

/// `synack gen --target-mac`, when given: six hex bytes.
fn gen_target_mac(m: Option<&str>) -> Result<Option<[u8; 6]>, String> {
    m.map(|m| {
        synack::wire::parse_mac(m).ok_or_else(|| {
            ConfigError::flag("--target-mac", format!("{m:?} is not six hex bytes")).to_string()
        })
    })
    .transpose()
}

/// A number given to a `synack gen` flag, checked against the flag's rule.
fn gen_num(flag: &str, v: u64) -> Result<u64, String> {
    check_flag(flag, v).map_err(|e| e.to_string())
}

/// `--target`: IP:PORT with a port one can connect to.
fn gen_target(t: &str) -> Result<std::net::SocketAddr, String> {
    let bad = |p: String| ConfigError::flag("--target", p).to_string();
    let target: std::net::SocketAddr = t
        .parse()
        .map_err(|_| bad(format!("{t:?} is not IP:PORT")))?;
    if target.port() == 0 {
        return Err(bad("port 0 cannot be connected to".to_owned()));
    }
    Ok(target)
}

/// `--cpu`: a CPU of this machine. Not available_parallelism(): that is this process's
/// affinity, and a caller pinned to another CPU (taskset) may still place the generator
/// anywhere.
fn gen_cpu(cpu: Option<usize>) -> Result<Option<usize>, String> {
    if let Some(cpu) = cpu {
        let n = std::fs::read_to_string("/proc/stat")
            .map(|s| {
                s.lines()
                    .filter(|l| {
                        l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                    })
                    .count()
            })
            .unwrap_or(1)
            .max(1);
        if cpu >= n {
            return Err(ConfigError::flag(
                "--cpu",
                format!("{cpu} is not a CPU of this machine (0..={})", n - 1),
            )
            .to_string());
        }
    }
    Ok(cpu)
}

/// The bytes of `--request` or `--http-get`, if either is given, checked against the
/// `--request` rule (one segment).
fn gen_request(a: &GenArgs, target: std::net::SocketAddr) -> Result<Option<Vec<u8>>, String> {
    let request = match (&a.request, &a.http_get) {
        (Some(r), _) => unescape(r).into_bytes(),
        (None, Some(path)) => {
            let host = match target.ip() {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            };
            let conn = if a.server_first {
                "Connection: close\r\n"
            } else {
                ""
            };
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{conn}\r\n").into_bytes()
        }
        (None, None) => return Ok(None),
    };
    gen_num("--request", request.len() as u64)?;
    Ok(Some(request))
}

/// `--concurrency N [--interval-ms MS]`: the steady-concurrency hold, if asked for.
fn gen_hold(a: &GenArgs, has_request: bool) -> Result<Option<synack::gen::Hold>, String> {
    let Some(n) = a.concurrency else {
        return Ok(None);
    };
    gen_num("--concurrency", n as u64)?;
    if let Some(ms) = a.interval_ms {
        gen_num("--interval-ms", ms)?;
    }
    if a.interval_ms.is_some() != has_request {
        return Err("--concurrency: give --interval-ms together with --request or --http-get (requests every MS), or neither (idle connections)".into());
    }
    Ok(Some(synack::gen::Hold {
        interval_us: a.interval_ms.map(|ms| ms * 1000),
    }))
}

/// Check the generator flags against their rules; the error names the flag and the fix.
fn gen_options(a: GenArgs) -> Result<synack::gen::run::GenOptions, String> {
    use synack::gen::driver::Pace;
    use synack::gen::{ClientConfig, CloseOrder, SourceRange};
    let target = gen_target(&a.target)?;
    let sources = SourceRange::parse(&a.source, &a.source_ports).map_err(|e| e.to_string())?;
    let wrong_source = |p: String| ConfigError::flag("--source", p).to_string();
    if sources.is_v6() != target.is_ipv6() {
        return Err(wrong_source(format!(
            "{:?} is not of the family of --target {}",
            a.source, a.target
        )));
    }
    if sources.has_addr(&target.ip()) {
        return Err(wrong_source(format!("{:?} contains the target", a.source)));
    }
    gen_num("--count", a.count)?;
    check_flag_secs("--duration", a.duration).map_err(|e| e.to_string())?;
    gen_num("--drain-ms", a.drain_ms)?;
    gen_num("--batch", a.batch as u64)?;
    gen_num("--max-in-flight", a.max_in_flight as u64)?;
    gen_num("--frames", u64::from(a.frames))?;
    let request = gen_request(&a, target)?;
    let hold = gen_hold(&a, request.is_some())?;
    let mut client = ClientConfig::new(target.ip(), target.port(), sources);
    client.hold = hold;
    client.request = request;
    client.expect_bytes = a.expect_bytes.max(1);
    client.close = if a.server_first {
        CloseOrder::ServerFirst
    } else {
        CloseOrder::ClientFirst
    };
    client.syn_flood = a.syn_flood;
    let mut secret = [0u8; 8];
    let _ = getrandom::fill(&mut secret);
    client.iss_secret = u64::from_ne_bytes(secret);
    Ok(synack::gen::run::GenOptions {
        target_mac: gen_target_mac(a.target_mac.as_deref())?,
        cpu: gen_cpu(a.cpu)?,
        interface: a.interface,
        queue: a.queue,
        client,
        pace: Pace {
            rate: (a.rate > 0).then_some(a.rate),
            count: a.count,
            // Steady concurrency keeps exactly N open: whatever closes is replaced.
            max_in_flight: a.concurrency.unwrap_or(a.max_in_flight),
            batch: a.batch,
        },
        duration: std::time::Duration::from_secs_f64(a.duration),
        drain: std::time::Duration::from_millis(a.drain_ms),
        xdp_mode: a.xdp_mode,
        frame_count: a.frames,
        ring_size: (a.frames / 2).min(4096),
        json: a.json,
    })
}

/// `\r`, `\n`, `\t` and `\\` in a command-line request.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `--live-flood`: check the flags that apply; the error names the flag and the remedy.
fn live_flood_options(a: &GenArgs) -> Result<synack::gen::flood::LiveFloodOptions, String> {
    let target: std::net::SocketAddrV4 = a.target.parse().map_err(|_| {
        ConfigError::flag(
            "--target",
            format!(
                "{:?} is not an IPv4 IP:PORT, which --live-flood needs",
                a.target
            ),
        )
        .to_string()
    })?;
    gen_num("--packets", a.count)?;
    check_flag_secs("--secs", a.duration).map_err(|e| e.to_string())?;
    gen_num("--drain-ms", a.drain_ms)?;
    if let Some(b) = a.burst {
        gen_num("--burst", b)?;
    }
    let target_mac = gen_target_mac(a.target_mac.as_deref())?;
    Ok(synack::gen::flood::LiveFloodOptions {
        interface: a.interface.clone(),
        target,
        target_mac,
        rate: (a.rate > 0).then_some(a.rate as f64),
        burst: a.burst,
        packets: a.count,
        secs: std::time::Duration::from_secs_f64(a.duration),
        drain: std::time::Duration::from_millis(a.drain_ms),
        count_replies: !a.no_reply_counter,
        counter_mode: a.xdp_mode,
        cpu: gen_cpu(a.cpu)?,
        json: a.json.clone(),
    })
}

fn gen_live_flood(args: &GenArgs, stop: &std::sync::atomic::AtomicBool) -> ExitCode {
    let opts = match live_flood_options(args) {
        Ok(o) => o,
        Err(msg) => return fail_config(&msg),
    };
    match synack::gen::flood::run(&opts, stop) {
        Ok(report) => {
            println!("synack gen");
            print!("{}", report.table());
            ExitCode::SUCCESS
        }
        Err(e) => fail_runtime(&e),
    }
}

fn gen(args: GenArgs) -> ExitCode {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            return fail_runtime(&anyhow::Error::new(e).context("installing signal handlers"));
        }
    }
    if args.live_flood {
        return gen_live_flood(&args, &stop);
    }
    let opts = match gen_options(args) {
        Ok(o) => o,
        Err(msg) => return fail_config(&msg),
    };
    match synack::gen::run::run(&opts, stop) {
        Ok(report) => {
            println!("synack gen");
            print!("{}", report.table());
            ExitCode::SUCCESS
        }
        Err(e) => fail_runtime(&e),
    }
}

fn main() -> ExitCode {
    // clap prints help/version (exit 0) and usage errors (exit 2) itself.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    if let Err(msg) = init_logging(cli.log_level.as_deref()) {
        return fail_config(&msg);
    }
    match cli.command {
        Command::Run(args) => {
            let reload_overrides: Overrides = args.overrides.into();
            let cfg = match resolve(args.config.as_deref(), reload_overrides.clone()) {
                Ok(cfg) => cfg,
                Err(msg) => return fail_config(&msg),
            };
            tracing::info!(
                interface = %cfg.interface,
                workers = %synack::config::format_cpu_list(&cfg.workers),
                listeners = cfg.listen.len(),
                "starting synack {}",
                env!("CARGO_PKG_VERSION")
            );
            let reload: Option<synack::app::Reloader> = args.config.clone().map(|path| {
                let ov = reload_overrides.clone();
                Box::new(move || resolve(Some(&path), ov.clone())) as synack::app::Reloader
            });
            match synack::app::run(cfg, reload) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail_runtime(&e),
            }
        }
        Command::CheckConfig(args) => check_config(args),
        Command::Lab(mut args) if args.action.is_some() => {
            lab_action(args.action.take().expect("checked"))
        }
        Command::Lab(args) => match LabOverrides::from(args).resolve() {
            Ok(opts) => match synack::app::lab(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail_runtime(&e),
            },
            Err(e) => fail_config(&e.to_string()),
        },
        Command::Gen(args) => gen(args),
    }
}

/// `synack check-config`: print the resolved config, or the reference.
fn check_config(args: CheckArgs) -> ExitCode {
    let Some(path) = args.config.filter(|_| !args.print_default) else {
        print!("{}", synack::config::rules::default_toml());
        return ExitCode::SUCCESS;
    };
    match resolve(Some(&path), args.overrides.into()) {
        Ok(cfg) => {
            print!("{}", cfg.to_toml_redacted());
            eprintln!("synack: {} is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(msg) => fail_config(&msg),
    }
}

/// File (or the embedded default), then flags, then validation. The error is the line
/// to print; errors from the file are prefixed with its name.
fn resolve(path: Option<&Path>, overrides: Overrides) -> Result<Config, String> {
    let mut cfg = match path {
        Some(p) => Config::read(p).map_err(|e| match e {
            ConfigError::Read { .. } => e.to_string(),
            _ => format!("{}: {e}", p.display()),
        })?,
        None => Config::parse_toml(DEFAULT_CONFIG).map_err(|e| e.to_string())?,
    };
    overrides.apply(&mut cfg).map_err(|e| e.to_string())?;
    cfg.validate().map_err(|e| match path {
        Some(p) => format!("{}: {e}", p.display()),
        None => e.to_string(),
    })?;
    Ok(cfg)
}

/// Logs to stderr; the filter is `--log-level`, else RUST_LOG, else `info`.
fn init_logging(level: Option<&str>) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let filter = match level {
        Some(l) => {
            // A bare word must be a level: `--log-level loud` would otherwise be taken
            // as a target name and silently log nothing.
            let bare = !l.contains('=') && !l.contains(',');
            if bare && !LEVELS.contains(&l.to_ascii_lowercase().as_str()) {
                let problem = format!("{l:?} is not a level");
                return Err(ConfigError::flag("--log-level", problem).to_string());
            }
            EnvFilter::try_new(l).map_err(|e| {
                let problem = format!("{l:?} is not a valid filter ({e})");
                ConfigError::flag("--log-level", problem).to_string()
            })?
        }
        None => match std::env::var("RUST_LOG") {
            Ok(v) if !v.is_empty() => EnvFilter::try_new(&v).map_err(|e| {
                format!("RUST_LOG: {v:?} is not a valid filter ({e}); set a level or a filter, e.g. RUST_LOG=info or RUST_LOG=synack=debug")
            })?,
            _ => EnvFilter::new("info"),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

fn fail_config(msg: &str) -> ExitCode {
    eprintln!("synack: error: {msg}");
    ExitCode::from(EXIT_CONFIG)
}

fn fail_runtime(e: &anyhow::Error) -> ExitCode {
    // `{:#}` prints the whole context chain on one line, outermost first.
    eprintln!("synack: error: {e:#}");
    ExitCode::from(EXIT_RUNTIME)
}
