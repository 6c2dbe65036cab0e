#!/usr/bin/python3
"""verify.py FILE...: read data files through the NFS mount and check every record.

Prints one JSON object: per file, the sequence numbers present (as ranges),
records whose checksum does not match, malformed lines and duplicates.
The driver compares this with the writer's acknowledged (OK) records.
"""
import json
import sys
import zlib


def ranges(nums):
    out = []
    for n in sorted(nums):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


res = {}
for path in sys.argv[1:]:
    seqs, bad, dup, malformed = set(), [], 0, 0
    try:
        data = open(path, "rb").read()
    except OSError as e:
        res[path] = {"error": str(e)}
        continue
    lines = data.split(b"\n")
    tail = lines.pop()  # text after the last newline: a write not (yet) complete
    for ln in lines:
        parts = ln.decode("utf-8", "replace").rsplit(" ", 1)
        try:
            body, crc = parts[0], int(parts[1], 16)
            seq = int(body.split()[1])
        except (IndexError, ValueError):
            malformed += 1
            continue
        if zlib.crc32(body.encode()) != crc:
            bad.append(seq)
            continue
        dup += seq in seqs
        seqs.add(seq)
    res[path] = {"records": len(seqs), "seq_ranges": ranges(seqs), "bad_checksum": bad[:50],
                 "n_bad_checksum": len(bad), "malformed": malformed, "duplicates": dup,
                 "partial_tail_bytes": len(tail), "bytes": len(data)}
print(json.dumps(res))
