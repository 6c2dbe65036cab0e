"""python3 -m hanfslab.identities_report RUN_DIR: the --identities figures of a
finished run, computed again from its report.json and bridge.pcap (for a run
whose driver predates them, or to check them); prints one line per window."""
import json
import os
import sys

from . import analysis, rpccap
from . import topology as T
from .clients import ID_BASE


def main(run):
    rep = json.load(open(os.path.join(run, "report.json")))
    n = int(rep["argv"][rep["argv"].index("--identities") + 1])
    clients = [c.name for c in T.CLIENTS[:rep.get("clients", 2)]]
    ip_identity = {f"{T.SUBNET}.{ID_BASE + ci * n + k}": f"{c}-id{k:03d}"
                   for ci, c in enumerate(clients) for k in range(n)}
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
