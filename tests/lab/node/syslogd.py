#!/usr/bin/env python3
"""The lab node's syslog: what programs send to /dev/log, one line each,
prefixed with the node's wall-clock time (seconds, 6 decimals), appended to
the file given (on the host, so a crash keeps it).

A server node has no syslog daemon otherwise, and some hanfs programs log
only there: rpc.statd runs hanfs-statd-callout with its output discarded.
"""
import os
import socket
import sys
import time


def main(path: str, out: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    with open(out, "a", buffering=1, encoding="utf-8", errors="replace") as f:
        while True:
            data = s.recv(65536)
            line = data.decode("utf-8", "replace").rstrip("\n\0")
            f.write(f"{time.time():.6f} {line}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
