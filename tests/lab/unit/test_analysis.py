"""Offline tests of the lab's analysis (no UML, no cluster): python3 -m unittest
discover -s tests/lab/unit -t tests/lab (scripts/test.sh runs them)."""
import os
import tempfile
import unittest

from hanfslab import analysis as A

AGENTS = {"nfs-fs": "ocf:heartbeat:Filesystem", "nfs-grace": "ocf:hanfs:nfs-grace",
          "nfs-data": "ocf:hanfs:nfs-export", "nfs-ip": "ocf:hanfs:float-ip",
          "nfs-statd": "ocf:hanfs:statd-holding"}


def act(t, node, rsc, op, secs, rc=0):
    return {"t": t, "node": node, "resource": rsc, "op": op, "rc": rc, "seconds": secs}


# a move at t=100 from nodea to nodeb
MOVE = [act(100.5, "nodea", "nfs-statd", "stop", 0.3), act(101.0, "nodea", "nfs-ip", "stop", 0.2),
        act(101.6, "nodea", "nfs-data", "stop", 0.5), act(102.4, "nodea", "nfs-grace", "stop", 0.6),
        act(107.0, "nodea", "nfs-fs", "stop", 4.0), act(110.0, "nodeb", "nfs-fs", "start", 2.0),
        act(110.5, "nodeb", "nfs-grace", "start", 0.3), act(111.0, "nodeb", "nfs-data", "start", 0.3),
        act(111.6, "nodeb", "nfs-ip", "start", 0.4), act(112.0, "nodeb", "nfs-statd", "start", 0.3)]


class Lines:
    def __init__(self, text):
        self.f = tempfile.NamedTemporaryFile("w", delete=False)
        self.f.write(text)
        self.f.close()
        self.path = self.f.name

    def __enter__(self):
        return self.path

    def __exit__(self, *a):
        os.unlink(self.path)


class AddressTimes(unittest.TestCase):
    def test_move(self):
        self.assertEqual(A.address_times(MOVE, AGENTS, "nodea", "nodeb", 100.0), (101.0, 111.6))

    def test_crash_has_no_stop_the_event_is_the_removal(self):
        acts = [a for a in MOVE if a["node"] == "nodeb"]
        self.assertEqual(A.address_times(acts, AGENTS, "nodea", "nodeb", 100.0), (100.0, 111.6))

    def test_a_failed_start_is_not_up_and_portblock_unblock_counts(self):
        acts = [act(111.6, "nodeb", "nfs-ip", "start", 0.4, rc=1)]
        self.assertEqual(A.address_times(acts, AGENTS, "nodea", "nodeb", 100.0), (100.0, None))
        acts = [act(111.6, "nodeb", "nfs-ip", "start", 0.4), act(112.5, "nodeb", "nfs-unblock", "start", 0.2)]
        self.assertEqual(A.address_times(acts, {}, "nodea", "nodeb", 100.0)[1], 112.5)


class CriticalPath(unittest.TestCase):
    def test_splits_the_span(self):
        cp = A.critical_path(MOVE, AGENTS, 101.0, 111.6)
        self.assertEqual(cp["span_s"], 10.6)
        # data stop .5 + grace stop .6 + grace start .3 + data start .3 + ip start .4
        self.assertAlmostEqual(cp["hanfs_s"], 2.1, places=3)
        self.assertAlmostEqual(cp["other_agents_s"], 6.0, places=3)
        self.assertAlmostEqual(cp["between_actions_s"], 2.5, places=3)
        self.assertNotIn("nfs-statd", [r["resource"] for r in cp["actions"]])

    def test_actions_at_the_same_time_count_once(self):
        # after a crash the fence device starts beside the Filesystem, and a
        # hanfs start overlaps the end of the Filesystem's
        acts = [act(104.0, "nodeb", "nfs-fence", "start", 3.0), act(105.0, "nodeb", "nfs-fs", "start", 3.0),
                act(105.5, "nodeb", "nfs-grace", "start", 1.0), act(107.0, "nodeb", "nfs-ip", "start", 0.5)]
        agents = dict(AGENTS, **{"nfs-fence": "stonith:fence_x"})
        cp = A.critical_path(acts, agents, 100.0, 107.0)
        self.assertAlmostEqual(cp["hanfs_s"], 1.5, places=3)          # 104.5-105.5, 106.5-107
        self.assertAlmostEqual(cp["other_agents_s"], 3.5, places=3)   # 101-104.5 without hanfs
        self.assertAlmostEqual(cp["between_actions_s"], 2.0, places=3)
        self.assertAlmostEqual(cp["hanfs_s"] + cp["other_agents_s"] + cp["between_actions_s"], cp["span_s"])

    def test_no_address_up(self):
        self.assertIsNone(A.critical_path(MOVE, AGENTS, 101.0, None))


class NewLock(unittest.TestCase):
    def test_first_grant_after_the_service_is_reachable(self):
        log = ("95.000 95.010 GRANTED\n"
               "101.000 150.000 GRANTED\n"   # waited through the outage and grace
               "151.000 151.010 GRANTED\n"
               "torn line\n")
        with Lines(log) as p:
            w = A.newlock_window(p, 111.6, 200.0)
        self.assertEqual(w["new_lock_s"], 38.4)
        self.assertEqual(w["attempt_started_s"], -10.6)

    def test_none_granted(self):
        with Lines("101.000 150.000 ERR_EIO\n") as p:
            w = A.newlock_window(p, 111.6, 200.0)
        self.assertIsNone(w["new_lock_s"])
        self.assertEqual(w["errors"], ["EIO"])


class Writer(unittest.TestCase):
    def test_longest_pause_and_resume(self):
        log = "".join(f"OK {i} {t} {t + 0.01}\n" for i, t in enumerate([99.0, 99.1, 99.2, 112.0, 112.1]))
        with Lines(log) as p:
            w = A.writer_window(p, 100.0, 120.0)
        self.assertTrue(w["resumed"])
        self.assertAlmostEqual(w["max_pause_s"], 12.8, places=3)
        self.assertAlmostEqual(w["resumed_at"], 112.01, places=3)


class Timeline(unittest.TestCase):
    def test_in_order_with_clients(self):
        clients = {"c1-v3": {"writer": {"resumed_at": 112.3}, "newlock": {"new_lock_s": 2.0}}}
        tl = A.timeline(100.0, MOVE, 101.0, 111.6, clients)
        ts = [e["t_s"] for e in tl]
        self.assertEqual(ts, sorted(ts))
        whats = [e["what"] for e in tl]
        self.assertIn("address removed", whats)
        self.assertIn("c1-v3: first write after the pause", whats)
        self.assertEqual(tl[-1], {"t_s": 13.6, "what": "c1-v3: first new lock"})


if __name__ == "__main__":
    unittest.main()


class OpResults(unittest.TestCase):
    def test_recurring_monitor_results_with_their_code(self):
        from hanfslab import cluster
        import datetime
        log = ("Dec 02 08:34:00.798 nodea pacemaker-controld  [799] (log_executor_event) \tnotice: Result of monitor "
               "operation for nfs-grace on nodea: ok | CIB update 38, graph action unconfirmed; call=35 "
               "key=nfs-grace_monitor_10000 rc=0\n"
               "Dec 02 08:34:21.918 nodea pacemaker-controld  [799] (log_executor_event) \tinfo: Result of monitor "
               "operation for nfs-grace on nodea: Cancelled | graph action confirmed; call=35 key=nfs-grace_monitor_10000\n"
               "Dec 02 08:34:30.100 nodea pacemaker-controld  [799] (log_executor_event) \tnotice: Result of monitor "
               "operation for nfs-grace on nodea: error | CIB update 40; call=36 key=nfs-grace_monitor_10000 rc=1\n"
               "Dec 02 08:34:31.100 nodea pacemaker-controld  [799] (log_executor_event) \tnotice: Result of monitor "
               "operation for nfs-data on nodea: error | call=37 key=nfs-data_monitor_10000 rc=7\n")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "pacemaker-1.log"), "w") as f:
                f.write(log)
            t0 = datetime.datetime(2026, 12, 2, 0, 0).timestamp()
            got = cluster.op_results([d], "nfs-grace", "monitor", t0, t0 + 86400)
        self.assertEqual([(g["rc"], g["text"]) for g in got], [(0, "ok"), (1, "error")])


# tcpdump -tt -e -n arp on the lab bridge (lines from a lab run)
ARP = """\
1796217975.034880 36:09:8d:27:a8:c3 > 3e:ed:9f:e7:4d:c6, ethertype ARP (0x0806), length 42: Reply 10.77.0.12 is-at 36:09:8d:27:a8:c3, length 28
1796217992.263934 3e:ed:9f:e7:4d:c6 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.77.0.50 tell 0.0.0.0, length 28
1796217992.566559 3e:ed:9f:e7:4d:c6 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.77.0.50 tell 10.77.0.50, length 28
1796217993.100000 52:54:00:00:00:21 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 10.77.0.50 tell 10.77.0.21, length 28
1796217993.100100 3e:ed:9f:e7:4d:c6 > 52:54:00:00:00:21, ethertype ARP (0x0806), length 42: Reply 10.77.0.50 is-at 3e:ed:9f:e7:4d:c6, length 28
garbage line
1796218001.000000 36:09:8d:27:a8:c3 > 52:54:00:00:00:21, ethertype ARP (0x0806), length 42: Reply 10.77.0.50 is-at 36:09:8d:27:a8:c3, length 28
"""


class ArpClaims(unittest.TestCase):
    def test_replies_and_gratuitous_requests_claim_probes_and_questions_do_not(self):
        claims = A.arp_claims(ARP, "10.77.0.50")
        self.assertEqual([m for _, m in claims],
                         ["3e:ed:9f:e7:4d:c6", "3e:ed:9f:e7:4d:c6", "36:09:8d:27:a8:c3"])
        self.assertEqual(A.arp_claims(ARP, "10.77.0.51"), [])

    def test_a_mac_coming_back_shows_as_a_new_run(self):
        c = [(1.0, "a"), (2.0, "a"), (3.0, "b"), (4.0, "a")]
        self.assertEqual(A.arp_owner_changes(c), [(1.0, 2.0, "a"), (3.0, 3.0, "b"), (4.0, 4.0, "a")])
        self.assertEqual(A.arp_owner_changes([]), [])


class SoakVerdict(unittest.TestCase):
    @staticmethod
    def rounds(pauses, files):
        return [{"pause_s": p, "hanfs_s": 2.0, "footprint": {"holding files": f}} for p, f in zip(pauses, files)]

    def test_steady_rounds_pass_with_median_and_worst(self):
        summary, problems = A.soak_verdict(self.rounds([9, 15, 9.5, 14, 9, 15.5], [4] * 6))
        self.assertEqual(problems, [])
        self.assertEqual((summary["median_pause_s"], summary["worst_pause_s"]), (11.75, 15.5))

    def test_growing_pauses_and_files_are_problems(self):
        _, problems = A.soak_verdict(self.rounds([9, 9, 9, 30, 31, 32], [4, 4, 4, 9, 14, 19]))
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("longest pause grew", problems[0])
        self.assertIn("holding files grew", problems[1])

    def test_too_few_rounds_compare_nothing(self):
        self.assertEqual(A.soak_verdict(self.rounds([9, 50], [1, 90]))[1], [])


class CpuWindowTest(unittest.TestCase):
    def test_whole_intervals_in_the_window(self):
        lines = [{"t": t, "total": 100, "busy": b, "nfsd": n, "lockd": 1, "statd": 2, "statd_children": 3,
                  "sm_notify": 0} for t, b, n in [(10, 10, 0), (11, 90, 40), (12, 100, 60), (13, 20, 0)]]
        w = A.cpu_window(lines, 10.2, 11.5)
        self.assertEqual((w["samples"], w["to"], w["busy"]), (2, 12, 0.95))
        self.assertEqual((w["nfsd_s"], w["lockd_s"], w["statd_children_s"]), (1.0, 0.02, 0.06))
        self.assertIsNone(A.cpu_window(lines, 13, 20))
        self.assertIsNone(A.cpu_window([], 0, 1))
