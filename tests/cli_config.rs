//! The `synack` binary's configuration interface: exit codes (0 ok, 2 invalid setting or
//! flag, 1 runtime failure) and one-line messages that name the setting or flag.
//!
//! No test here touches the network: `check-config` only reads files, `lab` is only
//! given invalid flags (rejected before anything runs), and `run` is only given an
//! interface name that does not exist.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use synack::config::{Config, ListenMode};

const BIN: &str = env!("CARGO_BIN_EXE_synack");
const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/lab.toml");
const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");

/// A file in the temp dir, unique per process and call, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("synack-cli-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, contents).expect("write temp config");
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Run the binary with `args`, killing it (by its own PID) if it outlives `limit`.
fn synack(args: &[&str]) -> Output {
    let limit = Duration::from_secs(30);
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn synack");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait for synack") {
            Some(_) => break,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect synack output");
                panic!("synack {args:?} still running after {limit:?}: {out:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    child.wait_with_output().expect("collect synack output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 2 and exactly one stderr line that names `what`; returns that line.
fn assert_config_error(args: &[&str], what: &str) -> String {
    let out = synack(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "synack {args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "synack {args:?} printed more than one line: {err}"
    );
    assert!(
        lines[0].contains(what),
        "synack {args:?} does not name {what}: {err}"
    );
    let hints = [
        "e.g.",
        "check the path",
        "keys allowed here are",
        "fix the syntax",
    ];
    assert!(hints.iter().any(|h| lines[0].contains(h)), "no hint: {err}");
    lines[0].to_owned()
}

#[test]
fn check_config_accepts_the_lab_file_and_prints_it_resolved() {
    let out = synack(&["check-config", "--config", LAB]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).expect("utf-8 TOML");
    let resolved = Config::from_toml_str(&printed).expect("printed config is valid TOML config");
    let lab = Config::load(Path::new(LAB)).expect("lab.toml loads");
    assert_eq!(resolved, lab);
}

#[test]
fn check_config_overrides_replace_the_files_values() {
    let out = synack(&[
        "check-config",
        "--config",
        LAB,
        "--interface",
        "veth7",
        "--address",
        "198.18.0.7",
        "--address",
        "2001:2::7",
        "--listen",
        "8080:echo",
        "--listen",
        "8081",
        "--workers",
        "0",
        "--xdp-mode",
        "generic",
        "--xdp-attach",
        "dispatcher",
        "--cookie-secret",
        "00112233445566778899aabbccddeeff",
        "--stats-json",
        "/tmp/synack-stats.json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).expect("utf-8 TOML");
    let cfg = Config::from_toml_str(&printed).expect("printed config is valid");
    assert_eq!(cfg.interface, "veth7");
    assert_eq!(cfg.addresses.len(), 2);
    let listen: Vec<_> = cfg.listen.iter().map(|l| (l.port, l.mode)).collect();
    assert_eq!(
        listen,
        [(8080, ListenMode::Echo), (8081, ListenMode::Discard)]
    );
    assert_eq!(cfg.xdp.mode, synack::io::XdpMode::Generic);
    assert_eq!(cfg.xdp.attach, synack::io::XdpAttach::Dispatcher);
    assert_eq!(
        cfg.ops.stats_json.as_deref(),
        Some(Path::new("/tmp/synack-stats.json"))
    );
    // The secret was applied but is not printed.
    assert!(
        !printed.contains("00112233445566778899aabbccddeeff"),
        "{printed}"
    );
    assert!(printed.contains("cookie_secret is set"), "{printed}");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    for (flag, value) in [
        ("--listen", "0"),
        ("--listen", "80:bogus"),
        ("--listen", "http"),
        ("--workers", "9999"),
        ("--workers", "1-0"),
        ("--cookie-secret", "xyz"),
        ("--xdp-mode", "fast"),
        ("--xdp-attach", "share"),
        ("--address", "224.0.0.1"),
        ("--address", "198.18.0"),
        ("--interface", "has space"),
        ("--ready-file", "/tmp/"),
    ] {
        let line = assert_config_error(&["check-config", "--config", LAB, flag, value], flag);
        assert!(
            line.starts_with(&format!("synack: error: {flag}: ")),
            "{line}"
        );
    }
    assert_config_error(
        &["check-config", "--config", LAB, "--log-level", "loud"],
        "--log-level",
    );
}

#[test]
fn duplicate_listen_flags_exit_2() {
    assert_config_error(
        &[
            "check-config",
            "--config",
            LAB,
            "--listen",
            "80",
            "--listen",
            "80:echo",
        ],
        "--listen",
    );
}

#[test]
fn bad_files_exit_2_naming_the_setting() {
    let lab = std::fs::read_to_string(LAB).expect("read lab.toml");
    for (extra, field) in [
        ("[tcp]\ntime_wait_secs = 601", "tcp.time_wait_secs"),
        ("[tcp]\nmsss = 1460", "tcp.msss"),
        ("[tcp]\ncookie_secret = \"xyz\"", "tcp.cookie_secret"),
        ("[xdp]\nring_size = 100", "xdp.ring_size"),
        ("[xdp]\nmode = \"fast\"", "xdp.mode"),
        ("[http]\nstatus = 700", "http.status"),
        ("[steering]\nrss_key = \"00\"", "steering.rss_key"),
        ("[ops]\nstats_interval_ms = 5", "ops.stats_interval_ms"),
        ("[[listen]]\nport = 80", "listen"),
        ("[[listen]]\nport = 81\nmode = \"bogus\"", "listen.mode"),
        ("[nonsense]\nx = 1", "nonsense"),
    ] {
        let file = TempFile::new(&format!("{lab}\n{extra}\n"));
        let line = assert_config_error(&["check-config", "--config", file.path()], field);
        assert!(line.contains(&format!("{field}: ")), "{line}");
        assert!(line.contains(file.path()), "names the file: {line}");
    }
}

#[test]
fn syntax_error_and_missing_file_exit_2() {
    let file = TempFile::new("interface = \"eth1\"\n[tcp\nmss = 1460\n");
    let line = assert_config_error(&["check-config", "--config", file.path()], "line 2");
    assert!(line.contains("TOML syntax error"), "{line}");
    let missing = format!("{}.missing", file.path());
    assert_config_error(&["check-config", "--config", &missing], &missing);
}

#[test]
fn default_file_asks_for_the_interface() {
    let line = assert_config_error(&["check-config", "--config", DEFAULT], "interface");
    assert!(line.contains("--interface"), "{line}");
    // Run without a file uses the embedded default, with the same demand.
    assert_config_error(&["run"], "interface");
    // Then addresses and listeners.
    assert_config_error(&["run", "--interface", "eth1"], "addresses");
    assert_config_error(
        &["run", "--interface", "eth1", "--address", "198.18.0.1"],
        "listen",
    );
}

#[test]
fn lab_bad_flags_exit_2() {
    for (flag, value) in [
        ("--connections", "0"),
        ("--connections", "lots"),
        ("--flood-packets", "20000000"),
        ("--flood-secs", "0"),
        ("--xdp-mode", "fast"),
        ("--syn-offload", "yes"),
        ("--workers", "9999"),
    ] {
        assert_config_error(&["lab", flag, value], flag);
    }
}

#[test]
fn runtime_failure_exits_1_with_the_error() {
    // An interface that cannot exist here: the endpoint fails to start.
    let ifname = format!("snknx{}", std::process::id() % 100_000);
    let out = synack(&[
        "run",
        "--interface",
        &ifname,
        "--address",
        "198.18.0.1",
        "--listen",
        "9",
        "--log-level",
        "error",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("synack: error: "), "{err}");
}

#[test]
fn help_and_version() {
    let out = synack(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["run", "check-config", "lab", "--log-level", "Examples"] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
    let out = synack(&["run", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--config",
        "--interface",
        "--address",
        "--listen",
        "--workers",
        "--xdp-mode",
        "--cookie-secret",
        "--ready-file",
        "--stats-json",
    ] {
        assert!(help.contains(word), "run --help lacks {word}: {help}");
    }
    let out = synack(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    // Usage errors from clap itself also exit 2.
    assert_eq!(synack(&["check-config"]).status.code(), Some(2));
    assert_eq!(synack(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn print_default_is_the_reference_file() {
    let out = synack(&["check-config", "--print-default"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).expect("utf-8 TOML");
    let file = std::fs::read_to_string(DEFAULT).expect("read config/default.toml");
    assert_eq!(
        printed, file,
        "regenerate: synack check-config --print-default > {DEFAULT}"
    );
}

#[test]
fn enum_flags_list_their_values_and_refuse_others_in_one_line() {
    let out = synack(&["run", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("[possible values: auto, native, generic]"),
        "{help}"
    );
    let line = assert_config_error(
        &["check-config", "--config", LAB, "--syn-offload", "maybe"],
        "--syn-offload",
    );
    assert!(
        line.contains("\"maybe\" is not a SYN offload setting; give auto, on or off"),
        "{line}"
    );
}
