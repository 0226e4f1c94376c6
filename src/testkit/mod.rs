//! The in-memory test kit (cargo feature `testkit`): the one harness that `tests/`,
//! `benches/` and the `fuzz/` crate share. Nothing here touches a NIC, reads the real
//! clock or does I/O, so the same input always runs the same way.
//!
//! - [`frame`]: the reply parser, the inverse of [`crate::wire::TcpFrame`]'s writer (one
//!   segment type, [`Seg`]), and [`fix_checksums`] for mutated frames.
//! - [`peer`]: the client model ([`Peer`]) and the preset clients ([`Preset`]: Linux-like,
//!   Windows-like, no options).
//! - [`net`]: one server core behind a [`Stack`](crate::engine::Stack) on a virtual clock
//!   ([`Net`]) with the checks every frame must pass, and the per-state fixtures.
//! - [`rng`]: the crate's one seeded generator ([`Rng`], splitmix64; it lives in
//!   [`crate::rng`] so that every layer may use it, re-exported here).
//! - [`fuzz`]: the one stateful fuzzer ([`Session`]): an interpreter of byte records that
//!   the cargo-fuzz targets feed from libFuzzer, `tests/harden.rs` from [`Rng`] (through
//!   [`fuzz::generate`]) and `tests/tcp_props.rs` from proptest.
//! - [`seeds`]: captured Linux frames and the committed seed corpus.
//!
//! It sits above every other layer (it drives [`crate::engine`]); nothing in the crate
//! imports it. The crate's dev-dependency on itself turns the feature on for tests and
//! benches; `cargo build` leaves it out of the binary.
//!
//! A scenario reads like the packet trace it checks:
//!
//! ```text
//! let r = peer.send(&mut net, ACK | FIN, a, b, b"", peer.opts(&net));
//! one(r).expect(ACK | FIN, b, a + 1);
//! ```

#![forbid(unsafe_code)]

pub mod frame;
pub mod fuzz;
pub mod net;
pub mod peer;
pub mod seeds;

pub use crate::rng;

pub use frame::{fix_checksums, none, one, parse_frame, parse_reply, Reply, Seg};
pub use fuzz::{Mutation, Session};
pub use net::{
    close_wait, closing, config, established, fin_wait_1, fin_wait_2, last_ack, time_wait, Net,
    FRAME, SECRET, SERVER_MAC, SERVER_V4, SERVER_V6, UNIX_START,
};
pub use peer::{Peer, Preset, CLIENT_MAC, CLIENT_V4, CLIENT_V6};
pub use rng::{mix, Rng};

use crate::wire::TcpFlags;

/// FIN, as scenarios write it.
pub const FIN: TcpFlags = TcpFlags::FIN;
/// SYN.
pub const SYN: TcpFlags = TcpFlags::SYN;
/// RST.
pub const RST: TcpFlags = TcpFlags::RST;
/// PSH.
pub const PSH: TcpFlags = TcpFlags::PSH;
/// ACK.
pub const ACK: TcpFlags = TcpFlags::ACK;
