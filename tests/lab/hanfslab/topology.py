"""What the lab is made of: nodes, addresses, disks, and the two stacks."""
from dataclasses import dataclass, field

# One private layer-2 segment on the host: a bridge with one tap per node.
# The host itself has no address on it, and nothing routes it anywhere.
BRIDGE = "hanfs-br0"
SUBNET = "10.77.0"
# a /22: the nodes, the floating addresses and the *_readonly scenarios' clients
# in 10.77.0.x, the --identities in 10.77.1.1 upward (clients.identity_ip)
PREFIX = 22
CLIENTSPEC = f"{SUBNET}.0/{PREFIX}"
NIC = "vec0"  # the node-side name of a UML vector (tap) interface

# the nodes' kernel: tests/lab/run --kernel (scripts/uml-kernel.sh finds or builds it)
KERNELS = ("6.1", "6.12")
UML_MODULES = "/usr/lib/uml/modules"  # Debian's user-mode-linux (6.1) module tree

# Debian packages the lab needs on the host (the nodes run the host's /usr).
PACKAGES = [
    "user-mode-linux", "kmod", "e2fsprogs", "iproute2", "tcpdump", "python3", "util-linux", "procps",
    "pacemaker", "pacemaker-cli-utils", "corosync", "pcs", "resource-agents", "fence-agents",
    "nfs-kernel-server", "nfs-common", "rpcbind", "iputils-ping", "dmsetup",
    # the heartbeat reference stack's portblock (--compare); without it a
    # machine that only ran the lab failed its nodes' init (run 20261204-205928)
    "iptables",
]


@dataclass
class NodeSpec:
    name: str
    role: str  # "server" | "client"
    ip: str
    mem_mb: int

    @property
    def tap(self):
        return f"hanfs-{self.name}"


SERVERS = [
    NodeSpec("nodea", "server", f"{SUBNET}.11", 512),
    NodeSpec("nodeb", "server", f"{SUBNET}.12", 512),
    NodeSpec("nodec", "server", f"{SUBNET}.13", 512),  # the three-node configuration's only
]
CLIENTS = [
    NodeSpec("client1", "client", f"{SUBNET}.21", 320),
    NodeSpec("client2", "client", f"{SUBNET}.22", 320),
]

# client memory added per --identities identity (rpcbind, rpc.statd, sleep,
# one or two python writers, the namespace's lockd and NFS client)
ID_MEM_MB = 24


@dataclass
class Service:
    """One NFS service: a group with its own disk, mount point and address."""
    group: str
    vip: str
    vip_name: str
    disk: str          # node-side device
    mount: str         # node-side mount point of the shared disk
    export: str        # the data export (NFSv3 path)
    data_fsid: int
    home: str          # preferred node


SERVICES = [
    # the disks as the nodes see them: device-mapper over /dev/ubdb, /dev/ubdc (init.sh)
    Service("nfs", f"{SUBNET}.50", "nfs-vip", "/dev/mapper/shared-b", "/srv/nfs", "/srv/nfs/data", 1, "nodea"),
    Service("nfs2", f"{SUBNET}.51", "nfs2-vip", "/dev/mapper/shared-c", "/srv/nfs2", "/srv/nfs2/data", 2, "nodeb"),
]
DISK_MB = 256
# the three-node configuration's third service (its disk is the nodes'
# third, device-mapper over /dev/ubdd, init.sh)
SERVICE3 = Service("nfs3", f"{SUBNET}.52", "nfs3-vip", "/dev/mapper/shared-d", "/srv/nfs3", "/srv/nfs3/data", 3, "nodec")


@dataclass
class Config:
    """A cluster configuration a scenario needs: which services, how clients mount them."""
    name: str
    services: list
    v4_paths: dict     # group -> NFSv4 path clients mount
    # set: the cluster starts configured by this other stack (its
    # active-passive script), and the scenario moves it to the stack under test
    from_stack: str = None
    # the server nodes it boots, and the services whose disks they get (and
    # whose addresses /etc/hosts names): two nodes and the first two disks
    # unless a configuration says otherwise
    servers: list = field(default_factory=lambda: SERVERS[:2])
    disks: list = field(default_factory=lambda: SERVICES[:2])


ACTIVE_PASSIVE = Config("active-passive", SERVICES[:1], {"nfs": "/data"})
# two services on one node cannot both own the NFSv4 root (fsid=0): the lab
# exports the nodes' /srv (the mount points' parent) as the root, see
# pcs-examples/two-services.sh V4_ROOT
TWO_SERVICES = Config("two-services", SERVICES, {"nfs": "/nfs/data", "nfs2": "/nfs2/data"})

# three nodes, three services, one preferring each node, configured by
# pcs-examples/services.sh; corosync with last_man_standing, wait_for_all
# and auto_tie_breaker (lab.py: quorum_options), so the last node can carry
# all three
THREE_SERVICES = Config("three-services", SERVICES[:2] + [SERVICE3],
                        {"nfs": "/nfs/data", "nfs2": "/nfs2/data", "nfs3": "/nfs3/data"},
                        servers=SERVERS[:3], disks=SERVICES[:2] + [SERVICE3])

# a heartbeat-agent cluster, moved to hanfs by pcs-examples/migrate-from-heartbeat.sh
MIGRATE = Config("migrate", SERVICES[:1], {"nfs": "/data"}, from_stack="heartbeat")

# scenario -> the configuration it runs on
SCENARIO_CONFIG = {"move": ACTIVE_PASSIVE, "crash": ACTIVE_PASSIVE, "nfsd_dies": ACTIVE_PASSIVE,
                   "lock_before_crash": ACTIVE_PASSIVE, "partition": ACTIVE_PASSIVE,
                   "hung_storage": ACTIVE_PASSIVE, "holding_readonly": ACTIVE_PASSIVE, "recovery_readonly": ACTIVE_PASSIVE, "soak": ACTIVE_PASSIVE, "statd_dies": ACTIVE_PASSIVE,
                   "split": TWO_SERVICES,
                   "three_nodes": THREE_SERVICES,
                   "migrate": MIGRATE}


@dataclass
class Stack:
    """A way to configure the NFS service: which pcs-examples script per configuration."""
    name: str
    scripts: dict           # Config.name -> pcs-examples/<script>
    hanfs: bool             # needs this build's hanfs agents in the nodes
    env: dict = field(default_factory=dict)


STACKS = {
    "hanfs": Stack("hanfs", {"active-passive": "active-passive.sh", "two-services": "two-services.sh",
                             "three-services": "services.sh"}, True),
    # the heartbeat nfsserver owns the node's whole NFS server: one service per
    # node, so no two-services configuration exists for it
    "heartbeat": Stack("heartbeat", {"active-passive": "heartbeat-active-passive.sh"}, False,
                       {"NFS_INIT_SCRIPT": "/usr/lib/hanfs-lab/nfs-server-init"}),
}

HANFS_AGENTS = ["nfs-grace", "nfs-export", "float-ip", "statd-holding"]
HANFS_HELPERS = ["hanfs-statd-callout", "hanfs-import-state"]
