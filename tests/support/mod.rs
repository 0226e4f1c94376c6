//! The in-memory harness of the scenario, property and hardening tests: the test kit
//! [`synack::testkit`] (a [`Net`]: one `Stack` on a virtual clock that checks every
//! frame; [`Peer`]s: client models with the [`Preset`] SYNs; the reply parser; the seeded
//! [`Rng`]; the stateful fuzzer). Nothing leaves the process and no root is needed.
//!
//! Not to be confused with `tests/common`: the root harness of the integration tests
//! (network namespaces, veth pairs, the `synack` binary, real Linux clients).
//! `benches/common` and the `fuzz/` crate use the same kit.

pub use synack::testkit::*;
