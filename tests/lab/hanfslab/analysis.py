"""What the clients saw, turned into findings for one scenario window."""
import os

BAD_ERRNOS = {"EIO", "ESTALE"}


def read_writer(path):
    oks, errs = [], []
    if not os.path.exists(path):
        return oks, errs
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == "OK" and len(p) == 4:
                oks.append((int(p[1]), float(p[2]), float(p[3])))
            elif p[0] == "ERR" and len(p) >= 6:
                errs.append({"seq": int(p[1]), "t": float(p[2]), "errno": p[5]})
    return oks, errs


def read_prober(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 4:
                rows.append((float(p[0]), float(p[1]), p[2], p[3]))
    return rows


def writer_window(path, t_event, t_end):
    """Longest gap between two successful writes around the event, and errors."""
    oks, errs = read_writer(path)
    before = [o for o in oks if o[2] < t_event]
    during = [o for o in oks if t_event <= o[2] <= t_end]
    seq = before[-1:] + during
    gap, at = 0.0, None
    for a, b in zip(seq, seq[1:]):
        if b[2] - a[2] > gap:
            gap, at = b[2] - a[2], (a, b)
    # a writer that has not completed a write since its last one is still paused
    resumed = True
    if seq and t_end - seq[-1][2] > gap:
        gap, at, resumed = t_end - seq[-1][2], None, False
        res_from = seq[-1][2] - t_event
    w_errs = [e for e in errs if t_event <= e["t"] <= t_end]
    res = {"writes_ok": len(during), "max_pause_s": round(gap, 3), "resumed": resumed,
           "errors": len(w_errs), "error_kinds": sorted({e["errno"] for e in w_errs}),
           "eio_or_estale": sum(e["errno"] in BAD_ERRNOS for e in w_errs)}
    if at:
        res["pause_from_s"] = round(at[0][2] - t_event, 3)   # relative to the event
        res["pause_to_s"] = round(at[1][2] - t_event, 3)
        res["resumed_at"] = at[1][2]
    elif not resumed:
        res["pause_from_s"] = round(res_from, 3)             # and not over at the window's end
    return res


def prober_window(path, t_event, t_end, t_recovered):
    """Did the other client ever get a lock it must not get, and was the lock seen
    still held after the service had recovered?"""
    rows = [r for r in read_prober(path) if t_event <= r[0] <= t_end]
    acquired = [r for r in rows if r[3] == "ACQUIRED"]
    errors = [r for r in rows if r[3].startswith("ERR_")]
    held_after = {r[2] for r in rows if r[3] == "HELD" and t_recovered is not None and r[0] >= t_recovered}
    files = sorted({r[2] for r in read_prober(path)})
    return {"attempts": len(rows), "acquired": len(acquired),
            "lost_locks": sorted({r[2] for r in acquired}),
            "first_acquired_s": round(acquired[0][0] - t_event, 3) if acquired else None,
            "errors": len(errors), "error_kinds": sorted({r[3][4:] for r in errors}),
            "confirmed_held_after_recovery": sorted(held_after),
            "files": files,
            "longest_attempt_s": round(max((r[1] - r[0] for r in rows), default=0.0), 3)}


def writes_check(writer_path, verified):
    """Every acknowledged write before the read started must be there, intact."""
    oks, _ = read_writer(writer_path)
    acked = {o[0] for o in oks if o[2] < verified["t_read"]}
    present = set()
    for a, b in verified.get("seq_ranges", []):
        present.update(range(a, b + 1))
    missing = sorted(acked - present)
    return {"acknowledged": len(acked), "present": verified.get("records", 0),
            "missing": len(missing), "missing_first": missing[:10],
            "bad_checksum": verified.get("n_bad_checksum", 0),
            "malformed": verified.get("malformed", 0), "duplicates": verified.get("duplicates", 0),
            "read_error": verified.get("error")}
