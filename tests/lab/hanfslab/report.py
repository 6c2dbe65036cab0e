"""The printed summary of a run (the JSON report holds everything)."""
from .analysis import describe_service


def _fmt_s(x):
    return "-" if x is None else f"{x:.1f}s"


def _scenario_lines(s):
    lines = []
    head = f"  {s['scenario']:<22} {'PASS' if s['passed'] else 'FAIL'}"
    head += f"  service back {_fmt_s(s.get('service_back_s'))}"
    if s.get("pcs_move", {}).get("seconds") is not None:
        head += f", pcs move took {s['pcs_move']['seconds']:.1f}s"
    if s.get("repair_rejoin_s") is not None:
        head += f", repaired node rejoined in {s['repair_rejoin_s']:.1f}s"
    lines.append(head)
    ids = s.get("identities")
    for tag, c in sorted(s.get("clients", {}).items()):
        if ids and "-id" in tag:
            continue  # one line for them all, below
        wr = c.get("writer", {})
        pr = c.get("prober", {})
        wc = c.get("writes", {})
        lock = "-"
        if pr:
            lock = "LOST " + ",".join(pr["lost_locks"]) if pr["acquired"] else "kept"
        pause = _fmt_s(wr.get("max_pause_s")) + ("" if wr.get("resumed", True) else "+")
        lines.append(f"    {tag:<16} pause {pause:>7}  reconnect {_fmt_s(c.get('reconnect_s')):>6}"
                     f"  new lock {_fmt_s(c.get('new_lock_s')):>6}  errors {wr.get('errors', '-'):>3}"
                     f"  other client's locks {lock:<22} acked writes missing {wc.get('missing', '-')}"
                     f" bad {wc.get('bad_checksum', '-')}")
    if ids:
        lines.append("    " + describe_identities(s))
    # per service (when there are several): moved or not, its clients'
    # longest pause, and the nfsd restarts that explain a pause
    svcs = s.get("services", {})
    if len(svcs) > 1:
        for g, x in svcs.items():
            lines.append("    service " + describe_service(g, x))
    for c in s.get("checks", []):
        if not c["ok"]:
            lines.append(f"    x {c['name']}: {c['detail']}")
    for name, d in sorted(s.get("stuck", {}).items()):
        lines += describe_stuck(name, d)
    cp = s.get("critical_path")
    if cp:
        lines.append(f"    address removed +{s['t_address_removed'] - s['t_event']:.1f}s, up +{s['address_up_s']:.1f}s:"
                     f" {cp['span_s']:.1f}s = hanfs agents {cp['hanfs_s']:.2f}s + other agents {cp['other_agents_s']:.2f}s"
                     f" + between actions {cp['between_actions_s']:.2f}s")
    acts = s.get("agent_actions", [])
    if acts:
        parts = [f"{a['resource']}.{a['op']}@{a['node']}={a['seconds']:.1f}s"
                 for a in acts if a["op"] in ("start", "stop")]
        if parts:
            lines.append("    agent actions: " + " ".join(parts))
    return lines


def describe_stuck(name, d):
    """What the lab saw of a client node whose writers never resumed
    (scenarios._diagnose_stuck): printed whole, CI keeps only the output."""
    age = d.get("alive_age_s")
    out = [f"    ! {name} ({d['ip']} -> {d['vip']}; its agent's heartbeat "
           f"{'unknown' if age is None else f'{age:.1f} s ago'}) never resumed: {', '.join(d['tags'])}"]
    out += [f"      bridge: {x}" for x in d.get("wire", ["no capture"])]
    out += [f"      {name}: {x}" for x in d.get("node", [])[:80]]
    for holder, rows in sorted(d.get("holder", {}).items()):
        out += [f"      {holder} (holds {d['vip']}): {x}" for x in rows]
    return out


def identities_with_lost_locks(s):
    """The identities whose lock files another client's prober took in this
    window (the probers run on the client nodes' own mounts and try every
    client's files, the identities' too)."""
    return sorted({f.rsplit("-v", 1)[0] for c in s.get("clients", {}).values()
                   for f in (c.get("prober") or {}).get("lost_locks", []) if "-id" in f})


def describe_identities(s):
    """One line for the --identities writers of a scenario window."""
    ids = s["identities"]
    p = ids.get("pause", {})
    idc = {t: c for t, c in s.get("clients", {}).items() if "-id" in t}
    errs = sum(c.get("writer", {}).get("errors", 0) for c in idc.values())
    lost = len(identities_with_lost_locks(s))
    missing = sum(c.get("writes", {}).get("missing", 0) for c in idc.values())
    line = (f"identities: {ids.get('identities', '?')} ({len(idc)} mounts), pause median {_fmt_s(p.get('median_s'))}"
            f" p99 {_fmt_s(p.get('p99_s'))} worst {_fmt_s(p.get('worst_s'))}; errors {errs}, identities that lost locks {lost}, missing writes {missing};"
            f" notified {ids.get('notified', '?')}, last SM_NOTIFY answered +{_fmt_s(ids.get('last_notify_answered_s'))}"
            f" after address up, {ids.get('reclaimed', '?')} reclaimed, last NLM reclaim +{_fmt_s(ids.get('last_reclaim_s'))}")
    if ids.get("more_than_one_notification"):
        line += f"; >1 notification: {','.join(ids['more_than_one_notification'])}"
    cpu = ids.get("cpu_during_reclaims") or {}
    if "busy" in cpu:
        line += (f"; {cpu['node']} during the reclaims: CPU {cpu['busy']:.0%} busy, nfsd {cpu['nfsd_s']} s,"
                 f" lockd {cpu['lockd_s']} s, rpc.statd {cpu['statd_s']} s + its callouts"
                 f" {cpu['statd_children_s']} s, sm-notify {cpu['sm_notify_s']} s")
    nodes = ids.get("client_nodes") or {}
    if nodes.get("not_notified"):
        line += f"; client nodes not notified: {','.join(nodes['not_notified'])}"
    if nodes.get("no_reclaim_seen"):
        line += f"; no NLM reclaim seen from client nodes: {','.join(nodes['no_reclaim_seen'])}"
    if ids.get("statd_unregistered"):
        line += f"; own rpc.statd unregistered at the end: {','.join(ids['statd_unregistered'])}"
    if ids.get("capture_error"):
        line += f"; capture: {ids['capture_error']}"
    return line


def summary(report):
    out = [f"hanfs lab run {report['run_id']}  ({report.get('total_s', 0):.0f} s total, "
           f"{report.get('clients', '?')} clients, "
           f"kernel {report.get('host', {}).get('uml_version', '?')})"]
    if report.get("error"):
        out.append(f"LAB ERROR: {report['error']}")
    ph = report.get("phases", {})
    out.append("phases: " + ", ".join(f"{k[:-2]} {v:.0f}s" for k, v in ph.items()))
    for name, st in report.get("stacks", {}).items():
        role = " (reference)" if st.get("reference") else ""
        out.append("")
        out.append(f"stack {name}{role}: {'PASSED' if st.get('passed') else 'FAILED'}")
        if st.get("error"):
            out.append(f"  error: {st['error']}")
        for cfg, t in st.get("timings", {}).items():
            out.append(f"  {cfg} timings: " + ", ".join(f"{k[:-2] if k.endswith('_s') else k} {v}s"
                                                      for k, v in t.items()))
        for na in st.get("not_applicable", []):
            out.append(f"  not applicable: {na}")
        for s in st.get("scenarios", []):
            out += _scenario_lines(s)
    stacks = [s for s in report.get("stacks", {}).values() if s.get("scenarios")]
    if len(stacks) > 1:
        out.append("")
        out.append("side by side (max client pause; locks kept by every client?):")
        names = [s["stack"] for s in stacks]
        out.append(f"  {'scenario':<22}" + "".join(f"{n:>30}" for n in names))
        by = [{x["scenario"].split()[0] + f"#{i}": x for i, x in enumerate(s["scenarios"])} for s in stacks]
        for key in by[0]:
            row = f"  {key:<22}"
            for b in by:
                x = b.get(key)
                if not x:
                    row += f"{'-':>30}"
                    continue
                pauses = [c["writer"]["max_pause_s"] for c in x["clients"].values() if "writer" in c]
                lost = sum(c.get("prober", {}).get("acquired", 0) > 0 for c in x["clients"].values())
                cell = f"{max(pauses, default=0):.1f}s, {'locks kept' if not lost else f'{lost} lost'}"
                row += f"{cell:>30}"
            out.append(row)
    if report.get("teardown_errors"):
        out.append(f"TEARDOWN left: {report['teardown_errors']}")
    out.append("")
    out.append(f"RESULT: {'PASSED' if report.get('passed') else 'FAILED'}")
    # closing line in the form CI reads: scenario windows of the stack under test
    primary = next(iter(report.get("stacks", {}).values()), {})
    ran = primary.get("scenarios", [])
    n_ok = sum(1 for s in ran if s.get("passed"))
    n_bad = len(ran) - n_ok
    if not n_bad and (primary.get("error") or report.get("error") or not ran):
        n_bad = 1  # the lab could not run (all of) it: that is a failure too
    out.append(f"lab: {n_ok} passed, {n_bad} failed")
    return "\n".join(out) + "\n"
