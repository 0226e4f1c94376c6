#!/usr/bin/env bash
# nping (from nmap) against synack: a paced probe that reports per-probe round trips, for
# latency and correctness checks at low rates (it tops out at a few thousand packets/s).
#
#   scripts/gen/nping.sh TARGET [PORT] [RATE] [COUNT]
#   e.g. in the lab:  ip netns exec <client-ns> scripts/gen/nping.sh 198.18.0.1 80 1000 5000
#
# --tcp sends raw SYNs and matches the SYN-ACKs (RTT min/avg/max in the summary). Because the
# SYNs come from the sender's own address and nping does not own the connection, the
# sender's kernel answers every SYN-ACK with RST; synack (SYN cookies, no state) drops those
# RSTs as `rst_no_connection`. --tcp-connect instead uses full kernel connect()s (the
# kernel's handshake, client side), one at a time.
#
# Real NIC: run it on a host that reaches one of synack's `addresses`; synack answers on L2
# to the frame's source MAC, so the reply goes back through the router that sent the SYN.
set -euo pipefail
TARGET=${1:?TARGET}; PORT=${2:-80}; RATE=${3:-1000}; COUNT=${4:-5000}
"$(dirname "$0")/../deps.sh" nping
exec timeout 120 nping --tcp -p "$PORT" --flags syn --rate "$RATE" -c "$COUNT" -H "$TARGET"
