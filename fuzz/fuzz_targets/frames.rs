//! `frames`: the input is one frame, handed to two long-lived standalone servers (one per
//! fuzzing process), checksum verification off and on; see `synack::testkit::fuzz::Frames`.
//! Checks (`synack::testkit::Net::inject`): no panic, at most one drop counter per frame,
//! every reply a valid frame from one of our addresses; a connection a frame opens is
//! drained at once and nothing may leak.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use synack::testkit::fuzz::Frames;

thread_local! {
    static FRAMES: RefCell<Frames> = RefCell::new(Frames::default());
}

fuzz_target!(|data: &[u8]| {
    FRAMES.with(|f| f.borrow_mut().run(data));
});
