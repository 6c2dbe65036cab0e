#!/usr/bin/python3
"""prober.py LOG FILE...: a second client trying to take locks it must not get.

Every second, for each FILE (lock files and data files another client holds),
opens it and tries a non-blocking exclusive POSIX lock (F_SETLK). While the
holder keeps its lock the attempt fails with EAGAIN/EACCES ("HELD"); if it
succeeds the holder's lock was lost ("ACQUIRED", released again at once).
During a server's grace period the attempt blocks; that is expected.

LOG lines: <t_start> <t_end> <file> HELD|ACQUIRED|ERR_<ERRNAME>
"""
import errno
import fcntl
import os
import signal
import sys
import time

logp, files = sys.argv[1], sys.argv[2:]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
log = open(logp, "a", buffering=1)
while not stop:
    t_cycle = time.time()
    for path in files:
        t0 = time.time()
        try:
            with open(path, "r+") as f:
                try:
                    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    r = "ACQUIRED"
                    fcntl.lockf(f, fcntl.LOCK_UN)
                except OSError as e:
                    r = "HELD" if e.errno in (errno.EAGAIN, errno.EACCES) else "ERR_" + errno.errorcode.get(e.errno, "?")
        except OSError as e:
            r = "ERR_" + errno.errorcode.get(e.errno, "?")
        log.write("%.3f %.3f %s %s\n" % (t0, time.time(), os.path.basename(path), r))
        if stop:
            break
    time.sleep(max(0.0, 1.0 - (time.time() - t_cycle)))
