#!/usr/bin/env bash
# scripts/overload-profile.sh: where CPU 0 spends its time when synack is flooded past its
# capacity (issue 9 part 2), with a spot check of the answered rate at each offered rate.
#
#   sudo scripts/overload-profile.sh [--bin PATH] [--secs S] [--rates "R1 R2 ..."]
#                                    [--worker-fifo PRIO] [--napi-nice N] [--out DIR]
#
# Two namespaces joined by one veth pair (scripts/lab-lib.sh: `synack lab up`). The server veth runs native XDP with threaded
# NAPI, its NAPI thread pinned to CPU 0 beside the synack worker (all server receive work
# on CPU 0, as in issue 9); `synack gen --syn-flood` offers SYNs from CPU 1 at each
# --rates value (0 = flat out) for --secs seconds and counts the SYN-ACKs. During the last
# step `perf record -e cpu-clock -C 0 -g` samples CPU 0; the report is DIR/perf.txt.
# --worker-fifo PRIO gives the worker thread SCHED_FIFO PRIO (chrt), --napi-nice N renices
# the server's NAPI kthread: the placement/priority experiments. The client veth's NAPI
# thread runs on CPU 1 (SCHED_FIFO 50), so replies cost the server nothing to count. Bounded: every flood stops after
# --secs seconds and 4 M SYNs per second offered. Traffic stays inside the two namespaces
# (198.18.0.0/24; flood sources from 198.19.0.0/16). Namespaces and processes (by PID)
# are removed on exit, also on failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/synack
SECS=4
RATES="300000 0"
FIFO=""
NAPI_NICE=""
OUT=""
die() { echo "overload-profile: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        --rates) RATES=$2; shift 2 ;;
        --worker-fifo) FIFO=$2; shift 2 ;;
        --napi-nice) NAPI_NICE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$SECS" =~ ^[0-9]+$ ]] && [ "$SECS" -ge 2 ] && [ "$SECS" -le 30 ] || die "--secs: give 2..30"
[ "$(id -u)" -eq 0 ] || die "needs root (namespaces, XDP, AF_XDP, perf -C)"
[ -x "$BIN" ] || die "no synack binary at $BIN (cargo build --release)"
"$ROOT/scripts/deps.sh" sweep perf >/dev/null
taskset -pc 1 $$ >/dev/null

. "$ROOT/scripts/lab-lib.sh"
lab_init ovl$$ overload
lab_out_dir "$ROOT/lab-out/overload-$(date -u +%Y%m%dT%H%M%S)"
# Flood sources 198.19.x.y are routed back to the client (it owns none of them, so its
# kernel does not answer the SYN-ACKs with RSTs; gen counts them in XDP). The client veth
# gets NAPI of its own (GRO on), threaded, pinned to CPU 1 with a real-time priority:
# otherwise the generator's receive work (its XDP program and AF_XDP copy of every SYN-ACK)
# runs inside the server worker's sendto() on CPU 0.
lab_up --gro client --napi client:1:50 --route-back 198.19.0.0/16
CNAPI=$(pgrep "^napi/$VC-" | head -1) || die "no NAPI thread for $VC"

lab_synack_config "$WORK/synack.toml" --address "$SERVER" --listen 80:discard --xdp-mode native \
    --stats-json "$OUT/stats.json" --view quiet
lab_synack_start "$WORK/synack.toml" "$OUT/server.log" 0 info || exit 1
lab_pin server:0
NAPI=$(pgrep "^napi/$VS-" | head -1) || die "no NAPI thread for $VS"
[ -n "$NAPI_NICE" ] && renice -n "$NAPI_NICE" -p "$NAPI" >/dev/null
WORKER=$(ps -T -o spid=,comm= -p "$SPID" | awk '$2 == "synack-w0" {print $1}')
[ -n "$FIFO" ] && chrt -f -p "$FIFO" "$WORKER"
echo "server pid $SPID, worker tid $WORKER ($(chrt -p "$WORKER" | tr '\n' ' ')), NAPI thread $NAPI ($(ps -o ni=,cls= -p "$NAPI")), client NAPI $CNAPI" | tee "$OUT/setup.txt"

last=$(echo "$RATES" | awk '{print $NF}')
for rate in $RATES; do
    count=$(( (rate > 0 ? rate : 4000000) * SECS ))
    if [ "$rate" = "$last" ] && command -v perf >/dev/null; then
        (sleep 1; perf record -q -e cpu-clock -C 0 -g -o "$OUT/perf.data" -- sleep $((SECS - 1 > 1 ? SECS - 2 : 1)) \
            >/dev/null 2>&1) &
        PERF=$!
    fi
    ip netns exec "$CNS" taskset -c 1 "$BIN" gen --interface "$VC" \
        --target "$SERVER":80 --syn-flood --rate "$rate" --count "$count" \
        --duration "$SECS" --json "$OUT/gen-$rate.json" >"$OUT/gen-$rate.txt" 2>&1 \
        || die "gen failed: $(tail -3 "$OUT/gen-$rate.txt")"
    python3 - "$OUT/gen-$rate.json" "$rate" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
def find(d, *keys):
    for k in keys:
        if k in d: return d[k]
    return None
print(f"offered {sys.argv[2]:>8}/s: " + ", ".join(
    f"{k}={v}" for k, v in r.items() if not isinstance(v, (dict, list))))
EOF
done
[ -n "${PERF:-}" ] && wait "$PERF" || true
if [ -e "$OUT/perf.data" ]; then
    perf report -i "$OUT/perf.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null \
        | grep -v '^$' | head -80 >"$OUT/perf.txt" || true
    perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null \
        | grep '%' | head -10 | tee "$OUT/perf-comm.txt" || true
    perf report -i "$OUT/perf.data" --children --comm synack-w0 --sort sym --stdio -g none \
        2>/dev/null | grep '%' | head -40 >"$OUT/perf-worker.txt" || true
fi
python3 -c "
import json; s = json.load(open('$OUT/stats.json'))
w = s['workers'][0]
print('worker busy', round(w['busy_fraction'], 3), 'zerocopy', w.get('zerocopy'), 'socket', w['xdp_socket'])
" | tee "$OUT/server.txt"
echo "results in $OUT"
