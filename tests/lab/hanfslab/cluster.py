"""Cluster state as Pacemaker reports it, and what the cluster's own logs say."""
import glob
import html
import logging
import re
import time
import xml.etree.ElementTree as ET
from datetime import datetime

from .host import LabError
from .node import NodeDown

log = logging.getLogger("lab")


def crm_status(node, timeout=60):
    """Parse `crm_mon --output-as=xml` run on `node`."""
    r = node.sh("crm_mon --output-as=xml 2>/dev/null", timeout=timeout, check=False)
    try:
        root = ET.fromstring(r.out[r.out.index("<"):])
    except (ValueError, ET.ParseError):
        return None
    st = {"nodes": {}, "resources": {}, "groups": {}, "dc": None}
    for n in root.iter("node"):
        if n.get("online") is not None:
            st["nodes"][n.get("name")] = {"online": n.get("online") == "true",
                                          "unclean": n.get("unclean") == "true"}
    cur = root.find("summary/current_dc")
    if cur is not None and cur.get("present") == "true":
        st["dc"] = cur.get("name")
    res = root.find("resources")
    if res is not None:
        for el in res.iter("resource"):
            st["resources"][el.get("id")] = {
                "role": el.get("role"), "active": el.get("active") == "true",
                "failed": el.get("failed") == "true", "blocked": el.get("blocked") == "true",
                "agent": el.get("resource_agent"),
                "nodes": [x.get("name") for x in el.findall("node")]}
        for g in res.iter("group"):
            st["groups"][g.get("id")] = [x.get("id") for x in g.findall("resource")]
    st["failures"] = [dict(f.attrib) for f in root.iter("failure")]
    return st


def fence_history(node, target, timeout=60):
    """Pacemaker's own record of fencing `target` (stonith_admin --history)."""
    r = node.sh(f"stonith_admin --history={target} --output-as=xml 2>/dev/null", timeout=timeout, check=False)
    try:
        root = ET.fromstring(r.out[r.out.index("<"):])
    except (ValueError, ET.ParseError):
        return []
    return [dict(e.attrib) for e in root.iter("fence_event")]


def status_from_any(servers, timeout=60):
    for n in servers:
        if n.running():
            try:
                st = crm_status(n, timeout)
            except NodeDown:
                continue
            if st is not None:
                return st
    return None


def group_location(st, group):
    """The node where every resource of `group` is Started, or None."""
    if st is None or group not in st["groups"]:
        return None
    where = set()
    for rid in st["groups"][group]:
        r = st["resources"][rid]
        if r["role"] != "Started" or len(r["nodes"]) != 1 or r["failed"]:
            return None
        where.add(r["nodes"][0])
    return where.pop() if len(where) == 1 else None


def wait_for(what, fn, timeout, poll=2.0):
    """Poll fn() until it returns something truthy; bounded."""
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        last = fn()
        if last:
            return last
        time.sleep(poll)
    raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_online(servers, names, timeout):
    def ok():
        st = status_from_any(servers)
        if st and st["dc"] and all(st["nodes"].get(n, {}).get("online") for n in names):
            return st
        return None
    return wait_for(f"nodes {names} online in the cluster", ok, timeout)


def wait_group(servers, group, timeout, on=None):
    """Wait until every resource of `group` is Started on one node (`on` if given:
    a node's name, or a collection of the nodes it may end on). A failed start of
    a member there ends the wait at once (Pacemaker will not retry it there:
    start failures are fatal by default), naming the exit reason."""
    allowed = None if on is None else ({on} if isinstance(on, str) else set(on))

    def ok():
        st = status_from_any(servers)
        where = group_location(st, group)
        if where and (allowed is None or where in allowed):
            return where
        if st and allowed:
            members = st["groups"].get(group, [])
            for f in st["failures"]:
                key = f.get("op_key") or f.get("id", "")
                rid = next((m for m in members if key.startswith(m + "_")), None)
                if rid and f.get("node") in allowed and f.get("task") == "start":
                    # crm_mon escapes the exit reason once more inside the attribute
                    raise LabError(f"{rid} failed to start on {f.get('node')} ({f.get('exitstatus')}): "
                                   f"{html.unescape(f.get('exitreason', ''))}")
        return None
    return wait_for(f"group {group} started" + (f" on {on}" if on else ""), ok, timeout)


def parse_quorumtool(text):
    """`corosync-quorumtool -s` as {expected_votes, total_votes, quorum,
    quorate, flags}; None for what the text does not say."""
    out = {"expected_votes": None, "total_votes": None, "quorum": None, "quorate": None, "flags": []}
    keys = {"Expected votes": "expected_votes", "Total votes": "total_votes", "Quorum": "quorum"}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if not sep:
            continue
        k, v = k.strip(), v.strip()
        if k in keys:
            try:
                out[keys[k]] = int(v.split()[0])
            except (ValueError, IndexError):
                pass
        elif k == "Quorate":
            out["quorate"] = v.lower().startswith("yes")
        elif k == "Flags":
            out["flags"] = v.split()
    return out


def quorum_status(node, timeout=60):
    return parse_quorumtool(node.sh("corosync-quorumtool -s 2>&1", timeout=timeout, check=False).out)


# ---------------------------------------------------------------- logs

# pacemaker-execd (info), once per completed operation (not recurring monitors):
#   Nov 22 00:06:06.487 nodea pacemaker-execd     [758] (log_finished) \tinfo: nfs-fs start
#   (call 12, PID 1019) exited with status 0 (execution time 3.447s)
_FINISHED = re.compile(
    r"^(?P<ts>\w{3} +\d+ [\d:.]+) (?P<node>\S+) pacemaker-execd\s+\[\d+\] \(log_finished\)\s+\w+: "
    r"(?P<rsc>\S+) (?P<op>\w+) \(call \d+(?:, PID \d+)?\) exited with status (?P<rc>\d+) "
    # a failed action's exit reason comes first, in parentheses of its own
    r"(?:\(.*\) )?\(execution time (?P<num>[\d.]+)(?P<unit>ms|s)(?: after being queued [^)]*)?\)")
# pacemaker-controld (notice), for every result; used for the ones that did not finish
# (timeouts), which execd does not log as above:
#   ... (log_executor_event) \tnotice: Result of stop operation for nfs-fs on nodea: Timed Out | ...
_RESULT = re.compile(
    r"^(?P<ts>\w{3} +\d+ [\d:.]+) (?P<node>\S+) pacemaker-controld\s+\[\d+\] \(log_executor_event\)\s+\w+: "
    r"Result of (?P<op>\w+) operation for (?P<rsc>\S+) on \S+: (?P<text>[^|]+?) \|")


def _ts(s, year):
    return datetime.strptime(f"{year} {s}", "%Y %b %d %H:%M:%S.%f").timestamp()


_OP_RESULT = re.compile(
    r"^(?P<ts>\w{3} +\d+ [\d:.]+) (?P<node>\S+) pacemaker-controld\s+\[\d+\] \(log_executor_event\)\s+\w+: "
    r"Result of (?P<op>\w+) operation for (?P<rsc>\S+) on \S+: (?P<text>[^|]+?) \|.*\brc=(?P<rc>\d+)")


def _log_lines(logdirs):
    """Every line of the nodes' pacemaker logs, node by node, boot by boot."""
    for d in logdirs:
        for path in sorted(glob.glob(f"{d}/pacemaker-*.log")):
            with open(path, errors="replace") as f:
                yield from f


def op_results(logdirs, rsc, op, t_from, t_to):
    """Every result the controllers logged for `rsc`'s `op` in [t_from, t_to]:
    [{t, node, rc, text}] (recurring monitors included, which execd does not
    log at info level)."""
    year = datetime.fromtimestamp(t_from).year
    out = []
    for line in _log_lines(logdirs):
        m = _OP_RESULT.match(line)
        if not m or m["rsc"] != rsc or m["op"] != op:
            continue
        t = _ts(m["ts"], year)
        if t_from <= t <= t_to:
            out.append({"t": round(t, 3), "node": m["node"], "rc": int(m["rc"]), "text": m["text"]})
    out.sort(key=lambda a: a["t"])
    return out


def agent_actions(logdirs, t_from, t_to):
    """Resource actions that ended in [t_from, t_to], from the nodes' pacemaker logs.

    Returns [{t, node, resource, op, rc, seconds}]: every finished start/stop/...
    with its execution time, plus every timed-out one (rc "Timed Out", seconds None)."""
    year = datetime.fromtimestamp(t_from).year
    out = []
    for line in _log_lines(logdirs):
        m = _FINISHED.match(line)
        r = None if m else _RESULT.match(line)
        if not m and not (r and "Timed Out" in r["text"]):
            continue
        t = _ts((m or r)["ts"], year)
        if not t_from <= t <= t_to:
            continue
        if m:
            secs = float(m["num"]) / (1000.0 if m["unit"] == "ms" else 1.0)
            out.append({"t": round(t, 3), "node": m["node"], "resource": m["rsc"],
                        "op": m["op"], "rc": int(m["rc"]), "seconds": round(secs, 3)})
        else:
            out.append({"t": round(t, 3), "node": r["node"], "resource": r["rsc"],
                        "op": r["op"], "rc": "Timed Out", "seconds": None})
    out.sort(key=lambda a: a["t"])
    return out
