#!/usr/bin/env bash
# scripts/offload-profile.sh: where CPU 0 spends its time while synack's XDP SYN offload
# answers a flat-out SYN flood (issue 9, offload on).
#
#   sudo scripts/offload-profile.sh [--bin PATH] [--mode native|generic] [--secs S]
#
# Without --bin it builds target/release/synack first.
# The sweep's lab (scripts/lab-lib.sh): the server veth's threaded NAPI and synack on CPU 0,
# `synack gen --live-flood` (flat out, bursts of 64) and the reply counter on CPU 1. During
# the middle of the flood `perf record -e cpu-clock -C 0 -g` samples CPU 0 for S - 2
# seconds; the script prints offered and answered rates and the top of the profile.
# Bounded: the flood stops after S seconds (4..30, default 5) and 8 M SYNs a second.
# Namespaces and processes (by PID) are removed on exit, also on failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=""
MODE=native
SECS=5
die() { echo "offload-profile: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ "$MODE" = native ] || [ "$MODE" = generic ] || die "--mode: give native or generic"
[[ "$SECS" =~ ^[0-9]+$ ]] && [ "$SECS" -ge 4 ] && [ "$SECS" -le 30 ] || die "--secs: give 4..30"
[ "$(id -u)" -eq 0 ] || die "needs root (namespaces, XDP, perf)"
"$ROOT/scripts/deps.sh" sweep perf

. "$ROOT/scripts/lab-lib.sh"
lab_init op$$ offload-profile
lab_bin "$ROOT" || exit 1

lab_up "${LAB_FLOOD[@]}"
lab_synack_config "$WORK/synack.toml" --address "$SERVER" --listen 80:discard --xdp-mode "$MODE" \
    --syn-offload on --view quiet
lab_synack_start "$WORK/synack.toml" "$WORK/synack.log" || exit 1
lab_pin server:0
(sleep 1; perf record -e cpu-clock -C 0 -g -o "$WORK/perf.data" -- sleep $((SECS - 2)) \
    >/dev/null 2>&1) &
PERF=$!
PIDS+=("$PERF")
timeout $((SECS + 30)) ip netns exec "$CNS" chrt -f 40 taskset -c 1 "$BIN" --log-level warn gen \
    --interface "$VC" --target $SERVER:80 --target-mac "$SMAC" --live-flood --rate 0 \
    --packets $((8000000 * SECS)) --secs "$SECS" --burst 64 --cpu 1 --xdp-mode native \
    --json "$WORK/gen.json" >"$WORK/gen.log" 2>&1 || die "synack gen failed: $(cat "$WORK/gen.log")"
wait "$PERF" || true
python3 - "$WORK/gen.json" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1]))
print(f"offered {g['offered_per_sec'] / 1e6:.3f} M SYN/s, answered {g['answered_per_sec'] / 1e6:.3f} M SYN-ACK/s")
EOF
echo "perf record -e cpu-clock -C 0 ($MODE XDP, offload on), by symbol:"
perf report -i "$WORK/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -15
