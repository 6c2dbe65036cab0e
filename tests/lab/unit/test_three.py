"""Offline tests of the three-node configuration's pure parts: per-service
pause attribution, corosync-quorumtool parsing, the quorum options and the
servers each configuration boots (no UML, no cluster)."""
import types
import unittest

from hanfslab import analysis as A
from hanfslab import cluster, main
from hanfslab import topology as T
from hanfslab.lab import quorum_options


def act(t, node, rsc, op, secs, rc=0):
    return {"t": t, "node": node, "resource": rsc, "op": op, "rc": rc, "seconds": secs}


GROUPS = ["nfs", "nfs2", "nfs3"]
MEMBERS = {g: [f"{g}-{k}" for k in ("fs", "grace", "data", "ip", "statd")] for g in GROUPS}
AGENTS = {}
for _g in GROUPS:
    AGENTS.update({f"{_g}-fs": "ocf:heartbeat:Filesystem", f"{_g}-grace": "ocf:hanfs:nfs-grace",
                   f"{_g}-data": "ocf:hanfs:nfs-export", f"{_g}-ip": "ocf:hanfs:float-ip",
                   f"{_g}-statd": "ocf:hanfs:statd-holding"})
TAGS = {f"{c}-{g}-{v}": g for c in ("client1", "client2") for g in GROUPS for v in ("v3", "v4")}


def clients(pauses):
    """tag -> findings, from group -> (pause for every tag of that group)."""
    return {t: {"writer": {"max_pause_s": pauses[g], "resumed": True}} for t, g in TAGS.items()}


# nodec killed at t=100; nfs3 starts on nodea, where nfs runs; nfs2 on nodeb untouched
TAKEOVER_A = [act(112.0, "nodea", "nfs3-fs", "start", 2.0), act(112.6, "nodea", "nfs3-grace", "start", 0.5),
              act(113.0, "nodea", "nfs3-data", "start", 0.3), act(113.5, "nodea", "nfs3-ip", "start", 0.4),
              act(113.9, "nodea", "nfs3-statd", "start", 0.3)]
BEFORE = {"nfs": "nodea", "nfs2": "nodeb", "nfs3": "nodec"}
AFTER = {"nfs": "nodea", "nfs2": "nodeb", "nfs3": "nodea"}


class ServicePauses(unittest.TestCase):
    def summary(self, actions=TAKEOVER_A, before=BEFORE, after=AFTER, pauses=None):
        pauses = pauses or {"nfs": 3.2, "nfs2": 0.2, "nfs3": 14.1}
        return A.service_pauses(GROUPS, TAGS, clients(pauses), MEMBERS, AGENTS, actions, 100.0,
                                before=before, after=after)

    def test_moved_service_and_its_address(self):
        s = self.summary()["nfs3"]
        self.assertTrue(s["moved"])
        self.assertEqual((s["from"], s["to"]), ("nodec", "nodea"))
        self.assertTrue(s["started"])
        self.assertEqual(s["address_up_s"], 13.5)
        self.assertEqual(s["max_pause_s"], 14.1)
        self.assertEqual(len(s["client_pauses"]), 4)  # two clients, v3 and v4
        self.assertEqual(s["nfsd_restarts"], [])      # nothing else arrived on nodea after it
        self.assertFalse(s["unaffected"])

    def test_service_on_the_receiving_node_has_its_nfsd_restart_named(self):
        s = self.summary()["nfs"]
        self.assertIs(s["moved"], False)
        self.assertFalse(s["started"])
        self.assertEqual(len(s["nfsd_restarts"]), 1)
        r = s["nfsd_restarts"][0]
        self.assertEqual((r["resource"], r["op"], r["t_s"]), ("nfs3-grace", "start", 12.6))
        self.assertIn("nfs3 arrived on nodea", r["why"])
        self.assertFalse(s["unaffected"])
        self.assertIn("nfsd restarted on its node", A.describe_service("nfs", s))

    def test_service_elsewhere_is_unaffected(self):
        s = self.summary()["nfs2"]
        self.assertIs(s["moved"], False)
        self.assertEqual(s["nfsd_restarts"], [])
        self.assertTrue(s["unaffected"])
        self.assertEqual(s["max_pause_s"], 0.2)
        self.assertIn("not restarted", A.describe_service("nfs2", s))

    def test_two_arrivals_on_one_node(self):
        # nodeb killed: nfs2 and nfs3 both arrive on nodea, nfs3's grace after nfs2's
        acts = [act(110.5, "nodea", "nfs2-grace", "start", 0.5), act(111.0, "nodea", "nfs2-ip", "start", 0.3),
                act(112.0, "nodea", "nfs3-grace", "start", 0.5), act(112.5, "nodea", "nfs3-ip", "start", 0.3)]
        after = {g: "nodea" for g in GROUPS}
        s = self.summary(acts, {"nfs": "nodea", "nfs2": "nodeb", "nfs3": "nodeb"}, after)
        # nfs, already there, had nfsd restarted twice
        self.assertEqual([r["resource"] for r in s["nfs"]["nfsd_restarts"]], ["nfs2-grace", "nfs3-grace"])
        # nfs2 arrived first: nfs3's arrival restarted its nfsd again
        self.assertEqual([r["resource"] for r in s["nfs2"]["nfsd_restarts"]], ["nfs3-grace"])
        # nfs3 arrived last: nfs2's earlier start does not concern its clients
        self.assertEqual(s["nfs3"]["nfsd_restarts"], [])
        self.assertFalse(any(x["unaffected"] for x in s.values()))

    def test_unknown_before_is_not_called_unaffected(self):
        s = self.summary(before=None)
        self.assertIsNone(s["nfs2"]["moved"])
        self.assertFalse(s["nfs2"]["unaffected"])
        self.assertTrue(s["nfs3"]["started"])

    def test_other_nodes_actions_do_not_count(self):
        acts = TAKEOVER_A + [act(105.0, "nodec", "nfs2-grace", "stop", 0.5)]
        self.assertEqual(self.summary(acts)["nfs2"]["nfsd_restarts"], [])

    def test_unresumed_client_is_reported(self):
        c = clients({"nfs": 3.2, "nfs2": 0.2, "nfs3": 14.1})
        c["client1-nfs3-v3"]["writer"]["resumed"] = False
        s = A.service_pauses(GROUPS, TAGS, c, MEMBERS, AGENTS, TAKEOVER_A, 100.0, BEFORE, AFTER)
        self.assertFalse(s["nfs3"]["all_resumed"])
        self.assertIn("not resumed", A.describe_service("nfs3", s["nfs3"]))


class JudgeUnaffected(unittest.TestCase):
    def res(self, pause):
        from hanfslab.scenarios import judge
        c = clients({"nfs": 3.2, "nfs2": pause, "nfs3": 14.1})
        for v in c.values():
            v["writer"].update(errors=0, error_kinds=[])
        r = {"clients": c, "probers_confirmed": True,
             "services": A.service_pauses(GROUPS, TAGS, c, MEMBERS, AGENTS, TAKEOVER_A, 100.0, BEFORE, AFTER)}
        return {x["name"]: x for x in judge(r)}

    def test_untouched_service_must_not_pause(self):
        name = f"services not touched kept working (pause < {A.UNAFFECTED_PAUSE_S:.0f} s)"
        self.assertTrue(self.res(0.3)[name]["ok"])
        bad = self.res(7.0)[name]
        self.assertFalse(bad["ok"])
        self.assertIn("nfs2", bad["detail"])


QUORUMTOOL = """Quorum information
------------------
Date:             Wed Dec  2 14:00:01 2026
Quorum provider:  corosync_votequorum
Nodes:            2
Node ID:          1
Ring ID:          1.1c
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   2
Highest expected: 2
Total votes:      2
Quorum:           2
Flags:            Quorate WaitForAll LastManStanding AutoTieBreaker

Membership information
----------------------
    Nodeid      Votes Name
         1          1 nodea (local)
         2          1 nodeb
"""


class Quorum(unittest.TestCase):
    def test_parse(self):
        q = cluster.parse_quorumtool(QUORUMTOOL)
        self.assertEqual((q["expected_votes"], q["total_votes"], q["quorum"], q["quorate"]), (2, 2, 2, True))
        self.assertIn("LastManStanding", q["flags"])

    def test_parse_inquorate(self):
        text = QUORUMTOOL.replace("Quorate:          Yes", "Quorate:          No").replace(
            "Quorum:           2", "Quorum:           2 Activity blocked").replace("Total votes:      2",
                                                                                  "Total votes:      1")
        q = cluster.parse_quorumtool(text)
        self.assertEqual((q["total_votes"], q["quorum"], q["quorate"]), (1, 2, False))

    def test_parse_nothing(self):
        q = cluster.parse_quorumtool("Cannot initialize CMAP service\n")
        self.assertIsNone(q["expected_votes"])
        self.assertIsNone(q["quorate"])

    def test_options(self):
        self.assertEqual(quorum_options(2), ["two_node: 1"])
        opts = quorum_options(3)
        self.assertNotIn("two_node: 1", opts)
        for o in ("last_man_standing: 1", "auto_tie_breaker: 1", "wait_for_all: 1"):
            self.assertIn(o, opts)


class Topology(unittest.TestCase):
    def test_two_node_configs_boot_what_they_did(self):
        for c in (T.ACTIVE_PASSIVE, T.TWO_SERVICES, T.MIGRATE):
            self.assertEqual([n.name for n in c.servers], ["nodea", "nodeb"], c.name)
            self.assertEqual([s.disk for s in c.disks], [s.disk for s in T.SERVICES[:2]], c.name)

    def test_three_services(self):
        c = T.THREE_SERVICES
        self.assertEqual([n.name for n in c.servers], ["nodea", "nodeb", "nodec"])
        self.assertEqual([s.home for s in c.services], ["nodea", "nodeb", "nodec"])
        self.assertEqual(len({s.vip for s in c.services}), 3)
        self.assertEqual(len({s.data_fsid for s in c.services}), 3)
        self.assertEqual(c.disks, c.services)  # the nodes' disks b, c, d in service order
        self.assertEqual(set(c.v4_paths), {s.group for s in c.services})
        self.assertIs(T.SCENARIO_CONFIG["three_nodes"], c)
        self.assertEqual(T.STACKS["hanfs"].scripts[c.name], "services.sh")

    def test_servers_needed(self):
        self.assertEqual([n.name for n in main.servers_needed("move,crash,split")], ["nodea", "nodeb"])
        self.assertEqual([n.name for n in main.servers_needed("crash,three_nodes")], ["nodea", "nodeb", "nodec"])

    def test_services_line_per_service(self):
        lab = types.SimpleNamespace(run="/run/x", servers=[types.SimpleNamespace(name=n) for n in ("a", "b", "c")],
                                    clients=[types.SimpleNamespace(spec=T.CLIENTS[0])])
        env = main.example_env(lab, T.STACKS["hanfs"], T.THREE_SERVICES)
        self.assertIn("SERVICES='nfs /dev/", env)
        self.assertIn("\nnfs3 /dev/mapper/shared-d /srv/nfs3 10.77.0.52 nodec 3'", env)
        self.assertIn("V4_ROOT=/srv", env)
        two = main.example_env(lab, T.STACKS["hanfs"], T.TWO_SERVICES)
        self.assertIn("GROUP2=nfs2", two)
        self.assertNotIn("SERVICES=", two)


if __name__ == "__main__":
    unittest.main()


class ThreeNodesPlan(unittest.TestCase):
    """The scenario's control flow with the cluster faked: which node dies
    when, what each window expects, what is repaired."""

    def run_plan(self, lands_on):
        from hanfslab import scenarios as S
        calls = []
        locs = {"nfs": "nodea", "nfs2": "nodeb", "nfs3": "nodec"}
        nodes = {n: types.SimpleNamespace(name=n) for n in ("nodea", "nodeb", "nodec")}
        lab = types.SimpleNamespace(servers=list(nodes.values()), node=lambda n: nodes[n])
        w = types.SimpleNamespace(config=T.THREE_SERVICES)
        r = S.Runner(lab, w)
        r.where = lambda g: locs[g]

        def crash(label, victim, expect=None, before=None, repair=True, **kw):
            calls.append(("crash", victim, dict(expect), dict(before), repair))
            for g, n in expect.items():
                locs[g] = n if isinstance(n, str) else lands_on
            return {"scenario": label, "checks": [], "passed": True}

        r._crash = crash
        r._wait_expected_votes = lambda names, votes: calls.append(("votes", list(names), votes)) or {"waited_s": 1}
        r._repair = lambda res, ns, restore=None: calls.append(("repair", [n.name for n in ns])) or res.update(
            after_rejoin_on=dict(locs))
        saved = cluster.quorum_status
        cluster.quorum_status = lambda node: {"expected_votes": 1}
        try:
            out = r.three_nodes()
        finally:
            cluster.quorum_status = saved
        return out, calls, locs

    def test_plan(self):
        for lands_on in ("nodea", "nodeb"):
            out, calls, locs = self.run_plan(lands_on)
            self.assertEqual(len(out), 2)
            c1, votes, c2, repair = calls
            self.assertEqual(c1[:2], ("crash", "nodec"))
            self.assertEqual(c1[2], {"nfs": "nodea", "nfs2": "nodeb", "nfs3": ("nodea", "nodeb")})
            self.assertFalse(c1[4])
            self.assertEqual(votes, ("votes", ["nodea", "nodeb"], 2))
            self.assertEqual(c2[:2], ("crash", "nodeb"))
            self.assertEqual(c2[2], {"nfs": "nodea", "nfs2": "nodea", "nfs3": "nodea"})
            self.assertEqual(c2[3]["nfs3"], lands_on)
            self.assertEqual(repair, ("repair", ["nodeb", "nodec"]))
            self.assertEqual(set(locs.values()), {"nodea"})
            stay = [c for c in out[1]["checks"] if c["name"].startswith("services stay on nodea")]
            self.assertTrue(stay and stay[0]["ok"])


def crm_mon_xml(where):
    """crm_mon --output-as=xml with group nfs3 (two members) Started on `where`."""
    rs = "".join(f'<resource id="nfs3-{k}" resource_agent="ocf:hanfs:x" role="Started" active="true" '
                 f'failed="false" blocked="false"><node name="{where}"/></resource>' for k in ("fs", "ip"))
    return (f'<pacemaker-result><summary><current_dc present="true" name="nodea"/></summary><nodes/>'
            f'<resources><group id="nfs3">{rs}</group></resources></pacemaker-result>')


class WaitGroupAnyOf(unittest.TestCase):
    def test_waits_until_the_group_is_on_one_of_the_nodes(self):
        seen = iter(["nodec", "nodec", "nodeb"])  # still shown on the dead node, then taken over
        node = types.SimpleNamespace(running=lambda: True,
                                     sh=lambda *a, **k: types.SimpleNamespace(out=crm_mon_xml(next(seen))))
        saved = cluster.time.sleep
        cluster.time.sleep = lambda s: None
        try:
            self.assertEqual(cluster.wait_group([node], "nfs3", timeout=10, on=("nodea", "nodeb")), "nodeb")
        finally:
            cluster.time.sleep = saved
