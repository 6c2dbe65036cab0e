#!/usr/bin/python3
"""writer.py TAG DIR LOG [NLOCKS]: an NFS client application that must not notice a failover.

Holds exclusive POSIX locks (fcntl F_SETLKW, whole file) on DIR/TAG.lock0..N-1
and on its data file DIR/TAG.data, then appends one checksummed record to the
data file and fsyncs it every 100 ms, until SIGTERM.

LOG (on the host window) gets one line per event, flushed at once:
  LOCKED <file> <t_start> <t_end>
  OK <seq> <t_start> <t_end>                      write+fsync returned success
  ERR <seq> <t_start> <t_end> <errno> <ERRNAME>   write or fsync failed
  END <seq> <t>
A record is "acknowledged" once its OK line is logged; verify.py later checks
that every acknowledged record is in the file, intact.
"""
import errno
import fcntl
import os
import signal
import sys
import time
import zlib

tag, d, logp = sys.argv[1:4]
nlocks = int(sys.argv[4]) if len(sys.argv) > 4 else 3
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
log = open(logp, "a", buffering=1)


def say(*a):
    log.write(" ".join(str(x) for x in a) + "\n")


def record(seq, t0):
    body = "%s %08d %.6f %s" % (tag, seq, t0, ("%08x" % (seq * 2654435761 % 2**32)) * 4)
    return ("%s %08x\n" % (body, zlib.crc32(body.encode()))).encode()


say("START", os.getpid(), "%.3f" % time.time())
held = []
for name in ["%s.lock%d" % (tag, i) for i in range(nlocks)]:
    t = time.time()
    f = open(os.path.join(d, name), "a+")
    fcntl.lockf(f, fcntl.LOCK_EX)
    held.append(f)
    say("LOCKED", name, "%.3f" % t, "%.3f" % time.time())
fd = os.open(os.path.join(d, tag + ".data"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
t = time.time()
fcntl.lockf(fd, fcntl.LOCK_EX)
say("LOCKED", tag + ".data", "%.3f" % t, "%.3f" % time.time())
say("READY")
seq = 0
while not stop:
    seq += 1
    t0 = time.time()
    try:
        os.write(fd, record(seq, t0))
        os.fsync(fd)
        say("OK", seq, "%.3f" % t0, "%.3f" % time.time())
    except OSError as e:
        say("ERR", seq, "%.3f" % t0, "%.3f" % time.time(), e.errno, errno.errorcode.get(e.errno, "?"))
    time.sleep(max(0.0, 0.1 - (time.time() - t0)))
say("END", seq, "%.3f" % time.time())
