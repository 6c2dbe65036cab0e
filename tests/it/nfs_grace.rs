//! nfs-grace: on the host (no kernel nfsd here) the description, the
//! parameter checks and a clean, fast refusal to start; in User-Mode Linux
//! guests (kernel 6.1 with nfsd) the real thing: timers, server scope,
//! nfsdcld on the service's storage, grace on takeover, a stop that lets
//! the file system be unmounted, lockd's grace, ocf-tester.
use crate::common::{
    self, install_agents_sh, tools,
    uml::{agents_sh, GuestAgent, UmlResult},
};
use std::time::Duration;

const AGENT: &str = "nfs-grace";

fn host_has_nfsd() -> bool {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    fs.lines().any(|l| l.ends_with("nfsd"))
        || std::process::Command::new("modprobe")
            .args(["-n", "-q", "nfsd"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

// ---------------------------------------------------------------- host ---

#[test]
fn crm_resource_validate_reports_code_and_reason() {
    let sb = sandbox!();
    sb.install_agents();
    let ok: &[&str] = &["recovery_dir=/srv/nfs/cld", "server_scope=hanfs-1"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v: Vec<&'static str> = vec!["recovery_dir=/srv/nfs/cld", "server_scope=hanfs-1"];
        for e in extra {
            let key = e.split('=').next().unwrap();
            v.retain(|o| !o.starts_with(&format!("{key}=")));
            v.push(e);
        }
        v
    };
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["server_scope=x"],
            6,
            "parameter recovery_dir is required",
        ),
        (
            vec!["recovery_dir=/srv/nfs/cld"],
            6,
            "parameter server_scope is required",
        ),
        (
            with(&["recovery_dir=srv/cld"]),
            6,
            "parameter recovery_dir=\"srv/cld\": not an absolute path",
        ),
        (
            with(&["server_scope=two words"]),
            6,
            "parameter server_scope=\"two words\": contains ' '",
        ),
        (
            with(&["lease_time=5"]),
            6,
            "parameter lease_time=\"5\": out of range (10 to 3600)",
        ),
        (
            with(&["grace_time=30"]),
            6,
            "parameter grace_time=\"30\": shorter than lease_time=90",
        ),
        (
            with(&["nlm_grace_time=241"]),
            6,
            "parameter nlm_grace_time=\"241\": out of range (10 to 240)",
        ),
        (
            with(&["threads=0"]),
            6,
            "parameter threads=\"0\": out of range",
        ),
        (
            with(&["end_grace_early=maybe"]),
            6,
            "parameter end_grace_early=\"maybe\": not a boolean",
        ),
    ];
    for (opts, code, reason) in &cases {
        sb.crm_validate(AGENT, opts).expect_refused(*code, reason);
    }
    // A correct configuration, on a host whose kernel has no nfsd: 5.
    if !host_has_nfsd() {
        let v = sb.crm_validate(AGENT, ok);
        assert!(
            v.reason(5).starts_with("the kernel has no nfsd"),
            "{}",
            v.output
        );
    }
}

#[test]
fn start_fails_fast_and_cleanly_without_kernel_nfsd() {
    if host_has_nfsd() {
        common::skip_or_fail("this host's kernel has nfsd: the no-nfsd refusal cannot be shown here (the UML tests cover start)");
        return;
    }
    let sb = sandbox!();
    let dir = sb.path("shared/cld");
    let agent = || {
        sb.agent(AGENT)
            .param("recovery_dir", dir.to_str().unwrap())
            .param("server_scope", "hanfs-1")
    };
    let r = agent().run("start");
    r.expect_reason(5, "the kernel has no nfsd");
    assert!(r.elapsed < Duration::from_secs(10), "took {:?}", r.elapsed);
    agent()
        .run("validate-all")
        .expect_reason(5, "the kernel has no nfsd");
    // Nothing was started: the probe says stopped, stop succeeds.
    agent().run("monitor").expect(7);
    agent().interval_ms(10_000).run("monitor").expect(7);
    agent().run("stop").expect(0);
    // No state is left (nfs-grace's node lock file may stay).
    assert_eq!(
        sb.sh_ok("ls /run/resource-agents | grep -vx hanfs-nfs-grace.lock || true")
            .trim(),
        ""
    );
    // reload-agent of a resource not started here is an error, not a crash.
    agent()
        .env("OCF_RA_VERSION_MAJOR", "1")
        .env("OCF_RA_VERSION_MINOR", "1")
        .run("reload-agent")
        .expect(1);
}

/// A stand-in for nfsdcld serving `dir`: a process named nfsdcld holding
/// `dir/main.sqlite` open, as cld::find_all recognises the real one.
/// Killed on drop.
struct FakeCld(std::process::Child);

impl FakeCld {
    fn serving(dir: &std::path::Path) -> FakeCld {
        let child = std::process::Command::new("python3")
            .args([
                "-c",
                "import ctypes, sys, time\n\
                 f = open(sys.argv[1] + '/main.sqlite', 'a')\n\
                 ctypes.CDLL(None).prctl(15, b'nfsdcld', 0, 0, 0)\n\
                 print('ready', flush=True)\n\
                 time.sleep(600)",
            ])
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut c = FakeCld(child);
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(c.0.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        c
    }
    /// Whether it was stopped (by the agent) within a few seconds.
    fn stopped(&mut self) -> bool {
        common::wait_until(Duration::from_secs(5), || {
            self.0.try_wait().ok().flatten().is_some()
        })
    }
}

impl Drop for FakeCld {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 14, 3: a state file the agent cannot read is a failure (monitor
/// 1, saying so), not "cleanly stopped"; stop falls back to the
/// configuration and the node's real state: it stops the nfsdcld serving
/// this resource's recovery_dir and removes the bad file.
#[test]
fn a_damaged_state_file_fails_the_monitor_and_stop_cleans_up() {
    let sb = sandbox!();
    let dir = sb.path("shared/cld");
    std::fs::create_dir_all(&dir).unwrap();
    let agent = || {
        sb.agent(AGENT)
            .env("OCF_RESOURCE_INSTANCE", "dmg")
            .param("recovery_dir", dir.to_str().unwrap())
            .param("server_scope", "hanfs-1")
    };
    let state = "/run/resource-agents/hanfs-nfs-grace-dmg";
    for damage in ["", "{\"phase\":\"started\",\"config\":{\"node\":{\"lea"] {
        let mut cld = FakeCld::serving(&dir);
        std::fs::write(sb.path("damaged"), damage).unwrap();
        sb.sh_ok(&format!("cp {} {state}", sb.path("damaged").display()));
        agent().run("monitor").expect_reason(1, "state file");
        agent()
            .interval_ms(10_000)
            .run("monitor")
            .expect_reason(1, "state file");
        agent().run("stop").expect(0);
        assert!(
            cld.stopped(),
            "{damage:?}: nfsdcld on recovery_dir left running"
        );
        assert_eq!(
            sb.sh_ok(&format!("test -e {state} && echo left || echo gone"))
                .trim(),
            "gone",
            "{damage:?}: the damaged state file stayed"
        );
        agent().run("monitor").expect(7);
        agent().run("stop").expect(0);
    }
}

/// Issue 14, 4: a FIFO where the state file should be: monitor says so at
/// once (1), stop removes it (0), neither blocks.
#[test]
fn a_fifo_for_a_state_file_is_refused_at_once() {
    let sb = sandbox!();
    let dir = sb.path("shared/cld");
    std::fs::create_dir_all(&dir).unwrap();
    let agent = || {
        sb.agent(AGENT)
            .env("OCF_RESOURCE_INSTANCE", "fifo")
            .param("recovery_dir", dir.to_str().unwrap())
            .param("server_scope", "hanfs-1")
    };
    let _fifo = sb.fifo(
        "/run/resource-agents/hanfs-nfs-grace-fifo",
        Duration::from_secs(8),
    );
    for action in ["monitor", "stop"] {
        let r = agent().run(action);
        assert!(
            r.elapsed < Duration::from_secs(5),
            "{action} took {:?} (blocked on the FIFO?)",
            r.elapsed
        );
        if action == "monitor" {
            r.expect_reason(1, "is a FIFO, not a regular file");
        } else {
            r.expect(0);
        }
    }
    agent().run("monitor").expect(7);
}

/// Issue 14, 7: the node lock path is a directory (it can never be a
/// lock, so no other nfs-grace action can hold it either): stop still
/// stops what runs and succeeds, logging what it could not use.
#[test]
fn stop_succeeds_when_the_node_lock_path_is_a_directory() {
    let sb = sandbox!();
    let dir = sb.path("shared/cld");
    std::fs::create_dir_all(&dir).unwrap();
    let agent = || {
        sb.agent(AGENT)
            .env("OCF_RESOURCE_INSTANCE", "lockdir")
            .param("recovery_dir", dir.to_str().unwrap())
            .param("server_scope", "hanfs-1")
    };
    sb.sh_ok("mkdir -p /run/resource-agents/hanfs-nfs-grace.lock");
    let r = agent().run("stop");
    r.expect(0);
    assert!(r.stderr.contains("hanfs-nfs-grace.lock"), "{}", r.stderr);
    // Started here (a state that says so, nfsdcld on recovery_dir).
    let mut cld = FakeCld::serving(&dir);
    sb.sh_ok("echo '{\"phase\":\"starting\"}' > /run/resource-agents/hanfs-nfs-grace-lockdir");
    agent().run("stop").expect(0);
    assert!(cld.stopped(), "nfsdcld on recovery_dir left running");
    agent().run("monitor").expect(7);
}

// ----------------------------------------------------------------- UML ---

/// Shell prelude for guests: the agent as `ag ACTION [k=v ...]` with a
/// test configuration, a scratch ext4 "shared disk" mounted on $S, the
/// helpers an NFS server expects, and `val KEY VALUE` to report results.
fn prelude(grace: u32, lease: u32, nlm: u32) -> String {
    let ag = GuestAgent::new("ag", AGENT)
        .param("recovery_dir", "$S/nfsdcld")
        .param("server_scope", "hanfs-scope-t")
        .param("grace_time", &grace.to_string())
        .param("lease_time", &lease.to_string())
        .param("nlm_grace_time", &nlm.to_string())
        .param("threads", "4");
    "S=/run/hanfs-srv\n".to_string()
        + &agents_sh(&[ag])
        + r#"
v4grace() { cat /proc/fs/nfsd/v4_end_grace; }
nlmgrace() { cat /proc/fs/lockd/nlm_end_grace; }
disk() {
    mkdir -p $S
    [ -e /tmp/disk.img ] || { dd if=/dev/zero of=/tmp/disk.img bs=1M count=24 2>/dev/null && mkfs.ext4 -q /tmp/disk.img; }
    modprobe loop; mount -o loop /tmp/disk.img $S && mkdir -p $S/data && chmod 777 $S/data
}
export_it() { exportfs -o rw,no_root_squash,fsid=0,no_subtree_check,insecure 127.0.0.1:$S; }
# hold FILE KEY: a job holding an exclusive POSIX lock on FILE; prints KEY=yes once it has it
hold() { python3 -c "
import fcntl, sys, time
f = open(sys.argv[1], 'a'); fcntl.lockf(f, fcntl.LOCK_EX); print(sys.argv[2] + '=yes', flush=True); time.sleep(600)" "$1" "$2" & }
# server_lock KEY: whether nfsd holds an NFSv4 lock (waiting up to 10 s for one)
server_lock() {
    for i in $(seq 1 100); do grep -q 'type: lock' /proc/fs/nfsd/clients/*/states 2>/dev/null && break; sleep 0.1; done
    val $1 $(grep -q 'type: lock' /proc/fs/nfsd/clients/*/states && echo yes)
}
# wait_v4_grace_end: v4_grace_end (Y once over, waiting up to 25 s) and v4_grace_secs
wait_v4_grace_end() {
    T0=$(date +%s)
    for i in $(seq 1 250); do [ "$(v4grace)" = Y ] && break; sleep 0.1; done
    val v4_grace_end $(v4grace)
    val v4_grace_secs $(( $(date +%s) - T0 ))
}
unexport_it() { exportfs -u 127.0.0.1:$S; echo $S > /proc/fs/nfsd/unlock_filesystem; }
# The clients recorded in a database (what the next start there offers).
records() {
    python3 -c "
import sqlite3, sys
c = sqlite3.connect('file:' + sys.argv[1] + '/main.sqlite?mode=ro', uri=True)
cur, rec = c.execute('SELECT current, recovery FROM grace').fetchone()
ids = set()
for e in {cur, rec} - {0}:
    ids |= {r[0] for r in c.execute('SELECT id FROM \"rec-%016x\"' % e)}
print(len(ids))" $1
}
"#
}

fn uml_timeout() -> Duration {
    Duration::from_secs(150)
}

#[track_caller]
fn expect_value(r: &UmlResult, key: &str, want: &str) {
    assert_eq!(
        r.value(key).as_deref(),
        Some(want),
        "{key}: expected {want:?}\n--- guest output ---\n{}",
        r.output
    );
}

/// Start sets the timers and the scope and runs nfsdcld on the shared
/// disk; an NFSv4.1 client takes a lock; unexporting does not free the
/// disk on 6.1, stopping does; a restart gives a grace period in which the
/// client reclaims, and the kernel ends it early once it has.
#[test]
fn uml_start_stop_takeover_grace() {
    let vm = uml!();
    let script = prelude(30, 10, 20)
        + r#"
disk
modprobe nfsd; rpcbind -w; rpc.mountd
# --immediate-mode: without it packets wait in the kernel's ring buffer
# for up to a second, and a kill before that loses them (seen in CI: "92
# packets received by filter", "0 packets captured")
tcpdump --immediate-mode -i lo -U -w /tmp/cap tcp port 2049 2>/tmp/tcpdump.err & TCPD=$!
for i in $(seq 1 600); do grep -q listening /tmp/tcpdump.err && break; sleep 0.1; done
val tcpdump_listening $(grep -q listening /tmp/tcpdump.err && echo yes)
ag start; val start1 $?
val threads $(cat /proc/fs/nfsd/threads)
val grace_time $(cat /proc/fs/nfsd/nfsv4gracetime)
val lease_time $(cat /proc/fs/nfsd/nfsv4leasetime)
val nlm_grace $(cat /proc/sys/fs/nfs/nlm_grace_period)
val hostname $(hostname)
val rpcbind_nfs3 $(rpcinfo -p | awk '$1==100003 && $2==3 && $4==2049 {print "yes"}' | head -1)
val nfsdcld_db $(test -s $S/nfsdcld/main.sqlite && echo yes)
val leases_at_start1 $(cat /proc/sys/fs/leases-enable)
ag monitor; val monitor1 $?
# no NFSv4 client recorded: no grace, so the monitor allows delegations
val leases_after_monitor1 $(cat /proc/sys/fs/leases-enable)
ag start; val start_again $?
export_it
modprobe nfsv4; mkdir -p /tmp/m
timeout 60 mount -t nfs -o vers=4.1 127.0.0.1:/ /tmp/m; val mount $?
# lockd's grace blocks new NFSv4 locks too; no NFSv3 client is here to reclaim
echo Y > /proc/fs/lockd/nlm_end_grace
hold /tmp/m/data/lockme LOCKED
server_lock server_lock_before
sleep 1; kill $TCPD; wait $TCPD 2>/dev/null
val scope_on_wire $(grep -a -c hanfs-scope-t /tmp/cap | awk '{print ($1>0)?"yes":"no"}')
grep -aq hanfs-scope-t /tmp/cap || { cat /tmp/tcpdump.err; tcpdump -nn -r /tmp/cap 2>&1 | head -20; }
# The service moves away: its export goes first, then nfs-grace stops.
unexport_it
val revoked_after_unexport $(cat /proc/fs/nfsd/clients/*/states | grep -q 'admin-revoked }' && echo yes || echo no)
umount $S 2>/dev/null && val busy_after_unexport no || val busy_after_unexport yes
ag stop; val stop1 $?
val threads_after_stop $(cat /proc/fs/nfsd/threads)
val clients_after_stop $(ls /proc/fs/nfsd/clients | wc -l)
val nfsdcld_after_stop $(pgrep -x nfsdcld >/dev/null && echo running || echo gone)
umount $S && val umount_after_stop ok || { val umount_after_stop busy; lsof $S; }
ag monitor; val monitor_after_stop $?
ag stop; val stop_again $?
# ... and comes back (the same disk, as on the takeover node).
mount -o loop /tmp/disk.img $S
ag start; val start2 $?
val v4_grace_at_start2 $(v4grace)
val nlm_grace_at_start2 $(nlmgrace)
val leases_at_start2 $(cat /proc/sys/fs/leases-enable)
export_it
wait_v4_grace_end
server_lock server_lock_after
val early_end_logged $(dmesg | grep -q 'all clients done reclaiming' && echo yes)
ag monitor; val monitor2 $?
val leases_after_monitor2 $(cat /proc/sys/fs/leases-enable)
ag stop; val stop2 $?
kill %2 2>/dev/null
umount -f -l /tmp/m
dmesg | grep -E 'NFSD|lockd' | tail -8
"#;
    let r = vm.run(&script, uml_timeout());
    r.assert_ok();
    // Linux 6.9+ (seen on 6.12): unlock_filesystem revokes NFSv4 state
    // (the client's open and lock show as admin-revoked); 6.1 leaves it.
    let revokes = if vm.release() >= (6, 9) { "yes" } else { "no" };
    expect_value(&r, "revoked_after_unexport", revokes);
    for (k, v) in [
        ("tcpdump_listening", "yes"),
        ("start1", "0"),
        ("threads", "4"),
        ("grace_time", "30"),
        ("lease_time", "10"),
        ("nlm_grace", "20"),
        ("hostname", "uml-guest"),
        ("rpcbind_nfs3", "yes"),
        ("nfsdcld_db", "yes"),
        // delegations held back from before nfsd starts until its NFSv4
        // grace is over, as the monitor sees it
        ("leases_at_start1", "0"),
        ("monitor1", "0"),
        ("leases_after_monitor1", "1"),
        ("start_again", "0"),
        ("mount", "0"),
        ("LOCKED", "yes"),
        ("server_lock_before", "yes"),
        // the kernel took the scope from the agent's UTS namespace, not the host name
        ("scope_on_wire", "yes"),
        // nfsdcld holds its database on the disk until nfs-grace stops
        // (and on 6.1 the NFSv4 open and lock are left too)
        ("busy_after_unexport", "yes"),
        ("stop1", "0"),
        ("threads_after_stop", "0"),
        ("clients_after_stop", "0"),
        ("nfsdcld_after_stop", "gone"),
        ("umount_after_stop", "ok"),
        ("monitor_after_stop", "7"),
        ("stop_again", "0"),
        ("start2", "0"),
        // the client is recorded in nfsdcld's database on the disk: grace
        ("v4_grace_at_start2", "N"),
        ("nlm_grace_at_start2", "N"),
        ("leases_at_start2", "0"),
        ("v4_grace_end", "Y"),
        ("server_lock_after", "yes"),
        ("early_end_logged", "yes"),
        ("monitor2", "0"),
        ("leases_after_monitor2", "1"),
        ("stop2", "0"),
    ] {
        expect_value(&r, k, v);
    }
    // Ended early: well before the 30 s grace time.
    let secs: u64 = r.value("v4_grace_secs").unwrap().parse().unwrap();
    assert!(
        secs < 25,
        "NFSv4 grace lasted {secs} s of 30:\n{}",
        r.output
    );
}

/// An NFSv4.0 client (no RECLAIM_COMPLETE: its grace runs to the end)
/// keeps its lock through two takeovers in a row: after the first, in which
/// it only reclaimed, it must still be recorded for the second (seen lost
/// in the lab's three_nodes scenario, run 20261202-140121: "lost 4 locks").
/// nfsd does not record it again; nfs-grace's monitor does.
#[test]
fn uml_nfsv4_0_client_keeps_its_lock_through_two_takeovers() {
    let vm = uml!();
    let script = prelude(15, 10, 15)
        + r#"
disk
modprobe nfsd; rpcbind -w; rpc.mountd
ag start; val start1 $?
export_it
modprobe nfsv4; mkdir -p /tmp/m
timeout 60 mount -t nfs -o vers=4.0 127.0.0.1:/ /tmp/m; val mount $?
echo Y > /proc/fs/lockd/nlm_end_grace
hold /tmp/m/data/lockme LOCKED
server_lock lock_before
val records_before "$(records $S/nfsdcld)"
# takeover (the same disk, as on the node taking over) and the grace to its end
takeover() {
    unexport_it; ag stop; val stop$1 $?
    umount $S; mount -o loop /tmp/disk.img $S
    ag start; val start$1 $?; export_it
    server_lock lock_after$1
    # the cluster's monitor, as every 10 s: it records the reclaimed 4.0 client
    ag monitor; val monitor$1 $?
    T0=$(date +%s); for i in $(seq 1 300); do [ "$(v4grace)" = Y ] && break; sleep 0.1; done
    val grace_end$1 $(v4grace)
    val records_after$1 "$(records $S/nfsdcld)"
}
takeover 2
takeover 3
val lost $(dmesg | grep -c 'lost .* locks')
"#;
    let r = vm.run(&script, uml_timeout());
    r.assert_ok();
    for (k, v) in [
        ("start1", "0"),
        ("mount", "0"),
        ("LOCKED", "yes"),
        ("lock_before", "yes"),
        ("start2", "0"),
        ("lock_after2", "yes"),
        ("monitor2", "0"),
        ("grace_end2", "Y"),
        ("records_after2", "1"),
        ("start3", "0"),
        ("lock_after3", "yes"),
        ("grace_end3", "Y"),
        ("lost", "0"),
    ] {
        expect_value(&r, k, v);
    }
}

/// Storage that refuses nfsdcld's writes (a read-only bind mount over
/// recovery_dir, as a full or read-only file system would): nfsd cannot
/// record a new NFSv4.2 client, and logs it only. The monitor names it,
/// as degraded (190: Pacemaker shows it and recovers nothing); once the
/// storage takes writes again the monitor records it, and after a takeover
/// the client reclaims its lock.
#[test]
fn uml_unrecorded_nfsv4_client_is_reported_then_recorded() {
    let vm = uml!();
    let script = prelude(15, 10, 15)
        + r#"
disk
modprobe nfsd; rpcbind -w; rpc.mountd
ag start; val start1 $?
export_it
echo Y > /proc/fs/lockd/nlm_end_grace
mount --bind $S/nfsdcld $S/nfsdcld && mount -o remount,bind,ro $S/nfsdcld; val read_only $?
modprobe nfsv4; mkdir -p /tmp/m
timeout 60 mount -t nfs -o vers=4.2 127.0.0.1:/ /tmp/m; val mount $?
hold /tmp/m/data/lockme LOCKED
server_lock lock_before
val kernel_refused $(dmesg | grep -c 'Unable to create client record')
val records_ro "$(records $S/nfsdcld)"
ag monitor 2>/tmp/reason; val monitor_ro $?
cat /tmp/reason
val reason $(grep -c '^ocf-exit-reason:cannot record 1 NFSv4 client(s) for reclaim (Linux NFSv4.2 [^)]*): cannot add client records: attempt to write a readonly database$' /tmp/reason)
ag monitor 2>/dev/null; val monitor_ro_again $?
umount $S/nfsdcld; val writable $?
ag monitor; val monitor_rw $?
val records_rw "$(records $S/nfsdcld)"
ag monitor; val monitor_rw_again $?
unexport_it; ag stop; val stop $?
umount $S; mount -o loop /tmp/disk.img $S
ag start; val start2 $?; export_it
server_lock lock_after
wait_v4_grace_end
val lost $(dmesg | grep -c 'lost .* locks')
"#;
    let r = vm.run(&script, uml_timeout());
    r.assert_ok();
    for (k, v) in [
        ("start1", "0"),
        ("read_only", "0"),
        ("mount", "0"),
        ("LOCKED", "yes"),
        ("lock_before", "yes"),
        ("kernel_refused", "1"),
        ("records_ro", "0"),
        ("monitor_ro", "190"),
        ("reason", "1"),
        ("monitor_ro_again", "190"),
        ("writable", "0"),
        ("monitor_rw", "0"),
        ("records_rw", "1"),
        ("monitor_rw_again", "0"),
        ("stop", "0"),
        ("start2", "0"),
        ("lock_after", "yes"),
        ("v4_grace_end", "Y"),
        ("lost", "0"),
    ] {
        expect_value(&r, k, v);
    }
}

/// The shared disk stops answering while a client writes (device-mapper
/// suspend, as in the lab's hung_storage scenario): nfsd's threads cannot
/// exit while their I/O hangs, so the stop can only fail and the node be
/// fenced. It fails as soon as the storage is seen not to answer, naming
/// it, not at the end of its 60-s timeout (lab run 20261202-135143: 59.9 s
/// on the way to fencing). Resumed, the abandoned stop completes.
#[test]
fn uml_stop_on_hung_storage_fails_at_once_naming_it() {
    let vm = uml!();
    let script = prelude(15, 10, 15)
        + r#"
mkdir -p $S
dd if=/dev/zero of=/tmp/disk.img bs=1M count=48 2>/dev/null && mkfs.ext4 -q /tmp/disk.img
modprobe loop; modprobe dm-mod 2>/dev/null
L=$(losetup -f --show /tmp/disk.img)
dmsetup create --noudevsync hanfs-t --table "0 $(blockdev --getsz $L) linear $L 0"; val dm $?
dmsetup mknodes
mount /dev/mapper/hanfs-t $S && mkdir -p $S/data && chmod 777 $S/data
modprobe nfsd; rpcbind -w; rpc.mountd
ag start; val start $?
export_it
echo Y > /proc/fs/lockd/nlm_end_grace
modprobe nfsv4; mkdir -p /tmp/m
# sync: every WRITE is FILE_SYNC, so a thread of nfsd waits on the disk
timeout 60 mount -t nfs -o vers=4.2,hard,sync 127.0.0.1:/ /tmp/m; val mount $?
# one file rewritten (a new file each time filled the disk in 2 s on 6.12)
( while :; do dd if=/dev/zero of=/tmp/m/data/f bs=64k count=8 conv=notrunc,fsync 2>/dev/null; done ) & W=$!
sleep 2
dmsetup suspend --nolockfs hanfs-t; val suspended $?
sleep 3
val nfsd_blocked $(for p in $(pgrep -x nfsd); do awk '{print $3}' /proc/$p/stat; done | grep -c D)
T0=$(date +%s)
OCF_RESKEY_CRM_meta_timeout=60000 ag stop 2>/tmp/reason; val stop $?
val stop_secs $(( $(date +%s) - T0 ))
cat /tmp/reason
val reason $(grep -c '^ocf-exit-reason:hung storage: nfsd.s threads have not exited after 10 s and /run/hanfs-srv/nfsdcld does not answer; only fencing this node ends their I/O (timed out after' /tmp/reason)
dmsetup resume hanfs-t; val resumed $?
for i in $(seq 1 300); do [ "$(cat /proc/fs/nfsd/threads)" = 0 ] && break; sleep 0.1; done
val threads_after_resume $(cat /proc/fs/nfsd/threads)
kill $W 2>/dev/null
umount -f -l /tmp/m
"#;
    let r = vm.run(&script, uml_timeout());
    r.assert_ok();
    for (k, v) in [
        ("dm", "0"),
        ("start", "0"),
        ("mount", "0"),
        ("suspended", "0"),
        ("stop", "1"),
        ("reason", "1"),
        ("resumed", "0"),
        ("threads_after_resume", "0"),
    ] {
        expect_value(&r, k, v);
    }
    // The set-up holds: a thread of nfsd waited on the disk at the stop.
    let blocked: u32 = r
        .value("nfsd_blocked")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        blocked > 0,
        "no nfsd thread waited on the disk:\n{}",
        r.output
    );
    println!(
        "stop on hung storage failed after {:?} s",
        r.value("stop_secs")
    );
}

/// Moving a running NFS server to hanfs (pcs-examples/migrate-from-heartbeat.sh):
/// nfsd started by hand (no nfsdcld, as the heartbeat nfsserver runs it),
/// an NFSv4.1 client and an NFSv3 client holding locks; hanfs-import-state
/// copies statd's clients into a holding directory and the running nfsd's
/// NFSv4 clients into a fresh recovery_dir; nfsd stops, nfs-grace starts on
/// that recovery_dir: the NFSv4 client reclaims its lock in the grace
/// period, which ends early because every recorded client is back.
/// (Without the import the client's reclaim is refused and its lock lost;
/// with another server scope the client does not even try: both seen
/// while writing this test.)
#[test]
fn uml_imported_clients_reclaim() {
    let vm = uml!();
    let script = prelude(30, 10, 20)
        + &format!(
            "V66={}\n",
            if vm.release() >= (6, 6) { "yes" } else { "no" }
        )
        + &format!("IMPORT={}\n", common::bin("hanfs-import-state").display())
        + r#"
disk
modprobe nfsd; rpcbind -w; mkdir -p /tmp/statd/sm; rpc.statd --no-notify -P /tmp/statd; rpc.mountd
mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
$IMPORT --recovery-dir $S 2>&1; val import_stopped $?
# the old server runs in the same server scope (nfsserver nfs_server_scope does this)
unshare -u sh -c "hostname hanfs-scope-t; rpc.nfsd -G 30 -L 10 4"
echo Y > /proc/fs/nfsd/v4_end_grace; echo Y > /proc/fs/lockd/nlm_end_grace
export_it
modprobe nfsv4; modprobe nfsv3; mkdir -p /tmp/m /tmp/m3
timeout 60 mount -t nfs -o vers=4.1 127.0.0.1:/ /tmp/m; val mount $?
timeout 60 mount -t nfs -o vers=3 127.0.0.1:$S /tmp/m3; val mount3 $?
hold /tmp/m/data/lockme LOCKED
hold /tmp/m3/data/lock3 LOCKED3; H3=$!
server_lock server_lock_before
for i in $(seq 1 100); do [ -n "$(ls /tmp/statd/sm)" ] && break; sleep 0.1; done
mkdir -p $S/statd $S/nfsdcld
$IMPORT --holding-dir $S/statd --statd-dir /tmp/statd --recovery-dir $S/nfsdcld; val import $?
$IMPORT --holding-dir $S/statd --statd-dir /tmp/statd --recovery-dir $S/nfsdcld; val import_again $?
val held $(ls $S/statd | wc -l)
val recorded "$(python3 -c "
import sqlite3
db = sqlite3.connect('$S/nfsdcld/main.sqlite')
cur, = db.execute('SELECT current FROM grace').fetchone()
print('|'.join(r[0].decode() for r in db.execute('SELECT id FROM \"rec-%016x\"' % cur)))")"
# The NFSv3 client shares the server's node here. Its mount keeps lockd up,
# and from Linux 6.6 nothing can restart lockd's grace then (start would
# refuse): there it leaves before the old server goes.
if [ $V66 = yes ]; then kill $H3; wait $H3 2>/dev/null; umount /tmp/m3; val umount3 $?; fi
# the old server goes (its locks with it), hanfs starts on the imported records
unexport_it; rpc.nfsd 0
ag start; val start $?
val v4_grace_at_start $(v4grace)
export_it
wait_v4_grace_end
server_lock server_lock_after
dmesg | grep -E 'NFSD|NFS:|lockd' | tail -6
ag stop; val stop $?
kill %1 %2 2>/dev/null
umount -f -l /tmp/m; ! mountpoint -q /tmp/m3 || umount -f -l /tmp/m3
"#;
    let r = vm.run(&script, uml_timeout());
    r.assert_ok();
    for (k, v) in [
        ("import_stopped", "1"),
        ("mount", "0"),
        ("mount3", "0"),
        ("LOCKED", "yes"),
        ("LOCKED3", "yes"),
        ("server_lock_before", "yes"),
        ("import", "0"),
        ("import_again", "0"),
        ("held", "1"),
        ("start", "0"),
        ("v4_grace_at_start", "N"),
        ("v4_grace_end", "Y"),
        ("server_lock_after", "yes"),
        ("stop", "0"),
    ] {
        expect_value(&r, k, v);
    }
    assert!(
        r.output.contains("nfsd is not running here"),
        "{}",
        r.output
    );
    let recorded = r.value("recorded").unwrap_or_default();
    assert!(
        recorded.starts_with("Linux NFSv4.1 ") && !recorded.contains('|'),
        "one NFSv4.1 client recorded, got {recorded:?}\n{}",
        r.output
    );
    // every recorded client came back: well before the 30 s grace time
    let secs: u64 = r.value("v4_grace_secs").unwrap().parse().unwrap();
    assert!(
        secs < 25,
        "NFSv4 grace lasted {secs} s of 30:\n{}",
        r.output
    );
}

/// nfsd started outside the cluster is restarted with the resource's
/// settings; a second resource with other settings is refused; lockd kept
/// up by an NFSv3 mount gets its grace restarted (6.1: SIGKILL), or, from
/// Linux 6.6 where nothing can, start refuses with the reason; the NLM
/// grace is ended early when nfsd serves no NFSv3; no rpcbind is a clear
/// error.
#[test]
fn uml_lockd_grace_and_shared_node() {
    let vm = uml!();
    // Linux 6.6 removed lockd's SIGKILL handling: with lockd kept up by an
    // NFS client mount, nothing restarts its grace, and start refuses.
    let sigkill = vm.release() < (6, 6);
    let script = prelude(20, 10, 30)
        + r#"
disk
ag start 2>&1; val start_no_rpcbind $?
ag stop; val stop_after_failed_start $?
val nfsdcld_after_failed_start $(pgrep -x nfsdcld >/dev/null && echo running || echo gone)
rpcbind -w; rpc.statd --no-notify; rpc.mountd
rpc.nfsd -G 90 -L 90 2; val outside_threads $(cat /proc/fs/nfsd/threads)
ag start; val start_over_outside $?
val grace_time $(cat /proc/fs/nfsd/nfsv4gracetime)
val lease_time $(cat /proc/fs/nfsd/nfsv4leasetime)
INST=svc2 ag start server_scope=other-scope; val start_conflict $?
INST=svc2 ag monitor; val monitor_conflict $?
# someone restarts nfsd behind the cluster's back: monitor notices
rpc.nfsd 0; rpc.nfsd -G 90 -L 90 2
ag monitor; val monitor_outside_restart $?
ag stop; val stop_outside $?
ag start; val start_again $?
export_it
mkdir -p /tmp/m3
timeout 60 mount -t nfs -o vers=3 127.0.0.1:$S /tmp/m3; val mount3 $?
ag stop; val stop1 $?
val lockd_after_stop $(pgrep -x lockd >/dev/null && echo running || echo gone)
echo Y > /proc/fs/lockd/nlm_end_grace
val nlm_before_start2 $(nlmgrace)
ag start 2>&1; val start2 $?
val nlm_after_start2 $(nlmgrace)
ag stop; val stop2 $?
# lockd's grace as every kernel starts it: for the network namespace's
# first lockd user (here nfsd, once the NFSv3 mount is gone), kept on by
# a new NFSv3 mount after nfsd stops
umount /tmp/m3
val lockd_after_umount $(pgrep -x lockd >/dev/null && echo running || echo gone)
ag start; val start_fresh $?
val nlm_fresh $(nlmgrace)
timeout 60 mount -t nfs -o vers=3 127.0.0.1:$S /tmp/m3; val mount3_again $?
ag stop; val stop_fresh $?
# NFSv4 only: lockd's grace (kept by the NFSv3 mount) cannot serve a reclaim
echo -3 > /proc/fs/nfsd/versions
ag start end_grace_early=false; val start3 $?
val v4_3 $(v4grace)
ag monitor end_grace_early=false; val monitor_keep $?
val nlm_after_monitor_false $(nlmgrace)
( export OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=1; ag reload-agent end_grace_early=true ); val reload $?
ag monitor; val monitor_end $?
val nlm_after_monitor_true $(nlmgrace)
ag stop; val stop3 $?
umount -f -l /tmp/m3
"#;
    let r = vm.run(&script, uml_timeout());
    r.assert_ok();
    for (k, v) in [
        ("start_no_rpcbind", "1"),
        ("stop_after_failed_start", "0"),
        ("nfsdcld_after_failed_start", "gone"),
        ("outside_threads", "2"),
        ("start_over_outside", "0"),
        ("grace_time", "20"),
        ("lease_time", "10"),
        ("start_conflict", "1"),
        ("monitor_conflict", "7"),
        ("monitor_outside_restart", "1"),
        ("stop_outside", "0"),
        ("start_again", "0"),
        ("mount3", "0"),
        ("stop1", "0"),
        ("lockd_after_stop", "running"),
        ("nlm_before_start2", "Y"),
        ("start2", if sigkill { "0" } else { "1" }),
        ("nlm_after_start2", if sigkill { "N" } else { "Y" }),
        ("stop2", "0"),
        ("lockd_after_umount", "gone"),
        ("start_fresh", "0"),
        ("nlm_fresh", "N"),
        ("mount3_again", "0"),
        ("stop_fresh", "0"),
        ("start3", "0"),
        ("v4_3", "Y"),
        ("monitor_keep", "0"),
        ("nlm_after_monitor_false", "N"),
        ("reload", "0"),
        ("monitor_end", "0"),
        ("nlm_after_monitor_true", "Y"),
        ("stop3", "0"),
    ] {
        expect_value(&r, k, v);
    }
    assert!(r.output.contains("rpcbind is not running"), "{}", r.output);
    assert!(
        r.output
            .contains("server_scope=\"other-scope\" here, \"hanfs-scope-t\" there"),
        "{}",
        r.output
    );
    assert!(
        r.output.contains("outside this resource's control"),
        "{}",
        r.output
    );
    assert!(
        r.output.contains("it was restarted outside the cluster"),
        "{}",
        r.output
    );
    if sigkill {
        assert!(
            r.output.contains("restarted lockd's NLM grace period"),
            "{}",
            r.output
        );
    } else {
        let (major, minor) = vm.release();
        assert!(
            r.output.contains(&format!(
                "{}no NLM grace period for NFSv3 clients: lockd stays up (NFS client mounts on this node keep it) and Linux {major}.{minor} cannot restart its grace period",
                "ocf-exit-reason:"
            )),
            "{}",
            r.output
        );
    }
    assert!(
        r.output.contains("ending lockd's grace period early"),
        "{}",
        r.output
    );
}

/// ocf-tester against the real kernel nfsd, and crm_resource --validate
/// for what only a host with nfsd can tell (code 2).
#[test]
fn uml_ocf_tester_and_validate() {
    let vm = uml!();
    let script = prelude(10, 10, 10)
        + &install_agents_sh()
        + &format!(
            "V() {{ {} \"$@\"; }}\n",
            tools::validate_sh(AGENT, &["server_scope=s"])
        )
        + r#"
disk
modprobe nfsd; rpcbind -w; rpc.mountd
ocf-tester -n nfsgrace -o recovery_dir=$S/nfsdcld -o server_scope=hanfs-t -o grace_time=10 -o lease_time=10 \
    /usr/lib/ocf/resource.d/hanfs/nfs-grace; val tester $?
V --option recovery_dir=/nonexistent/dir/cld 2>&1; val validate_missing $?
V --option recovery_dir=$S/data/f 2>&1; val validate_good $?
touch $S/notadir
V --option recovery_dir=$S/notadir 2>&1; val validate_notdir $?
"#;
    let r = vm.run(&script, uml_timeout());
    r.assert_ok();
    expect_value(&r, "tester", "0");
    expect_value(&r, "validate_missing", "2");
    assert!(
        r.output.contains(&format!(
            "{}recovery_dir /nonexistent/dir/cld does not exist, nor its parent",
            tools::returned(2)
        )),
        "{}",
        r.output
    );
    expect_value(&r, "validate_good", "0");
    expect_value(&r, "validate_notdir", "2");
    assert!(r.output.contains("is not a directory"), "{}", r.output);
}

/// Two services on one node share its nfsd (same settings, each its own
/// client records on its own disk): the second start merges its records
/// into the database nfsdcld serves and restarts nfsd for its grace; the
/// database is copied back to the second disk; a stop leaves nfsd running
/// for the other service unless NFSv4 state still pins the departing
/// (unexported) disk, which on 6.1 needs an nfsd restart — after which that
/// disk unmounts and the other service runs on. From Linux 6.9
/// unlock_filesystem revokes that state, and stop waits for the client to
/// free the revoked states instead (nfsd keeps running). When the service whose
/// disk nfsdcld uses leaves, nfsdcld moves to the other disk's copy.
#[test]
fn uml_two_services_share_the_node() {
    let vm = uml!();
    let script = prelude(20, 10, 10)
        + r#"
E=/run/exports
mkdir -p $E; mount -t tmpfs tmpfs $E; mkdir -p $E/a $E/b
for d in a b; do dd if=/dev/zero of=/tmp/$d.img bs=1M count=16 2>/dev/null; mkfs.ext4 -q /tmp/$d.img; done
modprobe loop; mount -o loop /tmp/a.img $E/a; mount -o loop /tmp/b.img $E/b; chmod 777 $E/a $E/b
# svc1 keeps its records on disk a, svc2 on disk b
svc() { INST=$1; d=$2; shift 2; OCF_RESOURCE_INSTANCE=$INST ag "$@" recovery_dir=$E/$d/.cld; }
svc1() { svc svc1 a "$@"; }
svc2() { svc svc2 b "$@"; }
cld_on() { for p in $(pgrep -x nfsdcld); do ls -l /proc/$p/fd; done | grep -q "$1/main.sqlite" && echo yes || echo no; }
modprobe nfsd; rpcbind -w; rpc.mountd
exportfs -o rw,fsid=0,no_subtree_check,insecure,crossmnt 127.0.0.1:$E
svc1 start; val start1 $?
exportfs -o rw,no_root_squash,fsid=11,no_subtree_check,insecure 127.0.0.1:$E/a
svc2 start; val start2 $?
val cld_serves_a $(cld_on $E/a/.cld)
val copy_on_b $(test -s $E/b/.cld/main.sqlite && echo yes)
exportfs -o rw,no_root_squash,fsid=12,no_subtree_check,insecure 127.0.0.1:$E/b
svc2 stop; val stop2_idle $?
val threads_after_idle_stop $(cat /proc/fs/nfsd/threads)
svc1 monitor; val monitor1_a $?
# svc1's monitors while svc2 starts (restarting nfsd for its grace) must
# not take the restart for nfsd's death (seen in the lab: run 20261202-140121)
svc2 start >/tmp/start2.out 2>&1 & S2=$!
n=0; bad=0
while kill -0 $S2 2>/dev/null; do svc1 monitor >/dev/null 2>&1 || bad=$((bad + 1)); n=$((n + 1)); done
wait $S2; val start2_again $?
val monitors_during_start2 $n
val monitors_failed_during_start2 $bad
exportfs -o rw,no_root_squash,fsid=12,no_subtree_check,insecure 127.0.0.1:$E/b
echo Y > /proc/fs/lockd/nlm_end_grace
modprobe nfsv4; mkdir -p /tmp/ma /tmp/mb
timeout 60 mount -t nfs -o vers=4.2 127.0.0.1:/a /tmp/ma; val mount_a $?
timeout 60 mount -t nfs -o vers=4.2 127.0.0.1:/b /tmp/mb; val mount_b $?
hold /tmp/mb/lockme LOCKED
server_lock lock_on_b
val records_a $(records $E/a/.cld)
# the copy on b follows at svc2's monitor
svc2 monitor; val monitor2 $?
val records_b_after_monitor $(records $E/b/.cld)
# svc2 leaves: its export goes, then nfs-grace svc2 stops
exportfs -u 127.0.0.1:$E/b; echo $E/b > /proc/fs/nfsd/unlock_filesystem
umount $E/b 2>/dev/null && { val b_busy_before_stop no; mount -o loop /tmp/b.img $E/b; } || val b_busy_before_stop yes
svc2 stop; val stop2 $?
val records_b_after_stop $(records $E/b/.cld)
umount $E/b && val umount_b ok || val umount_b busy
val threads_after_stop2 $(cat /proc/fs/nfsd/threads)
svc1 monitor; val monitor1_b $?
echo hello > /tmp/ma/still-served && val a_served yes
# svc2 comes back; then svc1, whose disk nfsdcld uses, leaves first
mount -o loop /tmp/b.img $E/b
svc2 start; val start2_third $?
svc1 stop; val stop1 $?
umount $E/a && val umount_a ok || val umount_a busy
val cld_serves_b $(cld_on $E/b/.cld)
val threads_after_stop1 $(cat /proc/fs/nfsd/threads)
svc2 monitor; val monitor2_alone $?
svc2 stop; val stop2_last $?
val threads_after_last $(cat /proc/fs/nfsd/threads)
val nfsdcld_after_last $(pgrep -x nfsdcld >/dev/null && echo running || echo gone)
umount $E/b && val umount_b_last ok || val umount_b_last busy
kill %1 2>/dev/null; umount -f -l /tmp/ma /tmp/mb
"#;
    let r = vm.run(&script, uml_timeout());
    r.assert_ok();
    for (k, v) in [
        ("start1", "0"),
        ("start2", "0"),
        ("cld_serves_a", "yes"),
        ("copy_on_b", "yes"),
        ("stop2_idle", "0"),
        ("threads_after_idle_stop", "4"),
        ("monitor1_a", "0"),
        ("start2_again", "0"),
        ("monitors_failed_during_start2", "0"),
        ("mount_a", "0"),
        ("mount_b", "0"),
        ("LOCKED", "yes"),
        ("lock_on_b", "yes"),
        // one client (this guest), recorded once
        ("records_a", "1"),
        ("monitor2", "0"),
        ("records_b_after_monitor", "1"),
        ("stop2", "0"),
        ("records_b_after_stop", "1"),
        ("umount_b", "ok"),
        ("threads_after_stop2", "4"),
        ("monitor1_b", "0"),
        ("a_served", "yes"),
        ("start2_third", "0"),
        ("stop1", "0"),
        ("umount_a", "ok"),
        ("cld_serves_b", "yes"),
        ("threads_after_stop1", "4"),
        ("monitor2_alone", "0"),
        ("stop2_last", "0"),
        ("threads_after_last", "0"),
        ("nfsdcld_after_last", "gone"),
        ("umount_b_last", "ok"),
    ] {
        expect_value(&r, k, v);
    }
    for needle in [
        "restarting nfsd for a new grace period: the clients of svc1",
        "nfsd keeps running for svc1",
        "moving it to",
    ] {
        assert!(r.output.contains(needle), "{needle:?}\n{}", r.output);
    }
    if vm.release() < (6, 9) {
        // the NFSv4 open and lock stay on the unexported disk b: only an
        // nfsd restart releases them
        expect_value(&r, "b_busy_before_stop", "yes");
        assert!(
            r.output.contains("restarting nfsd to release it"),
            "{}",
            r.output
        );
    } else {
        // unlock_filesystem revoked them; the revoked states keep b busy
        // until the client frees them (seconds): stop waits for that and
        // nfsd keeps running for svc1
        assert!(
            r.output
                .contains("NFSv4 states revoked by unlock_filesystem are still held"),
            "{}",
            r.output
        );
        assert!(
            r.output
                .contains("the clients freed their revoked NFSv4 states after"),
            "{}",
            r.output
        );
        assert!(
            !r.output.contains("restarting nfsd to release it"),
            "{}",
            r.output
        );
    }
}
