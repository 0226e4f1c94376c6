# scripts/lab-lib.sh: the benchmark scripts' side of the netns lab (sourced, not run). The
# lab itself is the project's one netns library, src/lab/netns.rs, called through
# `synack lab up|down|pin-napi`; this file only wraps those calls for the scripts' traps.
#
#   . scripts/lab-lib.sh
#   lab_init sb$$ bench     # the lab's name (LAB), the temporary folder WORK
#                           # (/tmp/synack-bench.XXXXXX) and the traps: on exit (also
#                           # failure, Ctrl-C) end the PIDS the script started, lab_down,
#                           # remove WORK (unless KEEP_WORK is set)
#   lab_out_dir DEFAULT     # OUT, the results folder: DEFAULT unless --out set it; created
#   lab_bin ROOT            # BIN: build target/release/synack when BIN is empty; check it
#   lab_build_kserver ROOT  # $WORK/kserver from scripts/gen/kserver.c
#   lab_up [ARGS]           # `synack lab up --name $LAB ARGS`: namespaces, veth pair,
#                           # addresses, static neighbours; sets CNS SNS (namespaces), VC VS
#                           # (veth ends), CLIENT SERVER (IPv4), CLIENT6 SERVER6 (IPv6), CMAC SMAC
#   lab_up "${LAB_FLOOD[@]}" # the flood benchmarks' placement (see LAB_FLOOD below)
#   lab_pin SIDE:CPU[:FIFO]  # threaded NAPI of the client or server veth pinned to CPU
#   lab_down                # `synack lab down --name $LAB` (idempotent)
#   lab_kserver_start ARGS  # the kernel's server on CPU 0 of the server namespace (KPID)
#   lab_synack_config FILE [--address IP].. [--listen PORT:MODE].. [--xdp-mode M]
#                     [--rings FRAMES:RING] [--syn-offload S] [--stats-json F]
#                     [--stats-interval-ms MS] [--view V]   # the server's synack TOML
#   lab_synack_start CONFIG LOG [CPUS [LEVEL]]   # `synack run` in the server namespace,
#                           # pinned, once it is ready (SPID)
#   lab_stop PID            # end one process the script started, and reap it
#   cx CMD / sx CMD         # run CMD in the client / server namespace
#   cpu_jiffies CPU, ksnmp FILE GROUP FIELD   # readings for the scripts' own loops
#
# Two namespaces joined by one single-queue veth pair: client 198.18.0.2 and 2001:2::2 on
# $VC, server 198.18.0.1 and 2001:2::1 on $VS (static neighbours, no DAD), TX and RX
# checksum offload off on both ends (src/lab/netns.rs `link_up` says why). Traffic stays
# in the two namespaces; lab_traps removes them also on failure.
#
# What stays shell, and why: cx/sx, cpu_jiffies and ksnmp are one-line readings taken
# inside the scripts' measurement loops (a pipeline of the script, no lifecycle and
# nothing to clean up); lab_bin, the servers' start and stop and the traps are the
# scripts' own process handling.

# The flood benchmarks' placement (scripts/bench-sweep.sh, scripts/offload-profile.sh): all
# server receive work on CPU 0, the generator's side on CPU 1. GRO on: a veth has NAPI (and
# accepts XDP_TX frames from its peer) only with an XDP program or GRO; with GRO the NAPI,
# its threads and their pinning outlive every attach and detach. The client's NAPI thread
# runs at SCHED_FIFO 50 so a spinning generator on CPU 1 cannot starve it. Flood sources
# 198.19.0.0/16 are routed back to the client.
LAB_FLOOD=(--gro both --napi server:0 --napi client:1:50 --route-back 198.19.0.0/16)

# The script's run: the lab's name LAB ($1), its temporary folder WORK
# (/tmp/synack-$2.XXXXXX) and the traps that remove both, also on failure (lab_cleanup).
# The traps come first, so that nothing made after this call outlives a failure.
lab_init() {
    LAB=$1
    lab_traps
    WORK=$(mktemp -d "/tmp/synack-$2.XXXXXX")
}

# OUT, the folder for the results: the script's --out, else DEFAULT; created, absolute.
lab_out_dir() {
    OUT=${OUT:-$1}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
}

cx() { ip netns exec "$CNS" "$@"; }
sx() { ip netns exec "$SNS" "$@"; }

# Build the lab (synack lab up) and take its names; what it pinned is printed indented.
lab_up() {
    local vars
    vars=$("$BIN" lab up --name "$LAB" "$@") || {
        echo "lab: synack lab up --name $LAB $* failed" >&2
        return 1
    }
    eval "$vars"
    printf '%s\n' "$vars" | sed -n 's/^# /   /p'
}

lab_down() {
    [ -n "${LAB:-}" ] && [ -n "${BIN:-}" ] && "$BIN" lab down --name "$LAB" 2>/dev/null
    return 0
}

# Switch a veth end to threaded NAPI and pin its threads: SIDE:CPU[:FIFO] (SIDE client or
# server). The end needs NAPI first: an XDP program attached, or GRO on.
lab_pin() {
    local spec out args=()
    for spec in "$@"; do args+=(--napi "$spec"); done
    out=$("$BIN" lab pin-napi --name "$LAB" "${args[@]}") || return 1
    printf '%s\n' "$out" | sed -n 's/^# /   /p'
}

# "busy total" jiffies of one CPU.
cpu_jiffies() {
    awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
}

# A kernel counter of the server namespace: ksnmp FILE GROUP FIELD (e.g. netstat TcpExt
# SyncookiesSent).
ksnmp() {
    sx cat "/proc/net/$1" | awk -v g="$2:" -v f="$3" '
        $1 == g && !h { for (i = 2; i <= NF; i++) n[i] = $i; h = 1; next }
        $1 == g && h { for (i = 2; i <= NF; i++) if (n[i] == f) print $i; exit }'
}

# BIN, the synack binary: built (release) from ROOT when BIN is empty, then checked.
lab_bin() {
    local root=$1
    if [ -z "${BIN:-}" ]; then
        echo "== cargo build --release"
        (cd "$root" && cargo build --release --bin synack >/dev/null 2>&1) || {
            echo "lab: cargo build --release failed (run it in $root to see why)" >&2
            return 1
        }
        BIN=${CARGO_TARGET_DIR:-$root/target}/release/synack
    fi
    [ -x "$BIN" ] || { echo "lab: no synack binary at $BIN" >&2; return 1; }
}

# The scripts' cleanup: processes they started (PIDS, ended by PID, never by name), the
# namespaces, and their temporary folder WORK. lab_traps runs it on exit, also on failure
# or Ctrl-C.
lab_cleanup() {
    set +e
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    lab_down
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}

lab_traps() {
    PIDS=()
    trap lab_cleanup EXIT
    trap 'exit 130' INT TERM
}

# $WORK/kserver, the kernel's server (scripts/gen/kserver.c), built from ROOT.
lab_build_kserver() {
    cc -O2 -o "$WORK/kserver" "$1/scripts/gen/kserver.c" || {
        echo "lab: building scripts/gen/kserver.c failed" >&2
        return 1
    }
}

# The kernel's server on CPU 0 of the server namespace: lab_kserver_start ADDRESS
# PORT:MODE... (see scripts/gen/kserver.c). KPID is its PID (also in PIDS); returns once it
# printed "ready" (at most 5 s), or fails with its log ($WORK/kserver.log).
lab_kserver_start() {
    local log=$WORK/kserver.log
    # Started without a shell function or subshell in between, so that $! is the server's
    # own PID (ip netns exec and taskset exec it).
    ip netns exec "$SNS" taskset -c 0 "$WORK/kserver" "$@" >"$log" 2>&1 &
    KPID=$!
    PIDS+=("$KPID")
    for _ in $(seq 50); do grep -q ready "$log" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$log" || {
        echo "lab: kserver did not start: $(cat "$log")" >&2
        return 1
    }
}

# The server's synack config, written to FILE: interface $VS, one worker on CPU 0, and
# ops.ready_file $WORK/synack.ready (what lab_synack_start waits for); then, in the order
# given, the addresses (--address, repeatable), listeners (--listen PORT:MODE, repeatable),
# [xdp] settings (--xdp-mode, --rings FRAMES:RING for frame_count and ring_size,
# --syn-offload) and [ops] settings (--stats-json, --stats-interval-ms, --view). What is not
# given is left to synack's defaults (config/default.toml).
lab_synack_config() {
    local file=$1 addrs="" listen="" xdp="" ops=""
    shift
    while [ $# -gt 0 ]; do
        [ $# -ge 2 ] || { echo "lab: lab_synack_config: $1 needs a value" >&2; return 1; }
        case "$1" in
            --address) addrs+="${addrs:+, }\"$2\"" ;;
            --listen) listen+=$'\n'"[[listen]]"$'\n'"port = ${2%%:*}"$'\n'"mode = \"${2#*:}\""$'\n' ;;
            --xdp-mode) xdp+="mode = \"$2\""$'\n' ;;
            --rings) xdp+="frame_count = ${2%%:*}"$'\n'"ring_size = ${2#*:}"$'\n' ;;
            --syn-offload) xdp+="syn_offload = \"$2\""$'\n' ;;
            --stats-json) ops+="stats_json = \"$2\""$'\n' ;;
            --stats-interval-ms) ops+="stats_interval_ms = $2"$'\n' ;;
            --view) ops+="view = \"$2\""$'\n' ;;
            *) echo "lab: lab_synack_config: unknown setting $1" >&2; return 1 ;;
        esac
        shift 2
    done
    {
        printf 'interface = "%s"\naddresses = [%s]\nworkers = [0]\n%s\n' "$VS" "$addrs" "$listen"
        [ -z "$xdp" ] || printf '[xdp]\n%s\n' "$xdp"
        printf '[ops]\nready_file = "%s"\n%s' "$WORK/synack.ready" "$ops"
    } >"$file"
}

# `synack run --config CONFIG` in the server namespace, stdout and stderr to LOG, under
# taskset -c CPUS (default 0; synack checks that its worker CPUs are in its affinity, then
# pins each worker itself), log level LEVEL (default warn). SPID is its PID (also in PIDS;
# started without a subshell, so $! is synack's own PID). Returns once the ready file of
# lab_synack_config is there (at most 10 s), or fails with the log (at once if it exited).
lab_synack_start() {
    local config=$1 log=$2 cpus=${3:-0} level=${4:-warn} ready=$WORK/synack.ready
    rm -f "$ready"
    ip netns exec "$SNS" taskset -c "$cpus" "$BIN" --log-level "$level" run --config "$config" \
        >"$log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 100); do
        [ -f "$ready" ] || ! kill -0 "$SPID" 2>/dev/null && break
        sleep 0.1
    done
    [ -f "$ready" ] || {
        echo "lab: synack run did not get ready: $(cat "$log")" >&2
        return 1
    }
}

# End one process the script started (PID; it stays in PIDS, whose kill on exit is then a
# no-op) and reap it.
lab_stop() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null || true
}
