//! One core's connections: a fixed-capacity slab of TCBs indexed by a `hashbrown` table,
//! the timer wheel, the cookie jar, buffers, counters, and the dispatch that sends each
//! segment to its TCB or to stateless LISTEN.
//!
//! Memory: the index is a `HashTable<u32>` of slab positions (5 bytes a bucket), the slab
//! holds `(key, generation, TCB)` (72 bytes for IPv4). Both are sized from the configured
//! capacity at start and never grow, so the steady state allocates nothing. The slabs are
//! reserved, not touched: the kernel commits their pages as connections arrive.
//!
//! The index hash is hashbrown's default (foldhash), randomly seeded per table, so remote
//! peers cannot aim their 4-tuples at one bucket chain without learning the seed.

#![forbid(unsafe_code)]

pub mod occupancy;

use crate::counters::{Counters, DropReason, Event};
use crate::tcp::conn::{ChallengeLimiter, Conn, Ctx, State, Verdict};
use crate::tcp::cookie::CookieJar;
use crate::tcp::responder::{BufferPool, HttpResponses, Mode};
use crate::tcp::timer::{Entry, Wheel};
use crate::tcp::{listen, reset_for, Clock, Flow, Link, Params, Payload, Segment, Tick, Tx};
use crate::wire::TcpRepr;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::hash::{BuildHasher, Hash};
use std::net::{Ipv4Addr, Ipv6Addr};
use strum::EnumCount as _;

/// The link-layer path of a connection: whom we talk to on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct L2Path {
    /// Our MAC (the received frame's destination).
    pub local_mac: [u8; 6],
    /// The peer's (or its router's) MAC.
    pub remote_mac: [u8; 6],
    /// The 802.1Q tag (TCI) the frame carried, if any.
    pub vlan: Option<u16>,
}

/// Interned link paths: a connection stores a 2-byte index instead of 14 bytes. There are
/// few distinct paths (one per router or L2 neighbour), not one per connection.
///
/// Each entry counts the connections that use it and is released with the last of them,
/// so a host that cycles through spoofed source MACs leaves nothing behind once its
/// connections are gone. The table never holds more than [`bound`](Self::bound) paths,
/// and, like Linux's neighbour table (`neigh_forced_gc` only frees entries nobody holds;
/// `neigh_alloc` fails past `gc_thresh3`), it never evicts a path a live connection uses:
/// when every entry is held, a connection over a new path is refused and counted
/// ([`DropReason::LinkTableFull`]) while connections over known paths (the router's) are
/// still accepted.
///
/// A released index is reused only after [`recycle`](Self::recycle), which the engine
/// calls when no queued segment can still name it.
#[derive(Debug)]
pub struct LinkTable {
    ids: HashMap<L2Path, u16>,
    paths: Vec<L2Path>,
    /// Connections using each index (0: released or free).
    refs: Vec<u32>,
    /// Indices ready for reuse.
    free: Vec<u16>,
    /// Indices whose last connection went since the last [`recycle`](Self::recycle).
    released: Vec<u16>,
    bound: usize,
}

impl Default for LinkTable {
    fn default() -> Self {
        LinkTable::new(Self::MAX)
    }
}

impl LinkTable {
    /// Most distinct paths one core can index (2-byte indices).
    pub const MAX: usize = u16::MAX as usize;

    /// A table of at most `bound` paths (clamped to 1..=[`MAX`](Self::MAX)).
    pub fn new(bound: usize) -> Self {
        LinkTable {
            ids: HashMap::new(),
            paths: Vec::new(),
            refs: Vec::new(),
            free: Vec::new(),
            released: Vec::new(),
            bound: bound.clamp(1, Self::MAX),
        }
    }

    /// The index of `path` for one more connection, adding it if new; `None` when the
    /// table is full of paths that live connections use.
    #[must_use = "an acquired path is referenced until released"]
    pub fn acquire(&mut self, path: &L2Path) -> Option<u16> {
        if let Some(&id) = self.ids.get(path) {
            self.refs[usize::from(id)] += 1;
            return Some(id);
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.paths[usize::from(id)] = *path;
                id
            }
            None if self.paths.len() < self.bound => {
                self.paths.push(*path);
                self.refs.push(0);
                (self.paths.len() - 1) as u16
            }
            None => return None,
        };
        self.refs[usize::from(id)] = 1;
        self.ids.insert(*path, id);
        Some(id)
    }

    /// One connection using `id` is gone; the path is released with the last one.
    pub fn release(&mut self, id: u16) {
        let Some(refs) = self.refs.get_mut(usize::from(id)) else {
            return;
        };
        if *refs == 0 {
            return;
        }
        *refs -= 1;
        if *refs == 0 {
            self.released.push(id);
        }
    }

    /// Make released indices reusable. Call only when no queued segment names a released
    /// index (it would otherwise go out over the path that takes the index next). A path
    /// acquired again since its release keeps its index.
    ///
    /// Called for every received frame, and nearly always with nothing released: that
    /// check is inlined into the caller, the work is not.
    #[inline]
    pub fn recycle(&mut self) {
        if !self.released.is_empty() {
            self.recycle_released();
        }
    }

    #[inline(never)]
    fn recycle_released(&mut self) {
        for id in self.released.drain(..) {
            let i = usize::from(id);
            if self.refs[i] == 0 && self.ids.get(&self.paths[i]) == Some(&id) {
                self.ids.remove(&self.paths[i]);
                self.free.push(id);
            }
        }
    }

    /// The path at `id` (still readable after its release, until it is reused).
    pub fn get(&self, id: u16) -> Option<&L2Path> {
        self.paths.get(id as usize)
    }

    /// Paths in use or released but not yet recycled.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no path is indexed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Connections using `id`.
    pub fn refs(&self, id: u16) -> u32 {
        self.refs.get(usize::from(id)).copied().unwrap_or(0)
    }

    /// Most paths this table holds.
    pub fn bound(&self) -> usize {
        self.bound
    }
}

/// A key of the connection index: the 4-tuple from our side.
pub trait Key: Copy + Eq + Hash {
    /// The key of a flow of this family, or `None` for the other family.
    fn of(flow: &Flow) -> Option<Self>;
    /// The flow back from the key.
    fn flow(&self) -> Flow;
    /// Family bit put into wheel entries (bit 31 of the slot id).
    const FAMILY: u32;
}

/// IPv4 4-tuple, 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct V4Key {
    remote: [u8; 4],
    local: [u8; 4],
    remote_port: u16,
    local_port: u16,
}

/// IPv6 4-tuple, 36 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct V6Key {
    remote: [u8; 16],
    local: [u8; 16],
    remote_port: u16,
    local_port: u16,
}

impl Key for V4Key {
    const FAMILY: u32 = 0;
    fn of(flow: &Flow) -> Option<Self> {
        match *flow {
            Flow::V4 {
                local,
                remote,
                local_port,
                remote_port,
            } => Some(V4Key {
                remote: remote.octets(),
                local: local.octets(),
                remote_port,
                local_port,
            }),
            Flow::V6 { .. } => None,
        }
    }
    fn flow(&self) -> Flow {
        Flow::V4 {
            local: Ipv4Addr::from(self.local),
            remote: Ipv4Addr::from(self.remote),
            local_port: self.local_port,
            remote_port: self.remote_port,
        }
    }
}

impl Key for V6Key {
    const FAMILY: u32 = 1 << 31;
    fn of(flow: &Flow) -> Option<Self> {
        match *flow {
            Flow::V6 {
                local,
                remote,
                local_port,
                remote_port,
            } => Some(V6Key {
                remote: remote.octets(),
                local: local.octets(),
                remote_port,
                local_port,
            }),
            Flow::V4 { .. } => None,
        }
    }
    fn flow(&self) -> Flow {
        Flow::V6 {
            local: Ipv6Addr::from(self.local),
            remote: Ipv6Addr::from(self.remote),
            local_port: self.local_port,
            remote_port: self.remote_port,
        }
    }
}

/// One slab entry.
#[derive(Debug)]
struct Slot<K> {
    key: K,
    /// Bumped on every removal, so stale wheel entries miss.
    gen: u32,
    conn: Option<Conn>,
}

/// A fixed-capacity connection table of one address family.
pub struct ConnTable<K: Key> {
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    slots: Vec<Slot<K>>,
    free: Vec<u32>,
    len: usize,
    /// The XDP offload's occupancy filter, kept current on insert and remove.
    occupancy: Option<occupancy::Occupancy>,
}

impl<K: Key> ConnTable<K> {
    /// A table for up to `capacity` connections.
    pub fn with_capacity(capacity: usize) -> Self {
        ConnTable {
            index: HashTable::with_capacity(capacity),
            hasher: DefaultHashBuilder::default(),
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            len: 0,
            occupancy: None,
        }
    }

    /// Connections held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slab position of `key`.
    #[inline]
    pub fn find(&self, key: &K) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.index
            .find(hash, |&i| slots[i as usize].key == *key)
            .copied()
    }

    /// Insert a new connection (the key must be absent). Returns its slab position.
    pub fn insert(&mut self, key: K, conn: Conn) -> u32 {
        let pos = match self.free.pop() {
            Some(p) => {
                let slot = &mut self.slots[p as usize];
                slot.key = key;
                slot.conn = Some(conn);
                p
            }
            None => {
                self.slots.push(Slot {
                    key,
                    gen: 0,
                    conn: Some(conn),
                });
                (self.slots.len() - 1) as u32
            }
        };
        let hash = self.hasher.hash_one(key);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hash, pos, |&i| hasher.hash_one(slots[i as usize].key));
        self.len += 1;
        if let Some(o) = &self.occupancy {
            o.add(&key.flow());
        }
        pos
    }

    /// Remove the connection at `pos`, returning its TCB.
    #[must_use = "the removed TCB holds a buffer and a link path to release"]
    pub fn remove(&mut self, pos: u32) -> Option<Conn> {
        let slot = self.slots.get_mut(pos as usize)?;
        let conn = slot.conn.take()?;
        slot.gen = slot.gen.wrapping_add(1);
        let key = slot.key;
        let hash = self.hasher.hash_one(key);
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == pos) {
            entry.remove();
        }
        self.free.push(pos);
        self.len -= 1;
        if let Some(o) = &self.occupancy {
            o.remove(&key.flow());
        }
        Some(conn)
    }

    /// The TCB at `pos` if its generation matches.
    fn get_gen(&mut self, pos: u32, gen: u32) -> Option<(&K, &mut Conn)> {
        let slot = self.slots.get_mut(pos as usize)?;
        if slot.gen != gen {
            return None;
        }
        let key = &slot.key;
        slot.conn.as_mut().map(|c| (key, c))
    }

    /// Iterate over live connections.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Conn)> {
        self.slots
            .iter()
            .filter_map(|s| s.conn.as_ref().map(|c| (&s.key, c)))
    }

    /// Heap bytes reserved by this table (index + slab + free list).
    pub fn memory_bytes(&self) -> usize {
        self.index.allocation_size()
            + self.slots.capacity() * std::mem::size_of::<Slot<K>>()
            + self.free.capacity() * 4
    }
}

/// Settings for a core, resolved from the config.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Protocol parameters.
    pub params: Params,
    /// Connections per core (both families together).
    pub capacity: usize,
    /// Echo/http buffers.
    pub buffers: usize,
    /// Bytes per buffer half.
    pub buffer_size: usize,
    /// Fixed HTTP responses.
    pub http: HttpResponses,
    /// Listening ports and their modes.
    pub listeners: Vec<(u16, Mode)>,
    /// Resets a second this core may send from LISTEN (0: never), see
    /// [`listen::ResetLimiter`].
    pub reset_limit: u32,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            params: Params::default(),
            capacity: 65_536,
            buffers: 1024,
            buffer_size: 4096,
            http: HttpResponses::default(),
            listeners: vec![(80, Mode::Discard)],
            reset_limit: 1000,
        }
    }
}

/// Everything of a core except the two tables (so both can be borrowed beside it).
pub struct Shared {
    /// Protocol parameters.
    pub params: Params,
    /// Timer wheel.
    pub wheel: Wheel,
    /// SYN cookie secrets.
    pub jar: CookieJar,
    /// Echo/http buffers.
    pub pool: BufferPool,
    /// HTTP responses.
    pub http: HttpResponses,
    /// Counters.
    pub counters: Counters,
    limiter: ChallengeLimiter,
    /// Budget of the resets LISTEN sends.
    resets: listen::ResetLimiter,
    /// Link paths.
    pub links: LinkTable,
    /// Mode per port + 1 (0 = not listening).
    listeners: Box<[u8; 65536]>,
    capacity: usize,
    scratch: Vec<Segment>,
    fired: Vec<Entry>,
    /// Next slab position the idle sweep visits (v4 positions, then v6).
    sweep_cursor: usize,
    /// When the sweep last ran (monotonic ms).
    sweep_last_ms: u64,
    /// Segments to transmit, drained by the engine after each frame or timer run.
    pub out: Vec<Tx>,
}

/// One core's TCP endpoint: both tables and the shared state.
pub struct Core {
    /// IPv4 connections.
    pub v4: ConnTable<V4Key>,
    /// IPv6 connections.
    pub v6: ConnTable<V6Key>,
    /// Shared state.
    pub sh: Shared,
}

/// One event's [`Ctx`], handed out by [`Shared::emit`] over the core's scratch list (a
/// `Vec` kept for its capacity, so no event allocates). The TCB's handlers take it as a
/// `Ctx` (it derefs to one); when it goes out of scope, the segments they queued move to
/// [`Shared::out`] in order, addressed to the connection, and the scratch list is left
/// empty for the next event. No path can forget the hand-over or put the list back.
struct Emit<'a> {
    ctx: Ctx<'a>,
    /// Where the segments go ([`Shared::out`]).
    tx: &'a mut Vec<Tx>,
    flow: Flow,
    link: Link,
}

impl<'a> std::ops::Deref for Emit<'a> {
    type Target = Ctx<'a>;
    fn deref(&self) -> &Ctx<'a> {
        &self.ctx
    }
}

impl<'a> std::ops::DerefMut for Emit<'a> {
    fn deref_mut(&mut self) -> &mut Ctx<'a> {
        &mut self.ctx
    }
}

impl Drop for Emit<'_> {
    // Inlined: on the hot path it is the loop the call sites used to write (an outlined
    // drop costs ~20 instructions a cookie ACK more, measured with callgrind).
    #[inline(always)]
    fn drop(&mut self) {
        for seg in self.ctx.out.drain(..) {
            self.tx.push(Tx {
                flow: self.flow,
                link: self.link,
                seg,
            });
        }
    }
}

const MODES: [Mode; 4] = [Mode::Discard, Mode::Echo, Mode::Http, Mode::Close];

impl Core {
    /// A core with the given settings and cookie secret, its wheel starting at `clock`.
    pub fn new(cfg: &CoreConfig, jar: CookieJar, clock: &Clock) -> Core {
        let mut listeners = vec![0u8; 65536].into_boxed_slice();
        for &(port, mode) in &cfg.listeners {
            listeners[port as usize] = mode as u8 + 1;
        }
        let listeners: Box<[u8; 65536]> = listeners.try_into().expect("65536 entries");
        Core {
            v4: ConnTable::with_capacity(cfg.capacity),
            v6: ConnTable::with_capacity(cfg.capacity),
            sh: Shared {
                params: cfg.params.clone(),
                wheel: Wheel::for_params(&cfg.params, clock.ms),
                jar,
                pool: BufferPool::new(cfg.buffers, cfg.buffer_size),
                http: cfg.http.clone(),
                counters: Counters::default(),
                limiter: ChallengeLimiter::default(),
                resets: listen::ResetLimiter::new(cfg.reset_limit, clock.ms),
                links: LinkTable::new(cfg.capacity),
                listeners,
                capacity: cfg.capacity,
                scratch: Vec::with_capacity(64),
                fired: Vec::with_capacity(256),
                sweep_cursor: 0,
                sweep_last_ms: clock.ms,
                out: Vec::with_capacity(256),
            },
        }
    }

    /// Keep the XDP offload's occupancy filter current for every connection created or
    /// removed from now on (see [`occupancy`]).
    pub fn set_occupancy(&mut self, occ: Option<occupancy::Occupancy>) {
        self.v4.occupancy = occ.clone();
        self.v6.occupancy = occ;
    }

    /// Connections held (both families).
    pub fn active(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Connections per state (both families), in [`State::ALL`] order.
    pub fn states(&self) -> [usize; State::COUNT] {
        let mut n = [0; State::COUNT];
        for (_, c) in self.v4.iter() {
            n[c.state as usize] += 1;
        }
        for (_, c) in self.v6.iter() {
            n[c.state as usize] += 1;
        }
        n
    }

    /// The stateless LISTEN answer to a SYN (no ACK, RST or FIN) for a listening port whose
    /// 4-tuple has no connection: the cookie SYN-ACK, counted exactly as
    /// [`Core::on_segment`] counts it, for the caller to write itself. `None` (nothing
    /// counted, nothing changed) for every other segment: it must take `on_segment`.
    #[must_use = "the SYN-ACK is counted as sent: write it"]
    pub fn syn_without_state(
        &mut self,
        clock: &Clock,
        flow: &Flow,
        seg: &TcpRepr<'_>,
    ) -> Option<Segment> {
        // Only what LISTEN answers with a SYN-ACK (a SYN without ACK, RST or FIN).
        if !matches!(listen::classify(seg.flags), listen::ListenStep::Syn) {
            return None;
        }
        let mode = self.sh.listener(flow.local_port())?;
        let has_state = match flow {
            Flow::V4 { .. } => self.v4.find(&V4Key::of(flow)?).is_some(),
            Flow::V6 { .. } => self.v6.find(&V6Key::of(flow)?).is_some(),
        };
        if has_state {
            return None;
        }
        Some(syn_answer(&mut self.sh, clock, flow, seg, mode))
    }

    /// The mode of a listening port.
    pub fn listener(&self, port: u16) -> Option<Mode> {
        self.sh.listener(port)
    }

    /// Change the listeners (reload).
    pub fn set_listeners(&mut self, listeners: &[(u16, Mode)]) {
        self.sh.listeners.fill(0);
        for &(port, mode) in listeners {
            self.sh.listeners[port as usize] = mode as u8 + 1;
        }
    }

    /// Handle one received segment. Replies are appended to `self.sh.out`.
    #[inline]
    pub fn on_segment(&mut self, clock: &Clock, flow: &Flow, l2: &L2Path, seg: &TcpRepr<'_>) {
        match flow {
            Flow::V4 { .. } => dispatch(
                &mut self.v4,
                &mut self.v6.len,
                &mut self.sh,
                clock,
                flow,
                l2,
                seg,
            ),
            Flow::V6 { .. } => dispatch(
                &mut self.v6,
                &mut self.v4.len,
                &mut self.sh,
                clock,
                flow,
                l2,
                seg,
            ),
        }
    }

    /// Fire due timers.
    pub fn on_timers(&mut self, clock: &Clock) {
        let (v4, v6, sh) = (&mut self.v4, &mut self.v6, &mut self.sh);
        let mut fired = std::mem::take(&mut sh.fired);
        fired.clear();
        sh.wheel.advance(clock.ms, |e| fired.push(e));
        for e in fired.drain(..) {
            if e.slot & V6Key::FAMILY != 0 {
                fire(v6, sh, clock, e);
            } else {
                fire(v4, sh, clock, e);
            }
        }
        sh.fired = fired;
    }

    /// Visit part of the slabs for idle connections. The whole slab is covered once per
    /// eighth of the idle timeout (at least once a second), in slices proportional to the
    /// time since the last call, so an idle connection is closed at most 12.5% late and
    /// the cost per call stays small and flat.
    pub fn sweep_idle(&mut self, clock: &Clock) {
        let dt = clock.ms.saturating_sub(self.sh.sweep_last_ms);
        let total = self.v4.slots.len() + self.v6.slots.len();
        if dt == 0 || total == 0 {
            return;
        }
        self.sh.sweep_last_ms = clock.ms;
        let limit = match self.sh.params.idle_timeout_ms {
            0 => crate::tcp::conn::FIN_TIMEOUT_MS,
            ms => ms,
        };
        let period = (limit as u64 / 8).max(1000);
        let budget = ((total as u64 * dt).div_ceil(period)).clamp(1, 65_536) as usize;
        for _ in 0..budget.min(total) {
            let pos = self.sh.sweep_cursor % total;
            self.sh.sweep_cursor = pos + 1;
            if pos < self.v4.slots.len() {
                sweep_one(&mut self.v4, &mut self.sh, clock, pos as u32);
            } else {
                sweep_one(
                    &mut self.v6,
                    &mut self.sh,
                    clock,
                    (pos - self.v4.slots.len()) as u32,
                );
            }
        }
    }

    /// Monotonic ms of the earliest timer, if any.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.sh.wheel.next_deadline_ms()
    }

    /// Close every connection from our side (shutdown): FIN after queued data.
    pub fn close_all(&mut self, clock: &Clock) {
        close_all(&mut self.v4, &mut self.sh, clock);
        close_all(&mut self.v6, &mut self.sh, clock);
    }

    /// The bytes of an outgoing payload.
    pub fn payload(&self, p: &Payload) -> &[u8] {
        self.sh.pool.payload(p)
    }
}

impl Shared {
    /// The mode of a listening port.
    #[inline]
    pub fn listener(&self, port: u16) -> Option<Mode> {
        match self.listeners[port as usize] {
            0 => None,
            m => Some(MODES[(m - 1) as usize]),
        }
    }

    /// The handler context for one event of the connection on `flow` via `link`: the
    /// handlers queue into this core's scratch list, and the guard moves what they queued
    /// to [`Shared::out`] when it is dropped (see [`Emit`]).
    fn emit(&mut self, now: Tick, flow: &Flow, link: Link) -> Emit<'_> {
        Emit {
            ctx: Ctx {
                now,
                params: &self.params,
                pool: &mut self.pool,
                http: &self.http,
                counters: &mut self.counters,
                limiter: &mut self.limiter,
                out: &mut self.scratch,
            },
            tx: &mut self.out,
            flow: *flow,
            link,
        }
    }

    /// Queue a reply to the frame being handled.
    fn reply(&mut self, flow: &Flow, seg: Segment) {
        self.out.push(Tx {
            flow: *flow,
            link: Link::Reply,
            seg,
        });
    }

    /// After an event: put the connection's earliest deadline on the wheel if it has none
    /// there yet or needs an earlier one.
    fn reschedule(&mut self, conn: &mut Conn, slot: u32, gen: u32, now_ms: u64) {
        let Some(at) = conn.next_deadline() else {
            return;
        };
        if !conn.scheduled || at.lt(conn.timer_at) {
            self.wheel.schedule(now_ms, Entry { slot, gen, at });
            conn.timer_at = at;
            conn.scheduled = true;
        }
    }

    /// The receive window a SYN-ACK offers for `mode`.
    fn syn_window(&self, mode: Mode) -> u32 {
        syn_window(&self.params, self.pool.size(), mode)
    }
}

/// The receive window a SYN-ACK offers for `mode`: the buffer size (`tcp.buffer_size`) for
/// buffered modes, `params.window` for the others (`listen::on_syn` caps it at 65,535).
/// Public for the XDP offload, which must send the same SYN-ACK.
pub fn syn_window(params: &Params, buffer_size: usize, mode: Mode) -> u32 {
    if mode.buffered() {
        buffer_size as u32
    } else {
        params.window
    }
}

/// Send one segment to its connection or to LISTEN.
fn dispatch<K: Key>(
    table: &mut ConnTable<K>,
    other_len: &mut usize,
    sh: &mut Shared,
    clock: &Clock,
    flow: &Flow,
    l2: &L2Path,
    seg: &TcpRepr<'_>,
) {
    let Some(mode) = sh.listener(flow.local_port()) else {
        sh.counters.drop(DropReason::NotOurs);
        return;
    };
    let Some(key) = K::of(flow) else {
        return;
    };
    let now = clock.tick();
    if let Some(pos) = table.find(&key) {
        let gen = table.slots[pos as usize].gen;
        let Some(conn) = table.slots[pos as usize].conn.as_mut() else {
            return;
        };
        let link = Link::Path(conn.link);
        let syn_only = listen::classify(seg.flags) == listen::ListenStep::Syn;
        if conn.state == State::TimeWait && syn_only {
            if conn.syn_may_reopen(seg) {
                // RFC 9293 §3.10.7.4 (TIME-WAIT) and RFC 6191: a new incarnation may start.
                sh.counters.event(Event::TimeWaitReused);
                discard(table, sh, pos);
                return listen_syn(sh, clock, flow, seg, mode);
            }
            return conn.answer_stale_syn(&mut sh.emit(now, flow, link));
        }
        let verdict = conn.on_segment(&mut sh.emit(now, flow, link), seg);
        match verdict {
            Verdict::Keep => sh.reschedule(conn, pos | K::FAMILY, gen, clock.ms),
            Verdict::Remove(event) => {
                sh.counters.event(event);
                discard(table, sh, pos);
            }
        }
        return;
    }
    // RFC 9293 §3.10.7.2: LISTEN, its checks in order (see `listen::classify`).
    match listen::classify(seg.flags) {
        listen::ListenStep::Syn => listen_syn(sh, clock, flow, seg, mode),
        listen::ListenStep::CookieAck => {
            cookie_ack(table, *other_len, sh, clock, flow, l2, seg, mode, key)
        }
        listen::ListenStep::Reset => {
            sh.counters.drop(DropReason::NoConnection);
            listen_reset(sh, clock, flow, seg);
        }
        listen::ListenStep::Drop(reason) => sh.counters.drop(reason),
    }
}

/// Remove the connection at `pos` and give back what it held: its buffers and its share
/// of the link path.
fn discard<K: Key>(table: &mut ConnTable<K>, sh: &mut Shared, pos: u32) {
    if let Some(mut old) = table.remove(pos) {
        old.release(&mut sh.pool);
        sh.links.release(old.link);
    }
}

/// RFC 9293 §3.10.7.2: "An acceptable reset segment should be formed for any arriving
/// ACK-bearing segment. The RST should be formatted as follows: <SEQ=SEG.ACK><CTL=RST>"
/// (and `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` without ACK), within this core's
/// reset budget; beyond it the segment is only dropped (counted as `rst_limited`).
fn listen_reset(sh: &mut Shared, clock: &Clock, flow: &Flow, seg: &TcpRepr<'_>) {
    if sh.resets.allow(clock.ms) {
        sh.counters.event(Event::RstSent);
        sh.reply(flow, reset_for(seg));
    } else {
        sh.counters.event(Event::RstLimited);
    }
}

/// LISTEN + SYN: answer with a cookie SYN-ACK.
fn listen_syn(sh: &mut Shared, clock: &Clock, flow: &Flow, seg: &TcpRepr<'_>, mode: Mode) {
    let synack = syn_answer(sh, clock, flow, seg, mode);
    sh.reply(flow, synack);
}

/// LISTEN + SYN: the cookie SYN-ACK, counted.
fn syn_answer(
    sh: &mut Shared,
    clock: &Clock,
    flow: &Flow,
    seg: &TcpRepr<'_>,
    mode: Mode,
) -> Segment {
    sh.counters.event(Event::SynReceived);
    let window = sh.syn_window(mode);
    let synack = listen::on_syn(&sh.jar, clock, &sh.params, flow, seg, mode, window);
    sh.counters.event(Event::SynAckSent);
    synack
}

/// LISTEN + ACK: a cookie ACK creates the connection.
#[allow(clippy::too_many_arguments)]
fn cookie_ack<K: Key>(
    table: &mut ConnTable<K>,
    other_len: usize,
    sh: &mut Shared,
    clock: &Clock,
    flow: &Flow,
    l2: &L2Path,
    seg: &TcpRepr<'_>,
    mode: Mode,
    key: K,
) {
    let negotiated = match listen::on_cookie_ack(&sh.jar, clock, &sh.params, flow, seg, mode) {
        Ok(n) => n,
        Err(reason) => {
            sh.counters.drop(reason);
            // The peer holds a connection we do not know (we restarted, or its cookie
            // aged out): reset it rather than leave it retransmitting for minutes.
            // A later segment of a handshake whose first segment was lost is not reset;
            // the budget is looked at first, so a forged-ACK flood costs no extra hashing.
            if matches!(
                reason,
                DropReason::CookieInvalid | DropReason::CookieExpired
            ) {
                if !sh.resets.ready(clock.ms) {
                    sh.counters.event(Event::RstLimited);
                } else if !listen::later_segment_of_handshake(&sh.jar, clock, flow, seg) {
                    listen_reset(sh, clock, flow, seg);
                }
            }
            return;
        }
    };
    sh.counters.event(Event::CookieOk);
    let link = if table.len() + other_len >= sh.capacity {
        Err(DropReason::TableFull)
    } else {
        sh.links.acquire(l2).ok_or(DropReason::LinkTableFull)
    };
    let link = match link {
        Ok(link) => link,
        Err(reason) => {
            sh.counters.drop(reason);
            if sh.params.rst_when_full {
                listen_reset(sh, clock, flow, seg);
            }
            return;
        }
    };
    let now = clock.tick();
    let conn = Conn::established(&negotiated, seg.window, link, now);
    let pos = table.insert(key, conn);
    sh.counters.event(Event::Established);
    let gen = table.slots[pos as usize].gen;
    let Some(conn) = table.slots[pos as usize].conn.as_mut() else {
        return;
    };
    // The completing ACK may carry data or a FIN: process it as in ESTABLISHED.
    let mut verdict = Verdict::Keep;
    {
        let mut ctx = sh.emit(now, flow, Link::Path(link));
        if seg.segment_len() > 0 {
            verdict = conn.on_segment(&mut ctx, seg);
        }
        if mode == Mode::Close && verdict == Verdict::Keep {
            conn.close(&mut ctx);
        }
    }
    match verdict {
        Verdict::Keep => sh.reschedule(conn, pos | K::FAMILY, gen, clock.ms),
        Verdict::Remove(event) => {
            sh.counters.event(event);
            discard(table, sh, pos);
        }
    }
}

/// A wheel entry fired: run the connection's due timers.
fn fire<K: Key>(table: &mut ConnTable<K>, sh: &mut Shared, clock: &Clock, e: Entry) {
    let pos = e.slot & !V6Key::FAMILY;
    let Some((key, conn)) = table.get_gen(pos, e.gen) else {
        return;
    };
    if !conn.scheduled || conn.timer_at != e.at {
        return; // stale: a newer entry stands for this connection
    }
    conn.scheduled = false;
    let flow = key.flow();
    let verdict = conn.on_timer(&mut sh.emit(clock.tick(), &flow, Link::Path(conn.link)));
    match verdict {
        Verdict::Keep => sh.reschedule(conn, e.slot, e.gen, clock.ms),
        Verdict::Remove(event) => {
            sh.counters.event(event);
            discard(table, sh, pos);
        }
    }
}

/// Run one slab position's idle timer if it is due.
fn sweep_one<K: Key>(table: &mut ConnTable<K>, sh: &mut Shared, clock: &Clock, pos: u32) {
    let now = clock.tick();
    let slot = &mut table.slots[pos as usize];
    let gen = slot.gen;
    let flow = slot.key.flow();
    let Some(conn) = slot.conn.as_mut() else {
        return;
    };
    if !conn
        .idle_timer(&sh.params)
        .is_some_and(|t| now.reached(t.at()))
    {
        return;
    }
    let verdict = conn.on_idle(&mut sh.emit(now, &flow, Link::Path(conn.link)));
    match verdict {
        Verdict::Keep => sh.reschedule(conn, pos | K::FAMILY, gen, clock.ms),
        Verdict::Remove(event) => {
            sh.counters.event(event);
            discard(table, sh, pos);
        }
    }
}

fn close_all<K: Key>(table: &mut ConnTable<K>, sh: &mut Shared, clock: &Clock) {
    for pos in 0..table.slots.len() {
        let gen = table.slots[pos].gen;
        let flow = table.slots[pos].key.flow();
        let Some(conn) = table.slots[pos].conn.as_mut() else {
            continue;
        };
        if matches!(conn.state, State::Established | State::CloseWait) {
            conn.close(&mut sh.emit(clock.tick(), &flow, Link::Path(conn.link)));
            sh.reschedule(conn, pos as u32 | K::FAMILY, gen, clock.ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::cookie::CookieJar;
    use crate::wire::{SeqNumber, TcpFlags};

    /// What the handlers of one event queue leaves with the guard: moved to `out` in order,
    /// addressed to the event's flow and link, and the scratch list is empty again (its
    /// capacity kept, so the next event does not allocate).
    #[test]
    fn emit_guard_hands_queued_segments_to_out_on_drop() {
        let clock = Clock::default();
        let mut core = Core::new(&CoreConfig::default(), CookieJar::new([1; 16]), &clock);
        let flow = Flow::V4 {
            local: Ipv4Addr::new(198, 18, 0, 1),
            remote: Ipv4Addr::new(198, 18, 0, 2),
            local_port: 80,
            remote_port: 40_000,
        };
        let capacity = core.sh.scratch.capacity();
        let seg = |n| Segment::control(TcpFlags::ACK, SeqNumber(n), SeqNumber(0), 0);
        {
            let mut ctx = core.sh.emit(clock.tick(), &flow, Link::Path(3));
            ctx.out.push(seg(1));
            ctx.out.push(seg(2));
        }
        let want: Vec<Tx> = [seg(1), seg(2)]
            .into_iter()
            .map(|seg| Tx {
                flow,
                link: Link::Path(3),
                seg,
            })
            .collect();
        assert_eq!(core.sh.out, want);
        assert!(core.sh.scratch.is_empty());
        assert_eq!(core.sh.scratch.capacity(), capacity);
    }
}
