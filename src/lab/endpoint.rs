//! The endpoint as a child process: `synack run` started in a lab namespace with a config
//! file, a ready file and a stats JSON, waited for (bounded), read, and stopped.
//!
//! `ip netns exec NS synack run …` execs the binary, so the child's pid is the
//! endpoint's: it is signalled by that pid only. Used by the demo, `--nodes` and (through
//! `tests/common`) the root integration tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use super::netns::{in_netns, signal};
use crate::config::SynOffloadMode;
use crate::io::bpf::{Filter, XdpProgram};
use crate::io::XdpMode;

/// Longest wait for the endpoint's ready and stats files.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for the endpoint to exit after SIGINT (its drain is 2 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the stats file to be rewritten.
pub const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// What happens to a still-running endpoint when its [`Endpoint`] is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDrop {
    /// SIGINT, then SIGKILL after [`STOP_TIMEOUT`] (the lab: a clean stop also on failure).
    Interrupt,
    /// SIGKILL at once (a test that failed: no point in draining).
    Kill,
}

/// How to start one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// Namespace to run in.
    pub ns: String,
    /// The `synack` binary.
    pub exe: PathBuf,
    /// Directory of its files: `TAG.toml`, `TAG.ready`, `TAG.stats.json`, `TAG.out`,
    /// `TAG.err`.
    pub dir: PathBuf,
    /// File name prefix of its files.
    pub tag: String,
    /// The config file's text (TOML).
    pub config: String,
    /// More flags after `run --config FILE --ready-file … --stats-json …`.
    pub flags: Vec<String>,
    /// Environment variables set for it (besides the inherited ones).
    pub env: Vec<(String, String)>,
    /// What dropping a running endpoint does.
    pub on_drop: OnDrop,
}

/// A running (or stopped) `synack run` child.
#[derive(Debug)]
pub struct Endpoint {
    child: Option<Child>,
    on_drop: OnDrop,
    /// Its config file.
    pub config: PathBuf,
    /// Its ready file.
    pub ready: PathBuf,
    /// Its stats JSON file.
    pub stats: PathBuf,
    /// Its standard output.
    pub stdout: PathBuf,
    /// Its standard error (the `tracing` log).
    pub stderr: PathBuf,
}

impl Endpoint {
    /// Write the config, start `synack run` in the namespace, and wait (bounded by
    /// [`READY_TIMEOUT`] and `stop`) until both its ready file and its stats file exist.
    /// An endpoint that exits or does not come up is an error with the tail of its log.
    pub fn start(spec: &EndpointSpec, stop: &AtomicBool) -> Result<Endpoint> {
        let file = |ext: &str| spec.dir.join(format!("{}.{ext}", spec.tag));
        let (config, ready, stats) = (file("toml"), file("ready"), file("stats.json"));
        let (stdout, stderr) = (file("out"), file("err"));
        std::fs::write(&config, &spec.config)
            .with_context(|| format!("writing {}", config.display()))?;
        let out = std::fs::File::create(&stdout)
            .with_context(|| format!("creating {}", stdout.display()))?;
        let err = std::fs::File::create(&stderr)
            .with_context(|| format!("creating {}", stderr.display()))?;
        let _ = std::fs::remove_file(&ready);
        let _ = std::fs::remove_file(&stats);
        let child = Command::new("ip")
            .args(["netns", "exec", &spec.ns])
            .arg(&spec.exe)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--ready-file")
            .arg(&ready)
            .arg("--stats-json")
            .arg(&stats)
            .args(&spec.flags)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting `synack run` in namespace {}", spec.ns))?;
        let mut ep = Endpoint {
            child: Some(child),
            on_drop: spec.on_drop,
            config,
            ready,
            stats,
            stdout,
            stderr,
        };
        ep.wait_ready(&spec.ns, stop)?;
        Ok(ep)
    }

    /// Wait for the ready and the stats file; the endpoint may also fail to start.
    fn wait_ready(&mut self, ns: &str, stop: &AtomicBool) -> Result<()> {
        let t0 = Instant::now();
        while !(self.ready.exists() && self.stats.exists()) {
            interrupted(stop)?;
            if let Some(st) = self.exited() {
                bail!(
                    "the endpoint in {ns} exited during start-up ({st}):\n{}",
                    self.log_tail(20)
                );
            }
            if t0.elapsed() > READY_TIMEOUT {
                bail!(
                    "the endpoint in {ns} was not ready after {} s:\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Its pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGINT, then wait up to `timeout`; SIGKILL (and an error) if it is still running.
    /// Returns the exit status and how long the exit took.
    pub fn stop(&mut self, timeout: Duration) -> Result<(ExitStatus, Duration)> {
        let Some(mut child) = self.child.take() else {
            bail!("the endpoint was already stopped");
        };
        let t0 = Instant::now();
        if child.try_wait()?.is_none() {
            signal(child.id(), "INT")?;
        }
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok((st, t0.elapsed()));
            }
            if t0.elapsed() >= timeout {
                let _ = child.kill(); // SIGKILL, this pid only
                let _ = child.wait();
                bail!(
                    "the endpoint (pid {}) did not exit within {} s of SIGINT; killed",
                    child.id(),
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL (this pid only) and reap.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("the endpoint was already stopped");
        };
        child.kill().context("SIGKILL")?;
        Ok(child.wait()?)
    }

    /// Its standard error so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last `n` lines of its standard error, then of its standard output.
    pub fn log_tail(&self, n: usize) -> String {
        let tail = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        let (err, out) = (tail(&self.stderr), tail(&self.stdout));
        if out.is_empty() {
            err
        } else {
            format!("{err}\n{out}")
        }
    }

    /// The last line of its log (stderr, then stdout) that contains `word`.
    pub fn last_log_line(&self, word: &str) -> Option<String> {
        [&self.stderr, &self.stdout].iter().find_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .rev()
                .find(|l| l.contains(word))
                .map(str::to_owned)
        })
    }

    /// The stats JSON as it is now.
    pub fn stats_now(&self) -> Result<serde_json::Value> {
        read_json(&self.stats)
    }

    /// The stats JSON once rewritten after this call (bounded by [`STATS_TIMEOUT`]).
    pub fn fresh_stats(&self, stop: &AtomicBool) -> Result<serde_json::Value> {
        read_stats_fresh(&self.stats, SystemTime::now(), stop)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        match self.on_drop {
            OnDrop::Interrupt if self.child.is_some() => {
                let _ = self.stop(STOP_TIMEOUT);
            }
            _ => {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill(); // SIGKILL to this pid only
                    let _ = child.wait();
                }
            }
        }
    }
}

/// What an endpoint with SYN offload `offload` in XDP mode `mode` needs on the peer of its
/// veth (`ifname` in namespace `ns`): with the offload `on` and XDP not in generic mode, a
/// pass-through XDP program (ours, with an empty filter, so every frame goes on to the
/// peer's kernel), to be held as long as the endpoint runs. A veth hands its peer's native
/// `XDP_TX` frames (the SYN-ACKs answered in XDP) on promptly only then: kernel
/// `veth_xdp_xmit` needs the peer's NAPI, and with GRO alone they wait in its ring. `None`
/// when it is not needed (`auto` is off on a native veth; generic `XDP_TX` goes out through
/// the stack).
pub fn offload_peer_program(
    offload: SynOffloadMode,
    mode: XdpMode,
    ns: &str,
    ifname: &str,
) -> Result<Option<XdpProgram>> {
    if offload != SynOffloadMode::On || mode == XdpMode::Generic {
        return Ok(None);
    }
    let prog = in_netns(ns, || {
        XdpProgram::attach(ifname, XdpMode::Native, &Filter::default())
    })?
    .with_context(|| format!("a pass-through XDP program on {ifname} in {ns}"))?;
    Ok(Some(prog))
}

/// An error once `stop` (SIGINT/SIGTERM of the lab) is set.
pub fn interrupted(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted; cleaning up");
    }
    Ok(())
}

/// Read the stats JSON once it has been rewritten after `since`, bounded by
/// [`STATS_TIMEOUT`] and `stop`.
pub fn read_stats_fresh(
    path: &Path,
    since: SystemTime,
    stop: &AtomicBool,
) -> Result<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        interrupted(stop)?;
        let fresh = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > since);
        if fresh {
            if let Ok(v) = read_json(path) {
                return Ok(v);
            }
        }
        if t0.elapsed() > STATS_TIMEOUT {
            bail!(
                "the endpoint's stats file {} was not rewritten within {} s",
                path.display(),
                STATS_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A counter of a stats document: `total.events.NAME` (0 when absent).
pub fn event(stats: &serde_json::Value, name: &str) -> u64 {
    stats["total"]["events"][name].as_u64().unwrap_or(0)
}

/// A drop counter of a stats document: `total.drops.NAME` (0 when absent).
pub fn drop_count(stats: &serde_json::Value, name: &str) -> u64 {
    stats["total"]["drops"][name].as_u64().unwrap_or(0)
}
