//! The XDP program already attached to an interface, found and (on request) detached.
//!
//! An interface holds one XDP program per mode (driver, generic, offload). Before we
//! attach, [`query`] asks the kernel (rtnetlink `RTM_GETLINK`, the nested `IFLA_XDP`
//! attributes that `ip -d link` prints as `prog/xdp id N`) which programs are there, and
//! names them through the BPF program info (aya's [`loaded_programs`]). `xdp.attach =
//! "replace"` then [`detach`]es them: a program attached through netlink (`ip link set
//! dev X xdp obj …`) with `RTM_SETLINK IFLA_XDP_FD = -1` (what `ip link set dev X xdp off`
//! sends), one attached through a `bpf_link` (libbpf, aya, another synack) — which
//! netlink refuses with EBUSY — with `BPF_LINK_DETACH` on that link.
//!
//! [`loaded_programs`]: aya::programs::loaded_programs

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context};

/// `RTM_NEWLINK`, `RTM_GETLINK`, `RTM_SETLINK` (linux/rtnetlink.h).
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
/// `NLMSG_ERROR` (linux/netlink.h).
const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`, `NLM_F_ACK`.
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
/// `NLA_F_NESTED`.
const NLA_F_NESTED: u16 = 0x8000;
/// `IFLA_XDP` and its nested attributes (linux/if_link.h).
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;
/// `XDP_FLAGS_SKB_MODE`, `XDP_FLAGS_DRV_MODE`, `XDP_FLAGS_HW_MODE`.
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;
const XDP_FLAGS_HW_MODE: u32 = 8;
/// `BPF_LINK_GET_FD_BY_ID`, `BPF_LINK_DETACH` (linux/bpf.h `enum bpf_cmd`).
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_DETACH: libc::c_long = 34;
/// Length of `struct nlmsghdr` and of `struct ifinfomsg`.
const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;

/// The mode an attached program runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    /// Driver (native) mode.
    Driver,
    /// Generic (skb) mode.
    Generic,
    /// Offloaded to the NIC.
    Offload,
}

impl AttachedMode {
    /// Name as `ip link` shows it.
    pub const fn name(self) -> &'static str {
        match self {
            AttachedMode::Driver => "xdpdrv",
            AttachedMode::Generic => "xdpgeneric",
            AttachedMode::Offload => "xdpoffload",
        }
    }

    const fn flags(self) -> u32 {
        match self {
            AttachedMode::Driver => XDP_FLAGS_DRV_MODE,
            AttachedMode::Generic => XDP_FLAGS_SKB_MODE,
            AttachedMode::Offload => XDP_FLAGS_HW_MODE,
        }
    }
}

/// One XDP program attached to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedProgram {
    /// Kernel program id (`bpftool prog show id N`).
    pub id: u32,
    /// Its name (up to 15 bytes, from the BPF program info), if the kernel gave one.
    pub name: Option<String>,
    /// The mode it is attached in.
    pub mode: AttachedMode,
}

impl std::fmt::Display for AttachedProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "program id {} name {} ({})",
            self.id,
            self.name.as_deref().unwrap_or("?"),
            self.mode.name()
        )
    }
}

/// The index of interface `ifname` in the calling thread's network namespace
/// (`if_nametoindex(3)`); the error says how to check the name.
pub fn ifindex(ifname: &str) -> anyhow::Result<u32> {
    let c_name = std::ffi::CString::new(ifname)
        .map_err(|_| anyhow::anyhow!("interface name {ifname:?} contains a NUL byte"))?;
    // SAFETY: `c_name` is a valid NUL-terminated string that outlives the call.
    let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if ifindex == 0 {
        bail!(
            "interface {ifname} not found (in this network namespace): check the name with \
             `ip link show`"
        );
    }
    Ok(ifindex)
}

/// The XDP programs attached to interface `ifindex` of the calling thread's network
/// namespace (empty when there is none).
pub fn query(ifindex: u32) -> anyhow::Result<Vec<AttachedProgram>> {
    let mut req = nl_header(RTM_GETLINK, NLM_F_REQUEST);
    req.extend_from_slice(&ifinfomsg(ifindex));
    let reply = nl_request(&mut req).context("RTM_GETLINK")?;
    let mut found = parse_link_reply(&reply)?;
    if found.is_empty() {
        return Ok(found);
    }
    for info in aya::programs::loaded_programs().flatten() {
        for p in found.iter_mut().filter(|p| p.id == info.id()) {
            p.name = info.name_as_str().map(str::to_owned);
        }
    }
    Ok(found)
}

/// Why we cannot attach to `ifname` while `progs` are attached, and the choices; when one
/// of them is libxdp's dispatcher, the first choice named is joining it.
pub fn conflict_message(ifname: &str, progs: &[AttachedProgram]) -> String {
    let list: Vec<String> = progs.iter().map(ToString::to_string).collect();
    let off = progs.first().map_or("xdp", |p| p.mode.name());
    let join = if progs.iter().any(is_dispatcher) {
        format!(
            "it is libxdp's multi-program dispatcher: set xdp.attach = \"dispatcher\" to join \
             its chain (its programs stay and get the frames synack passes; `xdp-loader status \
             {ifname}` lists them), or"
        )
    } else {
        "set xdp.attach = \"dispatcher\" to share the interface through libxdp's dispatcher \
         (the other program must be loaded through libxdp too, e.g. `xdp-loader load`), or"
            .to_string()
    };
    format!(
        "interface {ifname} already has an XDP program: {}; {join} stop whatever owns it or \
         remove it (`ip link set dev {ifname} {off} off`; `bpftool net show dev {ifname}` shows \
         the owner), or set xdp.attach = \"replace\" to detach it and attach synack's (the \
         other program stops seeing traffic), or run synack on another interface",
        list.join(", ")
    )
}

/// Why `xdp.attach = "dispatcher"` cannot join `progs` on `ifname` (none is libxdp's
/// dispatcher), and the choices.
pub fn dispatcher_conflict_message(ifname: &str, progs: &[AttachedProgram]) -> String {
    let list: Vec<String> = progs.iter().map(ToString::to_string).collect();
    let off = progs.first().map_or("xdp", |p| p.mode.name());
    format!(
        "interface {ifname} already has an XDP program that is not libxdp's dispatcher: {}; \
         xdp.attach = \"dispatcher\" joins only a chain libxdp built. Choose: load the other \
         program through libxdp instead (`ip link set dev {ifname} {off} off`, then \
         `xdp-loader load {ifname} FILE.o`), so both run in one dispatcher, or set xdp.attach = \
         \"replace\" to detach it and attach synack's, or run synack on another interface",
        list.join(", ")
    )
}

/// Whether `p` is libxdp's dispatcher (by the name libxdp gives it).
fn is_dispatcher(p: &AttachedProgram) -> bool {
    p.name.as_deref() == Some(crate::io::libxdp::DISPATCHER_NAME)
}

/// The processes holding BPF program `id` open, as a program fd or a link to it: the
/// `prog_id:` line of `/proc/<pid>/fdinfo/<fd>` (`bpf_prog_show_fdinfo`,
/// `bpf_link_show_fdinfo` in kernel/bpf/syscall.c). A program only bpffs pins keep alive
/// (libxdp's, after its process died) has none.
pub fn holders(id: u32) -> Vec<u32> {
    let want = format!("prog_id:\t{id}");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fdinfo")) else {
            continue;
        };
        let held = fds.flatten().any(|fd| {
            std::fs::read_to_string(fd.path())
                .is_ok_and(|info| info.lines().any(|l| l.trim_end() == want))
        });
        if held {
            pids.push(pid);
        }
    }
    pids
}

/// Detach `prog` from interface `ifindex`: through netlink, or — when a `bpf_link` owns
/// the attachment (netlink says EBUSY) — through `BPF_LINK_DETACH` on that link.
pub fn detach(ifindex: u32, prog: &AttachedProgram) -> anyhow::Result<()> {
    let mut req = nl_header(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    req.extend_from_slice(&ifinfomsg(ifindex));
    let mut nested = Vec::new();
    push_attr(&mut nested, IFLA_XDP_FD, &(-1i32).to_ne_bytes());
    push_attr(
        &mut nested,
        IFLA_XDP_FLAGS,
        &prog.mode.flags().to_ne_bytes(),
    );
    push_attr(&mut req, IFLA_XDP | NLA_F_NESTED, &nested);
    match nl_request(&mut req) {
        Ok(_) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => return Err(e).with_context(|| format!("detaching {prog} through netlink")),
    }
    let link = aya::programs::loaded_links()
        .flatten()
        .find(|l| {
            l.program_id() == prog.id
                && matches!(l.link_type(), Ok(aya::programs::links::LinkType::Xdp))
        })
        .with_context(|| format!("netlink says a bpf_link holds {prog}, but none was found"))?;
    link_detach(link.id()).with_context(|| format!("BPF_LINK_DETACH of link {}", link.id()))
}

/// `BPF_LINK_GET_FD_BY_ID` then `BPF_LINK_DETACH` (Linux 5.9+ for XDP links).
fn link_detach(link_id: u32) -> std::io::Result<()> {
    // union bpf_attr for BPF_LINK_GET_FD_BY_ID: link_id, next_id, open_flags; the rest
    // must be zero.
    let mut attr = [0u32; 4];
    attr[0] = link_id;
    // SAFETY: `attr` is a valid, initialised buffer of the size passed; the kernel only
    // reads it for this command.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_GET_FD_BY_ID,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr) as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new file descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut attr = [0u32; 4];
    attr[0] = fd.as_raw_fd() as u32;
    // SAFETY: as above; BPF_LINK_DETACH reads link_fd from `attr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_DETACH,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr) as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A `struct nlmsghdr` with length 0 (set by [`nl_request`]).
fn nl_header(kind: u16, flags: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(&0u32.to_ne_bytes());
    h.extend_from_slice(&kind.to_ne_bytes());
    h.extend_from_slice(&flags.to_ne_bytes());
    h.extend_from_slice(&1u32.to_ne_bytes()); // seq
    h.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel's
    h
}

/// A `struct ifinfomsg` for `ifindex`, family AF_UNSPEC.
fn ifinfomsg(ifindex: u32) -> [u8; IFINFOMSG] {
    let mut m = [0u8; IFINFOMSG];
    m[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    m
}

/// Append one `struct rtattr` (4-byte aligned).
fn push_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    buf.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// The attributes in `buf`: (type without flags, payload); stops at a malformed one.
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> + '_ {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        let cur = buf;
        buf = &cur[((len + 3) & !3).min(cur.len())..];
        Some((kind, &cur[4..len]))
    })
}

/// The XDP programs of an `RTM_NEWLINK` reply (one message).
fn parse_link_reply(msg: &[u8]) -> anyhow::Result<Vec<AttachedProgram>> {
    if msg.len() < NLMSG_HDR + IFINFOMSG {
        bail!("short RTM_NEWLINK reply ({} bytes)", msg.len());
    }
    let kind = u16::from_ne_bytes([msg[4], msg[5]]);
    if kind != RTM_NEWLINK {
        bail!("unexpected netlink message type {kind} instead of RTM_NEWLINK");
    }
    let mut out = Vec::new();
    for (k, v) in attrs(&msg[NLMSG_HDR + IFINFOMSG..]) {
        if k != IFLA_XDP {
            continue;
        }
        for (k, v) in attrs(v) {
            let mode = match k {
                IFLA_XDP_DRV_PROG_ID => AttachedMode::Driver,
                IFLA_XDP_SKB_PROG_ID => AttachedMode::Generic,
                IFLA_XDP_HW_PROG_ID => AttachedMode::Offload,
                _ => continue,
            };
            if let Ok(b) = <[u8; 4]>::try_from(v) {
                let id = u32::from_ne_bytes(b);
                if id != 0 {
                    out.push(AttachedProgram {
                        id,
                        name: None,
                        mode,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Send one request on a fresh `NETLINK_ROUTE` socket and return the first reply
/// message; an `NLMSG_ERROR` with a non-zero code is returned as that errno (an ACK,
/// code 0, as an empty reply).
fn nl_request(req: &mut [u8]) -> std::io::Result<Vec<u8>> {
    let len = req.len() as u32;
    req[..4].copy_from_slice(&len.to_ne_bytes());
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socket(2) returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_nl is valid; the family is set below.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `req` and `sa` are valid for the lengths passed for the whole call.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&sa as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32 * 1024];
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    if buf.len() < NLMSG_HDR + 4 {
        return Err(std::io::Error::other("short netlink reply"));
    }
    if u16::from_ne_bytes([buf[4], buf[5]]) == NLMSG_ERROR {
        let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if code != 0 {
            return Err(std::io::Error::from_raw_os_error(-code));
        }
        return Ok(Vec::new());
    }
    let mlen = (u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize).min(buf.len());
    buf.truncate(mlen);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rtnetlink `IFLA_XDP` as `rtnl_xdp_fill` (net/core/rtnetlink.c) writes it: a
    /// generic-mode program shows as `IFLA_XDP_SKB_PROG_ID`.
    #[test]
    fn rtnl_xdp_fill_skb_prog_id_is_found() {
        let mut msg = nl_header(RTM_NEWLINK, 0);
        msg.extend_from_slice(&ifinfomsg(7));
        push_attr(&mut msg, 3, b"veth0\0"); // IFLA_IFNAME
        let mut nested = Vec::new();
        push_attr(&mut nested, 2, &[2]); // IFLA_XDP_ATTACHED = XDP_ATTACHED_SKB
        push_attr(&mut nested, 4, &42u32.to_ne_bytes()); // IFLA_XDP_PROG_ID
        push_attr(&mut nested, IFLA_XDP_SKB_PROG_ID, &42u32.to_ne_bytes());
        push_attr(&mut msg, IFLA_XDP | NLA_F_NESTED, &nested);
        let len = msg.len() as u32;
        msg[..4].copy_from_slice(&len.to_ne_bytes());
        let found = parse_link_reply(&msg).unwrap();
        assert_eq!(
            found,
            vec![AttachedProgram {
                id: 42,
                name: None,
                mode: AttachedMode::Generic
            }]
        );
    }

    #[test]
    fn conflict_message_names_the_program_and_the_choices() {
        let p = AttachedProgram {
            id: 42,
            name: Some("xdp_dispatcher".into()),
            mode: AttachedMode::Driver,
        };
        let m = conflict_message("eth1", std::slice::from_ref(&p));
        assert!(
            m.contains("program id 42 name xdp_dispatcher (xdpdrv)"),
            "{m}"
        );
        assert!(m.contains("ip link set dev eth1 xdpdrv off"), "{m}");
        assert!(m.contains("xdp.attach = \"replace\""), "{m}");
        assert!(m.contains("libxdp's multi-program dispatcher"), "{m}");
        assert!(m.contains("xdp.attach = \"dispatcher\" to join"), "{m}");
        let other = AttachedProgram {
            name: Some("count_pass".into()),
            ..p
        };
        let m = conflict_message("eth1", std::slice::from_ref(&other));
        assert!(!m.contains("multi-program dispatcher:"), "{m}");
        let m = dispatcher_conflict_message("eth1", &[other]);
        assert!(m.contains("name count_pass (xdpdrv)"), "{m}");
        assert!(m.contains("xdp-loader load eth1"), "{m}");
    }

    /// A program id no process holds has no holders; this process's own fds are found
    /// only for BPF objects (a plain file's fdinfo has no `prog_id:` line).
    #[test]
    fn holders_of_an_unused_program_id_is_empty() {
        assert!(holders(u32::MAX).is_empty());
    }

    #[test]
    fn no_xdp_attribute_means_no_program_and_garbage_is_no_panic() {
        let mut msg = nl_header(RTM_NEWLINK, 0);
        msg.extend_from_slice(&ifinfomsg(7));
        let mut nested = Vec::new();
        push_attr(&mut nested, 2, &[0]); // XDP_ATTACHED_NONE
        push_attr(&mut msg, IFLA_XDP | NLA_F_NESTED, &nested);
        assert!(parse_link_reply(&msg).unwrap().is_empty());
        // Truncated and malformed attributes end the walk.
        let mut bad = msg.clone();
        bad.extend_from_slice(&[0xff, 0xff, 43, 0]);
        assert!(parse_link_reply(&bad).unwrap().is_empty());
        assert!(parse_link_reply(&msg[..20]).is_err());
    }
}
