//! The `synack` command: `run`, `check-config` and `lab`.
//!
//! Exit codes: 0 success; 2 a usage or configuration error (one line on stderr naming
//! the setting or flag and how to fix it); 1 a runtime error (the endpoint failed), with
//! its cause chain.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use synack::config::{Config, ConfigError, LabOverrides, Overrides, DEFAULT_CONFIG};

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
    #[arg(long, short, value_name = "PATH")]
    config: PathBuf,
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
    /// Listener PORT[:MODE], MODE one of discard (default), echo, http, close; repeatable
    /// (replaces the file's `listen`), e.g. 80:http.
    #[arg(long, value_name = "PORT[:MODE]")]
    listen: Vec<String>,
    /// Worker CPUs as a list like 0, 0-1 or 0,2-3 (replaces `workers`).
    #[arg(long, value_name = "CPU_LIST")]
    workers: Option<String>,
    /// XDP attach mode: auto, native or generic (replaces `xdp.mode`).
    #[arg(long, value_name = "MODE")]
    xdp_mode: Option<String>,
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
    capture_mode: Option<String>,
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
struct LabArgs {
    /// Client connections to open and close, 1..=100000 [default: 2000].
    #[arg(long, value_name = "N")]
    connections: Option<String>,
    /// Most SYN-flood packets to send, 0..=10000000; 0 skips the flood [default: 200000].
    #[arg(long, value_name = "N")]
    flood_packets: Option<String>,
    /// Longest the flood may run, in seconds, 1..=60 [default: 5].
    #[arg(long, value_name = "S")]
    flood_secs: Option<String>,
    /// XDP attach mode of the server: auto, native or generic [default: auto].
    #[arg(long, value_name = "MODE")]
    xdp_mode: Option<String>,
    /// Server worker CPUs, a list like 0, 0-1 or 0,2-3 [default: 0].
    #[arg(long, value_name = "CPU_LIST")]
    workers: Option<String>,
    /// Keep the namespaces and veth pair afterwards, for inspection.
    #[arg(long)]
    keep: bool,
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
        }
    }
}

fn main() -> ExitCode {
    // clap prints help/version (exit 0) and usage errors (exit 2) itself.
    let cli = Cli::parse();
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
        Command::CheckConfig(args) => match resolve(Some(&args.config), args.overrides.into()) {
            Ok(cfg) => {
                print!("{}", cfg.to_toml_redacted());
                eprintln!("synack: {} is valid", args.config.display());
                ExitCode::SUCCESS
            }
            Err(msg) => fail_config(&msg),
        },
        Command::Lab(args) => match LabOverrides::from(args).resolve() {
            Ok(opts) => match synack::app::lab(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail_runtime(&e),
            },
            Err(e) => fail_config(&e.to_string()),
        },
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
                return Err(format!(
                    "--log-level: {l:?} is not a level; give error, warn, info, debug, trace or off, or a filter, e.g. --log-level debug or --log-level synack=debug,info"
                ));
            }
            EnvFilter::try_new(l).map_err(|e| {
                format!("--log-level: {l:?} is not a valid filter ({e}); give a level or a filter, e.g. --log-level info or --log-level synack=debug,info")
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
