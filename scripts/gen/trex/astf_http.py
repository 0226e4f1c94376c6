"""TRex advanced stateful (ASTF) HTTP client for synack's `http` listener.

Each flow: TRex's TCP stack opens a connection from 198.19.0.x, sends one GET, waits for
synack's fixed response (the default body "synack\\n": 106 bytes with headers and `Connection: close`; change
RESPONSE_LEN if [http] differs), and closes. `cps` sets new connections per second per
profile multiplier.

    ./t-rex-64 --astf -f astf_http.py -m 100000 -d 10 --astf-client-mask 0x1

Pointing it at synack on a real NIC: synack is the server, so run TRex with only its client
port (port 0) active (`--astf-client-mask 0x1`); the server template below is what TRex
would need for its own server side and is unused. Port 0 faces the NIC synack serves;
set its `dest_mac` (or `default_gw`) in trex_cfg.yaml to reach synack, and the server
address range below to one of synack's `addresses`. synack answers on L2 to the source MAC,
so no route is needed; a Linux-kernel baseline needs `ip route add 198.19.0.0/24 via <TRex
port address>`.
"""
from trex.astf.api import (ASTFAssociationRule, ASTFIPGen, ASTFIPGenDist, ASTFIPGenGlobal,
                           ASTFProfile, ASTFProgram, ASTFTCPClientTemplate,
                           ASTFTCPServerTemplate, ASTFTemplate)

REQUEST = b"GET / HTTP/1.1\r\nHost: synack\r\nConnection: close\r\n\r\n"
RESPONSE_LEN = 106


class HttpProfile:
    def get_profile(self, server="198.18.0.1", port=80, cps=1000, **kwargs):
        client = ASTFProgram()
        client.send(REQUEST)
        client.recv(RESPONSE_LEN)
        server_prog = ASTFProgram()
        server_prog.recv(len(REQUEST))
        server_prog.send(b"HTTP/1.1 200 OK\r\n\r\n")
        ip_gen = ASTFIPGen(glob=ASTFIPGenGlobal(ip_offset="1.0.0.0"),
                           dist_client=ASTFIPGenDist(ip_range=["198.19.0.1", "198.19.0.254"],
                                                     distribution="seq"),
                           dist_server=ASTFIPGenDist(ip_range=[server, server],
                                                     distribution="seq"))
        template = ASTFTemplate(
            client_template=ASTFTCPClientTemplate(program=client, ip_gen=ip_gen,
                                                  port=int(port), cps=float(cps)),
            server_template=ASTFTCPServerTemplate(program=server_prog,
                                                  assoc=ASTFAssociationRule(port=int(port))))
        return ASTFProfile(default_ip_gen=ip_gen, templates=template)


def register():
    return HttpProfile()
