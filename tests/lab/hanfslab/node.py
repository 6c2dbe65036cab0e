"""A lab node: one User-Mode Linux process, and the control channel into it.

Commands run inside the node through files in $RUN/ctl/<node>/ (see
node/agent.py for the protocol). Every command has an id, a timeout enforced
inside the node, and a host-side deadline a little longer, so a dead or hung
node is noticed instead of waited for.
"""
import json
import logging
import os
import subprocess
import threading
import time

from . import topology as T
from .host import LabError, kill_tree, pids_with_arg, process_tree, alive

log = logging.getLogger("lab")
NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")


class NodeDown(LabError):
    pass


class CommandFailed(LabError):
    def __init__(self, node, script, rc, out):
        super().__init__(f"{node}: command failed (rc {rc}): {script.strip()[:200]}\n{out[-1500:]}")
        self.rc, self.out = rc, out


class Result:
    def __init__(self, rc, out, t_start, t_end, timed_out=False):
        self.rc, self.out, self.t_start, self.t_end, self.timed_out = rc, out, t_start, t_end, timed_out

    @property
    def ok(self):
        return self.rc == 0


class Handle:
    """A command started in a node; wait() for it or cancel() it."""

    def __init__(self, node, cid, script, timeout):
        self.node, self.cid, self.script, self.timeout = node, cid, script, timeout
        self.t_sent = time.time()

    def _path(self, ext):
        return os.path.join(self.node.ctl, f"{self.cid}.{ext}")

    def done(self):
        return os.path.exists(self._path("rc"))

    def wait(self, check=False, margin=30.0, within=None):
        """Wait for the command's end: at most its timeout plus margin, or `within`
        seconds from now if given (a cancelled command blocked in uninterruptible
        I/O, e.g. on a hard NFS mount whose server is gone, may never end)."""
        deadline = time.time() + within if within is not None else self.t_sent + self.timeout + margin
        while not self.done():
            if not self.node.running():
                raise NodeDown(f"{self.node.name} is down (waiting for: {self.script.strip()[:80]})")
            if time.time() > deadline:
                waited = time.time() - self.t_sent
                raise LabError(f"{self.node.name}: no answer to command {self.cid} "
                               f"{waited:.0f} s after it was sent: {self.script.strip()[:120]}")
            time.sleep(0.1)
        with open(self._path("rc")) as f:
            st = json.load(f)
        with open(self._path("out"), errors="replace") as f:
            out = f.read()
        res = Result(st["rc"], out, st.get("t_start"), st.get("t_end"), st.get("timed_out", False))
        if check and res.rc != 0:
            raise CommandFailed(self.node.name, self.script, res.rc, out)
        return res

    def cancel(self):
        if not self.done() and self.node.running():
            with open(self._path("cancel"), "w") as f:
                f.write("cancel\n")


class Node:
    def __init__(self, spec, lab):
        self.spec = spec
        self.name = spec.name
        self.lab = lab
        self.ctl = os.path.join(lab.run, "ctl", self.name)
        self.logdir = os.path.join(lab.run, "nodes", self.name)
        self.umid = f"hanfs-{lab.run_id}-{self.name}"
        self.proc = None
        self.boots = 0  # this node's boot number within the whole run (names its log files)
        self.t_boot = None
        self._seq = 0
        self._lock = threading.Lock()

    # -- lifecycle
    def boot(self, disks=()):
        if self.running():
            raise LabError(f"{self.name} is already running")
        # numbered across the run: a later stack's or configuration's boots of
        # the same node must not overwrite the earlier ones' logs
        counts = self.lab.host.boot_counts
        counts[self.name] = counts.get(self.name, 0) + 1
        self.boots = counts[self.name]
        os.makedirs(self.ctl, exist_ok=True)
        os.makedirs(self.logdir, exist_ok=True)
        for f in os.listdir(self.ctl):
            os.unlink(os.path.join(self.ctl, f))
        self.lab.write_node_env(self)
        argv = [self.lab.host.uml, f"umid={self.umid}", f"uml_dir={self.lab.run}/uml/", f"mem={self.spec.mem_mb}M",
                "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro"]
        for letter, img in zip("bcd", disks):
            # c: shared, the image is not locked (two nodes attach it, one mounts it)
            argv.append(f"ubd{letter}c={img}")
        argv += [f"{T.NIC}:transport=tap,ifname={self.spec.tap}",
                 f"init={NODE_DIR}/init.sh", "con=null", "con0=fd:0,fd:1",
                 f"LAB_RUN={self.lab.run}", f"LAB_NODE={self.name}"]
        console = open(os.path.join(self.logdir, f"console-{self.boots}.log"), "w")
        self.t_boot = time.time()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        console.close()
        log.info("%s: booting (boot %d, UML pid %d)", self.name, self.boots, self.proc.pid)

    def wait_ready(self, timeout=240):
        deadline = time.time() + timeout
        while time.time() < deadline:
            errs = os.path.join(self.logdir, f"init-errors-{self.boots}")
            if os.path.exists(errs):
                raise LabError(f"{self.name}: init failed: {open(errs).read().strip()}")
            if os.path.exists(os.path.join(self.ctl, "ready")):
                dt = time.time() - self.t_boot
                log.info("%s: ready after %.1f s", self.name, dt)
                return dt
            if not self.running():
                raise NodeDown(f"{self.name} died while booting (see {self.logdir})")
            time.sleep(0.2)
        raise LabError(f"{self.name} not ready after {timeout} s (see {self.logdir}/init.log)")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, why="teardown"):
        """Hard power-off: SIGKILL the UML process and every descendant, by pid."""
        if self.proc is None:
            return None
        t = time.time()
        pids = process_tree(self.proc.pid) if self.running() else []
        pids += [p for p in pids_with_arg(f"umid={self.umid}") if p not in pids]
        gone = kill_tree(pids)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # a process of this UML that escaped the tree walk still carries our umid
        stray = [p for p in pids_with_arg(f"umid={self.umid}") if alive(p)]
        if stray:
            kill_tree(stray)
        if not gone or stray:
            log.warning("%s: kill needed a second pass (stray %s)", self.name, stray)
        log.info("%s: killed (%s), %d processes", self.name, why, len(pids))
        return t

    # -- control channel
    def spawn(self, script, timeout=600):
        if not self.running():
            raise NodeDown(f"{self.name} is not running")
        with self._lock:
            self._seq += 1
            cid = f"{self._seq:05d}"
        path = os.path.join(self.ctl, cid)
        with open(path + ".tmp", "w") as f:
            json.dump({"script": script, "timeout": timeout}, f)
        os.rename(path + ".tmp", path + ".cmd")
        return Handle(self, cid, script, timeout)

    def sh(self, script, timeout=120, check=True):
        return self.spawn(script, timeout).wait(check=check)

    def __repr__(self):
        return f"Node({self.name})"
