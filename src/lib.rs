//! synack: a kernel-bypass TCP endpoint.
//!
//! ```text
//!  io (AF_XDP rings | in-memory)  ──frames──▶  engine (per-core poll loop, RSS steering)
//!                                                 │ parsed segments, `now`
//!  wire (zero-copy views, Repr) ◀── tcp (cookies, state machine, timers; sans-IO) ◀── table (per-core TCBs)
//! ```
//!
//! Layers, lowest first: [`counters`], [`forms`] (the one text form of each setting's
//! value), [`rng`] (the one seeded generator) and [`wire`] know nothing of the others; [`tcp`] is
//! sans-IO (time is passed in, never read); [`table`] holds one core's connections and
//! timer wheel; [`engine`] runs the poll loop over an [`io::Port`]. Only [`io`] contains
//! `unsafe`. [`config`] and [`app`] are the control path (setup, CLI, stats, lab).
//! `testkit` (cargo feature `testkit`, on for tests and benches) is the in-memory test
//! kit on top of everything: harness, reply parser, preset clients, seeded RNG, fuzzer.

pub mod app;
pub mod config;
pub mod counters;
pub mod engine;
pub mod forms;
pub mod gen;
pub mod io;
pub mod lab;
pub mod ops;
pub mod rng;
pub mod table;
pub mod tcp;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod wire;
