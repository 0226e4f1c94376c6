#!/usr/bin/env bash
# Coverage-guided fuzzing of the frame path with cargo-fuzz (libFuzzer + AddressSanitizer),
# on stable Rust: cargo-fuzz needs `-Z` flags, so RUSTC_BOOTSTRAP=1 is set for its builds
# only (the main crate never depends on nightly; `cargo test` at the root ignores fuzz/).
#
# Targets (fuzz/fuzz_targets/):
#   frames  one frame into two standalone servers (checksums not verified / verified)
#   stack   a sequence of records (raw frames, clock steps, close_all, client templates)
#           against a fresh server; at the end nothing may leak
#
#   scripts/fuzz.sh                      # every target, 10^8 inputs or 30 min each
#   scripts/fuzz.sh stack                # one target
#   scripts/fuzz.sh --runs 3000000 --secs 600 frames
#
# Options:
#   --runs N     stop a target after N inputs            (default 100000000)
#   --secs S     stop a target after S seconds           (default 1800)
#   --no-debug-assertions   build without debug assertions (faster; overflow checks off)
#   -h, --help
# The grown corpus goes to fuzz/corpus/<target> (not committed), the committed seeds are
# read from fuzz/seeds/<target>, crashes land in fuzz/artifacts/<target>/ and each run's
# libFuzzer log in fuzz/logs/<target>.log. Exit status: 0 if no target crashed, 1 if one
# did (the artifact path and the reproduce command are printed), 2 on usage errors.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=100000000
secs=1800
debug_assertions=(--debug-assertions)
targets=()
all_targets=(frames stack)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
        --secs) secs="${2:?--secs needs a number}"; shift 2 ;;
        --no-debug-assertions) debug_assertions=(); shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    case " ${all_targets[*]} " in
        *" $t "*) ;;
        *) echo "fuzz.sh: unknown target '$t' (targets: ${all_targets[*]})" >&2; exit 2 ;;
    esac
done
case "$runs$secs" in
    *[!0-9]*) echo "fuzz.sh: --runs and --secs take whole numbers" >&2; exit 2 ;;
esac

scripts/deps.sh # clang (libFuzzer and the XDP object of the synack crate)
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (cargo install --locked cargo-fuzz)"
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
# cargo-fuzz builds into fuzz/target; a CARGO_TARGET_DIR meant for the main crate would
# mix sanitizer and normal builds.
unset CARGO_TARGET_DIR

max_len() {
    case "$1" in
        frames) echo 2048 ;;  # an AF_XDP frame
        *) echo 4096 ;;
    esac
}

mkdir -p fuzz/logs
status=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="fuzz/logs/$t.log"
    echo "== $t: up to $runs inputs or $secs s (log: $log)"
    start=$(date +%s)
    # The grown corpus comes first (libFuzzer writes new inputs there), the committed
    # seeds second (read only). The outer timeout is a backstop for the build and for a
    # hung input (libFuzzer's own -timeout catches those first).
    set +e
    timeout --signal=INT --kill-after=60 $((secs + 900)) \
        cargo fuzz run "${debug_assertions[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -runs="$runs" -max_total_time="$secs" -max_len="$(max_len "$t")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
    rc=$?
    set -e
    elapsed=$(( $(date +%s) - start ))
    # The last status line: "#N  DONE/pulse  cov: C ft: F corp: U/S exec/s: E rss: R".
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    # "Done N runs in S second(s)": libFuzzer's own average rounds S down to 0 on short runs.
    done_secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    rate=""
    if [ -n "$executed" ] && [ -n "$done_secs" ]; then
        rate=$(( executed / (done_secs > 0 ? done_secs : 1) ))
    fi
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    echo "   inputs: ${executed:-?}  exec/s: ${rate:-?}  cov: ${cov:-?}  ft: ${ft:-?}" \
         " corpus: ${corp:-?}  peak rss: ${rss:-?} MB  time: ${elapsed} s"
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "   result: ok, no crash"
    elif [ -n "$artifact" ]; then
        status=1
        echo "   result: CRASH (exit $rc)"
        grep -m 1 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" | sed 's/^/   /' || true
        grep -m 1 -A 2 "panicked at" "$log" | tail -n +2 | sed 's/^/   /' || true
        echo "   artifact: $artifact"
        echo "   bytes: $(od -An -tx1 -v "$artifact" | tr -d ' \n' | head -c 512)"
        echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${debug_assertions[*]} $t $artifact"
        echo "   minimize:  RUSTC_BOOTSTRAP=1 cargo fuzz tmin ${debug_assertions[*]} $t $artifact"
    else
        status=1
        echo "   result: FAILED (exit $rc, no crash artifact; see $log)"
        tail -n 15 "$log" | sed 's/^/   /'
    fi
done
exit "$status"
