#!/usr/bin/env bash
# hping3 SYN flood against synack (or the kernel baseline). Simple and everywhere, but one
# raw socket and one core: about 0.2 M SYN/s on the lab machine, below what either server
# answers, so it shows "nothing is dropped", not capacity. Bounded by time: --flood ignores -c,
# so `timeout -s INT SECS` stops it (hping3 then prints its packet count).
#
#   scripts/gen/hping3.sh IFACE TARGET [PORT] [SECS]
#   e.g. in the lab:  ip netns exec <client-ns> scripts/gen/hping3.sh <client-veth> 198.18.0.1 80 5
#
# --rand-source picks sources from all of IPv4: the replies then go to the target's default
# route, not back to us, so count answers on the target (synack stats JSON `synack_sent`,
# kernel `nstat TcpExtSyncookiesSent`). To see the replies on the sender instead, pin the
# source (-a 198.19.0.7) and make the target route 198.19.0.0/24 back to the sender; the
# sender's kernel then drops them as not local (no RST), or would RST them if -a is one of
# its own addresses (doubling the traffic: avoid).
#
# Real NIC: IFACE is the sender's NIC facing synack; TARGET one of synack's `addresses`
# (its XDP program redirects only TCP to those addresses and `listen` ports). Use several
# hping3 processes pinned with taskset for more than one core.
set -euo pipefail
IFACE=${1:?IFACE}; TARGET=${2:?TARGET}; PORT=${3:-80}; SECS=${4:-5}
"$(dirname "$0")/../deps.sh" hping3
timeout -s INT "$SECS" hping3 -I "$IFACE" -S -p "$PORT" --flood --rand-source "$TARGET" || [ $? -eq 124 ]
