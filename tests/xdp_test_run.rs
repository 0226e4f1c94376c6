//! The XDP program run through `BPF_PROG_TEST_RUN` on known frames (root, no NIC): what it
//! steers to the AF_XDP sockets and what it leaves to the kernel, with its counters.

mod common;

use std::net::Ipv4Addr;

use synack::io::bpf::{Filter, XdpProgram};
use synack::lab::syn_frame;

const XDP_PASS: u32 = 2;

fn program() -> XdpProgram {
    let filter = Filter {
        ipv4: vec![Ipv4Addr::new(198, 18, 0, 1)],
        ipv6: vec![],
        ports: vec![80],
        standalone: false,
    };
    XdpProgram::load_detached(&filter).expect("load the XDP program (root)")
}

fn syn_to(port: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let len = syn_frame(
        &mut buf,
        [2, 0, 0, 0, 0, 2],
        [2, 0, 0, 0, 0, 1],
        Ipv4Addr::new(198, 18, 0, 2),
        Ipv4Addr::new(198, 18, 0, 1),
        40000,
        port,
        1234,
    );
    buf.truncate(len);
    buf
}

/// A SYN to one of our ports is ours; with no AF_XDP socket on queue 0 the redirect fails
/// and the frame goes to the kernel, counted as such. A SYN to another port is passed
/// without being counted as ours. The frame comes back unchanged either way.
#[test]
fn test_run_steers_our_ports_and_passes_the_rest() {
    if !common::require_root("test_run_steers_our_ports_and_passes_the_rest") {
        return;
    }
    let mut prog = program();
    for (port, redirect_failed) in [(80u16, 1u64), (81, 0)] {
        let frame = syn_to(port);
        let before = prog.counters().unwrap();
        let out = prog.test_run(&common::test_run_input(&frame, 0)).unwrap();
        let after = prog.counters().unwrap();
        assert_eq!(out.retval, XDP_PASS, "port {port}");
        assert_eq!(out.frame, frame, "port {port}: frame unchanged");
        assert_eq!(after.passed - before.passed, 1, "port {port}");
        assert_eq!(
            after.redirect_failed - before.redirect_failed,
            redirect_failed,
            "port {port}"
        );
    }
}

/// `repeat` runs the program that many times in one call.
#[test]
fn test_run_repeat_counts_every_run() {
    if !common::require_root("test_run_repeat_counts_every_run") {
        return;
    }
    let mut prog = program();
    let frame = syn_to(81);
    let before = prog.counters().unwrap().passed;
    let out = prog
        .test_run(&common::test_run_input(&frame, 1000))
        .unwrap();
    assert_eq!(out.retval, XDP_PASS);
    assert_eq!(prog.counters().unwrap().passed - before, 1000);
}
