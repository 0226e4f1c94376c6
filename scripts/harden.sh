#!/usr/bin/env bash
# The long hardening runs, in release mode, with the figures the README's "Reliability"
# section quotes. In memory, no privileges, no network:
#   - stateful frame fuzzer: 10^8 inputs (SYNACK_FUZZ_INPUTS), 0 panics, nothing leaked
#   - forged-cookie ACK flood: 10^7 frames (SYNACK_FLOOD_FRAMES), 0 connections, flat memory
#   - RFC 5961 blind injection: 10^6 frames (SYNACK_INJECT_FRAMES), 0 connections affected
# CI runs the same tests with small counts (scripts/test.sh).
#
#   scripts/harden.sh            # full counts (a few minutes on 2 cores)
#   scripts/harden.sh --quick    # 10x smaller
set -euo pipefail
cd "$(dirname "$0")/.."
scale=1
[ "${1:-}" = "--quick" ] && scale=10
export SYNACK_FUZZ_INPUTS=$((100000000 / scale))
export SYNACK_FUZZ_SEEDS=8
export SYNACK_FLOOD_FRAMES=$((10000000 / scale))
export SYNACK_INJECT_FRAMES=$((1000000 / scale))
scripts/deps.sh
start=$(date +%s)
# Bounded in time as well as in inputs: the whole run stops after 30 minutes.
timeout 1800 cargo test --release --locked --test harden -- --nocapture --test-threads 1 2>&1 \
    | grep -E '^(fuzz|forged|blind|test |test result)|panicked'
echo "harden: done in $(( $(date +%s) - start )) s"
