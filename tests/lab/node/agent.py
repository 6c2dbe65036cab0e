#!/usr/bin/python3
"""Control agent: PID 1 of a lab node once init.sh is done.

The host driver talks to the node through files in a hostfs directory
(CTL = $LAB_RUN/ctl/<node>):

  <id>.cmd     JSON {"script": "...", "timeout": seconds}, written by the host
               (atomically: temporary name, then rename)
  <id>.out     stdout+stderr of the command, written as it runs
  <id>.rc      JSON {"rc", "timed_out", "cancelled", "t_start", "t_end"},
               written last (temporary name, then rename)
  <id>.cancel  written by the host to stop a running command (SIGTERM to its
               process group, SIGKILL 5 s later)
  alive        JSON {"t": time, "pid1": ...}, rewritten every 2 s
  ready        written once, when the agent starts

Only new files cross the boundary (UML's hostfs caches file pages, so a file
rewritten in place on one side may be read stale on the other), and the
directory is scanned with listdir (a name looked up before it existed may be
cached as missing).

As PID 1 the agent also reaps every orphan, so it manages its own children
with fork/exec and waitpid rather than subprocess.
"""
import json
import os
import signal
import sys
import time

CTL = sys.argv[1]
POLL = 0.2
KILL_GRACE = 5.0


def write_new(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


def spawn(cid, script):
    out = os.open(os.path.join(CTL, cid + ".out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.closerange(3, 1024)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execve("/bin/sh", ["sh", "-c", script], ENV)
        finally:
            os._exit(127)
    os.close(out)
    return pid


def signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}
for k, v in os.environ.items():
    if k.startswith("LAB_"):
        ENV[k] = v


def main():
    os.makedirs(CTL, exist_ok=True)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    write_new(os.path.join(CTL, "ready"), json.dumps({"t": time.time(), "pid": os.getpid()}))
    running = {}  # pid -> {"id", "deadline", "t_start", "killed_at", "cancelled", "timed_out"}
    by_id = {}
    last_alive = 0.0
    while True:
        now = time.time()
        if now - last_alive >= 2.0:
            write_new(os.path.join(CTL, "alive"), json.dumps({"t": now}))
            last_alive = now
        try:
            names = os.listdir(CTL)
        except OSError:
            names = []
        for name in sorted(names):
            if name.endswith(".cmd"):
                cid = name[:-4]
                path = os.path.join(CTL, name)
                try:
                    with open(path) as f:
                        req = json.load(f)
                    os.rename(path, os.path.join(CTL, cid + ".run"))
                except (OSError, ValueError) as e:
                    write_new(os.path.join(CTL, cid + ".rc"),
                              json.dumps({"rc": 125, "error": str(e), "t_start": now, "t_end": now}))
                    continue
                pid = spawn(cid, req["script"])
                st = {"id": cid, "t_start": now, "deadline": now + float(req.get("timeout", 600)),
                      "killed_at": None, "cancelled": False, "timed_out": False}
                running[pid] = st
                by_id[cid] = pid
            elif name.endswith(".cancel"):
                cid = name[:-7]
                pid = by_id.get(cid)
                if pid in running and running[pid]["killed_at"] is None:
                    running[pid]["cancelled"] = True
                    running[pid]["killed_at"] = now
                    signal_group(pid, signal.SIGTERM)
                try:
                    os.unlink(os.path.join(CTL, name))
                except OSError:
                    pass
        for pid, st in running.items():
            if st["killed_at"] is None and now > st["deadline"]:
                st["timed_out"] = True
                st["killed_at"] = now
                signal_group(pid, signal.SIGTERM)
            elif st["killed_at"] is not None and now - st["killed_at"] > KILL_GRACE:
                signal_group(pid, signal.SIGKILL)
        # reap everything: our commands and any orphan that reparented to PID 1
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            st = running.pop(pid, None)
            if st is None:
                continue
            by_id.pop(st["id"], None)
            if st["killed_at"] is not None:
                # a stopped command's own children are in its group: end them too
                signal_group(pid, signal.SIGKILL)
            rc = os.waitstatus_to_exitcode(status)
            if st["timed_out"]:
                rc = 124
            write_new(os.path.join(CTL, st["id"] + ".rc"), json.dumps({
                "rc": rc, "timed_out": st["timed_out"], "cancelled": st["cancelled"],
                "t_start": st["t_start"], "t_end": time.time()}))
        time.sleep(POLL)


if __name__ == "__main__":
    main()
