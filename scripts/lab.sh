#!/usr/bin/env bash
# Build synack and run `synack lab`: two private network namespaces joined by a veth pair,
# the endpoint in one, Linux clients and a bounded SYN flood in the other. Everything is
# removed afterwards (unless --keep). Arguments go to `synack lab`, e.g.
#   sudo scripts/lab.sh --connections 2000 --flood-packets 200000 --flood-secs 5
# Needs root, and Rust (cargo) on the PATH. Missing system tools are installed by
# scripts/deps.sh (apt-get, only what is missing).
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "lab.sh: needs root (network namespaces, XDP, AF_XDP): run it with sudo" >&2
    exit 1
fi

scripts/deps.sh lab

if ! command -v cargo >/dev/null 2>&1; then
    echo "lab.sh: cargo not found: install Rust stable (https://rustup.rs) and retry" >&2
    exit 1
fi

. scripts/lab-lib.sh
BIN=""
lab_bin "$PWD" || exit 1
exec "$BIN" lab "$@"
