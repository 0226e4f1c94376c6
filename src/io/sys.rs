//! Small safe wrappers over the system calls the control path and the lab need, so that
//! their callers (the lab, integration tests) stay free of `unsafe`.

use anyhow::Context;
use std::fs::File;
use std::os::fd::AsRawFd;

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Give the calling thread the real-time policy SCHED_FIFO at `priority` (1..=99), so no
/// ordinary thread on its CPU (a compiler, the stats thread, a NAPI kthread of the default
/// policy) preempts it while it has work; it still yields its CPU whenever it waits.
pub fn set_fifo_priority(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: `param` is a valid sched_param for the call; pid 0 is the calling thread.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Move the calling thread into the named network namespace (`ip netns add NAME` made it
/// under /var/run/netns). Only this thread moves; sockets it opens afterwards live there.
pub fn enter_netns(name: &str) -> std::io::Result<()> {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path)?;
    // SAFETY: `file` is an open namespace fd for the duration of the call; CLONE_NEWNET
    // restricts the call to network namespaces and affects only the calling thread.
    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Run `f` on a new thread inside network namespace `name` and return its result.
pub fn in_netns<R: Send>(name: &str, f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            enter_netns(name)?;
            Ok(f())
        });
        match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Turn on TCP keepalive on a socket with `idle` and `interval` seconds (Linux
/// TCP_KEEPIDLE/TCP_KEEPINTVL). Returns whether every option was accepted.
pub fn set_keepalive(s: &std::net::TcpStream, idle: i32, interval: i32) -> bool {
    let fd = s.as_raw_fd();
    let set = |level: i32, name: i32, v: i32| {
        // SAFETY: `fd` is an open socket borrowed from `s`; the value is a live i32 whose
        // size is passed.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&v as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            ) == 0
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
        && set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle)
        && set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, interval)
}

/// Resident set size of process `pid` in bytes (`/proc/PID/statm`, second field, times the
/// page size), for the memory checks of tests and benchmarks.
pub fn resident_bytes(pid: u32) -> std::io::Result<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "statm"))?;
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always supported on Linux.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * page.max(4096) as u64)
}

/// The MAC address of an interface, from sysfs.
pub fn interface_mac(ifname: &str) -> anyhow::Result<[u8; 6]> {
    let path = format!("/sys/class/net/{ifname}/address");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}: does interface {ifname} exist?"))?;
    crate::wire::parse_mac(&text).with_context(|| format!("{path}: bad MAC {text:?}"))
}

/// The MTU of an interface, from sysfs.
pub fn interface_mtu(ifname: &str) -> anyhow::Result<u32> {
    let path = format!("/sys/class/net/{ifname}/mtu");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}: does interface {ifname} exist?"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path}: unexpected MTU {text:?}"))
}
