//! `stack`: the input is a sequence of records (raw frames, clock steps, `close_all`, and
//! templates: valid segments of a modelled client built from a few fuzzer-chosen fields,
//! optionally mangled; see `synack::testkit::fuzz::tag` and `kind`) run against a fresh
//! server. The same interpreter runs `tests/harden.rs` (records from a seeded RNG) and a
//! property test of `tests/tcp_props.rs`. Checks: every frame as in `frames`, and at the
//! end, after `close_all` and 200 s of timers, no connection, pool buffer or timer entry
//! is left.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    synack::testkit::Session::run(data);
});
