#!/usr/bin/python3
"""cpusample.py LOG [INTERVAL]: where this node's CPU goes, sampled.

Every INTERVAL seconds (default 1) one JSON line, the CPU time spent since
the previous line, in clock ticks (USER_HZ, 100 a second): "total" and
"busy" (all but idle and iowait) from /proc/stat, and per NFS daemon the
user and system time of its processes (kernel threads too): nfsd, lockd,
rpc.statd, sm-notify, and "statd_children", what rpc.statd's reaped children
used (its HA callouts: too short-lived to be sampled themselves).
A process is told apart by its pid and start time, so one that exits or a
reused pid never counts twice.
"""
import json
import os
import signal
import sys
import time

NAMES = {"nfsd": "nfsd", "lockd": "lockd", "rpc.statd": "statd", "sm-notify": "sm_notify"}


def cpu_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), sum(v) - v[3] - (v[4] if len(v) > 4 else 0)


def daemons():
    """(pid, start time) -> (category, used, children's used) for the daemons."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        cat = NAMES.get(comm)
        if cat is None:
            continue
        f = s[s.rindex(")") + 2:].split()
        # fields 14-17 (utime stime cutime cstime) and 22 (starttime), from 3 on here
        out[(pid, f[19])] = (cat, int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))
    return out


def main():
    logp = sys.argv[1]
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log = open(logp, "a", buffering=1)
    total0, busy0 = cpu_stat()
    seen = daemons()
    while True:
        time.sleep(interval)
        total, busy = cpu_stat()
        now = daemons()
        line = {"t": round(time.time(), 3), "total": total - total0, "busy": busy - busy0,
                **{c: 0 for c in NAMES.values()}, "statd_children": 0}
        for k, (cat, used, children) in now.items():
            # a process started since the last line counts from 0
            _, used0, children0 = seen.get(k, (cat, 0, 0))
            line[cat] += max(0, used - used0)
            if cat == "statd":
                line["statd_children"] += max(0, children - children0)
        log.write(json.dumps(line) + "\n")
        total0, busy0, seen = total, busy, now


if __name__ == "__main__":
    main()
