"""What the clients saw, turned into findings for one scenario window."""
from .logs import read_newlock, read_prober, read_writer

BAD_ERRNOS = {"EIO", "ESTALE"}


def writer_window(path, t_event, t_end):
    """Longest gap between two successful writes around the event, and errors."""
    log = read_writer(path)
    before = [o for o in log.oks if o.t_end < t_event]
    during = [o for o in log.oks if t_event <= o.t_end <= t_end]
    seq = before[-1:] + during
    gap, at = 0.0, None
    for a, b in zip(seq, seq[1:]):
        if b.t_end - a.t_end > gap:
            gap, at = b.t_end - a.t_end, (a, b)
    # a writer that has not completed a write since its last one is still paused
    resumed = True
    if seq and t_end - seq[-1].t_end > gap:
        gap, at, resumed = t_end - seq[-1].t_end, None, False
        res_from = seq[-1].t_end - t_event
    w_errs = [e for e in log.errs if t_event <= e.t_start <= t_end]
    res = {"writes_ok": len(during), "max_pause_s": round(gap, 3), "resumed": resumed,
           "errors": len(w_errs), "error_kinds": sorted({e.name for e in w_errs}),
           "eio_or_estale": sum(e.name in BAD_ERRNOS for e in w_errs)}
    if at:
        res["pause_from_s"] = round(at[0].t_end - t_event, 3)   # relative to the event
        res["pause_to_s"] = round(at[1].t_end - t_event, 3)
        res["resumed_at"] = at[1].t_end
    elif not resumed:
        res["pause_from_s"] = round(res_from, 3)             # and not over at the window's end
    return res


def prober_window(path, t_event, t_end, t_recovered):
    """Did the other client ever get a lock it must not get, and was the lock seen
    still held after the service had recovered?"""
    every = read_prober(path)
    rows = [r for r in every if t_event <= r.t_start <= t_end]
    acquired = [r for r in rows if r.acquired]
    errors = [r for r in rows if r.error is not None]
    held_after = {r.file for r in rows if r.held and t_recovered is not None and r.t_start >= t_recovered}
    files = sorted({r.file for r in every})
    return {"attempts": len(rows), "acquired": len(acquired),
            "lost_locks": sorted({r.file for r in acquired}),
            "first_acquired_s": round(acquired[0].t_start - t_event, 3) if acquired else None,
            "errors": len(errors), "error_kinds": sorted({r.error for r in errors}),
            "confirmed_held_after_recovery": sorted(held_after),
            "files": files,
            "longest_attempt_s": round(max((r.t_end - r.t_start for r in rows), default=0.0), 3)}


def writes_check(writer_path, verified):
    """Every acknowledged write before the read started must be there, intact."""
    acked = {o.seq for o in read_writer(writer_path).oks if o.t_end < verified["t_read"]}
    present = set()
    for a, b in verified.get("seq_ranges", []):
        present.update(range(a, b + 1))
    missing = sorted(acked - present)
    return {"acknowledged": len(acked), "present": verified.get("records", 0),
            "missing": len(missing), "missing_first": missing[:10],
            "bad_checksum": verified.get("n_bad_checksum", 0),
            "malformed": verified.get("malformed", 0), "duplicates": verified.get("duplicates", 0),
            "read_error": verified.get("error")}


def newlock_window(path, t_ref, t_end):
    """The first new lock granted once the service is reachable again (t_ref):
    new_lock_s = its grant time - t_ref. An attempt started during the outage
    waits (server down, then grace) and is granted when new locks are possible."""
    rows = [r for r in read_newlock(path) if r.t_end >= t_ref and r.t_end <= t_end]
    granted = [r for r in rows if r.granted]
    errors = sorted({r.error for r in rows if r.error is not None})
    first = granted[0] if granted else None
    return {"new_lock_s": round(first.t_end - t_ref, 3) if first else None,
            "attempt_started_s": round(first.t_start - t_ref, 3) if first else None,
            "errors": errors}


IP_AGENTS = ("float-ip", "IPaddr2")


def _is_ip(rsc, agents):
    a = agents.get(rsc) or ""
    return a.endswith(IP_AGENTS) or rsc.endswith("-ip")


def _is_unblock(rsc, agents):
    return rsc.endswith("-unblock")


def address_times(actions, agents, old_node, new_node, t_event):
    """When the floating address left the old node (end of the address's stop
    there; the event itself for a crash) and when the service was reachable on
    the new node: the end of the address's start there, or of the portblock
    unblock that lets its traffic in, whichever came last."""
    ok = [a for a in actions if a["rc"] == 0 and a["seconds"] is not None]
    removed = [a["t"] for a in ok if a["op"] == "stop" and a["node"] == old_node and _is_ip(a["resource"], agents)]
    up = [a["t"] for a in ok if a["op"] == "start" and a["node"] == new_node
          and (_is_ip(a["resource"], agents) or _is_unblock(a["resource"], agents))]
    return (min(removed) if removed else t_event), (max(up) if up else None)


def _union(intervals):
    """The intervals merged where they overlap, in order."""
    out = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _length(intervals):
    return sum(b - a for a, b in intervals)


def _minus(intervals, cut):
    """`intervals` (merged) without the parts inside `cut` (merged)."""
    out = []
    for a, b in intervals:
        pieces = [[a, b]]
        for c, d in cut:
            pieces = [q for p in pieces for q in ([p[0], min(p[1], c)], [max(p[0], d), p[1]]) if q[1] > q[0]]
        out += pieces
    return out


def critical_path(actions, agents, t_removed, t_up):
    """Where the time between "address removed" and "address up" went: the
    actions that ran in that span (their execution time inside it), and the
    span split into time a hanfs action ran, time only other agents ran, and
    the rest (Pacemaker's own scheduling, detection, fencing). Actions that
    ran at the same time count once, so the three parts add up to the span."""
    if t_up is None:
        return None
    span = t_up - t_removed
    rows, spans = [], {"hanfs": [], "other agents": []}
    for a in actions:
        if a["seconds"] is None or a["op"] not in ("start", "stop"):
            continue
        t0, t1 = max(a["t"] - a["seconds"], t_removed), min(a["t"], t_up)
        if t1 <= t0:
            continue
        agent = agents.get(a["resource"]) or "?"
        kind = "hanfs" if agent.startswith("ocf:hanfs:") else "other agents"
        spans[kind].append((t0, t1))
        rows.append({"resource": a["resource"], "agent": agent, "op": a["op"], "node": a["node"],
                     "seconds": round(t1 - t0, 3)})
    hanfs = _union(spans["hanfs"])
    other = _minus(_union(spans["other agents"]), hanfs)
    hanfs_s, other_s = _length(hanfs), _length(other)
    return {"span_s": round(span, 3), "hanfs_s": round(hanfs_s, 3),
            "other_agents_s": round(other_s, 3),
            "between_actions_s": round(max(0.0, span - hanfs_s - other_s), 3), "actions": rows}


def timeline(t_event, actions, t_removed, t_up, clients):
    """Every step of one scenario window, in seconds after its event."""
    ev = [(0.0, "event")]
    for a in actions:
        if a["seconds"] is None:
            ev.append((a["t"] - t_event, f"{a['node']} {a['resource']} {a['op']} timed out"))
            continue
        if a["op"] not in ("start", "stop"):
            continue
        ev.append((a["t"] - a["seconds"] - t_event, f"{a['node']} {a['resource']} {a['op']} begins"))
        ev.append((a["t"] - t_event, f"{a['node']} {a['resource']} {a['op']} done ({a['seconds']:.2f} s)"))
    ev.append((t_removed - t_event, "address removed"))
    if t_up is not None:
        ev.append((t_up - t_event, "address up (service reachable)"))
    for tag, c in clients.items():
        w = c.get("writer", {})
        if w.get("resumed_at"):
            ev.append((w["resumed_at"] - t_event, f"{tag}: first write after the pause"))
        n = c.get("newlock", {})
        if n.get("new_lock_s") is not None and t_up is not None:
            ev.append((t_up + n["new_lock_s"] - t_event, f"{tag}: first new lock"))
    ev.sort(key=lambda e: e[0])
    return [{"t_s": round(t, 3), "what": w} for t, w in ev]


def arp_claims(text, addr):
    """Who claimed `addr` on the segment, from `tcpdump -tt -e -n arp` text:
    [(time, MAC)] for each ARP reply "addr is-at MAC" and each request sent
    *from* addr (a gratuitous ARP: the sender's MAC). Probes (sender 0.0.0.0)
    and requests for addr from others claim nothing."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4 or "ARP" not in line:
            continue
        try:
            t = float(f[0])
        except ValueError:
            continue
        words = line.split(": ", 1)[-1].split()
        if words[:1] == ["Reply"] and len(words) >= 4 and words[1] == addr and words[2] == "is-at":
            out.append((t, words[3].rstrip(",")))
        elif words[:1] == ["Request"] and "tell" in words:
            i = words.index("tell")
            if i + 1 < len(words) and words[i + 1].rstrip(",") == addr:
                out.append((t, f[1]))
    return out


def arp_owner_changes(claims):
    """The claims as runs of one MAC: [(first time, last time, MAC)]. Two nodes
    answering at once show as a MAC coming back after another took over."""
    runs = []
    for t, mac in sorted(claims):
        if runs and runs[-1][2] == mac:
            runs[-1] = (runs[-1][0], t, mac)
        else:
            runs.append((t, t, mac))
    return runs


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if not n else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def soak_verdict(rounds):
    """Whether a soak's rounds degrade. `rounds`: [{pause_s, hanfs_s,
    footprint: {name: count}}] in order. Compared: the last third against
    the first third (pauses and hanfs agent times by median, footprints by
    maximum). Returns (summary, [problems])."""
    pauses = [r["pause_s"] for r in rounds if r.get("pause_s") is not None]
    summary = {"rounds": len(rounds), "median_pause_s": _median(pauses),
               "worst_pause_s": max(pauses) if pauses else None}
    k = len(rounds) // 3
    if k == 0:
        return summary, []
    first, last = rounds[:k], rounds[-k:]
    problems = []
    for key, what in (("pause_s", "longest pause"), ("hanfs_s", "hanfs agent time on the path")):
        a = _median([r[key] for r in first if r.get(key) is not None])
        b = _median([r[key] for r in last if r.get(key) is not None])
        if a is not None and b is not None and b > 1.5 * a + 1.0:
            problems.append(f"{what} grew: median {a:.1f} s in the first {k} rounds, {b:.1f} s in the last {k}")
    names = sorted({n for r in rounds for n in r.get("footprint", {})})
    for n in names:
        a = max((r["footprint"][n] for r in first if n in r.get("footprint", {})), default=None)
        b = max((r["footprint"][n] for r in last if n in r.get("footprint", {})), default=None)
        # a few more is churn (a notifier still draining); more is a leak
        if a is not None and b is not None and b > a + max(2, a // 10):
            problems.append(f"{n} grew: at most {a} in the first {k} rounds, {b} in the last {k}")
    return summary, problems


# A service whose node neither lost it nor restarted nfsd must not notice a
# failover elsewhere: its writers append every 100 ms; 5 s is well above the
# UML lab's scheduling hiccups and below the pause an nfsd restart causes
# on a node taking a service over (3.1-3.5 s in the split run 20261202-080734
# plus that service's own outage).
UNAFFECTED_PAUSE_S = 5.0


def _is_grace(rsc, agents):
    return (agents.get(rsc) or "").endswith(":nfs-grace")


def service_pauses(groups, tag_group, clients, members, agents, actions, t_event, before=None, after=None):
    """Per service, what its clients saw in one scenario window, and why.

    groups: the services (group names), in order; tag_group: client tag ->
    group; clients: the window's per-tag findings (writer_window under
    "writer", "reconnect_s", "new_lock_s"); members: group -> its resource
    ids; agents: resource id -> agent; actions: agent_actions of the window;
    before/after: group -> node before the event / at the end (None where
    unknown).

    For each group: where it was and ended, whether it moved (None when
    `before` is unknown) or any member started in the window ("started":
    moved, or recovered in place), its clients' longest pause (and each
    client's), when its own address came up on its new node, and every
    nfs-grace action of ANOTHER service on the node where it ended: a start
    there restarts that node's nfsd (the arriving service's grace period),
    so this service's clients reclaim and pause too; a stop restarts nfsd
    only when NFSv4 state remained on the file system it unexported.
    "unaffected": it did not move, nothing of it started, and its node's
    nfsd was not restarted: its clients should not have paused."""
    before, after = before or {}, after or {}
    rid_group = {rid: g for g, rids in members.items() for rid in rids}
    out = {}
    for g in groups:
        frm, to = before.get(g), after.get(g)
        mine = set(members.get(g, []))
        starts = [a for a in actions if a["resource"] in mine and a["op"] == "start" and a["rc"] == 0
                  and (to is None or a["node"] == to)]
        ip_up = [a["t"] for a in starts if (agents.get(a["resource"]) or "").endswith(IP_AGENTS)
                 or a["resource"].endswith("-ip")]
        # a service that arrived in this window: only what happened on its
        # node from its own nfs-grace start on concerns its clients
        own = [a["t"] - (a["seconds"] or 0) for a in starts if _is_grace(a["resource"], agents)]
        since = min(own) if own else None
        restarts = []
        for a in actions:
            other = rid_group.get(a["resource"])
            if (other is None or other == g or a["op"] not in ("start", "stop") or a["node"] != to
                    or not _is_grace(a["resource"], agents) or (since is not None and a["t"] < since)):
                continue
            why = (f"{other} arrived on {to}: its nfs-grace start restarts nfsd for its clients' grace period"
                   if a["op"] == "start" else
                   f"{other} left {to}: its nfs-grace stop restarts nfsd if NFSv4 state remained")
            restarts.append({"t_s": round(a["t"] - t_event, 3), "resource": a["resource"], "op": a["op"],
                             "rc": a["rc"], "why": why})
        tags = sorted(t for t, gg in tag_group.items() if gg == g and t in clients)
        pauses = {t: clients[t].get("writer", {}).get("max_pause_s") for t in tags}
        known = [p for p in pauses.values() if p is not None]
        moved = None if frm is None or to is None else frm != to
        out[g] = {
            "from": frm, "to": to, "moved": moved, "started": bool(starts),
            "max_pause_s": max(known) if known else None,
            "client_pauses": pauses,
            "all_resumed": all(clients[t].get("writer", {}).get("resumed", True) for t in tags),
            "address_up_s": round(max(ip_up) - t_event, 3) if ip_up else None,
            "nfsd_restarts": restarts,
            "unaffected": moved is False and not starts and not restarts,
        }
    return out


def describe_service(g, s):
    """One line of the summary for service_pauses' entry `s`."""
    if s["moved"]:
        where = f"moved {s['from']} -> {s['to']}"
    elif s["moved"] is False:
        where = f"stayed on {s['to']}" + (" (restarted in place)" if s["started"] else "")
    else:
        where = f"on {s['to']}" + (" (started in this window)" if s["started"] else "")
    pause = "-" if s["max_pause_s"] is None else f"{s['max_pause_s']:.1f}s"
    line = f"{g}: {where}, clients' longest pause {pause}" + ("" if s["all_resumed"] else " (not resumed)")
    if s["address_up_s"] is not None:
        line += f", its address up +{s['address_up_s']:.1f}s"
    if s["nfsd_restarts"]:
        line += "; nfsd restarted on its node: " + "; ".join(
            f"+{r['t_s']:.1f}s {r['why']}" for r in s["nfsd_restarts"])
    elif s["unaffected"]:
        line += "; its node's nfsd was not restarted (expected pause ~0)"
    return line


def percentile(xs, p):
    """The p-th percentile (0-100) of xs, nearest rank (an observed value); None if empty."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = max(1, -(-len(xs) * p // 100))  # ceil(n * p / 100), at least the first
    return xs[int(k) - 1]


CPU_FIELDS = ("nfsd", "lockd", "statd", "statd_children", "sm_notify")
USER_HZ = 100


def cpu_window(lines, t_from, t_to):
    """From a node's cpusample.py lines (dicts, each the CPU ticks since the
    previous one): what [t_from, t_to] cost, taking every line that ends
    after t_from up to the first that ends at or after t_to (whole
    sampling intervals). Busy share of the node's CPU, and seconds per
    daemon; None without a sample in the window."""
    picked = []
    for ln in sorted(lines, key=lambda x: x["t"]):
        if ln["t"] <= t_from:
            continue
        picked.append(ln)
        if ln["t"] >= t_to:
            break
    total = sum(ln.get("total", 0) for ln in picked)
    if not picked or total <= 0:
        return None
    out = {"from": round(t_from, 3), "to": round(picked[-1]["t"], 3), "samples": len(picked),
           "busy": round(sum(ln.get("busy", 0) for ln in picked) / total, 3)}
    for f in CPU_FIELDS:
        out[f + "_s"] = round(sum(ln.get(f, 0) for ln in picked) / USER_HZ, 2)
    return out


def pause_stats(pauses):
    """Median, p99 and worst of the writers' longest pauses (seconds)."""
    xs = [x for x in pauses if x is not None]
    return {"n": len(xs), "median_s": percentile(xs, 50), "p99_s": percentile(xs, 99),
            "worst_s": max(xs) if xs else None}


def notify_reclaim_summary(calls, ip_identity, vips, t_up):
    """From the bridge's statd/NLM calls of one window (rpccap.calls): per
    identity (ip_identity: its address -> its name) the SM_NOTIFYs the
    floating addresses sent it and the ones it answered, and its NLM reclaims;
    overall, the last notification answered and the last reclaim answered,
    in seconds after "address up" (t_up), and the identities that were sent
    more than one notification (distinct xids: not retransmissions) or none."""
    per = {name: {"notify_calls": 0, "notify_xids": set(), "notify_answered": 0, "reclaims": 0,
                  "last_notify_answered": None, "last_reclaim": None} for name in ip_identity.values()}
    for c in calls:
        if c.kind == "notify" and c.src in vips and c.dst in ip_identity:
            p = per[ip_identity[c.dst]]
            p["notify_calls"] += 1
            p["notify_xids"].add(c.xid)
            if c.t_reply is not None:
                p["notify_answered"] += 1
                p["last_notify_answered"] = max(p["last_notify_answered"] or 0, c.t_reply)
        elif c.kind == "reclaim" and c.dst in vips and c.src in ip_identity:
            p = per[ip_identity[c.src]]
            p["reclaims"] += 1
            t = c.t_reply if c.t_reply is not None else c.t
            p["last_reclaim"] = max(p["last_reclaim"] or 0, t)

    def rel(t):
        return round(t - t_up, 3) if t is not None and t_up is not None else None
    notified = [p["last_notify_answered"] for p in per.values() if p["last_notify_answered"]]
    reclaimed = [p["last_reclaim"] for p in per.values() if p["last_reclaim"]]
    return {
        "identities": len(per),
        "notified": len(notified),
        "reclaimed": len(reclaimed),
        "last_notify_answered_s": rel(max(notified)) if notified else None,
        "last_reclaim_s": rel(max(reclaimed)) if reclaimed else None,
        "more_than_one_notification": sorted(n for n, p in per.items() if len(p["notify_xids"]) > 1),
        "retransmitted_notification": sorted(n for n, p in per.items() if p["notify_calls"] > len(p["notify_xids"])),
        "not_notified": sorted(n for n, p in per.items() if not p["notify_answered"]),
        "no_reclaim_seen": sorted(n for n, p in per.items() if not p["reclaims"]),
    }


def wire_story(segments, arps, client, vip, t_event, t_to, limit=30):
    """What went between `client` and `vip` on the bridge from t_event to t_to
    (for a writer that never resumed): the TCP segments either way, runs of
    the same ports and flags folded into one line with their count, and the
    ARP for vip asked by the client and who answered (by MAC). The last
    `limit` lines, oldest first, times relative to t_event."""
    seen = []  # (t, text)
    for s in segments:
        if not t_event <= s.t <= t_to:
            continue
        if (s.src, s.dst) == (client, vip):
            key = f"client:{s.sport} -> {s.dport} {s.flags}"
        elif (s.src, s.dst) == (vip, client):
            key = f"client:{s.dport} <- {s.sport} {s.flags}"
        else:
            continue
        seen.append((s.t, key + (" data" if s.length else "")))
    for a in arps:
        if not t_event <= a.t <= t_to:
            continue
        if a.op == "request" and a.sender == client and a.target == vip:
            seen.append((a.t, "ARP who-has vip (client asks)"))
        elif a.op == "reply" and a.sender == vip:
            seen.append((a.t, f"ARP vip is-at {a.mac}"))
        elif a.op == "request" and a.sender == vip:
            seen.append((a.t, f"ARP gratuitous vip from {a.mac}"))
    folded = []  # [first t, last t, text, count]
    for t, key in sorted(seen):
        if folded and folded[-1][2] == key:
            folded[-1][1], folded[-1][3] = t, folded[-1][3] + 1
        else:
            folded.append([t, t, key, 1])
    out = []
    for t0, t1, key, n in folded[-limit:]:
        when = f"+{t0 - t_event:.1f}s" + (f"..+{t1 - t_event:.1f}s" if n > 1 else "")
        out.append(f"{when} {key}" + (f" x{n}" if n > 1 else ""))
    if len(folded) > limit:
        out.insert(0, f"({len(folded) - limit} earlier lines left out)")
    return out
