#!/usr/bin/env bash
# Install what synack's build, tests and lab need, only where it is missing (Debian/apt).
# Sourced or run by scripts/test.sh and scripts/lab.sh.
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
# perf for scripts/overload-profile.sh (perf record -C 0 under a flood).
command -v perf >/dev/null 2>&1 || need+=(linux-perf)
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
