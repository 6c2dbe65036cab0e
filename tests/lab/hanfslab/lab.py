"""One lab instance: the nodes of one stack's cluster, their files and their life."""
import logging
import os
import shlex
import time

from . import cluster
from . import topology as T
from .fencer import Fencer
from .node import Node

log = logging.getLogger("lab")

COROSYNC_CONF = """\
totem {{
    version: 2
    cluster_name: hanfs-lab
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 3000
}}
nodelist {{
{nodes}
}}
quorum {{
    provider: corosync_votequorum
{quorum}
}}
logging {{
    to_stderr: yes
    to_logfile: no
    to_syslog: no
    timestamp: hires
}}
"""


def quorum_options(n_servers):
    """votequorum's options for a lab cluster of n nodes. Two: two_node (it
    implies wait_for_all). More: last_man_standing, so that after a failure,
    once the membership has been stable for last_man_standing_window (10 s),
    expected votes drop to the nodes still there (3 -> 2), and
    auto_tie_breaker, so that of the last two the one with the lowest node
    id (nodea) keeps quorum alone; wait_for_all, which votequorum(5) asks
    for with last_man_standing (a booting node joining a quorate cluster is
    not held back by it). pcs-examples/services.sh explains the choice."""
    if n_servers == 2:
        return ["two_node: 1"]
    return ["wait_for_all: 1", "last_man_standing: 1", "auto_tie_breaker: 1"]


# The same on every node, as an administrator keeps it: fixed ports so a
# firewall could be opened for them, nothing the agents should do themselves.
NFS_CONF = """\
[general]
pipefs-directory=/run/rpc_pipefs
[nfsd]
threads=8
[mountd]
manage-gids=y
port=20048
[statd]
port=662
outgoing-port=2020
{statd_extra}
[lockd]
port=32803
udp-port=32769
"""


class Lab:
    def __init__(self, host, run_id, stack, n_clients, bindir=None, config=None):
        self.host = host
        self.run = host.run
        self.run_id = run_id
        self.stack = stack
        self.bindir = bindir
        # the configuration decides the servers and the disks (default: what
        # every two-node configuration boots)
        config = config or T.ACTIVE_PASSIVE
        self.servers = [Node(s, self) for s in config.servers]
        self.clients = [Node(s, self) for s in T.CLIENTS[:n_clients]]
        self.nodes = self.servers + self.clients
        self.disk_services = list(config.disks)
        self.disks = [os.path.join(self.run, f"disk-{s.group}.img") for s in self.disk_services]
        self.fencer = Fencer(self, {n.name: n for n in self.servers})
        self.timings = {}

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    # -- files the nodes read at boot
    def write_etc(self):
        etc = os.path.join(self.run, "etc")
        os.makedirs(etc, exist_ok=True)
        hosts = ["127.0.0.1 localhost"] + [f"{n.spec.ip} {n.name}" for n in self.nodes]
        hosts += [f"{s.vip} {s.vip_name}" for s in self.disk_services]
        self._write(etc, "hosts", "\n".join(hosts) + "\n")
        nodes = "\n".join(
            f"    node {{\n        ring0_addr: {n.spec.ip}\n        name: {n.name}\n        nodeid: {i}\n    }}"
            for i, n in enumerate(self.servers, 1))
        quorum = "\n".join("    " + o for o in quorum_options(len(self.servers)))
        self._write(etc, "corosync.conf", COROSYNC_CONF.format(nodes=nodes, quorum=quorum))
        extra = "ha-callout=/usr/libexec/hanfs/hanfs-statd-callout" if self.stack.hanfs else ""
        self._write(etc, "nfs.conf", NFS_CONF.format(statd_extra=extra))
        # Debian's nfs-kernel-server init script (behind the heartbeat stack's
        # nfsserver here) refuses to start nfsd with an empty /etc/exports;
        # systemd's nfs-server.service has no such check.
        exports = ("/run/nfs-dummy 127.0.0.1(ro,fsid=999,no_subtree_check)\n"
                   if not self.stack.hanfs else "")
        self._write(etc, "exports", exports)
        if not self.stack.hanfs:
            self._write(etc, "portblock", portblock_with_upstream_fix())

    @staticmethod
    def _write(d, name, text):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)

    def write_node_env(self, node):
        env = {
            "NODE": node.name, "ROLE": node.spec.role, "IP": node.spec.ip, "PREFIX": T.PREFIX,
            "STACK": self.stack.name, "BOOT": node.boots,
            "LAB_NODEDIR": os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node"),
            "LAB_REPO": os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
            "SHARED_MOUNTS": " ".join(s.mount for s in self.disk_services),
            "HANFS_BIN": self.bindir or "", "HANFS_AGENTS": " ".join(T.HANFS_AGENTS),
            "HANFS_HELPERS": " ".join(T.HANFS_HELPERS),
        }
        with open(os.path.join(self.run, "etc", f"{node.name}.env"), "w") as f:
            for k, v in env.items():
                f.write(f"{k}={shlex.quote(str(v))}\n")

    # -- life
    def boot_server(self, node):
        node.boot(disks=self.disks)

    def start(self):
        """Disks, boot every node, wait for the cluster to form. Records phase times."""
        t0 = time.time()
        for path, svc in zip(self.disks, self.disk_services):
            # what an administrator creates once on the shared disk: the data
            # directory, and the state directories the example configurations
            # name (nfsinfo: heartbeat nfsserver's /var/lib/nfs; .nfs-ha: hanfs)
            self.host.make_disk(path, svc.group, ["data", "nfsinfo", ".nfs-ha/statd", ".nfs-ha/v4recovery",
                                                   ".nfs-ha/tickle"])
        self.write_etc()
        os.makedirs(os.path.join(self.run, "fence"), exist_ok=True)
        self.fencer.start()
        self.host.add_cleanup(f"{self.stack.name} nodes", self.stop)
        t1 = time.time()
        for n in self.servers:
            self.boot_server(n)
        for n in self.clients:
            n.boot()
        for n in self.nodes:
            n.wait_ready()
        t2 = time.time()
        cluster.wait_online(self.servers, [n.name for n in self.servers], timeout=300)
        t3 = time.time()
        self.timings.update(disks_s=round(t1 - t0, 1), boot_s=round(t2 - t1, 1),
                            cluster_formation_s=round(t3 - t2, 1))
        log.info("cluster online: boot %.1f s, formation %.1f s", t2 - t1, t3 - t2)

    def stop(self):
        for n in self.nodes:
            n.kill()
        self.fencer.stop()

    def running_servers(self):
        return [n for n in self.servers if n.running()]


PORTBLOCK = "/usr/lib/ocf/resource.d/heartbeat/portblock"


def portblock_with_upstream_fix():
    """Debian 12's portblock (resource-agents 4.12) finds its own DROP rule by
    grepping `iptables -n -L` for the protocol's name, but Debian 12's
    iptables 1.8.9 prints its number there (netfilter bug 1729): unblock
    never finds the rule, never removes it, and NFS stays blocked for good
    (lab run 20261201-221342: the clients' mounts timed out). Upstream fixed
    the pattern (ClusterLabs/resource-agents#1924, accept the number too);
    the lab's heartbeat nodes get the installed agent with that one pattern
    widened, so the reference stack runs as a current resource-agents would."""
    with open(PORTBLOCK) as f:
        src = f.read()
    old = 'echo "^DROP${w}${1}${w}'
    if src.count(old) != 1:
        return src  # a portblock without the bug's pattern: as it is
    return src.replace(old, 'echo "^DROP${w}\\(${1}\\|6\\|17\\)${w}')

