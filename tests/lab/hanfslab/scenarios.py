"""The scenarios, and the checks made from the clients after each one."""
import logging
import time

from . import analysis, cluster
from .host import LabError

log = logging.getLogger("lab")

RESUME_TIMEOUT = 420   # writers must resume within this after the service is back
CONFIRM_TIMEOUT = 240  # probers must see every lock held again within this
SETTLE = 5


class Runner:
    def __init__(self, lab, workload, service):
        self.lab = lab
        self.w = workload
        self.svc = service
        self.group = service.group

    # -- helpers
    def where(self):
        return cluster.group_location(cluster.status_from_any(self.lab.running_servers()), self.group)

    def other(self, name):
        return next(n for n in self.lab.servers if n.name != name)

    def vip_holders(self):
        out = []
        for n in self.lab.running_servers():
            r = n.sh(f"ip -o -4 addr show | grep -F ' {self.svc.vip}/' || true", timeout=60)
            if r.out.strip():
                out.append(n.name)
        return out

    def _wait_resumed(self, t_back):
        """Every writer has completed a write after t_back; returns when the last one did."""
        deadline = time.time() + RESUME_TIMEOUT
        while True:
            firsts = []
            for tag in self.w.tags():
                oks, _ = analysis.read_writer(self.w.writer_log(tag))
                after = [o[2] for o in oks if o[2] >= t_back]
                firsts.append(after[0] if after else None)
            if all(firsts):
                return max(firsts)
            if time.time() > deadline:
                stuck = [t for t, f in zip(self.w.tags(), firsts) if not f]
                raise LabError(f"writers {stuck} did not resume within {RESUME_TIMEOUT} s")
            time.sleep(1)

    def _wait_confirmed(self, t_recovered):
        deadline = time.time() + CONFIRM_TIMEOUT
        while time.time() < deadline:
            pending = []
            for tag in self.w.probers:
                rows = analysis.read_prober(self.w.prober_log(tag))
                # every file tried at least once since the writers resumed
                if {r[2] for r in rows} - {r[2] for r in rows if r[0] >= t_recovered}:
                    pending.append(tag)
            if not pending:
                return True
            time.sleep(1)
        return False

    # -- one scenario window, from its event to the checks
    def _finish(self, name, t_event, expect_on, extra):
        res = {"scenario": name, "t_event": t_event, "expected_on": expect_on, **extra}
        try:
            on = cluster.wait_group(self.lab.running_servers(), self.group, timeout=600, on=expect_on)
            res["t_service_back"] = time.time()
            res["service_back_s"] = round(res["t_service_back"] - t_event, 1)
            res["t_writers_resumed"] = self._wait_resumed(res["t_service_back"] - 1)
            res["probers_confirmed"] = self._wait_confirmed(res["t_writers_resumed"])
            time.sleep(SETTLE)
            res["running_on"] = on
            res["vip_on"] = self.vip_holders()
        except LabError as e:
            res["error"] = str(e)
            log.error("%s: %s", name, e)
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
        res["fence_events"] = self.lab.fencer.events_since(t_event - 1)
        res["checks"] = judge(res)
        res["passed"] = all(c["ok"] for c in res["checks"])
        return res

    @staticmethod
    def _log(res):
        log.info("%s: %s", res["scenario"], "PASSED" if res["passed"] else "FAILED: " +
                 "; ".join(c["name"] + ": " + c["detail"][:300] for c in res["checks"] if not c["ok"]))

    # -- scenarios
    def move(self):
        """pcs resource move to the other node, then back."""
        out = []
        home = self.where()
        if home is None:
            raise LabError(f"group {self.group} is not running anywhere before the move")
        for target in (self.other(home).name, home):
            src = self.where()
            t = time.time()
            log.info("move: pcs resource move %s %s (from %s)", self.group, target, src)
            h = self.lab.node(src).spawn(f"pcs resource move {self.group} {target}", timeout=900)
            r = self._finish(f"move {src}->{target}", t, target, {})
            try:
                pr = h.wait()
                r["pcs_move"] = {"rc": pr.rc, "seconds": round(pr.t_end - t, 1), "out": pr.out[-400:]}
            except LabError as e:
                r["pcs_move"] = {"error": str(e)}
            self._log(r)
            out.append(r)
            if not r["passed"] and "error" in r:
                break
        return out

    def crash(self):
        """Kill the active node's UML process (no clean stop); it must be fenced."""
        victim = self.where()
        if victim is None:
            raise LabError(f"group {self.group} is not running anywhere before the crash")
        survivor = self.other(victim).name
        node = self.lab.node(victim)
        log.info("crash: killing %s (UML pid %d)", victim, node.proc.pid)
        t = node.kill(why="crash scenario")
        res = self._finish(f"crash {victim}", t, survivor, {"victim": victim})
        try:
            res["pacemaker_fence_history"] = cluster.fence_history(self.lab.node(survivor), victim)
        except LabError as e:
            res["pacemaker_fence_history"] = [{"error": str(e)}]
        res["checks"].append(fence_check(res))
        res["passed"] = all(c["ok"] for c in res["checks"])
        self._log(res)
        # the administrator repairs the node: it boots and rejoins the cluster
        t0 = time.time()
        try:
            if not node.running():
                self.lab.boot_server(node)
            node.wait_ready()
            cluster.wait_online(self.lab.running_servers(), [n.name for n in self.lab.servers], timeout=600)
            res["repair_rejoin_s"] = round(time.time() - t0, 1)
            # the rejoining node must not take the service back (stickiness)
            res["after_rejoin_on"] = cluster.wait_group(self.lab.running_servers(), self.group, timeout=300)
        except LabError as e:
            res["repair_error"] = str(e)
            res["passed"] = False
        return [res]


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
    exp = res.get("expected_on")
    checks.append(_check("service on expected node", res.get("running_on") == exp,
                         f"running on {res.get('running_on')}, expected {exp}"))
    vip = res.get("vip_on", [])
    checks.append(_check("floating address on exactly one node", len(vip) == 1 and vip == [exp],
                         f"held by {vip}"))
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
    return checks

