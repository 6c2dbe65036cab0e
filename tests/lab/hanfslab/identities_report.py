"""python3 -m hanfslab.identities_report RUN_DIR: the --identities figures of a
finished run, computed again from its report.json and bridge.pcap (for a run
whose driver predates them, or to check them); prints one line per window.
For runs with the identities in 10.77.1.1 upward (from 2026-12-03 on;
before, they were 10.77.0.100 upward)."""
import json
import os
import sys

from . import analysis, rpccap
from . import topology as T
from .clients import identity_addresses


def main(run):
    rep = json.load(open(os.path.join(run, "report.json")))
    n = int(rep["argv"][rep["argv"].index("--identities") + 1])
    clients = [c.name for c in T.CLIENTS[:rep.get("clients", 2)]]
    ip_identity = {ip: name for _, ids in identity_addresses(clients, n) for name, ip in ids}
    vips = {s.vip for s in T.SERVICES}
    for st in rep["stacks"].values():
        for s in st["scenarios"]:
            pauses = [c["writer"].get("max_pause_s") for t, c in s["clients"].items() if "-id" in t]
            out = {"pause": analysis.pause_stats(pauses)}
            calls = rpccap.calls(os.path.join(run, "bridge.pcap"), s["t_event"] - 1, s["t_end"])
            out.update(analysis.notify_reclaim_summary(calls, ip_identity, vips, s.get("t_address_up")))
            print(json.dumps({"scenario": s["scenario"], "passed": s["passed"], **out}))


if __name__ == "__main__":
    main(sys.argv[1])
