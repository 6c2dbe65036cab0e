#!/usr/bin/python3
"""newlock.py LOG FILE: an application that takes a new lock now and then.

Every second: open FILE (a file nobody else locks), take an exclusive POSIX
lock (F_SETLKW: the way an application waits for a lock), release it, close.
Holds no lock between attempts. While the server is in grace, opens (NFSv4)
and new locks (NFSv3 and NFSv4) wait, so an attempt started during a failover
ends when new locks are possible again: that is the figure it measures.

LOG lines: <t_start> <t_end> GRANTED|ERR_<ERRNAME>
"""
import errno
import fcntl
import signal
import sys
import time

logp, path = sys.argv[1], sys.argv[2]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
log = open(logp, "a", buffering=1)
while not stop:
    t0 = time.time()
    try:
        with open(path, "a+") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            fcntl.lockf(f, fcntl.LOCK_UN)
        r = "GRANTED"
    except OSError as e:
        r = "ERR_" + errno.errorcode.get(e.errno, "?")
    log.write("%.3f %.3f %s\n" % (t0, time.time(), r))
    time.sleep(max(0.0, 1.0 - (time.time() - t0)))
