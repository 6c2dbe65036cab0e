"""--identities: the percentiles, and SM_NOTIFY / NLM reclaim from a capture."""
import os
import struct
import tempfile
import unittest

from hanfslab import analysis, rpccap

VIP, ID1, ID2 = "10.77.0.50", "10.77.0.100", "10.77.0.101"


def ip(a):
    return bytes(int(x) for x in a.split("."))


def frame(src, dst, proto, payload):
    if proto == 17:
        l4 = struct.pack(">HHHH", 1000, 662, 8 + len(payload), 0) + payload
    else:
        l4 = struct.pack(">HHIIBBHHH", 900, 32803, 1, 1, 5 << 4, 0x18, 100, 0, 0)
        l4 += struct.pack(">I", 0x80000000 | len(payload)) + payload
    iph = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0, ip(src), ip(dst))
    return b"\0" * 12 + b"\x08\x00" + iph + l4


def opaque(b):
    return struct.pack(">I", len(b)) + b + b"\0" * (-len(b) % 4)


def call(xid, prog, vers, proc, args=b""):
    cred = struct.pack(">I", 1) + opaque(b"\0" * 20)
    verf = struct.pack(">II", 0, 0)
    return struct.pack(">IIIIII", xid, 0, 2, prog, vers, proc) + cred + verf + args


def reply(xid):
    return struct.pack(">IIIIII", xid, 1, 0, 0, 0, 0)


def nlm_lock_args(reclaim):
    return (opaque(b"ck") + struct.pack(">II", 0, 1) + opaque(b"client1-id000") + opaque(b"F" * 32)
            + opaque(b"owner") + struct.pack(">IQQII", 7, 0, 0, int(reclaim), 3))


def pcap(frames):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for t, f in frames:
        out += struct.pack("<IIII", int(t), int(round((t - int(t)) * 1e6)), len(f), len(f)) + f
    return out


class Percentiles(unittest.TestCase):
    def test_nearest_rank(self):
        xs = list(range(1, 101))
        self.assertEqual(analysis.percentile(xs, 50), 50)
        self.assertEqual(analysis.percentile(xs, 99), 99)
        self.assertEqual(analysis.percentile([3.0], 99), 3.0)
        self.assertIsNone(analysis.percentile([], 50))

    def test_pause_stats_skips_missing(self):
        st = analysis.pause_stats([1.0, None, 3.0, 2.0])
        self.assertEqual(st, {"n": 3, "median_s": 2.0, "p99_s": 3.0, "worst_s": 3.0})


class Capture(unittest.TestCase):
    def setUp(self):
        frames = [
            # ID1: one notification, retransmitted once, answered
            (100.0, frame(VIP, ID1, 17, call(11, 100024, 1, 6))),
            (100.5, frame(VIP, ID1, 17, call(11, 100024, 1, 6))),
            (100.6, frame(ID1, VIP, 17, reply(11))),
            # ID2: notified twice (two xids), both answered
            (100.1, frame(VIP, ID2, 17, call(21, 100024, 1, 6))),
            (100.2, frame(ID2, VIP, 17, reply(21))),
            (104.0, frame(VIP, ID2, 17, call(22, 100024, 1, 6))),
            (104.1, frame(ID2, VIP, 17, reply(22))),
            # reclaims: ID1 reclaims (answered), ID2 only a new lock (not a reclaim)
            (101.0, frame(ID1, VIP, 6, call(31, 100021, 4, 2, nlm_lock_args(True)))),
            (101.3, frame(VIP, ID1, 6, reply(31))),
            (101.5, frame(ID2, VIP, 6, call(41, 100021, 4, 2, nlm_lock_args(False)))),
            # some other RPC, ignored
            (101.6, frame(ID2, VIP, 6, call(51, 100003, 3, 7))),
        ]
        fd, self.path = tempfile.mkstemp(suffix=".pcap")
        with os.fdopen(fd, "wb") as f:
            f.write(pcap(sorted(frames, key=lambda x: x[0])))

    def tearDown(self):
        os.unlink(self.path)

    def test_calls(self):
        cs = rpccap.calls(self.path)
        kinds = [(c.kind, c.dst if c.kind == "notify" else c.src, c.xid) for c in cs]
        self.assertEqual(kinds, [("notify", ID1, 11), ("notify", ID2, 21), ("notify", ID1, 11),
                                 ("reclaim", ID1, 31), ("notify", ID2, 22)])
        self.assertAlmostEqual(cs[0].t_reply, 100.6, places=3)
        self.assertIsNone(cs[2].t_reply)  # the retransmission: the reply went to the first
        self.assertAlmostEqual(cs[3].t_reply, 101.3, places=3)

    def test_summary(self):
        s = analysis.notify_reclaim_summary(rpccap.calls(self.path), {ID1: "id1", ID2: "id2"}, {VIP}, 99.0)
        self.assertEqual(s["notified"], 2)
        self.assertEqual(s["last_notify_answered_s"], 5.1)
        self.assertEqual(s["reclaimed"], 1)
        self.assertEqual(s["last_reclaim_s"], 2.3)
        self.assertEqual(s["more_than_one_notification"], ["id2"])
        self.assertEqual(s["retransmitted_notification"], ["id1"])
        self.assertEqual(s["no_reclaim_seen"], ["id2"])
        self.assertEqual(s["not_notified"], [])

    def test_window(self):
        self.assertEqual([c.xid for c in rpccap.calls(self.path, 101.0, 102.0)], [31])


if __name__ == "__main__":
    unittest.main()


class LostLocksTest(unittest.TestCase):
    def test_the_probers_findings_name_the_identities(self):
        from hanfslab import report
        s = {"clients": {
            "client1-nfs-v3": {"prober": {"lost_locks": ["client2-id037-v3.data", "client2-id037-v3.lock0"]}},
            "client2-nfs-v3": {"prober": {"lost_locks": ["client1-id037-v3.lock0", "client1-nfs-v3.lock1"]}},
            "client1-id000-v3": {"prober": None},
        }}
        self.assertEqual(report.identities_with_lost_locks(s), ["client1-id037", "client2-id037"])
        self.assertEqual(report.identities_with_lost_locks({"clients": {}}), [])


def tcp(src, sport, dst, dport, flags, payload=b""):
    bits = sum(1 << rpccap.TCP_FLAGS.index(c) for c in flags)
    l4 = struct.pack(">HHIIBBHHH", sport, dport, 1, 1, 5 << 4, bits, 100, 0, 0) + payload
    iph = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, 6, 0, ip(src), ip(dst))
    return b"\0" * 12 + b"\x08\x00" + iph + l4


def arp(op, mac, sender, target):
    body = struct.pack(">HHBBH", 1, 0x0800, 6, 4, op) + mac + ip(sender) + b"\0" * 6 + ip(target)
    return b"\xff" * 6 + mac + b"\x08\x06" + body


class WireStory(unittest.TestCase):
    """The bridge's story of a client that never resumed: its segments to and
    from the floating address, folded, and the ARP for that address."""

    def setUp(self):
        mac_b = bytes.fromhex("020000000b0b")
        frames = [(99.0, tcp(ID1, 800, VIP, 2049, "A", b"x" * 40)),      # before the event: left out
                  (101.0, tcp(ID1, 800, VIP, 2049, "PA", b"x" * 40)),
                  (102.0, tcp(ID1, 800, VIP, 2049, "PA", b"x" * 40)),   # a retransmission: folded
                  (103.0, arp(2, mac_b, VIP, ID1)),
                  (104.0, tcp(VIP, 2049, ID1, 800, "R")),
                  (105.0, tcp(ID1, 801, VIP, 2049, "S")),
                  (106.0, tcp(ID2, 900, VIP, 2049, "S")),                # another client: left out
                  (108.0, tcp(ID1, 801, VIP, 2049, "S"))]
        fd, self.path = tempfile.mkstemp(suffix=".pcap")
        with os.fdopen(fd, "wb") as f:
            f.write(pcap(frames))

    def tearDown(self):
        os.unlink(self.path)

    def test_segments_flags_lengths_and_arp(self):
        segs = list(rpccap.tcp_segments(self.path))
        self.assertEqual([(s.sport, s.flags, s.length) for s in segs][:3], [(800, "A", 40), (800, "PA", 40), (800, "PA", 40)])
        self.assertEqual(segs[3].flags, "R")
        a = list(rpccap.arps(self.path))
        self.assertEqual([(x.op, x.mac, x.sender, x.target) for x in a], [("reply", "02:00:00:00:0b:0b", VIP, ID1)])

    def test_folded_story_of_one_client(self):
        lines = analysis.wire_story(rpccap.tcp_segments(self.path), rpccap.arps(self.path), ID1, VIP, 100.0, 200.0)
        self.assertEqual(lines, ["+1.0s..+2.0s client:800 -> 2049 PA data x2",
                                 "+3.0s ARP vip is-at 02:00:00:00:0b:0b",
                                 "+4.0s client:800 <- 2049 R",
                                 "+5.0s..+8.0s client:801 -> 2049 S x2"])

    def test_only_the_last_lines(self):
        lines = analysis.wire_story(rpccap.tcp_segments(self.path), rpccap.arps(self.path), ID1, VIP, 100.0, 200.0,
                                    limit=2)
        self.assertEqual(lines[0], "(2 earlier lines left out)")
        self.assertEqual(len(lines), 3)
