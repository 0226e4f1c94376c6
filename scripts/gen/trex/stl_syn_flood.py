"""TRex stateless (STL) SYN flood for synack.

Random source address in 198.19.0.1-198.19.0.254 and random source port per packet, TCP
checksum filled in by the NIC (STLVmFixChecksumHw), so one TRex core sends several Mpps.

    ./t-rex-64 -i                        # TRex server, ports bound to DPDK (see trex_cfg.yaml)
    trex-console> start -f stl_syn_flood.py -m 2mpps -d 10 -t dst=198.18.0.1,dport=80

Pointing it at synack on a real NIC: port 0 of TRex is cabled (or switched) to the NIC that
synack serves; `dest_mac` in trex_cfg.yaml is that NIC's MAC, `dst` one of synack's
`addresses`, `dport` a `listen` port. synack answers on L2 to the frame's source MAC, so the
SYN-ACKs come back to TRex port 0 without any route; count them with TRex's port RX
counters (`stats --ps`) and on synack (`synack_sent` in the stats JSON). Against the Linux
kernel as the baseline, route 198.19.0.0/24 back to TRex's port (`ip route add
198.19.0.0/24 via <TRex port address>`) and set tcp_syncookies=2.
"""
from trex.stl.api import (STLClient, STLPktBuilder, STLScVmRaw, STLStream, STLTXCont,
                          STLVmFixChecksumHw, STLVmFixIpv4, STLVmFlowVar, STLVmWrFlowVar,
                          CTRexVmInsFixHwCs, Ether, IP, TCP)


class SynFlood:
    def get_streams(self, direction=0, dst="198.18.0.1", dport=80, **kwargs):
        base = Ether() / IP(src="198.19.0.1", dst=dst) / TCP(sport=1024, dport=int(dport), flags="S",
                                                          window=64240, options=[("MSS", 1460)])
        vm = STLScVmRaw([
            STLVmFlowVar(name="ip_src", min_value="198.19.0.1", max_value="198.19.0.254",
                         size=4, op="random"),
            STLVmFlowVar(name="sport", min_value=1024, max_value=65535, size=2, op="random"),
            STLVmFlowVar(name="seq", min_value=0, max_value=0xFFFFFFFF, size=4, op="random"),
            STLVmWrFlowVar(fv_name="ip_src", pkt_offset="IP.src"),
            STLVmWrFlowVar(fv_name="sport", pkt_offset="TCP.sport"),
            STLVmWrFlowVar(fv_name="seq", pkt_offset="TCP.seq"),
            STLVmFixIpv4(offset="IP"),
            STLVmFixChecksumHw(l3_offset="IP", l4_offset="TCP",
                               l4_type=CTRexVmInsFixHwCs.L4_TYPE_TCP),
        ])
        return [STLStream(packet=STLPktBuilder(pkt=base, vm=vm), mode=STLTXCont())]


def register():
    return SynFlood()
