//! The common case of a SYN flood, answered in the received frame: an untagged Ethernet
//! frame with an IPv4 header without options (or a plain IPv6 header) carrying a SYN to a
//! listener whose 4-tuple has no state. [`Core::syn_without_state`] decides and makes the
//! cookie SYN-ACK; [`rewrite`] turns the frame into it in place: the MAC addresses swap,
//! and the IP and TCP headers are written over the SYN's with the same wire writers
//! [`emit_frame`](super::emit_frame) uses, so the bytes are identical to the general path
//! (a test holds both to it) while the `Tx` queue, the reply-path bookkeeping and the
//! Ethernet re-encode are skipped. Anything else (a VLAN tag, IPv4 options, a tuple with
//! state, a SYN with ACK or RST) takes the general path.
//!
//! [`Core::syn_without_state`]: crate::table::Core::syn_without_state

use crate::tcp::{Flow, Segment};
use crate::wire::{Ipv4Repr, Ipv6Repr, TcpRepr};

/// Bytes of an untagged Ethernet II header.
pub const ETH_LEN: usize = 14;
/// Ethernet frames shorter than this (before the FCS) are zero-padded.
const MIN_FRAME: usize = 60;
/// The longest SYN-ACK: Ethernet, IPv6, a TCP header with 40 bytes of options.
pub const MAX_SYNACK: usize = ETH_LEN + 40 + 60;
const PROTO_TCP: u8 = 6;

/// Whether the TCP header at `l4` follows an untagged Ethernet header and an IP header of
/// its fixed size (20 bytes for IPv4 without options, 40 for IPv6), so the SYN-ACK lands
/// where the SYN was; and `buf` holds the longest SYN-ACK.
#[inline]
pub fn fits(buf: &[u8], l3: usize, l4: usize, v6: bool) -> bool {
    l3 == ETH_LEN && l4 == ETH_LEN + if v6 { 40 } else { 20 } && buf.len() >= MAX_SYNACK
}

/// Rewrite the SYN in `buf` (checked with [`fits`]) into the SYN-ACK `synack` of `flow`
/// (TTL `ttl`); returns the frame's length, padded to 60 bytes.
#[inline]
pub fn rewrite(buf: &mut [u8], flow: &Flow, synack: &Segment, ttl: u8) -> usize {
    // Ethernet: back to the sender, from the address it sent to; the EtherType stays.
    let (dst, src) = buf[..12].split_at_mut(6);
    dst.swap_with_slice(src);
    let tcp = TcpRepr {
        src_port: flow.local_port(),
        dst_port: flow.remote_port(),
        seq: synack.seq,
        ack: synack.ack,
        flags: synack.flags,
        window: synack.window,
        options: synack.options,
        payload: &[],
    };
    let tcp_len = tcp.buffer_len();
    let l4 = match *flow {
        Flow::V4 { local, remote, .. } => {
            Ipv4Repr {
                src: local,
                dst: remote,
                protocol: PROTO_TCP,
                payload_len: tcp_len,
                ttl,
            }
            .emit(&mut buf[ETH_LEN..ETH_LEN + 20]);
            ETH_LEN + 20
        }
        Flow::V6 { local, remote, .. } => {
            Ipv6Repr {
                src: local,
                dst: remote,
                next_header: PROTO_TCP,
                payload_len: tcp_len,
                hop_limit: ttl,
            }
            .emit(&mut buf[ETH_LEN..ETH_LEN + 40]);
            ETH_LEN + 40
        }
    };
    tcp.emit(&mut buf[l4..l4 + tcp_len], &flow.local(), &flow.remote());
    let total = l4 + tcp_len;
    let padded = total.max(MIN_FRAME);
    buf[total..padded].fill(0);
    padded
}
