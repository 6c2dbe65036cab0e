"""The host side of the lab: preflight, build, network, disks, processes, teardown.

Everything created here is recorded in Host.cleanups and undone by
Host.teardown(), which the driver calls from a finally block: UML processes are
killed by pid (with all their descendants), taps and the bridge removed.
"""
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import time

from . import topology as T

log = logging.getLogger("lab")


class LabError(Exception):
    """A failure of the lab itself (not a finding about the stack under test)."""


def sh(*argv, check=True, timeout=600, **kw):
    log.debug("$ %s", " ".join(argv))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return r


# ---------------------------------------------------------------- processes

def _ppid_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def process_tree(pid):
    """pid and all its descendants, collected before anything is killed."""
    kids, out, todo = _ppid_map(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pids_with_arg(arg):
    """pids whose command line contains the exact argument `arg` (our unique umid=...)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if arg.encode() in f.read().split(b"\0"):
                    out.append(int(d))
        except OSError:
            pass
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_tree(pids, timeout=30):
    """SIGKILL every pid given; wait (bounded) until none is left alive."""
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------- host

class Host:
    def __init__(self, repo, run_dir):
        self.repo = repo
        self.run = run_dir
        self.cleanups = []  # (description, callable), undone in reverse order
        self.lock_fd = None
        self.uml = None          # the UML kernel the nodes boot
        self.uml_version = None  # its release (uname -r in a node)
        self.boot_counts = {}  # node name -> boots so far in this run

    # -- preflight
    def preflight(self, kernel="6.1", install=True):
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network devices, UML, loop of kernel modules)")
        self.lock_fd = os.open("/run/hanfs-lab.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError("another hanfs lab run holds /run/hanfs-lab.lock")
        missing = [p for p in T.PACKAGES if not self._installed(p)]
        if missing:
            if not install:
                raise LabError(f"missing Debian packages: {' '.join(missing)}")
            log.info("installing Debian packages: %s", " ".join(missing))
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            # keep Debian from starting the packages' daemons on this host
            # (policy-rc.d exit 101 = "not allowed"), unless a policy exists
            policy = "/usr/sbin/policy-rc.d"
            ours = not os.path.exists(policy)
            if ours:
                with open(policy, "w") as f:
                    f.write("#!/bin/sh\n# hanfs lab: no daemon starts during package install\nexit 101\n")
                os.chmod(policy, 0o755)
            try:
                sh("apt-get", "update", "-q", env=env, timeout=900)
                sh("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing, env=env, timeout=1800)
            finally:
                if ours:
                    os.unlink(policy)
        self._kernel(kernel)
        if not os.path.exists("/dev/net/tun"):
            raise LabError("/dev/net/tun is missing: taps cannot be created")

    def _kernel(self, kernel):
        """The UML kernel `kernel` names (scripts/uml-kernel.sh: Debian's 6.1,
        or 6.12 built once and cached), its release, and its module tree
        linked at /lib/modules/<release>, where the nodes' modprobe looks
        (their root is the host's)."""
        r = subprocess.run(["bash", os.path.join(self.repo, "scripts", "uml-kernel.sh"), kernel],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=3600)
        if r.returncode != 0 or not r.stdout.strip():
            raise LabError(f"no UML kernel {kernel}: {r.stderr.strip()[-800:]}")
        self.uml = r.stdout.strip().splitlines()[-1]
        # a kernel built by uml-kernel.sh carries its (built-in only) module
        # tree beside it; Debian's has /usr/lib/uml/modules
        beside = os.path.join(os.path.dirname(self.uml), "lib", "modules")
        root = beside if os.path.isdir(beside) else T.UML_MODULES
        vers = sorted(os.listdir(root)) if os.path.isdir(root) else []
        if len(vers) != 1:
            raise LabError(f"cannot tell the release of {self.uml}: module trees under {root}: {vers}")
        self.uml_version = vers[0]
        link = f"/lib/modules/{self.uml_version}"
        target = f"{root}/{self.uml_version}"
        if os.path.realpath(link) != os.path.realpath(target):
            os.makedirs("/lib/modules", exist_ok=True)
            if os.path.islink(link):
                os.unlink(link)  # an earlier run's link to another build of this release
            elif os.path.lexists(link):
                raise LabError(f"{link} exists and is not a UML module tree")
            os.symlink(target, link)
            log.info("linked %s -> %s (UML's modprobe looks there)", link, target)
        log.info("UML kernel %s (%s)", self.uml, self.uml_version)

    @staticmethod
    def _installed(pkg):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        return r.returncode == 0 and "install ok installed" in r.stdout

    def resources(self):
        """What the machine offers: used to decide how many clients to boot."""
        mem_avail = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    mem_avail = int(line.split()[1]) // 1024
        load1 = os.getloadavg()[0]
        return {"cpus": os.cpu_count(), "mem_available_mb": mem_avail, "load1": round(load1, 2)}

    # -- build
    def build(self):
        """cargo build --release; return the directory with the hanfs binaries."""
        r = subprocess.run(["cargo", "build", "--release", "--bins"], cwd=self.repo,
                           capture_output=True, text=True, timeout=3600)
        with open(os.path.join(self.run, "build.log"), "w") as f:
            f.write(r.stdout + r.stderr)
        if r.returncode != 0:
            raise LabError(f"cargo build --release failed (see {self.run}/build.log)")
        return os.path.join(self.repo, "target", "release")

    @staticmethod
    def check_agents(bindir):
        """The hanfs run needs real agents: each must print OCF meta-data."""
        problems = []
        for a in T.HANFS_AGENTS + T.HANFS_HELPERS:
            p = os.path.join(bindir, a)
            if not os.access(p, os.X_OK):
                problems.append(f"{a}: not built")
        for a in T.HANFS_AGENTS:
            p = os.path.join(bindir, a)
            if not os.access(p, os.X_OK):
                continue
            r = subprocess.run([p, "meta-data"], capture_output=True, text=True, timeout=20,
                               env=dict(os.environ, OCF_ROOT="/usr/lib/ocf"))
            if r.returncode != 0 or f'<resource-agent name="{a}"' not in r.stdout:
                problems.append(f"{a}: `{a} meta-data` gives no OCF meta-data (rc {r.returncode}):"
                                " the agent is not implemented in this build")
        if problems:
            raise LabError("hanfs agents not usable: " + "; ".join(problems))

    def snapshot_agents(self, bindir):
        dst = os.path.join(self.run, "agents")
        os.makedirs(dst, exist_ok=True)
        for a in T.HANFS_AGENTS + T.HANFS_HELPERS:
            shutil.copy2(os.path.join(bindir, a), os.path.join(dst, a))
        return dst

    # -- network
    def network(self, specs):
        for name in [T.BRIDGE] + [s.tap for s in specs]:
            if os.path.exists(f"/sys/class/net/{name}"):
                # we hold the lab lock, so this is left over from a dead run
                log.warning("removing leftover interface %s", name)
                sh("ip", "link", "del", name)
        sh("ip", "link", "add", T.BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        self.cleanups.append((f"bridge {T.BRIDGE}", lambda: sh("ip", "link", "del", T.BRIDGE, check=False)))
        # the host takes no part in the segment: no address, no IPv6
        with open(f"/proc/sys/net/ipv6/conf/{T.BRIDGE}/disable_ipv6", "w") as f:
            f.write("1")
        sh("ip", "link", "set", T.BRIDGE, "up")
        for s in specs:
            sh("ip", "tuntap", "add", s.tap, "mode", "tap")
            self.cleanups.append((f"tap {s.tap}", lambda t=s.tap: sh("ip", "link", "del", t, check=False)))
            with open(f"/proc/sys/net/ipv6/conf/{s.tap}/disable_ipv6", "w") as f:
                f.write("1")
            sh("ip", "link", "set", s.tap, "master", T.BRIDGE, "up")

    def capture(self, path, bpf, snaplen=160):
        """tcpdump on the bridge until teardown (headers only)."""
        p = subprocess.Popen(["tcpdump", "-i", T.BRIDGE, "-s", str(snaplen), "-U", "-w", path, bpf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        # registered after the network: undone before the bridge goes
        self.cleanups.append((f"tcpdump pid {p.pid}", lambda: _end(p)))

    @contextlib.contextmanager
    def arp_watch(self, path):
        """ARP on the bridge, as text (epoch times, MACs), into `path` while
        the block runs."""
        with open(path, "w") as out:
            p = subprocess.Popen(["tcpdump", "-i", T.BRIDGE, "-l", "-tt", "-e", "-n", "arp"],
                                 stdout=out, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)  # tcpdump attached before the caller's event
            yield
        finally:
            time.sleep(1)
            _end(p)

    def link(self, tap, up):
        """A node's tap up or down (down: the node is cut off the segment, alive)."""
        sh("ip", "link", "set", tap, "up" if up else "down")

    # -- shared disks
    def make_disk(self, path, label, dirs):
        """A fresh ext4 image, pre-populated (mke2fs -d) with directories; "data" ones
        are world-writable (the clients' test files), the rest 0755."""
        stage = path + ".d"
        shutil.rmtree(stage, ignore_errors=True)
        for d in dirs:
            os.makedirs(os.path.join(stage, d), exist_ok=True)
            os.chmod(os.path.join(stage, d), 0o777 if os.path.basename(d) == "data" else 0o755)
        if os.path.exists(path):
            os.unlink(path)
        sh("mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-d", stage, path, f"{T.DISK_MB}M")
        shutil.rmtree(stage)

    # -- teardown
    def add_cleanup(self, what, fn):
        self.cleanups.append((what, fn))

    def teardown(self):
        errors = []
        while self.cleanups:
            what, fn = self.cleanups.pop()
            try:
                fn()
                log.debug("cleaned up %s", what)
            except Exception as e:  # keep going: everything else must still go
                errors.append(f"{what}: {e}")
        left = [n for n in os.listdir("/sys/class/net") if n == T.BRIDGE or n.startswith("hanfs-")]
        if left:
            errors.append(f"interfaces left: {left}")
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
        return errors


def _end(p):
    """Stop a helper process (tcpdump): SIGTERM, SIGKILL 10 s later."""
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
    os.rename(tmp, path)
