//! Small safe wrappers over the system calls the control path and the lab need, so that
//! their callers (the lab, integration tests) stay free of `unsafe`.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
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
