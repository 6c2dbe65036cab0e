"""statd and NLM calls seen on the lab bridge (a tcpdump pcap, stdlib only).

What the many-identity figures come from: every SM_NOTIFY (statd, program
100024, procedure 6) and every NLM LOCK with reclaim set (program 100021,
version 4, LOCK or LOCK_MSG), with the replies that matched them by xid.
A TCP segment is taken to start an RPC record (NLM calls are small: one
segment each); anything that does not parse as one is skipped.
"""
import struct
from dataclasses import dataclass

STATD, NLM = 100024, 100021
SM_NOTIFY = 6
NLM_LOCK, NLM_LOCK_MSG = 2, 7


@dataclass
class Call:
    t: float
    kind: str        # "notify" | "reclaim"
    src: str
    dst: str
    xid: int
    t_reply: float = None


def frames(path):
    """(time, Ethernet frame) of every record in the pcap."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end, nano = "<", magic == b"\x4d\x3c\xb2\xa1"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end, nano = ">", magic == b"\xa1\xb2\x3c\x4d"
    else:
        raise ValueError(f"{path}: not a pcap file")
    hdr = struct.Struct(end + "IIII")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = hdr.unpack_from(data, off)
        off += 16
        yield sec + frac / (1e9 if nano else 1e6), data[off:off + incl]
        off += incl


def _ip4(b):
    return ".".join(map(str, b))


def ipv4(path):
    """(time, IPv4 header and payload, its header length) of every IPv4 packet."""
    for t, pkt in frames(path):
        if len(pkt) >= 34 and pkt[12:14] == b"\x08\x00":
            yield t, pkt[14:], (pkt[14] & 0x0F) * 4


def packets(path):
    """(time, src, dst, proto, payload) of every IPv4 UDP/TCP packet in the pcap."""
    for t, ip, ihl in ipv4(path):
        proto = ip[9]
        src, dst = _ip4(ip[12:16]), _ip4(ip[16:20])
        l4 = ip[ihl:]
        if proto == 17 and len(l4) >= 8:
            payload = l4[8:]
        elif proto == 6 and len(l4) >= 20:
            payload = l4[(l4[12] >> 4) * 4:]
            if len(payload) < 4:
                continue
            payload = payload[4:]  # the record mark
        else:
            continue
        yield t, src, dst, proto, payload


TCP_FLAGS = "FSRPAU"  # FIN SYN RST PSH ACK URG, bit 0 first


@dataclass
class Segment:
    t: float
    src: str
    sport: int
    dst: str
    dport: int
    flags: str       # e.g. "S", "SA", "RA", "FA", "A"
    length: int      # TCP payload bytes (from the IP length, not the snap length)


def tcp_segments(path):
    """Every IPv4 TCP segment's addresses, ports, flags and payload length."""
    for t, ip, ihl in ipv4(path):
        if ip[9] != 6 or len(ip) < ihl + 14:
            continue
        l4 = ip[ihl:]
        sport, dport = struct.unpack_from(">HH", l4, 0)
        bits = l4[13]
        flags = "".join(c for i, c in enumerate(TCP_FLAGS) if bits & (1 << i))
        total = struct.unpack_from(">H", ip, 2)[0]
        length = max(0, total - ihl - (l4[12] >> 4) * 4)
        yield Segment(t, _ip4(ip[12:16]), sport, _ip4(ip[16:20]), dport, flags, length)


@dataclass
class Arp:
    t: float
    op: str          # "request" | "reply"
    mac: str         # the sender's hardware address
    sender: str
    target: str


def arps(path):
    """Every ARP (Ethernet, IPv4) request and reply."""
    for t, pkt in frames(path):
        if len(pkt) < 42 or pkt[12:14] != b"\x08\x06":
            continue
        a = pkt[14:]
        op = struct.unpack_from(">H", a, 6)[0]
        yield Arp(t, {1: "request", 2: "reply"}.get(op, str(op)), ":".join(f"{x:02x}" for x in a[8:14]),
                  _ip4(a[14:18]), _ip4(a[24:28]))


def _opaque(b, off):
    n = struct.unpack_from(">I", b, off)[0]
    return off + 4 + ((n + 3) & ~3)


def parse_rpc(payload):
    """("call", xid, prog, vers, proc, args offset) or ("reply", xid), or None."""
    if len(payload) < 8:
        return None
    xid, mtype = struct.unpack_from(">II", payload, 0)
    if mtype == 1:
        return ("reply", xid)
    if mtype != 0 or len(payload) < 40:
        return None
    rpcvers, prog, vers, proc = struct.unpack_from(">IIII", payload, 8)
    if rpcvers != 2:
        return None
    try:
        off = _opaque(payload, 28)      # credential (flavor at 24, then opaque)
        off = _opaque(payload, off + 4)  # verifier
    except struct.error:
        return None
    return ("call", xid, prog, vers, proc, off)


def nlm_reclaim(payload, off):
    """Is this NLMv4 LOCK call's reclaim flag set? None if the args are cut."""
    try:
        off = _opaque(payload, off)      # cookie
        off += 8                         # block, exclusive
        off = _opaque(payload, off)      # caller_name
        off = _opaque(payload, off)      # fh
        off = _opaque(payload, off)      # oh
        off += 4 + 8 + 8                 # svid, l_offset, l_len
        return struct.unpack_from(">I", payload, off)[0] == 1
    except struct.error:
        return None


def calls(path, t_from=0.0, t_to=float("inf")):
    """Every SM_NOTIFY and NLM reclaim call between t_from and t_to, with its reply time."""
    out, pending = [], {}
    for t, src, dst, _, payload in packets(path):
        if t < t_from or t > t_to:
            continue
        r = parse_rpc(payload)
        if r is None:
            continue
        if r[0] == "reply":
            c = pending.get((dst, src, r[1]))
            if c is not None and c.t_reply is None:
                c.t_reply = t
            continue
        _, xid, prog, vers, proc, off = r
        if prog == STATD and proc == SM_NOTIFY:
            kind = "notify"
        elif prog == NLM and vers == 4 and proc in (NLM_LOCK, NLM_LOCK_MSG) and nlm_reclaim(payload, off):
            kind = "reclaim"
        else:
            continue
        c = Call(t, kind, src, dst, xid)
        out.append(c)
        pending.setdefault((src, dst, xid), c)
    return out
