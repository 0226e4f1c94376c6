#!/usr/bin/env bash
# Run every benchmark and print a markdown table of medians for the README.
#
#   scripts/bench.sh            # criterion hot path, memory, 1-vs-2-worker scaling
#   scripts/bench.sh --quick    # shorter criterion warm-up/measurement (noisier)
#   scripts/bench.sh --summary  # only print the table from the last run's results
#
# Uses $CARGO_TARGET_DIR (default: target). Runs the benches one after another (never two
# cargo commands at once). No network, no privileges: everything runs in memory.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
out="$CARGO_TARGET_DIR/bench-results"
mkdir -p "$out"
scripts/deps.sh # clang and libbpf-dev build the XDP object; python3 prints the table

mode="${1:-full}"
criterion_args=()
if [[ "$mode" == "--quick" ]]; then
    criterion_args=(--warm-up-time 1 --measurement-time 2)
fi

if [[ "$mode" != "--summary" ]]; then
    cargo bench --bench hotpath -- "${criterion_args[@]}" 2>&1 | tee "$out/hotpath.txt"
    cargo bench --bench memory 2>&1 | tee "$out/memory.txt"
    cargo bench --bench scaling 2>&1 | tee "$out/scaling.txt"
fi

python3 - "$CARGO_TARGET_DIR/criterion" "$out" <<'PY'
import json, os, re, subprocess, sys

crit, out = sys.argv[1], sys.argv[2]

def kv(path):
    d = {}
    try:
        for line in open(path):
            m = re.match(r"^([a-z0-9_]+): (.*)$", line.strip())
            if m:
                d[m.group(1)] = m.group(2)
    except FileNotFoundError:
        pass
    return d

def median(group, bench):
    base = os.path.join(crit, group, bench, "new")
    try:
        est = json.load(open(os.path.join(base, "estimates.json")))
        meta = json.load(open(os.path.join(base, "benchmark.json")))
    except FileNotFoundError:
        return None, None
    elems = (meta.get("throughput") or {}).get("Elements") or 1
    return est["median"]["point_estimate"], elems

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
print()
print(f"Machine: {cpu}, nproc {nproc} (shared), {rustc}; in-memory, one core unless noted.")
print()
print("| bench | median / iter | per element | rate | target |")
print("|---|---:|---:|---:|---|")

rows = [
    ("parts", "rx_copy_74", "copy of a 74-byte frame into the rx buffer", None),
    ("parts", "wire_parse_syn", "Eth+IPv4+TCP Repr parse of the SYN, checksums verified", None),
    ("parts", "checksum_40", "checksum of a 40-byte segment + pseudo-header", None),
    ("parts", "cookie_generate", "SYN cookie generate (2× SipHash-2-4)", None),
    ("parts", "cookie_check", "SYN cookie check (2× SipHash-2-4)", None),
    ("parts", "toeplitz_v4", "Toeplitz hash, IPv4 4-tuple", None),
    ("syn_to_synack", "v4_74B", "SYN → SYN-ACK (Stack::handle)", ("ns", 40)),
    ("cookie_ack_to_established", "64K_54B", "cookie ACK → ESTABLISHED, 64K table, bare ACK", None),
    ("cookie_ack_to_established", "64K_66B", "cookie ACK → ESTABLISHED, 64K table, TS ACK", None),
    ("cookie_ack_to_established", "1M_54B", "cookie ACK → ESTABLISHED, 1M table", None),
    ("lifecycle", "ts_idle_off", "connection SYN/ACK/FIN/ACK, TS, idle timer off", ("conn", 5e6)),
    ("lifecycle", "ts_idle_300s", "connection, TS, idle timer 300 s", ("conn", 5e6)),
    ("lifecycle", "bare_idle_off", "connection, bare ACKs, idle timer off", ("conn", 5e6)),
    ("table", "lookup_hit_1M", "ConnTable find, hit, 1M entries", None),
    ("table", "lookup_miss_1M", "ConnTable find, miss, 1M entries", None),
    ("table", "insert_1M", "ConnTable insert at ~1M", None),
    ("table", "remove_1M", "ConnTable remove at ~1M", None),
    ("pipeline", "port_only", "MemoryPort inject+recv+release, batch 64", None),
    ("pipeline", "syn_flood", "Worker::poll, SYN flood, batch 64", None),
    ("pipeline", "lifecycle_ts_idle_off", "Worker::poll, lifecycles, batch 64", None),
]

def fmt_ns(ns):
    return f"{ns/1000:.2f} µs" if ns >= 1000 else f"{ns:.1f} ns"

for group, bench, label, target in rows:
    ns, elems = median(group, bench)
    if ns is None:
        continue
    per = ns / elems
    if group == "lifecycle":
        rate = f"{1e3/ns:.2f} M conn/s"
    else:
        rate = f"{1e3/per:.1f} M/s"
    t = ""
    if target and target[0] == "ns":
        t = f"≤ {target[1]} ns: {'met' if per <= target[1] else 'NOT met'}"
    elif target and target[0] == "conn":
        t = f"≥ 5 M conn/s: {'met' if 1e9/ns >= target[1] else 'NOT met'}"
    print(f"| `{group}/{bench}` {label} | {fmt_ns(ns)} | {fmt_ns(per)} | {rate} | {t} |")

m = kv(os.path.join(out, "memory.txt"))
if m:
    b = float(m["bytes_per_conn_table_plus_wheel"]); r = float(m["rss_bytes_per_conn"])
    ok = "met" if max(b, r) <= 96 else "NOT met"
    print(f"| `memory` bytes/connection, {int(m['connections'])//1024}K IPv4 (table + wheel) | | {b:.1f} B | | ≤ 96 B: {ok} |")
    print(f"| `memory` RSS growth/connection (statm) | | {r:.1f} B | | |")
s = kv(os.path.join(out, "scaling.txt"))
for name, label in [("syn_steered", "SYN flood, RSS-steered"), ("syn_spread", "SYN flood, half handed off"), ("lifecycle_steered", "lifecycles, RSS-steered")]:
    if f"scaling_{name}_ratio" in s:
        one, two, ratio = s[f"scaling_{name}_1w_mfps"], s[f"scaling_{name}_2w_mfps"], float(s[f"scaling_{name}_ratio"])
        t = f"≥ 1.9×: {'met' if ratio >= 1.9 else 'NOT met'}" if name != "syn_spread" else ""
        print(f"| `scaling` {label}: 1 → 2 workers | | | {one} → {two} M frames/s ({ratio:.2f}×) | {t} |")
PY
