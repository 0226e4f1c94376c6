#!/usr/bin/env bash
# The one installer: every script of synack calls it for what it needs, and it installs
# (Debian/apt) only what is missing. `apt-get update` runs at most once, and only then.
#
#   scripts/deps.sh                 # build + test suite (the default group)
#   scripts/deps.sh lab bench       # several groups
#   scripts/deps.sh --list          # what each group checks
#
# Groups (each line: a check, then the Debian package that satisfies it):
#   core   clang, libbpf headers, the multiarch asm/ headers, ethtool, iproute2, python3,
#          curl, tshark, libxdp + xdp-loader: the build (build.rs compiles the XDP programs)
#          and the test suite (xdp.attach = "dispatcher" loads libxdp at run time)
#   lab    core + procps (kill)
#   bench  core + gcc, taskset, trafgen, wrk, nftables
#   sweep  core + gcc, taskset, chrt (scripts/bench-sweep.sh)
#   plot   gnuplot (PNG plots of benchmark sweeps)
#   perf   perf (profiles of the benchmarks)
#   gen    hping3, nping, xdp-tools (the third-party generators in scripts/gen/); each of
#          them is also a group of its own
set -euo pipefail

# Debian's multiarch include dir for this machine (asm/types.h for the BPF target).
multiarch() {
    if command -v gcc >/dev/null 2>&1 && gcc -print-multiarch >/dev/null 2>&1; then
        gcc -print-multiarch
    else
        echo "$(uname -m)-linux-gnu"
    fi
}

# check:package pairs for one group. A check is a command name, or a path (starting with /).
group() {
    case "$1" in
        core)
            echo "clang:clang /usr/include/bpf/bpf_helpers.h:libbpf-dev" \
                "/usr/include/$(multiarch)/asm/types.h:linux-libc-dev" \
                "ethtool:ethtool ip:iproute2 ss:iproute2 python3:python3 curl:curl tshark:tshark" \
                "/usr/lib/$(multiarch)/libxdp.so.1:libxdp1 xdp-loader:xdp-tools" ;;
        lab) group core; echo "kill:procps" ;;
        bench) group core; echo "cc:gcc taskset:util-linux trafgen:netsniff-ng wrk:wrk nft:nftables" ;;
        sweep) group core; echo "cc:gcc taskset:util-linux chrt:util-linux" ;;
        plot) echo "gnuplot:gnuplot-nox" ;;
        perf) echo "perf:linux-perf" ;;
        hping3) echo "hping3:hping3" ;;
        nping) echo "nping:nmap" ;;
        xdp-tools) echo "xdp-trafficgen:xdp-tools" ;;
        gen) group hping3; group nping; group xdp-tools ;;
        *) echo "scripts/deps.sh: unknown group '$1' (core, lab, bench, sweep, plot, perf, gen, hping3, nping, xdp-tools)" >&2
           return 2 ;;
    esac
}

present() {
    case "$1" in
        /*) [ -e "$1" ] || { [ "${1##*/}" = types.h ] && [ -e /usr/include/asm/types.h ]; } ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(core)
if [ "${groups[0]}" = --list ]; then
    for g in core lab bench sweep plot perf gen; do echo "$g: $(group "$g" | tr '\n' ' ')"; done
    exit 0
fi

need=()
for g in "${groups[@]}"; do
    pairs=$(group "$g") || exit 2
    for pair in $pairs; do
        check=${pair%%:*}
        pkg=${pair##*:}
        present "$check" || [[ " ${need[*]:-} " == *" $pkg "* ]] || need+=("$pkg")
    done
done

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "synack: missing packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "synack: missing packages ${need[*]} and no apt-get: install them by hand" >&2
        exit 1
    fi
    echo "synack: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "synack: cargo not found: install Rust stable (rustup) first" >&2
    exit 1
fi
