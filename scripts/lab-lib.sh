# scripts/lab-lib.sh: the shell veth lab of the benchmark scripts (sourced, not run).
#
#   . scripts/lab-lib.sh
#   lab_names sb$$          # CNS SNS (namespaces), VC VS (veth ends), CLIENT SERVER (IPv4),
#                           # CLIENT6 SERVER6 (IPv6)
#   lab_up                  # namespaces, veth pair, addresses, static neighbours; CMAC SMAC
#   pin_napi NS DEV CPU [RT] # threaded NAPI of DEV pinned to CPU (RT: SCHED_FIFO priority)
#   lab_down                # delete both namespaces (the veth goes with them)
#   lab_flood_up            # the flood lab's placement: NAPI for both veths (GRO on), the
#                           # server's threaded NAPI on CPU 0, the client's on CPU 1 at
#                           # SCHED_FIFO 50, flood sources 198.19.0.0/16 routed back
#   lab_bin ROOT            # BIN: build target/release/synack when BIN is empty; check it
#   lab_traps               # on exit (also failure, Ctrl-C): end the PIDS the script
#                           # started, lab_down, remove WORK (unless KEEP_WORK is set)
#
# Two namespaces joined by one single-queue veth pair: client 198.18.0.2 and 2001:2::2 on
# $VC, server 198.18.0.1 and 2001:2::1 on $VS (static neighbours, no DAD). TX checksum
# offload is off on both ends (a veth with it on leaves
# partial checksums, and GSO builds frames larger than an AF_XDP frame), and RX checksum
# offload too, so the receiver checks every checksum in software. Traffic stays in the two
# namespaces; call lab_down from an EXIT trap so they are removed also on failure.

lab_names() {
    local t=$1
    CNS=$t-c; SNS=$t-s; VC=${t}c; VS=${t}s
    CLIENT=198.18.0.2; SERVER=198.18.0.1
    CLIENT6=2001:2::2; SERVER6=2001:2::1
}

cx() { ip netns exec "$CNS" "$@"; }
sx() { ip netns exec "$SNS" "$@"; }

lab_up() {
    ip netns add "$CNS"
    ip netns add "$SNS"
    ip link add "$VC" netns "$CNS" type veth peer name "$VS" netns "$SNS"
    cx ethtool -K "$VC" tx off rx off >/dev/null
    sx ethtool -K "$VS" tx off rx off >/dev/null
    ip -n "$CNS" addr add $CLIENT/24 dev "$VC"
    ip -n "$SNS" addr add $SERVER/24 dev "$VS"
    ip -n "$CNS" addr add $CLIENT6/64 dev "$VC" nodad
    ip -n "$SNS" addr add $SERVER6/64 dev "$VS" nodad
    for ns in "$CNS" "$SNS"; do ip -n "$ns" link set lo up; done
    ip -n "$CNS" link set "$VC" up
    ip -n "$SNS" link set "$VS" up
    CMAC=$(cx cat /sys/class/net/"$VC"/address)
    SMAC=$(sx cat /sys/class/net/"$VS"/address)
    ip -n "$CNS" neigh replace $SERVER lladdr "$SMAC" dev "$VC" nud permanent
    ip -n "$SNS" neigh replace $CLIENT lladdr "$CMAC" dev "$VS" nud permanent
    ip -n "$CNS" neigh replace $SERVER6 lladdr "$SMAC" dev "$VC" nud permanent
    ip -n "$SNS" neigh replace $CLIENT6 lladdr "$CMAC" dev "$VS" nud permanent
}

lab_down() {
    ip netns del "$CNS" 2>/dev/null
    ip netns del "$SNS" 2>/dev/null
    return 0
}

# Switch veth DEV (in namespace NS) to threaded NAPI and pin its threads to CPU, with
# SCHED_FIFO priority RT when given. The veth needs NAPI first: an XDP program attached, or
# GRO on (`ethtool -K DEV gro on`). Kernel threads have no command line, so they are found
# by name (`napi/DEV-N`), never with pgrep -f.
pin_napi() {
    local ns=$1 dev=$2 cpu=$3 rt=${4:-} pid n=0
    ip netns exec "$ns" sh -c "echo 1 > /sys/class/net/$dev/threaded" || {
        echo "lab: cannot switch $dev to threaded NAPI" >&2
        return 1
    }
    sleep 0.1
    for pid in $(pgrep "^napi/$dev-"); do
        taskset -pc "$cpu" "$pid" >/dev/null || return 1
        if [ -n "$rt" ]; then chrt -f -p "$rt" "$pid" || return 1; fi
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || { echo "lab: no NAPI thread of $dev found" >&2; return 1; }
    echo "   pinned $n NAPI thread(s) of $dev to CPU $cpu${rt:+ (SCHED_FIFO $rt)}"
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

# The placement of the flood benchmarks (scripts/bench-sweep.sh, scripts/offload-profile.sh):
# all server receive work on CPU 0, the generator's side on CPU 1. GRO on: a veth has NAPI
# (and accepts XDP_TX frames from its peer) only with an XDP program or GRO; with GRO the
# NAPI, its threads and their pinning outlive every attach and detach.
lab_flood_up() {
    sx ethtool -K "$VS" gro on >/dev/null
    cx ethtool -K "$VC" gro on >/dev/null
    pin_napi "$SNS" "$VS" 0
    pin_napi "$CNS" "$VC" 1 50
    ip -n "$SNS" route add 198.19.0.0/16 via $CLIENT
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
