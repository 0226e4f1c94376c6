//! TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018).
//!
//! ```text
//!  0               2               4
//!  |  source port  |   dest port   |
//!  |        sequence number        |
//!  |     acknowledgment number     |
//!  |off|rsv|flags  |    window     |      byte 12: data offset (4 bits), reserved;
//!  |   checksum    | urgent pointer|      byte 13: CWR ECE URG ACK PSH RST SYN FIN
//!  |  options (data offset > 5) ...|
//! ```

use core::fmt;
use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign};
use std::net::IpAddr;

use super::seq::SeqNumber;
use super::{be, checksum, ip_protocol};
use super::{Error, Result};

mod field {
    use crate::wire::field::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset in the high nibble; reserved bits (and AE/NS) in the low one.
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;

    pub const HEADER_LEN: usize = 20;
    /// Data offset 15 × 4.
    pub const MAX_HEADER_LEN: usize = 60;
}

/// The most option bytes a header can carry (RFC 9293 §3.1: data offset ≤ 15 words).
pub const MAX_OPTIONS_LEN: usize = field::MAX_HEADER_LEN - field::HEADER_LEN;

/// The control bits: the low 8 flag bits of byte 13 (RFC 9293 §3.1, RFC 3168 §6.1 for
/// ECE/CWR).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    const NAMES: [(TcpFlags, &'static str); 8] = [
        (Self::FIN, "FIN"),
        (Self::SYN, "SYN"),
        (Self::RST, "RST"),
        (Self::PSH, "PSH"),
        (Self::ACK, "ACK"),
        (Self::URG, "URG"),
        (Self::ECE, "ECE"),
        (Self::CWR, "CWR"),
    ];

    /// No flags.
    #[inline(always)]
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// All bits of `o` are set in `self`.
    #[inline(always)]
    pub fn contains(self, o: TcpFlags) -> bool {
        self.0 & o.0 == o.0
    }

    /// At least one bit of `o` is set in `self`.
    #[inline(always)]
    pub fn intersects(self, o: TcpFlags) -> bool {
        self.0 & o.0 != 0
    }

    /// The raw byte.
    #[inline(always)]
    pub fn bits(self) -> u8 {
        self.0
    }

    /// No bit set.
    #[inline(always)]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Set the bits of `o`.
    #[inline(always)]
    pub fn insert(&mut self, o: TcpFlags) {
        self.0 |= o.0;
    }

    /// Clear the bits of `o`.
    #[inline(always)]
    pub fn remove(&mut self, o: TcpFlags) {
        self.0 &= !o.0;
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline(always)]
    fn bitor(self, o: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | o.0)
    }
}

impl BitOrAssign for TcpFlags {
    #[inline(always)]
    fn bitor_assign(&mut self, o: TcpFlags) {
        self.0 |= o.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    #[inline(always)]
    fn bitand(self, o: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & o.0)
    }
}

impl BitAndAssign for TcpFlags {
    #[inline(always)]
    fn bitand_assign(&mut self, o: TcpFlags) {
        self.0 &= o.0;
    }
}

/// Prints set flags in bit order joined by `|` (`SYN|ACK`), or `(empty)`.
impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(empty)");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// RFC 7323 §2.3: the largest usable shift count.
pub const MAX_WINDOW_SCALE: u8 = 14;

/// The TCP options we understand. Unused `sack_blocks` entries (from `sack_count` on) are
/// `(0, 0)` after [`parse`](TcpOptions::parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (RFC 9293 §3.7.1), kind 2.
    pub mss: Option<u16>,
    /// Window scale shift count (RFC 7323 §2), kind 3, at most 14 after `parse`.
    pub window_scale: Option<u8>,
    /// SACK permitted (RFC 2018 §2), kind 4.
    pub sack_permitted: bool,
    /// Timestamps (TSval, TSecr) (RFC 7323 §3), kind 8.
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (left edge, right edge) (RFC 2018 §3), kind 5.
    pub sack_blocks: [(u32, u32); 4],
    /// How many of `sack_blocks` are used (0..=4).
    pub sack_count: u8,
}

impl TcpOptions {
    /// Parse an option block (the header bytes after the first 20).
    ///
    /// RFC 9293 §3.1 / RFC 7323 / RFC 2018: EOL ends, NOP skips, unknown kinds are skipped
    /// by their length; a length < 2 or past the end (including a missing length byte) is
    /// `BadOptions`; a known option with the wrong length (MSS ≠ 4, WS ≠ 3, SACK_PERM ≠ 2,
    /// TS ≠ 10, SACK not 2 + 8n with 1 ≤ n ≤ 4) is `BadOptions`. RFC 7323 §2.3: a window
    /// scale above 14 is clamped to 14. If an option repeats, the last one wins.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        // Fast paths for the layouts Linux puts on nearly every segment; they give exactly
        // what the general loop gives (tested below), only without the loop.
        let ts = |a: [u8; 8]| {
            Some((
                u32::from_be_bytes([a[0], a[1], a[2], a[3]]),
                u32::from_be_bytes([a[4], a[5], a[6], a[7]]),
            ))
        };
        match *bytes {
            [] => return Ok(TcpOptions::default()),
            // NOP, NOP, TS: every segment after a handshake with timestamps.
            [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10, a, b, c, d, e, f, g, h] => {
                return Ok(TcpOptions {
                    timestamps: ts([a, b, c, d, e, f, g, h]),
                    ..TcpOptions::default()
                });
            }
            // MSS, SACK_PERM, TS, NOP, WS: Linux's SYN.
            [kind::MSS, 4, m0, m1, kind::SACK_PERMITTED, 2, kind::TIMESTAMPS, 10, a, b, c, d, e, f, g, h, kind::NOP, kind::WINDOW_SCALE, 3, ws] =>
            {
                return Ok(TcpOptions {
                    mss: Some(u16::from_be_bytes([m0, m1])),
                    sack_permitted: true,
                    timestamps: ts([a, b, c, d, e, f, g, h]),
                    window_scale: Some(ws.min(MAX_WINDOW_SCALE)),
                    ..TcpOptions::default()
                });
            }
            _ => {}
        }
        Self::parse_general(bytes)
    }

    /// The general option walk ([`Self::parse`] without its fast paths).
    fn parse_general(bytes: &[u8]) -> Result<Self> {
        let mut o = TcpOptions::default();
        let mut rest = bytes;
        loop {
            let (k, len) = match rest {
                [] | [kind::EOL, ..] => break,
                [kind::NOP, tail @ ..] => {
                    rest = tail;
                    continue;
                }
                // RFC 9293 §3.1: options other than EOL/NOP have "an octet of option-kind,
                // an octet of option-length, and the actual option-data octets".
                [_] => return Err(Error::BadOptions),
                [k, len, ..] => (*k, usize::from(*len)),
            };
            if len < 2 || len > rest.len() {
                return Err(Error::BadOptions);
            }
            let data = &rest[2..len];
            match k {
                kind::MSS => {
                    let [a, b] = *data else {
                        return Err(Error::BadOptions);
                    };
                    o.mss = Some(u16::from_be_bytes([a, b]));
                }
                kind::WINDOW_SCALE => {
                    let [shift] = *data else {
                        return Err(Error::BadOptions);
                    };
                    // RFC 7323 §2.3: "If a Window Scale option is received with a shift.cnt
                    // value larger than 14, the TCP SHOULD log the error but MUST use 14
                    // instead of the specified value."
                    o.window_scale = Some(shift.min(MAX_WINDOW_SCALE));
                }
                kind::SACK_PERMITTED => {
                    if !data.is_empty() {
                        return Err(Error::BadOptions);
                    }
                    o.sack_permitted = true;
                }
                kind::TIMESTAMPS => {
                    let [a, b, c, d, e, f, g, h] = *data else {
                        return Err(Error::BadOptions);
                    };
                    o.timestamps = Some((
                        u32::from_be_bytes([a, b, c, d]),
                        u32::from_be_bytes([e, f, g, h]),
                    ));
                }
                kind::SACK => {
                    // RFC 2018 §3: "Length: Variable", 8 octets per block; a block list
                    // that cannot fit 40 option bytes (n > 4) is impossible.
                    let n = data.len() / 8;
                    if !data.len().is_multiple_of(8) || n == 0 || n > 4 {
                        return Err(Error::BadOptions);
                    }
                    o.sack_blocks = [(0, 0); 4];
                    for (slot, b) in o.sack_blocks.iter_mut().zip(data.chunks_exact(8)) {
                        *slot = (
                            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                        );
                    }
                    o.sack_count = n as u8;
                }
                _ => {}
            }
            rest = &rest[len..];
        }
        Ok(o)
    }

    /// Length of the non-SACK part of the layout `emit` writes.
    #[inline]
    fn base_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.timestamps.is_some() {
            n += 12;
        } else if self.sack_permitted {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        n
    }

    /// How many SACK blocks `emit` writes: `sack_count` (at most 4), cut to what fits in
    /// the 40 option bytes after the other options (at least 2 always fit). RFC 2018 §4:
    /// the first block reports the most recent data, so the first ones are kept.
    #[inline]
    fn sack_blocks_emitted(&self) -> usize {
        let n = usize::from(self.sack_count.min(4));
        if n == 0 {
            return 0;
        }
        let room = MAX_OPTIONS_LEN - self.base_len();
        n.min((room - 4) / 8)
    }

    /// Bytes [`emit`](TcpOptions::emit) writes: a multiple of 4, at most 40.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        let sack = self.sack_blocks_emitted();
        self.base_len() + if sack > 0 { 4 + 8 * sack } else { 0 }
    }

    /// Emits in Linux's SYN-ACK layout: MSS `02 04 xx xx`; SACK_PERM+TS as
    /// `04 02 08 0a ts ecr`, TS alone as `01 01 08 0a ts ecr`, SACK_PERM alone as
    /// `01 01 04 02`; WS as `01 03 03 ws`; SACK blocks as `01 01 05 len ...`.
    /// Returns bytes written (= `buffer_len()`).
    ///
    /// # Panics
    /// If `buf` is shorter than `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[kind::MSS, 4, m[0], m[1]]);
        }
        match (self.timestamps, self.sack_permitted) {
            (Some((val, ecr)), sack_perm) => {
                if sack_perm {
                    put(&[kind::SACK_PERMITTED, 2, kind::TIMESTAMPS, 10]);
                } else {
                    put(&[kind::NOP, kind::NOP, kind::TIMESTAMPS, 10]);
                }
                put(&val.to_be_bytes());
                put(&ecr.to_be_bytes());
            }
            (None, true) => put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
            (None, false) => {}
        }
        if let Some(ws) = self.window_scale {
            put(&[kind::NOP, kind::WINDOW_SCALE, 3, ws]);
        }
        let n = self.sack_blocks_emitted();
        if n > 0 {
            put(&[kind::NOP, kind::NOP, kind::SACK, (2 + 8 * n) as u8]);
            for &(left, right) in &self.sack_blocks[..n] {
                put(&left.to_be_bytes());
                put(&right.to_be_bytes());
            }
        }
        at
    }
}

/// A zero-copy view of a TCP segment (header, options, payload). The buffer is the IP
/// payload: it must end where the segment ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wrap a buffer without checking it.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wrap a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The buffer holds 20 bytes (`Truncated`), the data offset is at least 5
    /// (`Malformed`; RFC 9293 §3.1: "The TCP header ... is an integer multiple of 32 bits"
    /// of at least 20 bytes), and the header fits (`Truncated`).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hlen = self.header_len();
        if hlen < field::HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hlen > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(be::u32(self.buffer.as_ref(), field::SEQ_NUM))
    }

    /// Acknowledgment number (meaningful only with ACK).
    #[inline]
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(be::u32(self.buffer.as_ref(), field::ACK_NUM))
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The 8 flag bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window (unscaled).
    #[inline]
    pub fn window_len(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be::u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The option bytes (header bytes after the first 20).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..self.header_len()]
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// RFC 9293 §3.1: the checksum over the pseudo-header, header and payload verifies.
    /// Always `false` for mixed address families.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if src.is_ipv4() != dst.is_ipv4() {
            return false;
        }
        let data = self.buffer.as_ref();
        let s = checksum::combine(
            checksum::pseudo_header(src, dst, ip_protocol::TCP, data.len() as u32),
            checksum::sum(data),
        );
        checksum::fold(s) == 0xffff
    }
}

impl<'a> TcpPacket<&'a [u8]> {
    /// The payload with the buffer's lifetime (not the view's).
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Set the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        be::set_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Set the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        be::set_u16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Swap source and destination ports (to answer in place).
    #[inline]
    pub fn swap_ports(&mut self) {
        let (s, d) = (self.src_port(), self.dst_port());
        self.set_src_port(d);
        self.set_dst_port(s);
    }

    /// Set the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: SeqNumber) {
        be::set_u32(self.buffer.as_mut(), field::SEQ_NUM, v.0);
    }

    /// Set the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, v: SeqNumber) {
        be::set_u32(self.buffer.as_mut(), field::ACK_NUM, v.0);
    }

    /// Set the header length in bytes (rounded down to a multiple of 4); clears the
    /// reserved bits.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = (((len / 4) & 0x0f) as u8) << 4;
    }

    /// Set the flag bits.
    #[inline]
    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    /// Set the window.
    #[inline]
    pub fn set_window_len(&mut self, v: u16) {
        be::set_u16(self.buffer.as_mut(), field::WIN_SIZE, v);
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        be::set_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Set the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, v: u16) {
        be::set_u16(self.buffer.as_mut(), field::URGENT, v);
    }

    /// The option bytes, writable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::HEADER_LEN..end]
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    /// Compute and store the checksum over the pseudo-header for `src` → `dst`, the
    /// header and the payload (RFC 9293 §3.1: "the checksum field itself is replaced with
    /// zeros" while computing).
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let s = checksum::combine(
            checksum::pseudo_header(src, dst, ip_protocol::TCP, data.len() as u32),
            checksum::sum(data),
        );
        self.set_checksum(checksum::finish(s));
    }
}

/// A parsed TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// SEG.SEQ.
    pub seq: SeqNumber,
    /// SEG.ACK, meaningful iff `flags` has ACK (kept as received otherwise).
    pub ack: SeqNumber,
    /// Control bits.
    pub flags: TcpFlags,
    /// SEG.WND as sent (not scaled).
    pub window: u16,
    /// Parsed options.
    pub options: TcpOptions,
    /// Segment text.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parse a segment: lengths, then the checksum if asked (`BadTcpChecksum`), then the
    /// options (`BadOptions`). Ports, flags and the urgent pointer are not judged here.
    #[inline]
    pub fn parse(
        p: &TcpPacket<&'a [u8]>,
        src: &IpAddr,
        dst: &IpAddr,
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>> {
        p.check_len()?;
        if verify_checksum && !p.verify_checksum(src, dst) {
            return Err(Error::BadTcpChecksum);
        }
        let data: &'a [u8] = p.buffer;
        let hlen = p.header_len();
        let options = if hlen > field::HEADER_LEN {
            TcpOptions::parse(&data[field::HEADER_LEN..hlen])?
        } else {
            TcpOptions::default()
        };
        Ok(TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags: p.flags(),
            window: p.window_len(),
            options,
            payload: &data[hlen..],
        })
    }

    /// 20 + `options.buffer_len()`.
    #[inline]
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.options.buffer_len()
    }

    /// Header plus payload.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// RFC 9293 §3.4: "SEG.LEN = the number of octets occupied by the data in the segment
    /// (counting SYN and FIN)".
    #[inline]
    pub fn segment_len(&self) -> u32 {
        self.payload.len() as u32
            + u32::from(self.flags.contains(TcpFlags::SYN))
            + u32::from(self.flags.contains(TcpFlags::FIN))
    }

    /// Writes header, options and payload into `buf[..buffer_len()]` and fills the checksum
    /// (pseudo-header from `src`/`dst`). Reserved bits 0, urgent pointer 0.
    ///
    /// # Panics
    /// If `buf` is shorter than `buffer_len()`.
    #[inline]
    pub fn emit(&self, buf: &mut [u8], src: &IpAddr, dst: &IpAddr) {
        let hlen = self.header_len();
        let buf = &mut buf[..hlen + self.payload.len()];
        be::set_u16(buf, field::SRC_PORT, self.src_port);
        be::set_u16(buf, field::DST_PORT, self.dst_port);
        be::set_u32(buf, field::SEQ_NUM, self.seq.0);
        be::set_u32(buf, field::ACK_NUM, self.ack.0);
        buf[field::DATA_OFF] = ((hlen / 4) as u8) << 4;
        buf[field::FLAGS] = self.flags.0;
        be::set_u16(buf, field::WIN_SIZE, self.window);
        be::set_u16(buf, field::CHECKSUM, 0);
        be::set_u16(buf, field::URGENT, 0);
        self.options.emit(&mut buf[field::HEADER_LEN..hlen]);
        buf[hlen..].copy_from_slice(self.payload);
        let s = checksum::combine(
            checksum::pseudo_header(src, dst, ip_protocol::TCP, buf.len() as u32),
            checksum::sum(buf),
        );
        be::set_u16(buf, field::CHECKSUM, checksum::finish(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr};
    use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr};
    use crate::wire::ipv6::{Ipv6Packet, Ipv6Repr};
    use crate::wire::test_util::{hex, poisoned};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The fast paths of `TcpOptions::parse` agree with the general walk on their layouts,
    /// for any values (and window scales above 14 are clamped the same way).
    #[test]
    fn option_fast_paths_match_the_general_walk() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x.to_be_bytes();
            let syn = [
                2,
                4,
                v[0],
                v[1],
                4,
                2,
                8,
                10,
                v[2],
                v[3],
                v[4],
                v[5],
                v[6],
                v[7],
                v[0],
                v[1],
                1,
                3,
                3,
                v[2] % 20,
            ];
            let ack = [1, 1, 8, 10, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
            for b in [&syn[..], &ack[..], &[][..]] {
                assert_eq!(
                    TcpOptions::parse(b),
                    TcpOptions::parse_general(b),
                    "{b:02x?}"
                );
            }
        }
    }

    /// A 74-byte SYN captured from Linux 6.18 (`connect()` from 198.18.0.1 to
    /// 198.18.0.2:8080 across a veth pair, offloads off).
    const LINUX_SYN: &str = "
        02 00 00 00 00 02  02 00 00 00 00 01  08 00   # Ethernet, IPv4
        45 00 00 3c  d7 e5 40 00  40 06 d6 ae         # IPv4: len 60, DF, TTL 64, TCP
        c6 12 00 01  c6 12 00 02                      # 198.18.0.1 > 198.18.0.2
        dd ec  1f 90                                  # ports 56812 > 8080
        0e 8b cb d1                                   # seq 244042705
        00 00 00 00                                   # ack 0
        a0 02                                         # data offset 10 (40 bytes), SYN
        fa f0                                         # window 64240
        ac ed                                         # checksum
        00 00                                         # urgent
        02 04 05 b4                                   # MSS 1460
        04 02                                         # SACK permitted
        08 0a 75 0a c7 12 00 00 00 00                 # TS val 1963640594 ecr 0
        01                                            # NOP
        03 03 0a                                      # WS 10";

    /// The SYN-ACK Linux answered with.
    const LINUX_SYNACK: &str = "
        02 00 00 00 00 01  02 00 00 00 00 02  08 00
        45 00 00 3c  00 00 40 00  40 06 ae 94
        c6 12 00 02  c6 12 00 01
        1f 90  dd ec                                  # 8080 > 56812
        86 cb 50 99                                   # seq 2261471385
        0e 8b cb d2                                   # ack = SYN seq + 1
        a0 12                                         # 40 bytes, SYN|ACK
        fe 88                                         # window 65160
        9c 49  00 00
        02 04 05 b4                                   # MSS 1460
        04 02 08 0a f3 2a 42 6b 75 0a c7 12           # SACK_PERM + TS val ecr
        01 03 03 0a                                   # NOP, WS 10";

    /// A bare 54-byte ACK (no options) from the same machine with timestamps off.
    const LINUX_ACK: &str = "
        02 00 00 00 00 02  02 00 00 00 00 01  08 00
        45 00 00 28  83 e5 40 00  40 06 2a c3         # len 40
        c6 12 00 01  c6 12 00 02
        dd f2  1f 90
        87 d2 54 1a                                   # seq
        31 f7 ca 76                                   # ack
        50 10                                         # 20 bytes, ACK
        00 3f                                         # window 63
        4d 90  00 00";

    /// An IPv6 SYN captured the same way (2001:2::1 > 2001:2::2:8080).
    const LINUX_SYN6: &str = "
        02 00 00 00 00 02  02 00 00 00 00 01  86 dd
        60 05 90 c8  00 28  06  40
        20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 01
        20 01 00 02 00 00 00 00 00 00 00 00 00 00 00 02
        82 08  1f 90                                  # 33288 > 8080
        62 f8 5d d8  00 00 00 00
        a0 02  fd 20  cc f8  00 00                    # SYN, window 64800
        02 04 05 a0                                   # MSS 1440
        04 02 08 0a 8a 17 51 6e 00 00 00 00
        01 03 03 0a";

    /// The IPv6 SYN-ACK's TCP part.
    const LINUX_SYNACK6_TCP: &str = "
        1f 90  82 08
        ec 8e 2e 59  62 f8 5d d9
        a0 12  fb 04  14 7a  00 00
        02 04 05 a0
        04 02 08 0a 2d df 71 c2 8a 17 51 6e
        01 03 03 0a";

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    /// Ethernet → IPv4 → TCP, all checked, returning the TCP bytes and addresses.
    fn tcp_of_v4(frame: &[u8]) -> (&[u8], IpAddr, IpAddr) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        assert_eq!(eth.ethertype(), EtherType::IPV4);
        let ip = Ipv4Packet::new_checked(eth.into_payload()).unwrap();
        let ipr = Ipv4Repr::parse(&ip, true).unwrap();
        assert_eq!(ipr.protocol, ip_protocol::TCP);
        (ip.into_payload(), IpAddr::V4(ipr.src), IpAddr::V4(ipr.dst))
    }

    fn syn_options() -> TcpOptions {
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some((1963640594, 0)),
            ..TcpOptions::default()
        }
    }

    #[test]
    fn rfc9293_s3_1_parse_linux_syn() {
        let frame = hex(LINUX_SYN);
        assert_eq!(frame.len(), 74);
        let (seg, src, dst) = tcp_of_v4(&frame);
        let p = TcpPacket::new_checked(seg).unwrap();
        assert_eq!(p.src_port(), 56812);
        assert_eq!(p.dst_port(), 8080);
        assert_eq!(p.seq_number(), SeqNumber(244042705));
        assert_eq!(p.ack_number(), SeqNumber(0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0xaced);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.options().len(), 20);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(&src, &dst));
        let r = TcpRepr::parse(&p, &src, &dst, true).unwrap();
        assert_eq!(
            r,
            TcpRepr {
                src_port: 56812,
                dst_port: 8080,
                seq: SeqNumber(244042705),
                ack: SeqNumber(0),
                flags: TcpFlags::SYN,
                window: 64240,
                options: syn_options(),
                payload: &[],
            }
        );
        // RFC 9293 §3.4: a SYN occupies one sequence number.
        assert_eq!(r.segment_len(), 1);
    }

    #[test]
    fn rfc9293_s3_1_parse_bare_ack() {
        let frame = hex(LINUX_ACK);
        assert_eq!(frame.len(), 54);
        let (seg, src, dst) = tcp_of_v4(&frame);
        let p = TcpPacket::new_checked(seg).unwrap();
        let r = TcpRepr::parse(&p, &src, &dst, true).unwrap();
        assert_eq!(r.flags, TcpFlags::ACK);
        assert_eq!(r.seq, SeqNumber(0x87d2541a));
        assert_eq!(r.ack, SeqNumber(0x31f7ca76));
        assert_eq!(r.window, 63);
        assert_eq!(r.options, TcpOptions::default());
        assert_eq!(r.segment_len(), 0);
        assert_eq!(r.header_len(), 20);
        // Re-emitting gives the captured segment.
        let mut out = poisoned(22);
        r.emit(&mut out, &src, &dst);
        assert_eq!(&out[..20], seg);
        assert_eq!(&out[20..], &[0xa5, 0xa5]);
    }

    #[test]
    fn rfc8200_s8_1_parse_ipv6_syn() {
        let frame = hex(LINUX_SYN6);
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::IPV6);
        let ip = Ipv6Packet::new_checked(eth.into_payload()).unwrap();
        let ipr = Ipv6Repr::parse(&ip).unwrap();
        let (src, dst) = (IpAddr::V6(ipr.src), IpAddr::V6(ipr.dst));
        let p = TcpPacket::new_checked(ip.into_payload()).unwrap();
        assert!(p.verify_checksum(&src, &dst));
        // The IPv4 pseudo-header (or a mixed pair) does not verify it.
        assert!(!p.verify_checksum(&v4([198, 18, 0, 1]), &v4([198, 18, 0, 2])));
        assert!(!p.verify_checksum(&src, &v4([198, 18, 0, 2])));
        let r = TcpRepr::parse(&p, &src, &dst, true).unwrap();
        assert_eq!(r.flags, TcpFlags::SYN);
        assert_eq!(r.options.mss, Some(1440));
        assert_eq!(r.options.timestamps, Some((0x8a17516e, 0)));
        assert_eq!(r.options.window_scale, Some(10));
        assert!(r.options.sack_permitted);
    }

    /// Emitting the fields of Linux's SYN-ACK reproduces the whole 74-byte frame.
    #[test]
    fn emit_matches_linux_synack_frame() {
        let expected = hex(LINUX_SYNACK);
        let (src, dst) = (v4([198, 18, 0, 2]), v4([198, 18, 0, 1]));
        let tcp = TcpRepr {
            src_port: 8080,
            dst_port: 56812,
            seq: SeqNumber(0x86cb5099),
            ack: SeqNumber(244042705).add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 65160,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(10),
                sack_permitted: true,
                timestamps: Some((0xf32a426b, 1963640594)),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        let eth = EthernetRepr {
            src: [2, 0, 0, 0, 0, 2],
            dst: [2, 0, 0, 0, 0, 1],
            vlan: None,
            ethertype: EtherType::IPV4,
        };
        let ip = Ipv4Repr {
            src: Ipv4Addr::new(198, 18, 0, 2),
            dst: Ipv4Addr::new(198, 18, 0, 1),
            protocol: ip_protocol::TCP,
            payload_len: tcp.buffer_len(),
            ttl: 64,
        };
        let mut out = poisoned(76);
        eth.emit(&mut out);
        ip.emit(&mut out[14..]);
        tcp.emit(&mut out[34..], &src, &dst);
        assert_eq!(&out[..74], &expected[..]);
        assert_eq!(&out[74..], &[0xa5, 0xa5]);
    }

    #[test]
    fn emit_matches_linux_ipv6_synack_segment() {
        let expected = hex(LINUX_SYNACK6_TCP);
        let (src, dst) = (v6("2001:2::2"), v6("2001:2::1"));
        let tcp = TcpRepr {
            src_port: 8080,
            dst_port: 33288,
            seq: SeqNumber(0xec8e2e59),
            ack: SeqNumber(0x62f85dd9),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 64260,
            options: TcpOptions {
                mss: Some(1440),
                window_scale: Some(10),
                sack_permitted: true,
                timestamps: Some((0x2ddf71c2, 0x8a17516e)),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        let mut out = poisoned(42);
        tcp.emit(&mut out, &src, &dst);
        assert_eq!(&out[..40], &expected[..]);
        assert_eq!(&out[40..], &[0xa5, 0xa5]);
    }

    #[test]
    fn emit_with_payload_round_trips() {
        let (src, dst) = (v6("2001:2::1"), v6("2001:2::2"));
        let r = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNumber(u32::MAX),
            ack: SeqNumber(7),
            flags: TcpFlags::PSH | TcpFlags::ACK | TcpFlags::FIN,
            window: 1000,
            options: TcpOptions {
                timestamps: Some((1, 2)),
                ..TcpOptions::default()
            },
            payload: b"hello, odd",
        };
        assert_eq!(r.segment_len(), 11);
        let mut out = poisoned(r.buffer_len() + 2);
        r.emit(&mut out, &src, &dst);
        assert_eq!(&out[r.buffer_len()..], &[0xa5, 0xa5]);
        let p = TcpPacket::new_checked(&out[..r.buffer_len()]).unwrap();
        assert_eq!(p.payload(), b"hello, odd");
        assert_eq!(TcpRepr::parse(&p, &src, &dst, true).unwrap(), r);
    }

    #[test]
    fn rfc9293_s3_1_bad_checksum() {
        let frame = hex(LINUX_SYN);
        let (seg, src, dst) = tcp_of_v4(&frame);
        let mut seg = seg.to_vec();
        seg[17] ^= 0x01;
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, &src, &dst, true),
            Err(Error::BadTcpChecksum)
        );
        assert!(TcpRepr::parse(&p, &src, &dst, false).is_ok());
        // The wrong addresses are as bad as wrong bytes.
        let p = TcpPacket::new_checked(&frame[34..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, &dst, &v4([198, 18, 0, 3]), true),
            Err(Error::BadTcpChecksum)
        );
    }

    #[test]
    fn truncated_at_every_length() {
        let frame = hex(LINUX_SYN);
        let seg = &frame[34..];
        let (src, dst) = (v4([198, 18, 0, 1]), v4([198, 18, 0, 2]));
        for n in 0..seg.len() {
            assert_eq!(
                TcpPacket::new_checked(&seg[..n]).unwrap_err(),
                Error::Truncated,
                "len {n}"
            );
            assert_eq!(
                TcpRepr::parse(&TcpPacket::new_unchecked(&seg[..n]), &src, &dst, false),
                Err(Error::Truncated)
            );
        }
        assert!(TcpPacket::new_checked(seg).is_ok());
    }

    /// RFC 9293 §3.1: "Data Offset ... the number of 32-bit words in the TCP header";
    /// the fixed header alone is 5 words.
    #[test]
    fn rfc9293_s3_1_bad_data_offset() {
        let frame = hex(LINUX_SYN);
        let (src, dst) = (v4([198, 18, 0, 1]), v4([198, 18, 0, 2]));
        for off in 0..5u8 {
            let mut seg = frame[34..].to_vec();
            seg[12] = off << 4;
            assert_eq!(
                TcpPacket::new_checked(&seg[..]).unwrap_err(),
                Error::Malformed
            );
            assert_eq!(
                TcpRepr::parse(&TcpPacket::new_unchecked(&seg[..]), &src, &dst, false),
                Err(Error::Malformed)
            );
        }
        // Data offset 15 (60 bytes) over a 40-byte segment.
        let mut seg = frame[34..].to_vec();
        seg[12] = 0xf0;
        assert_eq!(
            TcpPacket::new_checked(&seg[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn rfc7323_rfc2018_parse_options() {
        let o = TcpOptions::parse(&hex(
            "02 04 05 b4 04 02 08 0a 75 0a c7 12 00 00 00 00 01 03 03 0a",
        ))
        .unwrap();
        assert_eq!(
            o,
            TcpOptions {
                timestamps: Some((0x750ac712, 0)),
                ..syn_options()
            }
        );
        // SACK blocks (RFC 2018 §3), after two NOPs.
        let o = TcpOptions::parse(&hex(
            "01 01 05 12  00 00 00 01 00 00 00 02  00 00 00 03 00 00 00 04",
        ))
        .unwrap();
        assert_eq!(o.sack_count, 2);
        assert_eq!(o.sack_blocks, [(1, 2), (3, 4), (0, 0), (0, 0)]);
        // EOL ends the list: what follows is not parsed.
        let o = TcpOptions::parse(&hex("02 04 05 b4 00 ff 00 13 37")).unwrap();
        assert_eq!(o.mss, Some(1460));
        // Unknown kinds are skipped by length (RFC 9293 §3.2: "must be prepared to handle
        // an illegal option length", and to ignore options it does not implement).
        let o = TcpOptions::parse(&hex("1e 04 ab cd  fd 02  03 03 07")).unwrap();
        assert_eq!(o.window_scale, Some(7));
        assert_eq!(TcpOptions::parse(&[]).unwrap(), TcpOptions::default());
        assert_eq!(
            TcpOptions::parse(&[1, 1, 1, 1]).unwrap(),
            TcpOptions::default()
        );
    }

    /// RFC 7323 §2.3: a shift count above 14 is used as 14.
    #[test]
    fn rfc7323_s2_3_window_scale_clamped() {
        for (ws, want) in [(0u8, 0u8), (14, 14), (15, 14), (255, 14)] {
            let o = TcpOptions::parse(&[3, 3, ws]).unwrap();
            assert_eq!(o.window_scale, Some(want));
        }
    }

    #[test]
    fn rfc9293_s3_1_bad_option_lengths() {
        let bad: &[&str] = &[
            "02",                                  // kind with no length byte
            "01 01 08",                            // same, after NOPs
            "1e 00",                               // unknown kind, length 0
            "1e 01",                               // unknown kind, length 1
            "1e 05 00 00",                         // unknown kind overrunning
            "02 00 05 b4",                         // MSS length 0
            "02 01 05 b4",                         // MSS length 1
            "02 05 05 b4 00",                      // MSS length 5
            "02 03 05",                            // MSS length 3
            "02 04 05",                            // MSS overrunning
            "03 02",                               // WS length 2
            "03 04 07 00",                         // WS length 4
            "04 03 00",                            // SACK_PERM length 3
            "08 08 00 00 00 00 00 00",             // TS length 8
            "08 0a 00 00 00 00 00 00 00",          // TS overrunning
            "08 0c 00 00 00 00 00 00 00 00 00 00", // TS length 12
            "05 02",                               // SACK with no block
            "05 0b 00 00 00 01 00 00 00 02 00",    // SACK 2 + 9
            "05 0a 00 00 00 01 00 00 00",          // SACK overrunning
        ];
        for h in bad {
            assert_eq!(TcpOptions::parse(&hex(h)), Err(Error::BadOptions), "{h}");
        }
        // Five SACK blocks cannot fit a TCP header.
        let mut five = vec![5u8, 42];
        five.extend_from_slice(&[0; 40]);
        assert_eq!(TcpOptions::parse(&five), Err(Error::BadOptions));
        // Through TcpRepr::parse: a bad option in a real SYN.
        let frame = hex(LINUX_SYN);
        let mut seg = frame[34..].to_vec();
        seg[21] = 5; // MSS length 5
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        let (src, dst) = (v4([198, 18, 0, 1]), v4([198, 18, 0, 2]));
        assert_eq!(
            TcpRepr::parse(&p, &src, &dst, false),
            Err(Error::BadOptions)
        );
    }

    #[test]
    fn emit_option_layouts() {
        let cases: &[(TcpOptions, &str)] = &[
            (
                TcpOptions {
                    mss: Some(1460),
                    ..Default::default()
                },
                "02 04 05 b4",
            ),
            (
                TcpOptions {
                    sack_permitted: true,
                    timestamps: Some((1, 2)),
                    ..Default::default()
                },
                "04 02 08 0a 00 00 00 01 00 00 00 02",
            ),
            (
                TcpOptions {
                    timestamps: Some((1, 2)),
                    ..Default::default()
                },
                "01 01 08 0a 00 00 00 01 00 00 00 02",
            ),
            (
                TcpOptions {
                    sack_permitted: true,
                    ..Default::default()
                },
                "01 01 04 02",
            ),
            (
                TcpOptions {
                    window_scale: Some(7),
                    ..Default::default()
                },
                "01 03 03 07",
            ),
            (
                TcpOptions {
                    sack_blocks: [(1, 2), (3, 4), (9, 9), (9, 9)],
                    sack_count: 2,
                    ..Default::default()
                },
                "01 01 05 12 00 00 00 01 00 00 00 02 00 00 00 03 00 00 00 04",
            ),
            (
                TcpOptions {
                    mss: Some(536),
                    sack_permitted: true,
                    window_scale: Some(0),
                    ..Default::default()
                },
                "02 04 02 18 01 01 04 02 01 03 03 00",
            ),
            (TcpOptions::default(), ""),
        ];
        for (o, h) in cases {
            let want = hex(h);
            assert_eq!(o.buffer_len(), want.len(), "{o:?}");
            let mut out = poisoned(want.len() + 2);
            assert_eq!(o.emit(&mut out), want.len());
            assert_eq!(&out[..want.len()], &want[..], "{o:?}");
            assert_eq!(&out[want.len()..], &[0xa5, 0xa5]);
            let mut back = TcpOptions::parse(&want).unwrap();
            // Parse zeroes unused SACK slots.
            back.sack_blocks[usize::from(o.sack_count)..]
                .copy_from_slice(&o.sack_blocks[usize::from(o.sack_count)..]);
            assert_eq!(&back, o);
        }
    }

    /// RFC 2018 §3: SACK blocks that do not fit in 40 bytes are left out, the first kept.
    #[test]
    fn rfc2018_s3_sack_blocks_cut_to_fit() {
        let blocks = [(1, 2), (3, 4), (5, 6), (7, 8)];
        let ts = TcpOptions {
            timestamps: Some((1, 2)),
            sack_blocks: blocks,
            sack_count: 4,
            ..Default::default()
        };
        assert_eq!(ts.buffer_len(), 12 + 4 + 3 * 8);
        let all = TcpOptions {
            mss: Some(1),
            window_scale: Some(1),
            sack_permitted: true,
            ..ts
        };
        assert_eq!(all.buffer_len(), 4 + 12 + 4 + 4 + 2 * 8);
        let bare = TcpOptions {
            sack_blocks: blocks,
            sack_count: 4,
            ..Default::default()
        };
        assert_eq!(bare.buffer_len(), 4 + 4 * 8);
        for o in [ts, all, bare] {
            let mut out = [0u8; 40];
            let n = o.emit(&mut out);
            assert!(n <= MAX_OPTIONS_LEN && n % 4 == 0);
            let back = TcpOptions::parse(&out[..n]).unwrap();
            let k = usize::from(back.sack_count);
            assert_eq!(&back.sack_blocks[..k], &blocks[..k]);
        }
    }

    #[test]
    fn flags_ops_and_debug() {
        let sa = TcpFlags::SYN | TcpFlags::ACK;
        assert_eq!(format!("{sa:?}"), "SYN|ACK");
        assert_eq!(
            format!("{:?}", TcpFlags(0xff)),
            "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"
        );
        assert_eq!(format!("{:?}", TcpFlags::default()), "(empty)");
        assert!(sa.contains(TcpFlags::SYN) && sa.contains(sa));
        assert!(!sa.contains(TcpFlags::SYN | TcpFlags::FIN));
        assert!(sa.intersects(TcpFlags::SYN | TcpFlags::FIN));
        assert!(!sa.intersects(TcpFlags::RST | TcpFlags::FIN));
        assert_eq!((sa & TcpFlags::ACK), TcpFlags::ACK);
        assert_eq!(sa.bits(), 0x12);
        let mut f = TcpFlags::empty();
        f |= TcpFlags::FIN;
        f.insert(TcpFlags::ACK);
        f.remove(TcpFlags::FIN);
        assert_eq!(f, TcpFlags::ACK);
        f &= TcpFlags::SYN;
        assert!(f.is_empty());
    }

    /// In-place answer: swap ports, set fields, recompute the checksum.
    #[test]
    fn setters_and_fill_checksum() {
        let frame = hex(LINUX_SYN);
        let mut seg = frame[34..].to_vec();
        let (src, dst) = (v4([198, 18, 0, 2]), v4([198, 18, 0, 1]));
        let mut p = TcpPacket::new_checked(&mut seg[..]).unwrap();
        p.swap_ports();
        p.set_seq_number(SeqNumber(5));
        p.set_ack_number(SeqNumber(244042706));
        p.set_flags(TcpFlags::SYN | TcpFlags::ACK);
        p.set_window_len(100);
        p.set_urgent_at(0);
        p.set_header_len(40);
        p.options_mut()[3] = 0x40; // MSS 1088
        p.fill_checksum(&src, &dst);
        assert!(p.verify_checksum(&src, &dst));
        assert!(p.payload_mut().is_empty());
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        let r = TcpRepr::parse(&p, &src, &dst, true).unwrap();
        assert_eq!((r.src_port, r.dst_port), (8080, 56812));
        assert_eq!(r.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(r.options.mss, Some(0x0540));
        assert_eq!(
            (r.seq, r.ack, r.window),
            (SeqNumber(5), SeqNumber(244042706), 100)
        );
    }
}
