//! The per-core engine: frames in, segments through the core, replies out.
//!
//! - [`stack`]: [`Stack`], one core's frame-level endpoint, no I/O (parse in place, steer,
//!   hand to the [`crate::table::Core`], write replies), set up by a [`StackConfig`].
//! - [`worker`]: [`Worker`], the poll loop around an [`crate::io::Port`], set up by a
//!   [`WorkerConfig`]; [`Control`] messages for reload.
//! - [`handoff`]: the bounded queues that move a frame to the worker owning its flow.
//! - [`capture`]: the copy of received frames for the pcapng writer.
//! - [`published`]: the counters a worker publishes for the stats thread.
//! - [`rss`]: Toeplitz steering; [`syn_rewrite`]: the SYN-ACK written over its SYN.

#![forbid(unsafe_code)]

pub mod capture;
pub mod handoff;
pub mod published;
pub mod rss;
pub mod stack;
pub mod syn_rewrite;
pub mod worker;

pub use capture::{Capture, CaptureMode, Captured};
pub use handoff::{HandoffQueue, HANDOFF_MAX};
pub use published::Published;
pub use stack::{emit_frame, Outcome, Stack, StackConfig, Steering};
pub use worker::{wall_clock, Control, Worker, WorkerConfig};

/// Re-export for users of the engine who build frames.
pub use crate::wire::TcpFlags;
