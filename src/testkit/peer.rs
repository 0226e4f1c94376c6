//! The client side of every in-memory scenario: the preset clients ([`Preset`]) and the
//! client model ([`Peer`]) that builds real frames with [`TcpFrame`] and learns from the
//! server's replies (RFC 9293 §3.3.1 send and receive variables, RFC 7323 TS.Recent).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::frame::Seg;
use super::net::{Net, SERVER_MAC, SERVER_V4, SERVER_V6};
use super::{one, ACK, FIN, RST, SYN};
use crate::tcp::Flow;
use crate::wire::{SeqNumber, TcpFlags, TcpFrame, TcpOptions, TcpRepr};

/// The clients' MAC.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The clients' IPv4 address (RFC 2544 benchmarking range).
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The clients' IPv6 address (RFC 5180 benchmarking range).
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);

/// What a client's SYN offers, as real stacks send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Linux (`tcp_connect`, default sysctls): MSS 1460, SACK permitted, timestamps,
    /// window scale 7, window 64240.
    Linux,
    /// Windows 10/11: MSS 1460, window scale 8, SACK permitted, no timestamps
    /// (`Tcp1323Opts` default), window 64240.
    Windows,
    /// No option at all (RFC 9293 §3.7.1: the peer must assume MSS 536).
    Bare,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 3] = [Preset::Linux, Preset::Windows, Preset::Bare];

    /// The options of this client's SYN; `tsval` is its TSval where it sends timestamps.
    pub fn syn_options(self, tsval: u32) -> TcpOptions {
        match self {
            Preset::Linux => TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((tsval, 0)),
                ..TcpOptions::default()
            },
            Preset::Windows => TcpOptions {
                mss: Some(1460),
                window_scale: Some(8),
                sack_permitted: true,
                ..TcpOptions::default()
            },
            Preset::Bare => TcpOptions::default(),
        }
    }

    /// The window field of the SYN (never scaled, RFC 7323 §2.2).
    pub fn syn_window(self) -> u16 {
        match self {
            Preset::Linux | Preset::Windows => 64_240,
            Preset::Bare => 65_535,
        }
    }

    /// The window field after the handshake: the SYN's window in the client's scale,
    /// rounded up (Linux advertises 502 = ⌈64240 / 2^7⌉).
    pub fn window(self) -> u16 {
        let shift = self.syn_options(0).window_scale.unwrap_or(0);
        self.syn_window().div_ceil(1 << shift)
    }
}

/// A client: its addresses and a minimal model of its side of the connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's MAC.
    pub mac: [u8; 6],
    /// The MAC it sends to.
    pub server_mac: [u8; 6],
    /// The client's address.
    pub addr: IpAddr,
    /// The client's port.
    pub port: u16,
    /// The server's address.
    pub server: IpAddr,
    /// The server's port.
    pub server_port: u16,
    /// Options the SYN offers (timestamps are filled in from the clock when `Some`).
    pub syn_options: TcpOptions,
    /// The client's ISN.
    pub iss: u32,
    /// The next sequence number the client sends.
    pub snd_nxt: u32,
    /// The next sequence number the client expects (after the handshake).
    pub rcv_nxt: u32,
    /// The server's ISN (the cookie), learnt from the SYN-ACK.
    pub irs: u32,
    /// Whether timestamps were negotiated.
    pub ts: bool,
    /// Offset of the client's TSval clock from the virtual ms clock.
    pub ts_offset: u32,
    /// The server's latest TSval (the client's TS.Recent).
    pub ts_recent: u32,
    /// The window the client advertises (unscaled field).
    pub window: u16,
}

impl Peer {
    /// A [`Preset::Linux`] IPv4 client 198.18.0.1:`port` → 198.18.0.2:80.
    pub fn v4(port: u16) -> Peer {
        Peer {
            mac: CLIENT_MAC,
            server_mac: SERVER_MAC,
            addr: CLIENT_V4.into(),
            port,
            server: SERVER_V4.into(),
            server_port: 80,
            syn_options: Preset::Linux.syn_options(0),
            iss: 1_000_000u32.wrapping_mul(port as u32).wrapping_add(12_345),
            snd_nxt: 0,
            rcv_nxt: 0,
            irs: 0,
            ts: false,
            ts_offset: 7_000,
            ts_recent: 0,
            window: Preset::Linux.window(),
        }
    }

    /// The same client on IPv6, 2001:2::1 → 2001:2::2.
    pub fn v6(port: u16) -> Peer {
        Peer {
            addr: CLIENT_V6.into(),
            server: SERVER_V6.into(),
            ..Peer::v4(port)
        }
    }

    /// This client offering `preset`'s SYN options (its window is left as it is).
    pub fn preset(mut self, preset: Preset) -> Peer {
        self.syn_options = preset.syn_options(0);
        self
    }

    /// A client without any option in its SYN (no MSS, WS, SACK or timestamps).
    pub fn bare(self) -> Peer {
        self.preset(Preset::Bare)
    }

    /// The flow from the server's side.
    pub fn flow(&self) -> Flow {
        match (self.server, self.addr) {
            (IpAddr::V4(local), IpAddr::V4(remote)) => Flow::V4 {
                local,
                remote,
                local_port: self.server_port,
                remote_port: self.port,
            },
            (IpAddr::V6(local), IpAddr::V6(remote)) => Flow::V6 {
                local,
                remote,
                local_port: self.server_port,
                remote_port: self.port,
            },
            _ => panic!("mixed families"),
        }
    }

    /// The client's TSval now.
    pub fn tsval(&self, net: &Net) -> u32 {
        (net.clock.ms as u32).wrapping_add(self.ts_offset)
    }

    /// Options for a segment after the handshake: timestamps if negotiated.
    pub fn opts(&self, net: &Net) -> TcpOptions {
        TcpOptions {
            timestamps: self.ts.then(|| (self.tsval(net), self.ts_recent)),
            ..TcpOptions::default()
        }
    }

    /// The options of a SYN sent now: [`Self::syn_options`] with the TSval of the clock.
    pub fn syn_opts(&self, net: &Net) -> TcpOptions {
        let mut o = self.syn_options;
        if o.timestamps.is_some() {
            o.timestamps = Some((self.tsval(net), 0));
        }
        o
    }

    /// Build the frame of one segment from this client (SEG.ACK is 0 without ACK).
    pub fn frame(
        &self,
        flags: TcpFlags,
        seq: u32,
        ack: u32,
        payload: &[u8],
        options: TcpOptions,
    ) -> Vec<u8> {
        TcpFrame {
            src_mac: self.mac,
            dst_mac: self.server_mac,
            vlan: None,
            src: self.addr,
            dst: self.server,
            ttl: 64,
            tcp: TcpRepr {
                src_port: self.port,
                dst_port: self.server_port,
                seq: SeqNumber(seq),
                ack: SeqNumber(if flags.contains(ACK) { ack } else { 0 }),
                flags,
                window: self.window,
                options,
                payload,
            },
        }
        .to_vec()
        .expect("client and server share the family")
    }

    /// Send one segment exactly as given; returns the server's replies. The client learns
    /// the server's TSval from them (its TS.Recent), nothing else.
    pub fn send(
        &mut self,
        net: &mut Net,
        flags: TcpFlags,
        seq: u32,
        ack: u32,
        payload: &[u8],
        options: TcpOptions,
    ) -> Vec<Seg> {
        let frame = self.frame(flags, seq, ack, payload, options);
        let out = net.inject(&frame);
        for s in &out {
            if let (true, Some(v)) = (self.is_for_me(s), s.tsval()) {
                self.ts_recent = v;
            }
        }
        out
    }

    /// Whether the server sent `s` to this client on this connection.
    pub fn is_for_me(&self, s: &Seg) -> bool {
        s.dst == self.addr && s.dst_port == self.port && s.src_port == self.server_port
    }

    /// Send the next segment of the client's stream (SEQ=snd_nxt, ACK=rcv_nxt, timestamps
    /// if negotiated) and advance snd_nxt by its length.
    pub fn tx(&mut self, net: &mut Net, flags: TcpFlags, payload: &[u8]) -> Vec<Seg> {
        let opts = self.opts(net);
        let (seq, ack) = (self.snd_nxt, self.rcv_nxt);
        let out = self.send(net, flags, seq, ack, payload, opts);
        self.snd_nxt = seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags.contains(SYN)) + u32::from(flags.contains(FIN)));
        out
    }

    /// Learn from the server's segments to this client: TS.Recent, the SYN-ACK of our
    /// latest SYN (only a SYN of ours is answered by one; IRS, RCV.NXT = IRS + 1, SND.NXT = ISS + 1, timestamps negotiated when
    /// both sides sent them, RFC 7323 §3.2), and in-order data and FIN (RCV.NXT advances
    /// over them). Segments for other clients are ignored.
    pub fn absorb(&mut self, segs: &[Seg]) {
        for s in segs {
            if !self.is_for_me(s) {
                continue;
            }
            if let Some(v) = s.tsval() {
                self.ts_recent = v;
            }
            if s.flags.contains(SYN) {
                if s.ack == self.iss.wrapping_add(1) {
                    self.irs = s.seq;
                    self.snd_nxt = s.ack;
                    self.rcv_nxt = s.seq.wrapping_add(1);
                    self.ts = self.syn_options.timestamps.is_some() && s.tsval().is_some();
                }
            } else if s.seq == self.rcv_nxt && !s.flags.contains(RST) {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(s.len());
            }
        }
    }

    /// Send the SYN; returns the SYN-ACK (asserting its SEQ/ACK shape) and learns from it.
    #[track_caller]
    pub fn syn(&mut self, net: &mut Net) -> Seg {
        let o = self.syn_opts(net);
        let r = one(self.send(net, SYN, self.iss, 0, b"", o));
        r.expect(SYN | ACK, r.seq, self.iss.wrapping_add(1));
        self.absorb(std::slice::from_ref(&r));
        r
    }

    /// Full handshake (SYN, SYN-ACK, ACK); returns the SYN-ACK and what answered the ACK.
    /// Asserts the connection is ESTABLISHED (or further, for `close` mode).
    #[track_caller]
    pub fn connect(&mut self, net: &mut Net) -> (Seg, Vec<Seg>) {
        let synack = self.syn(net);
        let out = self.tx(net, ACK, b"");
        assert!(net.state(self).is_some(), "no TCB after the cookie ACK");
        (synack, out)
    }
}
