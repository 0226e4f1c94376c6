//! Root test of `synack lab --nodes 2`: two synack nodes behind a router namespace with a
//! resilient ECMP nexthop group (kernel multipath routing, L4 hash), one cookie secret.
//! The lab's three checks — even spread, route churn without loss, node loss confined
//! to the stopped node — must pass and be printed, and its namespaces must be gone
//! afterwards, also when it is interrupted.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

/// Bound of one lab run (it takes about 30 s with 1000 connections per phase here).
const LAB_TIMEOUT: Duration = Duration::from_secs(240);

/// Start `synack lab ARGS`; returns its pid and output (None on timeout).
fn lab(args: &[&str], interrupt_after: Option<Duration>) -> (u32, Option<std::process::Output>) {
    let child = Command::new(env!("CARGO_BIN_EXE_synack"))
        .arg("lab")
        .args(args)
        .args(common::syn_offload_flags())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn synack lab");
    let pid = child.id();
    if let Some(after) = interrupt_after {
        std::thread::sleep(after);
        common::signal(pid, "INT");
    }
    (pid, common::wait_with_timeout(child, LAB_TIMEOUT))
}

/// The line of `out` that starts with `prefix` (after trimming).
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

#[test]
fn ecmp_lab_two_nodes_spread_churn_and_node_loss() {
    if !common::require_root("ecmp_lab_two_nodes_spread_churn_and_node_loss") {
        return;
    }
    let (pid, out) = lab(&["--nodes", "2", "--connections", "600"], None);
    let out = out.expect("synack lab --nodes 2 timed out");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    // Spread: both the Linux clients and synack gen, each node within ±15 % of 1/2.
    assert!(
        line(&stdout, "spread, 600 Linux client connections").contains("(0 failed)"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "spread, synack gen").contains("600 completed, 0 failed"),
        "{stdout}"
    );
    let verdicts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("each node within ±15 % of 50.0 %"))
        .collect();
    assert_eq!(verdicts.len(), 2, "{stdout}");
    assert!(verdicts.iter().all(|l| l.ends_with(": yes")), "{stdout}");
    // Route churn: with one secret no connection without data fails; the control with a
    // different secret per node is printed beside it.
    let churn = line(&stdout, "route churn, one cookie secret:");
    assert!(
        churn.contains("without data 600 ok, 0 failed (0.0 %)"),
        "{stdout}"
    );
    assert!(churn.contains("with data"), "{stdout}");
    let control = line(
        &stdout,
        "route churn, a different secret per node (control):",
    );
    assert!(control.contains("without data") && control.contains("with data"));
    // Node loss: the kept node's held connections all still answer; the new ones too.
    assert!(
        line(&stdout, "node0 (kept):").ends_with(" 0 failed"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "node1 (stopped):").contains("failed"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "then 600 new connections:").contains("600 ok, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("synack lab --nodes 2: OK"), "{stdout}");
    common::assert_lab_cleaned_up(pid);
}

/// SIGINT in the middle of a run: the lab fails (non-zero, "interrupted") and still
/// removes its namespaces, processes and files.
#[test]
fn ecmp_lab_cleans_up_when_interrupted() {
    if !common::require_root("ecmp_lab_cleans_up_when_interrupted") {
        return;
    }
    let (pid, out) = lab(
        &["--nodes", "2", "--connections", "400"],
        Some(Duration::from_secs(4)),
    );
    let out = out.expect("the interrupted lab did not exit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    common::assert_lab_cleaned_up(pid);
}
