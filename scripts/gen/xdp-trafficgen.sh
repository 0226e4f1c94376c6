#!/usr/bin/env bash
# xdp-trafficgen (xdp-tools) against synack: XDP-based packet generation from the kernel
# (bpf_prog_run in a loop), one of the fastest ways to send from a Linux host without DPDK.
#
#   scripts/gen/xdp-trafficgen.sh IFACE TARGET [PORT] [PACKETS] [SECS]
#   e.g. in the lab:  ip netns exec <client-ns> scripts/gen/xdp-trafficgen.sh <client-veth> 198.18.0.1 9 1000000
#
# Two modes are useful:
#   - `xdp-trafficgen tcp`: opens ONE real TCP connection to TARGET:PORT and streams data on
#     it (a bulk-throughput test of synack's discard/echo listeners, not a connection rate);
#   - `xdp-trafficgen udp`: UDP only, so not for synack (its XDP program passes UDP to the
#     kernel); listed for completeness.
# For SYN floods use trafgen (scripts/gen/trafgen-syn.cfg) or `synack gen --syn-flood`.
#
# Measured on the lab machine (xdp-tools 1.3.1, Linux 6.18): xdp-trafficgen does NOT load
# ("failed to find kernel BTF type ID of 'xdp_redirect_map_err'", like xdp-bench); use it
# on a kernel it supports. `tcp` mode does the handshake through the sender's kernel and
# loads its own XDP program on IFACE (-m skb for generic mode, as on veth without a peer
# program). On a real NIC: IFACE is the NIC facing synack, TARGET one of synack's
# `addresses`, PORT a `listen` port in discard or echo mode. Bounded by --num-packets and
# `timeout SECS`.
set -euo pipefail
IFACE=${1:?IFACE}; TARGET=${2:?TARGET}; PORT=${3:-9}; PACKETS=${4:-1000000}; SECS=${5:-10}
"$(dirname "$0")/../deps.sh" xdp-tools
exec timeout -s INT "$SECS" xdp-trafficgen tcp -i "$IFACE" -p "$PORT" -n "$PACKETS" -m skb "$TARGET"
