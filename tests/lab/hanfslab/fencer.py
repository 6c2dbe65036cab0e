"""The lab's power switch: answers fence_hanfs_lab's requests from the nodes.

A request is $RUN/fence/<id>.req (JSON: from, action, plug); the reply is
$RUN/fence/<id>.rep (JSON: ok, status, detail). "off" kills the target's UML
process tree by pid and answers only once it is gone; "on" boots it; "status"
tells whether it runs; "list" names the nodes. Every request is recorded,
so the report can show who fenced whom, when, and how long it took.
"""
import json
import logging
import os
import threading
import time

log = logging.getLogger("lab")


class Fencer:
    def __init__(self, lab, nodes, allow_on=True):
        self.lab = lab
        self.nodes = nodes  # name -> Node (servers)
        self.dir = os.path.join(lab.run, "fence")
        self.events = []
        self.allow_on = allow_on
        self._stop = threading.Event()
        self._thread = None
        os.makedirs(self.dir, exist_ok=True)

    def start(self):
        self._thread = threading.Thread(target=self._loop, name="fencer", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def events_since(self, t):
        return [e for e in self.events if e["t_request"] >= t]

    def _loop(self):
        while not self._stop.is_set():
            try:
                names = sorted(os.listdir(self.dir))
            except OSError:
                names = []
            for name in names:
                if name.endswith(".req"):
                    self._handle(name[:-4])
            self._stop.wait(0.2)

    def _reply(self, rid, rep):
        path = os.path.join(self.dir, rid)
        with open(path + ".rtmp", "w") as f:
            json.dump(rep, f)
        os.rename(path + ".rtmp", path + ".rep")

    def _handle(self, rid):
        path = os.path.join(self.dir, rid + ".req")
        try:
            with open(path) as f:
                req = json.load(f)
            os.rename(path, path + ".done")
        except (OSError, ValueError) as e:
            log.warning("fence request %s unreadable: %s", rid, e)
            return
        t0 = time.time()
        action, plug = req.get("action"), req.get("plug")
        node = self.nodes.get(plug)
        rep = {"ok": True}
        try:
            if action == "list":
                rep["nodes"] = {n: ("on" if x.running() else "off") for n, x in self.nodes.items()}
            elif action in ("status", "monitor"):
                if node is None and action == "status":
                    rep = {"ok": False, "detail": f"unknown plug {plug!r}"}
                else:
                    rep["status"] = "on" if node and node.running() else "off"
            elif action == "off":
                if node is None:
                    rep = {"ok": False, "detail": f"unknown plug {plug!r}"}
                else:
                    was_running = node.running()
                    node.kill(why=f"fenced by {req.get('from')}")
                    rep["status"] = "off"
                    rep["detail"] = "killed" if was_running else "already off"
            elif action == "on":
                if node is None or not self.allow_on:
                    rep = {"ok": False, "detail": "power on not allowed"}
                else:
                    if not node.running():
                        self.lab.boot_server(node)
                    rep["status"] = "on"
            else:
                rep = {"ok": False, "detail": f"unsupported action {action!r}"}
        except Exception as e:  # an answer is owed in every case
            rep = {"ok": False, "detail": f"{type(e).__name__}: {e}"}
        self._reply(rid, rep)
        if action not in ("list", "monitor"):
            # status counts: a fence agent that finds the target already off
            # ("Success: Already OFF") confirms the fence with status alone
            ev = {"t_request": req.get("t", t0), "t_handled": t0, "t_replied": time.time(),
                  "from": req.get("from"), "action": action, "target": plug, "reply": rep}
            self.events.append(ev)
            log.info("fence: %s asked %s %s -> %s", req.get("from"), action, plug, rep.get("detail", rep))
