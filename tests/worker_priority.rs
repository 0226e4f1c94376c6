//! `xdp.worker_priority` on a real endpoint (root, veth lab): the worker thread runs
//! SCHED_FIFO at the configured priority, as the kernel reports it in
//! /proc/PID/task/TID/stat (fields 40 rt_priority and 41 policy); with 0 it keeps the
//! default policy. The stats JSON states the socket's copy mode (`zerocopy: false` on veth).

mod common;

use common::{endpoint_toml, Endpoint, Lab};

/// (rt_priority, policy) of the thread named `name` of process `pid`.
fn thread_sched(pid: u32, name: &str) -> Option<(u32, u32)> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).ok()?;
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the parenthesised comm, which may contain spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field n is f[n - 3].
        return Some((f[40 - 3].parse().ok()?, f[41 - 3].parse().ok()?));
    }
    None
}

#[test]
fn worker_priority_sets_sched_fifo_and_zero_keeps_the_default() {
    if !common::require_root("worker_priority_sets_sched_fifo_and_zero_keeps_the_default") {
        return;
    }
    const SCHED_OTHER: u32 = 0;
    const SCHED_FIFO: u32 = 1;
    for (prio, want) in [(10u32, (10, SCHED_FIFO)), (0, (0, SCHED_OTHER))] {
        let lab = Lab::new("prio", 1);
        let toml = endpoint_toml(&lab, "0", &format!("[xdp]\nworker_priority = {prio}\n"));
        let ep = Endpoint::start(&lab, &toml, &[]);
        let got = thread_sched(ep.pid(), "synack-w0").expect("worker thread synack-w0");
        assert_eq!(got, want, "worker_priority = {prio}: {}", ep.stderr_text());
        let stats = ep.stats();
        assert_eq!(
            stats["workers"][0]["zerocopy"],
            serde_json::Value::Bool(false),
            "veth is copy mode: {stats}"
        );
    }
}
