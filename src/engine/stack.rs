//! [`Stack`]: one core's frame-level endpoint, without I/O. It parses a frame in place
//! (Ethernet → IPv4/IPv6 → TCP, or ARP/NDP in standalone mode), decides which core owns
//! the flow (RSS), hands the segment to the [`Core`], and writes replies as complete frames
//! (the first one into the received frame itself; the rest wait as pending segments).

use super::{rss, syn_rewrite};
use crate::counters::{Counters, DropReason, Event};
use crate::table::{Core, L2Path, LinkTable};
use crate::tcp::responder::BufferPool;
use crate::tcp::{Clock, Flow, Link, Tx};
use crate::wire::{
    ip_protocol, ArpOperation, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, NdpRepr, TcpFrame, TcpPacket, TcpRepr,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TTL / hop limit of what we send (Linux's default).
const TTL: u8 = 64;

/// Which core owns a flow: a Toeplitz hash over the 4-tuple as received, looked up in a
/// RETA, as a NIC with RSS does.
#[derive(Debug, Clone)]
pub struct Steering {
    /// The hash and indirection table.
    pub rss: rss::Rss,
    /// This worker's index.
    pub me: usize,
    /// Number of workers.
    pub workers: usize,
}

impl Steering {
    /// The owner of a received segment's flow.
    #[inline]
    pub fn owner(&self, src: &IpAddr, dst: &IpAddr, src_port: u16, dst_port: u16) -> usize {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.rss.owner_v4(*s, *d, src_port, dst_port),
            (IpAddr::V6(s), IpAddr::V6(d)) => self.rss.owner_v6(s, d, src_port, dst_port),
            _ => self.me,
        }
    }
}

/// What became of one received frame.
#[must_use = "a reply or handoff must be sent, or the frame released"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to send from this frame (dropped, or only state changed).
    Done,
    /// The frame buffer now holds a reply of this many bytes.
    Reply(usize),
    /// The flow belongs to another worker.
    Handoff(usize),
}

/// How a [`Stack`] is set up: what it serves and how it treats frames. Built once from
/// the configuration (`app`) or by a test, then handed to [`Stack::with_config`]; the
/// stack keeps it for its life (a reload changes listeners and secrets in the core, not
/// these).
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Our addresses (IPv4 and IPv6): TCP to any other is `not_ours`.
    pub addrs: Vec<IpAddr>,
    /// Verify received IPv4 and TCP checksums (`tcp.verify_checksums`).
    pub verify_checksums: bool,
    /// Answer ARP and neighbour solicitations for our addresses with this MAC
    /// (`xdp.standalone`).
    pub standalone: Option<[u8; 6]>,
    /// Flow ownership, when there are several workers.
    pub steering: Option<Steering>,
    /// Answer a plain SYN without state by rewriting its frame in place
    /// ([`syn_rewrite`]); off, every SYN takes the general path (same bytes, slower).
    pub rewrite_syn_in_place: bool,
}

impl StackConfig {
    /// A stack serving `addrs` with the defaults: checksums verified, no neighbour
    /// answers, no steering (one worker), SYNs rewritten in place.
    pub fn serving(addrs: &[IpAddr]) -> StackConfig {
        StackConfig {
            addrs: addrs.to_vec(),
            verify_checksums: true,
            standalone: None,
            steering: None,
            rewrite_syn_in_place: true,
        }
    }
}

/// One core's frame-level endpoint.
pub struct Stack {
    /// The TCP core.
    pub core: Core,
    addrs_v4: Vec<Ipv4Addr>,
    addrs_v6: Vec<Ipv6Addr>,
    verify_checksums: bool,
    standalone: Option<[u8; 6]>,
    steering: Option<Steering>,
    rewrite_syn_in_place: bool,
    /// SYN-ACKs written by the in-place rewrite (the rest of the replies took `emit`).
    synacks_in_place: u64,
    /// Segments the core queued that did not fit the received frame; the worker sends them
    /// in frames of their own.
    pub(super) pending: Vec<Tx>,
    /// The L2 path of the frame being answered.
    reply_path: L2Path,
}

impl Stack {
    /// A stack serving `addrs` with `core` and the defaults of [`StackConfig::serving`].
    pub fn new(core: Core, addrs: &[IpAddr]) -> Stack {
        Stack::with_config(core, StackConfig::serving(addrs))
    }

    /// A stack set up as `cfg` says, with `core`.
    pub fn with_config(core: Core, cfg: StackConfig) -> Stack {
        let addrs = &cfg.addrs;
        Stack {
            core,
            addrs_v4: addrs
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(a) => Some(*a),
                    _ => None,
                })
                .collect(),
            addrs_v6: addrs
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V6(a) => Some(*a),
                    _ => None,
                })
                .collect(),
            verify_checksums: cfg.verify_checksums,
            standalone: cfg.standalone,
            steering: cfg.steering,
            rewrite_syn_in_place: cfg.rewrite_syn_in_place,
            synacks_in_place: 0,
            pending: Vec::with_capacity(64),
            reply_path: L2Path {
                local_mac: [0; 6],
                remote_mac: [0; 6],
                vlan: None,
            },
        }
    }

    /// This core's counters.
    pub fn counters(&self) -> &Counters {
        &self.core.sh.counters
    }

    /// Whether plain SYNs are answered by rewriting their frame in place.
    pub fn rewrites_syn_in_place(&self) -> bool {
        self.rewrite_syn_in_place
    }

    /// SYN-ACKs written by the in-place rewrite so far (the rest of the replies took
    /// [`Self::emit`]).
    pub fn synacks_in_place(&self) -> u64 {
        self.synacks_in_place
    }

    fn drop(&mut self, r: DropReason) -> Outcome {
        self.core.sh.counters.drop(r);
        Outcome::Done
    }

    /// Handle one received frame of `len` bytes at the start of `buf` (which is the whole
    /// frame buffer, so a reply may be longer than the request). Replies beyond the first
    /// wait in [`Self::take_pending`].
    pub fn handle(&mut self, clock: &Clock, buf: &mut [u8], len: usize) -> Outcome {
        self.recycle_links();
        let len = len.min(buf.len());
        let frame = match EthernetFrame::new_checked(&buf[..len]) {
            Ok(f) => f,
            Err(e) => return self.drop(e.reason()),
        };
        let l2 = L2Path {
            local_mac: frame.dst_addr(),
            remote_mac: frame.src_addr(),
            vlan: frame.vlan(),
        };
        let l3 = frame.header_len();
        match frame.ethertype() {
            EtherType::IPV4 => self.handle_ipv4(clock, buf, len, l3, l2),
            EtherType::IPV6 => self.handle_ipv6(clock, buf, len, l3, l2),
            EtherType::ARP => self.handle_arp(buf, len, l3, l2),
            _ => self.drop(DropReason::UnsupportedL2),
        }
    }

    fn handle_ipv4(
        &mut self,
        clock: &Clock,
        buf: &mut [u8],
        len: usize,
        l3: usize,
        l2: L2Path,
    ) -> Outcome {
        let packet = match Ipv4Packet::new_checked(&buf[l3..len]) {
            Ok(p) => p,
            Err(e) => return self.drop(e.reason()),
        };
        let ip = match Ipv4Repr::parse(&packet, self.verify_checksums) {
            Ok(r) => r,
            Err(e) => return self.drop(e.reason()),
        };
        if ip.protocol != ip_protocol::TCP {
            return self.drop(DropReason::NotTcp);
        }
        if !self.addrs_v4.contains(&ip.dst) {
            return self.drop(DropReason::NotOurs);
        }
        if ip.src.is_broadcast()
            || ip.src.is_multicast()
            || ip.src.is_unspecified()
            || self.addrs_v4.contains(&ip.src)
        {
            return self.drop(DropReason::BadSource);
        }
        let l4 = l3 + packet.header_len();
        let end = l3 + ip.payload_len + packet.header_len();
        self.handle_tcp(
            clock,
            buf,
            l4,
            end,
            IpAddr::V4(ip.src),
            IpAddr::V4(ip.dst),
            l2,
        )
    }

    fn handle_ipv6(
        &mut self,
        clock: &Clock,
        buf: &mut [u8],
        len: usize,
        l3: usize,
        l2: L2Path,
    ) -> Outcome {
        let packet = match Ipv6Packet::new_checked(&buf[l3..len]) {
            Ok(p) => p,
            Err(e) => return self.drop(e.reason()),
        };
        let ip = match Ipv6Repr::parse(&packet) {
            Ok(r) => r,
            Err(e) => return self.drop(e.reason()),
        };
        let l4 = l3 + Ipv6Repr::HEADER_LEN;
        let end = l4 + ip.payload_len;
        if ip.next_header == ip_protocol::ICMPV6 {
            return self.handle_ndp(buf, l4, end, &ip, l2);
        }
        if ip.next_header != ip_protocol::TCP {
            return self.drop(DropReason::NotTcp);
        }
        if !self.addrs_v6.contains(&ip.dst) {
            return self.drop(DropReason::NotOurs);
        }
        if ip.src.is_multicast() || ip.src.is_unspecified() || self.addrs_v6.contains(&ip.src) {
            return self.drop(DropReason::BadSource);
        }
        self.handle_tcp(
            clock,
            buf,
            l4,
            end,
            IpAddr::V6(ip.src),
            IpAddr::V6(ip.dst),
            l2,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_tcp(
        &mut self,
        clock: &Clock,
        buf: &mut [u8],
        l4: usize,
        end: usize,
        src: IpAddr,
        dst: IpAddr,
        l2: L2Path,
    ) -> Outcome {
        let Some(bytes) = buf.get(l4..end) else {
            return self.drop(DropReason::Malformed);
        };
        let packet = match TcpPacket::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return self.drop(e.reason()),
        };
        let seg = match TcpRepr::parse(&packet, &src, &dst, self.verify_checksums) {
            Ok(s) => s,
            Err(e) => return self.drop(e.reason()),
        };
        if let Some(st) = &self.steering {
            let owner = st.owner(&src, &dst, seg.src_port, seg.dst_port);
            if owner != st.me {
                return Outcome::Handoff(owner);
            }
        }
        let flow = match (src, dst) {
            (IpAddr::V4(remote), IpAddr::V4(local)) => Flow::V4 {
                local,
                remote,
                local_port: seg.dst_port,
                remote_port: seg.src_port,
            },
            (IpAddr::V6(remote), IpAddr::V6(local)) => Flow::V6 {
                local,
                remote,
                local_port: seg.dst_port,
                remote_port: seg.src_port,
            },
            _ => return self.drop(DropReason::Malformed),
        };
        if self.rewrite_syn_in_place && syn_rewrite::fits(buf, l2_len(&l2), l4, flow.is_v6()) {
            if let Some(synack) = self.core.syn_without_state(clock, &flow, &seg) {
                self.synacks_in_place += 1;
                return Outcome::Reply(syn_rewrite::rewrite(buf, &flow, &synack, TTL));
            }
        }
        self.segment_to_core(clock, &flow, &l2, &seg);
        self.reply_in_place(buf)
    }

    /// The general path: the core handles the segment (its connection, or LISTEN); its
    /// replies go out through [`Self::reply_in_place`]. Out of line, so the code of every
    /// state does not crowd the registers of the in-place SYN-ACK path: under callgrind
    /// (`benches/profile.rs`) a SYN costs 7 instructions less (spills), a segment taking
    /// this path ~9 more (the call).
    #[inline(never)]
    fn segment_to_core(&mut self, clock: &Clock, flow: &Flow, l2: &L2Path, seg: &TcpRepr<'_>) {
        self.core.on_segment(clock, flow, l2, seg);
        self.reply_path = *l2;
    }

    /// Write the first queued segment into the received frame; keep the rest pending.
    fn reply_in_place(&mut self, buf: &mut [u8]) -> Outcome {
        // The list drains in place (keeping its capacity): the first segment is copied
        // out, the rest move to the pending list, before anything is written.
        let mut out = self.core.sh.out.drain(..);
        let Some(first) = out.next() else {
            return Outcome::Done;
        };
        self.pending.extend(out);
        match self.emit(&first, buf) {
            Some(n) => Outcome::Reply(n),
            None => self.drop(DropReason::TooBig),
        }
    }

    /// Handle a frame another worker handed to us ([`Outcome::Handoff`]): steering already
    /// chose this core, so it is handled here whatever the hash says.
    pub fn handle_handed_off(&mut self, clock: &Clock, buf: &mut [u8], len: usize) -> Outcome {
        let steering = self.steering.take();
        let outcome = self.handle(clock, buf, len);
        self.steering = steering;
        outcome
    }

    /// Segments waiting for frames of their own (replies beyond the first, timer output).
    pub fn take_pending(&mut self) -> std::vec::Drain<'_, Tx> {
        self.gather_pending();
        self.pending.drain(..)
    }

    /// Move what the core queued since (timer output) behind the pending replies.
    pub(super) fn gather_pending(&mut self) {
        if !self.core.sh.out.is_empty() {
            self.pending.append(&mut self.core.sh.out);
        }
    }

    /// Whether segments wait for frames.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.core.sh.out.is_empty()
    }

    /// Run due timers and the idle sweep; their segments become pending.
    pub fn on_timers(&mut self, clock: &Clock) {
        self.recycle_links();
        self.core.on_timers(clock);
        self.core.sweep_idle(clock);
    }

    /// Let the link table reuse the paths of removed connections, once no segment that
    /// names one waits to be sent (see [`crate::table::LinkTable::recycle`]).
    fn recycle_links(&mut self) {
        if !self.has_pending() {
            self.core.sh.links.recycle();
        }
    }

    /// Write `tx` as a complete frame into `buf`. Returns its length, or `None` when it does
    /// not fit or its link path is unknown.
    #[must_use = "`None` means no frame was written: release the buffer and count it"]
    pub fn emit(&self, tx: &Tx, buf: &mut [u8]) -> Option<usize> {
        Frames {
            reply_path: &self.reply_path,
            links: &self.core.sh.links,
            pool: &self.core.sh.pool,
        }
        .emit(tx, buf)
    }

    /// The pending segments (timer output gathered first), draining, next to what writing
    /// them reads and the counters, borrowed apart from one another so the worker writes
    /// each into a frame of its own while the list drains. Nothing is taken out and put
    /// back: when the `Drain` goes out of scope the list is empty and keeps its capacity.
    pub(super) fn drain_pending(&mut self) -> (std::vec::Drain<'_, Tx>, Frames<'_>, &mut Counters) {
        self.gather_pending();
        let sh = &mut self.core.sh;
        let frames = Frames {
            reply_path: &self.reply_path,
            links: &sh.links,
            pool: &sh.pool,
        };
        (self.pending.drain(..), frames, &mut sh.counters)
    }

    /// Standalone mode: answer an ARP request for one of our addresses (RFC 826).
    fn handle_arp(&mut self, buf: &mut [u8], len: usize, l3: usize, l2: L2Path) -> Outcome {
        let Some(mac) = self.standalone else {
            return self.drop(DropReason::NotTcp);
        };
        let arp = match ArpRepr::parse(&buf[l3..len]) {
            Ok(a) => a,
            Err(e) => return self.drop(e.reason()),
        };
        if arp.operation != ArpOperation::Request || !self.addrs_v4.contains(&arp.target_ip) {
            return self.drop(DropReason::NotOurs);
        }
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: mac,
            sender_ip: arp.target_ip,
            target_mac: arp.sender_mac,
            target_ip: arp.sender_ip,
        };
        let eth = EthernetRepr {
            src: mac,
            dst: arp.sender_mac,
            vlan: l2.vlan,
            ethertype: EtherType::ARP,
        };
        let hl = eth.header_len();
        let total = hl + ArpRepr::LEN;
        if buf.len() < total {
            return self.drop(DropReason::TooBig);
        }
        eth.emit(buf);
        reply.emit(&mut buf[hl..total]);
        self.core.sh.counters.event(Event::NeighborReplies);
        Outcome::Reply(total.max(60))
    }

    /// Standalone mode: answer a neighbour solicitation for one of our addresses
    /// (RFC 4861 §7.2.4) with a solicited, override advertisement.
    fn handle_ndp(
        &mut self,
        buf: &mut [u8],
        l4: usize,
        end: usize,
        ip: &Ipv6Repr,
        l2: L2Path,
    ) -> Outcome {
        let Some(mac) = self.standalone else {
            return self.drop(DropReason::NotTcp);
        };
        let Some(icmp) = buf.get(l4..end) else {
            return self.drop(DropReason::Malformed);
        };
        let target = match NdpRepr::parse(icmp, &ip.src, &ip.dst) {
            Ok(NdpRepr::NeighborSolicit { target, .. }) => target,
            Ok(_) => return self.drop(DropReason::NotTcp),
            Err(e) => return self.drop(e.reason()),
        };
        if !self.addrs_v6.contains(&target) || ip.hop_limit != 255 {
            return self.drop(DropReason::NotOurs);
        }
        // RFC 4861 §7.2.4: to the solicitation's source, or all-nodes if unspecified.
        let (dst, solicited) = if ip.src.is_unspecified() {
            (Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), false)
        } else {
            (ip.src, true)
        };
        let na = NdpRepr::NeighborAdvert {
            flags_router: false,
            flags_solicited: solicited,
            flags_override: true,
            target,
            target_mac: Some(mac),
        };
        let v6 = Ipv6Repr {
            src: target,
            dst,
            next_header: ip_protocol::ICMPV6,
            payload_len: na.buffer_len(),
            hop_limit: 255,
        };
        let dst_mac = if solicited {
            l2.remote_mac
        } else {
            [0x33, 0x33, 0, 0, 0, 1]
        };
        let eth = EthernetRepr {
            src: mac,
            dst: dst_mac,
            vlan: l2.vlan,
            ethertype: EtherType::IPV6,
        };
        let hl = eth.header_len();
        let total = hl + v6.buffer_len();
        if buf.len() < total {
            return self.drop(DropReason::TooBig);
        }
        eth.emit(buf);
        v6.emit(&mut buf[hl..hl + Ipv6Repr::HEADER_LEN]);
        na.emit(&mut buf[hl + Ipv6Repr::HEADER_LEN..total], &target, &dst);
        self.core.sh.counters.event(Event::NeighborReplies);
        Outcome::Reply(total)
    }
}

/// Length of the Ethernet header of a frame on `l2` (14, or 18 with an 802.1Q tag).
#[inline]
fn l2_len(l2: &L2Path) -> usize {
    if l2.vlan.is_some() {
        18
    } else {
        syn_rewrite::ETH_LEN
    }
}

/// What writing a queued segment into a frame reads of a [`Stack`]: the L2 path of the
/// frame being answered, the link table and the buffer pool (see [`Stack::emit`]).
pub(super) struct Frames<'a> {
    reply_path: &'a L2Path,
    links: &'a LinkTable,
    pool: &'a BufferPool,
}

impl Frames<'_> {
    /// [`Stack::emit`].
    #[must_use = "`None` means no frame was written: release the buffer and count it"]
    pub(super) fn emit(&self, tx: &Tx, buf: &mut [u8]) -> Option<usize> {
        let path = match tx.link {
            Link::Reply => self.reply_path,
            Link::Path(i) => self.links.get(i)?,
        };
        emit_frame(tx, path, self.pool.payload(&tx.seg.payload), buf)
    }
}

/// Write one segment as an Ethernet frame (padded to the 60-byte minimum).
#[must_use = "`None` means no frame was written"]
pub fn emit_frame(tx: &Tx, path: &L2Path, payload: &[u8], buf: &mut [u8]) -> Option<usize> {
    let seg = &tx.seg;
    TcpFrame {
        src_mac: path.local_mac,
        dst_mac: path.remote_mac,
        vlan: path.vlan,
        src: tx.flow.local(),
        dst: tx.flow.remote(),
        ttl: TTL,
        tcp: TcpRepr {
            src_port: tx.flow.local_port(),
            dst_port: tx.flow.remote_port(),
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window,
            options: seg.options,
            payload,
        },
    }
    .emit(buf)
}
