#!/usr/bin/env bash
# scripts/bench-lab.sh: synack against the Linux kernel on the same veth lab, in one run.
#
#   sudo scripts/bench-lab.sh [--out DIR] [--secs S] [--flood-packets N] [--connections N]
#                             [--wrk-connections N] [--bin PATH]
#                             [--server-xdp-mode generic|native] [--gen-xdp-mode generic|native]
#
# Two namespaces joined by one veth pair (single queue). CPU 0 is the server's: the synack
# worker, or the kernel's TCP work (RPS on the server veth) plus the kernel server process.
# CPU 1 is the generator's: trafgen, `synack gen` (with RPS on the client veth so its
# receive work runs there too) and wrk. XDP is attached in generic mode on both ends by
# default, so the XDP program and the AF_XDP copy run on the RPS CPU of each side;
# `--server-xdp-mode native` (or `--gen-xdp-mode native`) attaches in native mode and
# switches that veth to threaded NAPI with its thread pinned to the side's CPU.
#
# For each server (kernel: tcp_syncookies=2 and scripts/gen/kserver.c; synack run), with
# the same generator:
#   (a) SYN flood answered per second: trafgen, then `synack gen --syn-flood`;
#   (b) completed connections per second: `synack gen` (connect, client closes first);
#   (c) HTTP requests per second: wrk (keep-alive) against `http` mode / kserver http.
# Rates are counted by the server over a window in the middle of each run (kernel:
# TcpExt SyncookiesSent and Tcp PassiveOpens; synack: its stats JSON), and the cost over
# the same window: CPU 0's busy share from /proc/stat for both, and for synack also the
# worker's own busy fraction. capacity = rate ÷ busy share (answers per busy core-second).
#
# Everything is bounded: each load runs at most --secs seconds and --flood-packets packets
# or --connections connections. Traffic stays in the two namespaces (198.18.0.0/24, source
# range 198.19.0.0/24). Namespaces and processes (by PID) are removed on exit, also on
# failure or Ctrl-C. Results: DIR/results.json, DIR/table.md, DIR/plot.png
# (default DIR: ./lab-out/bench-<UTC date>).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARGS="$*"
SECS=6
FLOOD_PKTS=""
CONNS=3000000
WRK_CONNS=50
SERVER_XDP=generic
GEN_XDP=generic
OUT=""
BIN=""

die() { echo "bench-lab: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        --flood-packets) FLOOD_PKTS=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --wrk-connections) WRK_CONNS=$2; shift 2 ;;
        --bin) BIN=$2; shift 2 ;;
        --server-xdp-mode) SERVER_XDP=$2; shift 2 ;;
        --gen-xdp-mode) GEN_XDP=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$SECS" =~ ^[0-9]+$ ]] && [ "$SECS" -ge 4 ] && [ "$SECS" -le 60 ] || die "--secs: give 4..60"
# Enough for the fastest flood to last the whole run: a flood that ends early leaves the
# counting window half idle.
FLOOD_PKTS=${FLOOD_PKTS:-$((SECS * 2000000))}
[[ "$FLOOD_PKTS" =~ ^[0-9]+$ ]] && [ "$FLOOD_PKTS" -le 50000000 ] || die "--flood-packets: at most 50000000"
[[ "$CONNS" =~ ^[0-9]+$ ]] && [ "$CONNS" -le 16000000 ] || die "--connections: at most 16000000"
for m in "$SERVER_XDP" "$GEN_XDP"; do
    [ "$m" = generic ] || [ "$m" = native ] || die "--server-xdp-mode/--gen-xdp-mode: give generic or native"
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, XDP, AF_XDP)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, generator on CPU 1)"

# This script and what it starts (the snapshots, synack run's stats thread) stay on CPU 1:
# on CPU 0 they would be starved by the server's softirq work and stretch the windows.
# Servers are placed on CPU 0 (taskset for kserver, synack's own worker pinning).
taskset -pc 1 $$ >/dev/null
# --- packages, installed only when missing -------------------------------------------
"$ROOT/scripts/deps.sh" bench plot
PLOT=gnuplot
python3 -c 'import matplotlib' 2>/dev/null && PLOT=matplotlib

# --- the lab ---------------------------------------------------------------------------
. "$ROOT/scripts/lab-lib.sh"
lab_init sb$$ bench
lab_out_dir "lab-out/bench-$(date -u +%Y%m%d-%H%M%S)"
lab_bin "$ROOT" || exit 1
lab_build_kserver "$ROOT" || exit 1
SOURCES=198.19.0.0/24

lab_up
# RPS: the server veth's receive work on CPU 0, the client veth's on CPU 1.
sx sh -c "echo 1 > /sys/class/net/$VS/queues/rx-0/rps_cpus"
cx sh -c "echo 2 > /sys/class/net/$VC/queues/rx-0/rps_cpus"
# Native XDP on veth runs in the receiving veth's NAPI, by default on the CPU that sent the
# frame; threaded NAPI with the thread pinned (lab_pin, once XDP is attached: veth has no
# NAPI before) keeps that work on the receiving side's CPU.
# The kernel server routes the generator's source range back to the client.
ip -n "$SNS" route add $SOURCES via $CLIENT
sx sysctl -qw net.ipv4.tcp_syncookies=2 net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
# Replies to trafgen's sources arrive at the client kernel, which drops them (not local);
# count them first with an nftables ingress counter.
cx nft add table netdev bench
cx nft add chain netdev bench in "{ type filter hook ingress device $VC priority 0 ; }"
cx nft add rule netdev bench in tcp flags '&' '(syn|ack)' == '(syn|ack)' counter
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
KERNEL=$(uname -r)
echo "== lab: $VC ($CLIENT, generator on CPU 1) <-> $VS ($SERVER, server on CPU 0); $CPU_MODEL; Linux $KERNEL"

# --- measuring ---------------------------------------------------------------------------
# cpu_jiffies and ksnmp come from scripts/lab-lib.sh.
nft_synacks() { cx nft list chain netdev bench in | awk '/counter/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'; }
STATS=$WORK/synack-stats.json
# synack's stats JSON: "uptime busy_seconds synack_sent established".
synack_snap() {
    python3 - "$STATS" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
w = d["workers"][0]
e = d["total"]["events"]
print(d["uptime_secs"], w["busy_fraction"] * d["uptime_secs"], e.get("synack_sent", 0), e.get("established", 0))
EOF
}

SERVER_KIND=""
# Snapshot everything counted by the server and the CPUs: "t cpu0b cpu0t cpu1b cpu1t a b sa".
snap() {
    local t c0 c1 a b
    t=$(date +%s.%N)
    c0=$(cpu_jiffies 0); c1=$(cpu_jiffies 1)
    if [ "$SERVER_KIND" = kernel ]; then
        a=$(ksnmp netstat TcpExt SyncookiesSent); b=$(ksnmp snmp Tcp PassiveOpens)
        echo "$t $c0 $c1 $a $b 0 0 0 0 $(nft_synacks)"
    else
        echo "$t $c0 $c1 0 0 $(synack_snap) $(nft_synacks)"
    fi
}
# window A B -> "secs cpu0_busy cpu1_busy synacks/s established/s worker_busy client_synacks/s"
window() {
    python3 - "$1" "$2" "$SERVER_KIND" <<'EOF'
import sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
kind = sys.argv[3]
secs = b[0] - a[0]
c0 = (b[1] - a[1]) / max(b[2] - a[2], 1)
c1 = (b[3] - a[3]) / max(b[4] - a[4], 1)
if kind == "kernel":
    syn, est, wb = (b[5] - a[5]) / secs, (b[6] - a[6]) / secs, float("nan")
else:
    up = max(b[7] - a[7], 1e-9)
    wb = (b[8] - a[8]) / up
    syn, est = (b[9] - a[9]) / up, (b[10] - a[10]) / up
cli = (b[11] - a[11]) / secs
print(f"{secs:.3f} {c0:.4f} {c1:.4f} {syn:.1f} {est:.1f} {wb:.4f} {cli:.1f}")
EOF
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
# measure NAME TOOL COMMAND...: run the load in the background, count over its middle.
measure() {
    local name=$1 tool=$2; shift 2
    local log=$WORK/$SERVER_KIND-$name-$tool.log
    "$@" >"$log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    sleep 0.7
    if [ "$tool" = synack-gen ] && [ "$GEN_XDP" = native ]; then lab_pin client:1; fi
    sleep 0.8
    local a b w
    a=$(snap)
    sleep $((SECS - 3))
    b=$(snap)
    wait "$pid" || echo "   ($tool exited with $?; see below)"
    w=$(window "$a" "$b")
    local client_rate=""
    case "$tool" in
        synack-gen) client_rate=$(python3 -c "import json; d = json.load(open('$WORK/gen.json')); r = d['rates']; print(r['synack_per_sec'] if d['mode'] == 'syn-flood' else r['completed_per_sec'])") ;;
        wrk) client_rate=$(awk '/Requests\/sec/ { print $2 }' "$log") ;;
        trafgen) client_rate=$(echo "$w" | awk '{ print $7 }') ;;
    esac
    echo -e "$SERVER_KIND\t$name\t$tool\t$w\t${client_rate:-0}" >>"$RESULTS"
    echo "   $SERVER_KIND $name ($tool): window ${w%% *} s, server-counted/s and cpu: $w, client-side rate ${client_rate:-?}"
    tail -n 3 "$log" | sed 's/^/     | /'
}

# trafgen exits with "Flushing TX_RING failed" (EAGAIN) once the server falls behind (in a
# namespace it cannot raise its socket buffer), so it is restarted until SECS have passed,
# each run bounded by the packets left (its "packets outgoing" line) and the time left.
trafgen_loop() {
    local end=$(($(date +%s) + SECS)) left=$FLOOD_PKTS runs=0 sent log=$WORK/trafgen-run.log
    while [ "$(date +%s)" -lt "$end" ] && [ "$left" -gt 0 ] && [ $runs -lt 500 ]; do
        runs=$((runs + 1))
        timeout -s INT $((end - $(date +%s) + 1)) ip netns exec "$CNS" trafgen --cpp \
            -D "DMAC=0x${SMAC//:/,0x}" -D "SMAC=0x${CMAC//:/,0x}" -D "DST=${SERVER//./,}" \
            -D DPORT=80 -D CPU=1 --dev "$VC" --conf "$ROOT/scripts/gen/trafgen-syn.cfg" \
            -P 2 --num "$left" --no-sock-mem -Q -C >"$log" 2>&1 || true
        sent=$(awk '/packets outgoing/ { s += $1 } END { print s + 0 }' "$log")
        left=$((left - sent))
    done
    echo "trafgen: $runs run(s) in ${SECS} s (packets counted by the server)"
}
GEN_COMMON=(--interface "$VC" --source $SOURCES --cpu 1 --xdp-mode "$GEN_XDP" --target-mac "$SMAC"
            --duration "$SECS" --drain-ms 1000 --frames 65536 --json "$WORK/gen.json")
run_loads() {
    echo "== $SERVER_KIND: (a) SYN flood, trafgen on CPU 1"
    measure syn-flood trafgen trafgen_loop
    echo "== $SERVER_KIND: (a) SYN flood, synack gen --syn-flood on CPU 1"
    measure syn-flood synack-gen ip netns exec "$CNS" "$BIN" --log-level warn gen "${GEN_COMMON[@]}" \
        --target $SERVER:80 --syn-flood --count "$FLOOD_PKTS"
    echo "== $SERVER_KIND: (b) connections, synack gen on CPU 1 (client closes first)"
    measure connections synack-gen ip netns exec "$CNS" "$BIN" --log-level warn gen "${GEN_COMMON[@]}" \
        --target $SERVER:9 --count "$CONNS"
    echo "== $SERVER_KIND: (c) HTTP keep-alive, wrk on CPU 1"
    measure http wrk ip netns exec "$CNS" taskset -c 1 wrk -t1 -c"$WRK_CONNS" -d"${SECS}s" \
        http://$SERVER:80/
}

# --- the kernel ------------------------------------------------------------------------
SERVER_KIND=kernel
lab_kserver_start "$SERVER" 80:http 9:discard || exit 1
run_loads
lab_stop "$KPID"

# --- synack ----------------------------------------------------------------------------
SERVER_KIND=synack
lab_synack_config "$WORK/synack.toml" --address "$SERVER" --listen 80:http --listen 9:discard \
    --xdp-mode "$SERVER_XDP" --rings 65536:4096 --stats-json "$STATS" --stats-interval-ms 100
# taskset 0-1: synack checks that its worker CPUs are in its affinity (ours is CPU 1 only);
# the worker then pins itself to CPU 0.
lab_synack_start "$WORK/synack.toml" "$WORK/synack.log" 0-1 || exit 1
[ "$SERVER_XDP" = native ] && lab_pin server:0
sleep 0.3
run_loads
lab_stop "$SPID"

# --- results -----------------------------------------------------------------------------
cp "$RESULTS" "$OUT/results.tsv"
SERVER_XDP=$SERVER_XDP GEN_XDP=$GEN_XDP \
python3 - "$RESULTS" "$OUT" "$PLOT" "$CPU_MODEL" "$KERNEL" "$SECS" "$0 $ARGS" <<'EOF'
import json, math, os, sys, datetime
tsv, out, plot, cpu, kernel, secs, cmd = sys.argv[1:8]
rows = []
for line in open(tsv):
    f = line.rstrip("\n").split("\t")
    server, test, tool, w, client = f
    w = w.split()
    rows.append(dict(server=server, test=test, tool=tool, window_secs=float(w[0]),
                     cpu0_busy=float(w[1]), cpu1_busy=float(w[2]),
                     server_synacks_per_sec=float(w[3]), server_established_per_sec=float(w[4]),
                     worker_busy=None if math.isnan(float(w[5])) else float(w[5]),
                     client_rate=float(client or 0)))
def rate(r):
    # What each test measures, counted where it is most exact.
    if r["test"] == "syn-flood":
        return r["server_synacks_per_sec"]
    if r["test"] == "connections":
        return r["server_established_per_sec"]
    return r["client_rate"]  # wrk requests/s
for r in rows:
    r["rate"] = rate(r)
    r["capacity_per_cpu0_busy"] = r["rate"] / r["cpu0_busy"] if r["cpu0_busy"] > 0 else None
    wb = r["worker_busy"]
    r["capacity_per_worker_busy"] = r["rate"] / wb if wb else None
    c = r["capacity_per_cpu0_busy"]
    r["cpu0_ns_per_op"] = 1e9 / c if c else None
def find(server, test, tool):
    for r in rows:
        if (r["server"], r["test"], r["tool"]) == (server, test, tool):
            return r
keys = [("syn-flood", "trafgen"), ("syn-flood", "synack-gen"), ("connections", "synack-gen"), ("http", "wrk")]
units = {"syn-flood": "SYN-ACK/s", "connections": "conn/s", "http": "req/s"}
comparisons = []
for test, tool in keys:
    k, s = find("kernel", test, tool), find("synack", test, tool)
    if not k or not s:
        continue
    kc = k["capacity_per_cpu0_busy"]
    comparisons.append(dict(
        test=test, tool=tool, unit=units[test],
        kernel_rate=k["rate"], synack_rate=s["rate"], rate_ratio=s["rate"] / k["rate"] if k["rate"] else None,
        kernel_cpu0_busy=k["cpu0_busy"], synack_cpu0_busy=s["cpu0_busy"], synack_worker_busy=s["worker_busy"],
        kernel_capacity=kc, synack_capacity_worker=s["capacity_per_worker_busy"],
        synack_capacity_cpu0=s["capacity_per_cpu0_busy"],
        capacity_ratio_worker=(s["capacity_per_worker_busy"] / kc) if kc and s["capacity_per_worker_busy"] else None,
        capacity_ratio_cpu0=(s["capacity_per_cpu0_busy"] / kc) if kc and s["capacity_per_cpu0_busy"] else None,
        kernel_client_rate=k["client_rate"], synack_client_rate=s["client_rate"]))
def xdp_where(mode, cpu):
    return ("generic XDP, RPS to CPU %d" % cpu) if mode == "generic" else ("native XDP, threaded NAPI pinned to CPU %d" % cpu)
where = ("2-vCPU VM, %s, Linux %s. CPU 0: server (synack worker, or the kernel's TCP work via RPS + kserver); "
         "CPU 1: generator (trafgen / synack gen / wrk) and its receive work. veth; synack server: %s; synack gen: %s."
         % (cpu, kernel, xdp_where(os.environ["SERVER_XDP"], 0), xdp_where(os.environ["GEN_XDP"], 1)))
doc = dict(generated=datetime.datetime.now(datetime.timezone.utc).isoformat(), command=cmd, secs_per_load=int(secs),
           where=where, runs=rows, comparisons=comparisons,
           targets=dict(flood_capacity_ratio=3.0, connection_capacity_ratio=3.0))
json.dump(doc, open(f"{out}/results.json", "w"), indent=2)
def fmt(x, d=0):
    if x is None:
        return "-"
    if abs(x) >= 1e6:
        return f"{x/1e6:.2f} M"
    if abs(x) >= 1e3:
        return f"{x/1e3:.{max(d,0)}f} k" if d else f"{x/1e3:.0f} k"
    return f"{x:.{d}f}"
lines = [f"# synack vs Linux kernel, same lab, same run", "", f"`{cmd}`", "", where, "",
         "| test | generator | kernel rate | synack rate | rate × | kernel CPU0 busy | synack CPU0 busy | synack worker busy | kernel /busy core | synack /busy worker | synack /busy CPU0 | per-core × (worker) | per-core × (CPU0) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for c in comparisons:
    u = c["unit"]
    lines.append("| {} | {} | {} {} | {} {} | {} | {:.0%} | {:.0%} | {} | {} | {} | {} | {} | {} |".format(
        c["test"], c["tool"], fmt(c["kernel_rate"]), u, fmt(c["synack_rate"]), u,
        f"{c['rate_ratio']:.2f}" if c["rate_ratio"] else "-",
        c["kernel_cpu0_busy"], c["synack_cpu0_busy"],
        f"{c['synack_worker_busy']:.0%}" if c["synack_worker_busy"] is not None else "-",
        fmt(c["kernel_capacity"]), fmt(c["synack_capacity_worker"]), fmt(c["synack_capacity_cpu0"]),
        f"{c['capacity_ratio_worker']:.2f}" if c["capacity_ratio_worker"] else "-",
        f"{c['capacity_ratio_cpu0']:.2f}" if c["capacity_ratio_cpu0"] else "-"))
lines += ["", "Rates are counted by the server over the middle of each load (kernel: TcpExt SyncookiesSent, Tcp PassiveOpens; "
          "synack: stats JSON synack_sent, established); HTTP is wrk's Requests/sec. Busy: CPU 0's share from /proc/stat over the "
          "same window; synack worker busy = the worker loop's share of time in non-empty iterations. '/busy core' = rate ÷ busy share.",
          "", "Client-side view (what the generator saw): " + "; ".join(
              f"{c['test']}/{c['tool']}: kernel {fmt(c['kernel_client_rate'])}, synack {fmt(c['synack_client_rate'])}" for c in comparisons)]
def target(test, tool, goal=3.0):
    c = next((c for c in comparisons if (c["test"], c["tool"]) == (test, tool)), None)
    if not c or not c["capacity_ratio_worker"]:
        return f"{test}: not measured"
    w, p = c["capacity_ratio_worker"], c["capacity_ratio_cpu0"] or 0
    return (f"{test} ({tool}): {w:.2f}x per busy worker ({'met' if w >= goal else 'NOT met'}), "
            f"{p:.2f}x per busy CPU 0 ({'met' if p >= goal else 'NOT met'})")
lines += ["", "Targets (synack >= 3x the kernel per busy core, same run): " + "; ".join(
              [target("syn-flood", "synack-gen"), target("connections", "synack-gen")]) + ".",
          "", "trafgen exits with EAGAIN (\"Flushing TX_RING failed\") as soon as the server falls behind: in a "
          "namespace it cannot raise its socket buffer. The script restarts it until the time is up, so its rows show "
          "what trafgen sustained, not what the server can answer; `synack gen --syn-flood` is the saturating flood."]
doc["summary"] = lines[-3]
json.dump(doc, open(f"{out}/results.json", "w"), indent=2)
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
labels = [f"{c['test']}\n({c['tool']})" for c in comparisons]
if plot == "matplotlib" and comparisons:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    x = range(len(comparisons))
    wd = 0.27
    ax = axes[0]
    ax.bar([i - wd/2 for i in x], [c["kernel_rate"] / 1e3 for c in comparisons], wd, label="Linux kernel")
    ax.bar([i + wd/2 for i in x], [c["synack_rate"] / 1e3 for c in comparisons], wd, label="synack")
    ax.set_title("Rate (thousands per second)")
    ax.set_xticks(list(x)); ax.set_xticklabels(labels, fontsize=8); ax.legend()
    ax = axes[1]
    ax.bar([i - wd for i in x], [(c["kernel_capacity"] or 0) / 1e3 for c in comparisons], wd, label="kernel (÷ CPU0 busy)")
    ax.bar(list(x), [(c["synack_capacity_cpu0"] or 0) / 1e3 for c in comparisons], wd, label="synack (÷ CPU0 busy)")
    ax.bar([i + wd for i in x], [(c["synack_capacity_worker"] or 0) / 1e3 for c in comparisons], wd, label="synack (÷ worker busy)")
    ax.set_title("Capacity per busy core (thousands per core-second)")
    ax.set_xticks(list(x)); ax.set_xticklabels(labels, fontsize=8); ax.legend(fontsize=8)
    fig.suptitle("synack vs Linux kernel, one run. " + where, fontsize=8, wrap=True)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(f"{out}/plot.png", dpi=110)
elif plot == "gnuplot" and comparisons:
    import subprocess
    data = "\n".join(f"\"{c['test']}/{c['tool']}\" {c['kernel_rate']} {c['synack_rate']} {c['kernel_capacity'] or 0} {c['synack_capacity_worker'] or 0}" for c in comparisons)
    open(f"{out}/plot.dat", "w").write(data + "\n")
    script = f"""set terminal png size 1200,500; set output '{out}/plot.png'
set title "synack vs kernel (rate and capacity per busy core). {where}" font ",8"
set style data histograms; set style fill solid; set xtics rotate by -20
plot '{out}/plot.dat' using 2:xtic(1) title 'kernel rate', '' using 3 title 'synack rate', '' using 4 title 'kernel /busy core', '' using 5 title 'synack /busy worker'
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=False)
EOF
echo "== results in $OUT (results.json, table.md, plot.png)"
