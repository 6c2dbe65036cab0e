"""pcs-examples/services.sh (and two-services.sh, its wrapper) run offline:
into an empty CIB file (CIB_FILE), checked with crm_verify, then Pacemaker's
scheduler (crm_simulate) shown three nodes coming up and two of them failing
one after the other: each service starts at home, the first failure moves
only that node's service, the second leaves all three on the last node.
Needs pcs, pacemaker's tools, fence_dummy and the hanfs agents installed
(pcs checks the agents' meta-data); skipped otherwise."""
import os
import shutil
import subprocess
import tempfile
import types
import unittest

from hanfslab import cluster

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOLS = ("pcs", "cibadmin", "crm_verify", "crm_simulate", "crm_mon", "fence_dummy")
HAVE = all(shutil.which(t) or os.path.exists(f"/usr/sbin/{t}") for t in TOOLS) and \
    os.path.exists("/usr/lib/ocf/resource.d/hanfs/nfs-grace")
SERVICES = """
nfs  /dev/ubdb /srv/nfs  10.77.0.50 node1 1
nfs2 /dev/ubdc /srv/nfs2 10.77.0.51 node2 2
nfs3 /dev/ubdd /srv/nfs3 10.77.0.52 node3 3
"""


def run(cmd, env=None, **kw):
    r = subprocess.run(cmd, env=dict(os.environ, **(env or {})), capture_output=True, text=True, timeout=300, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{cmd}: rc {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def status(cib):
    """crm_mon's view of a CIB file, parsed as the lab parses a node's."""
    out = run(["crm_mon", "-1", "--output-as=xml"], env={"CIB_file": cib})
    return cluster.crm_status(types.SimpleNamespace(sh=lambda *a, **k: types.SimpleNamespace(out=out)))


@unittest.skipUnless(HAVE, "needs pcs, pacemaker's tools, fence_dummy and the hanfs agents installed")
class ServicesOffline(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.cib = os.path.join(self.dir, "cib.xml")
        with open(self.cib, "w") as f:
            f.write(run(["cibadmin", "--empty"]))

    def tearDown(self):
        shutil.rmtree(self.dir)

    def recipe(self, script, env):
        base = {"CIB_FILE": self.cib, "FENCE_AGENT": "fence_dummy", "V4_ROOT": "/srv", "NIC": "eth0",
                "FENCE_PARAMS": "pcmk_host_list=node1,node2,node3", "NODES": "node1 node2 node3"}
        return run(["sh", os.path.join(REPO, "pcs-examples", script)], env=dict(base, **env))

    def simulate(self, src, dst, *args):
        run(["crm_simulate", "-x", src, "-S", "-q", "1", "-O", dst] + list(args))
        return status(dst)

    def test_three_services_one_line_each_and_two_failures(self):
        out = self.recipe("services.sh", {"SERVICES": SERVICES})
        self.assertIn("added groups nfs nfs2 nfs3", out)
        run(["crm_verify", "-x", self.cib])
        cons = run(["pcs", "-f", self.cib, "constraint"])
        for g, n in (("nfs", "node1"), ("nfs2", "node2"), ("nfs3", "node3")):
            self.assertIn(f"Resource: {g}\n    Enabled on:\n      Node: {n} (score:50)", cons)
        for i in (1, 2, 3):
            run(["cibadmin", "-o", "nodes", "-C", "-X", f'<node id="{i}" uname="node{i}"/>'],
                env={"CIB_file": self.cib})
        up = os.path.join(self.dir, "up.xml")
        st = self.simulate(self.cib, up, "-u", "node1", "-u", "node2", "-u", "node3")
        self.assertEqual({g: cluster.group_location(st, g) for g in ("nfs", "nfs2", "nfs3")},
                         {"nfs": "node1", "nfs2": "node2", "nfs3": "node3"})
        one = os.path.join(self.dir, "one.xml")
        st = self.simulate(up, one, "-f", "node3")
        where = {g: cluster.group_location(st, g) for g in ("nfs", "nfs2", "nfs3")}
        self.assertEqual((where["nfs"], where["nfs2"]), ("node1", "node2"))
        self.assertIn(where["nfs3"], ("node1", "node2"))
        two = os.path.join(self.dir, "two.xml")
        st = self.simulate(one, two, "-f", "node2")
        self.assertEqual({g: cluster.group_location(st, g) for g in ("nfs", "nfs2", "nfs3")},
                         {"nfs": "node1", "nfs2": "node1", "nfs3": "node1"})

    def test_bad_lines_are_refused_before_anything_is_created(self):
        for bad in ("nfs /dev/ubdb /srv/nfs 10.77.0.50 node1",               # no fsid
                    "nfs /dev/ubdb /srv/nfs 10.77.0.50 node1 0",             # the root's fsid
                    "a /dev/b /srv/a 10.77.0.50 - 1; b /dev/c /srv/b 10.77.0.51 - 1",  # fsid twice
                    "a /dev/b /elsewhere/a 10.77.0.50 - 1"):                 # not below V4_ROOT
            with self.assertRaises(AssertionError, msg=bad):
                self.recipe("services.sh", {"SERVICES": bad})
        st = status(self.cib)
        self.assertEqual(st["resources"], {})

    def test_two_services_is_services_with_two_lines(self):
        env = {"GROUP1": "nfs", "DEVICE1": "/dev/ubdb", "MOUNT1": "/srv/nfs", "VIP1": "10.77.0.50",
               "NODE1": "node1", "FSID1": "1", "GROUP2": "nfs2", "DEVICE2": "/dev/ubdc", "MOUNT2": "/srv/nfs2",
               "VIP2": "10.77.0.51", "NODE2": "", "FSID2": "2"}
        self.assertIn("added groups nfs nfs2", self.recipe("two-services.sh", env))
        run(["crm_verify", "-x", self.cib])
        st = status(self.cib)
        self.assertEqual(sorted(st["groups"]), ["nfs", "nfs2"])
        self.assertEqual(st["groups"]["nfs2"], [f"nfs2-{k}" for k in ("fs", "grace", "data", "ip", "statd")])
        cons = run(["pcs", "-f", self.cib, "constraint"])
        self.assertIn("Node: node1 (score:50)", cons)
        self.assertNotIn("Resource: nfs2", cons)  # NODE2 empty: no preference


if __name__ == "__main__":
    unittest.main()
