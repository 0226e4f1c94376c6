# scripts/lab-lib.sh: the benchmark scripts' side of the netns lab (sourced, not run). The
# lab itself is the project's one netns library, src/lab/netns.rs, called through
# `synack lab up|down|pin-napi`; this file only wraps those calls for the scripts' traps.
#
#   . scripts/lab-lib.sh
#   lab_bin ROOT            # BIN: build target/release/synack when BIN is empty; check it
#   lab_names sb$$          # the lab's name (LAB)
#   lab_traps               # on exit (also failure, Ctrl-C): end the PIDS the script
#                           # started, lab_down, remove WORK (unless KEEP_WORK is set)
#   lab_up [ARGS]           # `synack lab up --name $LAB ARGS`: namespaces, veth pair,
#                           # addresses, static neighbours; sets CNS SNS (namespaces), VC VS
#                           # (veth ends), CLIENT SERVER (IPv4), CLIENT6 SERVER6 (IPv6), CMAC SMAC
#   lab_up "${LAB_FLOOD[@]}" # the flood benchmarks' placement (see LAB_FLOOD below)
#   lab_pin SIDE:CPU[:FIFO]  # threaded NAPI of the client or server veth pinned to CPU
#   lab_down                # `synack lab down --name $LAB` (idempotent)
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
# nothing to clean up); lab_bin and the traps are the scripts' own process handling.

# The flood benchmarks' placement (scripts/bench-sweep.sh, scripts/offload-profile.sh): all
# server receive work on CPU 0, the generator's side on CPU 1. GRO on: a veth has NAPI (and
# accepts XDP_TX frames from its peer) only with an XDP program or GRO; with GRO the NAPI,
# its threads and their pinning outlive every attach and detach. The client's NAPI thread
# runs at SCHED_FIFO 50 so a spinning generator on CPU 1 cannot starve it. Flood sources
# 198.19.0.0/16 are routed back to the client.
LAB_FLOOD=(--gro both --napi server:0 --napi client:1:50 --route-back 198.19.0.0/16)

lab_names() {
    LAB=$1
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
