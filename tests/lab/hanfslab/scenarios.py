"""The scenarios, and the checks made from the clients after each one."""
import json
import logging
import os
import shlex
import time

from . import analysis, cluster, logs, rpccap
from . import topology as T
from .clients import identity_ns
from .host import LabError
from .node import NODE_DIR

log = logging.getLogger("lab")


# writers must resume within this after the service is back (HANFS_LAB_RESUME_TIMEOUT
# shortens it, to see quickly what the report says of a client that never resumes)
RESUME_TIMEOUT = int(os.environ.get("HANFS_LAB_RESUME_TIMEOUT", "420"))
CONFIRM_TIMEOUT = 240  # probers must see every lock held again within this
SETTLE = 5
# holding_readonly's client machine that never locked before (an identity,
# in the nodes' block, below the --identities range: clients.identity_ip)
FRESH_HOST = 99
# recovery_readonly's (an NFSv4.2 client machine that never mounted before)
FRESH4_HOST = 98
# COUNT_RECORDS DB NAME: how many records of nfsdcld's current epoch name NAME
COUNT_RECORDS = r"""
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
cur, = db.execute("SELECT current FROM grace").fetchone()
print(sum(sys.argv[2].encode() in r[0] for r in db.execute('SELECT id FROM "rec-%016x"' % cur)))
"""
# lock_before_crash rounds that must kill within 100 ms of the grant;
# HANFS_LAB_LOCK_ROUNDS overrides
LOCK_ROUNDS = int(os.environ.get("HANFS_LAB_LOCK_ROUNDS", "10"))
# soak failovers (tests/lab/run --soak N sets it)
SOAK_ROUNDS = 20


class StuckWriters(LabError):
    """Writers that did not resume after the service came back."""

    def __init__(self, tags):
        super().__init__(f"writers {tags} did not resume within {RESUME_TIMEOUT} s")
        self.tags = tags

# Takes an exclusive POSIX lock on argv[1] (created), then writes "GRANTED
# <time>" to argv[2] (a host file) and holds the lock until killed.
HOLD_NEW_LOCK = r"""
import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.lockf(f, fcntl.LOCK_EX)
t = time.time()
with open(sys.argv[2] + ".tmp", "w") as o:
    o.write("GRANTED %.6f\n" % t)
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(3600)
"""

# Tries once, without waiting, to take argv[1]'s lock (the kernel still waits
# out a grace period); prints TAKEN, or HELD when another client holds it.
TRY_LOCK = r"""
import errno, fcntl, sys
f = open(sys.argv[1], "a")
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("TAKEN")
except OSError as e:
    print("HELD" if e.errno in (errno.EAGAIN, errno.EACCES) else "ERROR %s" % e)
"""


# What an administrator adds to /etc/nfs.conf on every node before migrating
# to hanfs (pcs-examples/migrate-from-heartbeat.sh, step 3). The file is a
# bind mount: rewritten in place.
ADD_CALLOUT = r"""grep -q '^ha-callout=' /etc/nfs.conf || {
  sed 's|^\[statd\]$|[statd]\nha-callout=/usr/libexec/hanfs/hanfs-statd-callout|' /etc/nfs.conf >/tmp/nfs.conf.new
  cat /tmp/nfs.conf.new >/etc/nfs.conf; }
grep -c '^ha-callout=/usr/libexec/hanfs/hanfs-statd-callout$' /etc/nfs.conf"""
# the lab's stand-in for `systemctl start rpc-statd nfs-mountd`
NFS_HELPERS = "/usr/lib/hanfs-lab/nfs-helpers"


class Runner:
    def __init__(self, lab, workload, stack=None):
        self.lab = lab
        self.w = workload
        self.stack = stack
        self.services = workload.config.services
        self._cpu = {}  # (server, boot) -> its cpusample.py

    def cpu_samplers(self):
        """--identities: node/cpusample.py on every running server (again
        on one that rebooted), so the report can say what the reclaim storm
        cost the node taking over."""
        for n in self.lab.running_servers():
            if (n.name, n.boots) not in self._cpu:
                log_path = os.path.join(self.w.dir, f"cpu-{n.name}-{n.boots}.log")
                self._cpu[(n.name, n.boots)] = n.spawn(f"exec python3 {NODE_DIR}/cpusample.py {log_path} 1",
                                                       timeout=6 * 3600)

    def _cpu_lines(self, node):
        out = []
        for (name, boot) in self._cpu:
            if name == node:
                try:
                    with open(os.path.join(self.w.dir, f"cpu-{name}-{boot}.log")) as f:
                        for ln in f:
                            try:
                                out.append(json.loads(ln))
                            except ValueError:
                                pass
                except OSError:
                    pass
        return out

    # -- helpers
    def where(self, group):
        return cluster.group_location(cluster.status_from_any(self.lab.running_servers()), group)

    def other(self, name):
        return next(n for n in self.lab.servers if n.name != name)

    def vip_holders(self, svc):
        out = []
        for n in self.lab.running_servers():
            r = n.sh(f"ip -o -4 addr show | grep -F ' {svc.vip}/' || true", timeout=60)
            if r.out.strip():
                out.append(n.name)
        return out

    def _wait_resumed(self, t_back):
        """Every writer has completed a write after t_back; returns when the last one did."""
        deadline = time.time() + RESUME_TIMEOUT
        while True:
            firsts = []
            for tag in self.w.tags():
                oks = logs.read_writer(self.w.writer_log(tag)).oks
                after = [o.t_end for o in oks if o.t_end >= t_back]
                firsts.append(after[0] if after else None)
            if all(firsts):
                return max(firsts)
            if time.time() > deadline:
                stuck = [t for t, f in zip(self.w.tags(), firsts) if not f]
                raise StuckWriters(stuck)
            time.sleep(1)

    def _tag_ip(self, tag):
        """The client address a writer's tag writes from (its node's, or its identity's)."""
        for c in self.w.clients:
            if tag.startswith(c.name + "-"):
                ids = dict(self.w.identity_names(c)) if self.w.identities else {}
                return c, ids.get(self.w.identity_of(tag), c.spec.ip)
        return None, None

    def _diagnose_stuck(self, tags, t_event):
        """For writers that never resumed, what the lab can still see, so that
        a failure printed by CI says where it stuck: each client node's
        liveness (its agent's heartbeat file), its sockets to the floating
        address, neighbour entry, blocked tasks and kernel log; the holder's
        sockets; and the bridge's story of the client's connection."""
        out = {}
        groups = self.w.tag_group()
        vip_of = {s.group: s.vip for s in self.services}
        pcap = next((p for p in (os.path.join(self.lab.run, n) for n in ("bridge.pcap", "bridge-ctl.pcap"))
                     if os.path.exists(p)), None)
        for tag in tags:
            node, ip = self._tag_ip(tag)
            vip = vip_of.get(groups.get(tag))
            if node is None or vip is None:
                continue
            d = out.setdefault(node.name, {"tags": [], "ip": ip, "vip": vip})
            d["tags"].append(tag)
            if pcap and "wire" not in d:
                try:
                    d["wire"] = analysis.wire_story(rpccap.tcp_segments(pcap), rpccap.arps(pcap), ip, vip,
                                                    t_event, time.time())
                except (OSError, ValueError, IndexError) as e:
                    d["wire"] = [f"capture unreadable: {e}"]
        for name, d in out.items():
            node = self.lab.node(name)
            try:
                d["alive_age_s"] = round(time.time() - os.path.getmtime(os.path.join(node.ctl, "alive")), 1)
            except OSError:
                d["alive_age_s"] = None
            script = (f"echo '# ss'; ss -tnoi dst {d['vip']} | head -40; echo '# neigh'; ip neigh show {d['vip']}; "
                      "echo '# blocked tasks'; ps -eo pid,stat,wchan:30,args | awk 'NR==1 || $2 ~ /D/' | head -20; "
                      "echo '# dmesg (repeats counted)'; dmesg | sed 's/^\\[[^]]*\\] //' | uniq -c | tail -20")
            try:
                d["node"] = [x.rstrip() for x in node.sh(script, timeout=30, check=False).out.splitlines()]
            except LabError as e:
                d["node"] = [f"no answer: {e}"]
        for svc in (s for s in self.services if s.vip in {d["vip"] for d in out.values()}):
            try:
                holders = {n: self.lab.node(n).sh(f"ss -tn src {svc.vip} | head -30", timeout=30, check=False).out
                           for n in self.vip_holders(svc)}
            except LabError as e:
                log.warning("the sockets of %s's holder: %s", svc.vip, e)
                continue
            for d in out.values():
                if d["vip"] == svc.vip:
                    d["holder"] = {n: [x.rstrip() for x in o.splitlines()] for n, o in holders.items()}
        for name, d in out.items():
            log.error("%s (%s, agent heartbeat %s s ago) stuck: %s", name, d["ip"], d.get("alive_age_s"),
                      ", ".join(d["tags"]))
        return out

    def _wait_confirmed(self, t_recovered):
        deadline = time.time() + CONFIRM_TIMEOUT
        while time.time() < deadline:
            pending = []
            for tag in self.w.probers:
                rows = logs.read_prober(self.w.prober_log(tag))
                # every file tried at least once since the writers resumed
                if {r.file for r in rows} - {r.file for r in rows if r.t_start >= t_recovered}:
                    pending.append(tag)
            if not pending:
                return True
            time.sleep(1)
        return False

    # -- one scenario window, from its event to the checks
    def _finish(self, name, t_event, expect, extra):
        """expect: group -> the node it must end on (or a tuple of the nodes it
        may end on: expected_on then names the one it did)."""
        res = {"scenario": name, "t_event": t_event, "expected_on": dict(expect), **extra}
        try:
            if "error" in res:
                raise LabError(res["error"])
            for g, node in expect.items():
                where = cluster.wait_group(self.lab.running_servers(), g, timeout=600, on=node)
                res["expected_on"][g] = where
            res["t_service_back"] = time.time()
            res["service_back_s"] = round(res["t_service_back"] - t_event, 1)
            res["t_writers_resumed"] = self._wait_resumed(res["t_service_back"] - 1)
            res["probers_confirmed"] = self._wait_confirmed(res["t_writers_resumed"])
            time.sleep(SETTLE)
            res["running_on"] = {s.group: self.where(s.group) for s in self.services}
            res["vip_on"] = {s.group: self.vip_holders(s) for s in self.services}
        except LabError as e:
            res["error"] = str(e)
            log.error("%s: %s", name, e)
            if isinstance(e, StuckWriters):
                try:
                    res["stuck"] = self._diagnose_stuck(e.tags, t_event)
                except Exception as e2:  # a diagnosis must not hide the failure it explains
                    log.exception("%s: diagnosing the stuck writers failed: %s", name, e2)
            # where things are now, for the checks (best effort: a node may be hung)
            try:
                res.setdefault("running_on", {s.group: self.where(s.group) for s in self.services})
                res.setdefault("vip_on", {s.group: self.vip_holders(s) for s in self.services})
            except LabError as e2:
                log.warning("%s: where the services are now is not known: %s", name, e2)
        t_end = time.time()
        res["t_end"] = t_end
        res["clients"] = {}
        t_rec = res.get("t_writers_resumed")
        for tag in self.w.tags():
            res["clients"][tag] = {"writer": analysis.writer_window(self.w.writer_log(tag), t_event, t_end)}
        for tag in self.w.probers:
            res["clients"].setdefault(tag, {})["prober"] = analysis.prober_window(
                self.w.prober_log(tag), t_event, t_end, t_rec)
        if "error" not in res:
            try:
                verified = self.w.verify()
                for tag, v in verified.items():
                    res["clients"][tag]["writes"] = analysis.writes_check(self.w.writer_log(tag), v)
            except LabError as e:
                res["error"] = f"verify: {e}"
        res["agent_actions"] = cluster.agent_actions([n.logdir for n in self.lab.servers], t_event - 1, t_end)
        self._timeline(res, t_event, t_end)
        res["services"] = self._service_pauses(res, t_event)
        if self.w.identities:
            res["identities"] = self._identities(res, t_event, t_end)
        res["nlm_grace_watch"] = self._nlm_watch(res)
        res["fence_events"] = self.lab.fencer.events_since(t_event - 1)
        res["checks"] = judge(res)
        res["passed"] = all(c["ok"] for c in res["checks"])
        return res

    def _timeline(self, res, t_event, t_end):
        """Address removed / up, the critical path between them, each client's
        reconnect delay (first write after the pause minus "address up") and
        its first new lock after "address up"."""
        try:
            st = cluster.status_from_any(self.lab.running_servers()) or {}
            agents = {rid: r.get("agent") for rid, r in st.get("resources", {}).items()}
        except LabError:
            agents = {}
        new = next(iter(res.get("expected_on", {}).values()), None)
        t_removed, t_up = analysis.address_times(res["agent_actions"], agents, res.get("from_node"), new, t_event)
        res["t_address_removed"], res["t_address_up"] = t_removed, t_up
        res["address_up_s"] = round(t_up - t_event, 3) if t_up else None
        res["critical_path"] = analysis.critical_path(res["agent_actions"], agents, t_removed, t_up)
        for tag, c in res["clients"].items():
            w = c.get("writer", {})
            c["reconnect_s"] = round(w["resumed_at"] - t_up, 3) if t_up and w.get("resumed_at") else None
            if t_up and tag in self.w.newlockers:
                c["newlock"] = analysis.newlock_window(self.w.newlock_log(tag), t_up, t_end)
                c["new_lock_s"] = c["newlock"]["new_lock_s"]
        res["timeline"] = analysis.timeline(t_event, res["agent_actions"], t_removed, t_up, res["clients"])

    def _service_pauses(self, res, t_event):
        """Per service: moved or not, its clients' longest pause, and the nfsd
        restarts on its node that explain a pause (analysis.service_pauses)."""
        try:
            st = cluster.status_from_any(self.lab.running_servers()) or {}
        except LabError:
            st = {}
        agents = {rid: r.get("agent") for rid, r in st.get("resources", {}).items()}
        tag_group = self.w.tag_group()
        return analysis.service_pauses([s.group for s in self.services], tag_group, res["clients"],
                                       st.get("groups", {}), agents, res["agent_actions"], t_event,
                                       before=res.get("before_on"), after=res.get("running_on"))

    def _identities(self, res, t_event, t_end):
        """--identities: the pause over every identity's writers (median, p99,
        worst), and from the bridge capture the SM_NOTIFYs and NLM reclaims
        of the identities after "address up" (analysis.notify_reclaim_summary)."""
        names = {c: self.w.identity_names(c) for c in self.w.clients}
        ids = {self.w.identity_of(t) for c in self.w.clients for t, _, _ in self.w.identity_mounts(c)}
        pauses = [c["writer"].get("max_pause_s") for t, c in res["clients"].items()
                  if self.w.identity_of(t) in ids]
        out = {"per_client_node": self.w.identities, "pause": analysis.pause_stats(pauses)}
        try:
            out["statd_unregistered"] = self.w.statd_unregistered()
        except LabError as e:
            out["statd_unregistered_error"] = str(e)
        pcap = os.path.join(self.lab.run, "bridge.pcap")
        try:
            calls = rpccap.calls(pcap, t_event - 1, t_end)
            ip_identity = {ip: n for ns in names.values() for n, ip in ns}
            vips = {s.vip for s in self.services}
            out.update(analysis.notify_reclaim_summary(calls, ip_identity, vips, res.get("t_address_up")))
            # the client nodes' own mounts, notified and reclaiming the same way
            nodes = analysis.notify_reclaim_summary(
                calls, {c.spec.ip: c.name for c in self.w.clients}, vips,
                res.get("t_address_up"))
            out["client_nodes"] = {k: nodes[k] for k in ("notified", "last_notify_answered_s",
                                                          "not_notified", "no_reclaim_seen")}
        except (OSError, ValueError) as e:
            out["capture_error"] = str(e)
        # what the reclaims cost the node taking over (address up -> last reclaim)
        new = next((n for n in res.get("expected_on", {}).values() if isinstance(n, str)), None)
        up, last = res.get("t_address_up"), out.get("last_reclaim_s")
        if new and up and last is not None:
            out["cpu_during_reclaims"] = dict(node=new, **(analysis.cpu_window(self._cpu_lines(new), up, up + last)
                                                           or {"error": "no CPU sample in the window"}))
        return out

    def _nlm_watch(self, res):
        """statd-holding's NLM grace watcher, as it left its status on the node
        the service runs on (its verdict, when it ended lockd's grace)."""
        out = {}
        for node in {n for n in res.get("expected_on", {}).values() if isinstance(n, str)}:
            try:
                r = self.lab.node(node).sh("for f in /run/hanfs/statd-holding/*.nlm; do [ -f \"$f\" ] && "
                                           "{ echo \"== $f\"; cat \"$f\"; echo; }; done; true", timeout=60)
                out[node] = r.out[-2000:]
            except LabError as e:
                out[node] = f"error: {e}"
        return out

    @staticmethod
    def _log(res):
        log.info("%s: %s", res["scenario"], "PASSED" if res["passed"] else "FAILED: " +
                 "; ".join(c["name"] + ": " + c["detail"][:300] for c in res["checks"] if not c["ok"]))

    # -- scenarios
    def move(self):
        """pcs resource move of the (first) service to the other node, then back."""
        out = []
        group = self.services[0].group
        home = self.where(group)
        if home is None:
            raise LabError(f"group {group} is not running anywhere before the move")
        for target in (self.other(home).name, home):
            r = self._move_to(group, target)
            out.append(r)
            if "error" in r:
                break
        return out

    def _move_to(self, group, target):
        src = self.where(group)
        t = time.time()
        log.info("move: pcs resource move %s %s (from %s)", group, target, src)
        h = self.lab.node(src).spawn(f"pcs resource move {group} {target}", timeout=900)
        r = self._finish(f"move {src}->{target}", t, {group: target}, {"from_node": src})
        try:
            pr = h.wait()
            r["pcs_move"] = {"rc": pr.rc, "seconds": round(pr.t_end - t, 1), "out": pr.out[-400:]}
        except LabError as e:
            r["pcs_move"] = {"error": str(e)}
        self._log(r)
        return r

    def soak(self):
        """SOAK_ROUNDS failovers of the (first) service in a row, alternating a
        `pcs resource move` to the other node and a crash + fence of the node
        running it (repaired and rejoined before the next round). Every round
        is judged like its single scenario; the last one also carries the
        verdict on degradation (analysis.soak_verdict): pauses, hanfs agent
        times, and the nodes' footprint (processes, files in the holding,
        recovery and runtime directories) must not grow."""
        svc = self.services[0]
        out = []
        for i in range(SOAK_ROUNDS):
            node = self.where(svc.group)
            if node is None:
                raise LabError(f"soak round {i + 1}: group {svc.group} is not running anywhere")
            if i % 2 == 0:
                r = self._move_to(svc.group, self.other(node).name)
            else:
                r = self._crash("soak crash", node)
            r["soak_round"] = i + 1
            pauses = [c["writer"].get("max_pause_s") for c in r["clients"].values() if c.get("writer")]
            r["pause_s"] = max((p for p in pauses if p is not None), default=None)
            r["hanfs_s"] = (r.get("critical_path") or {}).get("hanfs_s")
            r["footprint"] = self._footprint(svc)
            log.info("soak round %d/%d: %s, pause %s s, footprint %s", i + 1, SOAK_ROUNDS,
                     "PASSED" if r["passed"] else "FAILED", r["pause_s"], r["footprint"])
            out.append(r)
            if "error" in r or "repair_error" in r:
                break
        summary, problems = analysis.soak_verdict(out)
        last = out[-1]
        last["soak"] = dict(summary, problems=problems)
        last["checks"].append(_check(f"{len(out)} soak rounds ({SOAK_ROUNDS} asked) without degradation",
                                     len(out) == SOAK_ROUNDS and not problems,
                                     "; ".join(problems) or f"median pause {summary['median_pause_s']} s, "
                                                             f"worst {summary['worst_pause_s']} s"))
        last["passed"] = all(c["ok"] for c in last["checks"])
        return out

    # What a soak counts on the servers after each round: files the agents
    # keep (holding and recovery directories on the shared disk, runtime
    # state) and processes (all, and those hanfs starts: notifiers, watchers,
    # nfsdcld).
    FOOTPRINT = {
        "holding files": "find {mount}/.nfs-ha/statd -mindepth 1 | wc -l",
        "recovery files": "find {mount}/.nfs-ha/v4recovery -mindepth 1 | wc -l",
        "runtime files": "find /run/hanfs /run/resource-agents -mindepth 1 2>/dev/null | wc -l",
        "processes": "ps -e --no-headers | wc -l",
        "hanfs processes": "pgrep -c -f 'sm-notify|hanfs|nfsdcld' || true",
    }

    def _footprint(self, svc):
        out = {}
        where = self.where(svc.group)
        for n in self.lab.running_servers():
            for name, cmd in self.FOOTPRINT.items():
                if name in ("holding files", "recovery files") and n.name != where:
                    continue  # the shared disk is mounted where the service runs
                try:
                    v = int(n.sh(cmd.format(mount=svc.mount), timeout=60).out.split()[-1])
                except (LabError, ValueError, IndexError):
                    continue
                key = name if name in ("holding files", "recovery files") else f"{name} on {n.name}"
                out[key] = v
        return out

    def migrate(self):
        """The cluster runs the heartbeat-agent stack; the administrator prepares
        the nodes as migrate-from-heartbeat.sh says and runs it, verbatim, on the
        node where the service runs; clients must carry on with their locks.
        Then the migrated service is moved to the other node and back."""
        svc = self.services[0]
        group = svc.group
        node = self.where(group)
        if node is None:
            raise LabError(f"group {group} is not running anywhere before the migration")
        # Before: on every node, hanfs installed (the lab's nodes have it), the
        # callout in nfs.conf; the NFS helpers running where the old server
        # does not run (where it runs they are its own until it stops: the
        # script starts them again then, NFS_HELPERS_START).
        prep = {}
        for n in self.lab.running_servers():
            r = n.sh(ADD_CALLOUT, timeout=60)
            prep[n.name] = {"callout_lines": r.out.strip()}
            if n.name != node:
                n.sh(NFS_HELPERS, timeout=120)
                prep[n.name]["helpers"] = n.sh("pgrep -x rpc.statd >/dev/null && pgrep -x rpc.mountd >/dev/null "
                                               "&& echo running", timeout=60).out.strip()
        env = {"GROUP": group, "SHARED_MOUNT": svc.mount, "NFS_HELPERS_START": NFS_HELPERS, "WAIT": "600"}
        cmd = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        cmd += f" sh {self.lab.host.repo}/pcs-examples/migrate-from-heartbeat.sh"
        t = time.time()
        log.info("migrate: %s on %s", cmd, node)
        r = self.lab.node(node).sh(cmd + " 2>&1", timeout=1500, check=False)
        script = {"rc": r.rc, "seconds": round(r.t_end - t, 1), "out": r.out[-3000:]}
        log.info("migrate: script rc %d after %.1f s", r.rc, r.t_end - t)
        extra = {"migration_script": script, "prepared": prep}
        if r.rc != 0:
            extra["error"] = f"migrate-from-heartbeat.sh failed (rc {r.rc}): {r.out[-800:]}"
        extra["from_node"] = node
        res = self._finish(f"migrate {self.lab.stack.name}->{self.stack.name} on {node}", t, {group: node}, extra)
        st = cluster.status_from_any(self.lab.running_servers())
        agents = {rid: st["resources"][rid]["agent"] for rid in st["groups"].get(group, [])} if st else {}
        res["agents_after"] = agents
        want = f"ocf:{self.stack.name}:"
        old = sorted(rid for rid, a in agents.items() if not (a or "").startswith(want) and "Filesystem" not in (a or ""))
        res["checks"].append(_check(f"{group} runs the {self.stack.name} agents", agents and not old,
                                    f"not migrated: {old}" if old else ", ".join(f"{k}={v}" for k, v in agents.items())))
        res["passed"] = all(c["ok"] for c in res["checks"])
        self._log(res)
        if "error" in res:
            return [res]
        return [res] + self.move()

    def crash(self):
        """Kill the node running the (first) service (no clean stop); it must be fenced."""
        group = self.services[0].group
        victim = self.where(group)
        if victim is None:
            raise LabError(f"group {group} is not running anywhere before the crash")
        return [self._crash("crash", victim)]

    def nfsd_dies(self):
        """nfsd stops behind the cluster's back on the node running the (first)
        service (`rpc.nfsd 0`: no threads, every NFSv4 state and, lockd having no
        other user, every NLM lock gone). The NFS server resource's monitor must
        report it as a failure (1, never 3 or 7) and Pacemaker recovers the group
        in place (the examples leave migration-threshold at its default); the
        clients reclaim in the new grace period and keep every lock."""
        group = self.services[0].group
        node = self.where(group)
        if node is None:
            raise LabError(f"group {group} is not running anywhere before nfsd dies")
        server = self._member(group, (":nfs-grace", ":nfsserver"))
        t = time.time()
        log.info("nfsd_dies: rpc.nfsd 0 on %s (%s's NFS server is %s)", node, group, server)
        r = self.lab.node(node).sh("rpc.nfsd 0 && cat /proc/fs/nfsd/threads", timeout=60, check=False)
        extra = {"from_node": node, "server_resource": server, "rpc_nfsd_0": {"rc": r.rc, "out": r.out[-300:]}}
        if r.rc != 0:
            extra["error"] = f"rpc.nfsd 0 failed (rc {r.rc}): {r.out[-300:]}"
        else:
            # the group counts as back only after its recovery: wait for the
            # server resource's next successful start (the failed monitor
            # comes first), then for the whole group as every scenario does
            deadline = t + 180
            while time.time() < deadline and not self._restarted(server, t):
                time.sleep(1)
        res = self._finish(f"nfsd dies on {node}", t, {group: node}, extra)
        mons = cluster.op_results([n.logdir for n in self.lab.servers], server, "monitor", t - 1, res["t_end"])
        res["server_monitor_results"] = mons
        failed = [m for m in mons if m["rc"] != 0]
        res["checks"].append(_check(f"{server}'s monitor reported nfsd's death as a failure (1)",
                                    failed and failed[0]["rc"] == 1,
                                    f"first failed result: {failed[0]}" if failed else f"no failed monitor: {mons}"))
        res["passed"] = all(c["ok"] for c in res["checks"])
        self._log(res)
        # leave the cluster clean for the next scenario
        try:
            self.lab.node(node).sh(f"pcs resource cleanup {server}", timeout=120, check=False)
            cluster.wait_group(self.lab.running_servers(), group, timeout=300, on=node)
        except LabError as e:
            res["cleanup_error"] = str(e)
        return [res]

    def statd_dies(self):
        """rpc.statd is killed (-9) on the node running the (first) service.
        While it is gone, lockd cannot monitor a client that asks for its
        first lock: that lock must be refused (ENOLCK) or, if granted, its
        client recorded in the holding directory, never granted unrecorded.
        statd-holding's monitor must report statd's death (1); Pacemaker
        recovers statd-holding alone, in place (its start runs rpc.statd;
        it is the group's last resource), the clients keep their locks. Then
        a client takes a new lock with statd back and the node is killed:
        after the takeover that lock is still the client's."""
        svc, node, holding, holder, other = self._lock_fault_setup("statd_dies")
        group = svc.group
        mnt = f"/mnt/{group}-v3"
        server = self.lab.node(node)
        t = time.time()
        log.info("statd_dies: kill -9 rpc.statd on %s (%s's statd-holding is %s)", node, group, holding)
        r = server.sh("pid=$(pidof rpc.statd) && kill -9 $pid && sleep 0.2 && ! pidof rpc.statd && echo killed $pid",
                      timeout=60, check=False)
        extra = {"from_node": node, "holding_resource": holding, "kill": {"rc": r.rc, "out": r.out[-300:]}}
        during = None
        if r.rc != 0:
            extra["error"] = f"could not kill rpc.statd on {node} (rc {r.rc}): {r.out[-300:]}"
        else:
            # a client that holds no lock on this file yet asks for one while
            # statd is gone (lockd monitors a host at its first lock only, and
            # the workload's clients are monitored already: the answer shows
            # what lockd does without statd, on this node's current state)
            a = holder.sh(f"timeout 50 python3 -c {shlex.quote(TRY_LOCK)} {mnt}/statd-dies-during",
                          timeout=90, check=False)
            during = a.out.strip().splitlines()[-1] if a.out.strip() else f"rc {a.rc}"
            extra["lock_while_statd_dead"] = {"verdict": during, "seconds": round(a.t_end - t, 1),
                                              "statd_back_by_then": self._restarted(holding, t)}
            log.info("statd_dies: %s's lock attempt with statd dead: %s", holder.name, during)
            deadline = t + 180
            while time.time() < deadline and not self._restarted(holding, t):
                time.sleep(1)
        res = self._finish(f"statd dies on {node}", t, {group: node}, extra)
        logdirs = [n.logdir for n in self.lab.servers]
        mons = cluster.op_results(logdirs, holding, "monitor", t - 1, res["t_end"])
        res["holding_monitor_results"] = mons
        failed = [m for m in mons if m["rc"] != 0]
        res["checks"].append(_check(f"{holding}'s monitor reported statd's death as a failure (1)",
                                    failed and failed[0]["rc"] == 1,
                                    f"first failed result: {failed[0]}" if failed else f"no failed monitor: {mons}"))
        started = sorted({a["resource"] for a in res["agent_actions"] if a["op"] == "start"})
        res["checks"].append(_check(f"only {holding} was recovered", started == [holding],
                                    f"started in the window: {started}"))
        recorded = server.sh(f"grep -rlF {holder.spec.ip} {svc.mount}/.nfs-ha/statd 2>/dev/null | head -3; true",
                             timeout=60).out.split()
        res["holder_records"] = recorded
        if during is not None:
            ok = "No locks available" in during or (during == "TAKEN" and recorded)
            res["checks"].append(_check("no lock granted with statd dead unless its client is recorded", ok,
                                        f"{holder.name}'s attempt: {during}; its records: {recorded or 'none'}"))
        res["passed"] = all(c["ok"] for c in res["checks"])
        self._log(res)
        out = [res]
        if "error" in res:
            return out
        try:
            server.sh(f"pcs resource cleanup {holding}", timeout=120, check=False)
            cluster.wait_group(self.lab.running_servers(), group, timeout=300, on=node)
        except LabError as e:
            res["cleanup_error"] = str(e)
            return out
        # statd is back: a new lock now must survive the next failover
        flag = os.path.join(self.w.dir, "statd-dies-after.granted")
        path = f"{mnt}/statd-dies-after"
        h = self._hold_new_lock(holder, path, flag, within=120, poll=0.05)
        if h is None:
            res["checks"].append(_check(f"{holder.name} gets a new lock once statd is back", False,
                                        f"no grant on {path} within 120 s"))
            res["passed"] = False
            return out
        time.sleep(2)  # the grant reached the client: statd recorded it first
        out.append(self._crash_keeps_lock("statd_dies: crash after the new lock", node, h, holder, other, path,
                                          "the lock taken after statd came back"))
        return out

    def _lock_fault_setup(self, scenario):
        """For a fault scenario about NFSv3 lock holders: the (first)
        service, the node running it, its statd-holding resource, and the
        client nodes that lock (holder) and try the lock (other)."""
        svc = self.services[0]
        node = self.where(svc.group)
        if node is None:
            raise LabError(f"{scenario}: group {svc.group} is not running anywhere")
        holder, other = self.lab.clients[0], self.lab.clients[-1]
        if holder is other:
            raise LabError(f"{scenario} needs two client nodes")
        return svc, node, self._holding_resource(svc.group), holder, other

    def _holding_resource(self, group):
        """The statd-holding resource of `group`."""
        return self._member(group, ":statd-holding")

    def _member(self, group, agents):
        """The resource of `group` whose agent ends with `agents` (a suffix
        or a tuple of them, as str.endswith takes)."""
        st = cluster.status_from_any(self.lab.running_servers()) or {}
        members = st.get("groups", {}).get(group, [])
        rid = next((rid for rid in members
                    if (st["resources"][rid].get("agent") or "").endswith(agents)), None)
        if rid is None:
            raise LabError(f"no {agents} resource in group {group}: {members}")
        return rid

    def holding_readonly(self):
        """Issue 12, 7: the holding directory turns read-only on the node
        running the (first) service (a read-only bind mount over it there:
        the exports stay writable) and a client that never locked before
        takes an NFSv3 lock, so the callout cannot record it. It must not be
        silently unprotected: statd-holding's monitor fails (1) naming it.
        Pacemaker's recovery, a restart in place, succeeds without notifying
        anyone, so the service stays and the lock stays the client's (the
        other client finds it held); the monitor does not fail again for
        the same client (that would restart the resource over and over: run
        20261203-065051), it logs it at error level. Once the
        directory is writable again and the failures are cleared, the
        monitor records the client; then the node crashes and after the
        takeover the lock is still the client's."""
        svc, node, holding, holder, other = self._lock_fault_setup("holding_readonly")
        group = svc.group
        server = self.lab.node(node)
        hdir = f"{svc.mount}/.nfs-ha/statd"
        logdirs = [n.logdir for n in self.lab.servers]
        # a client machine that never locked here: its own network, name and statd
        name, ip = "fresh", f"{T.SUBNET}.{FRESH_HOST}"
        holder.sh(f"sh {NODE_DIR}/identities.sh {T.NIC} {T.PREFIX} {svc.vip} {svc.export} - 0 {name},{ip}",
                  timeout=300)
        path = "holding-readonly"
        t = time.time()
        log.info("holding_readonly: %s read-only on %s; %s (%s) takes a new lock", hdir, node, name, ip)
        extra = {"from_node": node, "holding_resource": holding, "fresh_client": ip}
        h = None
        if self._make_read_only(server, hdir, extra):
            flag = os.path.join(self.w.dir, "holding-readonly.granted")
            h = self._hold_new_lock(holder, f"/mnt/{name}-v3/{path}", flag, within=120, poll=0.1,
                                    wrap=identity_ns(name))
            if h is None:
                extra["error"] = f"{name} got no lock on {path} within 120 s"
        self._wait_monitor_verdict(logdirs, holding, t, extra)
        res = self._finish(f"holding_dir read-only on {node}", t, {group: node}, extra)
        mons = cluster.op_results(logdirs, holding, "monitor", t - 1, res["t_end"])
        res["holding_monitor_results"] = mons
        failed = [m for m in mons if m["rc"] != 0]
        res["checks"].append(_check(f"{holding}'s monitor failed (1) naming the unrecorded client {ip}",
                                    bool(failed) and failed[0]["rc"] == 1 and ip in failed[0]["text"],
                                    f"first failed result: {failed[0]}" if failed else f"no failed monitor: {mons}"))
        res["recovery_actions"] = [f"{a['node']} {a['resource']} {a['op']} {a['rc']}" for a in res["agent_actions"]
                                   if a["op"] in ("start", "stop")]
        starts = [a["resource"] for a in res["agent_actions"] if a["op"] == "start"]
        res["checks"].append(_check(f"{holding} alone recovered, once, in place", starts == [holding],
                                    f"starts in the window: {starts}"))
        if h is not None:
            self._still_held(res, holder, other, f"/mnt/{group}-v3/{path}", f"{name}'s unrecorded lock")
        self._log(res)
        out = [res]
        # the administrator: the directory writable again, the failures cleared
        try:
            server.sh(f"while mountpoint -q {hdir}; do umount {hdir} || break; done; "
                      f"pcs resource cleanup {holding}", timeout=120, check=False)
            cluster.wait_group(self.lab.running_servers(), group, timeout=300, on=node)
            t_fixed = time.time()
            deadline = t_fixed + 60
            recorded = False
            while not recorded and time.time() < deadline:
                time.sleep(2)
                recorded = server.sh(f"test -e {hdir}/{ip} && echo yes; true", timeout=60).out.strip() == "yes"
            res["recorded_after_fix_s"] = round(time.time() - t_fixed, 1) if recorded else None
            res["checks"].append(_check(f"{ip} in the holding directory once it is writable", recorded,
                                        f"after {res['recorded_after_fix_s']} s" if recorded else "not within 60 s"))
        except LabError as e:
            res["checks"].append(_check("the administrator's repair", False, str(e)))
        return self._then_crash(out, h, "holding_readonly: crash once recorded", node, holder, other,
                                f"/mnt/{group}-v3/{path}", f"{name}'s lock, recorded late")

    def recovery_readonly(self):
        """Issue 12, 7, the NFSv4 half: recovery_dir turns read-only on the
        node running the (first) service (a read-only bind mount over it
        there) and a client machine that never mounted before mounts the
        service with NFSv4.2 and takes a lock, so nfsdcld cannot record it
        (the kernel only logs it). It must not be silently unprotected:
        nfs-grace's monitor answers 190, degraded, naming it; Pacemaker
        recovers nothing (crm_mon lists the monitor under failed actions)
        and the other client finds the lock held. Once the directory is
        writable again the monitor records it and answers 0; after a
        cleanup crm_mon no longer lists it, and nothing restarted; then the
        node crashes and after the takeover the
        lock is still the client's."""
        svc, node, _holding, holder, other = self._lock_fault_setup("recovery_readonly")
        group = svc.group
        server = self.lab.node(node)
        grace = self._member(group, ":nfs-grace")
        rdir = f"{svc.mount}/.nfs-ha/v4recovery"
        logdirs = [n.logdir for n in self.lab.servers]
        name, ip = "fresh4", f"{T.SUBNET}.{FRESH4_HOST}"
        path = "recovery-readonly"
        t = time.time()
        log.info("recovery_readonly: %s read-only on %s; %s (%s) mounts with NFSv4.2 and takes a lock",
                 rdir, node, name, ip)
        extra = {"from_node": node, "grace_resource": grace, "fresh_client": ip}
        h = None
        if self._make_read_only(server, rdir, extra):
            holder.sh(f"sh {NODE_DIR}/identities.sh {T.NIC} {T.PREFIX} {svc.vip} {svc.export} "
                      f"{self.w.config.v4_paths[group]} 1 {name},{ip}", timeout=300)
            flag = os.path.join(self.w.dir, "recovery-readonly.granted")
            h = self._hold_new_lock(holder, f"/mnt/{name}-v4/{path}", flag, within=120, poll=0.1,
                                    wrap=identity_ns(name))
            if h is None:
                extra["error"] = f"{name} got no NFSv4 lock on {path} within 120 s"
        self._wait_monitor_verdict(logdirs, grace, t, extra)
        if "error" not in extra:
            extra["crm_mon_degraded"] = server.sh("crm_mon -1 2>&1 | grep -i degraded; true", timeout=60).out.strip()
        res = self._finish(f"recovery_dir read-only on {node}", t, {group: node}, extra)
        mons = cluster.op_results(logdirs, grace, "monitor", t - 1, res["t_end"])
        res["grace_monitor_results"] = mons
        odd = [m for m in mons if m["rc"] != 0]
        res["checks"].append(_check(f"{grace}'s monitor answered degraded (190) naming {name}",
                                    bool(odd) and all(m["rc"] == 190 for m in odd) and name in odd[0]["text"],
                                    f"first: {odd[0]}" if odd else f"no such monitor result: {mons}"))
        res["checks"].append(_check("crm_mon lists it", name in res.get("crm_mon_degraded", ""),
                                    res.get("crm_mon_degraded") or "nothing degraded in crm_mon -1"))
        actions = [f"{a['node']} {a['resource']} {a['op']}" for a in res["agent_actions"]
                   if a["op"] in ("start", "stop")]
        res["checks"].append(_check("Pacemaker recovered nothing", not actions, f"starts and stops: {actions}"))
        if h is not None:
            self._still_held(res, holder, other, f"/mnt/{group}-v4/{path}", f"{name}'s unrecorded NFSv4 lock")
        self._log(res)
        out = [res]
        # the administrator makes the directory writable again (and cleans up, below)
        try:
            server.sh(f"while mountpoint -q {rdir}; do umount {rdir} || break; done", timeout=120, check=False)
            t_fixed = time.time()
            deadline = t_fixed + 60
            back = []
            while not back and time.time() < deadline:
                time.sleep(2)
                back = [m for m in cluster.op_results(logdirs, grace, "monitor", t_fixed, time.time() + 1)
                        if m["rc"] == 0]
            res["monitor_ok_after_fix_s"] = round(back[0]["t"] - t_fixed, 1) if back else None
            res["checks"].append(_check(f"{grace}'s monitor answered 0 once writable", bool(back),
                                        f"after {res['monitor_ok_after_fix_s']} s" if back else "not within 60 s"))
            recorded = server.sh(
                f"python3 -c {shlex.quote(COUNT_RECORDS)} {rdir}/main.sqlite {shlex.quote(name)}", timeout=60,
                check=False).out.strip()
            res["checks"].append(_check(f"{name} recorded in {rdir}", recorded == "1", f"records naming it: {recorded}"))
            # a degraded result stands in crm_mon until cleaned up, as a failure
            # does (run 20261204-175626); the cleanup's probe answers 0 and
            # nothing restarts
            t_clean = time.time()
            server.sh(f"pcs resource cleanup {grace}", timeout=120, check=False)
            cluster.wait_group(self.lab.running_servers(), group, timeout=300, on=node)
            time.sleep(5)
            left = server.sh("crm_mon -1 2>&1 | grep -i degraded; true", timeout=60).out.strip()
            res["checks"].append(_check("crm_mon no longer lists it after a cleanup", not left,
                                        left or "nothing degraded"))
            moved = [f"{a['node']} {a['resource']} {a['op']}"
                     for a in cluster.agent_actions(logdirs, t_clean, time.time() + 1) if a["op"] in ("start", "stop")]
            res["checks"].append(_check("the cleanup restarted nothing", not moved, f"starts and stops: {moved}"))
        except LabError as e:
            res["checks"].append(_check("the administrator's repair", False, str(e)))
        return self._then_crash(out, h, "recovery_readonly: crash once recorded", node, holder, other,
                                f"/mnt/{group}-v4/{path}", f"{name}'s NFSv4 lock, recorded late")

    @staticmethod
    def _make_read_only(server, d, extra):
        """A read-only bind mount over directory `d` on `server` (the rest of
        its file system stays writable). Records the outcome in `extra`
        ("read_only", or "error"); whether it worked."""
        r = server.sh(f"mount --bind {d} {d} && mount -o remount,bind,ro {d} && "
                      f"! touch {d}/.ro-check 2>/dev/null && echo read-only", timeout=60, check=False)
        extra["read_only"] = {"rc": r.rc, "out": r.out[-300:]}
        if r.rc != 0:
            extra["error"] = f"could not make {d} read-only on {server.name} (rc {r.rc}): {r.out[-300:]}"
        return r.rc == 0

    @staticmethod
    def _wait_monitor_verdict(logdirs, rsc, t, extra):
        """Unless `extra` has an error: wait up to 120 s for `rsc`'s first
        monitor result other than 0 since `t`, then two monitor intervals
        more for whatever Pacemaker does about it."""
        deadline = time.time() + 120
        while "error" not in extra and time.time() < deadline:
            if any(m["rc"] != 0 for m in cluster.op_results(logdirs, rsc, "monitor", t, time.time() + 1)):
                time.sleep(25)
                break
            time.sleep(1)

    def _then_crash(self, out, h, label, node, holder, other, path, what):
        """The end of a fault scenario whose client holds a lock (handle `h`,
        or None): if the fault's result (out[-1]) passed, `node` crashes and
        `path`'s lock must stay the holder's ([`_crash_keeps_lock`]); else the
        holder lets go. Returns `out`, with the crash's result."""
        res = out[-1]
        res["passed"] = all(c["ok"] for c in res["checks"])
        if h is None or "error" in res or not res["passed"]:
            if h is not None:
                _release(h)
            return out
        out.append(self._crash_keeps_lock(label, node, h, holder, other, path, what))
        return out

    def _crash_keeps_lock(self, label, node, h, holder, other, path, what):
        """`node` crashes while `holder` keeps `path`'s lock (its handle
        `h`); after the takeover `other` must find it held. The holder then
        lets go. Returns the crash's result."""
        crash = self._crash(label, node)
        verdict = self._still_held(crash, holder, other, path, what)
        log.info("%s: %s's attempt: %s -> %s", crash["scenario"], other.name, verdict,
                 "PASSED" if crash["passed"] else "FAILED")
        _release(h)
        return crash

    @staticmethod
    def _hold_new_lock(holder, path, flag, within, poll, wrap=""):
        """`holder` takes a new exclusive lock on `path` and keeps it
        (HOLD_NEW_LOCK; run under `wrap`, e.g. nsenter into an identity);
        returns once the host sees the grant in `flag` (polled every `poll`
        s), with the holder's handle, or None (the holder cancelled) when no
        grant came within `within` s."""
        h = holder.spawn(f"exec {wrap} python3 -c {shlex.quote(HOLD_NEW_LOCK)} {path} {flag}", timeout=3600)
        deadline = time.time() + within
        while not os.path.exists(flag):
            if time.time() > deadline or h.done():
                h.cancel()
                return None
            time.sleep(poll)
        return h

    def _still_held(self, res, holder, other, path, what):
        """After a takeover: `other` tries once to take `path`'s lock, which
        `holder` took before; it must find it held. Recorded in `res`
        (other_client_attempt, a check); returns the attempt's verdict."""
        try:
            r = other.sh(f"timeout 200 python3 -c {shlex.quote(TRY_LOCK)} {path}", timeout=240, check=False)
            verdict = r.out.strip().splitlines()[-1] if r.out.strip() else f"rc {r.rc}"
        except LabError as e:
            verdict = f"error: {e}"
        res["other_client_attempt"] = verdict
        res["checks"].append(_check(f"{what} is still {holder.name}'s", verdict == "HELD",
                                    f"{other.name}'s attempt: {verdict}"))
        res["passed"] = all(c["ok"] for c in res["checks"])
        return verdict

    def _restarted(self, rsc, t_from):
        return any(m["rc"] == 0 for m in cluster.op_results([n.logdir for n in self.lab.servers], rsc, "start",
                                                            t_from, time.time() + 1))

    def lock_before_crash(self):
        """Serviceguard's documented loss window: the first client takes a new
        NFSv3 lock and the node serving it is killed as soon as the lock is
        granted (the host sees the grant in a file the client writes and kills
        at once; the delay is recorded and must stay under 100 ms). After the
        takeover the lock must still be the first client's: the second
        client's attempt fails. LOCK_ROUNDS rounds killed within 100 ms
        (late ones are reported and repeated, at most LOCK_ROUNDS more); each
        crash moves the service, so the nodes take turns."""
        group = self.services[0].group
        holder, other = self.lab.clients[0], self.lab.clients[-1]
        if holder is other:
            raise LabError("lock_before_crash needs two client nodes")
        mnt = f"/mnt/{group}-v3"
        out = []
        counted = 0
        # a round whose kill came late (a busy host) proves less: it is kept
        # in the report, still judged on its locks, and another round is run
        for i in range(2 * LOCK_ROUNDS):
            if counted == LOCK_ROUNDS:
                break
            victim = self.where(group)
            if victim is None:
                raise LabError(f"group {group} is not running anywhere before round {i + 1}")
            flag = os.path.join(self.w.dir, f"lock-before-crash-{i + 1}.granted")
            path = f"{mnt}/lock-before-crash-{i + 1}"
            h = self._hold_new_lock(holder, path, flag, within=60, poll=0.002)
            if h is None:
                raise LabError(f"round {i + 1}: {holder.name} got no lock on {path}")
            seen = time.time()
            granted = float(open(flag).read().split()[1])
            res = self._crash(f"lock-before-crash {i + 1}/{LOCK_ROUNDS}", victim)
            kill = res["t_event"]
            res["lock_granted_at"], res["lock_seen_at"] = granted, seen
            res["kill_after_grant_ms"] = round((kill - granted) * 1000, 1)
            res["kill_in_window"] = kill - granted < 0.1
            counted += res["kill_in_window"]
            verdict = self._still_held(res, holder, other, path, "the lock taken just before the crash")
            log.info("%s: kill %.1f ms after the grant%s; %s's attempt: %s -> %s", res["scenario"],
                     res["kill_after_grant_ms"], "" if res["kill_in_window"] else " (late: not counted)",
                     other.name, verdict, "PASSED" if res["passed"] else "FAILED")
            _release(h)
            out.append(res)
            if "error" in res or "repair_error" in res:
                break
        if counted < LOCK_ROUNDS and out and "error" not in out[-1] and "repair_error" not in out[-1]:
            out[-1]["checks"].append(_check(f"{LOCK_ROUNDS} rounds killed within 100 ms of the grant", False,
                                            f"only {counted} of {len(out)}: the host was too busy"))
            out[-1]["passed"] = False
        return out

    def split(self):
        """Two services, one on each node; the second one's node crashes: both must
        end on the survivor."""
        locs = {s.group: self.where(s.group) for s in self.services}
        if None in locs.values() or len(set(locs.values())) != len(locs):
            raise LabError(f"services not split across the nodes before the crash: {locs}")
        return [self._crash("split+crash", locs[self.services[-1].group], before=locs)]

    def partition(self):
        """The node running the (first) service loses its network (its tap
        goes down on the host), alive: both nodes see the other gone and each
        asks the fence device (the lab's is reachable from both, as IPMI on a
        management LAN would be). The recipes' ping heuristic (PING_TARGETS,
        pcs-examples/fencing.sh) lets only the node that reaches the clients
        fence: the isolated one is fenced, the other takes over. ARP on the
        bridge is watched throughout: the floating address must have one
        owner at a time, and after the cut only the survivor's."""
        svc = self.services[0]
        victim = self.where(svc.group)
        if victim is None:
            raise LabError(f"group {svc.group} is not running anywhere before the partition")
        survivor = self.other(victim).name
        macs = {n.name: n.sh(f"cat /sys/class/net/{T.NIC}/address", timeout=60).out.strip()
                for n in self.lab.running_servers()}
        tap = self.lab.node(victim).spec.tap
        path = os.path.join(self.lab.run, f"arp-partition-{victim}.txt")

        def cut():
            log.info("partition: %s's link %s down (the node keeps running)", victim, tap)
            t = time.time()
            self.lab.host.link(tap, up=False)
            return t

        def heal():
            self.lab.host.link(tap, up=True)

        with self.lab.host.arp_watch(path):
            res = self._crash("partition", victim, event=cut, restore=heal)
        claims = analysis.arp_claims(open(path).read(), svc.vip)
        runs = analysis.arp_owner_changes(claims)
        names = {m: n for n, m in macs.items()}
        after = sorted({names.get(m, m) for t, m in claims if t >= res["t_event"]})
        res["arp"] = {"macs": macs, "owners": [{"from": a, "to": b, "node": names.get(m, m)} for a, b, m in runs],
                      "claimants_after_cut": after}
        res["checks"].append(_check(f"{svc.vip}: one ARP owner at a time, only {survivor} after the cut",
                                    after == [survivor] and len({m for _, _, m in runs}) == len(runs),
                                    "owners in turn: " + " -> ".join(f"{names.get(m, m)} ({b - a:.1f} s)"
                                                                     for a, b, m in runs)))
        ok_fences = [e for e in res.get("fence_events", []) if e["target"] == survivor and e["reply"].get("ok")
                     and e["action"] in ("off", "reboot")]
        res["checks"].append(_check(f"the isolated node never fenced {survivor}", not ok_fences,
                                    f"fenced: {ok_fences}" if ok_fences else "never"))
        res["passed"] = all(c["ok"] for c in res["checks"])
        self._log(res)
        return [res]

    def hung_storage(self):
        """The disk under the (first) service stops answering on the node
        running it (`dmsetup suspend --nolockfs`: its I/O queues for ever,
        nothing is flushed), the node otherwise healthy. nfs-export's depth-10
        monitor must notice within its timeout; the group's stop cannot finish
        (the file system cannot unmount), so the cluster fences the node and
        the other one takes over. No hanfs action may run past its timeout."""
        svc = self.services[0]
        victim = self.where(svc.group)
        if victim is None:
            raise LabError(f"group {svc.group} is not running anywhere before the storage hangs")
        name = os.path.basename(svc.disk)

        def hang():
            log.info("hung_storage: dmsetup suspend --nolockfs %s on %s", name, victim)
            t = time.time()
            self.lab.node(victim).sh(f"dmsetup suspend --nolockfs {name}", timeout=60)
            return t

        res = self._crash("hung storage", victim, event=hang)
        st = cluster.status_from_any(self.lab.running_servers()) or {}
        hanfs = {rid for rid, r in st.get("resources", {}).items() if (r.get("agent") or "").startswith("ocf:hanfs:")}
        mine = [a for a in res["agent_actions"] if a["resource"] in hanfs]
        over = [a for a in mine if a["rc"] == "Timed Out"]
        res["checks"].append(_check("no hanfs action ran past its timeout", not over,
                                    f"timed out: {over}" if over else f"{len(mine)} actions, none timed out"))
        logdirs = [n.logdir for n in self.lab.servers]
        failed = [dict(m, resource=rid) for rid in sorted(hanfs)
                  for m in cluster.op_results(logdirs, rid, "monitor", res["t_event"], res["t_end"])
                  if m["node"] == victim and m["rc"] not in (0, 7)]
        failed.sort(key=lambda m: m["t"])
        res["monitor_failures"] = failed
        if failed:
            res["detected_s"] = round(failed[0]["t"] - res["t_event"], 1)
        res["checks"].append(_check("a hanfs monitor reported the hung storage", failed,
                                    f"first: {failed[0]}" if failed else "no hanfs monitor failed on " + victim))
        res["passed"] = all(c["ok"] for c in res["checks"])
        self._log(res)
        return [res]

    def _crash(self, label, victim, event=None, restore=None, expect=None, before=None, repair=True):
        """`victim` fails (killed, or `event()` does it and returns when), the
        others must fence it and take its services over: `expect` (group ->
        node, or a tuple of the nodes it may end on; default: every service
        on the other node of two); `before`: group -> node before the event,
        when the caller knows it (the per-service report then tells moved
        from stayed). Then the node is repaired (`restore()` first) and
        rejoins, unless repair=False (the caller repairs it: _repair)."""
        node = self.lab.node(victim)
        if expect is None:
            expect = {s.group: self.other(victim).name for s in self.services}
        if before:
            # the victim's services first: the timeline follows the first one
            expect = dict(sorted(expect.items(), key=lambda kv: before.get(kv[0]) != victim))
        if event is None:
            log.info("%s: killing %s (UML pid %d)", label, victim, node.proc.pid)
            t = node.kill(why=f"{label} scenario")
        else:
            t = event()
        extra = {"victim": victim, "from_node": victim}
        if before:
            extra["before_on"] = dict(before)
        res = self._finish(f"{label} {victim}", t, expect, extra)
        witness = next((n for n in self.lab.running_servers() if n.name != victim), None)
        try:
            if witness is None:
                raise LabError("no server left running to ask")
            res["pacemaker_fence_history"] = cluster.fence_history(witness, victim)
        except LabError as e:
            res["pacemaker_fence_history"] = [{"error": str(e)}]
        res["checks"].append(fence_check(res))
        res["passed"] = all(c["ok"] for c in res["checks"])
        self._log(res)
        if repair:
            self._repair(res, [node], restore)
        return res

    def _repair(self, res, nodes, restore=None):
        """The administrator repairs the nodes: they boot and rejoin the
        cluster; recorded in `res` (repair_rejoin_s, after_rejoin_on, or
        repair_error, which fails it)."""
        t0 = time.time()
        try:
            if restore:
                restore()
            for node in nodes:
                if not node.running():
                    self.lab.boot_server(node)
            for node in nodes:
                node.wait_ready()
            cluster.wait_online(self.lab.running_servers(), [n.name for n in self.lab.servers], timeout=600)
            res["repair_rejoin_s"] = round(time.time() - t0, 1)
            # the rejoining node must not take the services back (stickiness)
            res["after_rejoin_on"] = {s.group: cluster.wait_group(self.lab.running_servers(), s.group, timeout=300)
                                      for s in self.services}
            # and it must have the configuration itself before anything else
            # happens: the lab's nodes boot with an empty CIB and fetch it
            # from the DC when they join; a crash of the DC before that (seen
            # in run 20261202-085848, 6 s after the rejoin) leaves the
            # survivor with no fence device, so it fences nobody and starts
            # nothing
            for node in nodes:
                for s in self.services:
                    cluster.wait_group([node], s.group, timeout=300)
        except LabError as e:
            res["repair_error"] = str(e)
            res["passed"] = False
        return res

    def _wait_expected_votes(self, names, votes, timeout=120):
        """Until corosync on the running nodes `names` counts `votes` expected
        votes and is quorate (last_man_standing lowers them once the new
        membership has been stable for its window, 10 s); returns their
        `corosync-quorumtool -s` summaries and the wait."""
        t0 = time.time()
        nodes = [self.lab.node(n) for n in names]
        last = {}
        while time.time() - t0 < timeout:
            last = {n.name: cluster.quorum_status(n) for n in nodes}
            if all(q["expected_votes"] == votes and q["quorate"] for q in last.values()):
                return {"waited_s": round(time.time() - t0, 1), "nodes": last}
            time.sleep(2)
        raise LabError(f"expected votes not {votes} on {names} after {timeout} s: {last}")

    def three_nodes(self):
        """Three nodes, three services, each at home on its own node
        (pcs-examples/services.sh). The third service's node (nodec) is
        killed: that service moves to a survivor, fenced first; the other two
        services stay where they are and their clients keep working (only
        the node taking the service over restarts its nfsd, for the arriving
        clients' grace). The killed node stays down. Once corosync on the
        two survivors has lowered its expected votes to 2
        (last_man_standing), a second node is killed: nodeb, so that the one
        left is nodea, which auto_tie_breaker (lowest node id) keeps quorate
        alone; all three services must end on nodea. Then both nodes are
        repaired and rejoin, and the services stay on nodea (stickiness).
        Two windows, each judged like every crash, with per-service pauses
        (res["services"])."""
        servers = [n.name for n in self.lab.servers]
        if len(servers) != 3:
            raise LabError(f"three_nodes needs three server nodes, the configuration has {servers}")
        locs = {s.group: self.where(s.group) for s in self.services}
        homes = {s.group: s.home for s in self.services}
        if locs != homes:
            # a repetition: the last one left everything on nodea; the
            # administrator moves the services home (each move is a failover
            # for its clients, not measured here) and the clients settle
            log.info("three_nodes: services at %s, moving them home (pcs resource relocate run)", locs)
            t = time.time()
            self.lab.servers[0].sh("pcs resource relocate run", timeout=900, check=False)
            for g, n in homes.items():
                cluster.wait_group(self.lab.running_servers(), g, timeout=600, on=n)
            self._wait_confirmed(self._wait_resumed(time.time() - 1))
            log.info("three_nodes: services home after %.1f s", time.time() - t)
            locs = {s.group: self.where(s.group) for s in self.services}
        if locs != homes:
            raise LabError(f"services not each on its own node before the first crash: {locs}, homes {homes}")
        last = servers[0]                                   # nodea: the auto_tie_breaker node
        first = self.services[-1].home                      # nodec
        second = next(n for n in servers if n not in (last, first))  # nodeb
        survivors = [n for n in servers if n != first]
        out = []
        # 1: nodec dies; its service may go to either survivor, the others stay
        expect = {g: (n if n != first else tuple(survivors)) for g, n in locs.items()}
        r1 = self._crash("three_nodes crash 1/2", first, expect=expect, before=locs, repair=False)
        out.append(r1)
        if "error" in r1:
            return out
        try:
            r1["quorum_after"] = self._wait_expected_votes(survivors, len(survivors))
        except LabError as e:
            r1["quorum_error"] = str(e)
            r1["checks"].append(_check("expected votes lowered to the survivors (last_man_standing)", False, str(e)))
            r1["passed"] = False
            self._log(r1)
            return out
        r1["checks"].append(_check("expected votes lowered to the survivors (last_man_standing)", True,
                                   f"{len(survivors)} after {r1['quorum_after']['waited_s']} s"))
        # 2: nodeb dies; everything ends on nodea
        locs2 = {s.group: self.where(s.group) for s in self.services}
        r2 = self._crash("three_nodes crash 2/2", second, expect={g: last for g in locs2}, before=locs2,
                         repair=False)
        out.append(r2)
        try:
            r2["quorum_after"] = {last: cluster.quorum_status(self.lab.node(last))}
        except LabError as e:
            r2["quorum_after"] = {"error": str(e)}
        # the administrator repairs both; the services stay on nodea
        self._repair(r2, [self.lab.node(second), self.lab.node(first)])
        if "repair_error" not in r2:
            moved = {g: n for g, n in r2.get("after_rejoin_on", {}).items() if n != last}
            r2["checks"].append(_check(f"services stay on {last} after the repaired nodes rejoin", not moved,
                                       f"moved back: {moved}" if moved else f"all on {last}"))
            r2["passed"] = all(c["ok"] for c in r2["checks"])
        return out


def _release(h):
    """Stop a lock holder (its handle), waiting a little for it."""
    h.cancel()
    try:
        h.wait(within=30)
    except LabError:
        pass


def _check(name, ok, detail):
    return {"name": name, "ok": bool(ok), "detail": detail}


def fence_check(res):
    """The cluster fenced the crashed node: Pacemaker records a successful fence
    operation for it, and the lab's device was asked (off, or status answered off)."""
    hist = [e for e in res.get("pacemaker_fence_history", [])
            if e.get("target") == res["victim"] and e.get("status") == "success"]
    dev = [e for e in res.get("fence_events", []) if e["target"] == res["victim"] and e["reply"].get("ok")
           and (e["action"] == "off" or e["reply"].get("status") == "off")]
    ok = bool(hist) and bool(dev)
    detail = (f"pacemaker: {hist[0].get('action')} by {hist[0].get('delegate')} completed {hist[0].get('completed')}; "
              f"device asked {dev[0]['action']} by {dev[0]['from']} at +{dev[0]['t_request'] - res['t_event']:.1f} s"
              if ok else f"pacemaker history {res.get('pacemaker_fence_history')}, device requests {dev}")
    return _check("crashed node fenced by the cluster", ok, detail)


def judge(res):
    """The assertions made after every scenario."""
    checks = [_check("scenario completed", "error" not in res, res.get("error", "ok"))]
    for g, exp in res.get("expected_on", {}).items():
        on = res.get("running_on", {}).get(g)
        checks.append(_check(f"{g}: service on expected node", on == exp, f"running on {on}, expected {exp}"))
        vip = res.get("vip_on", {}).get(g, [])
        checks.append(_check(f"{g}: floating address on exactly one node", vip == [exp], f"held by {vip}"))
    stuck = sorted(t for t, c in res["clients"].items() if not c["writer"].get("resumed", True))
    checks.append(_check("every writer resumed", not stuck, f"still blocked: {stuck}" if stuck else "all"))
    io = {t: c["writer"]["error_kinds"] for t, c in res["clients"].items() if c["writer"]["errors"]}
    checks.append(_check("no I/O error (incl. EIO/ESTALE)", not io, f"errors: {io}" if io else "none"))
    lost = {t: c["prober"]["lost_locks"] for t, c in res["clients"].items()
            if "prober" in c and c["prober"]["acquired"]}
    checks.append(_check("locks kept (other client's conflicting attempts fail)", not lost,
                         f"lock taken by the other client: {lost}" if lost else "all held"))
    # (a lock already reported lost above is not reported again here)
    unconf = {t: sorted(set(c["prober"]["files"]) - set(c["prober"]["confirmed_held_after_recovery"])
                        - set(c["prober"]["lost_locks"]))
              for t, c in res["clients"].items() if "prober" in c}
    unconf = {t: v for t, v in unconf.items() if v}
    checks.append(_check("locks seen held after recovery", not unconf and res.get("probers_confirmed"),
                         f"not confirmed: {unconf}" if unconf else "confirmed"))
    bad = {t: c["writes"] for t, c in res["clients"].items() if "writes" in c and (
        c["writes"]["missing"] or c["writes"]["bad_checksum"] or c["writes"]["malformed"] or c["writes"]["read_error"])}
    have = all("writes" in c for c in res["clients"].values())
    checks.append(_check("every acknowledged write present and intact", have and not bad,
                         f"{bad}" if bad else ("all present" if have else "not verified")))
    # services the event did not touch (did not move, nothing of them
    # started, their node's nfsd not restarted): their clients kept working
    calm = {g: s for g, s in res.get("services", {}).items() if s["unaffected"]}
    if calm:
        slow = {g: s["max_pause_s"] for g, s in calm.items()
                if s["max_pause_s"] is None or s["max_pause_s"] >= analysis.UNAFFECTED_PAUSE_S}
        checks.append(_check(f"services not touched kept working (pause < {analysis.UNAFFECTED_PAUSE_S:.0f} s)",
                             not slow, f"paused: {slow}" if slow else
                             ", ".join(f"{g} {s['max_pause_s']:.1f}s" for g, s in calm.items())))
    return checks

