"""tests/lab/run: build, boot, run the scenarios, report, tear down."""
import argparse
import dataclasses
import contextlib
import functools
import logging
import os
import shlex
import sys
import time

from . import cluster
from . import topology as T
from .clients import Workload
from .host import Host, LabError, write_json
from .lab import Lab
from .report import summary
from . import scenarios as scenarios_mod
from .scenarios import Runner

log = logging.getLogger("lab")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCENARIOS = ["move", "crash"]  # the default; "split" too on request


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="tests/lab/run",
        description="hanfs cluster lab: a real Corosync/Pacemaker + kernel nfsd cluster in "
                    "User-Mode Linux, configured with pcs-examples/, exercised by real NFS clients.")
    p.add_argument("--stack", choices=sorted(T.STACKS), default="hanfs",
                   help="stack under test (default: hanfs)")
    p.add_argument("--compare", action="store_true",
                   help="also run the heartbeat-agent stack, same scenarios, same run (reference)")
    p.add_argument("--kernel", choices=T.KERNELS, default=T.KERNELS[0],
                   help="the nodes' User-Mode Linux kernel: Debian's 6.1 (default) or 6.12, "
                        "built once by scripts/uml-kernel.sh (~13 min) and cached")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated, in order (default: {','.join(SCENARIOS)})")
    p.add_argument("--soak", type=int, default=20, metavar="N",
                   help="failovers in the soak scenario (default 20), alternating move and crash")
    p.add_argument("--repeat", type=int, default=1, help="run the scenario list N times (default 1)")
    p.add_argument("--clients", type=int, choices=(1, 2), default=None,
                   help="client nodes (default: 2 if the machine has the memory)")
    p.add_argument("--identities", type=int, default=0, metavar="N",
                   help="NFS client identities per client node, besides the node's own mounts (default 0): "
                        "each its own network, UTS and mount namespace, address, rpcbind, rpc.statd and "
                        "NFSv4 client, mounting the first service with NFSv3 (every 4th also NFSv4.2), "
                        "holding a lock and writing; implies a capture of statd and NLM traffic "
                        "(SM_NOTIFY and lock reclaim times)")
    p.add_argument("--out", help="run directory (default: out/lab/<run id> in the repository)")
    p.add_argument("--no-install", action="store_true", help="fail instead of apt-get installing packages")
    p.add_argument("--no-build", action="store_true", help="use target/release as it is")
    p.add_argument("--agents-dir", help="take the hanfs binaries from this directory instead of building")
    p.add_argument("--capture", action="store_true",
                   help="record NFS and ARP traffic on the lab bridge (tcpdump) into bridge.pcap")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def setup_logging(run, verbose):
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    con = logging.StreamHandler(sys.stdout)
    con.setLevel(logging.DEBUG if verbose else logging.INFO)
    con.setFormatter(fmt)
    fh = logging.FileHandler(os.path.join(run, "driver.log"))
    fh.setLevel(logging.DEBUG)
    fh.setFormatter(fmt)
    root.addHandler(con)
    root.addHandler(fh)


@contextlib.contextmanager
def timed(store, name):
    """Log a phase's start and record its wall time in store[name + "_s"]."""
    t = time.time()
    log.info("== %s", name)
    try:
        yield
    finally:
        store[name + "_s"] = round(time.time() - t, 1)


# Cluster properties the lab sets after the pcs-examples script, for every
# stack alike. The nodes are single-CPU User-Mode Linux guests whose load
# average stays above 1 at rest (UML's own overhead: every system call is a
# host context switch). Pacemaker's load throttle (load-threshold, default
# 80% of the node's CPUs) then runs one action at a time on the node, so each
# start waits behind the previous resource's first monitor: 1.8 s behind the
# Filesystem monitor, 3 s behind the fence device's start and monitor after a
# crash (runs 20261202-060734, -062919). A real node idles near load 0, where
# Pacemaker runs up to twice its CPU count of actions at once; 400% gives the
# guests that headroom back.
LAB_PROPERTIES = ("load-threshold=400%",)


def example_env(lab, stack, config):
    """The variables a pcs-examples script is run with in the lab."""
    env = {
        "CLIENTSPEC": T.CLIENTSPEC, "VIP_CIDR": str(T.PREFIX), "NIC": T.NIC, "FSTYPE": "ext4",
        "SERVER_SCOPE": "hanfs-lab",
        "FENCE_AGENT": "fence_hanfs_lab",
        "FENCE_PARAMS": f"lab_dir={lab.run} pcmk_host_list={','.join(n.name for n in lab.servers)}"
                        " pcmk_reboot_action=off",
        # the fence device is reachable from a node cut off the segment (as
        # IPMI on its own LAN): a node fences only if it reaches the clients
        "PING_TARGETS": " ".join(c.spec.ip for c in lab.clients),
    }
    if len(config.services) == 1:
        svc = config.services[0]
        env.update(GROUP=svc.group, SHARED_DEVICE=svc.disk, SHARED_MOUNT=svc.mount, EXPORT_DIR=svc.export,
                   VIP=svc.vip, PREFERRED_NODE=svc.home)
    elif stack.scripts.get(config.name) == "services.sh":
        # one line per service: GROUP DEVICE MOUNT VIP NODE FSID
        env["V4_ROOT"] = "/srv"
        env["SERVICES"] = "\n".join(f"{svc.group} {svc.disk} {svc.mount} {svc.vip} {svc.home} {svc.data_fsid}"
                                    for svc in config.services)
    else:
        env["V4_ROOT"] = "/srv"
        for n, svc in enumerate(config.services, 1):
            env.update({f"GROUP{n}": svc.group, f"DEVICE{n}": svc.disk, f"MOUNT{n}": svc.mount,
                        f"VIP{n}": svc.vip, f"NODE{n}": svc.home, f"FSID{n}": str(svc.data_fsid)})
    env.update(stack.env)
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


def servers_needed(scenarios):
    """The server nodes the scenarios' configurations boot, in topology order
    (a tap each; nodec only for the three-node configuration)."""
    names = {n.name for s in scenarios.split(",") for n in T.SCENARIO_CONFIG[s].servers}
    return [n for n in T.SERVERS if n.name in names]


def run_config(host, run_id, stack, config, scenarios, args, n_clients, bindir, res):
    """Boot a fresh cluster, configure it with the stack's pcs-examples script for
    `config` (for a migration: the old stack's active/passive one), start the
    clients, run `scenarios` (args.repeat times)."""
    t = res["timings"].setdefault(config.name, {})
    phase = functools.partial(timed, t)
    boot = T.STACKS[config.from_stack] if config.from_stack else stack
    lab = Lab(host, f"{run_id}-{stack.name}-{config.name[:3]}", boot, n_clients, bindir, config=config)
    try:
        with phase("cluster_boot_and_formation"):
            lab.start()
        t.update(lab.timings)
        script = boot.scripts[(T.ACTIVE_PASSIVE if config.from_stack else config).name]
        with phase("configure_pcs_example"):
            r = lab.servers[0].sh(f"{example_env(lab, boot, config)} sh {REPO}/pcs-examples/{script}",
                                  timeout=1200, check=False)
            res.setdefault("configure", {})[config.name] = {
                "script": f"pcs-examples/{script}", "rc": r.rc, "out": r.out[-3000:]}
            if r.rc != 0:
                raise LabError(f"pcs-examples/{script} failed (rc {r.rc}): {r.out[-1500:]}")
            # Lab calibration, the same for both stacks (see LAB_PROPERTIES).
            r = lab.servers[0].sh("pcs property set " + " ".join(LAB_PROPERTIES), timeout=120, check=False)
            if r.rc != 0:
                raise LabError(f"pcs property set {' '.join(LAB_PROPERTIES)} failed (rc {r.rc}): {r.out[-800:]}")
        with phase("services_start"):
            for svc in config.services:
                cluster.wait_group(lab.servers, svc.group, timeout=600, on=svc.home)
        w = Workload(lab, config, identities=args.identities)
        with phase("clients_mount_and_warmup"):
            w.mount()
            w.make_identities()
            w.start()
            if args.identities:
                gone = w.statd_unregistered()
                res["identities_statd_unregistered_at_start"] = gone
                if gone:
                    log.warning("identities whose own rpc.statd is not registered before any scenario: %s",
                                " ".join(gone))
        runner = Runner(lab, w, stack)
        try:
            for rep in range(args.repeat):
                for name in scenarios:
                    if args.identities:
                        runner.cpu_samplers()
                    with phase(f"scenario_{name}_{rep + 1}"):
                        results = getattr(runner, name)()
                    for r in results:
                        r["repetition"] = rep + 1
                        r["config"] = config.name
                    res["scenarios"] += results
                    if any("error" in r for r in results):
                        raise LabError(f"scenario {name} could not complete: "
                                       + "; ".join(r["error"] for r in results if "error" in r))
        finally:
            with phase("clients_stop"):
                w.stop()
    finally:
        lab.stop()
        res["fence_events"] += lab.fencer.events


def run_stack(host, run_id, stack, args, n_clients, bindir, reference):
    res = {"stack": stack.name, "reference": reference, "timings": {}, "scenarios": [],
           "fence_events": [], "not_applicable": []}
    # scenarios grouped by the configuration they need, in the order asked
    plan = {}
    for name in args.scenarios.split(","):
        config = T.SCENARIO_CONFIG[name]
        if config.from_stack:
            if not stack.hanfs or stack.name == config.from_stack:
                res["not_applicable"].append(f"{name}: moves a {config.from_stack} cluster to hanfs")
                continue
        elif config.name not in stack.scripts:
            res["not_applicable"].append(f"{name}: the {stack.name} stack has no {config.name} configuration")
            continue
        plan.setdefault(config.name, (config, []))[1].append(name)
    try:
        for config, names in plan.values():
            run_config(host, run_id, stack, config, names, args, n_clients, bindir, res)
    except LabError as e:
        res["error"] = str(e)
        log.error("%s stack: %s", stack.name, e)
    res["passed"] = "error" not in res and bool(res["scenarios"]) and all(s["passed"] for s in res["scenarios"])
    return res


def main(argv=None):
    args = parse_args(argv)
    if args.identities:
        # room for each identity's daemons, writers and NFS client state
        T.CLIENTS[:] = [dataclasses.replace(c, mem_mb=c.mem_mb + T.ID_MEM_MB * args.identities)
                        for c in T.CLIENTS]
        args.capture = True
    scenarios_mod.SOAK_ROUNDS = args.soak
    for s in args.scenarios.split(","):
        if s not in T.SCENARIO_CONFIG:
            sys.exit(f"unknown scenario {s!r} (known: {', '.join(T.SCENARIO_CONFIG)})")
    run_id = time.strftime("%Y%m%d-%H%M%S")
    run = os.path.abspath(args.out or os.path.join(REPO, "out", "lab", run_id))
    os.makedirs(run, exist_ok=True)
    latest = os.path.join(os.path.dirname(run), "latest")
    if not args.out:
        if os.path.islink(latest):
            os.unlink(latest)
        os.symlink(run_id, latest)
    setup_logging(run, args.verbose)
    report = {"run_id": run_id, "run_dir": run, "started": time.time(), "argv": sys.argv[1:],
              "phases": {}, "stacks": {}}
    phase = functools.partial(timed, report["phases"])
    host = Host(REPO, run)
    stacks = [args.stack] + (["heartbeat"] if args.compare and args.stack != "heartbeat" else [])
    t0 = time.time()
    try:
        with phase("preflight"):
            host.preflight(kernel=args.kernel, install=not args.no_install)
            report["host"] = host.resources()
            report["host"]["uml_version"] = host.uml_version
            report["host"]["uml_kernel"] = host.uml
            report["kernel"] = args.kernel
        bindir = None
        hanfs_error = None
        if any(T.STACKS[s].hanfs for s in stacks):
            with phase("build"):
                try:
                    if args.agents_dir:
                        bindir = os.path.abspath(args.agents_dir)
                    elif args.no_build:
                        bindir = os.path.join(REPO, "target", "release")
                    else:
                        bindir = host.build()
                    host.check_agents(bindir)
                    # the nodes bind-mount the binaries from the run directory:
                    # a snapshot kept with the report, visible in every node
                    bindir = host.snapshot_agents(bindir)
                except LabError as e:
                    hanfs_error = str(e)
                    log.error("%s", e)
        n_clients = args.clients
        if n_clients is None:
            need = sum(s.mem_mb for s in servers_needed(args.scenarios) + T.CLIENTS) + 1024
            n_clients = 2 if report["host"]["mem_available_mb"] >= need else 1
        report["clients"] = n_clients
        if n_clients == 1:
            log.warning("one client only: lock checks run from the same client (cannot see NFSv3 lock loss)")
        with phase("network"):
            host.network([s for s in servers_needed(args.scenarios) + T.CLIENTS[:n_clients]])
            if args.capture:
                # statd (SM_NOTIFY) and lockd (NLM) ports too: the identities' figures
                host.capture(os.path.join(run, "bridge.pcap"),
                             "arp or port 2049 or port 111 or port 662 or port 2020 or port 32803",
                             snaplen=400 if args.identities else 160)
            else:
                # always: ARP and the TCP segments that open, close or reset a
                # connection (small), for the report on a client that never
                # resumes (scenarios._diagnose_stuck)
                host.capture(os.path.join(run, "bridge-ctl.pcap"),
                             "arp or (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0)", snaplen=96)
        for i, name in enumerate(stacks):
            stack = T.STACKS[name]
            if stack.hanfs and hanfs_error:
                report["stacks"][name] = {"stack": name, "reference": i > 0, "passed": False,
                                          "error": hanfs_error, "scenarios": []}
                continue
            with phase(f"stack_{name}"):
                report["stacks"][name] = run_stack(host, run_id, stack, args, n_clients, bindir, i > 0)
            write_json(os.path.join(run, "report.json"), report)
    except LabError as e:
        report["error"] = str(e)
        log.error("%s", e)
    except KeyboardInterrupt:
        report["error"] = "interrupted"
    finally:
        with phase("teardown"):
            report["teardown_errors"] = host.teardown()
        report["total_s"] = round(time.time() - t0, 1)
        primary = report["stacks"].get(stacks[0], {})
        report["passed"] = ("error" not in report and not report["teardown_errors"]
                            and primary.get("passed", False))
        write_json(os.path.join(run, "report.json"), report)
        text = summary(report)
        with open(os.path.join(run, "summary.txt"), "w") as f:
            f.write(text)
        print(text)
        print(f"report: {run}/report.json")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
