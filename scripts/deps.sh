#!/usr/bin/env bash
# Install what synack's build, tests and lab need, only where it is missing (Debian/apt).
# Sourced or run by scripts/test.sh and scripts/lab.sh.
#
#   scripts/deps.sh [bench-lab] [sweep] [plot]
#
# Extra words add what a benchmark script needs: bench-lab (scripts/bench-lab.sh: trafgen,
# wrk, nftables, a C compiler, taskset), sweep (scripts/bench-sweep.sh: a C compiler,
# taskset, chrt) and plot (gnuplot, for the PNG plots). The one installer of the project.
set -euo pipefail

need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
for extra in "$@"; do
    case "$extra" in
        bench-lab)
            command -v trafgen >/dev/null 2>&1 || need+=(netsniff-ng)
            command -v wrk >/dev/null 2>&1 || need+=(wrk)
            command -v nft >/dev/null 2>&1 || need+=(nftables)
            command -v cc >/dev/null 2>&1 || need+=(gcc)
            command -v taskset >/dev/null 2>&1 || need+=(util-linux) ;;
        sweep)
            command -v cc >/dev/null 2>&1 || need+=(gcc)
            command -v taskset >/dev/null 2>&1 || need+=(util-linux)
            command -v chrt >/dev/null 2>&1 || need+=(util-linux) ;;
        plot) command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox) ;;
        *) echo "synack: deps.sh: unknown extra $extra (bench-lab, sweep, plot)" >&2; exit 2 ;;
    esac
done
# asm/types.h for BPF builds comes with the multiarch kernel headers.
[ -e /usr/include/x86_64-linux-gnu/asm/types.h ] || [ -e /usr/include/asm/types.h ] || need+=(linux-libc-dev)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "synack: missing packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
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
