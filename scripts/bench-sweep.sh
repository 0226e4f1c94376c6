#!/usr/bin/env bash
# scripts/bench-sweep.sh: an offered-load sweep of SYN floods, as an operator would measure
# it: the Linux kernel and synack, in one run, on the same veth lab and the same CPU.
#
#   sudo scripts/bench-sweep.sh [--out DIR] [--step-secs S] [--rates LIST] [--targets LIST]
#                               [--drain-ms MS] [--gen-fifo PRIO] [--clients N] [--burst N]
#                               [--bin PATH] [--no-plot]
#
#   --rates    offered SYN rates in M/s, "max" = flat out
#              [default: 0.1,0.15,0.2,0.3,0.45,0.6,0.9,1.2,1.8,2.4,max]
#   --targets  any of kernel, native-off, native-on, generic-off, generic-on
#              [default: all five]; native/generic is synack's xdp.mode, on/off its
#              xdp.syn_offload
#   --step-secs seconds per step, 1..60 [default: 4]
#   --gen-fifo  run the generator at SCHED_FIFO PRIO (1..49, below the reply counter's
#              NAPI thread at 50), so that other work on CPU 1 cannot pull the offered rate
#              below the step's rate; 0 = normal scheduling [default: 40]
#   --burst     frames the generator may send ahead of its rate's schedule [default: 64,
#              one live-frames batch]: a larger burst (gen's own default is 20 ms of the
#              rate, to make up for the gap between two live calls) arrives at line rate and
#              overflows the server veth's 256-frame ring before any server sees it
#   --clients   real Linux clients (half IPv4, half IPv6; each connects, echoes 64 bytes,
#              half-closes and reads our FIN) started 1 s into the heaviest step of every
#              synack target; how many completed goes into the results; 0..2000 [default: 200]
#
# Where the work runs, for every target: CPU 0 does ALL the server's receive work (the
# server veth's threaded NAPI pinned there, with GRO on so that it has NAPI also without an
# XDP program; the server process pinned there: kserver for the kernel, every synack
# thread). CPU 1 does the generator and the reply counting: `synack gen --live-flood` (an
# XDP program run with BPF_PROG_TEST_RUN live frames, paced in the program) and its XDP
# reply counter on the client veth, whose threaded NAPI is pinned to CPU 1 with SCHED_FIFO
# 50 so the spinning generator cannot starve it. TX checksum offload is off on both ends.
# SYN-ACKs are counted at the client veth, where counting costs the server nothing.
#
# The kernel: tcp_syncookies=2 (every SYN answered by a cookie), a listener on port 80
# (scripts/gen/kserver.c) in the server namespace, the flood's source range routed back to
# the client.
#
# Per target it reports capacity (the highest answered rate among the steps answered
# >= 99 %), peak (the highest answered rate), and what is answered at the heaviest step.
# Results: DIR/results.json, DIR/table.md, DIR/plot.png (answered against offered),
# DIR/steps.jsonl (every step), DIR/clients.jsonl (the real clients of each target)
# [default DIR: ./lab-out/sweep-<UTC date>].
#
# Bounded: each step sends at most its rate x step-secs x 1.1 SYNs (flat out: 8 M/s x
# step-secs) for at most step-secs; each command has a time cap. Traffic stays in the two
# namespaces (198.18.0.0/24, flood sources 198.19.0.0/16). Namespaces and processes (by
# PID) are removed on exit, also on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARGS="$*"
OUT=""
STEP_SECS=4
RATES=0.1,0.15,0.2,0.3,0.45,0.6,0.9,1.2,1.8,2.4,max
TARGETS=kernel,native-off,native-on,generic-off,generic-on
DRAIN_MS=300
BIN=""
PLOT=1
GEN_FIFO=40
CLIENTS=200
BURST=64

die() { echo "bench-sweep: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --step-secs) STEP_SECS=$2; shift 2 ;;
        --rates) RATES=$2; shift 2 ;;
        --targets) TARGETS=$2; shift 2 ;;
        --drain-ms) DRAIN_MS=$2; shift 2 ;;
        --gen-fifo) GEN_FIFO=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --burst) BURST=$2; shift 2 ;;
        --bin) BIN=$2; shift 2 ;;
        --no-plot) PLOT=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$STEP_SECS" =~ ^[0-9]+$ ]] && [ "$STEP_SECS" -ge 1 ] && [ "$STEP_SECS" -le 60 ] ||
    die "--step-secs: give 1..60"
[[ "$DRAIN_MS" =~ ^[0-9]+$ ]] && [ "$DRAIN_MS" -le 5000 ] || die "--drain-ms: give 0..5000"
[[ "$CLIENTS" =~ ^[0-9]+$ ]] && [ "$CLIENTS" -le 2000 ] || die "--clients: give 0..2000"
[[ "$BURST" =~ ^[0-9]+$ ]] && [ "$BURST" -ge 1 ] && [ "$BURST" -le 1000000 ] || die "--burst: give 1..1000000"
[[ "$GEN_FIFO" =~ ^[0-9]+$ ]] && [ "$GEN_FIFO" -le 49 ] ||
    die "--gen-fifo: give a SCHED_FIFO priority 1..49 (below the counter's 50), or 0"
GEN_SCHED=()
if [ "$GEN_FIFO" -gt 0 ]; then GEN_SCHED=(chrt -f "$GEN_FIFO"); else GEN_FIFO=""; fi
IFS=, read -r -a RATE_LIST <<<"$RATES"
for r in "${RATE_LIST[@]}"; do
    [ "$r" = max ] || [[ "$r" =~ ^[0-9]*\.?[0-9]+$ ]] || die "--rates: $r is not a rate in M/s or max"
    [ "$r" = max ] || python3 -c "import sys; sys.exit(0 if 0 < float('$r') <= 20 else 1)" ||
        die "--rates: $r M/s: give 0 < R <= 20"
done
IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do
    case "$t" in kernel|native-off|native-on|generic-off|generic-on) ;;
        *) die "--targets: $t is not one of kernel, native-off, native-on, generic-off, generic-on" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, XDP, BPF_PROG_TEST_RUN)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, generator on CPU 1)"

# This script and what it starts stay on CPU 1 unless placed on CPU 0 on purpose.
taskset -pc 1 $$ >/dev/null
extras=(sweep)
[ "$PLOT" = 1 ] && extras+=(plot)
"$ROOT/scripts/deps.sh" "${extras[@]}" || die "scripts/deps.sh ${extras[*]} failed"

# --- the lab ---------------------------------------------------------------------------
. "$ROOT/scripts/lab-lib.sh"
lab_init sw$$ sweep
lab_out_dir "lab-out/sweep-$(date -u +%Y%m%d-%H%M%S)"
lab_bin "$ROOT" || exit 1
lab_build_kserver "$ROOT" || exit 1

lab_up "${LAB_FLOOD[@]}"
sx sysctl -qw net.ipv4.tcp_syncookies=2 net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
KERNEL=$(uname -r)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== lab: $VC ($CLIENT, generator + counter on CPU 1) <-> $VS ($SERVER, server on CPU 0)"
echo "   $CPU_MODEL; Linux $KERNEL; load average at start $LOAD"

# --- one step --------------------------------------------------------------------------
RESULTS=$WORK/steps.tsv
: >"$RESULTS"
# "xdp_xmit xdp_xmit_errors" of the client veth: frames its peer (the server veth) took
# from the generator, and frames it refused (its ring was full: dropped at the server's door).
veth_xmit() {
    cx ethtool -S "$VC" | awk '/tx_queue_0_xdp_xmit:/ { a = $2 } /tx_queue_0_xdp_xmit_errors:/ { b = $2 }
        END { print a + 0, b + 0 }'
}
# step TARGET RATE: one bounded live flood, its JSON line appended to the results.
step() {
    local target=$1 rate=$2 pps packets json=$WORK/step.json
    if [ "$rate" = max ]; then
        pps=0; packets=$((8000000 * STEP_SECS))
    else
        pps=$(python3 -c "print(round($rate * 1e6))")
        packets=$(python3 -c "print(int($pps * $STEP_SECS * 1.1) + 1)")
    fi
    rm -f "$json"
    local before after
    before=$(veth_xmit)
    timeout $((STEP_SECS + 30)) ip netns exec "$CNS" "${GEN_SCHED[@]}" taskset -c 1 "$BIN" --log-level warn gen \
        --interface "$VC" --target $SERVER:80 --target-mac "$SMAC" --live-flood \
        --rate "$pps" --packets "$packets" --secs "$STEP_SECS" --drain-ms "$DRAIN_MS" --burst "$BURST" \
        --cpu 1 --xdp-mode native --json "$json" >"$WORK/step.log" 2>&1 ||
        die "synack gen --live-flood failed at $target $rate: $(cat "$WORK/step.log")"
    after=$(veth_xmit)
    python3 - "$json" "$target" "$rate" "$before" "$after" >>"$RESULTS" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["target"], d["step"] = sys.argv[2], sys.argv[3]
b, a = [int(x) for x in sys.argv[4].split()], [int(x) for x in sys.argv[5].split()]
d["veth_delivered"], d["veth_refused"] = a[0] - b[0], a[1] - b[1]
print(json.dumps(d))
EOF
    python3 - "$json" "$target" "$rate" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"   {sys.argv[2]:<12} step {sys.argv[3]:>4}: offered {d['offered_per_sec']/1e6:6.3f} M/s, "
      f"answered {d['answered_per_sec']/1e6:6.3f} M/s ({d['answered_fraction']*100:5.1f} %), rst {d['replies']['rst']}, "
      f"rate error {(d['rate_error'] or 0)*100:+.1f} %")
EOF
    sleep 0.5
}

# clients TARGET: $CLIENTS real Linux connections to the echo port (half IPv4, half IPv6),
# started after 1 s, on CPU 1; each must connect, echo 64 bytes and see our FIN within 15 s.
# Appends one JSON line to $WORK/clients.jsonl.
clients() {
    timeout 40 ip netns exec "$CNS" taskset -c 1 python3 - "$1" "$CLIENTS" "$SERVER" "$SERVER6" \
        >>"$WORK/clients.jsonl" 2>"$WORK/clients.log" <<'EOF'
import json, socket, sys, threading, time
target, n, v4, v6 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
time.sleep(1.0)
done = {"v4": 0, "v6": 0}
errors = {}
lock = threading.Lock()

def one(i):
    fam, addr, key = (socket.AF_INET, v4, "v4") if i % 2 == 0 else (socket.AF_INET6, v6, "v6")
    msg = bytes((i + k) % 256 for k in range(64))
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(15)
            s.connect((addr, 7))
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("EOF before the echo")
                got += chunk
            if got != msg:
                raise OSError("echo differs")
            s.shutdown(socket.SHUT_WR)
            if s.recv(1) != b"":
                raise OSError("data after the echo")
        with lock:
            done[key] += 1
    except OSError as e:
        why = f"{type(e).__name__}: {str(e)[:60]}"
        with lock:
            errors[why] = errors.get(why, 0) + 1

start = time.monotonic()
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(dict(target=target, clients=n, completed=done["v4"] + done["v6"], v4=done["v4"],
                      v6=done["v6"], errors=errors, secs=round(time.monotonic() - start, 2))))
EOF
}

# The last line of clients.jsonl, for the log.
clients_line() {
    tail -n 1 "$WORK/clients.jsonl" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
t, c, n, v4, v6, secs, err = d["target"], d["completed"], d["clients"], d["v4"], d["v6"], d["secs"], d["errors"]
print(f"   {t}: {c}/{n} real clients completed in the heaviest step (v4 {v4}, v6 {v6}, {secs} s) {err or str()}")'
}

sweep() {
    local target=$1 r last=${RATE_LIST[-1]} cpid=""
    for r in "${RATE_LIST[@]}"; do
        if [ "$r" = "$last" ] && [ "$target" != kernel ] && [ "$CLIENTS" -gt 0 ]; then
            clients "$target" &
            cpid=$!
        fi
        step "$target" "$r"
    done
    if [ -n "$cpid" ]; then
        if wait "$cpid"; then clients_line; else
            echo "   $target: the client run failed: $(tail -3 "$WORK/clients.log")"
        fi
    fi
}

# --- the targets -----------------------------------------------------------------------
kernel_target() {
    echo "== kernel (tcp_syncookies=2, kserver on CPU 0)"
    lab_kserver_start "$SERVER" 80:discard || exit 1
    sweep kernel
    lab_stop "$KPID"
}

synack_target() {
    local target=$1 mode=${1%-*} offload=${1#*-}
    echo "== synack $target (xdp.mode $mode, syn_offload = \"$offload\"; every thread on CPU 0)"
    lab_synack_config "$WORK/synack.toml" --address "$SERVER" --address "$SERVER6" \
        --listen 80:discard --listen 7:echo --xdp-mode "$mode" --rings 65536:4096 \
        --syn-offload "$offload" --view quiet
    lab_synack_start "$WORK/synack.toml" "$WORK/synack-$target.log" || exit 1
    lab_pin server:0
    sweep "$target"
    lab_stop "$SPID"
}

for t in "${TARGET_LIST[@]}"; do
    if [ "$t" = kernel ]; then kernel_target; else synack_target "$t"; fi
done

# --- results -----------------------------------------------------------------------------
cp "$RESULTS" "$OUT/steps.jsonl"
touch "$WORK/clients.jsonl"
cp "$WORK/clients.jsonl" "$OUT/clients.jsonl"
WHERE="2-vCPU VM, $CPU_MODEL, Linux $KERNEL, load average at start $LOAD. CPU 0: all server receive work (server veth threaded NAPI, GRO on) and the server process; CPU 1: synack gen --live-flood${GEN_FIFO:+ at SCHED_FIFO $GEN_FIFO} and the XDP reply counter (client veth threaded NAPI, SCHED_FIFO 50). $STEP_SECS s a step."
python3 - "$RESULTS" "$OUT" "$PLOT" "$0 $ARGS" "$WHERE" "$WORK/clients.jsonl" <<'EOF'
import datetime, json, subprocess, sys
steps_path, out, plot, cmd, where, clients_path = sys.argv[1:7]
clients = {c["target"]: c for c in (json.loads(l) for l in open(clients_path) if l.strip())}
steps = [json.loads(l) for l in open(steps_path) if l.strip()]
targets = []
for s in steps:
    if s["target"] not in targets:
        targets.append(s["target"])
summary = {}
for t in targets:
    ss = [s for s in steps if s["target"] == t]
    ok = [s["answered_per_sec"] for s in ss if s["answered_fraction"] >= 0.99]
    heaviest = max(ss, key=lambda s: s["offered_per_sec"])
    c = dict(capacity=max(ok) if ok else None,
             peak=max(s["answered_per_sec"] for s in ss),
             heaviest_offered=heaviest["offered_per_sec"],
             heaviest_answered=heaviest["answered_per_sec"])
    c["heaviest_of_capacity"] = c["heaviest_answered"] / c["capacity"] if c["capacity"] else None
    c["clients"] = clients.get(t)
    summary[t] = c
k = summary.get("kernel", {}).get("capacity")
for t, c in summary.items():
    c["capacity_vs_kernel"] = c["capacity"] / k if k and c["capacity"] else None
doc = dict(generated=datetime.datetime.now(datetime.timezone.utc).isoformat(), command=cmd,
           where=where, summary=summary, steps=steps)
json.dump(doc, open(f"{out}/results.json", "w"), indent=2)

def m(x):
    return "-" if x is None else f"{x / 1e6:.3f} M"
def pct(x):
    return "-" if x is None else f"{x * 100:.0f} %"
def clients_cell(c):
    return "-" if not c else f"{c['completed']}/{c['clients']} (v4 {c['v4']}, v6 {c['v6']})"
def ratio(x):
    return "-" if x is None else f"{x:.2f}"
lines = ["# SYN flood: answered against offered", "", f"`{cmd}`", "", where, "",
         "| target | capacity (answered, steps >= 99 %) | × kernel | peak answered | heaviest step offered | answered there | of capacity | real clients done in the heaviest step |",
         "|---|---|---|---|---|---|---|---|"]
for t, c in summary.items():
    lines.append(f"| {t} | {m(c['capacity'])} | {ratio(c['capacity_vs_kernel'])} | {m(c['peak'])} | "
                 f"{m(c['heaviest_offered'])} | {m(c['heaviest_answered'])} | {pct(c['heaviest_of_capacity'])} | "
                 f"{clients_cell(c['clients'])} |")
step_names = []
for s in steps:
    if s["step"] not in step_names:
        step_names.append(s["step"])
lines += ["", "Answered per step, M SYN-ACK/s of the M SYN/s offered (share answered):", "",
          "| step (M/s) | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
for n in step_names:
    row = [n]
    for t in targets:
        s = next((s for s in steps if s["target"] == t and s["step"] == n), None)
        row.append("-" if s is None else
                   f"{s['answered_per_sec'] / 1e6:.3f} of {s['offered_per_sec'] / 1e6:.3f} ({s['answered_fraction'] * 100:.0f} %)")
    lines.append("| " + " | ".join(row) + " |")
lines += ["", "SYN-ACKs are counted (and dropped) by an XDP program on the client veth; offered = the SYNs the "
          "generator's XDP program sent (XDP_TX) over the step's sending time. steps.jsonl also has, per step, "
          "veth_delivered and veth_refused: the SYNs the server veth took and those it refused (its ring full)."]
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
if plot == "1":
    for t in targets:
        with open(f"{out}/plot-{t}.dat", "w") as f:
            for s in sorted((s for s in steps if s["target"] == t), key=lambda s: s["offered_per_sec"]):
                f.write(f"{s['offered_per_sec'] / 1e6} {s['answered_per_sec'] / 1e6}\n")
    top = max(s["offered_per_sec"] for s in steps) / 1e6 * 1.05
    curves = ", ".join(f"'{out}/plot-{t}.dat' using 1:2 with linespoints lw 2 title '{t}'" for t in targets)
    script = f"""set terminal TERM size 1000,650 noenhanced
set output '{out}/plot.png'
set title "SYN-ACKs answered against SYNs offered, server on one CPU (veth lab, {datetime.date.today()})" font ",11"
set xlabel 'offered (M SYN/s)'; set ylabel 'answered (M SYN-ACK/s)'
set key top left; set grid; set xrange [0:{top}]; set yrange [0:*]
plot x with lines dt 2 lc rgb 'gray' title 'all answered', {curves}
"""
    for term in ("pngcairo", "png"):
        r = subprocess.run(["gnuplot"], input=script.replace("TERM", term).encode(), capture_output=True)
        if r.returncode == 0:
            break
    else:
        sys.exit("gnuplot failed: " + r.stderr.decode())
EOF
files="results.json, table.md, steps.jsonl, clients.jsonl"
[ "$PLOT" = 1 ] && files="$files, plot.png"
echo "== results in $OUT ($files)"
