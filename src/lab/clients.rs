//! The lab's client connections: real Linux sockets from threads inside the client
//! namespace, spread over the listener modes and both address families, each checked for
//! what its mode must do (the data echoed, the HTTP responses, who closes first).

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{connection_plan, lab_port, SERVER_V4, SERVER_V6};
use crate::forms::Named;
use crate::tcp::responder::Mode;

/// Longest time the connection phase may take before the rest count as failed.
const CONNECT_PHASE: Duration = Duration::from_secs(40);
/// Socket connect, read and write timeout of one client connection.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
/// Client threads driving connections.
const CLIENT_THREADS: usize = 8;
/// HTTP requests on one connection: keep-alive ones, then one with `Connection: close`.
const HTTP_REQUESTS: usize = 4;

/// Per-mode results of the connection phase.
#[derive(Debug, Default, Clone)]
pub(crate) struct ModeResult {
    ok: u64,
    failed: u64,
    errors: Vec<String>,
}

/// What the connection phase did.
#[derive(Debug, Default)]
pub(crate) struct ConnResults {
    modes: [ModeResult; Mode::ALL.len()],
    v4: u64,
    v6: u64,
    http_requests: u64,
    elapsed: Duration,
    /// The slowest connection (a lost segment shows as about 200 ms or one second: Linux's
    /// minimum and initial RTO).
    slowest: Duration,
    /// Which connection that was, and how long its connect() took.
    slowest_what: String,
}

impl ConnResults {
    pub(crate) fn ok(&self) -> u64 {
        self.modes.iter().map(|m| m.ok).sum()
    }
    pub(crate) fn failed(&self) -> u64 {
        self.modes.iter().map(|m| m.failed).sum()
    }
}

/// Print the connection phase: totals, the slowest, and per mode.
pub(crate) fn print_connections(c: &ConnResults) {
    let total = c.ok() + c.failed();
    let secs = c.elapsed.as_secs_f64().max(1e-6);
    println!(
        "connections: {} completed, {} failed, in {:.2} s ({:.0}/s; IPv4 {}, IPv6 {}; \
         slowest {:.0} ms)",
        c.ok(),
        c.failed(),
        secs,
        total as f64 / secs,
        c.v4,
        c.v6,
        c.slowest.as_secs_f64() * 1000.0
    );
    if c.slowest > Duration::from_millis(150) {
        println!("  slowest: {}", c.slowest_what);
    }
    for (&mode, r) in Mode::ALL.iter().zip(c.modes.iter()) {
        let extra = match mode {
            Mode::Http => format!(
                " ({} requests, {HTTP_REQUESTS} per connection)",
                c.http_requests
            ),
            Mode::Discard | Mode::Echo => " (client closes first)".to_owned(),
            Mode::Close => " (server closes first)".to_owned(),
        };
        println!(
            "  {:<8} port {:<3} {:>6} ok {:>6} failed{extra}",
            mode.name(),
            lab_port(mode),
            r.ok,
            r.failed
        );
        for e in &r.errors {
            println!("    e.g. {e}");
        }
    }
}

/// Drive `n` connections from threads inside the client namespace.
pub(crate) fn connections(client_ns: &str, n: u32, stop: &AtomicBool) -> Result<ConnResults> {
    let next = AtomicU64::new(0);
    let results = Mutex::new(ConnResults::default());
    let deadline = Instant::now() + CONNECT_PHASE;
    let t0 = Instant::now();
    let threads = CLIENT_THREADS.min(n as usize).max(1);
    let joined = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> std::io::Result<()> {
                    crate::io::sys::enter_netns(client_ns)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= u64::from(n) {
                            return Ok(());
                        }
                        let (mode, v6) = connection_plan(i as u32);
                        let started = Instant::now();
                        let r = if stop.load(Ordering::Relaxed) {
                            Err("interrupted".to_owned())
                        } else if Instant::now() > deadline {
                            Err(format!(
                                "not tried: the connection phase ran over {} s",
                                CONNECT_PHASE.as_secs()
                            ))
                        } else {
                            one_connection(mode, v6, i)
                        };
                        let took = started.elapsed();
                        let mut res = results.lock().unwrap_or_else(|p| p.into_inner());
                        if took > res.slowest {
                            res.slowest = took;
                            let fam = if v6 { "IPv6" } else { "IPv4" };
                            res.slowest_what = match &r {
                                Ok((_, connect)) => format!(
                                    "connection {i}, {} over {fam}, connect() {:.0} ms",
                                    mode.name(),
                                    connect.as_secs_f64() * 1000.0
                                ),
                                Err(_) => {
                                    format!("connection {i}, {} over {fam}, failed", mode.name())
                                }
                            };
                        }
                        let m = &mut res.modes[mode as usize];
                        match r {
                            Ok((requests, _)) => {
                                m.ok += 1;
                                res.http_requests += requests;
                            }
                            Err(e) => {
                                m.failed += 1;
                                if m.errors.len() < 3 {
                                    let fam = if v6 { "IPv6" } else { "IPv4" };
                                    m.errors.push(format!("connection {i} ({fam}): {e}"));
                                }
                            }
                        }
                        if v6 {
                            res.v6 += 1;
                        } else {
                            res.v4 += 1;
                        }
                    }
                })
            })
            .collect();
        join_clients(handles)
    });
    joined?;
    let mut res = results.into_inner().unwrap_or_else(|p| p.into_inner());
    res.elapsed = t0.elapsed();
    Ok(res)
}

/// Join all the client threads of a lab phase; the first error any of them returned (or
/// a panic), with the context every phase gives it.
pub(crate) fn join_clients(
    handles: Vec<std::thread::ScopedJoinHandle<'_, std::io::Result<()>>>,
) -> Result<()> {
    // Every thread is joined (a panic is an error here, not the scope's), then the first
    // error is returned.
    let results: Vec<std::io::Result<()>> = handles
        .into_iter()
        .map(|h| match h.join() {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::other("a client thread panicked")),
        })
        .collect();
    results
        .into_iter()
        .collect::<std::io::Result<()>>()
        .context("client thread in the client namespace")
}

/// Bytes of payload for connection `i`: a pattern of varying length (1..=3000).
fn payload(i: u64) -> Vec<u8> {
    let len = 1 + (i.wrapping_mul(2654435761) % 3000) as usize;
    (0..len).map(|k| (k as u64 ^ i) as u8).collect()
}

/// One client connection in `mode`. Returns the HTTP requests answered and how long
/// connect() took.
fn one_connection(mode: Mode, v6: bool, i: u64) -> std::result::Result<(u64, Duration), String> {
    let t0 = Instant::now();
    converse(mode, v6, i, &t0)
}

/// The body of [`one_connection`].
fn converse(
    mode: Mode,
    v6: bool,
    i: u64,
    t0: &Instant,
) -> std::result::Result<(u64, Duration), String> {
    let ip: IpAddr = if v6 {
        SERVER_V6.into()
    } else {
        SERVER_V4.into()
    };
    let addr = SocketAddr::new(ip, lab_port(mode));
    let mut s =
        TcpStream::connect_timeout(&addr, SOCKET_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    let connect = t0.elapsed();
    s.set_read_timeout(Some(SOCKET_TIMEOUT))
        .and_then(|_| s.set_write_timeout(Some(SOCKET_TIMEOUT)))
        .and_then(|_| s.set_nodelay(true))
        .map_err(|e| format!("socket options: {e}"))?;
    match mode {
        Mode::Discard => {
            s.write_all(&payload(i)).map_err(|e| format!("send: {e}"))?;
            s.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            expect_eof(&mut s)?;
            Ok((0, connect))
        }
        Mode::Echo => {
            let data = payload(i);
            s.write_all(&data).map_err(|e| format!("send: {e}"))?;
            let mut back = vec![0u8; data.len()];
            s.read_exact(&mut back)
                .map_err(|e| format!("reading the echo of {} bytes: {e}", data.len()))?;
            if back != data {
                return Err(format!("the echo of {} bytes differs", data.len()));
            }
            s.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            expect_eof(&mut s)?;
            Ok((0, connect))
        }
        Mode::Http => {
            let mut pending = Vec::new();
            for r in 0..HTTP_REQUESTS {
                let last = r + 1 == HTTP_REQUESTS;
                let req = format!(
                    "GET /lab/{i}/{r} HTTP/1.1\r\nHost: {ip}\r\nUser-Agent: synack-lab\r\n{}\r\n",
                    if last { "Connection: close\r\n" } else { "" }
                );
                s.write_all(req.as_bytes())
                    .map_err(|e| format!("request {r}: {e}"))?;
                let (head, _) = read_http_response(&mut s, &mut pending)
                    .map_err(|e| format!("response {r}: {e}"))?;
                let want = if last { "close" } else { "keep-alive" };
                if !head
                    .to_ascii_lowercase()
                    .contains(&format!("connection: {want}"))
                {
                    return Err(format!("response {r} lacks `Connection: {want}`: {head:?}"));
                }
            }
            if !pending.is_empty() {
                return Err(format!("{} bytes after the last response", pending.len()));
            }
            // Connection: close: the server closes first.
            expect_eof(&mut s)?;
            Ok((HTTP_REQUESTS as u64, connect))
        }
        Mode::Close => {
            expect_eof(&mut s)?;
            Ok((0, connect))
        }
    }
}

/// Read until the peer's FIN; any data before it is an error.
pub(crate) fn expect_eof(s: &mut TcpStream) -> std::result::Result<(), String> {
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{n} unexpected bytes instead of the server's FIN")),
        Err(e) => Err(format!("waiting for the server's FIN: {e}")),
    }
}

/// Read one HTTP response (head and `Content-Length` body); `pending` keeps bytes read
/// beyond it. Returns the head and the body; the status must be 200.
pub(crate) fn read_http_response(
    s: &mut TcpStream,
    pending: &mut Vec<u8>,
) -> std::result::Result<(String, Vec<u8>), String> {
    let mut buf = [0u8; 2048];
    let head_end = loop {
        if let Some(p) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if pending.len() > 16384 {
            return Err("head longer than 16 KiB".to_owned());
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "connection closed after {} bytes of head",
                pending.len()
            ));
        }
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("status line: {:?}", head.lines().next()));
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
    while pending.len() < head_end + len {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed inside the body".to_owned());
        }
        pending.extend_from_slice(&buf[..n]);
    }
    let body = pending[head_end..head_end + len].to_vec();
    pending.drain(..head_end + len);
    Ok((head, body))
}
