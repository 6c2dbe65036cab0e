#!/usr/bin/env python3
"""NFS clients' side of a reboot notification, for the benchmark.

Stands for many NFSv3 clients at once: one UDP socket on port 111 answering
the portmapper's GETPORT (v2) and rpcbind's GETADDR (v3/v4) for the status
monitor (program 100024), and one on the statd port answering SM_NOTIFY, as
a client's rpcbind and rpc.statd would. It runs in the clients' network
namespace, whose interface holds every client address; IP_PKTINFO tells it
which client address each request was sent to (and replies come from that
address). It records, per client address, the CLOCK_MONOTONIC time of the
first SM_NOTIFY, and writes them to --out as JSON as soon as --expect
addresses have been notified; it keeps answering (sm-notify sends a second
SM_NOTIFY with the unqualified name) until it is terminated.

A real rpc.statd per client would do the same work on the wire but cannot
say when each notification arrived without a callout fork per message.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

PMAP_PROG, NSM_PROG = 100000, 100024
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def xdr_string(data, off):
    n = struct.unpack_from(">I", data, off)[0]
    s = data[off + 4:off + 4 + n]
    return s, off + 4 + ((n + 3) & ~3)


def xdr_pack_string(b):
    return struct.pack(">I", len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def parse_call(data):
    """(xid, prog, vers, proc, args offset) of an ONC RPC call, or None."""
    if len(data) < 40:
        return None
    xid, mtype, rpcvers, prog, vers, proc = struct.unpack_from(">IIIIII", data, 0)
    if mtype != 0 or rpcvers != 2:
        return None
    off = 24
    for _ in range(2):  # credential, verifier: flavor + opaque body
        _flavor, n = struct.unpack_from(">II", data, off)
        off += 8 + ((n + 3) & ~3)
    return xid, prog, vers, proc, off


def reply(xid, body=b""):
    # REPLY, MSG_ACCEPTED, verifier AUTH_NONE/0, SUCCESS
    return struct.pack(">IIIIII", xid, 1, 0, 0, 0, 0) + body


def udp_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", port))
    return s


def receive(s):
    data, anc, _flags, src = s.recvmsg(65536, socket.CMSG_SPACE(12))
    dst = None
    for level, kind, cdata in anc:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            dst = cdata[8:12]  # in_pktinfo.ipi_addr: the header's destination
    return data, src, dst


def send(s, msg, src, dst):
    anc = []
    if dst is not None:
        anc = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack(">I4s4s", 0, dst, b"\0" * 4))]
    s.sendmsg([msg], anc, 0, src)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--statd-port", type=int, default=662)
    a = ap.parse_args()

    pmap = udp_socket(111)
    statd = udp_socket(a.statd_port)
    first = {}
    calls = {"getport": 0, "notify": 0}
    written = False
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(a.ready, "w") as f:
        f.write(str(os.getpid()))

    def write():
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"first": first, "calls": calls}, f)
        os.rename(tmp, a.out)

    port_bytes = struct.pack(">I", a.statd_port)
    while True:
        ready, _, _ = select.select([pmap, statd], [], [], 1.0)
        for s in ready:
            data, src, dst = receive(s)
            c = parse_call(data)
            if c is None:
                continue
            xid, prog, vers, proc, off = c
            if s is pmap and prog == PMAP_PROG and proc == 3:
                calls["getport"] += 1
                wanted = struct.unpack_from(">I", data, off)[0]
                if vers == 2:
                    body = port_bytes if wanted == NSM_PROG else struct.pack(">I", 0)
                else:  # rpcbind GETADDR: a universal address
                    ip = socket.inet_ntoa(dst) if dst else "0.0.0.0"
                    ua = "%s.%d.%d" % (ip, a.statd_port >> 8, a.statd_port & 255)
                    body = xdr_pack_string(ua.encode() if wanted == NSM_PROG else b"")
                send(s, reply(xid, body), src, dst)
            elif s is statd and prog == NSM_PROG and proc == 6:
                now = time.monotonic()
                calls["notify"] += 1
                key = socket.inet_ntoa(dst) if dst else src[0]
                first.setdefault(key, now)
                send(s, reply(xid), src, dst)
            elif proc == 0:  # NULL
                send(s, reply(xid), src, dst)
        if not written and len(first) >= a.expect:
            write()
            written = True


if __name__ == "__main__":
    main()
