//! `synack gen` flag checks (no root: they fail before anything is opened): a bad value of
//! the live-flood and steady-concurrency flags exits with code 2 and a message that names
//! the flag and the fix.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_synack");

fn gen_fails(args: &[&str], flag: &str) {
    let out = Command::new(BIN)
        .arg("gen")
        .args(["--interface", "lo"])
        .args(args)
        .output()
        .expect("run synack gen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(flag),
        "{args:?}: message names {flag}: {stderr}"
    );
}

#[test]
fn live_flood_needs_an_ipv4_target() {
    gen_fails(&["--target", "[2001:2::1]:80", "--live-flood"], "--target");
}

#[test]
fn live_flood_bounds_are_checked() {
    gen_fails(
        &["--target", "198.18.0.1:80", "--live-flood", "--secs", "0"],
        "--secs",
    );
    gen_fails(
        &[
            "--target",
            "198.18.0.1:80",
            "--live-flood",
            "--packets",
            "0",
        ],
        "--packets",
    );
    gen_fails(
        &["--target", "198.18.0.1:80", "--live-flood", "--burst", "0"],
        "--burst",
    );
}

#[test]
fn live_flood_excludes_the_other_modes() {
    gen_fails(
        &["--target", "198.18.0.1:80", "--live-flood", "--syn-flood"],
        "--syn-flood",
    );
    gen_fails(
        &["--target", "198.18.0.1:80", "--burst", "10"],
        "--live-flood",
    );
}

#[test]
fn steady_concurrency_flags_are_checked() {
    gen_fails(
        &["--target", "198.18.0.1:80", "--concurrency", "0"],
        "--concurrency",
    );
    // Requests every interval need a request, and a request needs an interval.
    gen_fails(
        &[
            "--target",
            "198.18.0.1:80",
            "--concurrency",
            "10",
            "--interval-ms",
            "5",
        ],
        "--interval-ms",
    );
    gen_fails(
        &[
            "--target",
            "198.18.0.1:80",
            "--concurrency",
            "10",
            "--http-get",
            "/",
        ],
        "--interval-ms",
    );
    gen_fails(
        &["--target", "198.18.0.1:80", "--interval-ms", "5"],
        "--concurrency",
    );
}

#[test]
fn numeric_flags_are_checked_against_their_rules() {
    let out = Command::new(BIN)
        .args([
            "gen",
            "--interface",
            "lo",
            "--target",
            "198.18.0.1:80",
            "--frames",
            "1000",
        ])
        .output()
        .expect("run synack gen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "synack: error: --frames: 1000 is out of range 1024..=262144; give a power of two in 1024..=262144, e.g. --frames 32768"
    );
    gen_fails(&["--target", "198.18.0.1:80", "--count", "0"], "--count");
    gen_fails(
        &["--target", "198.18.0.1:80", "--xdp-mode", "fast"],
        "--xdp-mode",
    );
}
