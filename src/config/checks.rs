//! Checks of the settings whose allowed values are a form rather than a range (interface
//! names, address and CPU lists, listeners, paths), and the text forms the file and the
//! command line share (CPU lists, `PORT[:MODE]`, the cookie secret). The settings table
//! ([`super::rules`]) names these checks; ranges are checked by the table itself.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serializer};

use super::Listener;
use crate::forms::{parse_hex, to_hex};

/// Linux `IFNAMSIZ` minus the terminating NUL.
pub(super) const IFNAME_MAX: usize = 15;
/// Highest CPU id accepted in a CPU list (Linux `CPU_SETSIZE`), so `0-999999999` cannot
/// allocate a huge vector before validation rejects it.
const MAX_CPU_ID: usize = 1023;

/// Linux `dev_valid_name`: 1..=15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub(super) fn check_interface(name: &str) -> Result<(), String> {
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

/// At least one address, each unicast and listed once.
pub(super) fn check_addresses(list: &[IpAddr]) -> Result<(), String> {
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

/// At least one listener, each port once (the port's range is the table's
/// `listen.port`).
pub(super) fn check_listeners(list: &[Listener]) -> Result<(), String> {
    if list.is_empty() {
        return Err("is required but empty: nothing would be served".to_owned());
    }
    let mut seen = HashSet::new();
    for l in list {
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

/// At least one CPU, each one this process may run on, each once.
pub(super) fn check_workers(list: &[usize], available: &[usize]) -> Result<(), String> {
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

/// A header value that cannot end the header early (CR/LF) or break it.
pub(super) fn check_content_type(ct: &str) -> Result<(), String> {
    if ct.is_empty() {
        return Err("is empty".to_owned());
    }
    if let Some(c) = ct.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!("{ct:?} contains the character {c:?}"));
    }
    Ok(())
}

/// A file we replace by rename: not empty, not a directory, never over a device, pipe or
/// directory (a stats file of /dev/null would replace the device with a regular file).
pub(super) fn check_path(p: Option<&Path>) -> Result<(), String> {
    match p {
        Some(p) if p.as_os_str().is_empty() => Err("is an empty path".to_owned()),
        Some(p) if p.as_os_str().to_string_lossy().ends_with('/') => {
            Err(format!("{} names a directory, not a file", p.display()))
        }
        Some(p) if std::fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_file()) => {
            Err(format!("{} exists and is not a regular file", p.display()))
        }
        _ => Ok(()),
    }
}

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

/// Parse a listener as written on the command line: `PORT` or `PORT:MODE`; the mode is
/// parsed by the one `FromStr` of [`super::ListenMode`].
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
    let mode = match mode {
        None => super::ListenMode::default(),
        Some(m) => m.parse().map_err(|e| format!("{e} (in {s:?})"))?,
    };
    Ok(Listener { port, mode })
}

pub(super) fn ser_hex_opt<S: Serializer, const N: usize>(
    v: &Option<[u8; N]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(bytes) => s.serialize_str(&to_hex(bytes)),
        None => s.serialize_none(),
    }
}

pub(super) fn de_hex16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 16]>, D::Error> {
    let s = String::deserialize(d)?;
    parse_hex::<16>(&s, false)
        .map(Some)
        .map_err(de::Error::custom)
}

/// `workers` in TOML: a CPU-list string, a single integer, or an array of integers.
pub(super) fn de_cpu_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
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
