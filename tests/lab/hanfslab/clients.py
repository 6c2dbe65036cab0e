"""The NFS clients: mounts, the writers and probers running on them, their logs."""
import json
import logging
import os
import time

from .host import LabError
from .node import NODE_DIR

log = logging.getLogger("lab")
VERSIONS = {"v3": "vers=3", "v4": "vers=4.2"}
NLOCKS = 3


class Workload:
    """On every client, for NFSv3 and NFSv4.2: a writer holding locks and appending,
    and a prober trying to take the locks the *other* client holds."""

    def __init__(self, lab, service):
        self.lab = lab
        self.svc = service
        self.clients = lab.clients
        self.dir = os.path.join(lab.run, "work", lab.stack.name)
        self.writers = {}  # tag -> Handle
        self.probers = {}  # tag -> Handle
        os.makedirs(self.dir, exist_ok=True)

    def tags(self):
        return [f"{c.name}-{v}" for c in self.clients for v in VERSIONS]

    def writer_log(self, tag):
        return os.path.join(self.dir, f"writer-{tag}.log")

    def prober_log(self, tag):
        return os.path.join(self.dir, f"prober-{tag}.log")

    def mount(self, timeout=300):
        paths = {"v3": f"{self.svc.vip}:{self.svc.export}", "v4": f"{self.svc.vip}:{self.svc.v4_path}"}
        for c in self.clients:
            for v, opt in VERSIONS.items():
                # hard mounts, otherwise the defaults a user gets
                c.sh(f"for i in $(seq 1 30); do mount -t nfs -o {opt},hard {paths[v]} /mnt/{v} && exit 0;"
                     f" sleep 5; done; exit 1", timeout=timeout)
        log.info("clients mounted %s (v3) and %s (v4.2)", paths["v3"], paths["v4"])

    def start(self, warmup_timeout=300):
        for c in self.clients:
            for v in VERSIONS:
                tag = f"{c.name}-{v}"
                self.writers[tag] = c.spawn(
                    f"exec python3 {NODE_DIR}/writer.py {tag} /mnt/{v} {self.writer_log(tag)} {NLOCKS}",
                    timeout=6 * 3600)
        self._wait_logs(self.writers, "READY", warmup_timeout)
        for i, c in enumerate(self.clients):
            peer = self.clients[(i + 1) % len(self.clients)]
            for v in VERSIONS:
                tag = f"{c.name}-{v}"
                ptag = f"{peer.name}-{v}"
                files = [f"/mnt/{v}/{ptag}.lock{k}" for k in range(NLOCKS)] + [f"/mnt/{v}/{ptag}.data"]
                self.probers[tag] = c.spawn(
                    f"exec python3 {NODE_DIR}/prober.py {self.prober_log(tag)} {' '.join(files)}",
                    timeout=6 * 3600)
        self._wait_logs(self.probers, "HELD", warmup_timeout)
        log.info("workload running: %d writers, %d probers", len(self.writers), len(self.probers))

    def _wait_logs(self, handles, word, timeout):
        deadline = time.time() + timeout
        for tag, h in handles.items():
            path = self.writer_log(tag) if handles is self.writers else self.prober_log(tag)
            while True:
                if os.path.exists(path) and word in open(path).read():
                    break
                if h.done():
                    raise LabError(f"{tag}: exited early: {h.wait().out[-800:]}")
                if time.time() > deadline:
                    raise LabError(f"{tag}: no '{word}' in {path} after {timeout} s")
                time.sleep(0.5)

    def stop(self, timeout=120):
        for h in list(self.probers.values()) + list(self.writers.values()):
            h.cancel()
        for tag, h in list(self.probers.items()) + list(self.writers.items()):
            try:
                h.wait(margin=timeout)
            except LabError as e:
                log.warning("%s did not stop: %s", tag, e)

    def verify(self, timeout=300):
        """Read every data file back through each client's own mount (checksums, sequence)."""
        out = {}
        for c in self.clients:
            files = " ".join(f"/mnt/{v}/{c.name}-{v}.data" for v in VERSIONS)
            t0 = time.time()
            r = c.sh(f"python3 {NODE_DIR}/verify.py {files}", timeout=timeout)
            for path, res in json.loads(r.out.strip().splitlines()[-1]).items():
                tag = os.path.basename(path)[:-len(".data")]
                res["t_read"] = t0
                out[tag] = res
        return out
