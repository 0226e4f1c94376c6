#!/usr/bin/env bash
# Build synack and run `synack lab`: two private network namespaces joined by a veth pair,
# the endpoint in one, Linux clients and a bounded SYN flood in the other. Everything is
# removed afterwards (unless --keep). Arguments go to `synack lab`, e.g.
#   sudo scripts/lab.sh --connections 2000 --flood-packets 200000 --flood-secs 5
# Needs root, and Rust (cargo) on the PATH. Missing system tools are installed with
# apt-get (Debian/Ubuntu); `apt-get update` runs once, and only if something is missing.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "lab.sh: needs root (network namespaces, XDP, AF_XDP): run it with sudo" >&2
    exit 1
fi

# command -> Debian package that provides it
declare -A need=(
    [ip]=iproute2
    [ethtool]=ethtool
    [clang]=clang
    [kill]=procps
)
missing=()
for c in "${!need[@]}"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("${need[$c]}")
done
# bpf/bpf_helpers.h for the XDP program (build.rs compiles it with clang).
if [ ! -e /usr/include/bpf/bpf_helpers.h ]; then
    missing+=(libbpf-dev)
fi
# asm/types.h for the BPF target (Debian keeps it under the multiarch include dir).
if [ ! -e "/usr/include/$(uname -m)-linux-gnu/asm/types.h" ] && [ ! -e /usr/include/asm/types.h ]; then
    missing+=(linux-libc-dev)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "lab.sh: missing packages ${missing[*]} and no apt-get: install them by hand" >&2
        exit 1
    fi
    echo "lab.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "lab.sh: cargo not found: install Rust stable (https://rustup.rs) and retry" >&2
    exit 1
fi

cargo build --release
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/synack" lab "$@"
