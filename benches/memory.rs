//! Bytes per connection: fill one core with 1 M IPv4 connections by driving cookie ACKs
//! through `Stack::handle`, then report what the table says it reserved, an estimate of
//! the timer wheel, and the growth of the resident set (`/proc/self/statm`).
//!
//! Not a criterion bench (criterion measures time): a plain `main`, run by
//! `cargo bench --bench memory`. Prints `key: value` lines that `scripts/bench.sh` picks up.
//! Each client's SYN-ACK is produced by the same stack and its ACK built on the fly, so no
//! precomputed frames inflate the resident set being measured.

mod common;

use std::mem::size_of;
use synack::counters::Event;
use synack::tcp::conn::Conn;
use synack::tcp::timer::Entry;

fn main() {
    // `cargo bench` passes `--bench`; any numeric argument overrides the count.
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1 << 20);
    let before_stack = common::rss_bytes();
    let mut stack = common::stack(n, |_| {});
    let after_stack = common::rss_bytes();
    let clk = common::clock(0);
    for i in 0..n as u32 {
        let (ack, _, _) = common::cookie_ack(&mut stack, i, false);
        let reply = common::exchange(&mut stack, &clk, &ack);
        assert!(reply.is_none(), "client {i}: the cookie ACK was answered");
    }
    let after_fill = common::rss_bytes();
    let c = stack.counters();
    assert_eq!(
        c.get(Event::Established),
        n as u64,
        "not every ACK established"
    );
    assert_eq!(c.total_drops(), 0, "frames dropped while filling");
    assert_eq!(stack.core.active(), n);

    let v4 = stack.core.v4.memory_bytes();
    let v6 = stack.core.v6.memory_bytes();
    let wheel = &stack.core.sh.wheel;
    // Lower bound: the entries themselves and the slot headers; the per-slot Vecs' spare
    // capacity is not visible from outside (`Wheel` has no `memory_bytes`).
    let wheel_bytes = wheel.len() * size_of::<Entry>() + wheel.slots() * size_of::<Vec<Entry>>();
    let per_conn = (v4 + wheel_bytes) as f64 / n as f64;
    let rss_growth = after_fill.saturating_sub(after_stack);
    println!("connections: {n}");
    println!("size_of_conn: {}", size_of::<Conn>());
    println!("size_of_wheel_entry: {}", size_of::<Entry>());
    println!("v4_table_bytes: {v4}");
    println!("v4_table_bytes_per_conn: {:.1}", v4 as f64 / n as f64);
    println!("v6_table_reserved_bytes: {v6}");
    println!("wheel_entries: {}", wheel.len());
    println!("wheel_slots: {}", wheel.slots());
    println!("wheel_bytes_lower_bound: {wheel_bytes}");
    println!("bytes_per_conn_table_plus_wheel: {per_conn:.1}");
    println!(
        "rss_stack_setup_bytes: {}",
        after_stack.saturating_sub(before_stack)
    );
    println!("rss_fill_growth_bytes: {rss_growth}");
    println!("rss_bytes_per_conn: {:.1}", rss_growth as f64 / n as f64);
    println!(
        "target_96_bytes_met: {}",
        per_conn <= 96.0 && (rss_growth as f64 / n as f64) <= 96.0
    );
}
