//! The per-core poll loop: frames in, segments through the core, replies out.
//!
//! [`Stack`] is one core's frame-level endpoint and does no I/O: it parses a frame in place
//! (Ethernet → IPv4/IPv6 → TCP, or ARP/NDP in standalone mode), decides which core owns
//! the flow (RSS), hands the segment to the [`Core`], and writes replies as complete frames
//! (the first one into the received frame itself). [`Worker`] wraps a stack around an
//! [`io::Port`]: batches of up to 64 frames, one clock reading per batch, timers fired from
//! the loop, handoff of foreign flows to their owner through bounded lock-free queues.

#![forbid(unsafe_code)]

pub mod rss;
pub mod syn_rewrite;

use crate::counters::{Counters, DropReason, Event};
use crate::io::{Frame, Port, PortStats};
use crate::table::{Core, L2Path};
use crate::tcp::{Clock, Flow, Link, Tx};
use crate::wire::{
    self, ArpOperation, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, NdpRepr, TcpFrame, TcpPacket, TcpRepr,
};
use crossbeam::queue::ArrayQueue;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// IP protocol number of TCP.
const PROTO_TCP: u8 = 6;
/// IPv6 next header of ICMPv6.
const PROTO_ICMPV6: u8 = 58;
/// TTL / hop limit of what we send (Linux's default).
const TTL: u8 = 64;
/// Empty polls before an idle worker waits on its port.
const IDLE_SPINS: u32 = 256;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to send from this frame (dropped, or only state changed).
    Done,
    /// The frame buffer now holds a reply of this many bytes.
    Reply(usize),
    /// The flow belongs to another worker.
    Handoff(usize),
}

/// One core's frame-level endpoint.
pub struct Stack {
    /// The TCP core.
    pub core: Core,
    addrs_v4: Vec<Ipv4Addr>,
    addrs_v6: Vec<Ipv6Addr>,
    /// Verify received IPv4 and TCP checksums.
    pub verify_checksums: bool,
    /// Answer ARP and neighbour solicitations for our addresses with `mac`.
    pub standalone: Option<[u8; 6]>,
    /// Flow ownership, when there are several workers.
    pub steering: Option<Steering>,
    /// Answer a plain SYN without state by rewriting its frame in place
    /// ([`syn_rewrite`]); off, every SYN takes the general path (same bytes, slower).
    pub rewrite_syn_in_place: bool,
    /// SYN-ACKs written by the in-place rewrite (the rest of the replies took `emit`).
    pub synacks_in_place: u64,
    /// Segments the core queued that did not fit the received frame; the worker sends them
    /// in frames of their own.
    pending: Vec<Tx>,
    /// The L2 path of the frame being answered.
    reply_path: L2Path,
}

impl Stack {
    /// A stack serving `addrs` with `core`.
    pub fn new(core: Core, addrs: &[IpAddr]) -> Stack {
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
            verify_checksums: true,
            standalone: None,
            steering: None,
            rewrite_syn_in_place: true,
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
        if ip.protocol != PROTO_TCP {
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
        if ip.next_header == PROTO_ICMPV6 {
            return self.handle_ndp(buf, l4, end, &ip, l2);
        }
        if ip.next_header != PROTO_TCP {
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
        self.core.on_segment(clock, &flow, &l2, &seg);
        self.reply_path = l2;
        self.reply_in_place(buf)
    }

    /// Write the first queued segment into the received frame; keep the rest pending.
    fn reply_in_place(&mut self, buf: &mut [u8]) -> Outcome {
        if self.core.sh.out.is_empty() {
            return Outcome::Done;
        }
        let mut out = std::mem::take(&mut self.core.sh.out);
        let mut result = Outcome::Done;
        for (i, tx) in out.drain(..).enumerate() {
            if i == 0 {
                match self.emit(&tx, buf) {
                    Some(n) => result = Outcome::Reply(n),
                    None => self.core.sh.counters.drop(DropReason::TooBig),
                }
            } else {
                self.pending.push(tx);
            }
        }
        self.core.sh.out = out;
        result
    }

    /// Segments waiting for frames of their own (replies beyond the first, timer output).
    pub fn take_pending(&mut self) -> std::vec::Drain<'_, Tx> {
        self.gather_pending();
        self.pending.drain(..)
    }

    /// Move what the core queued since (timer output) behind the pending replies.
    fn gather_pending(&mut self) {
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
    pub fn emit(&self, tx: &Tx, buf: &mut [u8]) -> Option<usize> {
        let path = match tx.link {
            Link::Reply => &self.reply_path,
            Link::Path(i) => self.core.sh.links.get(i)?,
        };
        emit_frame(tx, path, self.core.payload(&tx.seg.payload), buf)
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
            next_header: PROTO_ICMPV6,
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

/// Write one segment as an Ethernet frame (padded to the 60-byte minimum).
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

/// Largest frame a handoff queue carries (a full 1500-byte MTU frame with a VLAN tag fits).
pub const HANDOFF_MAX: usize = 2048;

/// A frame copied for its owner core.
pub struct Handoff {
    /// The worker whose pool the buffer goes back to.
    from: u16,
    len: u16,
    data: [u8; HANDOFF_MAX],
}

/// One worker's side of the cross-core handoff: its inbox (frames other workers received
/// for its flows) and the pool of buffers it copies its own handoffs into.
///
/// Memory is fixed at construction: `capacity` buffers per worker, all allocated here and
/// never again. A buffer leaves its pool with a handoff and the receiver gives it back to
/// the same pool once it has copied the frame out, so whatever the imbalance between
/// workers (one receiving every frame, another owning every flow), no pool holds more than
/// `capacity` buffers and no worker allocates on the hot path. A worker whose buffers are
/// all in flight drops the frame (counted as `handoff_full`), as it does when the owner's
/// inbox is full.
pub struct HandoffQueue {
    inbox: ArrayQueue<Box<Handoff>>,
    pool: ArrayQueue<Box<Handoff>>,
}

impl HandoffQueue {
    /// An inbox of `capacity` entries and a pool of `capacity` buffers (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let pool = ArrayQueue::new(capacity);
        for _ in 0..capacity {
            let _ = pool.push(Box::new(Handoff {
                from: 0,
                len: 0,
                data: [0; HANDOFF_MAX],
            }));
        }
        HandoffQueue {
            inbox: ArrayQueue::new(capacity),
            pool,
        }
    }

    /// Entries the inbox holds at most, and buffers in the pool when none is in flight.
    pub fn capacity(&self) -> usize {
        self.pool.capacity()
    }

    /// Buffers in this worker's pool now (at most [`capacity`](Self::capacity)).
    pub fn spare(&self) -> usize {
        self.pool.len()
    }

    /// Frames waiting in the inbox now.
    pub fn queued(&self) -> usize {
        self.inbox.len()
    }

    /// Whether no frame waits in the inbox.
    pub fn is_empty(&self) -> bool {
        self.inbox.is_empty()
    }
}

/// Give a handoff buffer back to the pool of the worker that filled it (it came from
/// there, so there is room).
fn give_back(peers: &[Arc<HandoffQueue>], h: Box<Handoff>) {
    if let Some(q) = peers.get(usize::from(h.from)) {
        let _ = q.pool.push(h);
    }
}

/// Counters and gauges a worker publishes for the stats thread (relaxed atomics, written
/// by the worker every ~100 ms and read by the stats thread; no lock).
#[derive(Debug)]
pub struct Published {
    /// Drop counters.
    pub drops: Vec<AtomicU64>,
    /// Event counters.
    pub events: Vec<AtomicU64>,
    /// Connections in the table.
    pub active: AtomicU64,
    /// Nanoseconds spent on loop iterations that had work.
    pub busy_ns: AtomicU64,
    /// Nanoseconds of loop time in all.
    pub loop_ns: AtomicU64,
    /// Port statistics, flattened in [`PortStats`] field order.
    pub port: [AtomicU64; 9],
    /// Captured frames lost because the capture channel was full.
    pub capture_lost: AtomicU64,
}

impl Default for Published {
    fn default() -> Self {
        Published {
            drops: (0..DropReason::COUNT).map(|_| AtomicU64::new(0)).collect(),
            events: (0..Event::COUNT).map(|_| AtomicU64::new(0)).collect(),
            active: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            loop_ns: AtomicU64::new(0),
            port: Default::default(),
            capture_lost: AtomicU64::new(0),
        }
    }
}

impl Published {
    /// Snapshot the counters.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for (d, a) in c.drops.iter_mut().zip(&self.drops) {
            *d = a.load(Ordering::Relaxed);
        }
        for (e, a) in c.events.iter_mut().zip(&self.events) {
            *e = a.load(Ordering::Relaxed);
        }
        c
    }

    /// Snapshot the port statistics.
    pub fn port_stats(&self) -> PortStats {
        let v: Vec<u64> = self
            .port
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        PortStats {
            rx_dropped: v[0],
            rx_invalid_descs: v[1],
            tx_invalid_descs: v[2],
            rx_ring_full: v[3],
            rx_fill_ring_empty_descs: v[4],
            tx_ring_empty_descs: v[5],
            tx_kicks: v[6],
            tx_kick_errors: v[7],
            tx_ring_full: v[8],
        }
    }

    fn store(&self, c: &Counters, active: usize, port: &PortStats) {
        for (a, v) in self.drops.iter().zip(c.drops.iter()) {
            a.store(*v, Ordering::Relaxed);
        }
        for (a, v) in self.events.iter().zip(c.events.iter()) {
            a.store(*v, Ordering::Relaxed);
        }
        self.active.store(active as u64, Ordering::Relaxed);
        let p = [
            port.rx_dropped,
            port.rx_invalid_descs,
            port.tx_invalid_descs,
            port.rx_ring_full,
            port.rx_fill_ring_empty_descs,
            port.tx_ring_empty_descs,
            port.tx_kicks,
            port.tx_kick_errors,
            port.tx_ring_full,
        ];
        for (a, v) in self.port.iter().zip(p) {
            a.store(v, Ordering::Relaxed);
        }
    }
}

/// A clock source for the loop: real time, or a fixed reading for tests.
pub fn wall_clock(start: Instant) -> Clock {
    Clock {
        ms: start.elapsed().as_millis() as u64,
        unix_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

/// Which received frames a worker copies to the capture thread (defined in `io`, where
/// the config can name it without importing the engine).
pub use crate::io::CaptureMode;

/// A received frame copied for the capture thread.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Worker that received it.
    pub worker: u16,
    /// Arrival time, ns since the Unix epoch.
    pub unix_ns: u64,
    /// Why it was dropped, if it was.
    pub reason: Option<DropReason>,
    /// The frame bytes as received.
    pub data: Vec<u8>,
}

/// A worker's capture hook: frames go to a bounded channel that a writer thread drains;
/// a full channel loses the frame (counted), it never blocks the loop.
#[derive(Debug)]
pub struct Capture {
    /// What to capture.
    pub mode: CaptureMode,
    /// To the writer thread.
    pub tx: crossbeam::channel::Sender<Captured>,
    /// This worker's index (stored in each record).
    pub worker: u16,
    seen: u64,
}

impl Capture {
    /// A hook for `worker` sending to `tx`.
    pub fn new(mode: CaptureMode, tx: crossbeam::channel::Sender<Captured>, worker: u16) -> Self {
        Capture {
            mode,
            tx,
            worker,
            seen: 0,
        }
    }

    fn send(&self, reason: Option<DropReason>, data: &[u8], lost: &AtomicU64) {
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let rec = Captured {
            worker: self.worker,
            unix_ns,
            reason,
            data: data.to_vec(),
        };
        if self.tx.try_send(rec).is_err() {
            lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Instructions from the control thread, applied between batches (reload without a restart).
#[derive(Debug, Clone)]
pub enum Control {
    /// New listening ports and modes.
    Listeners(Vec<(u16, crate::tcp::responder::Mode)>),
    /// New fixed HTTP responses.
    Http(crate::tcp::responder::HttpResponses),
    /// New cookie secret; cookies of the old one stay valid until `ForgetPreviousSecret`.
    RotateSecret([u8; 16]),
    /// Stop accepting cookies made with the secret before the last rotation.
    ForgetPreviousSecret,
}

/// One worker: a stack, a port, and the handoff queues.
pub struct Worker<P: Port> {
    /// The frame-level endpoint.
    pub stack: Stack,
    /// The frame port.
    pub port: P,
    batch: Vec<Frame>,
    batch_size: usize,
    /// Our inbox and buffer pool; boxes move through the queues, so a handoff moves a
    /// pointer, not 2 KiB.
    inbox: Option<Arc<HandoffQueue>>,
    peers: Vec<Arc<HandoffQueue>>,
    /// Our index among `peers`.
    me: u16,
    /// What the stats thread reads.
    pub published: Arc<Published>,
    /// Frame capture hook.
    pub capture: Option<Capture>,
    capture_scratch: Vec<u8>,
    /// Reload instructions.
    pub control: Option<crossbeam::channel::Receiver<Control>>,
    /// The instant the clock reads 0 ms (`Clock::ms`, hence every TSval we send). All
    /// workers of a process share one, which the XDP SYN offload also uses for the TSval of
    /// the SYN-ACKs it sends (`io::bpf::clock_origin_ns`). Default: when the worker was made.
    pub clock_origin: Instant,
}

impl<P: Port> Worker<P> {
    /// A worker polling `port` in batches of `batch_size`.
    pub fn new(stack: Stack, port: P, batch_size: usize) -> Self {
        Worker {
            stack,
            port,
            batch: vec![Frame { addr: 0, len: 0 }; batch_size.max(1)],
            batch_size: batch_size.max(1),
            inbox: None,
            peers: Vec::new(),
            me: 0,
            published: Arc::new(Published::default()),
            capture: None,
            capture_scratch: Vec::with_capacity(4096),
            control: None,
            clock_origin: Instant::now(),
        }
    }

    /// Connect the handoff queues: `queues[i]` is worker i's inbox; ours is `queues[me]`.
    pub fn set_handoff(&mut self, queues: &[Arc<HandoffQueue>], me: usize) {
        self.inbox = queues.get(me).cloned();
        self.peers = queues.to_vec();
        self.me = me as u16;
    }

    /// One loop iteration: receive a batch, handle it, take handed-off frames, run timers,
    /// send, flush. Returns the number of frames handled.
    pub fn poll(&mut self, clock: &Clock) -> usize {
        let n = self.port.recv(&mut self.batch[..self.batch_size]);
        self.stack.core.sh.counters.add(Event::RxFrames, n as u64);
        for i in 0..n {
            let Frame { addr, len } = self.batch[i];
            let buf = self.port.buffer(addr);
            if let Some(cap) = &mut self.capture {
                // Copy before handling: a reply overwrites the frame in place.
                let take = match cap.mode {
                    CaptureMode::All => true,
                    CaptureMode::Sample(k) => {
                        cap.seen += 1;
                        cap.seen % k.max(1) as u64 == 0
                    }
                    CaptureMode::Dropped => false,
                };
                if take {
                    cap.send(None, &buf[..len as usize], &self.published.capture_lost);
                }
            }
            let drops_before = match &self.capture {
                Some(c) if c.mode == CaptureMode::Dropped => {
                    // A dropped frame may still be answered in place (an ACK for an
                    // unacceptable segment): keep the received bytes aside first.
                    self.capture_scratch.clear();
                    self.capture_scratch.extend_from_slice(&buf[..len as usize]);
                    self.stack.core.sh.counters.total_drops()
                }
                _ => 0,
            };
            let outcome = self.stack.handle(clock, buf, len as usize);
            if let Some(cap) = &self.capture {
                if cap.mode == CaptureMode::Dropped
                    && self.stack.core.sh.counters.total_drops() != drops_before
                {
                    let reason = self.stack.core.sh.counters.last_drop;
                    cap.send(reason, &self.capture_scratch, &self.published.capture_lost);
                }
            }
            match outcome {
                Outcome::Reply(len) => self.send(addr, len),
                Outcome::Done => self.port.release(addr),
                Outcome::Handoff(owner) => {
                    self.handoff(owner, addr, len as usize);
                    self.port.release(addr);
                }
            }
            self.send_pending();
        }
        let mut handled = n;
        handled += self.take_handoffs(clock);
        self.stack.on_timers(clock);
        self.send_pending();
        self.port.flush();
        handled
    }

    fn send(&mut self, addr: u64, len: usize) {
        if self.port.send(addr, len as u32) {
            self.stack.core.sh.counters.event(Event::TxFrames);
        } else {
            self.stack.core.sh.counters.drop(DropReason::TxFull);
        }
    }

    /// Send the segments that wait for frames of their own.
    fn send_pending(&mut self) {
        if !self.stack.has_pending() {
            return;
        }
        self.stack.gather_pending();
        // Taken out (and put back, keeping its capacity) so `emit` can borrow the stack.
        let mut pending = std::mem::take(&mut self.stack.pending);
        for tx in pending.drain(..) {
            let Some(addr) = self.port.alloc_tx() else {
                self.stack.core.sh.counters.drop(DropReason::TxFull);
                continue;
            };
            let buf = self.port.buffer(addr);
            match self.stack.emit(&tx, buf) {
                Some(len) => self.send(addr, len),
                None => {
                    self.port.release(addr);
                    self.stack.core.sh.counters.drop(DropReason::TooBig);
                }
            }
        }
        self.stack.pending = pending;
    }

    /// Copy a frame into the owner's inbox, in a buffer from our pool (never blocks and
    /// never allocates: a full inbox or an empty pool is a counted drop).
    fn handoff(&mut self, owner: usize, addr: u64, len: usize) {
        let counters = &mut self.stack.core.sh.counters;
        let (Some(queue), Some(mine), true) =
            (self.peers.get(owner), &self.inbox, len <= HANDOFF_MAX)
        else {
            counters.drop(DropReason::HandoffFull);
            return;
        };
        let Some(mut h) = mine.pool.pop() else {
            counters.drop(DropReason::HandoffFull);
            return;
        };
        h.from = self.me;
        h.len = len as u16;
        h.data[..len].copy_from_slice(&self.port.buffer(addr)[..len]);
        match queue.inbox.push(h) {
            Ok(()) => counters.event(Event::HandoffOut),
            Err(h) => {
                counters.drop(DropReason::HandoffFull);
                let _ = mine.pool.push(h);
            }
        }
    }

    /// Handle frames other workers received for our flows: each is copied into a TX frame
    /// and handled there in place, as if it had arrived here.
    fn take_handoffs(&mut self, clock: &Clock) -> usize {
        let Some(inbox) = self.inbox.clone() else {
            return 0;
        };
        let mut n = 0;
        while n < self.batch_size {
            let Some(h) = inbox.inbox.pop() else { break };
            n += 1;
            self.stack.core.sh.counters.event(Event::HandoffIn);
            let Some(addr) = self.port.alloc_tx() else {
                self.stack.core.sh.counters.drop(DropReason::TxFull);
                give_back(&self.peers, h);
                continue;
            };
            let len = h.len as usize;
            let buf = self.port.buffer(addr);
            let len = len.min(buf.len());
            buf[..len].copy_from_slice(&h.data[..len]);
            give_back(&self.peers, h);
            // Steering already chose us: handle it here whatever the hash says.
            let steering = self.stack.steering.take();
            let outcome = self.stack.handle(clock, buf, len);
            self.stack.steering = steering;
            match outcome {
                Outcome::Reply(len) => self.send(addr, len),
                _ => self.port.release(addr),
            }
            self.send_pending();
        }
        n
    }

    /// Publish counters for the stats thread.
    pub fn publish(&self) {
        self.published.store(
            &self.stack.core.sh.counters,
            self.stack.core.active(),
            &self.port.stats(),
        );
    }

    /// Apply pending control messages (reload).
    fn apply_control(&mut self) {
        let Some(rx) = &self.control else { return };
        while let Ok(msg) = rx.try_recv() {
            let core = &mut self.stack.core;
            match msg {
                Control::Listeners(l) => core.set_listeners(&l),
                Control::Http(h) => core.sh.http = h,
                Control::RotateSecret(s) => core.sh.jar.rotate(s),
                Control::ForgetPreviousSecret => core.sh.jar.forget_previous(),
            }
        }
    }

    /// Run until `stop` is set, then close every connection and keep serving for up to
    /// `drain` so the closes complete. Empty polls spin briefly, then wait on the port.
    pub fn run(&mut self, stop: &AtomicBool, drain: Duration) {
        let start = Instant::now();
        let mut last_publish = Instant::now();
        let mut idle_polls = 0u32;
        let mut stopping: Option<Instant> = None;
        let mut last_drain_check = start;
        let mut busy = Duration::ZERO;
        loop {
            let t0 = Instant::now();
            let clock = wall_clock(self.clock_origin);
            let n = self.poll(&clock);
            self.apply_control();
            let t1 = Instant::now();
            if n > 0 {
                busy += t1 - t0;
                idle_polls = 0;
            } else {
                idle_polls = idle_polls.saturating_add(1);
                // Never sleep while frames wait on the RX ring (they arrived after `recv`
                // looked): the next poll takes them.
                if idle_polls > IDLE_SPINS && self.port.rx_ready() == 0 {
                    self.port.wait(Duration::from_millis(1));
                }
            }
            if t1 - last_publish >= Duration::from_millis(100) {
                self.publish();
                self.published
                    .busy_ns
                    .store(busy.as_nanos() as u64, Ordering::Relaxed);
                self.published
                    .loop_ns
                    .store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                last_publish = t1;
            }
            match stopping {
                None if stop.load(Ordering::Relaxed) => {
                    self.stack.core.close_all(&wall_clock(self.clock_origin));
                    self.send_pending();
                    self.port.flush();
                    stopping = Some(Instant::now());
                }
                // TIME-WAIT needs nothing from us: stop once every other state is gone
                // (counting states walks the slab, so only on idle polls, every 20 ms).
                Some(t)
                    if t.elapsed() >= drain
                        || (idle_polls > 0
                            && t1 - last_drain_check >= Duration::from_millis(20)
                            && {
                                last_drain_check = t1;
                                self.stack.core.states()[..6].iter().all(|&n| n == 0)
                            }) =>
                {
                    break
                }
                _ => {}
            }
        }
        self.publish();
        self.published
            .busy_ns
            .store(busy.as_nanos() as u64, Ordering::Relaxed);
        self.published
            .loop_ns
            .store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Re-export for users of the engine who build frames.
pub use wire::TcpFlags;
