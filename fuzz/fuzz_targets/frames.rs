//! `frames`: the input is one frame. Two long-lived standalone servers (one per fuzzing
//! process) handle it: one with checksum verification off, so the fuzzer reaches the IP,
//! TCP, cookie and state-machine layers without computing checksums, and one with it on,
//! as deployed. Checks (see `synack_fuzz::Server::inject`): no panic, at most one drop
//! counter per frame, every reply a valid frame from one of our addresses. Should a frame
//! ever open a connection (a forged cookie), it is closed and drained at once, and nothing
//! may leak, so every input starts from an empty table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use synack_fuzz::Server;

thread_local! {
    static SERVERS: RefCell<[Server; 2]> = RefCell::new([Server::new(false), Server::new(true)]);
}

fuzz_target!(|data: &[u8]| {
    SERVERS.with(|servers| {
        let mut sent = Vec::new();
        for server in servers.borrow_mut().iter_mut() {
            sent.clear();
            server.inject(data, &mut sent);
            if server.stack.core.active() > 0 {
                server.drain_and_check();
            }
        }
    });
});
