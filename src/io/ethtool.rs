//! The NIC's RSS configuration as `ethtool -x` shows it: the Toeplitz key and the whole
//! indirection table, read with the `ETHTOOL_GRSSH` command of the `SIOCETHTOOL` ioctl
//! (linux/ethtool.h `struct ethtool_rxfh`; the kernel side is `ethtool_get_rxfh` in
//! net/ethtool/ioctl.c).
//!
//! Two calls: the first, with both sizes 0, asks the driver for the table length and key
//! length; the second passes them back with room for both and gets the contents. A driver
//! without RSS (veth, for instance) has no `get_rxfh` and the ioctl fails with
//! `EOPNOTSUPP`, which the caller treats as "no RSS here".

use std::io;

/// `SIOCETHTOOL` (linux/sockios.h).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GRSSH` (linux/ethtool.h): get the RSS hash key, function and table.
const ETHTOOL_GRSSH: u32 = 0x46;
/// Bytes of `struct ethtool_rxfh` before its flexible `rss_config[]` array.
const RXFH_HEADER: usize = 24;
/// `ETH_RSS_HASH_TOP` (linux/ethtool.h): the Toeplitz hash function.
pub const HASH_TOEPLITZ: u8 = 1;
/// Longest table accepted (drivers use 64 to 2048 entries; this leaves room).
const MAX_TABLE: u32 = 1 << 16;
/// Longest key accepted (drivers use 40 or 52 bytes).
const MAX_KEY: u32 = 256;

/// An interface's RSS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicRss {
    /// The hash key, as many bytes as the driver uses (often 40, 52 on some Intel parts).
    pub key: Vec<u8>,
    /// The indirection table: the RX queue of each entry, indexed by the hash modulo its
    /// length.
    pub table: Vec<u32>,
    /// The hash function, as an `ETH_RSS_HASH_*` bit (0 when the driver does not say).
    pub hfunc: u8,
}

/// Where the Toeplitz RSS key (and the indirection table) of the software steering come
/// from (`steering.rss_key`): `nic`, `random`, or a fixed key of 80 hex digits or 40
/// colon-separated bytes as `ethtool -x` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyChoice {
    /// The NIC's key and table; a random key and an even table without RSS.
    #[default]
    Nic,
    /// A random key per start and an even table, whatever the NIC has.
    Random,
    /// This key; the NIC's table if it has one, else an even table.
    Fixed([u8; 40]),
}

impl std::str::FromStr for KeyChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "nic" => Ok(KeyChoice::Nic),
            "random" => Ok(KeyChoice::Random),
            hex => crate::forms::parse_hex::<40>(hex, true)
                .map(KeyChoice::Fixed)
                .map_err(|e| format!("is not \"nic\" or \"random\", and as a key it {e}")),
        }
    }
}

impl std::fmt::Display for KeyChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyChoice::Nic => f.write_str("nic"),
            KeyChoice::Random => f.write_str("random"),
            KeyChoice::Fixed(key) => f.write_str(&crate::forms::to_hex(key)),
        }
    }
}

crate::forms::serde_via_str!(KeyChoice);

/// `struct ifreq` with `ifr_data` (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 24 - std::mem::size_of::<usize>()],
}

/// Read `ifname`'s RSS key, hash function and indirection table (in the calling thread's
/// network namespace). `EOPNOTSUPP` means the interface has no RSS.
pub fn read_rss(ifname: &str) -> io::Result<NicRss> {
    let fd = ethtool_socket(ifname)?;
    let name = ifname.as_bytes();
    let mut header = [0u32; RXFH_HEADER / 4];
    header[0] = ETHTOOL_GRSSH;
    rxfh_ioctl(&fd, name, &mut header)?;
    let (indir_size, key_size) = (header[2], header[3]);
    if indir_size > MAX_TABLE || key_size > MAX_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{ifname}: driver reports a {indir_size}-entry table and a {key_size}-byte key"
            ),
        ));
    }
    let words = RXFH_HEADER / 4 + indir_size as usize + (key_size as usize).div_ceil(4);
    let mut buf = vec![0u32; words];
    buf[0] = ETHTOOL_GRSSH;
    buf[2] = indir_size;
    buf[3] = key_size;
    rxfh_ioctl(&fd, name, &mut buf)?;
    let start = RXFH_HEADER / 4;
    let table = buf[start..start + indir_size as usize].to_vec();
    let key: Vec<u8> = buf[start + indir_size as usize..]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(key_size as usize)
        .collect();
    let hfunc = buf[4].to_ne_bytes()[0];
    Ok(NicRss { key, table, hfunc })
}

/// One `SIOCETHTOOL` call with `buf` (a `struct ethtool_rxfh` and its array) as `ifr_data`.
fn rxfh_ioctl(fd: &std::os::fd::OwnedFd, name: &[u8], buf: &mut [u32]) -> io::Result<()> {
    // SAFETY: `buf` holds the rxfh header and room for the `indir_size` entries and
    // `key_size` key bytes the header announces; the kernel writes no more than that.
    unsafe { ethtool_ioctl(fd, name, buf.as_mut_ptr().cast()) }
}

/// `SIOCETHTOOL` on `fd` for interface `name` (at most 15 bytes) with `data` as `ifr_data`.
///
/// # Safety
/// `data` must point at a live, writable buffer holding an ethtool command and as large as
/// the kernel writes for that command.
unsafe fn ethtool_ioctl(
    fd: &std::os::fd::OwnedFd,
    name: &[u8],
    data: *mut libc::c_void,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut ifr = IfReq {
        name: [0; libc::IFNAMSIZ],
        data,
        _pad: [0; 24 - std::mem::size_of::<usize>()],
    };
    ifr.name[..name.len()].copy_from_slice(name);
    // SAFETY: `ifr` is a valid ifreq whose name is NUL-terminated (`ethtool_socket` checked
    // its length) and whose data points at the caller's command buffer, which outlives the
    // call and is as large as that command needs (this function's contract).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL as _, &mut ifr as *mut IfReq) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A datagram socket for ethtool ioctls, after checking the interface name.
fn ethtool_socket(ifname: &str) -> io::Result<std::os::fd::OwnedFd> {
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {ifname:?} is not 1..=15 bytes without NUL"),
        ));
    }
    // SAFETY: socket(2) with constant arguments; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket we just opened and own; OwnedFd closes it on drop.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// `ETHTOOL_GDRVINFO` (linux/ethtool.h).
const ETHTOOL_GDRVINFO: u32 = 0x3;
/// `sizeof(struct ethtool_drvinfo)`: cmd, driver[32], version[32], fw_version[32],
/// bus_info[32], erom_version[32], reserved2[12], five __u32 counts.
const DRVINFO_LEN: usize = 196;

/// The kernel driver of interface `ifname` (what `ethtool -i` prints as `driver:`, e.g.
/// "veth"), in the calling thread's network namespace; `None` when the ioctl fails.
pub fn driver_name(ifname: &str) -> Option<String> {
    let fd = ethtool_socket(ifname).ok()?;
    let mut info = [0u8; DRVINFO_LEN];
    info[..4].copy_from_slice(&ETHTOOL_GDRVINFO.to_ne_bytes());
    // SAFETY: `info` is a whole `struct ethtool_drvinfo` holding the GDRVINFO command.
    unsafe { ethtool_ioctl(&fd, ifname.as_bytes(), info.as_mut_ptr().cast()) }.ok()?;
    let driver = &info[4..36];
    let end = driver.iter().position(|&b| b == 0).unwrap_or(driver.len());
    Some(String::from_utf8_lossy(&driver[..end]).into_owned())
}

/// Whether an error from [`read_rss`] means "this interface has no RSS" (as opposed to a
/// missing interface or missing privilege).
pub fn is_unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_is_the_kernel_size() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }

    #[test]
    fn bad_names_are_refused_before_the_ioctl() {
        for name in ["", "a-very-long-interface-name", "a\0b"] {
            let e = read_rss(name).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }

    #[test]
    fn loopback_has_no_rss() {
        // `lo` exists in every namespace and its driver has no get_rxfh.
        let e = read_rss("lo").unwrap_err();
        assert!(is_unsupported(&e), "{e}");
    }
}
