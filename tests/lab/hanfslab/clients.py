"""The NFS clients: mounts, the writers and probers running on them, their logs."""
import json
import logging
import os
import time

from . import logs
from .host import LabError
from .node import NODE_DIR
from . import topology as T

log = logging.getLogger("lab")
VERSIONS = {"v3": "vers=3", "v4": "vers=4.2"}
# NFSv4.1+ gives a client machine one identity per server (its owner string
# names no server), so a client that mounts two services with NFSv4.1+ is
# one client to the node both end on; RFC 8881 18.51.3: once one mount has
# sent RECLAIM_COMPLETE, the other mount's reclaims get NFS4ERR_NO_GRACE and
# its locks are lost. With several services, a client therefore mounts one
# of them with NFSv4.2 and the others with NFSv4.0, whose client identity
# names the server address (README: "Two services on one node").
V4_OTHERS = "vers=4.0"
NLOCKS = 3
# --identities N: every client node also carries N NFS client identities
# (node/identities.sh builds them), each mounting the first service with
# NFSv3 and every V4_EVERY-th also with NFSv4.2; each writer holds one lock
# file and its data file (ID_NLOCKS)
ID_NLOCKS = 1
V4_EVERY = 4
# identity addresses: 250 to each of the lab's /22 blocks above the nodes'
# (10.77.1.1-250, 10.77.2.1-250, 10.77.3.1-250)
ID_PER_BLOCK = 250
ID_MAX = 3 * ID_PER_BLOCK


def identity_ip(i):
    """The lab address of identity number `i` over all client nodes (client1's
    first, then client2's): 10.77.1.1 upward."""
    net = T.SUBNET.rsplit(".", 1)[0]
    return f"{net}.{1 + i // ID_PER_BLOCK}.{1 + i % ID_PER_BLOCK}"


def identity_addresses(clients, n):
    """[(client name, [(identity name, address)])] for `n` identities per client node."""
    return [(c, [(f"{c}-id{k:03d}", identity_ip(ci * n + k)) for k in range(n)])
            for ci, c in enumerate(clients)]


def identity_ns(name):
    """The command prefix that enters identity `name`'s network, UTS and
    mount namespaces (node/identities.sh keeps their holder's pid)."""
    return f"nsenter -t $(cat /tmp/hanfs-ids/{name}.pid) -n -u -m"


class Workload:
    """On every client, for every service and for NFSv3 and NFSv4 (4.2, or 4.0
    for all services but one when there are several, see V4_OTHERS): a writer
    holding locks and appending, and a prober trying to take the locks the
    *other* client holds on the same mount."""

    def __init__(self, lab, config, identities=0):
        self.lab = lab
        self.config = config
        self.identities = identities
        self.clients = lab.clients
        self.dir = os.path.join(lab.run, "work", f"{lab.stack.name}-{config.name}")
        self.writers = {}  # tag -> Handle
        self.probers = {}  # tag -> Handle
        self.newlockers = {}  # tag -> Handle
        os.makedirs(self.dir, exist_ok=True)

    def mounts(self):
        """(service, version, mount point) for every mount a client makes."""
        return [(svc, v, f"/mnt/{svc.group}-{v}") for svc in self.config.services for v in VERSIONS]

    @staticmethod
    def tag(client, svc, v):
        return f"{client.name}-{svc.group}-{v}"

    def tags(self):
        return ([self.tag(c, svc, v) for c in self.clients for svc, v, _ in self.mounts()]
                + [t for c in self.clients for t, _, _ in self.identity_mounts(c)])

    def tag_group(self):
        """tag -> the service group it writes to."""
        out = {self.tag(c, svc, v): svc.group for c in self.clients for svc, v, _ in self.mounts()}
        out.update({t: self.config.services[0].group for c in self.clients for t, _, _ in self.identity_mounts(c)})
        return out

    # -- identities: many NFS clients in one client node (node/identities.sh)
    def identity_names(self, client):
        return dict(identity_addresses([c.name for c in self.clients], self.identities))[client.name]

    def identity_mounts(self, client):
        """(tag, version, mount point inside the identity) of every identity mount of `client`."""
        out = []
        for k, (name, _) in enumerate(self.identity_names(client)):
            for v in VERSIONS:
                if v == "v3" or k % V4_EVERY == 0:
                    out.append((f"{name}-{v}", v, f"/mnt/{name}-{v}"))
        return out

    def identity_of(self, tag):
        return tag.rsplit("-", 1)[0]

    def in_identity(self, tag, cmd):
        """`cmd` run in the identity's network, UTS and mount namespaces."""
        return f"exec {identity_ns(self.identity_of(tag))} {cmd}"

    def make_identities(self, timeout=None):
        if not self.identities:
            return
        if self.identities * len(self.clients) > ID_MAX:
            raise LabError(f"--identities {self.identities}: at most {ID_MAX} identities in all "
                           f"(the lab's /{T.PREFIX}), here {len(self.clients)} client nodes")
        svc = self.config.services[0]
        t0 = time.time()
        handles = []
        for c in self.clients:  # the client nodes at once
            spec = " ".join(f"{n},{ip}" for n, ip in self.identity_names(c))
            handles.append((c, c.spawn(f"sh {NODE_DIR}/identities.sh {T.NIC} {T.PREFIX} {svc.vip} {svc.export} "
                                       f"{self.config.v4_paths[svc.group]} {V4_EVERY} {spec}",
                                       timeout=timeout or 120 + 15 * self.identities)))
        for c, h in handles:
            h.wait(check=True)
            log.info("%s: %d identities up, mounted, in %.0f s", c.name, self.identities, time.time() - t0)

    def statd_unregistered(self, timeout=120):
        """The client nodes and identities whose own rpc.statd does not
        answer a NULL call through their rpcbind (as sm-notify finds it:
        UDP): a client in that state cannot be told to reclaim, whatever the
        server does."""
        handles = []
        for c in self.clients:
            names = " ".join(n for n, _ in self.identity_names(c))
            if names:
                handles.append(c.spawn(
                    f"rpcinfo -T udp 127.0.0.1 100024 1 >/dev/null 2>&1 || echo {c.name}; "
                    f"for n in {names}; do {identity_ns('$n')}"
                    f" rpcinfo -T udp 127.0.0.1 100024 1 >/dev/null 2>&1 || echo $n; done", timeout=timeout))
        out = []
        for h in handles:
            out += h.wait(check=True).out.split()
        return sorted(out)

    def writer_log(self, tag):
        return os.path.join(self.dir, f"writer-{tag}.log")

    def prober_log(self, tag):
        return os.path.join(self.dir, f"prober-{tag}.log")

    def newlock_log(self, tag):
        return os.path.join(self.dir, f"newlock-{tag}.log")

    def version(self, client_index, svc, v):
        """The mount's vers= option: NFSv4.2 for one service per client (see V4_OTHERS)."""
        services = self.config.services
        if v == "v4" and len(services) > 1 and services.index(svc) != client_index % len(services):
            return V4_OTHERS
        return VERSIONS[v]

    def mount(self, timeout=300):
        for i, c in enumerate(self.clients):
            for svc, v, mnt in self.mounts():
                path = svc.export if v == "v3" else self.config.v4_paths[svc.group]
                vers = self.version(i, svc, v)
                # hard mounts, otherwise the defaults a user gets
                c.sh(f"mkdir -p {mnt}; for i in $(seq 1 30); do"
                     f" mount -t nfs -o {vers},hard {svc.vip}:{path} {mnt} && exit 0; sleep 5; done; exit 1",
                     timeout=timeout)
                log.info("%s: mounted %s:%s on %s (%s)", c.name, svc.vip, path, mnt, vers)

    def start(self, warmup_timeout=300):
        for c in self.clients:
            for svc, v, mnt in self.mounts():
                tag = self.tag(c, svc, v)
                self.writers[tag] = c.spawn(
                    f"exec python3 {NODE_DIR}/writer.py {tag} {mnt} {self.writer_log(tag)} {NLOCKS}",
                    timeout=6 * 3600)
            for tag, v, mnt in self.identity_mounts(c):
                self.writers[tag] = c.spawn(self.in_identity(
                    tag, f"python3 {NODE_DIR}/writer.py {tag} {mnt} {self.writer_log(tag)} {ID_NLOCKS}"),
                    timeout=6 * 3600)
        self._wait_logs(self.writers, self.writer_log, "READY", lambda p: logs.read_writer(p).ready,
                        warmup_timeout + 5 * self.identities)
        for i, c in enumerate(self.clients):
            peer = self.clients[(i + 1) % len(self.clients)]
            for svc, v, mnt in self.mounts():
                ptag = self.tag(peer, svc, v)
                files = [f"{mnt}/{ptag}.lock{k}" for k in range(NLOCKS)] + [f"{mnt}/{ptag}.data"]
                if svc is self.config.services[0]:
                    # the peer's identities' locks, through this node's own mount of that version
                    files += [f"{mnt}/{itag}.{f}" for itag, iv, _ in self.identity_mounts(peer) if iv == v
                              for f in [f"lock{k}" for k in range(ID_NLOCKS)] + ["data"]]
                tag = self.tag(c, svc, v)
                self.probers[tag] = c.spawn(
                    f"exec python3 {NODE_DIR}/prober.py {self.prober_log(tag)} {' '.join(files)}",
                    timeout=6 * 3600)
        self._wait_logs(self.probers, self.prober_log, "HELD",
                        lambda p: any(r.held for r in logs.read_prober(p)), warmup_timeout + 5 * self.identities)
        # an application taking a new lock every second (a file nobody holds)
        for c in self.clients:
            for svc, v, mnt in self.mounts():
                tag = self.tag(c, svc, v)
                self.newlockers[tag] = c.spawn(
                    f"exec python3 {NODE_DIR}/newlock.py {self.newlock_log(tag)} {mnt}/{tag}.newlock",
                    timeout=6 * 3600)
        self._wait_logs(self.newlockers, self.newlock_log, "GRANTED",
                        lambda p: any(r.granted for r in logs.read_newlock(p)), warmup_timeout)
        log.info("workload running: %d writers, %d probers", len(self.writers), len(self.probers))

    @staticmethod
    def _wait_logs(handles, logpath, word, seen, timeout):
        """Wait until every log shows `word` (`seen(path)` says whether it does)."""
        deadline = time.time() + timeout
        for tag, h in handles.items():
            path = logpath(tag)
            while True:
                if seen(path):
                    break
                if h.done():
                    raise LabError(f"{tag}: exited early: {h.wait().out[-800:]}")
                if time.time() > deadline:
                    raise LabError(f"{tag}: no '{word}' in {path} after {timeout} s")
                time.sleep(0.5)

    def stop(self, timeout=60):
        """SIGTERM (then SIGKILL) every writer and prober; bounded: one stuck in
        I/O on a service that is down is left to the node's teardown."""
        every = list(self.newlockers.items()) + list(self.probers.items()) + list(self.writers.items())
        for _, h in every:
            h.cancel()
        deadline = time.time() + timeout
        for tag, h in every:
            try:
                h.wait(within=max(1.0, deadline - time.time()))
            except LabError as e:
                log.warning("%s did not stop: %s", tag, e)

    def verify(self, timeout=None):
        """Read every data file back through its writer's own mount (checksums,
        sequence); by default 300 s a client node, plus 10 s an identity's
        mount (100 identities outgrew the 300 s: run 20261203-072011)."""
        out = {}
        for c in self.clients:
            limit = timeout or 300 + 10 * len(self.identity_mounts(c))
            files = " ".join(f"{mnt}/{self.tag(c, svc, v)}.data" for svc, v, mnt in self.mounts())
            # an identity's file is read through its node's own mount of that
            # version (same export, same server; the record is there once
            # fsync returned)
            first = {v: mnt for svc, v, mnt in self.mounts() if svc is self.config.services[0]}
            files += "".join(f" {first[v]}/{tag}.data" for tag, v, _ in self.identity_mounts(c))
            t0 = time.time()
            r = c.sh(f"python3 {NODE_DIR}/verify.py {files}", timeout=limit)
            for path, res in json.loads(r.out.strip().splitlines()[-1]).items():
                tag = os.path.basename(path)[:-len(".data")]
                res["t_read"] = t0
                out[tag] = res
        return out
